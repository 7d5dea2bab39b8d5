//! More checkpoint/restore scenarios (see ../checkpoint.rs for the harness): mounts,
//! TCP, terminals, namespaces joined by path, foreground restores, images moved between
//! runtimes, a failing restore hook. Each with berth and with runc.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::{COUNTER, Cr, Rt, assert_consecutive, checkpoint_stops, criu, grows_past, numbers};
use crate::common::{Env, Out};
/// What the container sees of its mounts, read with `exec` after the restore.
fn mounts_seen(c: &Cr, id: &str) -> String {
    c.ok(&[
        "exec",
        id,
        "sh",
        "-c",
        "cat /scratch/kept /data/hello; wc -c < /proc/timer_list; \
         grep -c ' /proc/acpi ' /proc/self/mountinfo; grep -c ' /data ro,' /proc/self/mountinfo; \
         echo again > /out/after",
    ])
    .stdout
}

fn mounts(rt: Rt) -> String {
    let mut c = Cr::new(
        rt,
        &["sh", "-c", &format!("echo kept > /scratch/kept; {COUNTER}")],
    );
    let data = c.env.tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello"), "hello\n").unwrap();
    c.env.push(
        "/mounts",
        json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]}),
    );
    c.env.push(
        "/mounts",
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    let id = c.env.id();
    c.run(&id);
    let log = c.env.out.join("log");
    grows_past(&log, 3);
    let seen = mounts_seen(&c, &id);
    let images = c.images("img");
    let before = checkpoint_stops(&c, &id, &images, &[]);
    assert_eq!(
        c.restore(&id, &images, &c.bundle(), &[]).code,
        0,
        "{rt:?} restore"
    );
    assert_consecutive(&grows_past(&log, before.len() + 3), &format!("{rt:?}"));
    let after = mounts_seen(&c, &id);
    assert_eq!(
        after, seen,
        "{rt:?}: the mounts before and after the restore"
    );
    assert_eq!(
        std::fs::read_to_string(c.env.out.join("after")).unwrap(),
        "again\n"
    );
    after
}

#[test]
fn bind_mounts_tmpfs_and_masked_paths_come_back() {
    criu();
    let b = mounts(Rt::Berth);
    // The tmpfs content, the bind mount (read-only), masked /proc/timer_list (/dev/null
    // over it) and /proc/acpi (a tmpfs over it).
    let lines: Vec<&str> = b.lines().map(str::trim).collect();
    assert_eq!(&lines[..3], ["kept", "hello", "0"], "{b}");
    assert_eq!(lines.len(), 5, "{b:?}");
    assert_eq!(
        &lines[3..],
        ["1", "1"],
        "/proc/acpi masked, /data read-only: {b}"
    );
    assert_eq!(b, mounts(Rt::Runc), "berth and runc see the same");
}

/// A prestart hook that brings the loopback up in the container's network namespace:
/// CRIU makes that namespace anew on restore (runc and berth both keep the network out
/// of the images), and runs prestart with the restored pid before the sockets come back.
fn lo_up_hook(dir: &Path) -> PathBuf {
    let hook = dir.join("lo-up");
    std::fs::write(
        &hook,
        "#!/bin/sh\npid=$(sed -n 's/.*\"pid\": *\\([0-9][0-9]*\\).*/\\1/p')\n\
         exec nsenter -t \"$pid\" -n ip link set lo up\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    hook
}

fn tcp(rt: Rt) {
    // A server and a client in the container's network namespace, over one connection
    // on 127.0.0.1; the server writes what it receives to /out/log.
    let script = "sleep 1000 | nc -l -p 5000 > /out/log & sleep 0.3; \
                  i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done | nc 127.0.0.1 5000";
    let mut c = Cr::new(rt, &["sh", "-c", script]);
    let hook = lo_up_hook(c.env.tmp.path());
    c.env.push("/hooks/prestart", json!({"path": hook}));
    let id = c.env.id();
    c.run(&id);
    let log = c.env.out.join("log");
    grows_past(&log, 3);
    let images = c.images("img");
    // Without the flag CRIU refuses an established connection, and the container runs on.
    let o = c.cmd(&["checkpoint", "--image-path", images.to_str().unwrap(), &id]);
    assert_ne!(
        o.code, 0,
        "{rt:?}: an established connection without --tcp-established"
    );
    assert_eq!(c.state(&id)["status"], "running", "{rt:?}");
    let before = checkpoint_stops(&c, &id, &images, &["--tcp-established"]);
    let o = c.restore(&id, &images, &c.bundle(), &["--tcp-established"]);
    assert_eq!(o.code, 0, "{rt:?} restore: {}", o.stderr);
    // The same connection carries on: a new one could not be made (the client connects
    // once), and the numbers continue.
    assert_consecutive(
        &grows_past(&log, before.len() + 5),
        &format!("{rt:?}: TCP stream"),
    );
}

#[test]
fn an_established_tcp_connection_survives() {
    criu();
    tcp(Rt::Berth);
    tcp(Rt::Runc);
}

/// Images are exchangeable: runc's restore with berth, berth's with runc.
#[test]
fn images_move_between_runc_and_berth() {
    criu();
    for (from, to) in [(Rt::Runc, Rt::Berth), (Rt::Berth, Rt::Runc)] {
        let c = Cr::new(from, &["sh", "-c", COUNTER]);
        let id = c.env.id();
        c.run(&id);
        let log = c.env.out.join("log");
        grows_past(&log, 3);
        let images = c.images("img");
        let before = checkpoint_stops(&c, &id, &images, &[]);
        let other = Cr {
            env: Env::new(&["true"]),
            rt: to,
            ids: Default::default(),
        };
        let o = other.restore(&id, &images, &c.bundle(), &[]);
        assert_eq!(o.code, 0, "{from:?} images, {to:?} restore: {}", o.stderr);
        let v = grows_past(&log, before.len() + 3);
        assert_consecutive(&v, &format!("{from:?} -> {to:?}"));
        assert_eq!(other.state(&id)["status"], "running");
        other.ok(&["delete", "--force", &id]);
    }
}

fn foreground(rt: Rt) {
    let script =
        "i=0; while [ $i -lt 30 ]; do echo $i >> /out/log; i=$((i+1)); sleep 0.05; done; exit 3";
    let c = Cr::new(rt, &["sh", "-c", script]);
    let id = c.env.id();
    c.run(&id);
    let log = c.env.out.join("log");
    grows_past(&log, 3);
    let images = c.images("img");
    checkpoint_stops(&c, &id, &images, &[]);
    // Without --detach the runtime waits for the restored process, returns its exit code
    // and removes the container.
    c.ids.borrow_mut().push(id.clone());
    let o = c.cmd(&[
        "restore",
        "--image-path",
        images.to_str().unwrap(),
        "--bundle",
        &c.bundle(),
        &id,
    ]);
    assert_eq!(
        o.code, 3,
        "{rt:?}: restore's exit code; stderr: {}",
        o.stderr
    );
    assert_consecutive(&numbers(&log), &format!("{rt:?}"));
    assert_eq!(numbers(&log).len(), 30, "{rt:?}");
    assert_ne!(
        c.cmd(&["state", &id]).code,
        0,
        "{rt:?}: {id} left after its end"
    );
    if rt == Rt::Berth {
        c.env.assert_clean(&id);
    }
}

#[test]
fn a_foreground_restore_returns_the_exit_code() {
    criu();
    foreground(Rt::Berth);
    foreground(Rt::Runc);
}

/// Namespaces bound to files (`unshare --net=FILE`), unmounted when dropped.
struct NsFiles(Vec<PathBuf>);

impl Drop for NsFiles {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = nix::mount::umount2(f, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn ns_file(dir: &Path, kind: &str, files: &mut NsFiles) -> PathBuf {
    let f = dir.join(format!("ns-{kind}"));
    std::fs::write(&f, "").unwrap();
    let st = Command::new("unshare")
        .arg(format!("--{kind}={}", f.display()))
        .arg("true")
        .status()
        .unwrap();
    assert!(st.success(), "unshare --{kind}");
    files.0.push(f.clone());
    f
}

fn ino(p: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap())
}

fn joined_namespaces(rt: Rt) {
    let mut c = Cr::new(rt, &["sh", "-c", COUNTER]);
    let mut files = NsFiles(Vec::new());
    let net = ns_file(c.env.tmp.path(), "net", &mut files);
    let ipc = ns_file(c.env.tmp.path(), "ipc", &mut files);
    let st = Command::new("nsenter")
        .arg(format!("--net={}", net.display()))
        .args(["ip", "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(st.success());
    let nss: Vec<Value> = c.env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| match n["type"].as_str() {
            Some("network") => json!({"type": "network", "path": net}),
            Some("ipc") => json!({"type": "ipc", "path": ipc}),
            _ => n.clone(),
        })
        .collect();
    c.env.set("/linux/namespaces", json!(nss));
    let id = c.env.id();
    c.run(&id);
    let log = c.env.out.join("log");
    grows_past(&log, 3);
    let images = c.images("img");
    let before = checkpoint_stops(&c, &id, &images, &[]);
    let o = c.restore(&id, &images, &c.bundle(), &[]);
    assert_eq!(o.code, 0, "{rt:?} restore: {}", o.stderr);
    assert_consecutive(&grows_past(&log, before.len() + 3), &format!("{rt:?}"));
    // The restored process is in the very namespaces the config names, not in new ones.
    let pid = c.state(&id)["pid"].to_string();
    for (kind, file) in [("net", &net), ("ipc", &ipc)] {
        let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
        assert_eq!(
            link.to_string_lossy(),
            format!("{kind}:[{}]", ino(file)),
            "{rt:?}: restored {kind} namespace"
        );
    }
    c.ok(&["delete", "--force", &id]);
}

#[test]
fn namespaces_joined_by_path_are_joined_again() {
    criu();
    joined_namespaces(Rt::Berth);
    joined_namespaces(Rt::Runc);
}

/// Runs `args` with `--console-socket` on a fresh socket; the pty master it receives.
fn with_console(c: &Cr, args: &[&str]) -> (Out, std::os::fd::OwnedFd) {
    let sock = c.env.tmp.path().join(format!("console-{}.sock", args[0]));
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let rx = std::thread::spawn(move || crate::cli::recv_console(listener));
    let mut a = vec![args[0], "--console-socket", sock.to_str().unwrap()];
    a.extend_from_slice(&args[1..]);
    let o = c.cmd(&a);
    assert_eq!(o.code, 0, "{:?} {a:?}: {}", c.rt, o.stderr);
    (o, rx.join().unwrap().1)
}

fn terminal(rt: Rt) {
    let script =
        "i=0; while true; do echo $i >> /out/log; echo tick-$i; i=$((i+1)); sleep 0.05; done";
    let mut c = Cr::new(rt, &["sh", "-c", script]);
    c.env.set("/process/terminal", json!(true));
    c.env.write_config();
    let id = c.env.id();
    c.ids.borrow_mut().push(id.clone());
    let bundle = c.bundle();
    let (_, master) = with_console(&c, &["run", "--detach", "--bundle", &bundle, &id]);
    crate::cli::read_until(&master, "tick-3", Duration::from_secs(20));
    let log = c.env.out.join("log");
    let images = c.images("img");
    let before = checkpoint_stops(&c, &id, &images, &[]);
    drop(master);
    // CRIU gives the restored terminal a new pty; its master reaches the console socket.
    let img = images.to_str().unwrap();
    let (_, master) = with_console(
        &c,
        &[
            "restore",
            "--detach",
            "--image-path",
            img,
            "--bundle",
            &bundle,
            &id,
        ],
    );
    let next = format!("tick-{}", before.len() + 3);
    let seen = crate::cli::read_until(&master, &next, Duration::from_secs(20));
    assert!(!seen.contains("tick-0\n"), "{rt:?}: started over: {seen:?}");
    assert_consecutive(
        &numbers(&log),
        &format!("{rt:?}: the counter on a terminal"),
    );
    c.ok(&["delete", "--force", &id]);
}

#[test]
fn a_container_with_a_terminal_gets_it_back_through_the_console_socket() {
    criu();
    terminal(Rt::Berth);
    terminal(Rt::Runc);
}

#[test]
fn a_failing_restore_hook_leaves_nothing() {
    criu();
    let mut c = Cr::new(Rt::Berth, &["sh", "-c", COUNTER]);
    let marker = c.env.tmp.path().join("fail-now");
    let hook = c.env.tmp.path().join("hook");
    std::fs::write(&hook, format!("#!/bin/sh\n[ ! -e {} ]\n", marker.display())).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    c.env.push("/hooks/prestart", json!({"path": hook}));
    let id = c.env.id();
    c.run(&id);
    let log = c.env.out.join("log");
    grows_past(&log, 3);
    let images = c.images("img");
    let before = checkpoint_stops(&c, &id, &images, &[]);
    std::fs::write(&marker, "").unwrap();
    c.restore(&id, &images, &c.bundle(), &[])
        .fails_with(&["restore", "prestart"]);
    c.env.assert_clean(&id);
    // The rootfs CRIU was given (bound in the state directory) is intact.
    let rootfs = crate::common::default_bundle().join("rootfs");
    assert!(rootfs.join("etc/passwd").exists() && rootfs.join("bin/busybox").exists());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        numbers(&log),
        before,
        "the restored tree ran on after the failed hook"
    );
}
