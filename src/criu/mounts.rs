//! The mounts CRIU must not dump, and where they come from again on restore: every bind
//! mount of the config (its destination is the key), the container's own cgroup
//! directories bound under a v1 `cgroup` mount, masked files (/dev/null over them), and the
//! device nodes. runc maps the same set, so images move between the two runtimes.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

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

fn under_tmpfs(dest: &Path, tmpfs: &[&Path]) -> bool {
    tmpfs.iter().any(|t| dest != *t && dest.starts_with(t))
}

/// Where a mount point has to be made: inside the innermost bind mount of the config
/// that covers it, made in that bind's source directory (a container path below it);
/// otherwise in the rootfs.
fn home<'a>(dest: &Path, binds: &'a [(PathBuf, PathBuf)]) -> Option<(&'a Path, PathBuf)> {
    binds
        .iter()
        .filter(|(d, _)| dest != d && dest.starts_with(d))
        .max_by_key(|(d, _)| d.components().count())
        .map(|(d, src)| {
            let rest = dest.strip_prefix(d).unwrap_or(dest);
            (src.as_path(), Path::new("/").join(rest))
        })
}

/// Makes the mount points of the config, as create would: a restore into a fresh copy of
/// the bundle finds them missing otherwise. Those on a tmpfs are left to CRIU, which
/// restores the tmpfs with its contents; those inside a bind mount are made in its source
/// (runc binds the source in place for that; making them there directly leaves no mount
/// on a rootfs other containers may share).
pub fn prepare(plan: &Plan) -> Result<(), String> {
    let tmpfs: Vec<&Path> = plan
        .mounts
        .iter()
        .filter(|m| matches!(&m.kind, MountKind::Fs(t) if t == "tmpfs"))
        .map(|m| m.destination.as_path())
        .collect();
    let mut binds: Vec<(PathBuf, PathBuf)> = Vec::new();
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
        let (base, inner) = match home(&m.destination, &binds) {
            Some((src, inner)) => (src.to_path_buf(), inner),
            None => (plan.rootfs.clone(), m.destination.clone()),
        };
        let root = Root::open(&base).map_err(|e| format!("open {}: {e}", base.display()))?;
        root.ensure(&inner, kind).map_err(|e| {
            format!(
                "create mount point {} in {}: {e}",
                m.destination.display(),
                base.display()
            )
        })?;
        if let (MountKind::Bind, Some(src), Kind::Dir) = (&m.kind, &m.source, kind) {
            binds.push((m.destination.clone(), src.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_inside_binds_go_to_their_sources() {
        let binds = [
            (PathBuf::from("/data"), PathBuf::from("/srv/data")),
            (PathBuf::from("/data/sub"), PathBuf::from("/srv/sub")),
        ];
        let (src, inner) = home(Path::new("/data/sub/x"), &binds).unwrap();
        assert_eq!(
            (src, inner.as_path()),
            (Path::new("/srv/sub"), Path::new("/x"))
        );
        let (src, inner) = home(Path::new("/data/y"), &binds).unwrap();
        assert_eq!(
            (src, inner.as_path()),
            (Path::new("/srv/data"), Path::new("/y"))
        );
        assert!(home(Path::new("/data"), &binds).is_none());
        assert!(home(Path::new("/other"), &binds).is_none());
    }

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
