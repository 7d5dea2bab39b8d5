//! config.json → validated [`Plan`]. Every error names the JSON path it is about.

pub mod mountopts;
pub mod plan;
mod process;

pub use process::parse_cpu_list;

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Spec};

pub use plan::*;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("bundle {0}: no such directory")]
    BundleMissing(PathBuf),
    #[error("{0}: config.json not found in bundle")]
    ConfigMissing(PathBuf),
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: invalid JSON at line {line} column {column}: {msg}")]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("{file}: {field}: {msg} (line {line} column {column})")]
    Field {
        file: PathBuf,
        field: String,
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("config.json: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Reads and parses `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    if !bundle.is_dir() {
        return Err(SpecError::BundleMissing(bundle.to_path_buf()));
    }
    let file = bundle.join("config.json");
    let data = std::fs::read(&file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SpecError::ConfigMissing(file.clone()),
        _ => SpecError::Read {
            path: file.clone(),
            source: e,
        },
    })?;
    parse(&data, &file)
}

/// Parses config.json bytes; `file` is only used in messages.
pub fn parse(data: &[u8], file: &Path) -> Result<Spec, SpecError> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let (line, column) = (inner.line(), inner.column());
        let msg = strip_position(&inner.to_string());
        if inner.is_syntax() || inner.is_eof() || field == "." {
            SpecError::Syntax {
                file: file.to_path_buf(),
                line,
                column,
                msg,
            }
        } else {
            SpecError::Field {
                file: file.to_path_buf(),
                field,
                line,
                column,
                msg,
            }
        }
    })
}

/// serde_json appends " at line L column C"; we print position ourselves.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Options from the command line that shape the plan.
#[derive(Debug, Default, Clone)]
pub struct PlanOptions {
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub console_socket: bool,
    /// The runtime detaches from the container (create, run -d): a terminal needs a socket.
    pub detached: bool,
}

/// A `process` object alone (as `exec --process` gives it) → [`ProcessPlan`].
pub fn process_plan(p: &oci_spec::runtime::Process) -> Result<ProcessPlan, SpecError> {
    process::plan(p, &PlanOptions::default())
}

/// Validates the spec and resolves it into a [`Plan`].
pub fn plan(id: &str, bundle: &Path, spec: &Spec, opts: &PlanOptions) -> Result<Plan, SpecError> {
    check_version(spec.version())?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    if root.path().as_os_str().is_empty() {
        return Err(invalid("root.path", "missing"));
    }
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| invalid("root.path", format!("{}: {e}", rootfs.display())))?;
    if !rootfs.is_dir() {
        return Err(invalid(
            "root.path",
            format!("{}: not a directory", rootfs.display()),
        ));
    }

    let linux = spec.linux().clone().unwrap_or_default();
    let namespaces = namespaces(&linux)?;
    let seccomp = linux.seccomp().as_ref().map(seccomp_plan).transpose()?;
    for (field, value) in [
        (
            "process.apparmorProfile",
            spec.process()
                .as_ref()
                .and_then(|p| p.apparmor_profile().clone()),
        ),
        (
            "process.selinuxLabel",
            spec.process()
                .as_ref()
                .and_then(|p| p.selinux_label().clone()),
        ),
        ("linux.mountLabel", linux.mount_label().clone()),
    ] {
        if value.is_some_and(|v| !v.is_empty()) {
            return Err(invalid(
                field,
                "this host has no AppArmor or SELinux to apply it",
            ));
        }
    }

    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
    for (field, v) in [("hostname", &hostname), ("domainname", &domainname)] {
        if v.is_some() && !namespaces.has(CloneFlags::CLONE_NEWUTS) {
            return Err(invalid(field, "setting it needs a private uts namespace"));
        }
    }

    let mounts = mounts(spec, bundle, &namespaces)?;
    let rootfs_propagation =
        match linux.rootfs_propagation().as_deref() {
            None | Some("") => None,
            Some(v) => Some(mountopts::rootfs_propagation(v).ok_or_else(|| {
                invalid("linux.rootfsPropagation", format!("unknown value {v:?}"))
            })?),
        };

    let mut devices = Vec::new();
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        let field = format!("linux.devices[{i}]");
        let path = container_path(&format!("{field}.path"), d.path())?;
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(invalid(format!("{field}.type"), "must be c, b, u or p"));
            }
        };
        let (major, minor) = (d.major(), d.minor());
        if kind != libc::S_IFIFO && !(0..=0xfff).contains(&major) {
            return Err(invalid(
                format!("{field}.major"),
                format!("{major} out of range 0..4095"),
            ));
        }
        if kind != libc::S_IFIFO && !(0..=0xfffff).contains(&minor) {
            return Err(invalid(
                format!("{field}.minor"),
                format!("{minor} out of range"),
            ));
        }
        devices.push(DevicePlan {
            path,
            kind,
            major: major as u64,
            minor: minor as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }

    let paths = |field: &str, list: &Option<Vec<String>>| -> Result<Vec<PathBuf>, SpecError> {
        list.iter()
            .flatten()
            .enumerate()
            .map(|(i, p)| container_path(&format!("{field}[{i}]"), Path::new(p)))
            .collect()
    };
    let masked_paths = paths("linux.maskedPaths", linux.masked_paths())?;
    let readonly_paths = paths("linux.readonlyPaths", linux.readonly_paths())?;

    let mut sysctl: Vec<(String, String)> = linux
        .sysctl()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sysctl.sort();
    for (k, _) in &sysctl {
        if k.is_empty() || k.split(['.', '/']).any(|c| c.is_empty() || c == "..") {
            return Err(invalid(format!("linux.sysctl.{k}"), "malformed key"));
        }
    }

    let personality = match linux.personality() {
        None => None,
        Some(p) => {
            use oci_spec::runtime::LinuxPersonalityDomain as D;
            if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(invalid("linux.personality.flags", "no flags are supported"));
            }
            Some(Personality {
                domain: match p.domain() {
                    D::PerLinux => 0x0000,
                    D::PerLinux32 => 0x0008,
                },
            })
        }
    };

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing"))?;
    let process = process::plan(process, opts)?;
    // Only a foreground `run` can be its own console; a detached container needs a socket.
    if process.terminal && !opts.console_socket {
        return Err(invalid(
            "process.terminal",
            "a terminal needs --console-socket when berth detaches from the container",
        ));
    }

    let hooks = spec
        .hooks()
        .as_ref()
        .map(|h| {
            #[allow(deprecated)]
            let prestart = h.prestart().clone().unwrap_or_default();
            HookPlan {
                prestart,
                create_runtime: h.create_runtime().clone().unwrap_or_default(),
                create_container: h.create_container().clone().unwrap_or_default(),
                start_container: h.start_container().clone().unwrap_or_default(),
                poststart: h.poststart().clone().unwrap_or_default(),
                poststop: h.poststop().clone().unwrap_or_default(),
            }
        })
        .unwrap_or_default();
    for (kind, list) in [
        ("prestart", &hooks.prestart),
        ("createRuntime", &hooks.create_runtime),
        ("createContainer", &hooks.create_container),
        ("startContainer", &hooks.start_container),
        ("poststart", &hooks.poststart),
        ("poststop", &hooks.poststop),
    ] {
        for (i, h) in list.iter().enumerate() {
            if !h.path().is_absolute() {
                return Err(invalid(
                    format!("hooks.{kind}[{i}].path"),
                    "must be absolute",
                ));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(invalid(
                    format!("hooks.{kind}[{i}].timeout"),
                    "must be greater than zero",
                ));
            }
        }
    }

    Ok(Plan {
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        rootfs,
        readonly_root: root.readonly().unwrap_or(false),
        oci_version: spec.version().clone(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        namespaces,
        mounts,
        rootfs_propagation,
        devices,
        masked_paths,
        readonly_paths,
        hostname,
        domainname,
        sysctl,
        personality,
        process,
        hooks,
        cgroups_path: linux.cgroups_path().clone(),
        resources: linux.resources().clone(),
        seccomp,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
    })
}

/// Compiles linux.seccomp; unknown syscall names are skipped (as runc does) and logged.
pub fn seccomp_plan(s: &oci_spec::runtime::LinuxSeccomp) -> Result<SeccompPlan, SpecError> {
    let (compiled, warnings) = crate::security::seccomp::compile(s).map_err(|e| {
        let msg = e.to_string();
        match msg.split_once(": ") {
            Some((field, reason)) => invalid(field, reason),
            None => invalid("linux.seccomp", msg),
        }
    })?;
    // One line for all of them: profiles list many calls a given kernel or arch lacks.
    // Not on stderr: engines hand the runtime's stderr of `exec` to the user.
    if !warnings.is_empty() {
        crate::logging::warn_quiet(&format!("linux.seccomp: {}", warnings.join("; ")));
    }
    if compiled.has_notify() && s.listener_path().is_none() {
        return Err(invalid(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY rules need a listenerPath to hand the listener to",
        ));
    }
    Ok(SeccompPlan {
        compiled,
        listener_path: s.listener_path().clone(),
        listener_metadata: s.listener_metadata().clone().unwrap_or_default(),
    })
}

fn check_version(v: &str) -> Result<(), SpecError> {
    let major = v.split('.').next().unwrap_or("");
    match major {
        "1" => Ok(()),
        "" => Err(invalid("ociVersion", "missing")),
        _ => Err(invalid(
            "ociVersion",
            format!("unsupported version {v:?} (berth supports 1.x)"),
        )),
    }
}

/// An absolute path inside the container without `..` (config-linux.md paths).
fn container_path(field: &str, p: &Path) -> Result<PathBuf, SpecError> {
    if !p.is_absolute() {
        return Err(invalid(
            field,
            format!("{}: must be an absolute path", p.display()),
        ));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(invalid(
            field,
            format!("{}: must not contain '..'", p.display()),
        ));
    }
    Ok(p.to_path_buf())
}

fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

fn namespaces(linux: &oci_spec::runtime::Linux) -> Result<Namespaces, SpecError> {
    let mut ns = Namespaces::default();
    let mut seen = HashSet::new();
    for (i, n) in linux.namespaces().iter().flatten().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        let flag = ns_flag(n.typ());
        if !seen.insert(flag.bits()) {
            return Err(invalid(
                field,
                format!("duplicate namespace type {}", n.typ()),
            ));
        }
        match n.path() {
            None => ns.new |= flag,
            Some(p) if p.as_os_str().is_empty() => ns.new |= flag,
            Some(p) => {
                let fd = open_namespace(&format!("{field}.path"), p, flag, n.typ())?;
                ns.join.push((flag, fd, p.clone()));
            }
        }
    }
    let map = |list: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMap> {
        list.iter()
            .flatten()
            .map(|m| IdMap {
                container_id: m.container_id(),
                host_id: m.host_id(),
                size: m.size(),
            })
            .collect()
    };
    ns.uid_mappings = map(linux.uid_mappings());
    ns.gid_mappings = map(linux.gid_mappings());
    let newuser = ns.new.contains(CloneFlags::CLONE_NEWUSER);
    if !newuser && (!ns.uid_mappings.is_empty() || !ns.gid_mappings.is_empty()) {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings need a new user namespace in linux.namespaces",
        ));
    }
    if newuser && (ns.uid_mappings.is_empty() || ns.gid_mappings.is_empty()) {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs both uidMappings and gidMappings",
        ));
    }
    for (field, list) in [
        ("linux.uidMappings", &ns.uid_mappings),
        ("linux.gidMappings", &ns.gid_mappings),
    ] {
        if let Some(i) = list.iter().position(|m| m.size == 0) {
            return Err(invalid(
                format!("{field}[{i}].size"),
                "must be greater than zero",
            ));
        }
    }
    let timens = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    for (clock, off) in linux.time_offsets().iter().flatten() {
        if clock != "monotonic" && clock != "boottime" {
            return Err(invalid(
                format!("linux.timeOffsets.{clock}"),
                "only monotonic and boottime clocks can be offset",
            ));
        }
        if !ns.new.contains(timens) {
            return Err(invalid(
                format!("linux.timeOffsets.{clock}"),
                "needs a new time namespace in linux.namespaces",
            ));
        }
        ns.time_offsets.push((
            clock.clone(),
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0),
        ));
    }
    ns.time_offsets.sort();
    Ok(ns)
}

/// Opens a namespace file and checks with NS_GET_NSTYPE that it is one of the wanted type.
fn open_namespace(
    field: &str,
    path: &Path,
    flag: CloneFlags,
    typ: LinuxNamespaceType,
) -> Result<OwnedFd, SpecError> {
    let file = File::open(path).map_err(|e| invalid(field, format!("{}: {e}", path.display())))?;
    // NS_GET_NSTYPE = _IO(0xb7, 0x3)
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: ioctl on an fd we own, no pointer argument.
    let got = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
    if got < 0 {
        return Err(invalid(
            field,
            format!("{}: not a namespace file", path.display()),
        ));
    }
    if got != flag.bits() {
        return Err(invalid(
            field,
            format!("{}: not a {} namespace", path.display(), spec_name(typ)),
        ));
    }
    Ok(file.into())
}

/// The namespace type as config.json spells it ("network", "mount", …).
fn spec_name(t: LinuxNamespaceType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| t.to_string())
}

/// Filesystem types berth knows how to mount without asking the kernel first.
const KNOWN_FS: &[&str] = &[
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

fn fs_supported(fstype: &str) -> bool {
    KNOWN_FS.contains(&fstype)
        || std::fs::read_to_string("/proc/filesystems").is_ok_and(|s| {
            s.lines()
                .any(|l| l.split_whitespace().last() == Some(fstype))
        })
}

fn mounts(spec: &Spec, bundle: &Path, ns: &Namespaces) -> Result<Vec<MountPlan>, SpecError> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{i}]");
        let destination = container_path(&format!("{field}.destination"), m.destination())?;
        let options = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = options.bind || typ == "bind";
        let kind = if is_bind {
            if !options.data.is_empty() {
                return Err(invalid(
                    format!("{field}.options"),
                    format!(
                        "unknown mount option {:?} for a bind mount",
                        options.data[0]
                    ),
                ));
            }
            MountKind::Bind
        } else if typ.is_empty() || typ == "none" {
            return Err(invalid(
                format!("{field}.type"),
                "missing (and not a bind mount)",
            ));
        } else if !fs_supported(typ) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = parse(
            b"{\n  \"ociVersion\": \"1.0.2\",\n  oops\n}",
            Path::new("c.json"),
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.contains("line 3 column 3"), "{s}");
    }

    #[test]
    fn type_error_names_json_path() {
        let data = br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":"zero","gid":0}}}"#;
        let s = parse(data, Path::new("c.json")).unwrap_err().to_string();
        assert!(s.contains("process.user.uid"), "{s}");
    }

    #[test]
    fn version_major_checked() {
        assert!(check_version("1.2.0").is_ok());
        assert!(
            check_version("2.0.0")
                .unwrap_err()
                .to_string()
                .contains("ociVersion")
        );
        assert!(check_version("").is_err());
    }

    #[test]
    fn container_paths_must_be_absolute_and_clean() {
        assert!(container_path("x", Path::new("/dev/null")).is_ok());
        assert!(container_path("x", Path::new("dev/null")).is_err());
        assert!(container_path("x", Path::new("/a/../b")).is_err());
    }
}
