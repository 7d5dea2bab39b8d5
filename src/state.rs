//! The `--root` layout: `<root>/<id>/{state.json, exec.fifo}`, the per-container lock,
//! and the container status derived from the process (pid plus its start time).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Hook;
use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container id {0:?} is invalid: {1}")]
    BadId(String, &'static str),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} was deleted while it was being created")]
    Vanished(String),
    #[error("container {0} is being created (its state is not written yet)")]
    Creating(String),
    #[error("container {0}: its create died before writing its state (delete removes it)")]
    Incomplete(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt state file: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `--root` when none is given: /run/berth, or for a rootless caller
/// `$XDG_RUNTIME_DIR/berth`, made 0700 and sticky up front as runc makes its own (an error
/// making it is left to the verb that needs it, which names the path).
pub fn default_root() -> PathBuf {
    let (root, xdg) = crate::rootless::default_root();
    if xdg {
        let _ = crate::rootless::prepare_root(&root);
    }
    root
}

/// runc accepts `^[\w+-\.]+$`; we do the same, which rules out '/', empty and NUL, and
/// additionally refuse the names "." and "..".
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let bad = |why| Err(StateError::BadId(id.to_string(), why));
    if id.is_empty() {
        return bad("it is empty");
    }
    if id == "." || id == ".." {
        return bad("it is a relative path component");
    }
    if id.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return bad("only letters, digits, '_', '+', '-' and '.' are allowed");
    }
    Ok(())
}

/// What berth keeps about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat when the container was created.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Cgroup directories berth made (and must remove), absolute.
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    /// Cgroup directories the container joined (first one used for `kill --all`).
    #[serde(default)]
    pub cgroup_joined: Vec<PathBuf>,
    #[serde(default)]
    pub poststart: Vec<Hook>,
    #[serde(default)]
    pub poststop: Vec<Hook>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// An exclusive flock on a container's directory, held until dropped. Every verb that changes
/// a container (create, start, delete, pause, resume, update) holds it, so they serialise per
/// container and never globally. Dropping only closes the fd: the lock goes when the last fd
/// of the open file goes (an explicit LOCK_UN would also unlock the copy a clone()d init
/// stub holds until it drops it, see `container::create`).
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] File);

/// A container's directory under `--root`.
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
}

impl ContainerDir {
    pub fn new(root: &Path, id: &str) -> Result<Self, StateError> {
        validate_id(id)?;
        Ok(ContainerDir {
            id: id.to_string(),
            path: root.join(id),
        })
    }

    /// Creates the directory exclusively (a second create of the same id fails here) and
    /// locks it for the rest of the create.
    pub fn create(&self, root: &Path) -> Result<Lock, StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .map_err(io(root))?;
        match fs::DirBuilder::new().mode(0o711).create(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(self.id.clone()));
            }
            Err(e) => return Err(io(&self.path)(e)),
        }
        // Between mkdir and flock a `delete` may have taken the directory for the remains
        // of a dead create and removed it.
        self.lock().map_err(|e| match e {
            StateError::NotFound(id) => StateError::Vanished(id),
            e => e,
        })
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// Takes the container's lock, waiting for its holder. NotFound when the directory is
    /// gone, also when it was removed while we waited (the holder deleted the container).
    pub fn lock(&self) -> Result<Lock, StateError> {
        let f = self.open()?;
        flock(&f, libc::LOCK_EX).map_err(io(&self.path))?;
        let st = nix::sys::stat::fstat(&f).map_err(|e| io(&self.path)(e.into()))?;
        if st.st_nlink == 0 {
            return Err(StateError::NotFound(self.id.clone()));
        }
        Ok(Lock(f))
    }

    /// True while another process holds the lock (a create, start or delete in progress).
    pub fn busy(&self) -> bool {
        let Ok(f) = self.open() else { return false };
        // A shared probe: it fails only against an exclusive holder; closing `f` drops it.
        matches!(flock(&f, libc::LOCK_SH | libc::LOCK_NB), Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK))
    }

    fn open(&self) -> Result<File, StateError> {
        File::open(&self.path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StateError::NotFound(self.id.clone()),
            _ => io(&self.path)(e),
        })
    }

    /// Reads state.json without holding the lock. A directory without one is a create that
    /// has not written it yet (`Creating` while the creator holds the lock) or one that died
    /// before (`NotFound`).
    pub fn load(&self) -> Result<State, StateError> {
        self.read(true)
    }

    /// Reads state.json as the holder of the lock: a missing file is a dead create.
    pub fn load_locked(&self) -> Result<State, StateError> {
        self.read(false)
    }

    fn read(&self, probe: bool) -> Result<State, StateError> {
        let p = self.path.join(STATE_FILE);
        let data = fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound if probe && self.exists() => {
                if self.busy() {
                    StateError::Creating(self.id.clone())
                } else {
                    StateError::Incomplete(self.id.clone())
                }
            }
            std::io::ErrorKind::NotFound => StateError::NotFound(self.id.clone()),
            _ => io(&p)(e),
        })?;
        serde_json::from_slice(&data).map_err(|source| StateError::Corrupt { path: p, source })
    }

    /// Writes state.json atomically (temp file + rename) so readers, and a berth killed
    /// mid-write, never leave or see half a file. No fsync: the threat is a killed process,
    /// which rename covers; a power loss also empties the default root (/run is tmpfs), and an
    /// fsync per create would cost milliseconds on a disk-backed --root.
    pub fn save(&self, st: &State) -> Result<(), StateError> {
        let p = self.path.join(STATE_FILE);
        let tmp = self.path.join(".state.json.tmp");
        let data = serde_json::to_vec(st).map_err(|source| StateError::Corrupt {
            path: p.clone(),
            source,
        })?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(&data).map_err(io(&tmp))?;
        fs::rename(&tmp, &p).map_err(io(&p))
    }

    /// Removes the directory so that readers see the whole container or none of it: it is
    /// first renamed to a name no id can have ('~' is not allowed), then emptied. Emptied in
    /// place, a reader could meet a directory without its state.json.
    pub fn remove(&self) -> Result<(), StateError> {
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        let gone = parent.join(format!("~deleting-{}", std::process::id()));
        let target = match fs::rename(&self.path, &gone) {
            Ok(()) => &gone,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // Still removable in place (e.g. a stale ~deleting dir of a reused pid).
            Err(_) => &self.path,
        };
        match fs::remove_dir_all(target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(target)(e)),
            _ => Ok(()),
        }
    }
}

/// Field 22 (starttime) and field 3 (state) of /proc/<pid>/stat.
pub fn proc_start_time(pid: i32) -> Option<(u64, char)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and ')' — the fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut it = rest.split(' ');
    let state = it.next()?.chars().next()?;
    let start = it.nth(18)?.parse().ok()?;
    Some((start, state))
}

fn flock(f: &File, op: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// True when `pid` is still the process recorded in `st` and has not exited.
pub fn is_alive(st: &State) -> bool {
    st.pid > 0
        && matches!(proc_start_time(st.pid), Some((t, s)) if t == st.start_time && s != 'Z' && s != 'X')
}

/// The status as seen by a reader that does not hold the lock. pid 0 is the state a create
/// records before its init exists: `creating` while that create runs, else `stopped` (the
/// create died; `delete` removes what it left).
pub fn status(dir: &ContainerDir, st: &State) -> Status {
    if st.pid == 0 {
        return if dir.busy() {
            Status::Creating
        } else {
            Status::Stopped
        };
    }
    status_locked(dir, st)
}

/// The status as seen by the holder of the lock, for whom pid 0 means a dead create.
pub fn status_locked(dir: &ContainerDir, st: &State) -> Status {
    if !is_alive(st) {
        return Status::Stopped;
    }
    if crate::cgroups::is_frozen(&st.cgroup_joined) {
        return Status::Paused;
    }
    if dir.fifo().exists() {
        Status::Created
    } else {
        Status::Running
    }
}

/// Makes the exec FIFO the init stub blocks on until `start` opens it.
pub fn make_fifo(path: &Path) -> Result<(), StateError> {
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o622);
    nix::unistd::mkfifo(path, mode).map_err(|e| io(path)(e.into()))?;
    // The umask strips "other write", which a container root mapped to an unprivileged
    // host uid needs to open the FIFO.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        path,
        mode,
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| io(path)(e.into()))
}

/// Opens a file read-only with O_CLOEXEC; used by verbs that need an fd for polling.
pub fn open_cloexec(path: &Path, flags: i32) -> std::io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_CLOEXEC)
        .open(path)
}

/// What `list` shows for a directory whose state.json cannot be read: a create still
/// writing it, one killed before it did, or a damaged file. `delete` removes any of them.
pub fn placeholder_json(id: &str, status: Status) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "",
        "id": id,
        "pid": 0,
        "status": status.as_str(),
        "bundle": "",
        "rootfs": "",
        "created": "",
        "owner": "",
    })
}

/// The state hooks and the seccomp agent receive, in runc's shape (its specs.State): the
/// runtime's spec version, no pid once there is none, annotations only when there are some,
/// and nothing berth keeps for itself (created, owner, rootfs).
pub fn hook_state(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &Path,
    annotations: &BTreeMap<String, String>,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "ociVersion": crate::spec::SPEC_VERSION,
        "id": id,
        "status": status,
    });
    if pid != 0 {
        v["pid"] = serde_json::json!(pid);
    }
    v["bundle"] = serde_json::json!(bundle);
    if !annotations.is_empty() {
        v["annotations"] = serde_json::json!(annotations);
    }
    v
}

/// The OCI state document (runtime.md "State") in runc's shape.
pub fn oci_state_json(st: &State, status: Status) -> serde_json::Value {
    let pid = if status == Status::Stopped { 0 } else { st.pid };
    // runc's shape: its own spec version, annotations only when there are some.
    let mut v = serde_json::json!({
        "ociVersion": crate::spec::SPEC_VERSION,
        "id": st.id,
        "pid": pid,
        "status": status.as_str(),
        "bundle": st.bundle,
        "rootfs": st.rootfs,
        "created": st.created,
    });
    if let Some(o) = v.as_object_mut() {
        if !st.annotations.is_empty() {
            o.insert("annotations".into(), serde_json::json!(st.annotations));
        }
        o.insert("owner".into(), serde_json::json!(""));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "a\0b", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stat_parsing_handles_odd_comm() {
        let (t, s) = proc_start_time(std::process::id() as i32).unwrap();
        assert!(t > 0);
        // The main thread may be sleeping while this test thread runs.
        assert!(matches!(s, 'R' | 'S'), "{s}");
    }
}
