//! Rootless: berth run by an ordinary user (euid ≠ 0), or as root of a user namespace that
//! is not the host's (rootless podman runs its runtime so). What changes, as in runc:
//! - the state lives under `$XDG_RUNTIME_DIR/berth` unless `--root` is given;
//! - an ordinary user needs a user namespace in the config; its id maps are written
//!   directly when they map only the caller's own uid/gid (setgroups denied first, as the
//!   kernel requires), else through the setuid helpers newuidmap/newgidmap, which check
//!   /etc/subuid and /etc/subgid;
//! - only cgroups the caller can write are made and joined; a resource limit that would
//!   need one of the others is refused naming the field; none at all runs without them;
//! - sysfs, device nodes and locked mount flags are handled by the rootfs code when it
//!   runs in a user namespace (see `in_user_ns`).

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{AccessFlags, Pid};

use crate::cgroups::{CgroupError, Cgroups};
use crate::namespaces::{self, NsError};
use crate::spec::{IdMap, Namespaces, Plan};

/// The runtime's effective uid is not 0: runc's `RootlessEUID`.
pub fn euid_rootless() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// The caller runs in a user namespace other than the host's (its uid_map is not the
/// identity map of every id).
pub fn in_user_ns() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    !is_initial_map(&map)
}

fn is_initial_map(text: &str) -> bool {
    let f: Vec<&str> = text.split_whitespace().collect();
    f.is_empty() || f == ["0", "0", "4294967295"]
}

/// runc's rootless cgroup manager (cgroupfs driver): an ordinary user, or root of a user
/// namespace, who may not be able to write the cgroups a container would use.
pub fn cgroups_rootless() -> bool {
    euid_rootless() || in_user_ns()
}

/// The default `--root`, as runc picks its own: `$XDG_RUNTIME_DIR/berth` for an ordinary
/// user, and for root in a user namespace unless `$USER` is "root"; else /run/berth. The
/// flag says the XDG directory was chosen (it is then made sticky, see `prepare_root`).
pub fn default_root() -> (PathBuf, bool) {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty());
    match xdg {
        Some(d) if honour_xdg() => (Path::new(&d).join("berth"), true),
        _ => (PathBuf::from("/run/berth"), false),
    }
}

fn honour_xdg() -> bool {
    if euid_rootless() {
        return true;
    }
    if !in_user_ns() {
        // Real root keeps /run/berth even with XDG_RUNTIME_DIR=/run/user/0 set.
        return false;
    }
    std::env::var("USER").map_or(true, |u| u != "root")
}

/// Makes the XDG state directory 0700 with the sticky bit: XDG's rule that keeps
/// systemd-tmpfiles from cleaning it up under a running container (runc does the same).
pub fn prepare_root(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o1700))
}

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("{field}: {why}")]
    Field { field: &'static str, why: String },
    #[error(transparent)]
    Ns(#[from] NsError),
}

fn field(field: &'static str, why: impl Into<String>) -> RootlessError {
    RootlessError::Field {
        field,
        why: why.into(),
    }
}

/// What a rootless caller cannot do, refused before anything is made.
pub fn check_plan(plan: &Plan) -> Result<(), RootlessError> {
    if euid_rootless() && !plan.namespaces.has_user() {
        return Err(field(
            "linux.namespaces",
            format!(
                "berth runs as uid {} (rootless): the container needs a user namespace \
                 ({{\"type\": \"user\"}} with uidMappings and gidMappings, as `berth spec \
                 --rootless` writes)",
                nix::unistd::geteuid()
            ),
        ));
    }
    if let Some(adj) = plan.process.oom_score_adj.filter(|_| cgroups_rootless()) {
        let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if adj < own {
            return Err(field(
                "process.oomScoreAdj",
                format!(
                    "{adj} is below the caller's {own}: lowering it needs CAP_SYS_RESOURCE \
                     of the host, which a rootless runtime does not have"
                ),
            ));
        }
    }
    Ok(())
}

/// Writes the id maps of a child in a new user namespace the rootless way (see the
/// module comment); a privileged caller writes them directly.
pub fn write_id_maps(pid: Pid, ns: &Namespaces) -> Result<(), RootlessError> {
    if !euid_rootless() {
        return Ok(namespaces::write_id_maps(pid, ns)?);
    }
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    if only_own(&ns.uid_mappings, uid) {
        namespaces::write_proc(
            &format!("/proc/{pid}/uid_map"),
            &namespaces::map_text(&ns.uid_mappings),
        )?;
    } else {
        helper("newuidmap", "linux.uidMappings", pid, &ns.uid_mappings, uid)?;
    }
    if only_own(&ns.gid_mappings, gid) {
        // An unprivileged gid_map write needs setgroups denied first (user_namespaces(7)):
        // otherwise dropping a group with setgroups could grant access.
        namespaces::write_proc(&format!("/proc/{pid}/setgroups"), "deny")?;
        namespaces::write_proc(
            &format!("/proc/{pid}/gid_map"),
            &namespaces::map_text(&ns.gid_mappings),
        )?;
    } else {
        helper("newgidmap", "linux.gidMappings", pid, &ns.gid_mappings, gid)?;
    }
    Ok(())
}

/// One mapping of the caller's own id: the only map an unprivileged process may write.
fn only_own(maps: &[IdMap], id: u32) -> bool {
    matches!(maps, [m] if m.host_id == id && m.size == 1)
}

/// Arguments of newuidmap/newgidmap: the pid, then `inside outside count` per mapping.
fn helper_args(pid: Pid, maps: &[IdMap]) -> Vec<String> {
    let mut a = vec![pid.to_string()];
    for m in maps {
        a.extend([
            m.container_id.to_string(),
            m.host_id.to_string(),
            m.size.to_string(),
        ]);
    }
    a
}

fn helper(
    prog: &'static str,
    field_name: &'static str,
    pid: Pid,
    maps: &[IdMap],
    own: u32,
) -> Result<(), RootlessError> {
    let subfile = if prog == "newuidmap" {
        "/etc/subuid"
    } else {
        "/etc/subgid"
    };
    let Some(path) = find_program(prog) else {
        return Err(field(
            field_name,
            format!(
                "maps more than the caller's own id {own}: that needs {prog} (Debian package \
                 uidmap), which is not installed"
            ),
        ));
    };
    let out = Command::new(&path)
        .args(helper_args(pid, maps))
        .output()
        .map_err(|e| field(field_name, format!("run {}: {e}", path.display())))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(field(
            field_name,
            format!(
                "{prog} refused the mapping (are the ranges in {subfile} for uid {own}?): {}",
                msg.trim().replace('\n', "; ")
            ),
        ));
    }
    Ok(())
}

fn find_program(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(prog))
        .find(|p| nix::unistd::access(p, AccessFlags::X_OK).is_ok())
}

/// runc's default cgroup of a rootless container on a cgroup v2 host: beside the
/// runtime's own (`<parent of own>/<id>`), which is where a delegated subtree lets a user
/// make one; berth's `/berth/<id>` would be outside it. Elsewhere the config's path.
pub fn cgroups_path(id: &str, configured: Option<PathBuf>) -> Option<PathBuf> {
    use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};
    let unified =
        statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
    if configured.is_some() || !unified || !cgroups_rootless() {
        return configured;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(Path::new(own).parent().unwrap_or(Path::new("/")).join(id))
}

/// The container's cgroups a rootless caller can use: each hierarchy is kept only if the
/// caller may write where the container's directory is (or is to be) made. Returns the
/// kept set and the directories given up. Unchanged for a privileged caller.
pub fn usable_cgroups(planned: Cgroups) -> (Cgroups, Vec<PathBuf>) {
    if !cgroups_rootless() {
        return (planned, Vec::new());
    }
    // Every hierarchy stays listed: the container's /sys/fs/cgroup is laid out as the
    // host's, with only the joined ones bound in.
    let mut kept = Cgroups {
        hierarchies: planned.hierarchies,
        ..Cgroups::default()
    };
    let mut skipped = Vec::new();
    for (h, dir) in kept.hierarchies.iter().zip(planned.joined) {
        if writable(&dir) {
            kept.created.extend(
                planned
                    .created
                    .iter()
                    .filter(|c| c.starts_with(&h.mount))
                    .cloned(),
            );
            kept.joined.push(dir);
        } else {
            skipped.push(dir);
        }
    }
    (kept, skipped)
}

/// May we make `dir` (its nearest existing ancestor is writable) or join it (its
/// cgroup.procs is writable)?
fn writable(dir: &Path) -> bool {
    let can = |p: &Path, mode| {
        nix::unistd::faccessat(
            nix::fcntl::AT_FDCWD,
            p,
            mode,
            nix::fcntl::AtFlags::AT_EACCESS,
        )
        .is_ok()
    };
    if dir.exists() {
        return can(&dir.join("cgroup.procs"), AccessFlags::W_OK);
    }
    match dir.ancestors().skip(1).find(|a| a.exists()) {
        Some(a) => can(a, AccessFlags::W_OK | AccessFlags::X_OK),
        None => false,
    }
}

/// Resources as a rootless container applies them: without device rules, as runc ignores
/// them there (a v1 devices cgroup is never the caller's, a v2 device filter needs
/// CAP_BPF of the host; the user namespace already keeps the container from making or
/// opening devices it was not given).
pub fn resources(
    res: &oci_spec::runtime::LinuxResources,
) -> std::borrow::Cow<'_, oci_spec::runtime::LinuxResources> {
    if !cgroups_rootless() || res.devices().is_none() {
        return std::borrow::Cow::Borrowed(res);
    }
    let mut res = res.clone();
    res.set_devices(None);
    std::borrow::Cow::Owned(res)
}

/// A limit that failed for want of a cgroup berth gave up as rootless: say so, naming the
/// directory it would have needed.
pub fn explain(e: CgroupError, skipped: &[PathBuf]) -> CgroupError {
    let CgroupError::Unsupported { field, reason } = e else {
        return e;
    };
    if skipped.is_empty() {
        return CgroupError::Unsupported { field, reason };
    }
    let ctrl = match field.split('.').next().unwrap_or("") {
        "blockIO" => "blkio",
        "hugepageLimits" => "hugetlb",
        "network" => "net_cls",
        c => c,
    };
    let dir = skipped
        .iter()
        .find(|d| {
            d.components().any(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .split(',')
                    .any(|n| n == ctrl)
            })
        })
        .unwrap_or(&skipped[0]);
    CgroupError::Unsupported {
        field,
        reason: format!(
            "cannot be applied rootless: uid {} may not make or join {} (cgroup v1 is never \
             delegated to users; cgroup v2 is when systemd or an administrator delegates a \
             subtree: then set linux.cgroupsPath inside it)",
            nix::unistd::geteuid(),
            dir.display()
        ),
    }
}

/// Why a container has no cgroup for a controller (pause needs the freezer): a rootless
/// one on a host that does not delegate it to the caller.
pub fn no_cgroup_reason(ctrl: &str) -> String {
    if cgroups_rootless() {
        format!(
            "the container has no {ctrl} cgroup: berth ran rootless (uid {}) and could not \
             write one (cgroup v1 is never delegated to users; cgroup v2 is, in a delegated \
             subtree)",
            nix::unistd::geteuid()
        )
    } else {
        format!("no {ctrl} controller on this host")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, s: u32) -> IdMap {
        IdMap {
            container_id: c,
            host_id: h,
            size: s,
        }
    }

    #[test]
    fn initial_map_is_recognised() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1001          1\n"));
        assert!(!is_initial_map("0 0 1000\n"));
    }

    #[test]
    fn own_single_id_is_written_directly() {
        assert!(only_own(&[m(0, 1001, 1)], 1001));
        assert!(only_own(&[m(5, 1001, 1)], 1001));
        assert!(!only_own(&[m(0, 1001, 2)], 1001));
        assert!(!only_own(&[m(0, 1001, 1), m(1, 100000, 65536)], 1001));
        assert!(!only_own(&[m(0, 1002, 1)], 1001));
    }

    #[test]
    fn helper_arguments() {
        assert_eq!(
            helper_args(Pid::from_raw(42), &[m(0, 1001, 1), m(1, 100000, 65536)]),
            ["42", "0", "1001", "1", "1", "100000", "65536"]
        );
    }
}
