//! linux.seccomp in real containers: podman's profile, per-rule actions, argument
//! conditions, NOTIFY answered by an agent at listenerPath, and exec inheriting the filter.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use serde_json::{Value, json};

use crate::common::*;

const PODMAN: &str = "/usr/share/containers/seccomp.json";

/// Podman's profile as podman hands it to a runtime for a container with `caps`.
pub(crate) fn podman_profile(caps: &[&str]) -> Option<Value> {
    let Ok(text) = std::fs::read_to_string(PODMAN) else {
        eprintln!("skipped: {PODMAN} missing (apt-get install golang-github-containers-common)");
        return None;
    };
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let has = |arr: &Value, pred: &dyn Fn(&str) -> bool| {
        arr.as_array()
            .is_some_and(|a| a.iter().any(|x| pred(x.as_str().unwrap())))
    };
    let keep = |s: &Value| {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        (inc["arches"].is_null() || has(&inc["arches"], &|a| a == "amd64"))
            && !has(&exc["arches"], &|a| a == "amd64")
            && !has(&inc["caps"], &|c| !caps.contains(&c))
            && !has(&exc["caps"], &|c| caps.contains(&c))
    };
    let syscalls: Vec<Value> = v["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| keep(s))
        .cloned()
        .map(|mut s| {
            let o = s.as_object_mut().unwrap();
            o.remove("includes");
            o.remove("excludes");
            o.remove("comment");
            s
        })
        .collect();
    v["syscalls"] = json!(syscalls);
    v["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let o = v.as_object_mut().unwrap();
    o.remove("archMap");
    o.remove("defaultErrno");
    Some(v)
}

/// A static probe that calls add_key(2) (which podman's profile never names) and prints
/// the result and errno. Built with the host's C compiler; None if there is none.
pub(crate) fn add_key_probe(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let src = dir.join("probe.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
    long r = syscall(SYS_add_key, "user", "berth-probe", "v", 1, -2);
    printf("add_key=%d errno=%d\n", r < 0 ? -1 : 0, r < 0 ? errno : 0);
    return 0;
}
"#,
    )
    .unwrap();
    let bin = dir.join("probe");
    let ok = std::process::Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: no C compiler with static libc to build the probe");
        return None;
    }
    Some(bin)
}

#[test]
fn podmans_profile_lets_work_run_and_refuses_the_rest_with_its_errno() {
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let Some(profile) = podman_profile(&caps) else {
        return;
    };
    let script = "ls / > /dev/null && mkdir /tmp/d && cat /etc/passwd | grep -q root && echo work-ok; /out/probe";
    // Without the filter the kernel answers add_key itself.
    let env = Env::new(&["sh", "-c", script]);
    if add_key_probe(&env.out).is_none() {
        return;
    }
    let out = env.run();
    out.ok();
    assert!(out.stdout.contains("work-ok"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("errno=38"),
        "the kernel itself said ENOSYS: {}",
        out.stdout
    );
    // With podman's profile, add_key is outside it: the profile's default errno (38) answers.
    let mut env = Env::new(&["sh", "-c", script]);
    add_key_probe(&env.out);
    env.set("/linux/seccomp", profile);
    let out = env.run();
    out.ok();
    assert!(out.stdout.contains("work-ok"), "{}", out.stdout);
    assert!(out.stdout.contains("add_key=-1 errno=38"), "{}", out.stdout);
}

#[test]
fn errno_rule_and_unknown_names() {
    let mut env = Env::new(&[
        "sh",
        "-c",
        "mkdir /tmp/x 2>&1; echo rc=$?; ls / > /dev/null && echo ls-ok",
    ]);
    env.set("/linux/seccomp", json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall_at_all", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    }));
    let out = env.run();
    out.ok();
    assert!(
        out.stdout.contains("Permission denied")
            && out.stdout.contains("rc=1")
            && out.stdout.contains("ls-ok"),
        "{}",
        out.stdout
    );
}

#[test]
fn argument_conditioned_rule() {
    // personality(PER_LINUX32) is refused; querying (0xffffffff) and everything else works.
    let mut env = Env::new(&["sh", "-c", "uname -m; linux32 uname -m 2>&1; echo rc=$?"]);
    env.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                          "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
        }),
    );
    let out = env.run();
    out.ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(l[0], "x86_64");
    assert!(l[1].contains("Operation not permitted"), "{}", out.stdout);
    assert_ne!(l[2], "rc=0");
}

#[test]
fn masked_eq_condition() {
    // Refuse open/openat when O_CREAT (0o100) is set in flags, whatever else is set.
    let mut env = Env::new(&[
        "sh",
        "-c",
        "cat /etc/passwd | grep -q root && echo read-ok; touch /tmp/new 2>/dev/null; echo create=$?",
    ]);
    env.set("/linux/seccomp", json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 2, "value": 64, "valueTwo": 64, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["open"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 1, "value": 64, "valueTwo": 64, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    }));
    let out = env.run();
    out.ok();
    assert!(
        out.stdout.contains("read-ok") && out.stdout.contains("create=1"),
        "{}",
        out.stdout
    );
}

#[test]
fn kill_process_action() {
    // sync(2) is called only by the sync applet.
    let mut env = Env::new(&["sh", "-c", "echo before; sync; echo after"]);
    env.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"}]}));
    let out = env.run();
    // The process that made the call (the sync applet, a child of the shell) dies of SIGSYS;
    // the shell goes on.
    out.ok();
    assert_eq!(out.stdout, "before\nafter\n");
    assert!(out.stderr.contains("Bad system call"), "{}", out.stderr);
}

/// Receives the listener fd and its JSON from berth, then answers every notification
/// with `reply` as the syscall's return value.
/// `got_fd`, when given, hears the agent's JSON as soon as the listener fd arrives.
pub(crate) fn agent(
    listener: UnixListener,
    reply: i64,
    got_fd: Option<std::sync::mpsc::Sender<Value>>,
) -> std::thread::JoinHandle<Value> {
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 16384];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(f) = c {
                fd = Some(f[0]);
            }
        }
        let n = msg.bytes;
        let meta: Value = serde_json::from_slice(&buf[..n]).unwrap();
        // SAFETY: the fd we just received.
        let notify: OwnedFd =
            unsafe { std::os::fd::FromRawFd::from_raw_fd(fd.expect("listener fd")) };
        if let Some(tx) = got_fd {
            let _ = tx.send(meta.clone());
        }
        #[repr(C)]
        struct Notif {
            id: u64,
            pid: u32,
            flags: u32,
            nr: i32,
            arch: u32,
            ip: u64,
            args: [u64; 6],
        }
        #[repr(C)]
        struct Resp {
            id: u64,
            val: i64,
            error: i32,
            flags: u32,
        }
        const RECV: libc::c_ulong = 0xc050_2100;
        const SEND: libc::c_ulong = 0xc018_2101;
        loop {
            let mut n: Notif = unsafe { std::mem::zeroed() };
            // SAFETY: SECCOMP_IOCTL_NOTIF_RECV into a zeroed seccomp_notif.
            if unsafe { libc::ioctl(notify.as_raw_fd(), RECV, &mut n) } < 0 {
                return meta; // the container is gone
            }
            let r = Resp {
                id: n.id,
                val: reply,
                error: 0,
                flags: 0,
            };
            // SAFETY: SECCOMP_IOCTL_NOTIF_SEND with a valid response.
            unsafe { libc::ioctl(notify.as_raw_fd(), SEND, &r) };
        }
    })
}

#[test]
fn notify_hands_the_listener_to_the_agent_which_answers() {
    let mut env = Env::new(&["sh", "-c", "echo ppid=$PPID"]);
    let path = env.tmp.path().join("agent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let handle = agent(listener, 4242, None);
    env.set("/annotations", json!({"k": "v"}));
    env.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": path,
            "listenerMetadata": "hello-agent",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    let out = env.run();
    out.ok();
    assert_eq!(
        out.stdout, "ppid=4242\n",
        "the agent's answer is the syscall's result"
    );
    let meta = handle.join().unwrap();
    assert_eq!(meta["fds"], json!(["seccompFd"]));
    assert_eq!(meta["metadata"], "hello-agent");
    assert!(meta["pid"].as_i64().unwrap() > 0);
    assert_eq!(meta["state"]["annotations"]["k"], "v");
    assert!(meta["state"]["id"].as_str().unwrap().starts_with("it"));
}

#[test]
fn exec_gets_the_containers_filter() {
    let mut env = Env::new(&["sleep", "100"]);
    env.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}));
    env.write_config();
    let id = env.id();
    env.berth(&[
        "run",
        "--detach",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ])
    .ok();
    let out = env.berth(&["exec", &id, "sh", "-c", "mkdir /tmp/y 2>&1; true"]);
    out.ok();
    assert!(out.stdout.contains("Permission denied"), "{}", out.stdout);
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn bad_seccomp_input_fails_cleanly() {
    for (sec, needles) in [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            vec!["linux.seccomp.syscalls[0].args[0].index"],
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 70000}]}),
            vec!["linux.seccomp.syscalls[0].errnoRet", "70000"],
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}),
            vec!["linux.seccomp.listenerPath"],
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}),
            vec!["listenerPath", "/nonexistent/agent.sock"],
        ),
    ] {
        let mut env = Env::new(&["true"]);
        env.set("/linux/seccomp", sec);
        let id = env.id();
        env.create(&id).fails_with(&needles);
        env.assert_clean(&id);
    }
}

#[test]
fn every_action_in_a_real_container() {
    // mkdir(2) under each action; the shell survives (mkdir runs as its child).
    for (action, want_out, want_err) in [
        ("SCMP_ACT_ALLOW", "made", ""),
        ("SCMP_ACT_LOG", "made", ""),
        ("SCMP_ACT_ERRNO", "", "Operation not permitted"),
        // TRACE without a tracer fails the call with ENOSYS.
        ("SCMP_ACT_TRACE", "", "Function not implemented"),
        ("SCMP_ACT_TRAP", "", "Bad system call"),
        ("SCMP_ACT_KILL", "", "Bad system call"),
        ("SCMP_ACT_KILL_THREAD", "", "Bad system call"),
        ("SCMP_ACT_KILL_PROCESS", "", "Bad system call"),
    ] {
        let mut env = Env::new(&["sh", "-c", "mkdir /tmp/m 2>&1 && echo made; true"]);
        env.set(
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}]}),
        );
        let out = env.run();
        out.ok();
        let all = format!("{}{}", out.stdout, out.stderr);
        if !want_out.is_empty() {
            assert!(out.stdout.contains(want_out), "{action}: {all}");
        } else {
            assert!(!out.stdout.contains("made"), "{action}: {all}");
            assert!(all.contains(want_err), "{action}: {all}");
        }
    }
}

#[test]
fn every_operator_in_a_real_container() {
    // kill(2)'s second argument is the signal: `kill -0` passes 0, `kill -USR1` passes 10.
    // Each rule refuses kill when the signal compares true; the expected outcome per signal.
    for (op, value, denied0, denied10) in [
        ("SCMP_CMP_EQ", 10, false, true),
        ("SCMP_CMP_NE", 10, true, false),
        ("SCMP_CMP_LT", 5, true, false),
        ("SCMP_CMP_LE", 0, true, false),
        ("SCMP_CMP_GT", 5, false, true),
        ("SCMP_CMP_GE", 10, false, true),
    ] {
        let script = "trap 'true' USR1; kill -0 $$ 2>/dev/null; echo s0=$?; kill -USR1 $$ 2>/dev/null; echo s10=$?";
        let mut env = Env::new(&["sh", "-c", script]);
        env.set(
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                          "args": [{"index": 1, "value": value, "op": op}]}]}),
        );
        let out = env.run();
        out.ok();
        let want = format!("s0={}\ns10={}\n", u8::from(denied0), u8::from(denied10));
        assert_eq!(out.stdout, want, "{op} {value}");
    }
}

#[test]
fn flags_and_the_filter_is_active_with_and_without_no_new_privs() {
    for nnp in [true, false] {
        let mut env = Env::new(&[
            "sh",
            "-c",
            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/z 2>&1; true",
        ]);
        env.set("/process/user", json!({"uid": 1000, "gid": 1000}));
        env.set("/process/noNewPrivileges", json!(nnp));
        env.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}));
        let out = env.run();
        out.ok();
        assert!(
            out.stdout.contains("Seccomp:\t2"),
            "nnp={nnp}: {}",
            out.stdout
        );
        assert!(
            out.stdout
                .contains(&format!("NoNewPrivs:\t{}", u8::from(nnp))),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("Permission denied"),
            "nnp={nnp}: filter not applied: {}",
            out.stdout
        );
    }
    let mut env = Env::new(&["true"]);
    env.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}),
    );
    let id = env.id();
    env.create(&id).fails_with(&["linux.seccomp.flags"]);
    env.assert_clean(&id);
}
