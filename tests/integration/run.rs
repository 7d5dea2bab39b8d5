//! The `run` verb: create + start + wait + delete in the foreground, returning the
//! container's exit status and forwarding signals to it.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// `berth run` in the background; stdio goes to files (the container inherits it).
fn spawn_run(env: &Env, id: &str) -> Child {
    env.write_config();
    let so = std::fs::File::create(env.tmp.path().join("run.stdout")).unwrap();
    let se = std::fs::File::create(env.tmp.path().join("run.stderr")).unwrap();
    Command::new(BIN)
        .arg("--root")
        .arg(&env.root)
        .args(["run", "--bundle", env.bundle.to_str().unwrap(), id])
        .stdin(Stdio::null())
        .stdout(so)
        .stderr(se)
        .spawn()
        .expect("spawn berth run")
}

fn run_stderr(env: &Env) -> String {
    std::fs::read_to_string(env.tmp.path().join("run.stderr")).unwrap_or_default()
}

/// Waits for the berth process; its exit code (128+N if killed by signal N).
fn wait_child(child: &mut Child, env: &Env) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(128 + st.signal().unwrap_or(0));
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berth run did not finish; stderr: {}", run_stderr(env));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls until the container wrote `<out>/<name>`.
fn wait_file(env: &Env, name: &str, child: &mut Child) {
    let start = Instant::now();
    while !env.out.join(name).exists() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!(
                "berth run exited ({st}) before {name}; stderr: {}",
                run_stderr(env)
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "container never wrote {name}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn exit_code_is_returned() {
    for code in [0, 1, 3, 255] {
        let env = Env::new(&["sh", "-c", &format!("exit {code}")]);
        let o = env.run();
        assert_eq!(o.code, code, "stderr: {}", o.stderr);
        assert_eq!(o.stderr, "", "a container exit status is not a berth error");
    }
}

#[test]
fn killed_by_signal_returns_128_plus_n() {
    // Without a pid namespace the shell is not a namespace init and can SIGKILL itself.
    let mut env = Env::new(&["sh", "-c", "kill -9 $$; exit 5"]);
    let ns: Vec<Value> = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "pid")
        .cloned()
        .collect();
    env.set("/linux/namespaces", json!(ns));
    let o = env.run();
    assert_eq!(o.code, 137, "stderr: {}", o.stderr);
}

#[test]
fn container_init_killed_from_the_host_returns_128_plus_n() {
    let env = Env::new(&[
        "sh",
        "-c",
        "echo ready > /out/ready; while :; do sleep 0.05; done",
    ]);
    let id = env.id();
    let mut child = spawn_run(&env, &id);
    wait_file(&env, "ready", &mut child);
    let st: Value = serde_json::from_str(&env.berth(&["state", &id]).ok().stdout).unwrap();
    assert_eq!(st["status"], "running");
    let pid = st["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) of the container's init, which this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert_eq!(wait_child(&mut child, &env), 137, "{}", run_stderr(&env));
    env.assert_clean(&id);
}

#[test]
fn signals_to_berth_are_forwarded_to_the_container() {
    let env = Env::new(&[
        "sh",
        "-c",
        "trap 'echo usr1 >> /out/sig' USR1; trap 'echo hup >> /out/sig' HUP; \
         trap 'echo term >> /out/sig; exit 42' TERM; \
         echo ready > /out/ready; while :; do sleep 0.02; done",
    ]);
    let id = env.id();
    let mut child = spawn_run(&env, &id);
    wait_file(&env, "ready", &mut child);
    let berth = child.id() as i32;
    let send = |sig: i32, want: &str| {
        // SAFETY: kill(2) of the berth process this test spawned.
        assert_eq!(unsafe { libc::kill(berth, sig) }, 0);
        let start = Instant::now();
        while !env.read_out("sig").ends_with(want) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "signal {sig} never reached the container; got {:?}; stderr: {}",
                env.read_out("sig"),
                run_stderr(&env)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    send(libc::SIGUSR1, "usr1\n");
    send(libc::SIGHUP, "hup\n");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(berth, libc::SIGTERM) }, 0);
    assert_eq!(wait_child(&mut child, &env), 42, "{}", run_stderr(&env));
    assert_eq!(env.read_out("sig"), "usr1\nhup\nterm\n");
    env.assert_clean(&id);
}

#[test]
fn no_hang_over_many_sequential_runs() {
    let env = Env::new(&["true"]);
    let start = Instant::now();
    for i in 0..50 {
        let o = env.run();
        assert_eq!(o.code, 0, "run {i}: stderr: {}", o.stderr);
    }
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "50 runs of true took {:?}",
        start.elapsed()
    );
    assert_eq!(
        std::fs::read_dir(&env.root).map(|d| d.count()).unwrap_or(0),
        0,
        "state left under --root"
    );
}

#[test]
fn container_stdio_is_berths_stdio() {
    // stdin is /dev/null for berth, so `cat` sees EOF at once.
    let env = Env::new(&[
        "sh",
        "-c",
        "cat; echo to-stdout; echo to-stderr >&2; echo second line",
    ]);
    let o = env.run();
    o.ok();
    assert_eq!(o.stdout, "to-stdout\nsecond line\n");
    assert_eq!(o.stderr, "to-stderr\n");
}

#[test]
fn exit_of_init_ends_run_even_with_children_left() {
    // The pid namespace dies with its init: the background sleep must not keep run waiting.
    let env = Env::new(&["sh", "-c", "sleep 100 & exit 5"]);
    let t = Instant::now();
    let o = env.run();
    assert_eq!(o.code, 5, "stderr: {}", o.stderr);
    assert!(t.elapsed() < Duration::from_secs(30));
}

#[test]
fn without_pid_namespace_leftover_processes_are_killed() {
    // No pid namespace: the kernel does not kill the orphans, berth must (as runc does).
    let mut env = Env::new(&["sh", "-c", "sleep 100 & echo $! > /out/bg; exit 6"]);
    let ns: Vec<Value> = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "pid")
        .cloned()
        .collect();
    env.set("/linux/namespaces", json!(ns));
    let o = env.run(); // asserts that no process is left in the container's cgroup
    assert_eq!(o.code, 6, "stderr: {}", o.stderr);
    let bg = env.read_out("bg").trim().to_string();
    assert!(!bg.is_empty());
    // Gone, or a zombie (killed, waiting for the host's init to reap it).
    let stat = std::fs::read_to_string(format!("/proc/{bg}/stat")).unwrap_or_default();
    assert!(
        !stat.contains("(sleep)") || stat.contains("(sleep) Z"),
        "background process {bg} survived the container: {stat}"
    );
}

#[test]
fn run_failure_leaves_nothing() {
    let env = Env::new(&["no-such-program"]);
    env.run()
        .fails_with(&["no-such-program", "executable file not found"]);
}

/// `berth run` of a terminal process from a terminal (script(1) gives it one) that types
/// `input`: without any terminal berth refuses, as runc does.
fn run_tty(env: &Env, input: &str) -> Out {
    env.write_config();
    let id = env.id();
    let stdin = env.tmp.path().join("stdin");
    std::fs::write(&stdin, input).unwrap();
    let cmd = format!(
        "{BIN} --root {} run --bundle {} {id}",
        env.root.display(),
        env.bundle.display()
    );
    let mut c = std::process::Command::new("script");
    c.args(["-qefc", &cmd, "/dev/null"]);
    let out = run_cmd_stdin(&mut c, std::fs::File::open(&stdin).unwrap());
    env.assert_clean(&id);
    out
}

#[test]
fn interactive_terminal_without_a_console_socket() {
    let mut env = Env::new(&["sh"]);
    env.set("/process/terminal", serde_json::json!(true));
    // The shell reads our stdin through the pty and writes back through it.
    let out = run_tty(&env, "tty\necho typed-$((40+2))\nexit 5\n");
    assert_eq!(out.code, 5, "{} {}", out.stdout, out.stderr);
    assert!(out.stdout.contains("/dev/pts/0"), "{}", out.stdout);
    assert!(out.stdout.contains("typed-42"), "{}", out.stdout);
}

#[test]
fn exec_tty_without_a_console_socket() {
    let env = Env::new(&["sleep", "100"]);
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
    let stdin = env.tmp.path().join("stdin");
    std::fs::write(&stdin, "tty; exit 3\n").unwrap();
    let mut c = std::process::Command::new(BIN);
    c.arg("--root")
        .arg(&env.root)
        .args(["exec", "-t", &id, "sh"]);
    let out = run_cmd_stdin(&mut c, std::fs::File::open(&stdin).unwrap());
    assert_eq!(out.code, 3, "{} {}", out.stdout, out.stderr);
    assert!(out.stdout.contains("/dev/pts/"), "{}", out.stdout);
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}
