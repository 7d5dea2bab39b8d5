//! Fault injection (issue 8): every failpoint of create, start, exec and delete, made to
//! fail the step, made to SIGKILL the process there and, in the init stub and exec's child, made
//! to SIGKILL the berth that cloned them. Whatever happened, berth's other
//! verbs must still work on what is left (`list`, `state`), and the automatic rollback or a
//! `delete --force` must leave nothing: no state dir, cgroup, mount, process, fd or zombie.
//! Needs the `failpoints` build (`cargo test --features failpoints`).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// Every point in the binary, in the order a lifecycle meets them (src/failpoints.rs says
/// how they are armed). A point missing here is a step nobody tests: keep them in step.
pub const POINTS: &[&str] = &[
    "create::state-dir",
    "create::fifo",
    "create::planned",
    "create::clone",
    "init::namespaces-early",
    "create::cgroup",
    "init::namespaces",
    "create::go",
    "init::mount",
    "hook::prestart::before",
    "hook::prestart::after",
    "hook::createRuntime::before",
    "hook::createRuntime::after",
    "hook::createContainer::before",
    "hook::createContainer::after",
    "init::pivot",
    "init::process",
    "create::ready",
    "create::saved",
    "init::fifo",
    "start::locked",
    "hook::startContainer::before",
    "hook::startContainer::after",
    "init::execve",
    "start::exec",
    "hook::poststart::before",
    "hook::poststart::after",
    "exec::clone",
    "exec::joined",
    "exec::execve",
    "delete::locked",
    "delete::stopped",
    "delete::cgroup",
    "hook::poststop::before",
    "hook::poststop::after",
];

/// A container running `sleep`, with one harmless hook of every kind so that every hook
/// point is on the path.
fn hooked_env() -> Env {
    let mut env = Env::new(&["sleep", "100"]);
    let host = json!({"path": "/bin/true", "args": ["true"]});
    let inside = json!({"path": "/bin/busybox", "args": ["true"]});
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        env.push(&format!("/hooks/{kind}"), host.clone());
    }
    env.push("/hooks/startContainer", inside);
    env
}

/// Runs berth with the point armed.
fn armed(env: &Env, log: &Path, point: &str, action: &str, args: &[&str]) -> Out {
    let mut c = std::process::Command::new(BIN);
    c.arg("--root").arg(&env.root).args(args);
    c.env("BERTH_FAILPOINTS", format!("{point}={action}"))
        .env("BERTH_FAILPOINTS_LOG", log);
    run_cmd(&mut c, Duration::from_secs(30))
}

/// What an armed point does.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Action {
    /// The step fails.
    Error,
    /// The process at the point dies by SIGKILL.
    Kill,
    /// In the init stub or exec's child: the berth that cloned it is SIGKILLed (by the
    /// test, while the point holds the clone for 2 s) and the clone carries on.
    KillParent,
}

/// Points reached in a clone of berth while the berth that cloned it still runs.
fn in_clone(point: &str) -> bool {
    (point.starts_with("init::") && point != "init::execve")
        || point.starts_with("hook::createContainer")
        || point == "exec::joined"
        || point == "exec::execve"
}

/// One lifecycle with `point` armed: create, start, exec, kill, delete, stopping at the
/// first step that fails. Then checks what is left and cleans it up.
fn scenario(point: &str, act: Action) {
    if act == Action::KillParent {
        return parent_killed(point);
    }
    let kill = act != Action::Error;
    let env = hooked_env();
    env.write_config();
    let id = env.id();
    let log = env.tmp.path().join("fired");
    let (action, what) = match act {
        Action::Error => ("return", "error"),
        _ => ("return(kill)", "kill"),
    };
    let bundle = env.bundle.to_str().unwrap().to_string();
    let steps: [Vec<&str>; 5] = [
        vec!["create", "--bundle", &bundle, &id],
        vec!["start", &id],
        vec!["exec", &id, "true"],
        vec!["kill", &id, "KILL"],
        vec!["delete", &id],
    ];
    let mut outs = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if i == 4 {
            // delete refuses a running container: wait for the KILL to land.
            wait_stopped(&env, &id);
        }
        let o = armed(&env, &log, point, action, step);
        let code = o.code;
        assert!(
            matches!(code, 0 | 1 | 137) || (step[0] == "exec" && code == 255),
            "{point} {action}: `{}` exited {code} (a panic or worse); stderr: {}",
            step[0],
            o.stderr
        );
        outs.push((step[0], o));
        if code != 0 {
            break;
        }
    }
    let fired = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        fired
            .lines()
            .any(|l| l.starts_with(&format!("{point} {what} "))),
        "{point} {action} never fired; outputs: {:?}",
        outs.iter()
            .map(|(s, o)| format!("{s}: {} {}", o.code, o.stderr))
            .collect::<Vec<_>>()
    );
    if !kill {
        // The injected error is what the user sees (poststart/poststop only warn).
        let all: String = outs.iter().map(|(_, o)| o.stderr.as_str()).collect();
        // init::fifo fails after create returned, on stderr nobody reads any more; start
        // then reports the init's exit.
        assert!(
            all.contains(&format!("failpoint {point}")) || point == "init::fifo",
            "{point}: the error does not name the failpoint: {all}"
        );
    }
    check_and_clean(&env, &id);
}

/// The berth that cloned the init stub (create) or exec's child (exec) is killed while its
/// clone sits at `point`; the clone carries on alone.
fn parent_killed(point: &str) {
    let env = hooked_env();
    env.write_config();
    let id = env.id();
    let log = env.tmp.path().join("fired");
    let bundle = env.bundle.to_str().unwrap().to_string();
    let args: Vec<&str> = if point.starts_with("exec::") {
        env.berth(&["run", "--detach", "--bundle", &bundle, &id])
            .ok();
        vec!["exec", &id, "true"]
    } else {
        vec!["create", "--bundle", &bundle, &id]
    };
    let mut child = std::process::Command::new(BIN)
        .arg("--root")
        .arg(&env.root)
        .args(&args)
        // Once: init::mount is met after every mount.
        .env("BERTH_FAILPOINTS", format!("{point}=1*return(hold)"))
        .env("BERTH_FAILPOINTS_LOG", &log)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let held = loop {
        let fired = std::fs::read_to_string(&log).unwrap_or_default();
        if fired.contains(&format!("{point} hold ")) {
            break true;
        }
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(20) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(held, "{point}: never held");
    // The orphaned init stub finds its parent gone when the hold ends, and exits by itself
    // (except at init::fifo, past its last message: it waits for a start, as after any
    // create). exec's orphan runs its process in the container, which lives on.
    if point.starts_with("exec::") || point == "init::fifo" {
        std::thread::sleep(Duration::from_millis(2200));
    } else {
        let procs = || -> usize {
            cgroup_mounts()
                .iter()
                .map(|m| {
                    std::fs::read_to_string(m.join("berth").join(&id).join("cgroup.procs"))
                        .map(|s| s.lines().count())
                        .unwrap_or(0)
                })
                .sum()
        };
        let start = Instant::now();
        while procs() > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{point}: the orphaned init stub did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    check_and_clean(&env, &id);
}

/// Whatever is left must not break the read-only verbs; `delete --force` leaves nothing.
fn check_and_clean(env: &Env, id: &str) {
    let id = id.to_string();
    let l = env.berth(&["list", "--format", "json"]);
    l.ok();
    let rows: Value = serde_json::from_str(&l.stdout).expect("list JSON");
    assert!(rows.is_array());
    let s = env.berth(&["state", &id]);
    match s.code {
        0 => {
            let v: Value = serde_json::from_str(&s.stdout).expect("state JSON");
            assert_eq!(v["id"], id.as_str());
        }
        _ => {
            s.fails_with(&[&id]);
        }
    }
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
    assert_no_fds_into(env.tmp.path());
    assert_no_zombie_children();
}

fn wait_stopped(env: &Env, id: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let o = env.berth(&["state", id]);
        if o.code != 0 || o.stdout.contains("\"stopped\"") {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("container {id} did not stop");
}

fn matrix(prefix: &str) {
    let points: Vec<&str> = POINTS
        .iter()
        .copied()
        .filter(|p| p.starts_with(prefix))
        .collect();
    assert!(!points.is_empty());
    for p in points {
        scenario(p, Action::Error);
        scenario(p, Action::Kill);
        if in_clone(p) {
            scenario(p, Action::KillParent);
        }
    }
}

#[test]
fn faults_in_create() {
    matrix("create::");
}

#[test]
fn faults_in_the_init_stub() {
    matrix("init::");
}

#[test]
fn faults_around_hooks() {
    matrix("hook::");
}

#[test]
fn faults_in_start_exec_and_delete() {
    matrix("start::");
    matrix("exec::");
    matrix("delete::");
}

#[test]
fn every_point_is_in_the_binary() {
    // A renamed point would silently stop being tested: each listed name must be in the
    // failpoints build of berth (hook points are built from the hook kind at run time).
    let bin = std::fs::read(BIN).unwrap();
    let has = |s: &str| bin.windows(s.len()).any(|w| w == s.as_bytes());
    for p in POINTS.iter().filter(|p| !p.starts_with("hook::")) {
        assert!(has(p), "{p} is not in {BIN}");
    }
}

#[test]
fn a_killed_create_leaves_a_state_that_list_state_and_delete_handle() {
    // The crash-safety contract in one place: at each kill point of create, `list` shows
    // the remains as stopped (never a parse error), `state` answers, `delete` (without
    // --force) removes them.
    for point in [
        "create::state-dir",
        "create::planned",
        "create::cgroup",
        "create::go",
        "create::ready",
    ] {
        let env = hooked_env();
        env.write_config();
        let id = env.id();
        let log = env.tmp.path().join("fired");
        let bundle = env.bundle.to_str().unwrap();
        let o = armed(
            &env,
            &log,
            point,
            "return(kill)",
            &["create", "--bundle", bundle, &id],
        );
        assert_eq!(o.code, 137, "{point}: {}", o.stderr);
        let l = env.berth(&["list", "--format", "json"]);
        let rows: Value = serde_json::from_str(&l.ok().stdout).unwrap();
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{point}: list does not show {id}: {rows}"));
        assert_eq!(row["status"], "stopped", "{point}: {row}");
        let s = env.berth(&["state", &id]);
        if s.code == 0 {
            assert!(s.stdout.contains("\"stopped\""), "{point}: {}", s.stdout);
        } else {
            s.fails_with(&[&id]);
        }
        env.berth(&["delete", &id]).ok();
        env.assert_clean(&id);
    }
}
