//! runtime.md operations from separate processes: create → state → start → kill → delete.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

#[test]
fn create_blocks_until_start_then_runs_and_deletes() {
    let mut env = Env::new(&["sh", "-c", "echo ran > /out/marker; echo $$ > /out/pid"]);
    env.set("/annotations", json!({"org.example/k": "v"}));
    let id = env.id();
    env.create(&id).ok();
    let st: Value = serde_json::from_str(&env.berth(&["state", &id]).ok().stdout).unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    // The runtime's spec version, as runc reports its own.
    assert_eq!(st["ociVersion"], berth::spec::SPEC_VERSION);
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert_eq!(st["bundle"], env.bundle.to_str().unwrap());
    assert!(st["rootfs"].as_str().unwrap().ends_with("rootfs"));
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(st["annotations"]["org.example/k"], "v");
    // The init stub waits on the exec FIFO: the user process has not run.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.read_out("marker"), "", "process ran before start");
    assert!(env.root.join(&id).join("exec.fifo").exists());
    env.berth(&["start", &id]).ok();
    env.wait_status(&id, "stopped");
    assert_eq!(env.read_out("marker"), "ran\n");
    assert_eq!(env.read_out("pid"), "1\n");
    let st: Value = serde_json::from_str(&env.berth(&["state", &id]).ok().stdout).unwrap();
    assert_eq!(
        st["pid"], 0,
        "a stopped container reports pid 0 as runc does"
    );
    env.berth(&["start", &id])
        .fails_with(&["cannot start", "stopped"]);
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
    env.berth(&["state", &id]).fails_with(&["does not exist"]);
}

#[test]
fn running_container_needs_force_to_delete() {
    let env = Env::new(&["sleep", "100"]);
    let id = env.id();
    env.create(&id).ok();
    env.berth(&["start", &id]).ok();
    assert_eq!(env.status(&id), "running");
    env.berth(&["start", &id])
        .fails_with(&["cannot start", "running"]);
    env.berth(&["delete", &id])
        .fails_with(&["cannot delete", "running", "--force"]);
    assert_eq!(
        env.status(&id),
        "running",
        "a refused delete must not touch the container"
    );
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn created_container_can_be_deleted_like_runc() {
    let env = Env::new(&["true"]);
    let id = env.id();
    env.create(&id).ok();
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn kill_accepts_names_and_numbers() {
    let env = Env::new(&[
        "sh",
        "-c",
        "trap 'echo usr1 >> /out/sig' USR1; trap 'echo term >> /out/sig; exit 0' TERM; while :; do sleep 0.05; done",
    ]);
    let id = env.id();
    env.create(&id).ok();
    env.berth(&["start", &id]).ok();
    std::thread::sleep(Duration::from_millis(300));
    env.berth(&["kill", &id, "USR1"]).ok();
    std::thread::sleep(Duration::from_millis(300));
    env.berth(&["kill", &id, "SIGUSR1"]).ok();
    std::thread::sleep(Duration::from_millis(300));
    env.berth(&["kill", &id, "15"]).ok();
    env.wait_status(&id, "stopped");
    assert_eq!(env.read_out("sig"), "usr1\nusr1\nterm\n");
    // runc's wording, which containerd's shim matches to mean "already finished".
    env.berth(&["kill", &id, "KILL"])
        .fails_with(&["container not running"]);
    // --all still succeeds once the init is gone (the shim reaps a shared-pid-ns
    // container's leftovers that way), as runc.
    env.berth(&["kill", "--all", &id, "KILL"]).ok();
    env.berth(&["kill", &id, "NOSUCH"])
        .fails_with(&["unknown signal"]);
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn kill_all_signals_every_process_in_the_cgroup() {
    let env = Env::new(&["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    let id = env.id();
    env.create(&id).ok();
    env.berth(&["start", &id]).ok();
    std::thread::sleep(Duration::from_millis(300));
    env.berth(&["kill", "--all", &id, "KILL"]).ok();
    env.wait_status(&id, "stopped");
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn reused_pid_is_not_the_container() {
    let env = Env::new(&["sleep", "100"]);
    let id = env.id();
    env.create(&id).ok();
    env.berth(&["start", &id]).ok();
    // Pretend the recorded process started at another time: the pid now belongs to
    // "someone else", so berth must report stopped and never signal it.
    let path = env.root.join(&id).join("state.json");
    let mut st: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let real = st["pid"].as_i64().unwrap();
    st["start_time"] = json!(1);
    std::fs::write(&path, serde_json::to_vec(&st).unwrap()).unwrap();
    assert_eq!(env.status(&id), "stopped");
    env.berth(&["kill", &id, "KILL"])
        .fails_with(&["not running"]);
    assert!(
        std::path::Path::new(&format!("/proc/{real}")).exists(),
        "the process was signalled"
    );
    // SAFETY: test cleanup of the real process.
    unsafe { libc::kill(real as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(100));
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn run_with_a_bundle_path_generates_an_id() {
    let env = Env::new(&["sh", "-c", "echo pid=$$ host=$(hostname)"]);
    env.write_config();
    let out = run_cmd(
        std::process::Command::new(BIN)
            .arg("--root")
            .arg(&env.root)
            .arg("run")
            .arg(&env.bundle),
        Duration::from_secs(60),
    );
    out.ok();
    assert_eq!(out.stdout, "pid=1 host=berth\n");
    assert_eq!(
        std::fs::read_dir(&env.root).map(|d| d.count()).unwrap_or(0),
        0
    );
}

#[test]
fn run_keep_and_detach() {
    let env = Env::new(&["sh", "-c", "exit 0"]);
    env.write_config();
    let id = env.id();
    env.berth(&[
        "run",
        "--keep",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ])
    .ok();
    assert_eq!(env.status(&id), "stopped");
    env.berth(&["delete", &id]).ok();
    let id = env.id();
    let mut env2 = Env::new(&["sleep", "100"]);
    env2.set("/hostname", json!("detached"));
    env2.write_config();
    env2.berth(&[
        "run",
        "--detach",
        "--bundle",
        env2.bundle.to_str().unwrap(),
        &id,
    ])
    .ok();
    assert_eq!(env2.status(&id), "running");
    env2.berth(&["delete", "--force", &id]).ok();
    env2.assert_clean(&id);
}

#[test]
fn pid_file_is_written() {
    let env = Env::new(&["true"]);
    env.write_config();
    let id = env.id();
    let pf = env.tmp.path().join("pidfile");
    env.berth(&[
        "create",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
    ])
    .ok();
    let st: Value = serde_json::from_str(&env.berth(&["state", &id]).stdout).unwrap();
    assert_eq!(std::fs::read_to_string(&pf).unwrap(), st["pid"].to_string());
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
}
