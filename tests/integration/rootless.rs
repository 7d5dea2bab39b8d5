//! Rootless berth (issue 16): an ordinary user with subordinate id ranges runs containers
//! from `spec --rootless` bundles, compared with runc where both can run the scenario.
//!
//! The user (`berth-rootless`) and its /etc/subuid and /etc/subgid ranges are made once per
//! test run, idempotently; every command runs as that user through runuser with a clean
//! environment and an XDG_RUNTIME_DIR of the test's own (0700, the user's). The bundle, its
//! rootfs and the berth binary are copied into the test's directory, so the user can read
//! them wherever the checkout lives. This host is hybrid cgroup v1: no cgroup is the user's,
//! so containers run without cgroups and a resource limit is refused.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use super::common::{BIN, Out, default_bundle, run_cmd};

pub(crate) const USER: &str = "berth-rootless";

/// The rootless user: (uid, gid, first subordinate id, count).
pub(crate) fn user() -> (u32, u32, u32, u32) {
    static U: OnceLock<(u32, u32, u32, u32)> = OnceLock::new();
    *U.get_or_init(|| {
        let have = |args: &[&str]| Command::new(args[0]).args(&args[1..]).output();
        if !have(&["id", "-u", USER]).unwrap().status.success() {
            let o = have(&["useradd", "-m", "-s", "/bin/sh", USER]).unwrap();
            assert!(o.status.success(), "useradd: {o:?}");
        }
        let num = |flag: &str| -> u32 {
            let o = have(&["id", flag, USER]).unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (num("-u"), num("-g"));
        let sub = sub_range("/etc/subuid");
        let subg = sub_range("/etc/subgid");
        assert_eq!(
            sub, subg,
            "keep /etc/subuid and /etc/subgid alike for {USER}"
        );
        (uid, gid, sub.0, sub.1)
    })
}

/// The user's range in /etc/subuid or /etc/subgid, appended past every other one if missing.
fn sub_range(file: &str) -> (u32, u32) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let ranges: Vec<(String, u32, u32)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.first()?.to_string(),
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
            ))
        })
        .collect();
    if let Some((_, start, n)) = ranges.iter().find(|(u, _, _)| u == USER) {
        return (*start, *n);
    }
    let start = ranges
        .iter()
        .map(|(_, s, n)| s + n)
        .max()
        .unwrap_or(100000)
        .max(100000);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .unwrap();
    use std::io::Write;
    writeln!(f, "{USER}:{start}:65536").unwrap();
    (start, 65536)
}

/// A directory the rootless user owns: its bundle, its berth and its XDG_RUNTIME_DIR.
pub(crate) struct UserDir {
    pub tmp: tempfile::TempDir,
    pub xdg: PathBuf,
    pub berth: PathBuf,
}

impl UserDir {
    pub(crate) fn new(prefix: &str) -> UserDir {
        let (uid, gid, _, _) = user();
        let tmp = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        let xdg = tmp.path().join("xdg");
        std::fs::create_dir(&xdg).unwrap();
        std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
        let berth = tmp.path().join("berth");
        std::fs::copy(BIN, &berth).unwrap();
        std::os::unix::fs::chown(&xdg, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(tmp.path(), Some(uid), Some(gid)).unwrap();
        UserDir { tmp, xdg, berth }
    }

    pub(crate) fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `prog args…` as the user, with only PATH, HOME, USER and XDG_RUNTIME_DIR set.
    pub(crate) fn command(&self, prog: &str, args: &[&str]) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", USER, "--", "env", "-i"])
            .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .arg(format!("HOME=/home/{USER}"))
            .arg(format!("USER={USER}"))
            .arg(format!("XDG_RUNTIME_DIR={}", self.xdg.display()))
            .current_dir(self.path())
            .arg(prog)
            .args(args);
        c
    }

    pub(crate) fn run(&self, prog: &str, args: &[&str]) -> Out {
        run_cmd(&mut self.command(prog, args), Duration::from_secs(60))
    }

    /// The user's berth, with its default --root (not given).
    fn berth(&self, args: &[&str]) -> Out {
        self.run(self.berth.to_str().unwrap(), args)
    }

    /// A bundle from `spec --rootless` (written by the user) running `script`.
    fn bundle(&self, name: &str, script: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
        let b = self.path().join(name);
        std::fs::create_dir(&b).unwrap();
        let st = Command::new("cp")
            .arg("-a")
            .arg(default_bundle().join("rootfs"))
            .arg(b.join("rootfs"))
            .status()
            .unwrap();
        assert!(st.success());
        let (uid, gid, _, _) = user();
        std::os::unix::fs::chown(&b, Some(uid), Some(gid)).unwrap();
        self.berth(&["spec", "--rootless", "--bundle", b.to_str().unwrap()])
            .ok();
        let mut c: Value =
            serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", script]);
        edit(&mut c);
        std::fs::write(b.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
        b
    }

    fn run_bundle(&self, b: &Path, id: &str) -> Out {
        self.berth(&["run", "--bundle", b.to_str().unwrap(), id])
    }

    fn runc_bundle(&self, b: &Path, id: &str) -> Out {
        self.run("runc", &["run", "--bundle", b.to_str().unwrap(), id])
    }

    /// Nothing is left of `ids`: not in the state directories, not as cgroups of berth's
    /// or the user's anywhere in the host's hierarchies.
    pub(crate) fn assert_clean(&self, ids: &[&str]) {
        for sub in ["berth", "runc"] {
            let left: Vec<_> = std::fs::read_dir(self.xdg.join(sub))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert!(left.is_empty(), "left in $XDG_RUNTIME_DIR/{sub}: {left:?}");
        }
        for h in super::common::cgroup_mounts() {
            for id in ids {
                assert!(
                    !h.join("berth").join(id).exists(),
                    "cgroup of {id} in {h:?}"
                );
            }
        }
        let (uid, _, _, _) = user();
        let o = run_cmd(
            Command::new("find")
                .args(["/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-uid"])
                .arg(uid.to_string()),
            Duration::from_secs(30),
        );
        assert_eq!(o.stdout, "", "cgroups owned by {USER} left");
    }
}

/// The mode of the state directory berth made under XDG_RUNTIME_DIR.
fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn rootless_run_is_root_inside_with_the_users_id_mapped() {
    let (uid, gid, _, _) = user();
    let u = UserDir::new("berth-rl-");
    let b = u.bundle(
        "b",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; \
         echo w > /tmp/f 2>/dev/null || echo ro-root",
        |_| {},
    );
    let o = u.run_bundle(&b, "rl-a");
    o.ok();
    let lines: Vec<String> = o
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "0".to_string(),
            "0".to_string(),
            format!("0 {uid} 1"),
            format!("0 {gid} 1"),
            "deny".to_string(),
            "ro-root".to_string(),
        ]
    );
    // runc shows the same container.
    let r = u.runc_bundle(&b, "rl-a");
    r.ok();
    assert_eq!(r.stdout, o.stdout);
    // State under $XDG_RUNTIME_DIR/berth, 0700 and sticky as runc's own, and empty again.
    assert_eq!(mode(&u.xdg.join("berth")), 0o1700);
    assert_eq!(mode(&u.xdg.join("runc")), 0o1700);
    u.assert_clean(&["rl-a"]);
}

#[test]
fn rootless_detached_exec_kill_delete_and_pause_refused() {
    let u = UserDir::new("berth-rl-");
    let b = u.bundle("b", "sleep 100", |_| {});
    u.berth(&["run", "-d", "--bundle", b.to_str().unwrap(), "rl-d"])
        .ok();
    let st: Value = serde_json::from_str(&u.berth(&["state", "rl-d"]).stdout).unwrap();
    assert_eq!(st["status"], "running");
    let o = u.berth(&[
        "exec",
        "rl-d",
        "sh",
        "-c",
        "id -u; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    o.ok();
    // busybox sh execs its last command: pid 1 is sleep.
    assert_eq!(o.stdout, "0\nsleep 100 ");
    let list = u.berth(&["list", "-q"]);
    assert_eq!(list.stdout, "rl-d\n");
    // No freezer cgroup for a rootless container on cgroup v1: a clear refusal.
    u.berth(&["pause", "rl-d"])
        .fails_with(&["freezer", "rootless"]);
    // Nor a cgroup to list its processes from.
    u.berth(&["ps", "rl-d"])
        .fails_with(&["no pids cgroup", "rootless"]);
    // No cgroup to list its processes: --all signals the init, and its pid namespace ends.
    u.berth(&["kill", "--all", "rl-d", "KILL"]).ok();
    for _ in 0..200 {
        let st: Value = serde_json::from_str(&u.berth(&["state", "rl-d"]).stdout).unwrap();
        if st["status"] == "stopped" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    u.berth(&["delete", "rl-d"]).ok();
    u.assert_clean(&["rl-d"]);
}

#[test]
fn rootless_multi_range_mapping_goes_through_newuidmap() {
    let (uid, gid, sub, _) = user();
    let u = UserDir::new("berth-rl-");
    let maps = |own: u32| {
        json!([{"containerID": 0, "hostID": own, "size": 1},
               {"containerID": 1, "hostID": sub, "size": 65536}])
    };
    let b = u.bundle(
        "b",
        "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; \
         chown 1000:1000 /tmp/f && stat -c '%u %g' /tmp/f",
        |c| {
            c["linux"]["uidMappings"] = maps(uid);
            c["linux"]["gidMappings"] = maps(gid);
            c["root"]["readonly"] = json!(false);
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set] = json!(["CAP_CHOWN"]);
            }
        },
    );
    std::fs::write(b.join("rootfs/tmp/f"), "").unwrap();
    // The rootfs belongs to the user (container root): chown works on mapped ids only.
    let st = Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(b.join("rootfs"))
        .status()
        .unwrap();
    assert!(st.success());
    let o = u.run_bundle(&b, "rl-m");
    o.ok();
    let norm = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(
        norm(&o.stdout),
        [
            format!("0 {uid} 1"),
            format!("1 {sub} 65536"),
            format!("0 {gid} 1"),
            format!("1 {sub} 65536"),
            // newgidmap leaves setgroups allowed: the container may set its groups.
            "allow".to_string(),
            "1000 1000".to_string(),
        ]
    );
    // Seen from the host, the file belongs to the subordinate id.
    let meta = std::fs::metadata(b.join("rootfs/tmp/f")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (sub + 999, sub + 999));
    std::fs::write(b.join("rootfs/tmp/f"), "").unwrap();
    let st = Command::new("chown")
        .args([&format!("{uid}:{gid}")])
        .arg(b.join("rootfs/tmp/f"))
        .status()
        .unwrap();
    assert!(st.success());
    let r = u.runc_bundle(&b, "rl-m");
    r.ok();
    assert_eq!(r.stdout, o.stdout);
    // A range the user was not given: newuidmap refuses, and berth says which field.
    let bad = u.bundle("bad", "true", |c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1},
            {"containerID": 1, "hostID": 10, "size": 5}]);
    });
    u.run_bundle(&bad, "rl-bad")
        .fails_with(&["linux.uidMappings", "newuidmap", "/etc/subuid"]);
    u.assert_clean(&["rl-m", "rl-bad"]);
}

#[test]
fn rootless_refusals_name_the_field() {
    let u = UserDir::new("berth-rl-");
    // cgroup v1 is not the user's: a limit cannot be applied, and berth says so.
    let b = u.bundle("mem", "true", |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    });
    u.run_bundle(&b, "rl-mem").fails_with(&[
        "linux.resources.memory",
        "rootless",
        "/sys/fs/cgroup/memory/",
    ]);
    let r = u.runc_bundle(&b, "rl-mem");
    assert_ne!(r.code, 0, "runc applied a memory limit rootless on v1?");
    assert!(r.stderr.contains("cannot set memory limit"), "{}", r.stderr);
    // Device rules alone (what engines always send) are skipped, as runc does.
    let b = u.bundle("dev", "echo ran", |c| {
        c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    });
    assert_eq!(u.run_bundle(&b, "rl-dev").ok().stdout, "ran\n");
    // An ordinary user needs a user namespace.
    let b = u.bundle("nouserns", "true", |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "user");
        c["linux"].as_object_mut().unwrap().remove("uidMappings");
        c["linux"].as_object_mut().unwrap().remove("gidMappings");
    });
    u.run_bundle(&b, "rl-nouser")
        .fails_with(&["linux.namespaces", "user namespace", "rootless"]);
    assert!(
        u.runc_bundle(&b, "rl-nouser")
            .stderr
            .contains("requires user namespaces")
    );
    // oom_score_adj may not go below the caller's.
    let b = u.bundle("oom", "true", |c| c["process"]["oomScoreAdj"] = json!(-100));
    u.run_bundle(&b, "rl-oom")
        .fails_with(&["process.oomScoreAdj", "-100"]);
    let r = u.runc_bundle(&b, "rl-oom");
    assert!(
        r.code != 0 && r.stderr.contains("oom_score_adj"),
        "{}",
        r.stderr
    );
    // Raising it is allowed.
    let b = u.bundle("oomup", "cat /proc/self/oom_score_adj", |c| {
        c["process"]["oomScoreAdj"] = json!(500)
    });
    assert_eq!(u.run_bundle(&b, "rl-oomup").ok().stdout, "500\n");
    u.assert_clean(&["rl-mem", "rl-dev", "rl-nouser", "rl-oom", "rl-oomup"]);
}

#[test]
fn rootless_network_namespace_has_lo_up_and_sys_is_read_only() {
    let u = UserDir::new("berth-rl-");
    let script = "cat /sys/class/net/lo/operstate /sys/class/net/lo/flags; \
                  touch /sys/x 2>/dev/null || echo ro";
    // With a network namespace the container owns, sysfs is mounted (lo is UP: 0x9).
    let b = u.bundle("net", script, |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "network"}));
        c["mounts"][5] = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"]});
    });
    let o = u.run_bundle(&b, "rl-net");
    o.ok();
    assert_eq!(o.stdout, "unknown\n0x9\nro\n");
    let r = u.runc_bundle(&b, "rl-net");
    assert_eq!(r.ok().stdout, o.stdout);
    // Without one (spec --rootless's default), /sys is the host's, bound read-only.
    let b = u.bundle("nonet", "grep ' /sys ' /proc/self/mountinfo | head -1 | cut -d' ' -f4,6; touch /sys/x 2>/dev/null || echo ro", |_| {});
    let o = u.run_bundle(&b, "rl-nonet");
    o.ok();
    assert_eq!(o.stdout, "/ ro,nosuid,nodev,noexec,relatime\nro\n");
    // And a sysfs mount (not a bind) in a config without a netns falls back to a bind.
    let b = u.bundle(
        "sysfs",
        "touch /sys/x 2>/dev/null || echo ro; ls /sys/kernel >/dev/null && echo listed",
        |c| {
            c["mounts"][5] = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"]});
        },
    );
    assert_eq!(u.run_bundle(&b, "rl-sysfs").ok().stdout, "ro\nlisted\n");
    u.assert_clean(&["rl-net", "rl-nonet", "rl-sysfs"]);
}

#[test]
fn spec_rootless_equals_runcs() {
    let u = UserDir::new("berth-rl-");
    let (ours, theirs) = (u.path().join("ours"), u.path().join("theirs"));
    for d in [&ours, &theirs] {
        std::fs::create_dir(d).unwrap();
        let (uid, gid, _, _) = user();
        std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap();
    }
    u.berth(&["spec", "--rootless", "--bundle", ours.to_str().unwrap()])
        .ok();
    u.run(
        "runc",
        &["spec", "--rootless", "--bundle", theirs.to_str().unwrap()],
    )
    .ok();
    let read = |d: &Path| -> Value {
        let mut v: Value =
            serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
        // Each runtime names itself and its own spec version.
        v["hostname"] = json!("HOST");
        v["ociVersion"] = json!("VERSION");
        v
    };
    let (a, b) = (read(&ours), read(&theirs));
    assert_eq!(a, b, "berth:\n{a:#}\nrunc:\n{b:#}");
    let (uid, _, _, _) = user();
    assert_eq!(a["linux"]["uidMappings"][0]["hostID"], uid);
}

/// A cgroup v2 subtree delegated to the user as systemd's `Delegate=yes` does it: the
/// directory and its cgroup.procs, cgroup.subtree_control and cgroup.threads are the
/// user's. `runner/` holds the user's commands (a process may be moved only within a
/// subtree whose cgroup.procs the mover can write). Removed when dropped.
struct Delegated(PathBuf);

impl Delegated {
    fn new() -> Delegated {
        let (uid, gid, _, _) = user();
        let d = PathBuf::from(format!("/sys/fs/cgroup/berth-rl-{}", std::process::id()));
        for dir in [d.clone(), d.join("runner")] {
            std::fs::create_dir(&dir).unwrap();
            for f in [
                "",
                "cgroup.procs",
                "cgroup.subtree_control",
                "cgroup.threads",
            ] {
                std::os::unix::fs::chown(dir.join(f), Some(uid), Some(gid)).unwrap();
            }
        }
        Delegated(d)
    }

    /// `cmd` (the user's) started from the delegated `runner` cgroup: root moves the shell
    /// there, then runuser drops to the user.
    fn wrap(&self, cmd: &Command) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", "echo $$ > \"$0\" && exec \"$@\""])
            .arg(self.0.join("runner/cgroup.procs"))
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .current_dir(cmd.get_current_dir().unwrap_or(Path::new("/")));
        c
    }

    fn children(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "runner")
            .collect()
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0.join("runner"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
#[ignore = "guest lane: needs a cgroup v2 + systemd + AppArmor host (tests/guest/run.sh)"]
fn guest_rootless_memory_limit_in_a_delegated_v2_subtree() {
    let u = UserDir::new("berth-rl-");
    let deleg = Delegated::new();
    // The container sees its own cgroup (spec --rootless adds a cgroup namespace on v2).
    let b = u.bundle(
        "mem",
        "cat /sys/fs/cgroup/memory.max; cat /proc/self/cgroup",
        |c| c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 64}}),
    );
    let bundle = b.to_str().unwrap();
    let berth = u.berth.to_str().unwrap();
    let o = run_cmd(
        &mut deleg.wrap(&u.command(berth, &["run", "--bundle", bundle, "rl-v2"])),
        Duration::from_secs(120),
    );
    o.ok();
    assert_eq!(o.stdout, "67108864\n0::/\n");
    let r = run_cmd(
        &mut deleg.wrap(&u.command("runc", &["run", "--bundle", bundle, "rl-v2"])),
        Duration::from_secs(120),
    );
    assert_eq!(r.ok().stdout, o.stdout, "runc differs");
    // While it runs, the limit is in the delegated tree, beside the runner (runc's place).
    // Started outside the delegated subtree, the user may write no cgroup: refused.
    u.berth(&["run", "--bundle", bundle, "rl-v2"])
        .fails_with(&["linux.resources.memory", "rootless"]);
    let bs = u.bundle("sleep", "sleep 100", |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 33554432}})
    });
    run_cmd(
        &mut deleg.wrap(&u.command(
            berth,
            &["run", "-d", "--bundle", bs.to_str().unwrap(), "rl-v2d"],
        )),
        Duration::from_secs(120),
    )
    .ok();
    let max = std::fs::read_to_string(deleg.0.join("rl-v2d/memory.max")).unwrap();
    assert_eq!(max, "33554432\n");
    let cg = std::fs::metadata(deleg.0.join("rl-v2d")).unwrap();
    assert_eq!(cg.uid(), user().0, "the container's cgroup is the user's");
    u.berth(&["delete", "--force", "rl-v2d"]).ok();
    assert_eq!(deleg.children(), Vec::<String>::new(), "cgroups left");
    drop(deleg);
    u.assert_clean(&["rl-v2", "rl-v2d"]);
}
