//! `exec` where runc's behaviour is the contract: `--cap` and the ambient set, `--cgroup`
//! sub-cgroups, and the container's personality for exec'd processes (runc 1.2+).

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::common::*;
use crate::contract::Side;

fn caps(env: &mut Env) {
    let base = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    env.set(
        "/process/capabilities",
        json!({
            "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
            "effective": base, "permitted": base, "ambient": base,
            "inheritable": ["CAP_KILL", "CAP_CHOWN"],
        }),
    );
}

/// `exec --cap C` adds C to the bounding, effective and permitted sets, and to the ambient
/// set when the config has an inheritable set (raised only where that set holds C):
/// CAP_CHOWN becomes ambient, CAP_SYS_ADMIN (not inheritable) does not. As runc.
#[test]
fn exec_cap_reaches_the_ambient_set_as_runc() {
    let mut env = Env::new(&["sleep", "30"]);
    caps(&mut env);
    let mut seen = Vec::new();
    for side in Side::both(&env) {
        let b = env.bundle.to_str().unwrap();
        side.cmd(&["run", "--detach", "--bundle", b, "ID"]).ok();
        let grep = ["grep", "^Cap", "/proc/self/status"];
        let chown = side.cmd(&[&["exec", "--cap", "CAP_CHOWN", "ID"][..], &grep].concat());
        let admin = side.cmd(&[&["exec", "--cap", "CAP_SYS_ADMIN", "ID"][..], &grep].concat());
        chown.ok();
        admin.ok();
        seen.push((chown.stdout, admin.stdout));
    }
    assert_eq!(seen[0], seen[1], "berth (left) and runc (right) differ");
    assert!(
        seen[0].0.contains("CapAmb:\t0000000000000021"),
        "{}",
        seen[0].0
    );
    assert!(
        seen[0].1.contains("CapAmb:\t0000000000000020"),
        "{}",
        seen[0].1
    );
}

/// The container's own memory cgroup directory, found by its id (runc and berth name the
/// leaf after it) and the init pid it holds.
fn memory_dir(side: &Side) -> PathBuf {
    let state: serde_json::Value =
        serde_json::from_str(&side.cmd(&["state", "ID"]).stdout).expect("state JSON");
    let pid = state["pid"].as_i64().unwrap().to_string();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup/memory")];
    while let Some(d) = stack.pop() {
        if d.file_name().is_some_and(|n| n == side.id.as_str())
            && std::fs::read_to_string(d.join("cgroup.procs"))
                .is_ok_and(|p| p.lines().any(|l| l == pid))
        {
            return d;
        }
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    panic!("{}: no memory cgroup holds pid {pid}", side.bin);
}

/// `exec --cgroup memory:sub` puts the process in the container's existing memory
/// sub-cgroup and leaves the other hierarchies alone; a missing sub-cgroup and a path
/// that climbs out are refused (exit 255) and no process is left. Same with runc.
#[test]
fn exec_cgroup_joins_an_existing_sub_cgroup_as_runc() {
    // The default bundle has a cgroup namespace: the process sees its own cgroup as "/".
    let env = Env::new(&["sleep", "30"]);
    let mut seen = Vec::new();
    for side in Side::both(&env) {
        let b = env.bundle.to_str().unwrap();
        side.cmd(&["run", "--detach", "--bundle", b, "ID"]).ok();
        let sub = memory_dir(&side).join("sub");
        std::fs::create_dir(&sub).unwrap();
        let cg = ["sh", "-c", "grep -E ':(memory|pids):' /proc/self/cgroup"];
        let joined = side.cmd(&[&["exec", "--cgroup", "memory:sub", "ID"][..], &cg].concat());
        let missing = side.cmd(&["exec", "--cgroup", "memory:nosuch", "ID", "true"]);
        let climbs = side.cmd(&["exec", "--cgroup", "../x", "ID", "true"]);
        let left = std::fs::read_to_string(sub.join("cgroup.procs")).unwrap();
        std::fs::remove_dir(&sub).unwrap();
        seen.push((
            (joined.code, joined.stdout),
            missing.code,
            climbs.code,
            left,
        ));
        assert!(!missing.stderr.is_empty() && !climbs.stderr.is_empty());
    }
    assert_eq!(seen[0], seen[1], "berth (left) and runc (right) differ");
    assert_eq!(seen[0].0, (0, "8:pids:/\n4:memory:/sub\n".to_string()));
    assert_eq!((seen[0].1, seen[0].2), (255, 255));
    assert_eq!(seen[0].3, "", "the exec'd processes are gone");
}

/// berth's wording for the refusals names the flag and the path.
#[test]
fn exec_cgroup_errors_name_the_flag() {
    let env = Env::new(&["sleep", "30"]);
    let id = env.start_detached();
    for (arg, needle) in [
        (
            "../x",
            "--cgroup ../x: the path must stay inside the container's cgroup",
        ),
        ("memory:a:b", "--cgroup memory:a:b: more than one ':'"),
        (
            "nosuch",
            "does not exist (the sub-cgroup must be made first)",
        ),
    ] {
        env.berth(&["exec", "--cgroup", arg, &id, "true"])
            .exec_fails_with(&[needle]);
    }
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}

/// `linux.personality` applies to the init and (as in runc 1.2+, whose setns init sets
/// it; runc 1.1.5 leaves exec'd processes at the host's) to every exec'd process.
#[test]
fn exec_gets_the_containers_personality() {
    let mut env = Env::new(&["sh", "-c", "uname -m > /out/init; sleep 30"]);
    env.set("/linux/personality", json!({"domain": "LINUX32"}));
    let id = env.start_detached();
    let out = env.berth(&["exec", &id, "uname", "-m"]);
    out.ok();
    assert_eq!(out.stdout, "i686\n");
    let start = std::time::Instant::now();
    while !Path::new(&env.out.join("init")).exists() {
        assert!(start.elapsed().as_secs() < 10, "the init never wrote");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        std::fs::read_to_string(env.out.join("init")).unwrap(),
        "i686\n"
    );
    env.berth(&["delete", "--force", &id]).ok();
}

/// `exec -t` through berth's own relay: ONLCR is off before the process can write, so even
/// its first line ends in "\n" (runc clears it only as it receives the master, and races
/// with the process). Seen through script(1), whose own pty adds one "\r": "first\r\n",
/// never "first\r\r\n".
#[test]
fn exec_tty_first_line_has_no_carriage_return_of_ours() {
    let env = Env::new(&["sleep", "100"]);
    let id = env.start_detached();
    for _ in 0..5 {
        let cmd = format!(
            "{BIN} --root {} exec -t {id} echo first",
            env.root.display()
        );
        let mut c = std::process::Command::new("script");
        c.args(["-qefc", &cmd, "/dev/null"]);
        let out = run_cmd(&mut c, std::time::Duration::from_secs(30));
        assert_eq!(out.code, 0, "{}", out.stderr);
        // script may echo a stray "^@" (its closed stdin) before or after the output.
        assert_eq!(
            out.stdout.replace("^@", ""),
            "first\r\n",
            "{:?}",
            out.stdout
        );
    }
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}
