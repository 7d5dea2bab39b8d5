//! poll(2) on a few fds, shared by the lifecycle (FIFO and pidfd waits), the console relay
//! and hook timeouts.

use std::os::fd::{AsRawFd, BorrowedFd};

/// poll(2) for readability; the index of the first ready fd, None on timeout.
pub fn poll_readable(fds: &[BorrowedFd], timeout_ms: i32) -> Option<usize> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: pfds is a valid array of the length we pass.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as _, timeout_ms) };
        if n < 0 && nix::Error::last() == nix::Error::EINTR {
            continue;
        }
        if n <= 0 {
            return None;
        }
        return pfds.iter().position(|p| p.revents != 0);
    }
}
