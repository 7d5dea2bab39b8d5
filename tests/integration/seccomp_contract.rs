//! linux.seccomp where runc's behaviour is the contract, checked on berth and on runc with
//! the same bundle: the listener agent gets its fd during `create`, calls newer than the
//! profile get ENOSYS, and NOTIFY on write is refused.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::seccomp::{agent, podman_profile};

const RUNC: &str = "/usr/sbin/runc";

/// `RUNTIME --root ROOT ARGS…` for berth or runc.
fn call(runtime: &str, root: &Path, args: &[&str]) -> Out {
    let mut c = Command::new(runtime);
    c.arg("--root").arg(root).args(args);
    run_cmd(&mut c, Duration::from_secs(60))
}

fn wait_for_file(path: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An agent that waits for the listener fd before anyone calls `start` (as a real agent
/// may) gets it during `create`, with both runtimes; its answer is then the syscall's.
#[test]
fn the_listener_agent_gets_its_fd_during_create() {
    for runtime in [BIN, RUNC] {
        let mut env = Env::new(&["sh", "-c", "echo ppid=$PPID > /out/result"]);
        let sock = env.tmp.path().join("agent.sock");
        let (tx, rx) = mpsc::channel();
        let handle = agent(UnixListener::bind(&sock).unwrap(), 4242, Some(tx));
        env.set("/process/noNewPrivileges", json!(true));
        env.set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock,
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
            }),
        );
        let id = format!(
            "{}-{}",
            env.id(),
            if runtime == RUNC { "runc" } else { "berth" }
        );
        let root = env.tmp.path().join("rt-root");
        env.write_config();
        call(
            runtime,
            &root,
            &["create", "--bundle", env.bundle.to_str().unwrap(), &id],
        )
        .ok();
        let meta: Value = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{runtime}: no listener fd after create, before start"));
        assert_eq!(meta["fds"], json!(["seccompFd"]), "{runtime}");
        assert_eq!(meta["state"]["status"], "creating", "{runtime}");
        call(runtime, &root, &["start", &id]).ok();
        assert_eq!(
            wait_for_file(&env.out.join("result")),
            "ppid=4242\n",
            "{runtime}"
        );
        call(runtime, &root, &["delete", "--force", &id]).ok();
        handle.join().unwrap();
        if runtime == BIN {
            env.assert_clean(&id);
        }
    }
}

/// A static probe: `probe NR…` calls each raw syscall number with zero arguments and
/// prints `NR=errno` (0 when it succeeded).
fn syscall_probe(dir: &Path) -> bool {
    let src = dir.join("nr.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long nr = atol(argv[i]);
        errno = 0;
        long r = syscall(nr, 0, 0, 0, 0, 0, 0);
        printf("%ld=%d\n", nr, r < 0 ? errno : 0);
    }
    return 0;
}
"#,
    )
    .unwrap();
    let ok = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(dir.join("nr"))
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cc -static failed: run-all installs gcc and libc6-dev");
    ok
}

/// Podman's profile with an EPERM default: add_key (248, older than the profile's newest
/// call and not in it) gets EPERM; numbers above every call the profile names (runc's
/// "-ENOSYS stub") get ENOSYS, so libc's fallbacks work. berth and runc agree.
#[test]
fn calls_newer_than_the_profile_get_enosys_as_with_runc() {
    let mut profile = podman_profile(&["CAP_KILL"]).expect("podman's seccomp.json");
    profile.as_object_mut().unwrap().remove("defaultErrnoRet");
    let mut env = Env::new(&["/out/nr", "248", "999", "1000"]);
    syscall_probe(&env.out);
    env.set("/linux/seccomp", profile);
    let berth = env.run();
    berth.ok();
    assert_eq!(berth.stdout, "248=1\n999=38\n1000=38\n");
    let runc = env.run_runc();
    runc.ok();
    assert_eq!(runc.stdout, berth.stdout, "runc: {}", runc.stderr);
}

/// The init writes to its runtime after loading the filter: NOTIFY on write is refused
/// up front by both, berth with runc's words and the field, leaving nothing behind.
#[test]
fn notify_on_write_is_refused_as_by_runc() {
    let mut env = Env::new(&["true"]);
    let sock = env.tmp.path().join("agent.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    env.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "syscalls": [{"names": ["getppid", "write"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    env.run().fails_with(&[
        "linux.seccomp.syscalls[0].names",
        "SCMP_ACT_NOTIFY cannot be used for the write syscall",
    ]);
    let runc = env.run_runc();
    assert_ne!(runc.code, 0, "runc refuses it too");
    assert!(
        runc.stderr
            .contains("SCMP_ACT_NOTIFY cannot be used for the write syscall"),
        "{}",
        runc.stderr
    );
}
