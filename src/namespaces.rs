//! Namespace plumbing: clone3 into new namespaces, setns by fd, user-namespace id maps
//! and time-namespace offsets.
//!
//! Who does what (see docs/design.md):
//! - user and pid namespaces are created by clone3 itself, so the child is pid 1 and the
//!   parent can write its id maps;
//! - a pid namespace to join is entered by the parent (setns affects only its children),
//!   restored right after the clone;
//! - a new time namespace is made by the parent (unshare + timens_offsets affect only its
//!   children: offsets must be written before any process lives in it), restored after;
//! - a time namespace to join is entered by the parent too (as host root: a time namespace
//!   made by another container's runtime is owned by the host's user namespace);
//! - every other namespace is joined (setns) or created (unshare) by the child itself,
//!   after joining the user namespace, so they are owned by the container's user namespace;
//! - a new pid namespace beside a *joined* user namespace must be owned by the joined one
//!   (or /proc cannot be mounted in it): the child joins the user namespace, then clones
//!   the init into the new pid namespace as a sibling (CLONE_PARENT) and exits.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::spec::{IdMap, Namespaces};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("clone3 into namespaces {flags:?}: {errno}")]
    Clone {
        flags: CloneFlags,
        errno: nix::Error,
    },
    #[error("{what}: {errno}")]
    Sys { what: String, errno: nix::Error },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> NsError {
    let what = what.into();
    move |errno| NsError::Sys { what, errno }
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub enum Forked {
    Child,
    Parent { pid: Pid, pidfd: OwnedFd },
}

/// fork()-like clone3 (no new stack: the child continues on a copy of ours) into new
/// namespaces, returning a pidfd for the child so its exit can never be missed.
///
/// Only call from a single-threaded process: the child must not inherit locks held by
/// other threads.
pub fn clone_into(flags: CloneFlags) -> Result<Forked, NsError> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: (flags.bits() as u64) | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        // With CLONE_PARENT clone3 wants none: the child inherits ours (SIGCHLD).
        exit_signal: if flags.contains(CloneFlags::CLONE_PARENT) {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork(); args is a
    // valid, fully initialised struct of the size we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    // Without clone3 (kernels before 5.3; a seccomp profile answering ENOSYS, as Docker's
    // does for nested runtimes; valgrind), clone(2) takes the same flags and the pidfd.
    let ret = if ret == -1 && nix::Error::last() == nix::Error::ENOSYS {
        // SAFETY: fork()-like clone without CLONE_VM or a new stack; the pidfd is written
        // to `pidfd` (CLONE_PIDFD uses the parent_tid argument).
        unsafe {
            libc::syscall(
                libc::SYS_clone,
                args.flags | args.exit_signal,
                0usize,
                &mut pidfd as *mut RawFd,
                0usize,
                0usize,
            )
        }
    } else {
        ret
    };
    match ret {
        -1 => Err(NsError::Clone {
            flags,
            errno: nix::Error::last(),
        }),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: Pid::from_raw(pid as i32),
            // SAFETY: the kernel stored a new pidfd that nothing else owns.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// Parent-side namespace changes that only affect the children it creates; `restore`
/// puts the parent back so later helpers (hooks) run where the parent runs.
pub struct ParentNs {
    saved: Vec<(CloneFlags, File)>,
}

impl ParentNs {
    pub fn enter(ns: &Namespaces) -> Result<ParentNs, NsError> {
        let mut saved = Vec::new();
        let pidns = CloneFlags::CLONE_NEWPID;
        if let Some((_, fd, path)) = ns.join.iter().find(|(f, _, _)| *f == pidns) {
            saved.push((pidns, open_own("pid_for_children")?));
            nix::sched::setns(fd, pidns)
                .map_err(sys(format!("join pid namespace {}", path.display())))?;
        }
        let timens = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
        if let Some((_, fd, path)) = ns.join.iter().find(|(f, _, _)| *f == timens) {
            saved.push((timens, open_own("time_for_children")?));
            nix::sched::setns(fd, timens)
                .map_err(sys(format!("join time namespace {}", path.display())))?;
        }
        if ns.new.contains(timens) {
            saved.push((timens, open_own("time_for_children")?));
            nix::sched::unshare(timens).map_err(sys("unshare time namespace"))?;
            if !ns.time_offsets.is_empty() {
                let mut text = String::new();
                for (clock, secs, nanos) in &ns.time_offsets {
                    text.push_str(&format!("{clock} {secs} {nanos}\n"));
                }
                write_proc("/proc/self/timens_offsets", &text)?;
            }
        }
        Ok(ParentNs { saved })
    }

    pub fn restore(self) -> Result<(), NsError> {
        for (flag, f) in self.saved {
            nix::sched::setns(f, flag).map_err(sys("restore the runtime's own namespace"))?;
        }
        Ok(())
    }
}

fn open_own(name: &str) -> Result<File, NsError> {
    let path = format!("/proc/self/ns/{name}");
    File::open(&path).map_err(|source| NsError::Write { path, source })
}

/// Flags given to clone3: the user and pid namespaces (see the module comment).
pub fn clone_flags(ns: &Namespaces) -> CloneFlags {
    let pid = if pid_after_user_join(ns) {
        CloneFlags::empty()
    } else {
        CloneFlags::CLONE_NEWPID
    };
    ns.new & (CloneFlags::CLONE_NEWUSER | pid)
}

/// A new pid namespace beside a joined user namespace: the init is forked twice.
pub fn pid_after_user_join(ns: &Namespaces) -> bool {
    ns.new.contains(CloneFlags::CLONE_NEWPID) && joined_user(ns).is_some()
}

fn joined_user(ns: &Namespaces) -> Option<&(CloneFlags, OwnedFd, std::path::PathBuf)> {
    ns.join
        .iter()
        .find(|(f, _, _)| *f == CloneFlags::CLONE_NEWUSER)
}

/// In the first child, when `pid_after_user_join`: joins the user namespace, clones the
/// init into a new pid namespace owned by it, as a child of our parent (CLONE_PARENT),
/// tells the parent its pid and exits. Returns only in the init (at once otherwise).
pub fn spawn_init(ns: &Namespaces, chan: &crate::sync::Channel) {
    if !pid_after_user_join(ns) {
        return;
    }
    if let Err(e) = fork_init(ns, chan) {
        let _ = chan.send(&crate::sync::Msg::Error { msg: e.to_string() });
        // SAFETY: _exit in the forked child, skipping the parent's destructors.
        unsafe { libc::_exit(1) }
    }
}

fn fork_init(ns: &Namespaces, chan: &crate::sync::Channel) -> Result<(), NsError> {
    if let Some((flag, fd, path)) = joined_user(ns) {
        nix::sched::setns(fd, *flag).map_err(sys(format!("join namespace {}", path.display())))?;
        become_root()?;
    }
    let flags = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_PARENT;
    match clone_into(flags)? {
        Forked::Child => Ok(()),
        Forked::Parent { pid, .. } => {
            let _ = chan.send(&crate::sync::Msg::Forked { pid: pid.as_raw() });
            // SAFETY: _exit in the forked child, skipping the parent's destructors.
            unsafe { libc::_exit(0) }
        }
    }
}

/// Parent side of `spawn_init`: reaps the first child and adopts the init it cloned
/// (the first child is the init otherwise). `guarded` is the pid a failed create kills:
/// it never names a reaped process.
pub fn adopt_init(
    ns: &Namespaces,
    (first, first_fd): (Pid, OwnedFd),
    chan: &crate::sync::Channel,
    guarded: &mut Option<Pid>,
) -> Result<(Pid, OwnedFd), crate::sync::ExpectError> {
    use crate::sync::{ExpectError, Msg};
    if !pid_after_user_join(ns) {
        return Ok((first, first_fd));
    }
    // On error the first child stays unreaped: the guard kills and reaps it.
    let pid = match chan.expect("Forked")? {
        Msg::Forked { pid } => Pid::from_raw(pid),
        other => {
            return Err(ExpectError::Peer(format!(
                "sync: expected Forked, got {other:?}"
            )));
        }
    };
    let _ = nix::sys::wait::waitpid(first, None);
    // The init is our child now (CLONE_PARENT): its pid stays ours until we reap it.
    *guarded = Some(pid);
    let pidfd = crate::pidfd::open(pid.as_raw())
        .map_err(|e| ExpectError::Peer(format!("pidfd of the container init {pid}: {e}")))?;
    Ok((pid, pidfd))
}

/// The id maps of a user namespace to join, read by a helper that joins it (any nsfs
/// path works, not only /proc/PID/ns/user): the config may omit them (runc 1.2+).
pub fn user_maps_of(fd: &OwnedFd) -> Result<(Vec<IdMap>, Vec<IdMap>), NsError> {
    let (rd, wr) = nix::unistd::pipe().map_err(sys("pipe for the id-map reader"))?;
    match clone_into(CloneFlags::empty())? {
        Forked::Child => {
            drop(rd);
            let text = nix::sched::setns(fd, CloneFlags::CLONE_NEWUSER)
                .ok()
                .and_then(|()| {
                    let u = std::fs::read_to_string("/proc/self/uid_map").ok()?;
                    let g = std::fs::read_to_string("/proc/self/gid_map").ok()?;
                    Some(format!("{u}--\n{g}"))
                })
                .unwrap_or_default();
            let _ = File::from(wr).write_all(text.as_bytes());
            // SAFETY: _exit in the forked child, skipping the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        Forked::Parent { pid, .. } => {
            drop(wr);
            let mut text = String::new();
            let read = std::io::Read::read_to_string(&mut File::from(rd), &mut text);
            let _ = nix::sys::wait::waitpid(pid, None);
            let bad = || NsError::Sys {
                what: "read the id maps of the user namespace to join".into(),
                errno: nix::Error::EINVAL,
            };
            read.map_err(|_| bad())?;
            let (u, g) = text.split_once("--\n").ok_or_else(bad)?;
            Ok((parse_map(u), parse_map(g)))
        }
    }
}

fn parse_map(text: &str) -> Vec<IdMap> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(str::parse::<u32>);
            Some(IdMap {
                container_id: f.next()?.ok()?,
                host_id: f.next()?.ok()?,
                size: f.next()?.ok()?,
            })
        })
        .collect()
}

/// Flags the child unshares itself, after joining.
pub fn unshare_flags(ns: &Namespaces) -> CloneFlags {
    ns.new
        & (CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWCGROUP)
}

/// Writes /proc/<pid>/{uid,gid}_map for a child in a new user namespace.
pub fn write_id_maps(pid: Pid, ns: &Namespaces) -> Result<(), NsError> {
    write_proc(&format!("/proc/{pid}/uid_map"), &map_text(&ns.uid_mappings))?;
    write_proc(&format!("/proc/{pid}/gid_map"), &map_text(&ns.gid_mappings))
}

pub fn map_text(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

pub(crate) fn write_proc(path: &str, text: &str) -> Result<(), NsError> {
    let err = |source| NsError::Write {
        path: path.to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(err)?;
    // One write(2): these files take their whole content in a single call.
    f.write_all(text.as_bytes()).map_err(err)
}

/// Which of its namespaces the init enters in one `child_enter` call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Every namespace, once the parent has put the init in its cgroups (Go).
    All,
    /// Every namespace but the cgroup one, before Go: the work overlaps the parent's making
    /// and joining of the cgroups. Only where `enter_early` says so.
    AllButCgroup,
    /// The cgroup namespace, after Go: its root is the cgroup the init is in when it is
    /// made (or joined by path after the join, as with `All`).
    CgroupOnly,
}

/// Whether the init may make its namespaces before the parent's Go: not with a user
/// namespace, new or joined, whose id maps and credentials come with Go.
pub fn enter_early(ns: &Namespaces) -> bool {
    !ns.new.contains(CloneFlags::CLONE_NEWUSER) && joined_user(ns).is_none()
}

fn in_phase(flag: CloneFlags, phase: Phase) -> bool {
    match phase {
        Phase::All => true,
        Phase::AllButCgroup => flag != CloneFlags::CLONE_NEWCGROUP,
        Phase::CgroupOnly => flag == CloneFlags::CLONE_NEWCGROUP,
    }
}

/// Child side: join the user namespace first (it decides what the others may do), then
/// every other namespace to join, then unshare the new ones; only those of `phase`.
pub fn child_enter(ns: &Namespaces, phase: Phase) -> Result<(), NsError> {
    let user = CloneFlags::CLONE_NEWUSER;
    // pid and time namespaces were joined by the parent; a user namespace the init is
    // already in (spawn_init) cannot be joined again (EINVAL).
    let by_parent = CloneFlags::CLONE_NEWPID | CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    let skip_user = pid_after_user_join(ns);
    let ordered = (ns.join.iter())
        .filter(|(f, _, _)| *f == user && !skip_user)
        .chain(
            ns.join
                .iter()
                .filter(|(f, _, _)| *f != user && !by_parent.contains(*f)),
        )
        .filter(|(f, _, _)| in_phase(*f, phase));
    for (flag, fd, path) in ordered {
        nix::sched::setns(fd, *flag).map_err(sys(format!("join namespace {}", path.display())))?;
        if *flag == user {
            become_root()?;
        }
    }
    let newuser = ns.new.contains(user) && phase != Phase::CgroupOnly;
    // In a new user namespace the uid switch comes before the other namespaces are made
    // and the gid switch after, as runc: the ipc namespace's mqueue root takes the
    // creator's gid, which runc leaves as the host's (unmapped: 65534 inside).
    if newuser {
        become_root_uid()?;
    }
    let flags = unshare_flags(ns)
        .iter()
        .filter(|f| in_phase(*f, phase))
        .fold(CloneFlags::empty(), |a, f| a | f);
    if !flags.is_empty() {
        nix::sched::unshare(flags).map_err(sys(format!("unshare {flags:?}")))?;
    }
    if newuser {
        become_root_gid()?;
    }
    Ok(())
}

/// Inside a fresh user namespace we keep host-root credentials until we switch to the
/// namespace's root, which the id maps must contain.
fn become_root() -> Result<(), NsError> {
    become_root_gid()?;
    become_root_uid()
}

fn become_root_uid() -> Result<(), NsError> {
    let root = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresuid(root, root, root).map_err(sys(
        "setuid to root of the user namespace (is uid 0 mapped?)",
    ))
}

fn become_root_gid() -> Result<(), NsError> {
    let rootg = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(rootg, rootg, rootg).map_err(sys(
        "setgid to root of the user namespace (is gid 0 mapped?)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two phases of an early init split the namespaces of `All` with nothing lost and
    /// nothing entered twice; only the cgroup namespace waits for Go.
    #[test]
    fn early_phases_partition_every_namespace() {
        let every = [
            CloneFlags::CLONE_NEWNS,
            CloneFlags::CLONE_NEWNET,
            CloneFlags::CLONE_NEWIPC,
            CloneFlags::CLONE_NEWUTS,
            CloneFlags::CLONE_NEWCGROUP,
            CloneFlags::CLONE_NEWUSER,
            CloneFlags::CLONE_NEWPID,
        ];
        for f in every {
            let early = in_phase(f, Phase::AllButCgroup);
            let late = in_phase(f, Phase::CgroupOnly);
            assert!(in_phase(f, Phase::All));
            assert!(early != late, "{f:?} in both phases or in neither");
            assert_eq!(late, f == CloneFlags::CLONE_NEWCGROUP, "{f:?}");
        }
    }

    #[test]
    fn id_maps_parse_from_proc() {
        let m = parse_map("         0     100000      65536\n     65536          0          1\n");
        assert_eq!(map_text(&m), "0 100000 65536\n65536 0 1\n");
    }

    #[test]
    fn id_map_text() {
        let m = [
            IdMap {
                container_id: 0,
                host_id: 100000,
                size: 65536,
            },
            IdMap {
                container_id: 65536,
                host_id: 0,
                size: 1,
            },
        ];
        assert_eq!(map_text(&m), "0 100000 65536\n65536 0 1\n");
    }
}
