//! An interactive terminal for `run` / `exec -t` without --console-socket: berth is its own
//! console socket (a socketpair), receives the pty master, puts its own terminal in raw mode
//! and relays bytes both ways in its single-threaded poll loop until the process exits.
//! Also the container-side stdio fix-ups runc makes: the pty slave owned by the process's
//! user, and stdio that is the host's /dev/null reopened as the container's.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, SetArg, Termios};

/// Receives the pty master the init stub (or exec child) sends over the console socket.
pub fn recv_master(sock: &UnixStream) -> std::io::Result<OwnedFd> {
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: an fd just received with SCM_RIGHTS; we own it.
                let master = unsafe { OwnedFd::from_raw_fd(*fd) };
                clear_onlcr(master.as_fd())?;
                return Ok(master);
            }
        }
    }
    Err(std::io::Error::other(
        "console socket: no pty master received",
    ))
}

/// The container's pty passes "\n" through as is; our own terminal (raw, but with output
/// processing kept, see [`RawMode`]) is the one that shows it as "\r\n". runc clears ONLCR
/// on the master it relays (tty.go recvtty) and only there: a master sent to a
/// --console-socket is left as is. Master and slave share one termios, so the container
/// sees `-onlcr` too. Done on receipt, before `run` starts the process.
pub fn clear_onlcr(master: BorrowedFd) -> std::io::Result<()> {
    let mut t = termios::tcgetattr(master)?;
    t.output_flags.remove(termios::OutputFlags::ONLCR);
    termios::tcsetattr(master, SetArg::TCSANOW, &t)?;
    Ok(())
}

/// Puts stdin's terminal in raw mode while alive (if stdin is a terminal at all).
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            // Output processing stays on (as runc's SetRaw keeps OPOST): the container's
            // pty no longer turns "\n" into "\r\n" (ONLCR cleared), our terminal does.
            raw.output_flags.insert(termios::OutputFlags::OPOST);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// Copies stdin's window size to the pty (at start and on SIGWINCH).
pub fn sync_size(master: BorrowedFd) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a valid winsize.
    unsafe {
        if libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Moves whatever is readable from `from` to `to`. False on EOF or error (from closed).
pub fn pump(from: BorrowedFd, to: BorrowedFd) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

/// Reads what is left on the master after the process exited (until EIO or nothing more).
pub fn drain(master: BorrowedFd) {
    let out = std::io::stdout();
    while crate::poll::poll_readable(&[master], 0).is_some() && pump(master, out.as_fd()) {}
}

/// The pty slave on stdio becomes the process user's (runc's fixStdioPermissions): uid set,
/// group kept (devpts made it the tty group, gid=5 in the default mount). Descriptors that
/// are /dev/null or already the user's are left alone; a uid or owner the user namespace
/// does not map (EINVAL, EPERM) or a read-only /dev (EROFS) is skipped, as runc does.
pub fn own_stdio(uid: u32) -> Result<(), ConsoleError> {
    for fd in 0..3 {
        // SAFETY: with a terminal, 0-2 are the pty slave, open until execve.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let st = nix::sys::stat::fstat(fd).map_err(|e| ConsoleError::sys("fstat stdio", fd, e))?;
        if st.st_uid == uid || is_null(&st) {
            continue;
        }
        match nix::unistd::fchown(fd, Some(uid.into()), None) {
            Ok(()) | Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => {}
            Err(e) => return Err(ConsoleError::sys("chown stdio to process.user.uid", fd, e)),
        }
    }
    Ok(())
}

/// Stdio that is the host's /dev/null is replaced by the container's /dev/null opened
/// read-write (runc's reOpenDevNull, after pivot_root): no descriptor of a host file stays
/// in the container, and a write to a stdin-only /dev/null works. Call inside the new root.
pub fn reopen_dev_null() -> Result<(), ConsoleError> {
    let flags = OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let null = match nix::fcntl::open("/dev/null", flags, Mode::empty()) {
        Ok(fd) => fd,
        // No /dev/null in the root, or a symlink there (never followed): nothing that is
        // surely the container's null device to reopen onto.
        Err(Errno::ENOENT | Errno::ELOOP) => return Ok(()),
        // linux.resources.devices denies it (berth lets a config deny even 1:3, which runc's
        // appended defaults never do): the container may not have it; stdio stays as given.
        Err(Errno::EPERM | Errno::EACCES) => return Ok(()),
        Err(e) => {
            return Err(ConsoleError::at(
                "open the container's null device",
                "/dev/null",
                e,
            ));
        }
    };
    let ours =
        nix::sys::stat::fstat(&null).map_err(|e| ConsoleError::at("fstat", "/dev/null", e))?;
    if !is_null(&ours) {
        return Ok(());
    }
    for fd in 0..3 {
        // SAFETY: stdio stays open for the whole call.
        let stdio = unsafe { BorrowedFd::borrow_raw(fd) };
        let Ok(st) = nix::sys::stat::fstat(stdio) else {
            continue;
        };
        if is_null(&st) {
            // SAFETY: dup2 onto a stdio number we own; the old description is dropped.
            if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
                return Err(ConsoleError::sys(
                    "reopen stdio as /dev/null",
                    stdio,
                    Errno::last(),
                ));
            }
        }
    }
    Ok(())
}

/// The null character device, 1:3.
fn is_null(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3)
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{step} ({what}): {errno}")]
    Sys {
        step: &'static str,
        what: String,
        errno: Errno,
    },
}

impl ConsoleError {
    fn sys(step: &'static str, fd: BorrowedFd, errno: Errno) -> ConsoleError {
        ConsoleError::at(step, format!("fd {}", fd.as_raw_fd()), errno)
    }

    fn at(step: &'static str, what: impl Into<String>, errno: Errno) -> ConsoleError {
        ConsoleError::Sys {
            step,
            what: what.into(),
            errno,
        }
    }
}

/// Whether berth has a terminal to relay a container's pty to: a tty on stdio, or a
/// controlling terminal. Without one, an interactive `run` would wait for input that never
/// comes; the error says why /dev/tty could not be opened.
pub fn have_a_terminal() -> std::io::Result<()> {
    // SAFETY: isatty on the standard fds only reads their state.
    if (0..3).any(|fd| unsafe { libc::isatty(fd) } == 1) {
        return Ok(());
    }
    std::fs::File::open("/dev/tty").map(drop)
}
