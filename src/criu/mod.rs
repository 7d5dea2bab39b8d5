//! Checkpoint and restore with CRIU, driven as runc drives it: its RPC service (`criu swrk`,
//! see [`rpc`]) with the container's external mounts, namespaces and cgroups described so
//! that images taken by one runtime restore with the other.

pub mod dump;
pub mod mounts;
pub mod restore;
pub mod rpc;

use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

pub use dump::{CheckpointOpts, checkpoint};
pub use restore::{RestoreOpts, restore};

/// runc's minimum: the VERSION request appeared in CRIU 3.0.
const MIN_VERSION: i32 = 30000;
/// The file in the image directory naming the init's stdio at dump time (runc's name).
const DESCRIPTORS: &str = "descriptors.json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rpc(#[from] rpc::RpcError),
    #[error(transparent)]
    Container(#[from] crate::container::Error),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// CRIU failed at its task; the line names its log and the first error it wrote there.
    #[error("{verb}: {source}{detail}")]
    Criu {
        verb: &'static str,
        source: rpc::RpcError,
        detail: String,
    },
    #[error("{0}")]
    Msg(String),
}

impl From<crate::state::StateError> for Error {
    fn from(e: crate::state::StateError) -> Self {
        Error::Container(e.into())
    }
}

impl From<crate::spec::SpecError> for Error {
    fn from(e: crate::spec::SpecError) -> Self {
        Error::Container(e.into())
    }
}

impl From<crate::cgroups::CgroupError> for Error {
    fn from(e: crate::cgroups::CgroupError) -> Self {
        Error::Container(e.into())
    }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Options both verbs share, as runc's flags name them.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub criu: PathBuf,
    pub image_path: Option<PathBuf>,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<String>,
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
}

impl Common {
    /// runc's default: ./checkpoint.
    fn images(&self) -> Result<PathBuf, Error> {
        match &self.image_path {
            Some(p) => Ok(p.clone()),
            None => std::env::current_dir()
                .map(|d| d.join("checkpoint"))
                .map_err(io_err("current directory", Path::new("."))),
        }
    }

    fn cg_mode(&self) -> Result<rpc::CriuCgMode, Error> {
        cg_mode(self.manage_cgroups_mode.as_deref())
    }

    fn empty_ns(&self) -> Result<u32, Error> {
        empty_ns(&self.empty_ns)
    }
}

fn cg_mode(mode: Option<&str>) -> Result<rpc::CriuCgMode, Error> {
    use rpc::CriuCgMode as M;
    Ok(match mode.unwrap_or("") {
        "" => M::Default,
        "soft" => M::Soft,
        "full" => M::Full,
        "strict" => M::Strict,
        "ignore" => M::Ignore,
        other => {
            return Err(Error::Msg(format!(
                "--manage-cgroups-mode {other:?}: must be soft, full, strict or ignore"
            )));
        }
    })
}

/// CRIU's empty_ns mask. The network namespace is always in it, as with runc: the runtime
/// does not own the network configuration (interfaces, addresses, routes); the namespace
/// is made anew and prestart hooks or the engine set it up, while sockets are restored.
fn empty_ns(names: &[String]) -> Result<u32, Error> {
    let mut mask = CloneFlags::CLONE_NEWNET.bits() as u32;
    for n in names {
        match n.as_str() {
            "network" => mask |= CloneFlags::CLONE_NEWNET.bits() as u32,
            other => {
                return Err(Error::Msg(format!(
                    "--empty-ns {other:?}: namespace is not supported (only \"network\")"
                )));
            }
        }
    }
    Ok(mask)
}

/// The criu binary, checked for being runnable and recent enough before any state changes.
fn check_criu(criu: &Path) -> Result<i32, Error> {
    let v = rpc::version(criu).map_err(|e| match e {
        rpc::RpcError::Spawn { .. } => Error::Rpc(e),
        e => unusable(criu, e),
    })?;
    if v < MIN_VERSION {
        return Err(Error::Msg(format!(
            "CRIU {} is {v}; checkpoint/restore needs {MIN_VERSION} or later",
            criu.display()
        )));
    }
    Ok(v)
}

/// A CRIU that runs but cannot work here (its kernel probe fails): one line with the first
/// error `criu check` reports.
fn unusable(criu: &Path, cause: rpc::RpcError) -> Error {
    match check_output(criu) {
        Some(first) => Error::Msg(format!(
            "CRIU {} is unusable on this host: `criu check` fails: {first}",
            criu.display()
        )),
        None => Error::Msg(format!("CRIU {}: {cause}", criu.display())),
    }
}

/// The first error line of a failing `criu check`; None when it passes.
fn check_output(criu: &Path) -> Option<String> {
    let out = std::process::Command::new(criu)
        .arg("check")
        .output()
        .ok()?;
    if out.status.success() {
        return None;
    }
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let first = text
        .lines()
        .find(|l| l.contains("Error"))
        .or_else(|| text.lines().next())
        .unwrap_or("no output");
    Some(first.trim().to_string())
}

/// Turns a failed CRIU request into one line: the answer, the log and its first error; or,
/// when CRIU itself cannot run here, what `criu check` says.
fn criu_failed(verb: &'static str, criu: &Path, log: &Path, e: rpc::RpcError) -> Error {
    if let rpc::RpcError::Notify(_) = e {
        return Error::Msg(format!("{verb}: {e}"));
    }
    if let Some(first) = check_output(criu) {
        return Error::Msg(format!(
            "{verb}: CRIU {} is unusable on this host: `criu check` fails: {first}",
            criu.display()
        ));
    }
    let detail = match first_log_error(log) {
        Some(line) => format!(" ({}: {line})", log.display()),
        None => format!(" (see {})", log.display()),
    };
    Error::Criu {
        verb,
        source: e,
        detail,
    }
}

/// The error that stopped CRIU, from its log: the first "Error" line apart from those it
/// goes on after (it cannot raise its fd limit without CAP_SYS_RESOURCE) and the closing
/// "FAILED" summary.
fn first_log_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error (")).collect();
    errors
        .iter()
        .find(|l| !l.contains("rlimit:") && !l.trim_end().ends_with("FAILED."))
        .or(errors.first())
        .map(|l| l.trim().to_string())
}

/// The CRIU configuration file, as runc picks it: the `org.criu.config` annotation (empty:
/// none), else /etc/criu/runc.conf, so a host tuned for runc is tuned for berth too.
fn config_file(annotations: &std::collections::BTreeMap<String, String>) -> Option<String> {
    match annotations.get("org.criu.config") {
        Some(f) if f.is_empty() => None,
        Some(f) => Some(f.clone()),
        None => Some("/etc/criu/runc.conf".into()),
    }
}

/// CRIU's name of a namespace type.
fn ns_name(flag: CloneFlags) -> Option<&'static str> {
    Some(match flag {
        CloneFlags::CLONE_NEWNET => "net",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWNS => "mnt",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWUSER => "user",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        f if f.bits() == libc::CLONE_NEWTIME => "time",
        _ => return None,
    })
}

/// The key runc gives an external namespace: extRootNetNS, extRootPidNS.
fn ext_ns_key(flag: CloneFlags) -> &'static str {
    if flag == CloneFlags::CLONE_NEWPID {
        "extRootPidNS"
    } else {
        "extRootNetNS"
    }
}

/// Opens (creating it 0700 when missing, as runc) a directory CRIU works in.
fn open_dir(path: &Path, create: bool) -> Result<std::fs::File, Error> {
    if create {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
        {
            Ok(()) => {}
            Err(e) => return Err(io_err("create directory", path)(e)),
        }
    }
    std::fs::File::open(path).map_err(io_err("open directory", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_modes_as_runc() {
        assert_eq!(cg_mode(None).unwrap(), rpc::CriuCgMode::Default);
        assert_eq!(cg_mode(Some("strict")).unwrap(), rpc::CriuCgMode::Strict);
        let e = cg_mode(Some("props")).unwrap_err().to_string();
        assert!(e.contains("--manage-cgroups-mode \"props\""), "{e}");
    }

    #[test]
    fn network_is_always_an_empty_namespace() {
        let net = libc::CLONE_NEWNET as u32;
        assert_eq!(empty_ns(&[]).unwrap(), net);
        assert_eq!(empty_ns(&["network".into()]).unwrap(), net);
        assert!(
            empty_ns(&["pid".into()])
                .unwrap_err()
                .to_string()
                .contains("\"pid\"")
        );
    }

    #[test]
    fn config_file_follows_the_annotation() {
        let mut a = std::collections::BTreeMap::new();
        assert_eq!(config_file(&a).as_deref(), Some("/etc/criu/runc.conf"));
        a.insert("org.criu.config".into(), String::new());
        assert_eq!(config_file(&a), None);
        a.insert("org.criu.config".into(), "/x.conf".into());
        assert_eq!(config_file(&a).as_deref(), Some("/x.conf"));
    }
}
