//! Signalling every process of a container's cgroup without ever hitting a process outside
//! it. A pid read from cgroup.procs can exit and be reused by the time kill(2) runs, so:
//! the cgroup is frozen while its processes are signalled (as runc's signalAllProcesses:
//! frozen tasks cannot exit, fork or be replaced), SIGKILL goes through cgroup.kill where
//! the kernel has it (cgroup2, the kernel walks the cgroup itself), and every pid is signalled
//! through a pidfd that is confirmed to belong to the cgroup after it was opened — which alone
//! is race-free, so a host without a freezer is safe too.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use super::{freezer, is_frozen, pids, set_frozen, write};

/// Signals every process in the cgroup, then restores its freezer state. SIGKILL repeats
/// until the cgroup is empty (bounded), thawing so that frozen tasks can die.
pub fn kill_all(dirs: &[PathBuf], sig: i32) {
    if pids(dirs).is_empty() {
        return;
    }
    // cgroup.kill is race-free by itself (the kernel walks the cgroup): when it empties the
    // cgroup there is nothing to freeze, as in runc 1.2. Freezing for nothing would also
    // show a container being deleted as `paused` to a concurrent `state`.
    let was_frozen = is_frozen(dirs);
    if sig == libc::SIGKILL && kill_v2(dirs) {
        // A v1-frozen task sleeps through SIGKILL: thawed after the kill is pending, it dies
        // without running another instruction of its own.
        if was_frozen {
            let _ = set_frozen(dirs, false);
        }
        if wait_empty(dirs, 2000) {
            return;
        }
    }
    for _ in 0..100 {
        if pids(dirs).is_empty() {
            return;
        }
        let has_freezer = freezer(dirs).is_some();
        // Best effort: a freeze that does not complete (a task in D state) still leaves the
        // pidfd checks below, which are race-free on their own.
        if has_freezer {
            let _ = set_frozen(dirs, true);
        }
        let hit = signal_members(dirs, sig);
        // A paused container stays paused after a signal it can take later; one being killed
        // is thawed so that its tasks die (a v1-frozen task sleeps through SIGKILL). Thawed
        // also after a freeze that timed out, which would otherwise stay FREEZING.
        if has_freezer && (!was_frozen || sig == libc::SIGKILL) {
            let _ = set_frozen(dirs, false);
        }
        if sig != libc::SIGKILL || hit == 0 {
            return;
        }
        let _ = wait_empty(dirs, 100);
    }
}

/// cgroup.kill (Linux 5.14) on each cgroup2 directory: the kernel SIGKILLs every member.
/// True when one was written.
fn kill_v2(dirs: &[PathBuf]) -> bool {
    let mut done = false;
    for d in dirs {
        let f = d.join("cgroup.kill");
        if f.exists() {
            done |= write(&f, "1").is_ok();
        }
    }
    done
}

/// Signals each process listed in cgroup.procs through a pidfd, once its membership is
/// confirmed: pid P is read, a pidfd for P opened, cgroup.procs read again; if P is listed
/// again and the pidfd's process is still alive afterwards, P named that process throughout,
/// so the process is a member. Returns how many were signalled.
fn signal_members(dirs: &[PathBuf], sig: i32) -> usize {
    let opened: Vec<(i32, OwnedFd)> = pids(dirs)
        .into_iter()
        .filter_map(|p| crate::pidfd::open(p).ok().map(|fd| (p, fd)))
        .collect();
    if opened.is_empty() {
        return 0;
    }
    let again = pids(dirs);
    let mut hit = 0;
    for (p, fd) in &opened {
        if again.contains(p) && alive(fd) && send(fd, sig) {
            hit += 1;
        }
    }
    hit
}

/// A pidfd polls readable once its process has exited.
fn alive(fd: &OwnedFd) -> bool {
    let mut p = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    matches!(nix::poll::poll(&mut p, nix::poll::PollTimeout::ZERO), Ok(0))
}

fn send(fd: &OwnedFd, sig: i32) -> bool {
    crate::pidfd::send_signal(fd, sig).is_ok()
}

/// Waits up to `ms` milliseconds for cgroup.procs to empty; true when it did.
fn wait_empty(dirs: &[PathBuf], ms: u32) -> bool {
    for _ in 0..ms.div_ceil(2) {
        if pids(dirs).is_empty() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    pids(dirs).is_empty()
}
