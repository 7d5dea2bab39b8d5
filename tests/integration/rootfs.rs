//! Root filesystem: root.path/readonly, mounts with their options, propagation, safe
//! destinations, /dev, masked and read-only paths, pivot_root and --no-pivot.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::common::*;

/// The mountinfo line of `dest` as the container printed it.
fn mount_line<'a>(mountinfo: &'a str, dest: &str) -> &'a str {
    mountinfo
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(dest))
        .unwrap_or_else(|| panic!("{dest} is not a mount point in:\n{mountinfo}"))
}

#[test]
fn readonly_root_and_default_mounts() {
    let env = Env::new(&[
        "sh",
        "-c",
        "touch /newfile 2>/dev/null && echo wrote; cat /proc/self/mountinfo",
    ]);
    let out = env.run();
    out.ok();
    assert!(
        !out.stdout.contains("wrote"),
        "root.readonly: true but / is writable"
    );
    let mi = &out.stdout;
    assert!(
        mount_line(mi, "/").contains(" ro,") || mount_line(mi, "/").contains(" ro "),
        "{}",
        mount_line(mi, "/")
    );
    for (dest, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/sys/fs/cgroup", "tmpfs"),
        ("/tmp", "tmpfs"),
    ] {
        let l = mount_line(mi, dest);
        assert!(l.contains(&format!(" - {fstype} ")), "{dest}: {l}");
    }
    let tmp = mount_line(mi, "/tmp");
    assert!(tmp.contains("nosuid") && tmp.contains("nodev"), "{tmp}");
    let sys = mount_line(mi, "/sys");
    assert!(sys.contains(" ro,"), "{sys}");
    // The old root is gone after pivot_root: nothing of the host's tree is mounted.
    assert!(
        !mi.contains(env.tmp.path().to_str().unwrap())
            || mi
                .lines()
                .all(|l| !l.split(' ').nth(4).unwrap().starts_with("/work"))
    );
}

#[test]
fn writable_root_and_relative_root_path() {
    let mut env = Env::new(&[
        "sh",
        "-c",
        "echo x > /tmp2-probe && cat /tmp2-probe && rm /tmp2-probe",
    ]);
    // A bundle with its own copy of the rootfs, named relative to the bundle.
    let st = Command::new("cp")
        .arg("-a")
        .arg(default_bundle().join("rootfs"))
        .arg(env.bundle.join("myroot"))
        .status()
        .unwrap();
    assert!(st.success());
    env.set("/root", json!({"path": "myroot", "readonly": false}));
    let out = env.run();
    out.ok();
    assert_eq!(out.stdout, "x\n");
}

#[test]
fn cgroup_mount_shows_the_containers_cgroups() {
    let env = Env::new(&[
        "sh",
        "-c",
        "ls /sys/fs/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes >/dev/null && echo memory-ok",
    ]);
    let out = env.run();
    out.ok();
    // Not `unified`: on a hybrid host runc (and berth) mount only the v1 hierarchies.
    for c in ["memory", "pids", "devices", "freezer", "cpu"] {
        if Path::new("/sys/fs/cgroup").join(c).exists() {
            assert!(
                out.stdout.lines().any(|l| l == c),
                "{c} missing in {}",
                out.stdout
            );
        }
    }
    assert!(out.stdout.contains("memory-ok"));
    let v1 = Path::new("/sys/fs/cgroup/memory").exists();
    assert!(
        !(v1 && out.stdout.lines().any(|l| l == "unified")),
        "cgroup2 unified mounted on a hybrid host: {}",
        out.stdout
    );
}

#[test]
fn bind_mounts_ro_and_rbind_with_recursive_attributes() {
    // A host source with a submount, outside the test's temp dir so our check of host
    // mounts is not confused by it.
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("file"), "hello").unwrap();
    std::fs::create_dir(src.path().join("sub")).unwrap();
    let sub = src.path().join("sub");
    assert!(
        Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(&sub)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(sub.join("inner"), "deep").unwrap();
    let mut env = Env::new(&[
        "sh",
        "-c",
        "
        cat /b/file; echo; ls /b/sub; echo ---; cat /rb/sub/inner; echo;
        touch /b/new 2>/dev/null && echo B_WRITABLE;
        touch /rb/sub/new 2>/dev/null && echo RB_SUB_WRITABLE;
        touch /rw/sub/new 2>/dev/null && echo RW_SUB_WRITABLE; rm -f /rw/sub/new",
    ]);
    let s = src.path().to_str().unwrap();
    env.push(
        "/mounts",
        json!({"destination": "/b", "type": "bind", "source": s, "options": ["bind", "ro"]}),
    );
    env.push(
        "/mounts",
        json!({"destination": "/rb", "source": s, "options": ["rbind", "rro"]}),
    );
    env.push(
        "/mounts",
        json!({"destination": "/rw", "source": s, "options": ["rbind"]}),
    );
    let out = env.run();
    let _ = Command::new("umount").arg(&sub).status();
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "hello");
    assert_eq!(
        lines[1], "---",
        "a plain bind must not carry the submount: {lines:?}"
    );
    assert_eq!(lines[2], "deep", "rbind carries the submount");
    assert!(
        !lines.contains(&"B_WRITABLE"),
        "ro bind is writable: {}",
        out.stdout
    );
    assert!(
        !lines.contains(&"RB_SUB_WRITABLE"),
        "rro did not reach the submount"
    );
    assert!(
        lines.contains(&"RW_SUB_WRITABLE"),
        "rbind without rro should stay writable"
    );
}

#[test]
fn mount_propagation_options() {
    let mut env = Env::new(&["cat", "/proc/self/mountinfo"]);
    env.push("/mounts", json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs", "options": ["shared"]}));
    env.push("/mounts", json!({"destination": "/private", "type": "tmpfs", "source": "tmpfs", "options": ["rprivate"]}));
    env.set("/linux/rootfsPropagation", json!("private"));
    let out = env.run();
    out.ok();
    assert!(
        mount_line(&out.stdout, "/shared").contains("shared:"),
        "{}",
        mount_line(&out.stdout, "/shared")
    );
    let p = mount_line(&out.stdout, "/private");
    assert!(!p.contains("shared:") && !p.contains("master:"), "{p}");
    let root = mount_line(&out.stdout, "/");
    assert!(
        !root.contains("shared:") && !root.contains("master:"),
        "rootfsPropagation private: {root}"
    );
}

#[test]
fn symlinks_in_the_rootfs_cannot_redirect_mounts_outside_it() {
    let mut env = Env::new(&["sh", "-c", "cat /proc/self/mountinfo"]);
    let rootfs = env.private_rootfs();
    let victim = tempfile::tempdir().unwrap();
    // An absolute symlink and a ../ symlink, both aiming at a host directory.
    std::os::unix::fs::symlink(victim.path(), rootfs.join("abs")).unwrap();
    let dots = format!("../../../../../../..{}", victim.path().display());
    std::os::unix::fs::symlink(&dots, rootfs.join("dots")).unwrap();
    env.set("/root/path", json!(rootfs));
    env.push(
        "/mounts",
        json!({"destination": "/abs/m1", "type": "tmpfs", "source": "tmpfs"}),
    );
    env.push(
        "/mounts",
        json!({"destination": "/dots/m2", "type": "tmpfs", "source": "tmpfs"}),
    );
    let out = env.run();
    out.ok();
    assert!(
        std::fs::read_dir(victim.path()).unwrap().next().is_none(),
        "berth created something in the host directory"
    );
    // Inside the container the mounts sit at the symlinks' targets within its root.
    let v = victim.path().display();
    assert!(
        out.stdout.contains(&format!(" {v}/m1 ")) && out.stdout.contains(&format!(" {v}/m2 ")),
        "{}",
        out.stdout
    );
}

#[test]
fn dev_has_default_devices_links_and_config_devices() {
    let mut env = Env::new(&["sh", "-c", "
        for d in null zero full random urandom tty mine; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done;
        for l in fd stdin stdout stderr ptmx; do echo /dev/$l $(readlink /dev/$l); done;
        echo hi > /dev/mine && echo mine-writable"]);
    env.push("/linux/devices", json!({"path": "/dev/mine", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0, "gid": 6}));
    let out = env.run();
    out.ok();
    let want = "\
/dev/null character special file 1:3 666 0:0
/dev/zero character special file 1:5 666 0:0
/dev/full character special file 1:7 666 0:0
/dev/random character special file 1:8 666 0:0
/dev/urandom character special file 1:9 666 0:0
/dev/tty character special file 5:0 666 0:0
/dev/mine character special file 1:3 640 0:6
/dev/fd /proc/self/fd
/dev/stdin /proc/self/fd/0
/dev/stdout /proc/self/fd/1
/dev/stderr /proc/self/fd/2
/dev/ptmx pts/ptmx
mine-writable
";
    assert_eq!(out.stdout, want);
}

#[test]
fn config_device_over_another_file_is_refused() {
    // A config mount puts a regular file where linux.devices wants a node.
    let mut env = Env::new(&["stat", "-c", "%F %t:%T", "/dev/mydev"]);
    let file = env.tmp.path().join("plain");
    std::fs::write(&file, "not a device").unwrap();
    let idx = env.config["mounts"].as_array().unwrap().len();
    env.push(
        "/mounts",
        json!({"destination": "/dev/mydev", "type": "bind", "source": file, "options": ["bind"]}),
    );
    env.push(
        "/linux/devices",
        json!({"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3}),
    );
    let id = env.id();
    env.create(&id).fails_with(&["/dev/mydev", "another file"]);
    env.assert_clean(&id);
    // The same device mounted there is kept.
    env.config["mounts"][idx]["source"] = json!("/dev/null");
    let out = env.run();
    out.ok();
    assert_eq!(out.stdout, "character special file 1:3\n");
}

#[test]
fn masked_and_readonly_paths() {
    let env = Env::new(&[
        "sh",
        "-c",
        "
        stat -c '%t:%T' /proc/keys; wc -c < /proc/keys; ls /sys/firmware | wc -l;
        echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-writable;
        grep ' /proc/sys ' /proc/self/mountinfo | cut -d' ' -f6",
    ]);
    let out = env.run();
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1:3", "/proc/keys is masked with /dev/null");
    assert_eq!(lines[1].trim(), "0");
    assert_eq!(
        lines[2].trim(),
        "0",
        "/sys/firmware is masked with an empty tmpfs"
    );
    assert!(!out.stdout.contains("sys-writable"));
    assert!(lines[3].starts_with("ro"), "{lines:?}");
}

#[test]
fn no_pivot_runs_the_container_with_chroot() {
    let env = Env::new(&["sh", "-c", "echo $$; ls /bin/busybox"]);
    env.write_config();
    let id = env.id();
    let out = env.berth(&[
        "run",
        "--no-pivot",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ]);
    out.ok();
    assert_eq!(out.stdout, "1\n/bin/busybox\n");
    env.assert_clean(&id);
}

#[test]
fn overlay_mount() {
    let mut env = Env::new(&["sh", "-c", "cat /ov/lower.txt; echo new > /ov/upper.txt"]);
    let base = env.tmp.path().join("ov");
    for d in ["lower", "upper", "work"] {
        std::fs::create_dir_all(base.join(d)).unwrap();
    }
    std::fs::write(base.join("lower/lower.txt"), "from-lower").unwrap();
    let data = format!(
        "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work",
        base.display()
    );
    env.push(
        "/mounts",
        json!({"destination": "/ov", "type": "overlay", "source": "overlay", "options": [data]}),
    );
    let out = env.run();
    out.ok();
    assert_eq!(out.stdout, "from-lower");
    assert_eq!(
        std::fs::read_to_string(base.join("upper/upper.txt")).unwrap(),
        "new\n"
    );
}

#[test]
fn recursive_atime_and_nosuid_attributes_reach_submounts() {
    let src = tempfile::tempdir().unwrap();
    let sub = src.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    assert!(
        Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(&sub)
            .status()
            .unwrap()
            .success()
    );
    let mut env = Env::new(&["cat", "/proc/self/mountinfo"]);
    let s = src.path().to_str().unwrap();
    env.push("/mounts", json!({"destination": "/a", "source": s, "options": ["rbind", "rnosuid", "rnoatime", "rnodev"]}));
    let out = env.run();
    let _ = Command::new("umount").arg(&sub).status();
    out.ok();
    for dest in ["/a", "/a/sub"] {
        let opts = mount_line(&out.stdout, dest)
            .split(' ')
            .nth(5)
            .unwrap()
            .to_string();
        for want in ["nosuid", "nodev", "noatime"] {
            assert!(
                opts.split(',').any(|o| o == want),
                "{dest}: {opts} lacks {want}"
            );
        }
    }
}

#[test]
fn tmpfs_tmpcopyup_and_mode_of_the_covered_directory() {
    // /etc is covered by a tmpfs that starts with a copy of it (runc's `tmpcopyup`);
    // /home by a plain tmpfs, which takes the mode of the directory it covers, as runc.
    let mut env = Env::new(&[
        "sh",
        "-c",
        "cat /etc/passwd | head -1; echo new > /etc/new && cat /etc/new; \
         stat -c '%a %n' /etc /etc/passwd /home; ls /home | wc -l; \
         grep -E ' /(etc|home) ' /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1",
    ]);
    env.push(
        "/mounts",
        json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "tmpcopyup"]}),
    );
    env.push(
        "/mounts",
        json!({"destination": "/home", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "ro"]}),
    );
    let out = env.run();
    out.ok();
    let host_etc = default_bundle().join("rootfs/etc");
    let etc_mode = std::fs::metadata(&host_etc).unwrap().permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        out.stdout,
        format!(
            "root:x:0:0:root:/root:/bin/sh\nnew\n{:o} /etc\n644 /etc/passwd\n755 /home\n0\ntmpfs rw\ntmpfs ro\n",
            etc_mode.mode() & 0o7777
        )
    );
    assert!(
        !host_etc.join("new").exists(),
        "the write went to the rootfs"
    );
}

#[test]
fn tmpcopyup_is_only_for_tmpfs() {
    let mut env = Env::new(&["true"]);
    env.push(
        "/mounts",
        json!({"destination": "/mnt", "type": "proc", "source": "proc",
               "options": ["tmpcopyup"]}),
    );
    env.create(&env.id())
        .fails_with(&["mounts[", "tmpcopyup is only for tmpfs mounts"]);
}

#[test]
fn cgroup_mount_without_cgroup_namespace_binds_the_containers_own_cgroups() {
    // As runc on v1: no cgroupns means binds of the container's own directories (what
    // podman and Docker on a v1 host rely on to read their limits), never the host's root.
    if !Path::new("/sys/fs/cgroup/pids/pids.max").exists()
        && !Path::new("/sys/fs/cgroup/pids").is_dir()
    {
        eprintln!("skipped: no v1 pids hierarchy");
        return;
    }
    let mut env = Env::new(&[
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids/pids.max; ls /sys/fs/cgroup/pids | grep -c '^berth$' || true; \
         touch /sys/fs/cgroup/pids/x 2>/dev/null || echo ro",
    ]);
    let ns: Vec<serde_json::Value> = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "cgroup")
        .cloned()
        .collect();
    env.set("/linux/namespaces", json!(ns));
    env.set("/linux/resources/pids", json!({"limit": 17}));
    let out = env.run();
    out.ok();
    assert_eq!(out.stdout, "17\n0\nro\n");
}
