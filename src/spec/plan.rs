//! The plan: one validated, resolved representation of a container that everything after
//! parsing trusts. Paths are absolute, flags computed, namespace files opened and checked.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{Hook, LinuxResources};

use super::mountopts::MountOptions;

#[derive(Debug)]
pub struct Plan {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub readonly_root: bool,
    pub oci_version: String,
    pub annotations: BTreeMap<String, String>,
    pub namespaces: Namespaces,
    pub mounts: Vec<MountPlan>,
    pub rootfs_propagation: Option<MsFlags>,
    pub devices: Vec<DevicePlan>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub sysctl: Vec<(String, String)>,
    pub personality: Option<Personality>,
    pub memory_policy: Option<MemoryPolicyPlan>,
    /// `linux.netDevices`, sorted by host name so moves happen in a stable order.
    pub net_devices: Vec<NetDevicePlan>,
    pub process: ProcessPlan,
    pub hooks: HookPlan,
    pub cgroups_path: Option<PathBuf>,
    pub resources: Option<LinuxResources>,
    pub seccomp: Option<SeccompPlan>,
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a fresh `_ses.<id>` one.
    pub no_new_keyring: bool,
}

/// A compiled seccomp profile and where its notification listener goes.
impl Plan {
    /// The OCI state (runtime.md "State") hooks and the seccomp agent receive, in runc's
    /// shape: the runtime's own spec version (the state complies with what the runtime
    /// implements, not with the config's version), annotations only when there are some.
    pub fn state(&self, pid: i32, status: &str) -> serde_json::Value {
        crate::state::hook_state(&self.id, status, pid, &self.bundle, &self.annotations)
    }
}

#[derive(Debug, Clone)]
pub struct SeccompPlan {
    pub compiled: crate::security::seccomp::Compiled,
    pub listener_path: Option<PathBuf>,
    pub listener_metadata: String,
}

/// Namespaces to create (clone/unshare flags) and to join (already-open, type-checked fds).
#[derive(Debug)]
pub struct Namespaces {
    /// New namespaces, as CLONE_NEW* flags.
    pub new: CloneFlags,
    /// Namespaces to join: (flag of the type, open fd on the nsfs file, the path for messages).
    pub join: Vec<(CloneFlags, OwnedFd, PathBuf)>,
    pub uid_mappings: Vec<IdMap>,
    pub gid_mappings: Vec<IdMap>,
    /// (clock name in timens_offsets: "monotonic"/"boottime", secs, nanosecs)
    pub time_offsets: Vec<(String, i64, u32)>,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            new: CloneFlags::empty(),
            join: Vec::new(),
            uid_mappings: Vec::new(),
            gid_mappings: Vec::new(),
            time_offsets: Vec::new(),
        }
    }
}

impl Namespaces {
    /// True when the container gets a user namespace (new or joined).
    pub fn has_user(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWUSER) || self.joins(CloneFlags::CLONE_NEWUSER)
    }

    pub fn joins(&self, flag: CloneFlags) -> bool {
        self.join.iter().any(|(f, _, _)| *f == flag)
    }

    /// The container has a private namespace of this type (created or joined).
    pub fn has(&self, flag: CloneFlags) -> bool {
        self.new.contains(flag) || self.joins(flag)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    /// A filesystem type for mount(2): proc, tmpfs, sysfs, devpts, overlay, …
    Fs(String),
}

#[derive(Debug, Clone)]
pub struct MountPlan {
    /// Index in config.json `mounts`, for messages.
    pub index: usize,
    /// Absolute path inside the container.
    pub destination: PathBuf,
    /// Absolute host path for binds; the fs source string otherwise.
    pub source: Option<PathBuf>,
    pub kind: MountKind,
    pub options: MountOptions,
    /// Idmapped bind mount: (uid mappings, gid mappings) as containerID → hostID.
    pub idmap: Option<(Vec<IdMap>, Vec<IdMap>)>,
}

#[derive(Debug, Clone)]
pub struct DevicePlan {
    pub path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: libc::mode_t,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A host network interface to move into the container's new network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevicePlan {
    /// Its name on the host (the key in `linux.netDevices`).
    pub host: String,
    /// Its name inside the container (`name`, or the host name when absent).
    pub name: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Personality {
    pub domain: libc::c_ulong,
}

/// `linux.memoryPolicy` as set_mempolicy(2) takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPolicyPlan {
    /// MPOL_* mode with the MPOL_F_* flags OR'ed in.
    pub mode: libc::c_int,
    /// Node bitmask, 64 nodes a word; empty for modes without nodes.
    pub mask: Vec<libc::c_ulong>,
    /// The config's words ("MPOL_BIND nodes 0-3"), for messages.
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Rlimit {
    pub name: String,
    pub resource: libc::c_int,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, Default)]
pub struct CapSets {
    pub bounding: caps::CapsHashSet,
    pub effective: caps::CapsHashSet,
    pub permitted: caps::CapsHashSet,
    pub inheritable: caps::CapsHashSet,
    pub ambient: caps::CapsHashSet,
}

#[derive(Debug, Clone, Copy)]
pub struct IoPriority {
    pub class: i32,
    pub level: i32,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SchedulerPlan {
    pub policy: u32,
    pub nice: i32,
    pub priority: u32,
    pub flags: u64,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub umask: Option<u32>,
    pub additional_gids: Vec<u32>,
    /// None: leave capabilities as they are (config has no `capabilities`).
    pub caps: Option<CapSets>,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub io_priority: Option<IoPriority>,
    pub scheduler: Option<SchedulerPlan>,
    pub cpu_affinity_initial: Option<Vec<usize>>,
    pub cpu_affinity_final: Option<Vec<usize>>,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    /// `process.apparmorProfile`: the AppArmor profile the process runs under.
    pub apparmor_profile: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct HookPlan {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}
