//! The caller attached to a container process (`run`, `exec`, a foreground `restore`): every
//! signal it gets is forwarded, a terminal is relayed, and the process's exit becomes ours.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::container::Error;
use crate::poll::poll_readable;

/// Signals `run` forwards to the container (everything a shell or engine might send).
pub(crate) fn forwarded() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    set
}

/// Waits for our child `pid` to exit, forwarding every signal in `set` (which the caller
/// blocked before cloning) to it. Returns its exit code, 128+N when killed by signal N.
pub(crate) fn wait_forwarding(
    pid: Pid,
    pidfd: &OwnedFd,
    set: &SigSet,
    tty: Option<&OwnedFd>,
) -> Result<i32, Error> {
    let sfd =
        nix::sys::signalfd::SignalFd::with_flags(set, nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)
            .map_err(|e| Error::Msg(format!("signalfd: {e}")))?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let (mut master_open, mut stdin_open) = (tty.is_some(), tty.is_some());
    if let Some(m) = tty {
        crate::console::sync_size(m.as_fd());
    }
    loop {
        let mut fds = vec![sfd.as_fd(), pidfd.as_fd()];
        let master = tty.filter(|_| master_open).map(|m| m.as_fd());
        if let Some(m) = master {
            fds.push(m);
        }
        if stdin_open {
            fds.push(stdin.as_fd());
        }
        match poll_readable(&fds, -1) {
            Some(0) => {
                if let Ok(Some(info)) = sfd.read_signal() {
                    let sig = info.ssi_signo as i32;
                    match (sig, tty) {
                        (libc::SIGCHLD, _) => {}
                        // Our terminal changed size: the container's pty follows.
                        (libc::SIGWINCH, Some(m)) => crate::console::sync_size(m.as_fd()),
                        _ => {
                            let _ = crate::pidfd::send_signal(pidfd, sig);
                        }
                    }
                }
            }
            Some(1) => {
                if let Some(m) = tty {
                    crate::console::drain(m.as_fd());
                }
                match waitpid(pid, None) {
                    Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                    Ok(_) => continue,
                    Err(e) => return Err(Error::Msg(format!("wait for process {pid}: {e}"))),
                }
            }
            Some(2) if master.is_some() => {
                if let Some(m) = master {
                    master_open = crate::console::pump(m, stdout.as_fd());
                }
            }
            Some(_) => {
                if let Some(m) = tty {
                    stdin_open = crate::console::pump(stdin.as_fd(), m.as_fd());
                }
            }
            None => continue,
        }
    }
}

/// [`wait_forwarding`] for a process that may have an interactive terminal: its pty master
/// arrives on our end of the internal console socket, and our terminal goes raw meanwhile.
pub(crate) fn wait_attached(
    pid: Pid,
    pidfd: &OwnedFd,
    set: &SigSet,
    console: Option<&UnixStream>,
) -> Result<i32, Error> {
    let master = console.map(recv_master).transpose()?;
    wait_relaying(pid, pidfd, set, master)
}

/// The pty master from our end of the internal console socket (ONLCR cleared, as runc).
pub(crate) fn recv_master(sock: &UnixStream) -> Result<OwnedFd, Error> {
    crate::console::recv_master(sock).map_err(|e| Error::Msg(format!("console: {e}")))
}

/// [`wait_forwarding`] relaying `master` (if any) with our terminal raw meanwhile.
pub(crate) fn wait_relaying(
    pid: Pid,
    pidfd: &OwnedFd,
    set: &SigSet,
    master: Option<OwnedFd>,
) -> Result<i32, Error> {
    let _raw = master.as_ref().map(|_| crate::console::RawMode::enter());
    wait_forwarding(pid, pidfd, set, master.as_ref())
}
