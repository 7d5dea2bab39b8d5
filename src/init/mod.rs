//! The init stub: the code between clone() and execve(), in the order the kernel needs.
//! It depends on the plan only, runs single-threaded, and reports the first failure as one
//! line — over the sync socket before `start`, into the exec FIFO after it.

pub(crate) mod process;
pub mod user;

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::hooks::{self, HookError};
use crate::namespaces::{NsError, Phase};
use crate::rootfs::{self, RootfsError};
use crate::security::{self, SecurityError};
use crate::spec::{Personality, Plan, ProcessPlan, SeccompPlan};
use crate::sync::{Channel, ExpectError, Msg};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Ns(#[from] NsError),
    #[error(transparent)]
    Sync(#[from] ExpectError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Security(#[from] SecurityError),
    #[error(transparent)]
    Seccomp(#[from] crate::security::seccomp::SeccompError),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    #[error("{step}: {errno}")]
    Sys { step: String, errno: Errno },
    #[cfg(feature = "failpoints")]
    #[error(transparent)]
    Injected(#[from] crate::failpoints::Injected),
    #[error("{0}")]
    Msg(String),
}

/// What the parent hands the stub besides the plan (all inherited across the clone).
pub struct InitArgs<'a> {
    pub plan: &'a Plan,
    pub chan: Channel,
    pub fifo: PathBuf,
    pub console_socket: Option<RawFd>,
    pub cgroups: &'a crate::cgroups::Cgroups,
    pub preserve_fds: u32,
    /// Connected to linux.seccomp.listenerPath by the parent (the path is a host path).
    pub seccomp_socket: Option<RawFd>,
    /// Detached idmapped mount trees made by the parent: (mount index, fd).
    pub idmapped: Vec<(usize, OwnedFd)>,
}

/// What loading seccomp needs besides the compiled filter.
pub(crate) struct SeccompLoad<'a> {
    pub plan: &'a SeccompPlan,
    pub socket: Option<RawFd>,
    /// The OCI state of the container, for the listener agent.
    pub state: serde_json::Value,
    pub pid: i32,
}

/// Loads the filter; a NOTIFY listener goes to the agent with the container process state
/// (config-linux.md "containerProcessState").
pub(crate) fn load_seccomp(s: &SeccompLoad) -> Result<(), InitError> {
    let Some(listener) = crate::security::seccomp::load(&s.plan.compiled)? else {
        return Ok(());
    };
    let sock = s.socket.ok_or_else(|| {
        InitError::Msg("linux.seccomp.listenerPath: no connection to the agent".into())
    })?;
    let msg = serde_json::json!({
        "ociVersion": s.state["ociVersion"],
        "fds": ["seccompFd"],
        "pid": s.pid,
        "metadata": s.plan.listener_metadata,
        "state": s.state,
    });
    security::send_listener(sock, &listener, &msg)?;
    Ok(())
}

/// Entry point in the cloned child; never returns.
pub fn run(a: InitArgs) -> ! {
    // First of all, before any hook or image code can run: every fd the caller left open
    // without CLOEXEC (a host directory, a socket) would reach startContainer hooks or the
    // process (CVE-2024-21626). Only --preserve-fds pass on; berth's own fds (sync and
    // console sockets, the FIFO) are used here and need not survive an execve.
    let ready = match process::cloexec_fds_from(3 + a.preserve_fds).and_then(|()| before_start(&a))
    {
        Ok(r) => r,
        Err(e) => {
            let _ = a.chan.send(&Msg::Error { msg: e.to_string() });
            exit(1)
        }
    };
    drop(a.chan);
    #[cfg(feature = "failpoints")]
    if let Some(e) = crate::failpoints::eval("init::fifo") {
        eprintln!("berth init: {e}");
        exit(1)
    }
    // Blocks until `start` opens the FIFO for reading. Opened by name in berth's own state
    // dir (held open since before pivot_root or chroot), so the container needs no /proc.
    let fifo = nix::fcntl::openat(
        &ready.fifo_dir,
        ready.fifo_name.as_path(),
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    );
    let mut fifo = match fifo {
        Ok(f) => std::fs::File::from(f),
        Err(e) => {
            eprintln!("berth init: open exec fifo: {e}");
            exit(1)
        }
    };
    crate::logging::step("init: FIFO opened by start");
    if fifo.write_all(b"0").is_err() {
        exit(1)
    }
    let err = after_start(a.plan, &ready, a.preserve_fds, a.seccomp_socket);
    // `start` reads this after the "0": anything but EOF is a failure to report.
    let _ = fifo.write_all(err.to_string().as_bytes());
    exit(1)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and destructors that belong to the parent.
    unsafe { libc::_exit(code) }
}

struct Ready {
    /// The state dir and the FIFO's name in it.
    fifo_dir: OwnedFd,
    fifo_name: PathBuf,
    exe: CString,
    host_pid: i32,
}

fn state_json(plan: &Plan, pid: i32, status: &str) -> Vec<u8> {
    serde_json::to_vec(&plan.state(pid, status)).unwrap_or_default()
}

fn seccomp_load<'a>(plan: &'a Plan, socket: Option<RawFd>, pid: i32) -> Option<SeccompLoad<'a>> {
    plan.seccomp.as_ref().map(|s| SeccompLoad {
        plan: s,
        socket,
        state: plan.state(pid, "creating"),
        pid,
    })
}

/// Whether a no_new_privs filter with NOTIFY rules is loaded before the FIFO wait rather
/// than just before execve (without no_new_privs every filter is loaded early anyway).
fn notify_at_create(plan: &Plan) -> bool {
    plan.process.no_new_privileges
        && plan
            .seccomp
            .as_ref()
            .is_some_and(|s| s.compiled.has_notify())
}

/// A fresh session keyring for the container, so it cannot read or add to the keys of the
/// session that started it (as runc does unless --no-new-keyring).
fn join_session_keyring(id: &str) -> Result<(), InitError> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = std::ffi::CString::new(format!("_ses.{id}")).unwrap_or_default();
    // SAFETY: keyctl with a valid C string.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    match Errno::last() {
        _ if r >= 0 => Ok(()),
        // Kernels without keys, or a seccomp filter refusing keyctl: nothing to isolate.
        Errno::ENOSYS => Ok(()),
        errno => Err(InitError::Sys {
            step: "join a new session keyring".into(),
            errno,
        }),
    }
}

/// Whether the init must stop once its namespaces and mounts exist and let the parent work
/// on them (send `Hooks`, wait for `HooksDone`): for the create hooks, and for moving
/// `linux.netDevices` into the network namespace, which only exists from then on.
pub fn needs_parent_after_namespaces(plan: &Plan) -> bool {
    let h = &plan.hooks;
    !(h.prestart.is_empty()
        && h.create_runtime.is_empty()
        && h.create_container.is_empty()
        && plan.net_devices.is_empty())
}

/// Enters the namespaces of `phase`, and brings lo up in a new network namespace made then.
fn enter_namespaces(plan: &Plan, phase: Phase) -> Result<(), InitError> {
    crate::namespaces::child_enter(&plan.namespaces, phase)?;
    if plan.namespaces.new.contains(CloneFlags::CLONE_NEWNET) && phase != Phase::CgroupOnly {
        crate::netdev::loopback_up()
            .map_err(|e| InitError::Msg(format!("linux.namespaces: network: bring lo up: {e}")))?;
    }
    if phase == Phase::AllButCgroup {
        // A failure here is held until Go (before_start): faults.rs checks it still fails
        // create cleanly.
        crate::failpoint!("init::namespaces-early");
    }
    Ok(())
}

fn before_start(a: &InitArgs) -> Result<Ready, InitError> {
    let plan = a.plan;
    // Non-dumpable: processes in the container cannot open our /proc/<pid>/exe or fds. In
    // a new user namespace only once the parent has written our id maps (Go), as runc: a
    // non-dumpable task's /proc files belong to the host's root, which a rootless parent
    // is not.
    let newuser = plan.namespaces.new.contains(CloneFlags::CLONE_NEWUSER);
    if !newuser {
        let _ = nix::sys::prctl::set_dumpable(false);
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    // While the parent makes and joins the cgroups, the namespaces that do not depend on
    // them are made here. A failure is reported after Go, where the parent listens for it.
    let early = crate::namespaces::enter_early(&plan.namespaces);
    let made_early = if early {
        enter_namespaces(plan, Phase::AllButCgroup)
    } else {
        Ok(())
    };
    crate::logging::step("init: namespaces but cgroup entered (before Go)");
    let host_pid = match a.chan.expect("Go")? {
        Msg::Go { host_pid } => host_pid,
        other => return Err(InitError::Msg(format!("sync: expected Go, got {other:?}"))),
    };
    made_early?;
    if newuser {
        // Still dumpable, so our /proc files are our own: a rootless init could not write
        // oom_score_adj later (runc writes it this early too).
        if let Some(adj) = plan.process.oom_score_adj {
            process::oom_score_adj(adj)?;
        }
        let _ = nix::sys::prctl::set_dumpable(false);
    }
    crate::logging::step("init: Go received");
    enter_namespaces(plan, if early { Phase::CgroupOnly } else { Phase::All })?;
    crate::logging::step("init: namespaces entered");
    crate::failpoint!("init::namespaces");
    if !plan.no_new_keyring {
        join_session_keyring(&plan.id)?;
    }
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).map_err(|errno| InitError::Sys {
            step: format!("sethostname {h:?}"),
            errno,
        })?;
    }
    if let Some(d) = &plan.domainname {
        // SAFETY: setdomainname with a valid buffer and length.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } < 0 {
            return Err(InitError::Sys {
                step: format!("setdomainname {d:?}"),
                errno: Errno::last(),
            });
        }
    }
    if let Some(adj) = plan.process.oom_score_adj.filter(|_| !newuser) {
        process::oom_score_adj(adj)?;
    }
    // Opened before the container's mounts, which may hide the state directory's path:
    // a rootfs of "/" (a system container on the host's root) with a tmpfs on /tmp or /run.
    let fifo_dir = a.fifo.parent().unwrap_or(Path::new("/"));
    let fifo_dir = nix::fcntl::open(
        fifo_dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|errno| InitError::Sys {
        step: format!("open state dir {}", fifo_dir.display()),
        errno,
    })?;
    // Only a mount namespace berth created may be re-propagated, mounted in and pivoted;
    // otherwise the plan holds no mount change (spec::mounts::check_own_mount_ns).
    let own_mntns = plan.namespaces.new.contains(CloneFlags::CLONE_NEWNS);
    let root = if own_mntns {
        Some(rootfs::prepare(plan, a.cgroups, &a.idmapped)?)
    } else {
        None
    };
    crate::logging::step("init: mounts and devices done");
    let fifo_name = PathBuf::from(a.fifo.file_name().unwrap_or_default());
    if needs_parent_after_namespaces(plan) {
        a.chan.send(&Msg::Hooks).map_err(ExpectError::from)?;
        match a.chan.expect("HooksDone")? {
            Msg::HooksDone => {}
            other => {
                return Err(InitError::Msg(format!(
                    "sync: expected HooksDone, got {other:?}"
                )));
            }
        }
        // runc's createContainer hooks start in the container's root directory, before
        // the pivot: the init is there too.
        let _ = nix::unistd::chdir(&plan.rootfs);
        hooks::run_all_env(
            "createContainer",
            &plan.hooks.create_container,
            &state_json(plan, host_pid, "creating"),
            &plan.process.env,
        )?;
    }
    match root {
        Some(root) => rootfs::pivot(root, plan.no_pivot)?,
        None => rootfs::chroot_only(&plan.rootfs)?,
    }
    crate::logging::step("init: pivoted");
    crate::failpoint!("init::pivot");
    // As runc: a missing cwd is made (0755, root's) inside the root, before the root or
    // any path is made read-only; an image's WORKDIR need not exist.
    let mut mkdir = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(mkdir.recursive(true), 0o755);
    mkdir.create(&plan.process.cwd).map_err(|e| {
        InitError::Msg(format!(
            "process.cwd {}: create it in the container: {e}",
            plan.process.cwd.display()
        ))
    })?;
    if own_mntns {
        rootfs::finalize(plan)?;
        // As runc's finalizeRootfs: the host's /dev/null on stdio becomes the container's.
        crate::console::reopen_dev_null()?;
    }
    // The console before sysctls and masked/read-only paths, at runc's step (so its
    // /dev/console bind sits where runc's does in mountinfo).
    if plan.process.terminal {
        // The parent clears ONLCR of its own relay before `start` (no race there).
        rootfs::setup_console(a.console_socket, plan.process.console_size, true, false)?;
    } else {
        // A session of its own, as runc's init (nsexec's setsid): not its caller's, which
        // lies outside the container (CRIU refuses to dump such a session leader).
        nix::unistd::setsid().map_err(|e| InitError::Msg(format!("setsid: {e}")))?;
    }
    for (k, v) in &plan.sysctl {
        let path = Path::new("/proc/sys").join(k.replace('.', "/"));
        process::write_proc(&path, v)
            .map_err(|e| InitError::Msg(format!("sysctl {k}={v}: {e}")))?;
    }
    if own_mntns {
        rootfs::protect(plan)?;
    }
    crate::logging::step("init: sysctl, masked and read-only paths done");
    // Late, so the stub's own mounts and allocations are not bound by it; with the other
    // per-process attributes, before the user switch.
    if let Some(m) = &plan.memory_policy {
        process::memory_policy(m)?;
    }
    setup_process(
        &plan.process,
        plan.personality,
        plan.namespaces.has(CloneFlags::CLONE_NEWUSER),
        seccomp_load(plan, a.seccomp_socket, host_pid).as_ref(),
    )?;
    // A listener agent gets its fd during `create`, as runc hands it over: an agent may
    // wait for it before anyone calls `start`. Loaded here, the filter also covers the
    // FIFO wait, which is why NOTIFY on write is refused (compile).
    if notify_at_create(plan) {
        if let Some(s) = seccomp_load(plan, a.seccomp_socket, host_pid) {
            load_seccomp(&s)?;
        }
    }
    let exe = process::find_executable(&plan.process)?;
    crate::failpoint!("init::process");
    a.chan.send(&Msg::Ready).map_err(ExpectError::from)?;
    Ok(Ready {
        fifo_dir,
        fifo_name,
        exe,
        host_pid,
    })
}

/// Limits, scheduling, credentials, umask, cwd and NNP of the process to exec (shared by
/// the init stub and `exec`).
pub(crate) fn setup_process(
    p: &ProcessPlan,
    personality: Option<Personality>,
    userns: bool,
    seccomp: Option<&SeccompLoad>,
) -> Result<(), InitError> {
    // An on-exec transition: the profile confines the process from its execve on. Set
    // here, not at the execve, so a refusal fails `create` (as runc), and while the user
    // switch and seccomp cannot yet forbid the write.
    if let Some(profile) = &p.apparmor_profile {
        security::lsm::apply_apparmor(profile).map_err(|e| InitError::Msg(e.to_string()))?;
    }
    security::set_rlimits(&p.rlimits)?;
    if let Some(pers) = personality {
        process::personality(pers)?;
    }
    if let Some(io) = p.io_priority {
        process::io_priority(io)?;
    }
    if let Some(s) = p.scheduler {
        process::scheduler(s)?;
    }
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: load it while we
    // still have it. With no_new_privs it is loaded last, just before execve.
    if let Some(s) = seccomp.filter(|_| !p.no_new_privileges) {
        load_seccomp(s)?;
    }
    if p.terminal {
        // While we still may chown: the pty slave on stdio becomes the user's (as runc).
        crate::console::own_stdio(p.uid)?;
    }
    security::set_user_and_caps(p, userns)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        p.umask.unwrap_or(0o022),
    ));
    nix::unistd::chdir(&p.cwd).map_err(|errno| InitError::Sys {
        step: format!("chdir to cwd {}", p.cwd.display()),
        errno,
    })?;
    // A cwd reached through a leaked host fd (/proc/self/fd/N) lies outside the root;
    // getcwd then fails or says "(unreachable)" (CVE-2024-21626).
    match nix::unistd::getcwd() {
        Ok(c) if c.is_absolute() => {}
        _ => {
            return Err(InitError::Msg(format!(
                "process.cwd {}: outside the container's root filesystem",
                p.cwd.display()
            )));
        }
    }
    if p.no_new_privileges {
        security::set_no_new_privs()?;
    }
    Ok(())
}

fn after_start(
    plan: &Plan,
    r: &Ready,
    preserve_fds: u32,
    seccomp_socket: Option<RawFd>,
) -> InitError {
    // The process's environment as it will exec, HOME included (runc's init has it then).
    let env = process::exec_env(&plan.process);
    let hooked = (!plan.hooks.start_container.is_empty()).then(|| {
        hooks::run_all_env(
            "startContainer",
            &plan.hooks.start_container,
            &state_json(plan, r.host_pid, "created"),
            &env,
        )
    });
    if let Some(Err(e)) = hooked {
        return e.into();
    }
    if let Some(cpus) = &plan.process.cpu_affinity_final {
        if let Err(e) = process::cpu_affinity(0, cpus, "final") {
            return e;
        }
    }
    process::reset_signals();
    if let Err(e) = process::cloexec_fds_from(3 + preserve_fds) {
        return e;
    }
    if plan.process.no_new_privileges && !notify_at_create(plan) {
        if let Some(s) = seccomp_load(plan, seccomp_socket, r.host_pid) {
            if let Err(e) = load_seccomp(&s) {
                return e;
            }
        }
    }
    #[cfg(feature = "failpoints")]
    if let Some(e) = crate::failpoints::eval("init::execve") {
        return e.into();
    }
    crate::logging::step("init: execve");
    process::exec(&r.exe, &plan.process, &env)
}
