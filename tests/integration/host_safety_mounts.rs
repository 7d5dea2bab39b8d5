//! Issue 13, mount half: berth never harms the host's (or anyone else's) mount namespace,
//! a symlink in the image never redirects /proc, /sys, /dev or the console, and code from
//! the image never sees the caller's fds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

/// The default namespaces without `mount`, plus `extra`.
fn namespaces_without_mount(env: &Env, extra: Option<Value>) -> Value {
    let mut ns: Vec<Value> = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "mount")
        .cloned()
        .collect();
    ns.extend(extra);
    json!(ns)
}

/// Runs the container with `berth run` inside a throwaway mount namespace whose `/` is
/// made rshared first (so a stray rslave or bind shows), and returns berth's output with
/// that namespace's mountinfo before and after.
fn run_in_throwaway_mntns(env: &Env) -> (Out, String, String) {
    env.write_config();
    let id = env.id();
    let before = env.tmp.path().join("mountinfo.before");
    let after = env.tmp.path().join("mountinfo.after");
    let script = r#"mount --make-rshared / || exit 90
cat /proc/self/mountinfo > "$1"
"$2" --root "$3" run --bundle "$4" "$5"; rc=$?
cat /proc/self/mountinfo > "$6"
exit $rc"#;
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "unchanged", "--", "sh", "-c"])
        .arg(script)
        .arg("sh")
        .arg(&before)
        .arg(BIN)
        .arg(&env.root)
        .arg(&env.bundle)
        .arg(&id)
        .arg(&after);
    let out = run_cmd(&mut c, Duration::from_secs(60));
    env.assert_clean(&id);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (out, read(&before), read(&after))
}

fn assert_same_mounts(before: &str, after: &str) {
    assert!(!before.is_empty(), "no mountinfo taken");
    assert_eq!(
        before, after,
        "the caller's mount namespace changed (mounts or propagation)"
    );
    let root = before.lines().find(|l| l.split(' ').nth(4) == Some("/"));
    assert!(
        root.is_some_and(|l| l.contains("shared:")),
        "the test's / should be shared: {root:?}"
    );
}

#[test]
fn no_mount_namespace_with_mounts_is_refused_and_caller_mounts_untouched() {
    let mut env = Env::new(&["true"]);
    let ns = namespaces_without_mount(&env, None);
    env.set("/linux/namespaces", ns);
    let (out, before, after) = run_in_throwaway_mntns(&env);
    out.fails_with(&["linux.namespaces", "mounts", "linux.maskedPaths"]);
    assert_same_mounts(&before, &after);
}

#[test]
fn joined_mount_namespace_with_mounts_is_refused_and_left_untouched() {
    let mut env = Env::new(&["true"]);
    // The caller's own mount namespace, joined by path: what berth must never pivot.
    let ns = namespaces_without_mount(
        &env,
        Some(json!({"type": "mount", "path": "/proc/self/ns/mnt"})),
    );
    env.set("/linux/namespaces", ns);
    let (out, before, after) = run_in_throwaway_mntns(&env);
    out.fails_with(&["linux.namespaces", "joined by path"]);
    assert_same_mounts(&before, &after);
}

/// With nothing to mount, a container without a mount namespace of its own (none, or the
/// caller's joined by path) runs chrooted into its rootfs and no mount changes anywhere.
#[test]
fn no_mount_namespace_without_mount_changes_runs_chrooted() {
    for extra in [
        None,
        Some(json!({"type": "mount", "path": "/proc/self/ns/mnt"})),
    ] {
        let mut env = Env::new(&["sh", "-c", "cat /marker; ls /"]);
        let rootfs = env.private_rootfs();
        std::fs::write(rootfs.join("marker"), "inside-the-rootfs\n").unwrap();
        env.set("/root", json!({"path": rootfs, "readonly": false}));
        let ns = namespaces_without_mount(&env, extra.clone());
        env.set("/linux/namespaces", ns);
        env.set("/mounts", json!([]));
        env.set("/linux/maskedPaths", json!([]));
        env.set("/linux/readonlyPaths", json!([]));
        let (out, before, after) = run_in_throwaway_mntns(&env);
        out.ok();
        assert!(
            out.stdout.contains("inside-the-rootfs"),
            "{extra:?}: {}",
            out.stdout
        );
        assert_same_mounts(&before, &after);
    }
}

/// Replaces `name` in the rootfs with `what` ("symlink" to a host dir, or a "file").
fn plant(rootfs: &Path, name: &str, what: &str, victim: &Path) {
    let p = rootfs.join(name);
    let _ = std::fs::remove_dir_all(&p);
    match what {
        "symlink" => std::os::unix::fs::symlink(victim, &p).unwrap(),
        _ => std::fs::write(&p, "not a directory\n").unwrap(),
    }
}

#[test]
fn proc_and_sys_on_a_symlink_or_file_are_refused() {
    for (dest, what) in [
        ("proc", "symlink"),
        ("proc", "file"),
        ("sys", "symlink"),
        ("sys", "file"),
    ] {
        let mut env = Env::new(&["true"]);
        let rootfs = env.private_rootfs();
        let victim = env.tmp.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        plant(&rootfs, dest, what, &victim);
        env.set("/root", json!({"path": rootfs, "readonly": false}));
        let kind = if what == "symlink" {
            "on a symlink"
        } else {
            "on a non-directory"
        };
        env.run()
            .fails_with(&[&format!("/{dest}"), kind, "mounts["]);
        assert!(
            std::fs::read_dir(&victim).unwrap().next().is_none(),
            "{dest}: something landed in the symlink's target"
        );
    }
}

/// A host directory next to the bundle, and the image's paths aimed at it.
struct DevTrap {
    env: Env,
    victim: PathBuf,
}

fn dev_trap(links: &[(&str, &str)], keep_dev_tmpfs: bool) -> DevTrap {
    let mut env = Env::new(&["sh", "-c", "tty; ls /dev /dev/pts; echo done-$((40+2))"]);
    let rootfs = env.private_rootfs();
    let victim = env.tmp.path().join("host-dir");
    std::fs::create_dir(&victim).unwrap();
    std::fs::create_dir_all(rootfs.join("dev")).unwrap();
    for (name, target) in links {
        let p = rootfs.join(name);
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::remove_file(&p);
        let target = target.replace("$VICTIM", victim.to_str().unwrap());
        std::os::unix::fs::symlink(target, &p).unwrap();
    }
    env.set("/root", json!({"path": rootfs, "readonly": false}));
    if !keep_dev_tmpfs {
        let mounts: Vec<Value> = env.config["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] != "/dev")
            .cloned()
            .collect();
        env.set("/mounts", json!(mounts));
    }
    env.set("/process/terminal", json!(true));
    DevTrap { env, victim }
}

/// Runs a terminal container (the pty, /dev/console, /dev links and /dev mounts all made)
/// and checks nothing landed in the host directory and no mount of it is left.
fn spring(t: &DevTrap) -> Out {
    t.env.write_config();
    let id = t.env.id();
    // From a terminal (script(1) gives it one): without any, `run` of a terminal config
    // refuses at once, as runc does.
    let cmd = format!(
        "{BIN} --root {} run --bundle {} {id}",
        t.env.root.display(),
        t.env.bundle.display()
    );
    let mut c = Command::new("script");
    c.args(["-qefc", &cmd, "/dev/null"]);
    let mut out = run_cmd(&mut c, Duration::from_secs(60));
    // The terminal carries berth's stderr too: a refusal's one line is read from it.
    out.stdout = out.stdout.replace('\r', "");
    if out.code != 0 {
        out.stderr = out.stdout.clone();
    }
    t.env.assert_clean(&id);
    let left: Vec<_> = std::fs::read_dir(&t.victim)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files landed outside the rootfs: {left:?}");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(t.victim.to_str().unwrap()),
        "a mount landed outside the rootfs"
    );
    out
}

/// Either it ran properly, or it was refused in one line.
fn ran_or_refused(out: &Out) {
    if out.code == 0 {
        assert!(out.stdout.contains("done-42"), "{}", out.stdout);
        // `tty` names the container's own devpts instance's first pty, wherever a /dev or
        // /dev/pts symlink put that instance inside the root.
        let tty = out.stdout.lines().next().unwrap_or_default().trim_end();
        assert!(
            tty.ends_with("/0") && tty != "not a tty",
            "{:?}",
            out.stdout
        );
    } else {
        out.fails_with(&[]);
    }
}

#[test]
fn cve_2026_41579_dev_symlink_cannot_redirect() {
    // /dev itself aims out of the rootfs, by `..` and by an absolute path.
    for target in ["../../host-dir", "$VICTIM"] {
        let t = dev_trap(&[("dev", target)], true);
        let out = spring(&t);
        ran_or_refused(&out);
        // Followed inside the root, `..` stops at its `/`: /dev is /host-dir there, and
        // works. (The absolute one lands under the container's /tmp, which the config
        // mounts a tmpfs over after /dev: then there is no /dev/ptmx, a one-line refusal.)
        if target.starts_with("..") {
            assert_eq!(out.code, 0, "{target}: {}", out.stderr);
        }
    }
}

#[test]
fn cve_2026_41579_dev_entries_symlinked_to_the_host_cannot_redirect() {
    // The image's own /dev (no tmpfs over it) with its entries aimed at the host.
    let links = [
        ("dev/pts", "../../../host-dir"),
        ("dev/shm", "$VICTIM"),
        ("dev/mqueue", "../../../host-mq"),
        ("dev/ptmx", "../../../host-dir/ptmx"),
        ("dev/null", "$VICTIM/null"),
        ("dev/console", "$VICTIM/console"),
        ("dev/fd", "../../../host-dir/fd"),
        ("dev/stdout", "$VICTIM/stdout"),
    ];
    let t = dev_trap(&links, false);
    let out = spring(&t);
    ran_or_refused(&out);
    // Each was followed inside the root: the container runs with a working terminal.
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !t.env.tmp.path().join("host-mq").exists(),
        "mqueue landed outside"
    );
}

/// `sh -c 'exec 7</etc/hostname; exec berth …'`: the caller holds a non-CLOEXEC fd 7.
fn run_holding_fd7(env: &Env, extra: &[&str]) -> Out {
    env.write_config();
    let id = env.id();
    let mut c = Command::new("sh");
    c.args(["-c", r#"exec 7</etc/hostname; exec "$@""#, "sh", BIN])
        .arg("--root")
        .arg(&env.root)
        .arg("run")
        .args(extra)
        .args(["--bundle", env.bundle.to_str().unwrap(), &id]);
    let out = run_cmd(&mut c, Duration::from_secs(60));
    env.assert_clean(&id);
    out
}

fn fds(listing: &str) -> Vec<String> {
    listing.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn cve_2024_21626_hook_sees_no_caller_fd() {
    let mut env = Env::new(&["sh", "-c", "ls /proc/self/fd > /out/process-fds"]);
    env.push(
        "/hooks/startContainer",
        json!({"path": "/bin/busybox", "args": ["sh", "-c", "ls /proc/self/fd > /out/hook-fds"]}),
    );
    run_holding_fd7(&env, &[]).ok();
    for name in ["hook-fds", "process-fds"] {
        let got = fds(&env.read_out(name));
        assert!(!got.is_empty(), "{name} not written");
        assert!(
            !got.contains(&"7".into()),
            "{name}: caller's fd 7 leaked: {got:?}"
        );
    }
    // Control: the same fd, passed on deliberately, does arrive.
    let mut env = Env::new(&["sh", "-c", "ls /proc/self/fd > /out/process-fds"]);
    env.set("/process/env", json!(["PATH=/bin"]));
    run_holding_fd7(&env, &["--preserve-fds", "5"]).ok();
    let got = fds(&env.read_out("process-fds"));
    assert!(
        got.contains(&"7".into()),
        "control: fd 7 not passed on: {got:?}"
    );
}

/// `exec` into a container that shares the caller's mount namespace (and so runs chrooted)
/// is chrooted into the same root: the exec'd process never sees the host's `/`.
#[test]
fn exec_into_a_chrooted_container_is_chrooted_too() {
    let mut env = Env::new(&["sleep", "30"]);
    let rootfs = env.private_rootfs();
    std::fs::write(rootfs.join("marker"), "inside-the-rootfs\n").unwrap();
    env.set("/root", json!({"path": rootfs, "readonly": false}));
    let ns = namespaces_without_mount(&env, None);
    env.set("/linux/namespaces", ns);
    env.set("/mounts", json!([]));
    env.set("/linux/maskedPaths", json!([]));
    env.set("/linux/readonlyPaths", json!([]));
    let id = env.start_detached();
    let out = env.berth(&["exec", &id, "sh", "-c", "cat /marker; pwd"]);
    env.berth(&["delete", "--force", &id]).ok();
    out.ok();
    assert_eq!(out.stdout, "inside-the-rootfs\n/\n");
}

/// Kubernetes Bidirectional volumes, which CSI node plugins rely on: containerd writes
/// `rootfsPropagation: rshared` and an `rshared` bind of the volume. A mount the container
/// makes under the volume must reach the caller's mount namespace (the host, for kubelet
/// and other pods), and none of berth's own mounts may.
#[test]
fn rshared_volume_mounts_reach_the_caller_and_berths_own_mounts_do_not() {
    // On a mount of its own, as kubelet's directory is to an overlay rootfs: the mount
    // holding the rootfs is made private in the container (runc's rootfsParentMountPrivate).
    let vol = tempfile::tempdir_in("/dev/shm").unwrap();
    std::fs::create_dir(vol.path().join("inner")).unwrap();
    let mut env = Env::new(&[
        "sh",
        "-c",
        "mount -t tmpfs csi-volume /vol/inner && echo mounted",
    ]);
    env.set("/linux/rootfsPropagation", json!("rshared"));
    env.push(
        "/mounts",
        json!({"destination": "/vol", "type": "bind", "source": vol.path(), "options": ["rbind", "rshared"]}),
    );
    for set in ["bounding", "effective", "permitted"] {
        env.push(
            &format!("/process/capabilities/{set}"),
            json!("CAP_SYS_ADMIN"),
        );
    }
    let (out, before, after) = run_in_throwaway_mntns(&env);
    out.ok();
    assert!(out.stdout.contains("mounted"), "{}", out.stdout);
    let gone: Vec<&str> = before.lines().filter(|l| !after.contains(l)).collect();
    assert!(gone.is_empty(), "caller's mounts changed: {gone:?}");
    let new: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
    let inner = format!(" {} ", vol.path().join("inner").display());
    assert!(
        new.len() == 1 && new[0].contains(&inner) && new[0].contains("csi-volume"),
        "expected only the container's volume mount to reach the caller: {new:?}"
    );
}
