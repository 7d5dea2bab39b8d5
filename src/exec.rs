//! `exec`: a further process in a running container. It joins every namespace of the
//! container's init (the user namespace first), its cgroups, and gets the same process
//! setup as the init stub. Success is the sync socket closing on execve (O_CLOEXEC).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow};

use crate::cgroups::Cgroups;
use crate::container::{self, Error};
use crate::init::{self, InitError};
use crate::namespaces::{self, Forked};
use crate::spec::ProcessPlan;
use crate::state::{self, ContainerDir, State, Status};
use crate::sync::{Channel, ExpectError, Msg};

pub struct ExecOpts {
    pub process: ProcessPlan,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub pidfd_socket: Option<PathBuf>,
    pub ignore_paused: bool,
    pub preserve_fds: u32,
    /// The container's seccomp profile (exec'd processes get it too).
    pub seccomp: Option<crate::spec::SeccompPlan>,
    /// The container's `process.oomScoreAdj` (runc gives it to exec'd processes too).
    pub oom_score_adj: Option<i32>,
    /// `--cgroup`: sub-cgroups of the container's to join instead of its own.
    pub sub_cgroups: crate::cgroups::subgroup::SubCgroups,
    /// The container's `linux.personality` (runc 1.2+ gives it to exec'd processes too).
    pub personality: Option<crate::spec::Personality>,
}

/// The container's init as a pidfd, and the namespaces of it that differ from ours. Fails
/// closed: an init that is gone, or a namespace link of it that cannot be read, is an error,
/// never a reason to run the command in the host's namespace.
struct Target {
    pidfd: OwnedFd,
    /// (flag, name) of each namespace to join, user first (setns through a pidfd orders
    /// them itself; the order only matters for the messages).
    nss: Vec<(CloneFlags, &'static str)>,
    /// The init's root directory when the container shares our mount namespace (it runs
    /// chrooted): the exec'd process is chrooted there too, never left at the host's `/`.
    chroot: Option<OwnedFd>,
}

impl Target {
    fn flags(&self, pid: bool) -> CloneFlags {
        self.nss
            .iter()
            .filter(|(f, _)| (*f == CloneFlags::CLONE_NEWPID) == pid)
            .fold(CloneFlags::empty(), |acc, (f, _)| acc | *f)
    }

    fn names(&self) -> String {
        let v: Vec<&str> = self.nss.iter().map(|(_, n)| *n).collect();
        v.join(",")
    }
}

/// An ordinary user may join the container's other namespaces only from inside its user
/// namespace (setns needs CAP_SYS_ADMIN in the caller's own): we enter it here, before the
/// pid namespace, as runc's nsexec enters it first; the child then joins the rest.
fn join_user_first(target: &mut Target) -> Result<(), Error> {
    let user = CloneFlags::CLONE_NEWUSER;
    if !target.nss.iter().any(|(f, _)| *f == user) {
        return Ok(());
    }
    setns_pidfd(&target.pidfd, user)
        .map_err(|e| Error::Msg(format!("join the container's user namespace: {e}")))?;
    target.nss.retain(|(f, _)| *f != user);
    Ok(())
}

fn gone(id: &str, pid: i32) -> Error {
    Error::Msg(format!(
        "cannot exec in container {id}: its init (pid {pid}) has exited"
    ))
}

fn container_namespaces(id: &str, st: &state::State) -> Result<Target, Error> {
    // The pidfd is checked against the recorded start time after it is opened, so it is the
    // init and not a process that reused its pid; every join goes through it.
    let pidfd = container::pidfd_for(st).ok_or_else(|| gone(id, st.pid))?;
    let kinds = [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let mut nss = Vec::new();
    for (name, flag) in kinds {
        // A kind our own process lacks is one this kernel does not have: nothing to join.
        let Ok(ours) = std::fs::read_link(format!("/proc/self/ns/{name}")) else {
            continue;
        };
        let theirs = format!("/proc/{}/ns/{name}", st.pid);
        let theirs = std::fs::read_link(&theirs).map_err(|e| {
            Error::Msg(format!(
                "cannot exec in container {id}: read {theirs}: {e} (is the init exiting?)"
            ))
        })?;
        if theirs != ours {
            nss.push((flag, name));
        }
    }
    let shares_mounts = !nss.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWNS);
    let chroot = if shares_mounts {
        let path = format!("/proc/{}/root", st.pid);
        let fd = nix::fcntl::open(
            path.as_str(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::Msg(format!("cannot exec in container {id}: open {path}: {e}")))?;
        Some(fd)
    } else {
        None
    };
    // The links were read by pid: the init must still be the same process after reading them.
    if !state::is_alive(st) {
        return Err(gone(id, st.pid));
    }
    Ok(Target { pidfd, nss, chroot })
}

/// setns(pidfd, flags): all of `flags` at once, from the process behind the pidfd.
fn setns_pidfd(pidfd: &OwnedFd, flags: CloneFlags) -> nix::Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    // SAFETY: setns on a pidfd we own; no memory arguments.
    let r = unsafe { libc::setns(pidfd.as_raw_fd(), flags.bits()) };
    nix::errno::Errno::result(r).map(drop)
}

/// Runs `o` in container `id`, whose state `st` the caller read. Call only after
/// security::sealed::ensure (cli::exec does it first): the child runs in the container from
/// this process's image.
pub fn exec(root: &Path, id: &str, st: State, o: &ExecOpts) -> Result<i32, Error> {
    let dir = ContainerDir::new(root, id)?;
    let status = state::status(&dir, &st);
    match status {
        Status::Stopped | Status::Creating => {
            return Err(Error::Msg(format!(
                "cannot exec in container {id}: it is {}",
                status.as_str()
            )));
        }
        Status::Paused if !o.ignore_paused => {
            return Err(Error::Msg(format!(
                "cannot exec in container {id}: it is paused (use --ignore-paused)"
            )));
        }
        _ => {}
    }
    if o.process.terminal && o.console_socket.is_none() && o.detach {
        return Err(Error::Msg(
            "exec --tty --detach needs --console-socket".into(),
        ));
    }
    // Checked before anything exists, so a bad --cgroup leaves nothing behind.
    let cgroup_dirs = if o.sub_cgroups.is_empty() {
        st.cgroup_joined.clone()
    } else {
        let hs = crate::cgroups::hierarchies()
            .map_err(|e| Error::Msg(format!("--cgroup: read /proc/self/mountinfo: {e}")))?;
        o.sub_cgroups.apply(&st.cgroup_joined, &hs)?
    };
    // Status checked, nothing joined: a test kills the init here to see exec fail closed.
    crate::failpoint!("exec::status-checked");
    let mut target = container_namespaces(id, &st)?;
    if crate::rootless::euid_rootless() {
        join_user_first(&mut target)?;
    }
    let mut console_rx = None;
    let console =
        match &o.console_socket {
            Some(p) => Some(UnixStream::connect(p).map_err(|e| {
                Error::Msg(format!("connect to console socket {}: {e}", p.display()))
            })?),
            None if o.process.terminal => {
                let (rx, tx) = UnixStream::pair()
                    .map_err(|e| Error::Msg(format!("console socketpair: {e}")))?;
                console_rx = Some(rx);
                Some(tx)
            }
            None => None,
        };
    let agent = match o.seccomp.as_ref().and_then(|s| s.listener_path.as_ref()) {
        Some(p) => Some(UnixStream::connect(p).map_err(|e| {
            Error::Msg(format!(
                "linux.seccomp.listenerPath: connect {}: {e}",
                p.display()
            ))
        })?),
        None => None,
    };
    let state = state::oci_state_json(&st, status);
    let set = crate::attach::forwarded();
    let mut old = SigSet::empty();
    if !o.detach {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .map_err(|e| Error::Msg(format!("block signals: {e}")))?;
    }
    let (parent_chan, child_chan) = Channel::pair()?;
    // A pid namespace only applies to children: enter it here, restore after the clone.
    let pidns = target.flags(true);
    let saved = if pidns.is_empty() {
        None
    } else {
        let own = File::open("/proc/self/ns/pid_for_children")
            .map_err(|e| Error::Msg(format!("open own pid namespace: {e}")))?;
        setns_pidfd(&target.pidfd, pidns).map_err(|e| match e {
            nix::errno::Errno::ESRCH => gone(id, st.pid),
            e => Error::Msg(format!("join the pid namespace of pid {}: {e}", st.pid)),
        })?;
        Some(own)
    };
    let forked = namespaces::clone_into(CloneFlags::empty())?;
    let (pid, pidfd) = match forked {
        Forked::Child => {
            drop(parent_chan);
            let fds = ChildFds {
                console: console.as_ref().map(|c| c.as_raw_fd()),
                agent: agent.as_ref().map(|c| c.as_raw_fd()),
            };
            child(&child_chan, &target, o, fds, &state)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(child_chan);
    crate::failpoint!("exec::clone");
    drop(console);
    drop(agent);
    if let Some(own) = saved {
        match nix::sched::setns(own, CloneFlags::CLONE_NEWPID) {
            // Root of a user namespace (rootless podman) may not go back to a pid namespace
            // the host's user namespace owns; it forks nothing else, so it need not.
            Err(nix::errno::Errno::EPERM) if crate::rootless::in_user_ns() => {}
            r => r.map_err(|e| Error::Msg(format!("restore pid namespace: {e}")))?,
        }
    }
    let kill_child = |e: Error| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        e
    };
    let cg = Cgroups {
        joined: cgroup_dirs,
        created: Vec::new(),
        hierarchies: Vec::new(),
        // Joined through cgroupfs (cgroup.procs of the scope), as runc does.
        unit: None,
    };
    crate::logging::step("exec: child cloned");
    cg.join_exec(pid.as_raw(), st.pid)
        .map_err(|e| kill_child(e.into()))?;
    crate::logging::step("exec: cgroups joined");
    // After joining the cgroup, so the reset lands within the container's cpuset.
    container::initial_affinity(pid, o.process.cpu_affinity_initial.as_deref())
        .map_err(kill_child)?;
    parent_chan
        .send(&Msg::Go {
            host_pid: pid.as_raw(),
        })
        .map_err(|e| kill_child(e.into()))?;
    if status == Status::Paused && o.detach {
        // The process froze on joining the paused cgroup; it runs on resume.
        if let Some(pf) = &o.pid_file {
            container::write_pid_file(pf, pid.as_raw())?;
        }
        if let Some(sock) = &o.pidfd_socket {
            container::send_pidfd(sock, pid.as_raw())?;
        }
        return Ok(0);
    }
    match parent_chan.recv() {
        Ok(None) => {}
        Ok(Some(Msg::Error { msg })) => return Err(kill_child(Error::Msg(msg))),
        Ok(Some(other)) => {
            return Err(kill_child(Error::Msg(format!(
                "sync: unexpected {other:?}"
            ))));
        }
        Err(e) => return Err(kill_child(Error::Sync(ExpectError::from(e)))),
    }
    crate::logging::step("exec: execve confirmed");
    if let Some(pf) = &o.pid_file {
        container::write_pid_file(pf, pid.as_raw())?;
    }
    if let Some(sock) = &o.pidfd_socket {
        container::send_pidfd(sock, pid.as_raw())?;
    }
    if o.detach {
        return Ok(0);
    }
    let code = crate::attach::wait_attached(pid, &pidfd, &set, console_rx.as_ref())?;
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    Ok(code)
}

struct ChildFds {
    console: Option<RawFd>,
    agent: Option<RawFd>,
}

/// The exec'd process between clone and execve; never returns.
fn child(
    chan: &Channel,
    target: &Target,
    o: &ExecOpts,
    fds: ChildFds,
    state: &serde_json::Value,
) -> ! {
    let err = match setup(chan, target, o, fds, state) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = chan.send(&Msg::Error {
        msg: err.to_string(),
    });
    // SAFETY: _exit in the forked child, skipping the parent's destructors.
    unsafe { libc::_exit(1) }
}

fn setup(
    chan: &Channel,
    target: &Target,
    o: &ExecOpts,
    fds: ChildFds,
    state: &serde_json::Value,
) -> Result<std::convert::Infallible, InitError> {
    // Before anything else: no fd the caller leaked to us (not CLOEXEC) may survive into the
    // container (CVE-2024-21626). What exec passes on purpose is below 3 + preserve-fds; the
    // sync, console and agent sockets are needed only until execve.
    init::process::cloexec_fds_from(3 + o.preserve_fds)?;
    // Non-dumpable while berth's image is mapped: container processes must not reach it.
    let _ = nix::sys::prctl::set_dumpable(false);
    let host_pid = match chan.expect("Go")? {
        Msg::Go { host_pid } => host_pid,
        other => return Err(InitError::Msg(format!("sync: expected Go, got {other:?}"))),
    };
    // As runc: the container's process.oomScoreAdj, written before joining anything (the
    // host's /proc), so the caller's (often a shim's -999) is not what the process keeps.
    if let Some(adj) = o.oom_score_adj {
        init::process::oom_score_adj(adj)?;
    }
    let flags = target.flags(false);
    setns_pidfd(&target.pidfd, flags).map_err(|errno| InitError::Sys {
        step: format!(
            "join namespaces {} of the container init through its pidfd",
            target.names()
        ),
        errno,
    })?;
    if let Some(root) = &target.chroot {
        enter_root(root)?;
    }
    // Also when the parent entered the user namespace for us (`join_user_first`).
    let userns = flags.contains(CloneFlags::CLONE_NEWUSER) || crate::rootless::in_user_ns();
    // Joined but not yet exec'd: with `sleep(MS)` the CVE-2019-5736 test attacks the
    // process's image in this window.
    crate::failpoint!("exec::joined");
    if o.process.terminal {
        let relayed = o.console_socket.is_none();
        crate::rootfs::setup_console(fds.console, o.process.console_size, false, relayed)?;
    }
    let seccomp = o.seccomp.as_ref().map(|s| init::SeccompLoad {
        plan: s,
        socket: fds.agent,
        state: state.clone(),
        pid: host_pid,
    });
    init::setup_process(&o.process, o.personality, userns, seccomp.as_ref())?;
    let exe = init::process::find_executable(&o.process)?;
    if let Some(cpus) = &o.process.cpu_affinity_final {
        init::process::cpu_affinity(0, cpus, "final")?;
    }
    init::process::reset_signals();
    init::process::cloexec_fds_from(3 + o.preserve_fds)?;
    if o.process.no_new_privileges {
        if let Some(s) = &seccomp {
            init::load_seccomp(s)?;
        }
    }
    crate::failpoint!("exec::execve");
    let env = init::process::exec_env(&o.process);
    Err(init::process::exec(&exe, &o.process, &env))
}

/// chroot into the directory `root` refers to (the chrooted init's root).
fn enter_root(root: &OwnedFd) -> Result<(), InitError> {
    let sys = |step: &str| {
        let step = step.to_string();
        move |errno| InitError::Sys { step, errno }
    };
    nix::unistd::fchdir(root).map_err(sys("fchdir to the container's root"))?;
    nix::unistd::chroot(".").map_err(sys("chroot to the container's root"))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))
}
