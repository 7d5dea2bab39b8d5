//! Process file descriptors: a handle on one process that a reused pid can never alias.
//! Every signal berth sends and every wait on a process it did not fork goes through one.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// pidfd_open(2) for `pid`.
pub fn open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open has no memory arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// pidfd_send_signal(2): signals the process behind `fd`, whatever reused its pid since.
pub fn send_signal(fd: &OwnedFd, sig: i32) -> nix::Result<()> {
    // SAFETY: pidfd_send_signal on a pidfd we own; no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<u8>(),
            0,
        )
    };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// Sends a pidfd of `pid` over the unix socket at `path` (SCM_RIGHTS, with the name runc
/// gives it as payload): containerd 2 tracks the process by it (runc's --pidfd-socket).
pub fn send(path: &Path, pid: i32) -> std::io::Result<()> {
    let pidfd = open(pid)?;
    let sock = UnixStream::connect(path)?;
    let fds = [pidfd.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(b"pidfd")],
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Whether `pid` is pid 1 of a pid namespace of its own (the last NSpid entry is 1):
/// SIGKILL to such an init takes its whole namespace along (pid_namespaces(7)).
pub fn is_namespace_init(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|l| l.split_whitespace().last())
            == Some("1")
    })
}
