//! runc's behaviour where berth used to differ (issue 14): each test runs the same bundle
//! with runc and with berth and compares what the process inside sees.

use serde_json::json;

use crate::common::*;

/// Runs `env` with both runtimes; both must succeed with the same stdout.
fn same_as_runc(env: &Env) -> String {
    let runc = env.run_runc();
    runc.ok();
    let berth = env.run();
    berth.ok();
    assert_eq!(
        berth.stdout, runc.stdout,
        "berth (left) and runc (right) differ"
    );
    berth.stdout
}

#[test]
fn a_new_network_namespace_has_loopback_up() {
    let env = Env::new(&[
        "sh",
        "-c",
        "ip -o link show lo | grep -o 'state [A-Z]*\\|<[^>]*>'; ip -o addr show lo | awk '{print $3, $4}'; \
         nc -l -p 6379 -e echo pong & sleep 0.2; echo ping | nc 127.0.0.1 6379",
    ]);
    let out = same_as_runc(&env);
    assert!(out.contains(",UP"), "{out}");
    assert!(out.contains("inet 127.0.0.1/8"), "{out}");
    assert!(out.contains("inet6 ::1/128"), "{out}");
    assert!(out.contains("pong"), "a localhost connection works: {out}");
}

#[test]
fn a_joined_network_namespace_is_left_as_it_is() {
    // runc brings lo up only in a network namespace it creates.
    let holder = std::process::Command::new("unshare")
        .args(["--net", "sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut env = Env::new(&["sh", "-c", "ip -o link show lo | grep -o '<[^>]*>'"]);
    let ns = format!("/proc/{}/ns/net", holder.id());
    env.set(
        "/linux/namespaces",
        json!([{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
               {"type": "network", "path": ns}]),
    );
    let out = same_as_runc(&env);
    let mut holder = holder;
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(!out.contains(",UP"), "{out}");
}

#[test]
fn home_comes_from_the_users_passwd_entry() {
    for (uid, want) in [(0, "/root"), (65534, "/"), (4242, "/")] {
        let mut env = Env::new(&["sh", "-c", "echo HOME=$HOME"]);
        env.set("/process/user", json!({"uid": uid, "gid": uid}));
        let out = same_as_runc(&env);
        assert_eq!(out, format!("HOME={want}\n"), "uid {uid}");
    }
    // A user with a home of its own, and a config that sets HOME itself.
    let mut env = Env::new(&["sh", "-c", "echo HOME=$HOME"]);
    let rootfs = env.private_rootfs();
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    env.set("/root/path", json!(rootfs));
    env.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    assert_eq!(same_as_runc(&env), "HOME=/home/app\n");
    env.push("/process/env", json!("HOME=/elsewhere"));
    assert_eq!(same_as_runc(&env), "HOME=/elsewhere\n");
}

#[test]
fn home_for_an_exec_process_too() {
    let env = Env::new(&["sleep", "30"]);
    let id = env.start_detached();
    let out = env.berth(&["exec", &id, "sh", "-c", "echo HOME=$HOME"]);
    env.berth(&["delete", "--force", &id]).ok();
    out.ok();
    assert_eq!(out.stdout, "HOME=/root\n");
}
