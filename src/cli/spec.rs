use std::path::PathBuf;

use berth::container::Error;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write config.json into (default: current directory)
    #[arg(short = 'b', long)]
    pub bundle: Option<PathBuf>,
    /// A config for a user namespace mapped to the calling user, without a network namespace
    #[arg(long)]
    pub rootless: bool,
}

/// A default config.json for a busybox bundle, equal in spirit to `runc spec`.
pub fn default_config(rootless: bool) -> serde_json::Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if unified_host() {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut c = json!({
        "ociVersion": berth::spec::SPEC_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        // runc's ToRootless: the effective ids, no uid=/gid= mount options (they would
        // name ids the single mapping lacks), no resources, /sys bound.
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        for m in c["mounts"].as_array_mut().into_iter().flatten() {
            if let Some(opts) = m.get_mut("options").and_then(|o| o.as_array_mut()) {
                opts.retain(|o| {
                    let o = o.as_str().unwrap_or("");
                    !o.starts_with("uid=") && !o.starts_with("gid=")
                });
            }
        }
        namespaces.push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        c["linux"].as_object_mut().map(|l| l.remove("resources"));
        // sysfs needs a network namespace; without one, bind the host's read-only.
        c["mounts"][5] = json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
    } else {
        namespaces.insert(1, json!({"type": "network"}));
    }
    c["linux"]["namespaces"] = json!(namespaces);
    c
}

/// runc's spec (1.2 on) asks for a cgroup namespace only where /sys/fs/cgroup is cgroup2:
/// on a v1 or hybrid host a container's cgroup namespace would hide nothing of v1.
fn unified_host() -> bool {
    use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};
    statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

pub fn exec(a: &Args) -> Result<i32, Error> {
    let dir = a.bundle.clone().unwrap_or_default();
    let path = dir.join("config.json");
    if path.exists() {
        return Err(Error::Msg(format!(
            "{}: already exists; remove it first",
            path.display()
        )));
    }
    let text = serde_json::to_string_pretty(&default_config(a.rootless)).unwrap_or_default();
    std::fs::write(&path, text + "\n")
        .map_err(|e| Error::Msg(format!("write {}: {e}", path.display())))?;
    Ok(0)
}
