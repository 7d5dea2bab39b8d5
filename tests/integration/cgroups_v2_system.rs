//! A system container, LXC-style: systemd as the container's PID 1 on a Debian root, in a
//! cgroup namespace with a writable cgroup2 mount, reaching `running`. Guest lane only
//! (the guest's own Debian root, bound read-only, is the container's rootfs).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cgroups_v2::{cg_dir, guest, read};
use crate::common::Env;

/// Units that have no business in this container: the lane's own runner (it would mount
/// the payload disk and power off), root remounting (the root is read-only on purpose),
/// and podman's, which the image has for the engine tests (they fail without storage).
const MASKED: &[&str] = &[
    "berth-lane.service",
    "systemd-remount-fs.service",
    "podman.service",
    "podman.socket",
    "podman-restart.service",
    "podman-auto-update.service",
    "podman-auto-update.timer",
];

fn sysroot(env: &Env) -> std::path::PathBuf {
    let name = env
        .tmp
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    std::path::Path::new("/run").join(format!("{name}-sysroot"))
}

fn system_container() -> Env {
    let mut env = Env::new(&[]);
    let mut args = vec!["/lib/systemd/systemd".to_string()];
    args.extend(MASKED.iter().map(|u| format!("systemd.mask={u}")));
    env.config["process"]["args"] = json!(args);
    env.config["process"]["env"] = json!([
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "container=oci"
    ]);
    env.config["process"]["noNewPrivileges"] = json!(false);
    let caps = json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_ADMIN",
        "CAP_SYS_CHROOT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_RESOURCE",
        "CAP_MKNOD",
        "CAP_AUDIT_WRITE",
        "CAP_SETFCAP",
        "CAP_SYS_PTRACE",
        "CAP_IPC_LOCK",
        "CAP_SYS_NICE"
    ]);
    for set in ["bounding", "effective", "permitted"] {
        env.config["process"]["capabilities"][set] = caps.clone();
    }
    env.config["process"]["capabilities"]["ambient"] = json!([]);
    // The guest's own root filesystem, bound (not recursively) at a directory of its own:
    // "/" itself cannot be pivoted into (EBUSY), by berth as by runc.
    // Outside the test's temporary directory and read-only: removing that directory must
    // never walk into the guest's root.
    let sysroot = sysroot(&env);
    std::fs::create_dir_all(&sysroot).unwrap();
    let s = sysroot.to_str().unwrap();
    for args in [["--bind", "/", s], ["-o", "remount,bind,ro", s]] {
        let st = std::process::Command::new("mount")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "mount {args:?}");
    }
    env.config["root"] = json!({"path": sysroot, "readonly": true});
    // An empty fstab: the guest's names /dev/vda, a device no container ever sees.
    let fstab = env.tmp.path().join("fstab");
    std::fs::write(&fstab, "").unwrap();
    let mounts = env.config["mounts"].as_array_mut().unwrap();
    // The rootfs is the guest's own root: a bind source under /tmp must be mounted before
    // the container's /tmp tmpfs hides it. /out is not used here.
    mounts.retain(|m| m["destination"] != "/sys/fs/cgroup" && m["destination"] != "/out");
    mounts.insert(
        0,
        json!({"destination": "/etc/fstab", "type": "bind", "source": fstab,
            "options": ["bind", "ro"]}),
    );
    mounts.push(
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "rw"]}),
    );
    for dir in ["/run", "/run/lock", "/var/log/journal", "/var/tmp"] {
        mounts.push(
            json!({"destination": dir, "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=755"]}),
        );
    }
    env
}

#[test]
#[ignore = "guest lane: needs a pure cgroup v2 host with a Debian root (tests/guest/run.sh)"]
fn guest_cgv2_systemd_as_pid1_reaches_running() {
    guest();
    let mut env = system_container();
    let path = format!("/berth-v2s/{}", env.id());
    env.set("/linux/cgroupsPath", json!(path));
    let id = env.start_detached();
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(240) {
        let o = env.berth(&["exec", &id, "systemctl", "is-system-running"]);
        last = o.stdout.trim().to_string();
        if matches!(last.as_str(), "running" | "degraded") {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let failed = env.berth(&[
        "exec",
        &id,
        "systemctl",
        "--failed",
        "--no-legend",
        "--plain",
    ]);
    let pid1 = env.berth(&["exec", &id, "cat", "/proc/1/comm"]);
    let cgroup = env.berth(&["exec", &id, "cat", "/proc/1/cgroup"]);
    // systemd made its own tree inside the container's cgroup: init.scope, system.slice.
    let dir = cg_dir(&path);
    let subtree: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let controllers = read(&dir, "cgroup.subtree_control");
    env.berth(&["delete", "--force", &id]).ok();
    let _ = std::process::Command::new("umount")
        .arg(sysroot(&env))
        .status();
    let _ = std::fs::remove_dir(sysroot(&env));
    env.assert_clean(&id);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert_eq!(pid1.stdout.trim(), "systemd");
    assert_eq!(
        cgroup.stdout.trim(),
        "0::/init.scope",
        "systemd's own cgroup, namespaced"
    );
    assert!(
        subtree.iter().any(|s| s == "init.scope") && subtree.iter().any(|s| s == "system.slice"),
        "systemd's cgroups under the container's: {subtree:?}"
    );
    assert!(controllers.contains("memory"), "delegated: {controllers}");
    assert_eq!(
        last,
        "running",
        "is-system-running after {:?}; failed units: {}",
        start.elapsed(),
        failed.stdout
    );
}
