//! `checkpoint`: the container's process tree into CRIU images (runc's Checkpoint).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

use super::rpc::{self, CriuFeatures, CriuOpts, CriuPageServerInfo, CriuReq, CriuReqType};
use super::{Common, Error, mounts};
use crate::spec::{self, Plan, PlanOptions};
use crate::state::{self, ContainerDir, State, Status};

#[derive(Debug, Clone, Default)]
pub struct CheckpointOpts {
    pub common: Common,
    /// Relative to the image directory: the images of an earlier (pre-)dump.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
    /// ADDRESS:PORT of a CRIU page server.
    pub page_server: Option<String>,
    /// With --lazy-pages: an fd CRIU's readiness (a \0) is written to.
    pub status_fd: Option<i32>,
}

const LOG: &str = "dump.log";

pub fn checkpoint(root: &Path, id: &str, o: &CheckpointOpts) -> Result<(), Error> {
    let dir = ContainerDir::new(root, id)?;
    let _lock = dir.lock()?;
    let st = dir.load_locked()?;
    match state::status_locked(&dir, &st) {
        Status::Running | Status::Paused => {}
        s => {
            return Err(Error::Msg(format!(
                "container {id} cannot be checkpointed in {} state",
                s.as_str()
            )));
        }
    }
    let (images, parent) = image_paths(&o.common, o.parent_path.as_deref())?;
    let page_server = o.page_server.as_deref().map(page_server).transpose()?;
    let cg_mode = o.common.cg_mode()?;
    let empty_ns = o.common.empty_ns()?;
    // The config as create planned it: mounts, masked paths, devices, namespaces. Its
    // terminal is the running one's (the console socket was given at create).
    let spec = spec::load(&st.bundle)?;
    let opts = PlanOptions {
        console_socket: true,
        ..Default::default()
    };
    let plan = spec::plan(id, &st.bundle, &spec, &opts)?;
    let criu = &o.common.criu;
    super::check_criu(criu)?;
    if o.pre_dump || o.common.lazy_pages {
        let want = CriuFeatures {
            mem_track: o.pre_dump.then_some(true),
            lazy_pages: o.common.lazy_pages.then_some(true),
            ..Default::default()
        };
        let missing = rpc::missing_features(criu, &want)?;
        if !missing.is_empty() {
            return Err(Error::Msg(format!(
                "criu is missing features: {} (CRIU {}, kernel {})",
                missing.join(", "),
                criu.display(),
                kernel_release()
            )));
        }
    }
    let image_dir = super::open_dir(&images, true)?;
    let work_dir = o
        .common
        .work_path
        .as_deref()
        .map(|p| super::open_dir(p, true))
        .transpose()?;
    let log_dir = o.common.work_path.clone().unwrap_or_else(|| images.clone());
    let mut opts = base_opts(o, &st, &plan, image_dir.as_raw_fd(), work_dir.as_ref());
    opts.manage_cgroups_mode = Some(cg_mode as i32);
    opts.empty_ns = Some(empty_ns);
    opts.ps = page_server;
    if let Some(p) = &parent {
        opts.parent_img = Some(p.to_string_lossy().into_owned());
        opts.track_mem = Some(true);
    }
    // --status-fd: CRIU (3.15+) says "status-ready" and berth writes the \0, as runc does;
    // the fd is checked first.
    let status_fd = match o.status_fd.filter(|_| o.common.lazy_pages) {
        Some(fd) => Some(status_fd(fd)?),
        None => None,
    };
    external_namespaces(&plan, &mut opts)?;
    if !o.pre_dump {
        opts.ext_mnt = ext_mounts(&plan, &st)?;
        write_descriptors(&images, st.pid)?;
    }
    let kind = if o.pre_dump {
        CriuReqType::PreDump
    } else {
        CriuReqType::Dump
    };
    let req = CriuReq {
        r#type: kind as i32,
        opts: Some(opts),
        ..Default::default()
    };
    let session = rpc::Session {
        criu,
        extra_fds: &[],
        inherit_stdio: false,
    };
    let mut status_fd = status_fd;
    let ready = |n: rpc::Notify| {
        if n.script == "status-ready" {
            if let Some(f) = status_fd.take() {
                let _ = nix::unistd::write(&f, &[0]);
            }
        }
        Ok(())
    };
    rpc::call(&session, req, |_, _| Ok(()), ready)
        .map_err(|e| super::criu_failed("checkpoint", criu, &log_dir.join(LOG), e))?;
    if !(o.leave_running || o.pre_dump) {
        // CRIU killed the tree; the rest of the container goes as `delete` removes it.
        crate::container::remove(&dir, &st)?;
    }
    Ok(())
}

/// runc's dump options.
fn base_opts(
    o: &CheckpointOpts,
    st: &State,
    plan: &Plan,
    image_dir: i32,
    work_dir: Option<&std::fs::File>,
) -> CriuOpts {
    CriuOpts {
        images_dir_fd: image_dir,
        work_dir_fd: work_dir.map(|w| w.as_raw_fd()),
        log_level: Some(4),
        log_file: Some(LOG.into()),
        root: Some(st.rootfs.to_string_lossy().into_owned()),
        manage_cgroups: Some(true),
        notify_scripts: Some(true),
        pid: Some(st.pid),
        shell_job: Some(o.common.shell_job),
        leave_running: Some(o.leave_running),
        tcp_established: Some(o.common.tcp_established),
        ext_unix_sk: Some(o.common.ext_unix_sk),
        file_locks: Some(o.common.file_locks),
        orphan_pts_master: Some(true),
        auto_dedup: Some(o.common.auto_dedup),
        lazy_pages: Some(o.common.lazy_pages),
        config_file: super::config_file(&plan.annotations),
        freeze_cgroup: freezer(st),
        ..Default::default()
    }
}

/// The image directory (made when missing) and the parent images, which must be given
/// relative to it and exist (runc's rules).
fn image_paths(c: &Common, parent: Option<&Path>) -> Result<(PathBuf, Option<PathBuf>), Error> {
    let images = c.images()?;
    std::fs::create_dir_all(&images).map_err(super::io_err("create image directory", &images))?;
    let Some(parent) = parent.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok((images, None));
    };
    if parent.is_absolute() {
        return Err(Error::Msg(format!(
            "--parent-path {}: must be relative to the image path",
            parent.display()
        )));
    }
    let real = images.join(parent);
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok((images, Some(parent.to_path_buf()))),
        Ok(_) => Err(Error::Msg(format!(
            "invalid --parent-path: {}: not a directory",
            real.display()
        ))),
        Err(e) => Err(Error::Msg(format!(
            "invalid --parent-path: {}: {e}",
            real.display()
        ))),
    }
}

/// The --status-fd given to berth: open and writable, taken over (closed once used).
fn status_fd(fd: i32) -> Result<std::os::fd::OwnedFd, Error> {
    // SAFETY: F_GETFL on a number the caller gave; a closed one fails with EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(Error::Msg(format!(
            "invalid --status-fd {fd}: {}",
            std::io::Error::last_os_error()
        )));
    }
    if flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(Error::Msg(format!(
            "invalid --status-fd {fd}: not writable"
        )));
    }
    // SAFETY: the fd is open and given to berth to use and close.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

fn page_server(s: &str) -> Result<CriuPageServerInfo, Error> {
    let bad = || Error::Msg(format!("--page-server {s:?}: use ADDRESS:PORT"));
    let (addr, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let port: i32 = port.parse().map_err(|_| bad())?;
    if addr.is_empty() {
        return Err(bad());
    }
    Ok(CriuPageServerInfo {
        address: Some(addr.into()),
        port: Some(port),
        ..Default::default()
    })
}

/// The container's v1 freezer cgroup: CRIU freezes the tree there instead of by ptrace.
fn freezer(st: &State) -> Option<String> {
    let hs = crate::cgroups::hierarchies().ok()?;
    let h = hs
        .iter()
        .find(|h| !h.v2 && h.controllers.iter().any(|c| c == "freezer"))
        .or_else(|| hs.iter().find(|h| h.v2))?;
    st.cgroup_joined
        .iter()
        .find(|d| d.starts_with(&h.mount))
        .map(|d| d.to_string_lossy().into_owned())
}

/// A network or pid namespace the config joins by path stays outside the images:
/// `external net[INODE]:extRootNetNS`, given back by that key on restore.
fn external_namespaces(plan: &Plan, opts: &mut CriuOpts) -> Result<(), Error> {
    for (flag, fd, path) in &plan.namespaces.join {
        if *flag != CloneFlags::CLONE_NEWNET && *flag != CloneFlags::CLONE_NEWPID {
            continue;
        }
        let st = nix::sys::stat::fstat(fd)
            .map_err(|e| super::io_err("stat namespace", path)(e.into()))?;
        let name = super::ns_name(*flag).unwrap_or("net");
        opts.external.push(format!(
            "{name}[{}]:{}",
            st.st_ino,
            super::ext_ns_key(*flag)
        ));
    }
    Ok(())
}

fn ext_mounts(plan: &Plan, st: &State) -> Result<Vec<rpc::ExtMountMap>, Error> {
    let hs = crate::cgroups::hierarchies().unwrap_or_default();
    let ext = mounts::externals(plan, &hs, &st.cgroup_joined);
    // Masked files only: a masked directory is an empty tmpfs of the container's own.
    let mut masked = Vec::new();
    for p in &plan.masked_paths {
        let inside =
            PathBuf::from(format!("/proc/{}/root", st.pid)).join(crate::rootfs::paths::relative(p));
        match std::fs::metadata(&inside) {
            Ok(m) if !m.is_dir() => masked.push(p.clone()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(super::io_err("stat masked path", &inside)(e)),
        }
    }
    let devices: Vec<PathBuf> = plan.devices.iter().map(|d| d.path.clone()).collect();
    Ok(mounts::dump_map(&st.rootfs, &ext, &masked, &devices))
}

/// descriptors.json: what the init's stdio were (`pipe:[N]`, `/dev/null`, …), so restore
/// can hand new pipes in their place (runc writes the same file).
fn write_descriptors(images: &Path, pid: i32) -> Result<(), Error> {
    let fds: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let path = images.join(super::DESCRIPTORS);
    let data = serde_json::to_vec(&fds).unwrap_or_default();
    std::fs::write(&path, data).map_err(super::io_err("write", &path))
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_server_address() {
        let ps = page_server("10.0.0.1:27").unwrap();
        assert_eq!(ps.address.as_deref(), Some("10.0.0.1"));
        assert_eq!(ps.port, Some(27));
        assert!(page_server("nope").is_err());
        assert!(page_server(":27").is_err());
        assert!(page_server("h:port").is_err());
    }
}
