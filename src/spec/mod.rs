//! config.json → validated [`Plan`]. Every error names the JSON path it is about.

mod capnames;
pub mod fuzz;
mod linux;
mod mempolicy;
pub mod mountopts;
mod mounts;
pub mod plan;
mod process;

pub use process::parse_cpu_list;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub use plan::*;

/// The runtime-spec version berth implements, for `--version`, `features` and `spec`:
/// 1.3.0, with its netDevices, memoryPolicy and failed-poststart semantics.
pub const SPEC_VERSION: &str = "1.3.0";

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
    #[error("{file}: {field}: invalid JSON at line {line} column {column}: {msg}")]
    SyntaxIn {
        file: PathBuf,
        field: String,
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
    #[error("{0}: not a regular file")]
    NotRegular(PathBuf),
    #[error("{0}: {1} bytes, more than the 64 MiB berth reads")]
    TooBig(PathBuf, u64),
    #[error("config.json: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: one_line(&field.into()),
        reason: one_line(&reason.into()),
    }
}

/// Escapes control characters: config strings (paths, keys, names) are quoted in errors,
/// and a newline in one would split berth's one-line error into several.
fn one_line(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Reads and parses `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    if !bundle.is_dir() {
        return Err(SpecError::BundleMissing(bundle.to_path_buf()));
    }
    let file = bundle.join("config.json");
    let read_err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => SpecError::ConfigMissing(file.clone()),
        _ => SpecError::Read {
            path: file.clone(),
            source: e,
        },
    };
    // O_NONBLOCK: a FIFO planted as config.json must not block the open; O_NOCTTY: a
    // terminal must not become ours. Both are refused below with everything else that is
    // not a regular file (a directory, /dev/zero).
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&file)
        .map_err(read_err)?;
    let meta = f.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(SpecError::NotRegular(file));
    }
    if meta.len() > MAX_CONFIG {
        return Err(SpecError::TooBig(file, meta.len()));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // Bounded even if the file grows while it is read.
    f.take(MAX_CONFIG + 1)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    if data.len() as u64 > MAX_CONFIG {
        return Err(SpecError::TooBig(file, data.len() as u64));
    }
    parse(&data, &file)
}

/// Far above any real config (podman's seccomp profile, the biggest part of one, is ~30 KiB),
/// low enough that a hostile bundle cannot make berth allocate without bound.
const MAX_CONFIG: u64 = 64 << 20;

/// Parses config.json bytes; `file` is only used in messages.
pub fn parse(data: &[u8], file: &Path) -> Result<Spec, SpecError> {
    // serde would read a top-level array as the Spec's fields in order and complain about
    // element [0]; say what is wrong instead.
    if let Some(at) = data.iter().position(|b| !b.is_ascii_whitespace()) {
        if data[at] != b'{' {
            let before = &data[..at];
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
            let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
            return Err(SpecError::Syntax {
                file: file.to_path_buf(),
                line,
                column,
                msg: "the document must be a JSON object".into(),
            });
        }
    }
    let filtered = capnames::without_unknown(data);
    let data = filtered.as_deref().unwrap_or(data);
    let de = &mut serde_json::Deserializer::from_slice(data);
    let spec = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let field = one_line(&e.path().to_string());
        let inner = e.into_inner();
        let (line, column) = (inner.line(), inner.column());
        let msg = one_line(&strip_position(&inner.to_string()));
        if (inner.is_syntax() || inner.is_eof()) && field != "." {
            // e.g. a number out of range: the JSON is broken, but at a known field.
            SpecError::SyntaxIn {
                file: file.to_path_buf(),
                field,
                line,
                column,
                msg,
            }
        } else if inner.is_syntax() || inner.is_eof() || field == "." {
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
    })?;
    // Bytes after the object would otherwise be ignored: a config cut and pasted twice,
    // or two documents in one file, is not the config the user meant.
    de.end().map_err(|e| SpecError::Syntax {
        file: file.to_path_buf(),
        line: e.line(),
        column: e.column(),
        msg: one_line(&strip_position(&e.to_string())),
    })?;
    // Here rather than in planning because only here are the bytes at hand; `load` and
    // `check_bytes` both come through.
    linux::check_device_numbers(data, &spec)?;
    Ok(spec)
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

/// The only steps of planning that look at the host: everything else in [`plan`] is a pure
/// function of the spec, which is what lets the fuzz target run the very same code.
trait Host {
    /// Resolves the rootfs path (already joined to the bundle) to a real directory.
    fn rootfs(&self, path: &Path) -> Result<PathBuf, SpecError>;
    /// Opens a namespace file to join; `None` when the host is not consulted.
    fn namespace(
        &self,
        field: &str,
        path: &Path,
        flag: CloneFlags,
        typ: LinuxNamespaceType,
    ) -> Result<Option<OwnedFd>, SpecError>;
    fn fs_supported(&self, fstype: &str) -> bool;
    /// Whether `process.apparmorProfile` can be applied here (AppArmor on, profile loaded).
    fn apparmor(&self, profile: &str) -> Result<(), SpecError>;
}

/// The real host: what `create` uses.
struct RealHost;

impl Host for RealHost {
    fn rootfs(&self, path: &Path) -> Result<PathBuf, SpecError> {
        let rootfs = std::fs::canonicalize(path)
            .map_err(|e| invalid("root.path", format!("{}: {e}", path.display())))?;
        if !rootfs.is_dir() {
            return Err(invalid(
                "root.path",
                format!("{}: not a directory", rootfs.display()),
            ));
        }
        Ok(rootfs)
    }

    fn namespace(
        &self,
        field: &str,
        path: &Path,
        flag: CloneFlags,
        typ: LinuxNamespaceType,
    ) -> Result<Option<OwnedFd>, SpecError> {
        linux::open_namespace(field, path, flag, typ).map(Some)
    }

    fn fs_supported(&self, fstype: &str) -> bool {
        mounts::fs_supported(fstype)
    }

    fn apparmor(&self, profile: &str) -> Result<(), SpecError> {
        crate::security::lsm::check_apparmor("process.apparmorProfile", profile)
            .map_err(|e| invalid(e.field, format!("{:?}: {}", e.profile, e.reason)))
    }
}

/// No file system, no kernel: paths are taken as given, namespace files are not opened
/// (nor recorded as joined), and only [`mounts::KNOWN_FS`] filesystem types exist.
struct PureHost;

impl Host for PureHost {
    fn rootfs(&self, path: &Path) -> Result<PathBuf, SpecError> {
        Ok(path.to_path_buf())
    }

    fn namespace(
        &self,
        _field: &str,
        _path: &Path,
        _flag: CloneFlags,
        _typ: LinuxNamespaceType,
    ) -> Result<Option<OwnedFd>, SpecError> {
        Ok(None)
    }

    fn fs_supported(&self, fstype: &str) -> bool {
        mounts::KNOWN_FS.contains(&fstype)
    }

    fn apparmor(&self, _profile: &str) -> Result<(), SpecError> {
        Ok(())
    }
}

/// Validates the spec and resolves it into a [`Plan`].
pub fn plan(id: &str, bundle: &Path, spec: &Spec, opts: &PlanOptions) -> Result<Plan, SpecError> {
    plan_on(&RealHost, id, bundle, spec, opts)
}

/// config.json bytes → [`Plan`] by the same parse and validation `create` runs, but without
/// touching the host (see [`PureHost`]): the entry point of the config fuzz target. Plans
/// made this way lack the namespaces to join and must not be used to create a container.
pub fn check_bytes(data: &[u8], bundle: &Path) -> Result<Plan, SpecError> {
    let spec = parse(data, &bundle.join("config.json"))?;
    plan_on(
        &PureHost,
        "fuzz",
        bundle,
        &spec,
        &PlanOptions {
            console_socket: true,
            ..PlanOptions::default()
        },
    )
}

fn plan_on(
    host: &dyn Host,
    id: &str,
    bundle: &Path,
    spec: &Spec,
    opts: &PlanOptions,
) -> Result<Plan, SpecError> {
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
    let rootfs = host.rootfs(&rootfs)?;

    let linux = spec.linux().clone().unwrap_or_default();
    let namespaces = linux::namespaces(host, &linux)?;
    let seccomp = linux.seccomp().as_ref().map(seccomp_plan).transpose()?;
    if let Some(profile) = spec
        .process()
        .as_ref()
        .and_then(|p| p.apparmor_profile().as_ref())
        .filter(|p| !p.is_empty())
    {
        host.apparmor(profile)?;
    }
    for (field, value) in [
        (
            "process.selinuxLabel",
            spec.process()
                .as_ref()
                .and_then(|p| p.selinux_label().clone()),
        ),
        ("linux.mountLabel", linux.mount_label().clone()),
    ] {
        if value.is_some_and(|v| !v.is_empty()) {
            return Err(invalid(field, "this host has no SELinux to apply it"));
        }
    }
    let net_devices = linux::net_devices(&linux, &namespaces)?;

    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
    for (field, v) in [("hostname", &hostname), ("domainname", &domainname)] {
        if v.is_some() && !namespaces.has(CloneFlags::CLONE_NEWUTS) {
            return Err(invalid(field, "setting it needs a private uts namespace"));
        }
        // The kernel's limit (HOST_NAME_MAX); past it sethostname fails in the container
        // with a bare EINVAL.
        if let Some(v) = v.as_ref().filter(|v| v.len() > 64) {
            return Err(invalid(
                field,
                format!("{} bytes, more than the 64 the kernel allows", v.len()),
            ));
        }
    }

    let mounts = mounts::mounts(host, spec, bundle, &namespaces)?;
    let rootfs_propagation =
        match linux.rootfs_propagation().as_deref() {
            None | Some("") => None,
            Some(v) => Some(mountopts::rootfs_propagation(v).ok_or_else(|| {
                invalid("linux.rootfsPropagation", format!("unknown value {v:?}"))
            })?),
        };

    let devices = linux::devices(&linux)?;

    for (i, d) in linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().as_ref())
        .iter()
        .copied()
        .flatten()
        .enumerate()
    {
        if let Some(a) = d.access() {
            if a.is_empty() || !a.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
                return Err(invalid(
                    format!("linux.resources.devices[{i}].access"),
                    format!("{a:?}: only the letters r, w and m"),
                ));
            }
        }
    }
    if let Some(p) = linux.cgroups_path() {
        // The cgroup code would drop the '..' and use the rest: say so rather than guess.
        if p.components().any(|c| c == Component::ParentDir) {
            return Err(invalid(
                "linux.cgroupsPath",
                format!("{}: must not contain '..'", p.display()),
            ));
        }
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

    let sysctl = linux::sysctl(&linux, &namespaces)?;

    let personality = personality_plan(linux.personality().as_ref())?;

    let memory_policy = linux
        .memory_policy()
        .as_ref()
        .map(mempolicy::plan)
        .transpose()?;

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

    let plan = Plan {
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
        memory_policy,
        net_devices,
        process,
        hooks,
        cgroups_path: linux.cgroups_path().clone(),
        resources: linux.resources().clone(),
        seccomp,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
    };
    mounts::check_own_mount_ns(&plan)?;
    Ok(plan)
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

/// A config path for a message: an empty one would vanish between the colons.
pub(crate) fn shown(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        "\"\"".to_string()
    } else {
        p.display().to_string()
    }
}

/// An absolute path inside the container without `..` (config-linux.md paths).
fn container_path(field: &str, p: &Path) -> Result<PathBuf, SpecError> {
    if !p.is_absolute() {
        return Err(invalid(
            field,
            format!("{}: must be an absolute path", shown(p)),
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

/// `linux.personality` as personality(2) takes it (the container's init and, as in runc
/// 1.2+, every exec'd process get it).
pub fn personality_plan(
    p: Option<&oci_spec::runtime::LinuxPersonality>,
) -> Result<Option<Personality>, SpecError> {
    use oci_spec::runtime::LinuxPersonalityDomain as D;
    let Some(p) = p else { return Ok(None) };
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(invalid("linux.personality.flags", "no flags are supported"));
    }
    Ok(Some(Personality {
        domain: match p.domain() {
            D::PerLinux => 0x0000,
            D::PerLinux32 => 0x0008,
        },
    }))
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
    fn trailing_bytes_and_non_objects_are_syntax_errors() {
        let e = parse(br#"{"ociVersion":"1.0.2"} {}"#, Path::new("c.json")).unwrap_err();
        assert!(e.to_string().contains("trailing characters"), "{e}");
        let e = parse(b"\n  [1]", Path::new("c.json")).unwrap_err();
        assert!(e.to_string().contains("line 2 column 3"), "{e}");
    }

    #[test]
    fn errors_stay_on_one_line() {
        let data = br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]},"root":{"path":"r"},"linux":{"namespaces":[{"type":"mount"}],"maskedPaths":["a\nb"]}}"#;
        let e = check_bytes(data, Path::new("/b")).unwrap_err().to_string();
        assert!(e.contains("a\\nb") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn container_paths_must_be_absolute_and_clean() {
        assert!(container_path("x", Path::new("/dev/null")).is_ok());
        assert!(container_path("x", Path::new("dev/null")).is_err());
        assert!(container_path("x", Path::new("/a/../b")).is_err());
    }
}
