//! The mounts CRIU must not dump, and where they come from again on restore: every bind
//! mount of the config (its destination is the key), the container's own cgroup
//! directories bound under a v1 `cgroup` mount, masked files (/dev/null over them), and the
//! device nodes. runc maps the same set, so images move between the two runtimes.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::cgroups::Hierarchy;
use crate::rootfs::paths::{Kind, Root};
use crate::spec::{MountKind, Plan};

use super::rpc::ExtMountMap;

/// An external mount: where it is in the container, and the host path it binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    pub destination: PathBuf,
    pub source: PathBuf,
}

/// The config's bind mounts, and the container's cgroup directories bound under a v1
/// `cgroup` mount (one per v1 hierarchy it joined; none inside a cgroup namespace or on a
/// v2-only host, where the mount is a real cgroupfs CRIU restores itself).
pub fn externals(plan: &Plan, hierarchies: &[Hierarchy], joined: &[PathBuf]) -> Vec<External> {
    let cgroupns = plan.namespaces.has(nix::sched::CloneFlags::CLONE_NEWCGROUP);
    let mut out = Vec::new();
    for m in &plan.mounts {
        match &m.kind {
            MountKind::Bind => out.push(External {
                destination: m.destination.clone(),
                source: m.source.clone().unwrap_or_default(),
            }),
            MountKind::Fs(t) if t == "cgroup" && !cgroupns => {
                for h in hierarchies.iter().filter(|h| !h.v2) {
                    let Some(own) = joined.iter().find(|d| d.starts_with(&h.mount)) else {
                        continue;
                    };
                    let name = h.mount.file_name().map(PathBuf::from).unwrap_or_default();
                    out.push(External {
                        destination: m.destination.join(name),
                        source: own.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// A container path as the kernel resolves it inside `rootfs` (symlinks followed within
/// it), as CRIU sees the mount point; the path itself when it cannot be resolved.
pub fn resolved(rootfs: &Path, dest: &Path) -> String {
    let resolve = || -> Option<PathBuf> {
        let root = Root::open(rootfs).ok()?;
        let fd = root.open_in(dest, libc::O_PATH).ok()?;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        let real_root = std::fs::canonicalize(rootfs).ok()?;
        let inner = real.strip_prefix(&real_root).ok()?;
        Some(Path::new("/").join(inner))
    };
    resolve()
        .unwrap_or_else(|| dest.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn map(key: impl Into<String>, val: impl Into<String>) -> ExtMountMap {
    ExtMountMap {
        key: key.into(),
        val: val.into(),
    }
}

/// ext_mnt for a dump: each external is named by its destination; masked files (`masked`:
/// those that exist in the container and are not directories) by "/dev/null".
pub fn dump_map(
    rootfs: &Path,
    ext: &[External],
    masked: &[PathBuf],
    devices: &[PathBuf],
) -> Vec<ExtMountMap> {
    let mut out: Vec<ExtMountMap> = ext
        .iter()
        .map(|e| {
            let d = resolved(rootfs, &e.destination);
            map(d.clone(), d)
        })
        .collect();
    out.extend(masked.iter().map(|p| map(p.to_string_lossy(), "/dev/null")));
    out.extend(devices.iter().map(|p| {
        let d = resolved(rootfs, p);
        map(d.clone(), d)
    }));
    out
}

/// ext_mnt for a restore: each name a dump gave, and the host path that now backs it.
pub fn restore_map(
    rootfs: &Path,
    ext: &[External],
    any_masked: bool,
    devices: &[PathBuf],
) -> Vec<ExtMountMap> {
    let mut out: Vec<ExtMountMap> = ext
        .iter()
        .map(|e| map(resolved(rootfs, &e.destination), e.source.to_string_lossy()))
        .collect();
    if any_masked {
        out.push(map("/dev/null", "/dev/null"));
    }
    out.extend(devices.iter().map(|p| {
        let d = p.to_string_lossy();
        map(resolved(rootfs, p), d)
    }));
    out
}

/// Binds made on the rootfs so mount points inside bind mounts can be created, undone
/// when dropped (CRIU mounts the container's tree itself, from the images).
pub struct Prepared {
    binds: Vec<PathBuf>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        for p in self.binds.iter().rev() {
            let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn under_tmpfs(dest: &Path, tmpfs: &[&Path]) -> bool {
    tmpfs.iter().any(|t| dest != *t && dest.starts_with(t))
}

/// Makes the mount points of the config in the rootfs, as create would: a restore into a
/// fresh copy of the bundle finds them missing otherwise. Those on a tmpfs are left to
/// CRIU, which restores the tmpfs with its contents; bind sources are bound in place for
/// the time of the restore so that mount points inside them can be made too.
pub fn prepare(plan: &Plan) -> Result<Prepared, String> {
    let tmpfs: Vec<&Path> = plan
        .mounts
        .iter()
        .filter(|m| matches!(&m.kind, MountKind::Fs(t) if t == "tmpfs"))
        .map(|m| m.destination.as_path())
        .collect();
    let root = Root::open(&plan.rootfs)
        .map_err(|e| format!("open rootfs {}: {e}", plan.rootfs.display()))?;
    let mut done = Prepared { binds: Vec::new() };
    for m in &plan.mounts {
        if under_tmpfs(&m.destination, &tmpfs)
            || matches!(&m.kind, MountKind::Fs(t) if t == "cgroup" || t == "cgroup2")
        {
            continue;
        }
        let kind = match (&m.kind, &m.source) {
            (MountKind::Bind, Some(src)) if !src.is_dir() => Kind::File,
            _ => Kind::Dir,
        };
        let fd = root.ensure(&m.destination, kind).map_err(|e| {
            format!(
                "create mount point {} in {}: {e}",
                m.destination.display(),
                plan.rootfs.display()
            )
        })?;
        if let (MountKind::Bind, Some(src)) = (&m.kind, &m.source) {
            let target = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            nix::mount::mount(
                Some(src.as_path()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| format!("bind {} for the restore: {e}", src.display()))?;
            done.binds.push(
                plan.rootfs
                    .join(crate::rootfs::paths::relative(&m.destination)),
            );
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_children_are_left_to_criu() {
        let t = [Path::new("/tmp"), Path::new("/dev")];
        assert!(under_tmpfs(Path::new("/tmp/x"), &t));
        assert!(under_tmpfs(Path::new("/dev/shm"), &t));
        assert!(!under_tmpfs(Path::new("/tmp"), &t));
        assert!(!under_tmpfs(Path::new("/tmpx/y"), &t));
    }

    #[test]
    fn maps_pair_names_between_dump_and_restore() {
        let ext = [External {
            destination: "/data".into(),
            source: "/srv/data".into(),
        }];
        // A rootfs that does not exist: paths are taken as given.
        let rootfs = Path::new("/nonexistent-rootfs");
        let d = dump_map(rootfs, &ext, &["/proc/kcore".into()], &["/dev/null".into()]);
        let r = restore_map(rootfs, &ext, true, &["/dev/null".into()]);
        let pairs = |v: &[ExtMountMap]| {
            v.iter()
                .map(|m| (m.key.clone(), m.val.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pairs(&d),
            [
                ("/data".into(), "/data".into()),
                ("/proc/kcore".into(), "/dev/null".into()),
                ("/dev/null".into(), "/dev/null".into())
            ]
        );
        // Every value a dump wrote is a key on restore.
        for (_, name) in pairs(&d) {
            assert!(r.iter().any(|m| m.key == name), "{name}");
        }
        assert!(r.iter().any(|m| m.key == "/data" && m.val == "/srv/data"));
    }
}
