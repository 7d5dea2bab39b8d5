//! `mounts` of config.json → [`MountPlan`]s.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Spec;

use super::{
    Host, IdMap, MountKind, MountPlan, Namespaces, SpecError, container_path, invalid, mountopts,
};

/// Filesystem types berth knows how to mount without asking the kernel first.
pub(super) const KNOWN_FS: &[&str] = &[
    "proc",
    "sysfs",
    "tmpfs",
    "devpts",
    "mqueue",
    "cgroup",
    "cgroup2",
    "overlay",
    "ramfs",
    "securityfs",
    "debugfs",
    "tracefs",
    "fusectl",
    "binfmt_misc",
    "hugetlbfs",
    "bpf",
    "configfs",
];

pub(super) fn fs_supported(fstype: &str) -> bool {
    KNOWN_FS.contains(&fstype)
        || std::fs::read_to_string("/proc/filesystems").is_ok_and(|s| {
            s.lines()
                .any(|l| l.split_whitespace().last() == Some(fstype))
        })
}

pub(super) fn mounts(
    host: &dyn Host,
    spec: &Spec,
    bundle: &Path,
    ns: &Namespaces,
) -> Result<Vec<MountPlan>, SpecError> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{i}]");
        let destination = destination(&field, m.destination())?;
        if destination
            .components()
            .all(|c| c == Component::RootDir || c == Component::CurDir)
        {
            return Err(invalid(
                format!("{field}.destination"),
                "cannot mount over the container's root (that is root.path)",
            ));
        }
        let mut options = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
        let typ = m.typ().as_deref().unwrap_or("");
        if typ == "devpts" {
            drop_unmapped_devpts_gid(&mut options.data, ns, &field);
        }
        let is_bind = options.bind || typ == "bind";
        let kind = if is_bind {
            if !options.data.is_empty() {
                // runc hands these to mount(2) with MS_BIND, which ignores data: engines
                // that add `mode=` or similar to a bind get a plain bind from runc.
                crate::logging::warn_quiet(&format!(
                    "{field}.options: {} ignored on a bind mount",
                    options.data_string()
                ));
            }
            MountKind::Bind
        } else if typ.is_empty() || typ == "none" {
            return Err(invalid(
                format!("{field}.type"),
                "missing (and not a bind mount)",
            ));
        } else if !host.fs_supported(typ) {
            return Err(invalid(
                format!("{field}.type"),
                format!("unknown filesystem type {typ:?}"),
            ));
        } else {
            MountKind::Fs(typ.to_string())
        };
        let source = match (&kind, m.source()) {
            (MountKind::Bind, None) => {
                return Err(invalid(
                    format!("{field}.source"),
                    "a bind mount needs a source",
                ));
            }
            (MountKind::Bind, Some(s)) if s.is_relative() => Some(bundle.join(s)),
            (_, s) => s.clone(),
        };
        if options.tmpcopyup && kind != MountKind::Fs("tmpfs".into()) {
            return Err(invalid(
                format!("{field}.options"),
                "tmpcopyup is only for tmpfs mounts",
            ));
        }
        let idmap = if m.uid_mappings().is_some() || m.gid_mappings().is_some() || options.idmap {
            if kind != MountKind::Bind {
                return Err(invalid(
                    format!("{field}.options"),
                    "idmapped mounts must be bind mounts",
                ));
            }
            let conv = |l: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMap> {
                l.iter()
                    .flatten()
                    .map(|x| IdMap {
                        container_id: x.container_id(),
                        host_id: x.host_id(),
                        size: x.size(),
                    })
                    .collect()
            };
            // Without its own mappings, an idmapped mount uses the container's.
            let (mut u, mut g) = (conv(m.uid_mappings()), conv(m.gid_mappings()));
            if u.is_empty() {
                u = ns.uid_mappings.clone();
            }
            if g.is_empty() {
                g = ns.gid_mappings.clone();
            }
            if u.is_empty() || g.is_empty() {
                return Err(invalid(
                    format!("{field}.uidMappings"),
                    "an idmapped mount needs uid and gid mappings (its own or the container's user namespace's)",
                ));
            }
            Some((u, g))
        } else {
            None
        };
        out.push(MountPlan {
            index: i,
            destination,
            source,
            kind,
            options,
            idmap,
        });
    }
    Ok(out)
}

/// devpts refuses (EINVAL) a `gid=` that the container's user namespace does not map,
/// which happens with a joined namespace mapping only root (`unshare --map-root-user`): the
/// option is dropped with a warning, as runc does for rootless containers, so ptys get the
/// creating process's gid instead.
fn drop_unmapped_devpts_gid(data: &mut Vec<String>, ns: &Namespaces, field: &str) {
    let user = nix::sched::CloneFlags::CLONE_NEWUSER;
    if !ns.new.contains(user) && !ns.joins(user) {
        return;
    }
    data.retain(|d| {
        let Some(Ok(gid)) = d.strip_prefix("gid=").map(str::parse::<u32>) else {
            return true;
        };
        let mapped = (ns.gid_mappings.iter())
            .any(|m| gid >= m.container_id && gid - m.container_id < m.size);
        if !mapped {
            crate::logging::warn(&format!(
                "{field}.options: {d} dropped: gid {gid} is not mapped in the user namespace"
            ));
        }
        mapped
    });
}

/// A mount destination as a container path. A relative one is taken relative to `/`, as
/// runc does, with a warning (runc warns that support will go).
fn destination(field: &str, d: &Path) -> Result<PathBuf, SpecError> {
    let field = format!("{field}.destination");
    // An empty destination is no path at all: refused as not absolute.
    if d.is_absolute() || d.as_os_str().is_empty() {
        return container_path(&field, d);
    }
    crate::logging::warn(&format!(
        "{field}: {d:?} is relative; it is taken relative to the container's /"
    ));
    container_path(&field, &Path::new("/").join(d))
}

/// Without a mount namespace of its own (none asked for, or one joined by `path`), berth
/// must not touch mounts: bind, pivot, unmount or re-propagate would act on a namespace it
/// did not create — the caller's, or another container's. Such a container is only
/// chrooted into its rootfs as the image has it, so a config that needs any mount change
/// (or the /dev nodes and /dev/console berth would make) is refused here, naming the field.
pub(super) fn check_own_mount_ns(plan: &super::Plan) -> Result<(), SpecError> {
    if plan
        .namespaces
        .new
        .contains(nix::sched::CloneFlags::CLONE_NEWNS)
    {
        return Ok(());
    }
    let needs: Vec<&str> = [
        (!plan.mounts.is_empty(), "mounts"),
        (!plan.masked_paths.is_empty(), "linux.maskedPaths"),
        (!plan.readonly_paths.is_empty(), "linux.readonlyPaths"),
        (plan.readonly_root, "root.readonly"),
        (plan.rootfs_propagation.is_some(), "linux.rootfsPropagation"),
        (!plan.devices.is_empty(), "linux.devices"),
        (plan.process.terminal, "process.terminal"),
    ]
    .into_iter()
    .filter_map(|(on, field)| on.then_some(field))
    .collect();
    if needs.is_empty() {
        return Ok(());
    }
    let how = if plan.namespaces.joins(nix::sched::CloneFlags::CLONE_NEWNS) {
        "the mount namespace is joined by path"
    } else {
        "there is no mount namespace entry"
    };
    Err(invalid(
        "linux.namespaces",
        format!(
            "{how}, so berth would change a mount namespace it did not create; {} need a new \
             mount namespace (add {{\"type\": \"mount\"}} without a path)",
            needs.join(", ")
        ),
    ))
}

#[cfg(test)]
mod mount_ns_tests {
    use std::path::Path;

    fn plan(linux: &str, mounts: &str) -> Result<super::super::Plan, String> {
        let data = format!(
            r#"{{"ociVersion":"1.0.2","process":{{"cwd":"/","user":{{"uid":0,"gid":0}},"args":["sh"]}},"root":{{"path":"r"}},"mounts":{mounts},"linux":{linux}}}"#
        );
        super::super::check_bytes(data.as_bytes(), Path::new("/b")).map_err(|e| e.to_string())
    }

    #[test]
    fn relative_destination_is_taken_from_root_and_bind_data_ignored() {
        let ns = r#"{"namespaces":[{"type":"mount"}]}"#;
        let m = r#"[{"destination":"mnt/a","type":"tmpfs"},{"destination":"/b","type":"bind","source":"/tmp","options":["rbind","mode=755"]}]"#;
        let p = plan(ns, m).unwrap();
        assert_eq!(p.mounts[0].destination, Path::new("/mnt/a"));
        assert_eq!(p.mounts[1].kind, super::MountKind::Bind);
    }

    #[test]
    fn mount_changes_need_a_mount_namespace_of_our_own() {
        let tmpfs = r#"[{"destination":"/t","type":"tmpfs"}]"#;
        let e = plan(r#"{"namespaces":[{"type":"pid"}]}"#, tmpfs).unwrap_err();
        assert!(
            e.contains("linux.namespaces") && e.contains("mounts"),
            "{e}"
        );
        let e = plan(r#"{"namespaces":[],"maskedPaths":["/x"]}"#, "[]").unwrap_err();
        assert!(e.contains("linux.maskedPaths") && !e.contains('\n'), "{e}");
        assert!(plan(r#"{"namespaces":[{"type":"mount"}]}"#, tmpfs).is_ok());
        // Nothing to mount: it may run chrooted.
        assert!(plan(r#"{"namespaces":[{"type":"pid"}]}"#, "[]").is_ok());
    }
}
