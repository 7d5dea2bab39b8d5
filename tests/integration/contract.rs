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

/// One runtime's view of a created container: its own --root, the same bundle.
pub(crate) struct Side {
    pub(crate) bin: &'static str,
    pub(crate) root: std::path::PathBuf,
    pub(crate) id: String,
}

impl Side {
    pub(crate) fn both(env: &Env) -> [Side; 2] {
        env.write_config();
        let mk = |bin: &'static str, name: &str| Side {
            bin,
            root: env.tmp.path().join(format!("root-{name}")),
            id: format!("{}-{name}", env.id()),
        };
        [mk(BIN, "berth"), mk("/usr/sbin/runc", "runc")]
    }
    pub(crate) fn cmd(&self, args: &[&str]) -> Out {
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "ID" { self.id.as_str() } else { a })
            .collect();
        run_cmd(
            std::process::Command::new(self.bin)
                .arg("--root")
                .arg(&self.root)
                .args(&args),
            std::time::Duration::from_secs(30),
        )
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        let _ = self.cmd(&["delete", "--force", "ID"]);
    }
}

/// Runs the same CLI steps against a container of each runtime; returns each step's
/// (exit code, stdout) with the runtime's id replaced by "ID".
fn steps(env: &Env, steps: &[&[&str]]) -> Vec<Vec<(i32, String)>> {
    Side::both(env)
        .iter()
        .map(|s| {
            let b = env.bundle.to_str().unwrap();
            s.cmd(&["create", "--bundle", b, "ID"]).ok();
            steps
                .iter()
                .map(|a| {
                    let o = s.cmd(a);
                    (o.code, o.stdout.replace(&s.id, "ID"))
                })
                .collect()
        })
        .collect()
}

#[test]
fn kill_0_update_unlimited_swap_and_ps_of_a_stopped_container_as_runc() {
    let env = Env::new(&["sleep", "30"]);
    let mut seen = Vec::new();
    for side in Side::both(&env) {
        let b = env.bundle.to_str().unwrap();
        side.cmd(&["create", "--bundle", b, "ID"]).ok();
        let mut obs: Vec<(i32, String)> = Vec::new();
        let mut step = |args: &[&str]| {
            let o = side.cmd(args);
            obs.push((o.code, o.stdout.replace(&side.id, "ID")));
        };
        step(&["kill", "ID", "0"]);
        step(&["update", "--memory-swap", "-1", "ID"]);
        step(&["kill", "ID", "KILL"]);
        let start = std::time::Instant::now();
        while !side.cmd(&["state", "ID"]).stdout.contains("\"stopped\"") {
            assert!(start.elapsed().as_secs() < 10, "{} never stopped", side.bin);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        step(&["ps", "ID"]);
        step(&["ps", "--format", "json", "ID"]);
        step(&["kill", "ID", "0"]);
        seen.push(obs);
    }
    let (berth, runc) = (&seen[0], &seen[1]);
    for (i, (b, r)) in berth.iter().zip(runc).enumerate() {
        assert_eq!(b, r, "step {i}: berth (left) and runc (right) differ");
    }
}

#[test]
fn list_json_as_runc() {
    let env = Env::new(&["sleep", "30"]);
    let got = steps(&env, &[&["list", "--format", "json"]]);
    let keys = |s: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        let row = v[0].as_object().unwrap();
        assert_eq!(row["owner"], "root");
        row.keys().cloned().collect()
    };
    assert_eq!(keys(&got[0][0].1), keys(&got[1][0].1));
}

#[test]
fn update_cpu_burst_writes_the_burst() {
    if !host_cgroup_file("cpu", "cpu.cfs_burst_us") {
        return; // kernel without CFS burst: the write would be refused by name
    }
    let env = Env::new(&["sleep", "30"]);
    let id = env.start_detached();
    env.berth(&["update", "--cpu-quota", "50000", "--cpu-burst", "2000", &id])
        .ok();
    let burst = std::fs::read_to_string(format!("/sys/fs/cgroup/cpu/berth/{id}/cpu.cfs_burst_us"));
    env.berth(&["delete", "--force", &id]).ok();
    assert_eq!(burst.unwrap().trim(), "2000");
}

#[test]
fn cve_2024_21626_runtime_hooks_see_no_caller_fd() {
    let mut env = Env::new(&["true"]);
    let out = env.out.join("hook-fds");
    let hook = |kind: &str| {
        json!([{"path": "/bin/sh", "args": ["sh", "-c",
            format!("ls /proc/self/fd > {}/{kind}", out.display())]}])
    };
    std::fs::create_dir_all(&out).unwrap();
    for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
        env.set(&format!("/hooks/{kind}"), hook(kind));
    }
    env.write_config();
    // The caller holds fd 7 without CLOEXEC, as a careless engine might.
    let script = format!(
        "exec 7</etc/hostname; exec {BIN} --root {} run --bundle {} {}",
        env.root.display(),
        env.bundle.display(),
        env.id()
    );
    run_cmd(
        std::process::Command::new("sh").args(["-c", &script]),
        std::time::Duration::from_secs(30),
    )
    .ok();
    for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
        let fds = std::fs::read_to_string(out.join(kind)).unwrap();
        let fds: Vec<&str> = fds.split_whitespace().collect();
        assert!(
            !fds.contains(&"7"),
            "{kind} hook sees the caller's fd 7: {fds:?}"
        );
    }
}

/// Without a pid namespace of its own, SIGKILL to the init leaves its children alive unless
/// the runtime kills the whole cgroup, as runc 1.2+ does (Container.Signal): newer runc wins
/// here, since shims rely on it; Debian's runc 1.1.5 leaves the children, so only berth is
/// checked.
#[test]
fn sigkill_reaches_every_process_of_a_container_sharing_the_pid_namespace() {
    let mut env = Env::new(&["sh", "-c", "sleep 600 & sleep 600 & wait"]);
    env.set(
        "/linux/namespaces",
        json!([{"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}]),
    );
    let [side, _runc] = Side::both(&env);
    {
        let b = env.bundle.to_str().unwrap();
        side.cmd(&["create", "--bundle", b, "ID"]).ok();
        side.cmd(&["start", "ID"]).ok();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let before = side.cmd(&["ps", "--format", "json", "ID"]);
        let n: Vec<i32> = serde_json::from_str(&before.stdout).unwrap();
        assert!(n.len() >= 3, "{}: {n:?}", side.bin);
        side.cmd(&["kill", "ID", "KILL"]).ok();
        let start = std::time::Instant::now();
        loop {
            let o = side.cmd(&["ps", "--format", "json", "ID"]);
            let left: Option<Vec<i32>> = serde_json::from_str(&o.stdout).unwrap_or(None);
            if left.unwrap_or_default().is_empty() {
                break;
            }
            assert!(
                start.elapsed().as_secs() < 10,
                "{}: processes left after kill KILL: {}",
                side.bin,
                o.stdout
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// `run` of a terminal config with no console socket and no terminal anywhere fails at
/// once, like runc, and leaves nothing behind (it used to wait for input forever).
#[test]
fn run_with_a_terminal_but_no_tty_fails_at_once() {
    let mut env = Env::new(&["echo", "hi"]);
    env.set("/process/terminal", json!(true));
    // setsid: no controlling terminal, whatever the test runner has.
    let sides = Side::both(&env);
    for side in &sides {
        let b = env.bundle.to_str().unwrap();
        let out = run_cmd(
            std::process::Command::new("setsid")
                .arg(side.bin)
                .arg("--root")
                .arg(&side.root)
                .args(["run", "--bundle", b, &side.id]),
            std::time::Duration::from_secs(20),
        );
        assert_eq!(out.code, 1, "{}: {}{}", side.bin, out.stdout, out.stderr);
    }
    let id = sides[0].id.clone();
    drop(sides);
    env.assert_clean(&id);
}

/// Accepts one connection on `listener` and returns the pid behind the fd it carried.
fn pid_of_received_pidfd(listener: std::os::unix::net::UnixListener) -> i32 {
    use std::os::fd::AsRawFd;
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let fd = msg
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            nix::sys::socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("an fd with SCM_RIGHTS");
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
    // SAFETY: the fd was just received and is ours to close.
    unsafe { libc::close(fd) };
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("not a pidfd: {info}"))
}

/// `--pidfd-socket` (runc 1.2+, containerd 2 uses it): create and exec hand over a pidfd
/// of the process they started. Debian's runc 1.1.5 lacks the flag: berth only.
#[test]
fn pidfd_socket_receives_the_init_and_an_exec_process() {
    let env = Env::new(&["sleep", "30"]);
    env.write_config();
    let id = env.id();
    let sock = env.tmp.path().join("pidfd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let got = std::thread::spawn(move || pid_of_received_pidfd(listener));
    let b = env.bundle.to_str().unwrap();
    let s = sock.to_str().unwrap();
    env.berth(&["create", "--pidfd-socket", s, "--bundle", b, &id])
        .ok();
    let st: serde_json::Value = serde_json::from_str(&env.berth(&["state", &id]).stdout).unwrap();
    assert_eq!(got.join().unwrap() as i64, st["pid"].as_i64().unwrap());
    env.berth(&["start", &id]).ok();
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let got = std::thread::spawn(move || pid_of_received_pidfd(listener));
    let pidf = env.tmp.path().join("exec.pid");
    let p = pidf.to_str().unwrap();
    env.berth(&[
        "exec",
        "-d",
        "--pidfd-socket",
        s,
        "--pid-file",
        p,
        &id,
        "sleep",
        "20",
    ])
    .ok();
    let pid: i32 = std::fs::read_to_string(&pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(got.join().unwrap(), pid);
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}

/// A profile loaded before the fds are marked close-on-exec (no noNewPrivileges) that denies
/// close_range must not fail the container: berth falls back to fcntl per fd, as runc.
#[test]
fn a_seccomp_profile_denying_close_range_is_not_fatal() {
    let mut env = Env::new(&["sh", "-c", "echo ran; ls /proc/self/fd | wc -l"]);
    env.set("/process/noNewPrivileges", json!(false));
    env.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    let out = same_as_runc(&env);
    assert!(out.starts_with("ran\n"), "{out}");
}

/// The container process and an exec'd one get every CPU the cgroup allows, not the
/// caller's pinning (runc 1.2+ resets it; Debian's runc 1.1.5 passes it on, so berth only),
/// and execCPUAffinity.initial/final for exec as for the init.
#[test]
fn cpu_affinity_is_reset_and_exec_cpu_affinity_applies_to_exec() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return; // one CPU: pinning and reset look the same
    }
    let all = format!("0-{}", cpus - 1);
    let env = Env::new(&[
        "sh",
        "-c",
        "grep Cpus_allowed_list /proc/self/status; sleep 30",
    ]);
    env.write_config();
    let id = env.id();
    let b = env.bundle.to_str().unwrap();
    // The caller pinned to CPU 0, as a shim or a systemd unit with CPUAffinity= may be.
    let pinned = |args: &[&str]| {
        let mut c = std::process::Command::new("taskset");
        c.args(["-c", "0", BIN, "--root"]).arg(&env.root).args(args);
        run_cmd(&mut c, std::time::Duration::from_secs(30))
    };
    pinned(&["create", "--bundle", b, &id]).ok();
    let init = pinned(&["exec", &id, "grep", "Cpus_allowed_list", "/proc/1/status"]);
    let exec = pinned(&[
        "exec",
        &id,
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    let mut p: serde_json::Value = env.config["process"].clone();
    p["args"] = json!(["grep", "Cpus_allowed_list", "/proc/self/status"]);
    p["execCPUAffinity"] = json!({"initial": "1", "final": "0"});
    let pf = env.tmp.path().join("p.json");
    std::fs::write(&pf, p.to_string()).unwrap();
    let fin = pinned(&["exec", "--process", pf.to_str().unwrap(), &id]);
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
    assert!(
        init.ok().stdout.ends_with(&format!("\t{all}\n")),
        "init: {}",
        init.stdout
    );
    assert!(
        exec.ok().stdout.ends_with(&format!("\t{all}\n")),
        "exec: {}",
        exec.stdout
    );
    assert!(
        fin.ok().stdout.ends_with("\t0\n"),
        "exec final: {}",
        fin.stdout
    );
}

/// execCPUAffinity.initial survives the cgroup join: attaching to a cpuset cgroup rewrites
/// a task's affinity, so it is set after the join (it used to be undone by it).
#[test]
fn exec_cpu_affinity_initial_is_kept_after_the_cgroup_join() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return;
    }
    let mut env = Env::new(&["grep", "Cpus_allowed_list", "/proc/self/status"]);
    env.set("/process/execCPUAffinity", json!({"initial": "1"}));
    let out = env.run();
    out.ok();
    assert!(out.stdout.ends_with("\t1\n"), "{}", out.stdout);
}
