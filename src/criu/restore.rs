//! `restore`: a container made again from CRIU images (runc's Restore). CRIU creates the
//! namespaces and the process tree; berth gives it the cgroups, the external mounts and the
//! namespaces the config joins, runs the restore hooks, and records the container.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd::Pid;

use super::rpc::{self, CgroupRoot, CriuOpts, CriuReq, CriuReqType, InheritFd, JoinNamespace};
use super::{Common, Error, mounts};
use crate::cgroups::{self, Cgroups};
use crate::spec::{self, Plan, PlanOptions};
use crate::state::{ContainerDir, State};

#[derive(Debug, Clone, Default)]
pub struct RestoreOpts {
    pub common: Common,
    pub bundle: PathBuf,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_subreaper: bool,
    pub no_pivot: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

const LOG: &str = "restore.log";
/// Where the rootfs is bound for CRIU, in the state directory (runc's name).
const CRIU_ROOT: &str = "criu-root";
/// CRIU 3.16 fixed setting another LSM profile or mount context on restore.
const LSM_VERSION: i32 = 31600;

/// Undoes a partial restore when dropped while armed: the restored tree, the cgroups and
/// the state directory go, so a failed restore leaves nothing behind.
struct Teardown<'a> {
    dir: &'a ContainerDir,
    cgroups: Option<Cgroups>,
    pid: Option<i32>,
    armed: bool,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(cg) = &self.cgroups {
            cgroups::kill_all(&cg.joined, libc::SIGKILL);
        }
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroups {
            if let Err(e) = cg.destroy() {
                crate::logging::warn(&e.to_string());
            }
        }
        let root = self.dir.path.join(CRIU_ROOT);
        if !unmount_all(&root) {
            crate::logging::warn(&format!(
                "{} is still in use: the state directory is left in place",
                root.display()
            ));
            return;
        }
        let _ = self.dir.remove();
    }
}

/// The rootfs bound at `<state dir>/criu-root` for the time of the restore: CRIU needs its
/// root to be a mount point whose parent is not overmounted (runc does the same).
struct CriuRoot(PathBuf);

impl CriuRoot {
    fn bind(rootfs: &Path, at: PathBuf) -> Result<CriuRoot, Error> {
        std::fs::create_dir(&at).map_err(super::io_err("create", &at))?;
        let flags = nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC;
        if let Err(e) = nix::mount::mount(Some(rootfs), &at, None::<&str>, flags, None::<&str>) {
            let _ = std::fs::remove_dir(&at);
            return Err(super::io_err("bind the rootfs at", &at)(e.into()));
        }
        Ok(CriuRoot(at))
    }
}

impl Drop for CriuRoot {
    fn drop(&mut self) {
        unmount_all(&self.0);
    }
}

/// Detaches every mount stacked at `at` and removes the directory. Until this succeeds
/// the state directory must not be removed: a recursive removal would go on into the
/// bound rootfs.
fn unmount_all(at: &Path) -> bool {
    for _ in 0..64 {
        if nix::mount::umount2(at, nix::mount::MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
    match std::fs::remove_dir(at) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

pub fn restore(root: &Path, id: &str, o: &RestoreOpts) -> Result<i32, Error> {
    let dir = ContainerDir::new(root, id)?;
    let plan = load_plan(id, o)?;
    let input = Inputs::open(o)?;
    if dir.exists() {
        return Err(crate::state::StateError::Exists(id.to_string()).into());
    }
    let version = super::check_criu(&o.common.criu)?;
    if (o.lsm_profile.is_some() || o.lsm_mount_context.is_some()) && version < LSM_VERSION {
        return Err(Error::Msg(format!(
            "--lsm-profile and --lsm-mount-context need CRIU 3.16 or later (this one is {version})"
        )));
    }
    // Blocked before CRIU forks the tree, so nothing meant for it slips past the wait.
    let set = crate::attach::forwarded();
    let mut old = SigSet::empty();
    if !o.detach {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .map_err(|e| Error::Msg(format!("block signals: {e}")))?;
        if !o.no_subreaper {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        }
    }
    let lock = dir.create(root)?;
    let mut guard = Teardown {
        dir: &dir,
        cgroups: None,
        pid: None,
        armed: true,
    };
    let cg = make_cgroups(&plan, &dir, &mut guard)?;
    let pid = run_criu(&plan, o, &input, &dir, &cg, &mut guard)?;
    let (start_time, _) = crate::state::proc_start_time(pid)
        .ok_or_else(|| Error::Msg(format!("restore: the restored process {pid} is gone")))?;
    let st = record(&plan, pid, start_time, &cg);
    dir.save(&st)?;
    if let Some(pf) = &o.pid_file {
        crate::container::write_pid_file(pf, pid)?;
    }
    guard.armed = false;
    drop(guard);
    drop(lock);
    if o.detach {
        return Ok(0);
    }
    let pidfd = crate::pidfd::open(pid).map_err(|e| Error::Msg(format!("pidfd of {pid}: {e}")))?;
    let code = crate::attach::wait_forwarding(Pid::from_raw(pid), &pidfd, &set, None)?;
    crate::container::remove(&dir, &st)?;
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    Ok(code)
}

fn load_plan(id: &str, o: &RestoreOpts) -> Result<Plan, Error> {
    let bundle = absolute(&o.bundle)?;
    let spec = spec::load(&bundle)?;
    let opts = PlanOptions {
        no_pivot: o.no_pivot,
        no_new_keyring: false,
        console_socket: o.console_socket.is_some(),
        detached: o.detach,
    };
    Ok(spec::plan(id, &bundle, &spec, &opts)?)
}

/// What the restore reads and where CRIU writes, opened before anything is made.
struct Inputs {
    image_dir: File,
    work_dir: Option<File>,
    log: PathBuf,
    /// descriptors.json: the init's fds 0-2 at dump time.
    pipes: Vec<String>,
    cg_mode: rpc::CriuCgMode,
    empty_ns: u32,
}

impl Inputs {
    fn open(o: &RestoreOpts) -> Result<Inputs, Error> {
        let cg_mode = o.common.cg_mode()?;
        let empty_ns = o.common.empty_ns()?;
        let images = o.common.images()?;
        let image_dir = File::open(&images).map_err(super::io_err("--image-path", &images))?;
        let pipes = read_descriptors(&images)?;
        let work = o.common.work_path.as_deref();
        let work_dir = work.map(|p| super::open_dir(p, true)).transpose()?;
        let log = work.unwrap_or(&images).join(LOG);
        Ok(Inputs {
            image_dir,
            work_dir,
            log,
            pipes,
            cg_mode,
            empty_ns,
        })
    }
}

/// The container's cgroups, recorded before they are made (a berth killed meanwhile
/// leaves a state `delete` cleans up), with the config's resources.
fn make_cgroups(plan: &Plan, dir: &ContainerDir, guard: &mut Teardown) -> Result<Cgroups, Error> {
    let planned = Cgroups::planned(&plan.id, plan.cgroups_path.as_deref())?;
    planned.check_empty(plan.cgroups_path.as_deref())?;
    dir.save(&record(plan, 0, 0, &planned))?;
    let cg = planned.make()?;
    guard.cgroups = Some(cg.clone());
    if let Some(res) = &plan.resources {
        cgroups::apply(
            &cgroups::Controllers::from_parts(&cg.hierarchies, &cg.joined),
            res,
            false,
        )?;
    }
    Ok(cg)
}

/// runc's restore options.
fn criu_opts(plan: &Plan, o: &RestoreOpts, input: &Inputs, root: &Path) -> CriuOpts {
    let mut opts = CriuOpts {
        images_dir_fd: input.image_dir.as_raw_fd(),
        work_dir_fd: input.work_dir.as_ref().map(|w| w.as_raw_fd()),
        evasive_devices: Some(true),
        log_level: Some(4),
        log_file: Some(LOG.into()),
        rst_sibling: Some(true),
        root: Some(root.to_string_lossy().into_owned()),
        manage_cgroups: Some(true),
        manage_cgroups_mode: Some(input.cg_mode as i32),
        notify_scripts: Some(true),
        shell_job: Some(o.common.shell_job),
        ext_unix_sk: Some(o.common.ext_unix_sk),
        tcp_established: Some(o.common.tcp_established),
        file_locks: Some(o.common.file_locks),
        empty_ns: Some(input.empty_ns),
        orphan_pts_master: Some(true),
        auto_dedup: Some(o.common.auto_dedup),
        lazy_pages: Some(o.common.lazy_pages),
        lsm_profile: o.lsm_profile.clone(),
        lsm_mount_context: o.lsm_mount_context.clone(),
        config_file: super::config_file(&plan.annotations),
        ..Default::default()
    };
    // Pipes the init had on its stdio are handed over by the same name: ours, as CRIU
    // inherits berth's stdio.
    for (fd, key) in input.pipes.iter().enumerate() {
        if key.contains("pipe:") {
            opts.inherit_fd.push(InheritFd {
                key: key.clone(),
                fd: fd as i32,
            });
        }
    }
    opts
}

/// Has CRIU restore the tree; the restored init's pid (our child).
fn run_criu(
    plan: &Plan,
    o: &RestoreOpts,
    input: &Inputs,
    dir: &ContainerDir,
    cg: &Cgroups,
    guard: &mut Teardown,
) -> Result<i32, Error> {
    let criu_root = CriuRoot::bind(&plan.rootfs, dir.path.join(CRIU_ROOT))?;
    mounts::prepare(plan).map_err(|e| Error::Msg(format!("restore: {e}")))?;
    let mut opts = criu_opts(plan, o, input, &criu_root.0);
    let ns_fds = namespaces(plan, &mut opts)?;
    opts.ext_mnt = ext_mounts(plan, cg);
    let raw: Vec<RawFd> = ns_fds.iter().map(|f| f.as_raw_fd()).collect();
    let session = rpc::Session {
        criu: &o.common.criu,
        extra_fds: &raw,
        inherit_stdio: true,
    };
    let req = CriuReq {
        r#type: CriuReqType::Restore as i32,
        opts: Some(opts),
        ..Default::default()
    };
    let mut restored = 0;
    let result = rpc::call(
        &session,
        req,
        |pid, req| join_cgroups(cg, pid, req),
        |n| on_notify(plan, o, n, &mut restored),
    );
    // The tree is ours (restored as our child) from post-restore on, also if CRIU failed after.
    if restored > 0 {
        guard.pid = Some(restored);
    }
    let resp = result.map_err(|e| super::criu_failed("restore", &o.common.criu, &input.log, e))?;
    drop(criu_root);
    let pid = resp.restore.map(|r| r.pid).unwrap_or(restored);
    guard.pid = Some(pid);
    Ok(pid)
}

fn absolute(p: &Path) -> Result<PathBuf, Error> {
    if p.as_os_str().is_empty() {
        return std::env::current_dir().map_err(super::io_err("current directory", p));
    }
    std::path::absolute(p).map_err(super::io_err("bundle", p))
}

/// descriptors.json of the images: what the init's fds 0-2 were at dump time.
fn read_descriptors(images: &Path) -> Result<Vec<String>, Error> {
    let path = images.join(super::DESCRIPTORS);
    let data = std::fs::read(&path).map_err(|e| {
        Error::Msg(format!(
            "--image-path {}: no checkpoint there ({}: {e})",
            images.display(),
            super::DESCRIPTORS
        ))
    })?;
    serde_json::from_slice(&data).map_err(|e| {
        Error::Msg(format!(
            "{}: not runc's descriptor list: {e}",
            path.display()
        ))
    })
}

/// Namespaces the config joins by path: net and pid are handed to CRIU as the inherited
/// fds a dump named as external (fds 4, 5, … of CRIU); the others it joins itself.
fn namespaces(plan: &Plan, opts: &mut CriuOpts) -> Result<Vec<OwnedFd>, Error> {
    let mut fds = Vec::new();
    for (flag, fd, path) in &plan.namespaces.join {
        let name = super::ns_name(*flag).ok_or_else(|| {
            Error::Msg(format!("restore: unknown namespace at {}", path.display()))
        })?;
        match *flag {
            CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWPID => {
                let dup = fd
                    .try_clone()
                    .map_err(super::io_err("duplicate namespace fd", path))?;
                opts.inherit_fd.push(InheritFd {
                    key: super::ext_ns_key(*flag).into(),
                    fd: 4 + fds.len() as i32,
                });
                fds.push(dup);
            }
            CloneFlags::CLONE_NEWCGROUP => {
                return Err(Error::Msg(format!(
                    "restore: joining the cgroup namespace {} is not supported by CRIU",
                    path.display()
                )));
            }
            _ => opts.join_ns.push(JoinNamespace {
                ns: name.into(),
                ns_file: path.to_string_lossy().into_owned(),
                extra_opt: None,
            }),
        }
    }
    Ok(fds)
}

fn ext_mounts(plan: &Plan, cg: &Cgroups) -> Vec<rpc::ExtMountMap> {
    let ext = mounts::externals(plan, &cg.hierarchies, &cg.joined);
    let devices: Vec<PathBuf> = plan.devices.iter().map(|d| d.path.clone()).collect();
    mounts::restore_map(&plan.rootfs, &ext, !plan.masked_paths.is_empty(), &devices)
}

/// CRIU joins the container's cgroups before it forks the tree, and restores the tree's
/// cgroups relative to where it now is (cg_root per controller, from its /proc cgroup file).
fn join_cgroups(cg: &Cgroups, pid: i32, req: &mut CriuReq) -> Result<(), rpc::RpcError> {
    cg.add(pid)
        .map_err(|e| rpc::RpcError::Notify(format!("restore: {e}")))?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    if let Some(opts) = req.opts.as_mut() {
        opts.cg_root = cg_roots(&text);
    }
    Ok(())
}

/// /proc/PID/cgroup lines ("N:ctrl,ctrl:/path") as cg_root entries, one per controller;
/// the v2 line ("0::/path") without a controller.
fn cg_roots(text: &str) -> Vec<CgroupRoot> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            out.push(CgroupRoot {
                ctrl: None,
                path: path.into(),
            });
            continue;
        }
        for c in ctrls.split(',') {
            out.push(CgroupRoot {
                ctrl: Some(c.into()),
                path: path.into(),
            });
        }
    }
    out
}

fn on_notify(
    plan: &Plan,
    o: &RestoreOpts,
    n: rpc::Notify,
    restored: &mut i32,
) -> Result<(), rpc::RpcError> {
    let fail = |e: String| rpc::RpcError::Notify(e);
    match n.script.as_str() {
        // The namespaces exist, the tree is not yet running: runc runs prestart and
        // createRuntime here, with the pid of the restored init.
        "setup-namespaces" => {
            let st = serde_json::to_vec(&plan.state(n.pid, "creating")).unwrap_or_default();
            crate::hooks::run_all("prestart", &plan.hooks.prestart, &st)
                .map_err(|e| fail(e.to_string()))?;
            crate::hooks::run_all("createRuntime", &plan.hooks.create_runtime, &st)
                .map_err(|e| fail(e.to_string()))?;
        }
        "post-restore" => *restored = n.pid,
        // The container's terminal: its master end goes where create would send it.
        "orphan-pts-master" => {
            if let (Some(sock), Some(master)) = (&o.console_socket, n.fds.first()) {
                send_master(sock, master).map_err(|e| {
                    fail(format!(
                        "restore: send the pty master to {}: {e}",
                        sock.display()
                    ))
                })?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn send_master(path: &Path, master: &OwnedFd) -> std::io::Result<()> {
    let sock = UnixStream::connect(path)?;
    let fds = [master.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(b"orphan-pts-master")],
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// The state of the restored container: runc records the restore time as its creation.
fn record(plan: &Plan, pid: i32, start_time: u64, cg: &Cgroups) -> State {
    State {
        oci_version: plan.oci_version.clone(),
        id: plan.id.clone(),
        pid,
        start_time,
        bundle: plan.bundle.clone(),
        rootfs: plan.rootfs.clone(),
        created: crate::logging::rfc3339(SystemTime::now(), true),
        annotations: plan.annotations.clone(),
        cgroup_paths: cg.created.clone(),
        cgroup_joined: cg.joined.clone(),
        systemd_unit: cg.unit.clone(),
        poststart: plan.hooks.poststart.clone(),
        poststop: if pid > 0 {
            plan.hooks.poststop.clone()
        } else {
            Vec::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_roots_per_controller() {
        let r = cg_roots("12:cpu,cpuacct:/berth/a\n3:name=systemd:/berth/a\n0::/berth/a\n");
        let pairs: Vec<(Option<&str>, &str)> = r
            .iter()
            .map(|c| (c.ctrl.as_deref(), c.path.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                (Some("cpu"), "/berth/a"),
                (Some("cpuacct"), "/berth/a"),
                (Some("name=systemd"), "/berth/a"),
                (None, "/berth/a"),
            ]
        );
    }
}
