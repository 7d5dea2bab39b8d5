//! Lifecycle orchestration (runtime.md "Operations"): create, start, kill, delete, and
//! run = create + start + wait + delete.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::attach;
use crate::cgroups::{self, Cgroups};
use crate::hooks;
use crate::init::{self, InitArgs};
use crate::logging;
use crate::namespaces::{self, Forked, ParentNs};
pub use crate::poll::poll_readable;
use crate::spec::{self, Plan, PlanOptions};
use crate::state::{self, ContainerDir, State, Status};
use crate::sync::{Channel, ExpectError, Msg};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    #[error(transparent)]
    Ns(#[from] namespaces::NsError),
    #[error(transparent)]
    Sync(#[from] ExpectError),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error(transparent)]
    Netdev(#[from] crate::netdev::NetdevError),
    #[error(transparent)]
    Rootless(#[from] crate::rootless::RootlessError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// runc's wording: containerd's shim recognises "container not running" in a failed
    /// kill and treats it as "the process already finished".
    #[error("container not running: {0}")]
    NotRunning(String),
    #[cfg(feature = "failpoints")]
    #[error(transparent)]
    Injected(#[from] crate::failpoints::Injected),
    #[error("{0}")]
    Msg(String),
}

impl From<crate::sync::SyncError> for Error {
    fn from(e: crate::sync::SyncError) -> Self {
        Error::Sync(e.into())
    }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Default, Clone)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// Receives a pidfd of the init once it is created (runc 1.2's --pidfd-socket).
    pub pidfd_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `run` in the foreground keeps berth attached to the container.
    pub detached: bool,
    /// berth is its own console socket (interactive `run` of a terminal process).
    pub internal_console: bool,
}

/// A container berth has just created, still a child of this process.
pub struct Created {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub dir: ContainerDir,
    pub state: State,
    /// Our end of the internal console socket (interactive `run`).
    pub console: Option<UnixStream>,
    /// The container's lock, still held: `run` keeps it until the process has started.
    pub lock: Option<state::Lock>,
}

/// Undoes a partial create when dropped while armed: nothing may be left behind.
struct Teardown<'a> {
    dir: &'a ContainerDir,
    child: Option<Pid>,
    cgroups: Option<Cgroups>,
    poststop: Option<&'a Plan>,
    armed: bool,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.child {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cg) = &self.cgroups {
            if let Err(e) = cg.destroy() {
                logging::warn(&e.to_string());
            }
        }
        // A stopped container's state names no pid, as runc's.
        if let Some(plan) = self.poststop {
            let st = hook_state(plan, 0, Status::Stopped);
            hooks::run_all_warn("poststop", &plan.hooks.poststop, &st);
        }
        let _ = self.dir.remove();
    }
}

fn hook_state(plan: &Plan, pid: i32, status: Status) -> Vec<u8> {
    serde_json::to_vec(&plan.state(pid, status.as_str())).unwrap_or_default()
}

fn absolute(p: &Path) -> Result<PathBuf, Error> {
    if p.as_os_str().is_empty() {
        return std::env::current_dir().map_err(io_err("current directory", p));
    }
    std::path::absolute(p).map_err(io_err("bundle", p))
}

pub fn create(root: &Path, id: &str, opts: &CreateOpts) -> Result<Created, Error> {
    logging::step("create: start");
    // Before anything else: every container's side runs from a sealed copy (CVE-2019-5736).
    crate::security::sealed::ensure(&crate::security::sealed::spare_dir(root))
        .map_err(|e| Error::Msg(e.to_string()))?;
    logging::step("create: running sealed");
    let dir = ContainerDir::new(root, id)?;
    let bundle = absolute(&opts.bundle)?;
    let spec = spec::load(&bundle)?;
    let mut plan = spec::plan(
        id,
        &bundle,
        &spec,
        &PlanOptions {
            no_pivot: opts.no_pivot,
            no_new_keyring: opts.no_new_keyring,
            console_socket: opts.console_socket.is_some() || opts.internal_console,
            detached: opts.detached,
        },
    )?;
    logging::debug(|| {
        format!(
            "plan for {id}: {} mounts, namespaces {:?}",
            plan.mounts.len(),
            plan.namespaces.new
        )
    });
    if dir.exists() {
        return Err(state::StateError::Exists(id.to_string()).into());
    }
    crate::rootless::check_plan(&plan)?;
    // Socket activation (sd_listen_fds): fds 3.. meant for us go to the container's init.
    let mut preserve_fds = opts.preserve_fds;
    if let Some(n) = listen_fds() {
        plan.process
            .env
            .retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        plan.process.env.push(format!("LISTEN_FDS={n}"));
        plan.process.env.push("LISTEN_PID=1".to_string());
        preserve_fds = preserve_fds.max(n);
    }
    let mut console_rx = None;
    let console = match &opts.console_socket {
        Some(p) => Some(UnixStream::connect(p).map_err(io_err("connect to console socket", p))?),
        None if opts.internal_console && plan.process.terminal => {
            crate::console::have_a_terminal().map_err(|e| {
                Error::Msg(format!(
                    "config.json: process.terminal: no --console-socket and no terminal to \
                     relay the container's pty to (stdin, stdout and stderr are not \
                     terminals; /dev/tty: {e})"
                ))
            })?;
            let (rx, tx) =
                UnixStream::pair().map_err(io_err("console socketpair", Path::new("-")))?;
            console_rx = Some(rx);
            Some(tx)
        }
        None => None,
    };
    let seccomp_agent = match plan.seccomp.as_ref().and_then(|s| s.listener_path.as_ref()) {
        Some(p) => Some(UnixStream::connect(p).map_err(|e| {
            Error::Msg(format!(
                "config.json: linux.seccomp.listenerPath: connect {}: {e}",
                p.display()
            ))
        })?),
        None => None,
    };
    logging::step("create: config parsed and planned");
    let lock = dir.create(root)?;
    let mut guard = Teardown {
        dir: &dir,
        child: None,
        cgroups: None,
        poststop: None,
        armed: true,
    };
    crate::failpoint!("create::state-dir");
    state::make_fifo(&dir.fifo())?;
    logging::step("create: state dir and FIFO made");
    crate::failpoint!("create::fifo");
    // Recorded before they are made (pid 0 = no init yet): a berth killed from here on
    // leaves a state that names the cgroups, which `delete` then empties and removes.
    plan.cgroups_path = crate::rootless::cgroups_path(id, plan.cgroups_path.take());
    let (planned, skipped) =
        crate::rootless::usable_cgroups(Cgroups::planned(id, plan.cgroups_path.as_deref())?);
    // Before the state names these directories: a delete of this container would kill
    // whatever is in them.
    planned.check_empty(plan.cgroups_path.as_deref())?;
    planned.check_not_frozen(plan.cgroups_path.as_deref())?;
    logging::step("create: cgroups planned and checked");
    dir.save(&record(&plan, &bundle, 0, 0, &planned, false))?;
    logging::step("create: state.json with the planned cgroups written");
    crate::failpoint!("create::planned");
    // The init is cloned before the cgroups are made: it makes its namespaces meanwhile
    // (init::before_start) and enters nothing that depends on them before Go.
    let idmapped = crate::rootfs::idmap::prepare(&plan).map_err(|e| Error::Msg(e.to_string()))?;
    let (parent_chan, child_chan) = Channel::pair()?;
    let parent_ns = ParentNs::enter(&plan.namespaces)?;
    let (pid, pidfd) = match namespaces::clone_into(namespaces::clone_flags(&plan.namespaces))? {
        Forked::Child => {
            drop(parent_chan);
            // Only our copy of the fd: the lock stays with the parent until it exits.
            drop(lock);
            namespaces::spawn_init(&plan.namespaces, &child_chan);
            init::run(InitArgs {
                plan: &plan,
                chan: child_chan,
                fifo: dir.fifo(),
                console_socket: console.as_ref().map(|c| c.as_raw_fd()),
                cgroups: &planned,
                preserve_fds,
                seccomp_socket: seccomp_agent.as_ref().map(|c| c.as_raw_fd()),
                idmapped,
            })
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    logging::step("create: init cloned");
    guard.child = Some(pid);
    crate::failpoint!("create::clone");
    drop(child_chan);
    let (pid, pidfd) = namespaces::adopt_init(
        &plan.namespaces,
        (pid, pidfd),
        &parent_chan,
        &mut guard.child,
    )?;
    drop(console);
    drop(seccomp_agent);
    drop(idmapped);
    parent_ns.restore()?;
    if plan
        .namespaces
        .new
        .contains(nix::sched::CloneFlags::CLONE_NEWUSER)
    {
        crate::rootless::write_id_maps(pid, &plan.namespaces)?;
    }
    let cg = planned.make()?;
    logging::step("create: cgroups made");
    guard.cgroups = Some(cg.clone());
    crate::failpoint!("create::cgroup");
    // Under systemd the scope, and so its directory, exists only once the init is in it.
    if let Some(res) = plan.resources.as_ref().filter(|_| cg.unit.is_none()) {
        cgroups::apply(
            &cgroups::Controllers::from_parts(&cg.hierarchies, &cg.joined),
            &crate::rootless::resources(res),
            false,
        )
        .map_err(|e| crate::rootless::explain(e, &skipped))?;
    }
    logging::step("create: resources written");
    cg.enter_init(pid.as_raw(), plan.resources.as_ref())?;
    // After the join: attaching to a cpuset cgroup rewrites the affinity.
    initial_affinity(pid, plan.process.cpu_affinity_initial.as_deref())?;
    crate::failpoint!("create::go");
    logging::step("create: maps and cgroup join done, Go sent");
    parent_chan.send(&Msg::Go {
        host_pid: pid.as_raw(),
    })?;
    loop {
        match parent_chan.expect("Ready")? {
            Msg::Ready => break,
            Msg::Hooks => {
                // Armed first: a failure from here on (a device move too) still runs poststop.
                guard.poststop = Some(&plan);
                // The network namespace exists from here on, and the devices belong in it
                // before any hook looks at it.
                crate::netdev::move_all(&plan.net_devices, pid.as_raw())?;
                let st = hook_state(&plan, pid.as_raw(), Status::Creating);
                hooks::run_all("prestart", &plan.hooks.prestart, &st)?;
                hooks::run_all("createRuntime", &plan.hooks.create_runtime, &st)?;
                parent_chan.send(&Msg::HooksDone)?;
            }
            other => return Err(Error::Msg(format!("sync: unexpected {other:?} from init"))),
        }
    }
    let (start_time, _) = state::proc_start_time(pid.as_raw())
        .ok_or_else(|| Error::Msg("container init exited during create".into()))?;
    let st = record(&plan, &bundle, pid.as_raw(), start_time, &cg, true);
    logging::step("create: init ready");
    crate::failpoint!("create::ready");
    dir.save(&st)?;
    crate::failpoint!("create::saved");
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid.as_raw())?;
    }
    if let Some(sock) = &opts.pidfd_socket {
        send_pidfd(sock, pid.as_raw())?;
    }
    guard.armed = false;
    drop(guard);
    Ok(Created {
        pid,
        pidfd,
        dir,
        state: st,
        console: console_rx,
        lock: Some(lock),
    })
}

/// The state to record: before the init exists (pid 0, no hooks: a create that dies then
/// has run none) and once it is ready.
fn record(
    plan: &Plan,
    bundle: &Path,
    pid: i32,
    start_time: u64,
    cg: &Cgroups,
    hooks: bool,
) -> State {
    State {
        oci_version: plan.oci_version.clone(),
        id: plan.id.clone(),
        pid,
        start_time,
        bundle: bundle.to_path_buf(),
        rootfs: plan.rootfs.clone(),
        created: logging::rfc3339(SystemTime::now(), true),
        annotations: plan.annotations.clone(),
        cgroup_paths: cg.created.clone(),
        cgroup_joined: cg.joined.clone(),
        systemd_unit: cg.unit.clone(),
        poststart: if hooks {
            plan.hooks.poststart.clone()
        } else {
            Vec::new()
        },
        poststop: if hooks {
            plan.hooks.poststop.clone()
        } else {
            Vec::new()
        },
    }
}

/// The new process's affinity before it runs anything: execCPUAffinity.initial, or else
/// every CPU, as runc 1.2+ resets it: a runtime started pinned (a shim, a systemd unit with
/// CPUAffinity=) must not pass its pinning on. The kernel keeps it within the cgroup's
/// cpuset either way.
pub(crate) fn initial_affinity(pid: Pid, cpus: Option<&[usize]>) -> Result<(), Error> {
    match cpus {
        Some(cpus) => set_affinity(pid, cpus),
        None => {
            let mut all = nix::sched::CpuSet::new();
            for c in 0..nix::sched::CpuSet::count() {
                let _ = all.set(c);
            }
            nix::sched::sched_setaffinity(pid, &all)
                .map_err(|e| Error::Msg(format!("reset the CPU affinity of pid {pid}: {e}")))
        }
    }
}

fn set_affinity(pid: Pid, cpus: &[usize]) -> Result<(), Error> {
    let mut set = nix::sched::CpuSet::new();
    for c in cpus {
        set.set(*c)
            .map_err(|e| Error::Msg(format!("execCPUAffinity.initial: cpu {c}: {e}")))?;
    }
    nix::sched::sched_setaffinity(pid, &set).map_err(|e| {
        Error::Msg(format!(
            "execCPUAffinity.initial: sched_setaffinity {cpus:?}: {e}"
        ))
    })
}

/// LISTEN_FDS passed to this very process (LISTEN_PID is ours), as sd_listen_fds(3) reads it.
fn listen_fds() -> Option<u32> {
    let n: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    (n > 0 && pid == std::process::id()).then_some(n)
}

/// `--pidfd-socket`: the pidfd of `pid` sent to the socket (see `pidfd::send`).
pub(crate) fn send_pidfd(path: &Path, pid: i32) -> Result<(), Error> {
    crate::pidfd::send(path, pid).map_err(io_err("send a pidfd to --pidfd-socket", path))
}

/// Written to a temporary name and renamed, so a reader never sees a partial pid.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    let path = std::path::absolute(path).map_err(io_err("pid file", path))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).map_err(io_err("write pid file", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err("write pid file", &path))
}

/// Opens a pidfd for the container's init, verifying it is still the same process.
pub fn pidfd_for(st: &State) -> Option<OwnedFd> {
    let fd = crate::pidfd::open(st.pid).ok()?;
    // Checked after opening: if the pid was reused before pidfd_open, the start time differs.
    state::is_alive(st).then_some(fd)
}

pub fn start(root: &Path, id: &str) -> Result<(), Error> {
    let dir = ContainerDir::new(root, id)?;
    let _lock = dir.lock()?;
    let st = dir.load_locked()?;
    logging::step("start: state read");
    crate::failpoint!("start::locked");
    match state::status_locked(&dir, &st) {
        Status::Created => start_created(&dir, &st),
        s => Err(Error::Msg(format!(
            "cannot start container {id}: it is {}",
            s.as_str()
        ))),
    }
}

/// Opens the exec FIFO: the init stub's blocked open returns, it writes "0", runs the
/// startContainer hooks and execs; the FIFO closes on exec (EOF = success) or carries
/// the init's error message.
fn start_created(dir: &ContainerDir, st: &State) -> Result<(), Error> {
    let fifo_path = dir.fifo();
    let pidfd = pidfd_for(st).ok_or_else(|| {
        Error::Msg(format!(
            "cannot start container {}: its init process is gone",
            st.id
        ))
    })?;
    let mut fifo = state::open_cloexec(&fifo_path, libc::O_NONBLOCK)
        .map_err(io_err("open exec fifo", &fifo_path))?;
    logging::step("start: FIFO opened");
    let mut got = Vec::new();
    loop {
        let ready = poll_readable(&[fifo.as_fd(), pidfd.as_fd()], -1);
        let mut eof = false;
        let mut buf = [0u8; 4096];
        loop {
            match fifo.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(io_err("read exec fifo", &fifo_path)(e)),
            }
        }
        // Done when the init wrote and closed (exec'd or failed), or when it died.
        if (eof && ready == Some(0)) || ready == Some(1) {
            break;
        }
    }
    logging::step("start: exec confirmed by the FIFO");
    let _ = std::fs::remove_file(&fifo_path);
    crate::failpoint!("start::exec");
    match got.split_first() {
        Some((b'0', [])) => {}
        Some((b'0', msg)) => return Err(Error::Msg(String::from_utf8_lossy(msg).into_owned())),
        _ => {
            return Err(Error::Msg(format!(
                "container {} init exited before start",
                st.id
            )));
        }
    }
    if !st.poststart.is_empty() {
        let state = state::hook_state(&st.id, "running", st.pid, &st.bundle, &st.annotations);
        let state = serde_json::to_vec(&state).unwrap_or_default();
        // runtime-spec 1.3.0, as runc: a failed poststart hook is an error; the container
        // is stopped and its lifecycle continues at delete.
        if let Err(e) = hooks::run_all("poststart", &st.poststart, &state) {
            stop(st);
            return Err(e.into());
        }
    }
    Ok(())
}

pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<(), Error> {
    let dir = ContainerDir::new(root, id)?;
    let st = dir.load()?;
    // Without cgroups (rootless on v1) only the init can be signalled, as by newer runc.
    if all && !st.cgroup_joined.is_empty() {
        // Also after the init exited, as runc: containerd's shim sends `kill --all KILL`
        // when the init of a container sharing its pod's pid namespace has exited, to
        // reap what it left in the cgroup. The cgroup holds only the container's processes.
        cgroups::kill_all(&st.cgroup_joined, sig);
        return Ok(());
    }
    let status = state::status(&dir, &st);
    if status == Status::Stopped {
        return Err(Error::NotRunning(id.to_string()));
    }
    // SIGKILL to an init that is not pid 1 of its own pid namespace takes nothing else
    // with it (pid_namespaces(7)): the whole cgroup goes, as runc does.
    if sig == libc::SIGKILL && !crate::pidfd::is_namespace_init(st.pid) {
        cgroups::kill_all(&st.cgroup_joined, sig);
        return Ok(());
    }
    let pidfd = pidfd_for(&st).ok_or_else(|| Error::NotRunning(id.to_string()))?;
    match crate::pidfd::send_signal(&pidfd, sig) {
        Ok(()) => {}
        // It exited between the status check and the signal: a race with its own exit.
        Err(nix::Error::ESRCH) => return Err(Error::NotRunning(id.to_string())),
        Err(e) => {
            return Err(Error::Msg(format!(
                "kill container {id} with signal {sig}: {e}"
            )));
        }
    }
    // A frozen task takes SIGKILL only once thawed (cgroup v1): thaw for SIGKILL alone,
    // as runc, so `podman kill` / `ctr task kill -9` of a paused container end it.
    if status == Status::Paused && sig == libc::SIGKILL {
        cgroups::set_frozen(&st.cgroup_joined, false)?;
    }
    Ok(())
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), Error> {
    let dir = ContainerDir::new(root, id)?;
    if !dir.exists() {
        // Engines (containerd's shim, conmon) delete --force a container that is already
        // gone; runc answers that with success, so do we.
        if force {
            return Ok(());
        }
        return Err(state::StateError::NotFound(id.to_string()).into());
    }
    let _lock = match dir.lock() {
        Ok(l) => l,
        // Removed by the delete we waited for.
        Err(state::StateError::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    crate::failpoint!("delete::locked");
    let st = match dir.load_locked() {
        Ok(st) => st,
        // A create killed before it wrote state.json left only the directory (and at most
        // the FIFO: its cgroups come after the first state.json).
        Err(state::StateError::NotFound(_)) => {
            dir.remove()?;
            return Ok(());
        }
        Err(e) if force => {
            logging::warn(&format!("{e}; removing the container directory anyway"));
            dir.remove()?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    match state::status_locked(&dir, &st) {
        // pid 0: a create that died before its init existed; its init may exist after all
        // (killed between clone and the second state.json), so its cgroups are emptied.
        _ if st.pid == 0 => {}
        Status::Stopped => {}
        // runc deletes a created (never started) container without --force; engines rely on it.
        Status::Created => stop(&st),
        _ if force => stop(&st),
        s => {
            return Err(Error::Msg(format!(
                "cannot delete container {id} that is {} (stop it first or use --force)",
                s.as_str()
            )));
        }
    }
    crate::failpoint!("delete::stopped");
    logging::step("delete: state read, stopped");
    destroy(&dir, &st)
}

/// Stops what is left of a container and removes it as `delete --force` does: after a
/// checkpoint that ends it, and when a foreground restore's process has exited.
pub(crate) fn remove(dir: &ContainerDir, st: &State) -> Result<(), Error> {
    stop(st);
    destroy(dir, st)
}

/// SIGKILLs the init (thawing first) and waits until it has exited.
fn stop(st: &State) {
    let Some(pidfd) = pidfd_for(st) else { return };
    cgroups::kill_all(&st.cgroup_joined, libc::SIGKILL);
    let _ = crate::pidfd::send_signal(&pidfd, libc::SIGKILL);
    poll_readable(&[pidfd.as_fd()], 10_000);
}

fn destroy(dir: &ContainerDir, st: &State) -> Result<(), Error> {
    let cg = Cgroups {
        joined: st.cgroup_joined.clone(),
        created: st.cgroup_paths.clone(),
        hierarchies: Vec::new(),
        unit: st.systemd_unit.clone(),
    };
    let cg_result = cg.destroy();
    logging::step("delete: cgroups removed");
    crate::failpoint!("delete::cgroup");
    if !st.poststop.is_empty() {
        let state = state::hook_state(&st.id, "stopped", 0, &st.bundle, &st.annotations);
        let state = serde_json::to_vec(&state).unwrap_or_default();
        hooks::run_all_warn("poststop", &st.poststop, &state);
    }
    dir.remove()?;
    logging::step("delete: state dir removed");
    cg_result.map_err(Error::from)
}

pub fn state(root: &Path, id: &str) -> Result<serde_json::Value, Error> {
    let dir = ContainerDir::new(root, id)?;
    let st = dir.load()?;
    Ok(state::oci_state_json(&st, state::status(&dir, &st)))
}

pub struct RunOpts {
    pub create: CreateOpts,
    pub detach: bool,
    pub keep: bool,
}

/// create + start, then (unless detached) wait forwarding signals, delete, and return the
/// container's exit code (128+N when killed by signal N).
pub fn run(root: &Path, id: &str, opts: &RunOpts) -> Result<i32, Error> {
    // Block before clone so no signal (and no SIGCHLD) can slip between clone and the wait.
    let set = attach::forwarded();
    let mut old = SigSet::empty();
    if !opts.detach {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .map_err(|e| Error::Msg(format!("block signals: {e}")))?;
    }
    let mut c = create(root, id, &opts.create)?;
    // The init sent the pty master during create: take it (and clear ONLCR) before the
    // process starts, so not even its first line gets a "\r".
    let master = match c.console.as_ref().map(attach::recv_master).transpose() {
        Ok(m) => m,
        Err(e) => {
            stop(&c.state);
            let _ = waitpid(c.pid, None);
            let _ = destroy(&c.dir, &c.state);
            return Err(e);
        }
    };
    let started = start_created(&c.dir, &c.state);
    // Released before the wait: other verbs (pause, update, delete --force) may act now.
    c.lock = None;
    if let Err(e) = started {
        stop(&c.state);
        let _ = waitpid(c.pid, None);
        let _ = destroy(&c.dir, &c.state);
        return Err(e);
    }
    if opts.detach {
        return Ok(0);
    }
    let code = attach::wait_relaying(c.pid, &c.pidfd, &set, master)?;
    if !opts.keep {
        destroy(&c.dir, &c.state)?;
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    Ok(code)
}
