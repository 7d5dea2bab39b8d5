//! `exec`: a further process joins every namespace and the cgroups of a running container.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

fn ns_of(pid: i64, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn exec_joins_namespaces_and_cgroups_and_returns_the_exit_code() {
    let mut env = Env::new(&["sleep", "100"]);
    env.set("/hostname", json!("exec-host"));
    let id = env.start_detached();
    let st: Value = serde_json::from_str(&env.berth(&["state", &id]).stdout).unwrap();
    let init = st["pid"].as_i64().unwrap();
    let script = "echo $$ > /out/pid; hostname; for k in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$k; done; exit 7";
    let out = env.berth(&["exec", &id, "sh", "-c", script]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "exec-host");
    for (i, k) in ["pid", "net", "ipc", "uts", "mnt", "cgroup"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            lines[i + 1],
            ns_of(init, k),
            "{k} namespace differs from the init's"
        );
    }
    assert_ne!(
        env.read_out("pid").trim(),
        "1",
        "exec'd process is not the container's init"
    );
    // The exec'd process was in the container's cgroup while it ran: ps saw two pids.
    let ps = env.berth(&["exec", &id, "sh", "-c", "sleep 0.3"]);
    ps.ok();
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn exec_process_is_in_the_container_cgroup() {
    let env = Env::new(&["sleep", "100"]);
    let id = env.start_detached();
    env.berth(&["exec", "--detach", &id, "sleep", "50"]).ok();
    std::thread::sleep(Duration::from_millis(200));
    let pids: Vec<i64> =
        serde_json::from_str(&env.berth(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn exec_overrides_env_user_cwd_and_caps() {
    let env = Env::new(&["sleep", "100"]);
    let id = env.start_detached();
    let out = env.berth(&[
        "exec",
        "-e",
        "FOO=bar",
        "-e",
        "PATH=/bin",
        "-u",
        "1000:1001",
        "--additional-gids",
        "7",
        "--cwd",
        "/tmp",
        "--cap",
        "CAP_SYS_TIME",
        "--no-new-privs",
        &id,
        "sh",
        "-c",
        "echo $FOO $PATH $(pwd); grep -E '^(Uid|Gid|Groups|CapBnd|NoNewPrivs):' /proc/self/status",
    ]);
    out.ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(l[0], "bar /bin /tmp");
    assert!(l[1].starts_with("Uid:\t1000\t"), "{}", l[1]);
    assert!(l[2].starts_with("Gid:\t1001\t"), "{}", l[2]);
    assert_eq!(l[3].trim(), "Groups:\t7");
    let bnd = u64::from_str_radix(l[4].split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_ne!(
        bnd & (1 << 25),
        0,
        "CAP_SYS_TIME (25) added to the bounding set"
    );
    assert_eq!(l[5].split_whitespace().nth(1), Some("1"));
    env.berth(&["delete", "--force", &id]).ok();
}

#[test]
fn exec_with_a_process_file() {
    let env = Env::new(&["sleep", "100"]);
    let id = env.start_detached();
    let p = env.tmp.path().join("process.json");
    std::fs::write(&p, serde_json::to_vec(&json!({
        "args": ["sh", "-c", "echo $X; id -u"], "env": ["X=from-file", "PATH=/bin"], "cwd": "/", "user": {"uid": 5, "gid": 5}
    })).unwrap()).unwrap();
    let out = env.berth(&["exec", "--process", p.to_str().unwrap(), &id]);
    out.ok();
    assert_eq!(out.stdout, "from-file\n5\n");
    std::fs::write(
        &p,
        r#"{"args": ["true"], "cwd": "relative", "user": {"uid": 0, "gid": 0}}"#,
    )
    .unwrap();
    env.berth(&["exec", "--process", p.to_str().unwrap(), &id])
        .exec_fails_with(&["process.cwd"]);
    // A second document after the first is refused, not silently ignored.
    std::fs::write(
        &p,
        r#"{"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}} {"args": ["x"]}"#,
    )
    .unwrap();
    env.berth(&["exec", "--process", p.to_str().unwrap(), &id])
        .exec_fails_with(&["--process", "trailing characters"]);
    env.berth(&["delete", "--force", &id]).ok();
}

#[test]
fn exec_errors() {
    let env = Env::new(&["sleep", "100"]);
    let id = env.start_detached();
    env.berth(&["exec", &id, "no-such-binary"])
        .exec_fails_with(&["executable file not found"]);
    env.berth(&["exec", &id]).exec_fails_with(&["no command"]);
    env.berth(&["pause", &id]).ok();
    env.berth(&["exec", &id, "true"])
        .exec_fails_with(&["paused", "--ignore-paused"]);
    env.berth(&[
        "exec",
        "--ignore-paused",
        "--detach",
        &id,
        "sh",
        "-c",
        "echo late > /out/late",
    ])
    .ok();
    assert_eq!(
        env.read_out("late"),
        "",
        "the exec'd process ran inside a frozen container"
    );
    env.berth(&["resume", &id]).ok();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.read_out("late"), "late\n");
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
    env.berth(&["exec", &id, "true"])
        .exec_fails_with(&["does not exist"]);
}

#[test]
fn exec_in_a_user_namespaced_container() {
    let mut env = Env::new(&["sleep", "100"]);
    env.with_userns(100000, 100000);
    let id = env.start_detached();
    let out = env.berth(&["exec", &id, "sh", "-c", "cat /proc/self/uid_map; id -u"]);
    out.ok();
    let l: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(l, ["0 100000 65536", "0"]);
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}
