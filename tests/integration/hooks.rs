//! OCI hooks (config.md "POSIX-platform Hooks"): which hooks run when, in which
//! namespaces, with what on stdin, and how their failures and timeouts are handled.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// Writes an executable host shell script into the test's scratch dir; returns its path.
fn script(env: &Env, name: &str, body: &str) -> String {
    let p = env.tmp.path().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.to_str().unwrap().to_string()
}

/// A host script that saves its stdin as `<out>/<$1>.json` and appends `$1` to `<out>/log`.
fn recorder(env: &Env) -> String {
    let out = env.out.display();
    script(
        env,
        "record.sh",
        &format!("cat > {out}/$1.json\necho $1 >> {out}/log"),
    )
}

/// A hook entry running the recorder as `hook KIND`.
fn rec_hook(path: &str, kind: &str) -> Value {
    json!({"path": path, "args": ["hook", kind], "env": ["PATH=/usr/bin:/bin"], "timeout": 10})
}

/// The startContainer hook resolves inside the container: busybox's sh with argv0 "sh".
fn in_container_hook(cmd: &str) -> Value {
    json!({"path": "/bin/busybox", "args": ["sh", "-c", cmd], "env": ["PATH=/bin"]})
}

fn read_json(env: &Env, name: &str) -> Value {
    let s = env.read_out(name);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{name}: {e}: {s:?}"))
}

fn state_of(env: &Env, id: &str) -> Value {
    serde_json::from_str(&env.berth(&["state", id]).ok().stdout).unwrap()
}

fn log(env: &Env) -> Vec<String> {
    env.read_out("log").lines().map(str::to_string).collect()
}

fn ns_of(pid: i64, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_hook_runs_in_order_with_the_state_on_stdin() {
    let mut env = Env::new(&["sleep", "100"]);
    let rec = recorder(&env);
    env.set("/annotations", json!({"org.example/hooks": "yes"}));
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        env.push(&format!("/hooks/{kind}"), rec_hook(&rec, kind));
    }
    // Two hooks of one kind run in the order given.
    env.push("/hooks/createRuntime", rec_hook(&rec, "createRuntime2"));
    env.push(
        "/hooks/startContainer",
        in_container_hook(
            "cat > /out/startContainer.json; echo startContainer >> /out/log; \
             test -e /out/process-ran && echo process-before-hook >> /out/log; true",
        ),
    );
    env.set(
        "/process/args",
        json!(["sh", "-c", "touch /out/process-ran; exec sleep 100"]),
    );
    let id = env.id();
    env.create(&id).ok();
    assert_eq!(
        log(&env),
        [
            "prestart",
            "createRuntime",
            "createRuntime2",
            "createContainer"
        ],
        "create runs exactly the create-side hooks, in order"
    );
    let st = state_of(&env, &id);
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    for kind in [
        "prestart",
        "createRuntime",
        "createRuntime2",
        "createContainer",
    ] {
        let h = read_json(&env, &format!("{kind}.json"));
        assert_eq!(h["id"], id.as_str(), "{kind}");
        assert_eq!(h["status"], "creating", "{kind}");
        assert_eq!(
            h["pid"].as_i64(),
            Some(pid),
            "{kind}: pid is the container's init"
        );
        assert_eq!(h["bundle"], env.bundle.to_str().unwrap(), "{kind}");
        assert_eq!(h["ociVersion"], berth::spec::SPEC_VERSION, "{kind}");
        assert_eq!(h["annotations"]["org.example/hooks"], "yes", "{kind}");
    }
    assert_eq!(env.read_out("process-ran"), "", "process ran during create");

    env.berth(&["start", &id]).ok();
    // poststart has run by the time `start` returns.
    assert_eq!(
        log(&env),
        [
            "prestart",
            "createRuntime",
            "createRuntime2",
            "createContainer",
            "startContainer",
            "poststart"
        ]
    );
    let h = read_json(&env, "startContainer.json");
    assert_eq!(h["id"], id.as_str());
    assert_eq!(h["status"], "created");
    assert_eq!(h["pid"].as_i64(), Some(pid));
    let h = read_json(&env, "poststart.json");
    assert_eq!(h["id"], id.as_str());
    assert_eq!(h["status"], "running");
    assert_eq!(h["pid"].as_i64(), Some(pid));
    assert_eq!(env.status(&id), "running");

    env.berth(&["kill", &id, "KILL"]).ok();
    env.wait_status(&id, "stopped");
    assert_eq!(log(&env).len(), 6, "no hook runs on kill");
    env.berth(&["delete", &id]).ok();
    assert_eq!(log(&env).last().map(String::as_str), Some("poststop"));
    assert_eq!(log(&env).len(), 7);
    let h = read_json(&env, "poststop.json");
    assert_eq!(h["id"], id.as_str());
    assert_eq!(h["status"], "stopped");
    env.assert_clean(&id);
}

#[test]
fn run_runs_every_hook_once_in_order() {
    let mut env = Env::new(&["sh", "-c", "echo process >> /out/log"]);
    let rec = recorder(&env);
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        env.push(&format!("/hooks/{kind}"), rec_hook(&rec, kind));
    }
    env.push(
        "/hooks/startContainer",
        in_container_hook("echo startContainer >> /out/log"),
    );
    env.run().ok();
    let got = log(&env);
    assert_eq!(got.len(), 7, "{got:?}");
    assert_eq!(
        got[..4],
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer"
        ]
    );
    // poststart and the process race; both come after startContainer, before poststop.
    let mut tail = got[4..6].to_vec();
    tail.sort();
    assert_eq!(tail, ["poststart", "process"]);
    assert_eq!(got[6..], ["poststop"]);
}

/// Hooks that run in the container (createContainer, startContainer) without an `env`
/// of their own get the container process's environment, as runc's (its init holds that
/// environment when it runs them, HOME included by startContainer); one with `env` gets
/// only that. Same with runc.
#[test]
fn container_side_hooks_without_env_get_the_process_env_as_runc() {
    let mut env = Env::new(&["true"]);
    env.set(
        "/process/env",
        json!(["PATH=/bin:/usr/bin", "FROM_PROCESS=yes"]),
    );
    let dump =
        |name: &str| format!("env | grep -v -e ^PWD= -e ^SHLVL= -e ^_= | sort > /out/{name}");
    // createContainer runs before the pivot, in the root's directory: out/ is the bind.
    let dump_cc = "env | grep -v -e ^PWD= -e ^SHLVL= -e ^_= | sort > out/cc".to_string();
    env.push(
        "/hooks/createContainer",
        json!({"path": "/bin/busybox", "args": ["sh", "-c", dump_cc]}),
    );
    env.push(
        "/hooks/startContainer",
        json!({"path": "/bin/busybox", "args": ["sh", "-c", dump("sc")]}),
    );
    env.push(
        "/hooks/startContainer",
        json!({"path": "/bin/busybox", "args": ["sh", "-c", dump("sc-own")], "env": ["OWN=1"]}),
    );
    // Without PATH, busybox sh sets its own default one.
    let want = (
        "FROM_PROCESS=yes\nPATH=/bin:/usr/bin\n",
        "OWN=1\nPATH=/sbin:/usr/sbin:/bin:/usr/bin\n",
    );
    env.run().ok();
    let seen = |e: &Env| (e.read_out("cc"), e.read_out("sc"), e.read_out("sc-own"));
    let berth = seen(&env);
    // startContainer runs once the process's environment is final: HOME from passwd too.
    let with_home = "FROM_PROCESS=yes\nHOME=/root\nPATH=/bin:/usr/bin\n";
    assert_eq!((berth.0.as_str(), berth.1.as_str()), (want.0, with_home));
    assert_eq!(berth.2, want.1);
    for f in ["cc", "sc", "sc-own"] {
        let _ = std::fs::remove_file(env.out.join(f));
    }
    env.run_runc().ok();
    assert_eq!(seen(&env), berth, "runc (left) differs");
}

#[test]
fn hooks_get_their_args_and_only_their_env() {
    let mut env = Env::new(&["true"]);
    let out = env.out.display().to_string();
    // busybox dispatches on argv0: it only acts as `sh` if args[0] is passed as argv0.
    let busybox = default_bundle().join("rootfs/bin/busybox");
    env.push(
        "/hooks/createRuntime",
        json!({
            "path": busybox,
            "args": ["sh", "-c", format!("echo \"$0|$1|$2\" > {out}/args; env > {out}/env"), "zero", "one two", "three"],
            "env": ["HOOK_VAR=hook value", "PATH=/usr/bin:/bin"]
        }),
    );
    env.write_config();
    let id = env.id();
    let o = run_cmd(
        Command::new(BIN)
            .env("BERTH_LEAK_CHECK", "leaked")
            .arg("--root")
            .arg(&env.root)
            .args(["create", "--bundle", env.bundle.to_str().unwrap(), &id]),
        Duration::from_secs(60),
    );
    o.ok();
    assert_eq!(env.read_out("args"), "zero|one two|three\n");
    let hook_env = env.read_out("env");
    let mut vars: Vec<&str> = hook_env
        .lines()
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
        .collect();
    vars.sort();
    assert_eq!(
        vars,
        ["HOOK_VAR=hook value", "PATH=/usr/bin:/bin"],
        "hook env: {hook_env:?}"
    );
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn create_side_hooks_run_in_the_right_namespaces() {
    let mut env = Env::new(&["true"]);
    env.set("/hostname", json!("hookns"));
    let out = env.out.display().to_string();
    let probe = |env: &Env, tag: &str| {
        script(
            env,
            &format!("{tag}.sh"),
            &format!(
                "hostname > {out}/{tag}-hostname\nreadlink /proc/self/ns/net > {out}/{tag}-net\nreadlink /proc/self/ns/mnt > {out}/{tag}-mnt"
            ),
        )
    };
    let cr = probe(&env, "cr");
    let cc = probe(&env, "cc");
    env.push(
        "/hooks/createRuntime",
        json!({"path": cr, "env": ["PATH=/usr/bin:/bin"]}),
    );
    env.push(
        "/hooks/createContainer",
        json!({"path": cc, "env": ["PATH=/usr/bin:/bin"]}),
    );
    env.push(
        "/hooks/startContainer",
        in_container_hook(
            "hostname > /out/sc-hostname; readlink /proc/self/ns/net > /out/sc-net; \
             readlink /proc/self/ns/mnt > /out/sc-mnt; ls / > /out/sc-root",
        ),
    );
    let id = env.id();
    env.create(&id).ok();
    let pid = state_of(&env, &id)["pid"].as_i64().unwrap();
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host_name.trim(), "hookns");
    let line = |n: &str| env.read_out(n).trim().to_string();
    // createRuntime: the runtime's namespaces.
    assert_eq!(line("cr-hostname"), host_name.trim());
    assert_eq!(line("cr-net"), host_ns("net"));
    assert_eq!(line("cr-mnt"), host_ns("mnt"));
    // createContainer: the container's namespaces.
    assert_eq!(line("cc-hostname"), "hookns");
    assert_eq!(line("cc-net"), ns_of(pid, "net"));
    assert_ne!(line("cc-net"), host_ns("net"));
    assert_eq!(line("cc-mnt"), ns_of(pid, "mnt"));
    assert_ne!(line("cc-mnt"), host_ns("mnt"));

    env.berth(&["start", &id]).ok();
    env.wait_status(&id, "stopped");
    assert_eq!(line("sc-hostname"), "hookns");
    assert_eq!(line("sc-net"), line("cc-net"));
    assert_eq!(line("sc-mnt"), line("cc-mnt"));
    // After pivot_root: the hook sees the container's rootfs as /.
    let root = env.read_out("sc-root");
    assert!(root.lines().any(|l| l == "out"), "container / is {root:?}");
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn failing_create_runtime_hook_fails_create_and_cleans_up() {
    let mut env = Env::new(&["sh", "-c", "echo ran > /out/process"]);
    let rec = recorder(&env);
    let bad = script(&env, "bad-hook.sh", "echo bad hook output >&2\nexit 1");
    env.push("/hooks/prestart", rec_hook(&rec, "prestart"));
    env.push(
        "/hooks/createRuntime",
        json!({"path": bad, "args": ["bad"], "env": []}),
    );
    env.push("/hooks/createRuntime", rec_hook(&rec, "createRuntime"));
    env.push("/hooks/createContainer", rec_hook(&rec, "createContainer"));
    env.push("/hooks/poststop", rec_hook(&rec, "poststop"));
    let id = env.id();
    let o = env.create(&id);
    assert_eq!(o.code, 1, "stderr: {}", o.stderr);
    // The hook's own stderr line may precede berth's error; the error itself is one line.
    let errs: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| !l.contains("bad hook output") && !l.contains("warning"))
        .collect();
    assert_eq!(errs.len(), 1, "{:?}", o.stderr);
    assert!(errs[0].contains("createRuntime"), "{:?}", errs[0]);
    assert!(errs[0].contains(&bad), "{:?}", errs[0]);
    assert!(errs[0].contains("status 1"), "{:?}", errs[0]);
    env.assert_clean(&id);
    assert_eq!(
        log(&env),
        ["prestart", "poststop"],
        "later hooks must not run, poststop must"
    );
    assert_eq!(read_json(&env, "poststop.json")["status"], "stopped");
    assert_eq!(env.read_out("process"), "");
}

#[test]
fn failing_create_container_hook_fails_create_and_cleans_up() {
    let mut env = Env::new(&["true"]);
    let rec = recorder(&env);
    let bad = script(&env, "bad-cc.sh", "exit 7");
    env.push("/hooks/createContainer", json!({"path": bad, "env": []}));
    env.push("/hooks/poststop", rec_hook(&rec, "poststop"));
    let id = env.id();
    env.create(&id)
        .fails_with(&["createContainer", &bad, "status 7"]);
    env.assert_clean(&id);
    assert_eq!(log(&env), ["poststop"]);
}

#[test]
fn hook_exceeding_its_timeout_is_killed() {
    let mut env = Env::new(&["true"]);
    let rec = recorder(&env);
    let out = env.out.display();
    let slow = script(
        &env,
        "slow.sh",
        &format!("echo $$ > {out}/slow-pid\nexec sleep 30"),
    );
    env.push(
        "/hooks/createRuntime",
        json!({"path": slow, "env": ["PATH=/usr/bin:/bin"], "timeout": 1}),
    );
    env.push("/hooks/poststop", rec_hook(&rec, "poststop"));
    let id = env.id();
    let t = Instant::now();
    env.create(&id)
        .fails_with(&["createRuntime", &slow, "timed out"]);
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "create took {:?} for a 1 s timeout",
        t.elapsed()
    );
    env.assert_clean(&id);
    assert_eq!(log(&env), ["poststop"]);
    let pid = env.read_out("slow-pid").trim().to_string();
    assert!(!pid.is_empty(), "the hook did not run");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || !stat.contains("(sleep)"),
        "the timed-out hook {pid} is still running: {stat}"
    );
}

#[test]
fn failing_start_container_hook_fails_start_and_stops_the_container() {
    let mut env = Env::new(&["sh", "-c", "echo ran > /out/process"]);
    let rec = recorder(&env);
    env.push(
        "/hooks/startContainer",
        in_container_hook("echo sc >> /out/log; exit 4"),
    );
    env.push("/hooks/poststart", rec_hook(&rec, "poststart"));
    env.push("/hooks/poststop", rec_hook(&rec, "poststop"));
    let id = env.id();
    env.create(&id).ok();
    env.berth(&["start", &id])
        .fails_with(&["startContainer", "/bin/busybox", "status 4"]);
    env.wait_status(&id, "stopped");
    assert_eq!(
        env.read_out("process"),
        "",
        "the process ran after a failed hook"
    );
    assert_eq!(
        log(&env),
        ["sc"],
        "poststart must not run after a failed start"
    );
    env.berth(&["delete", &id]).ok();
    assert_eq!(log(&env), ["sc", "poststop"]);
    env.assert_clean(&id);
}

/// runtime-spec 1.3.0 (and runc): a failing poststart hook makes `start` fail naming the
/// hook, the container is stopped (its process killed), the hooks after it do not run,
/// and the lifecycle continues at delete, which runs poststop.
#[test]
fn failing_poststart_hook_stops_the_container() {
    let mut env = Env::new(&["sleep", "100"]);
    let rec = recorder(&env);
    let bad = script(&env, "bad-ps.sh", "exit 1");
    env.push("/hooks/poststart", json!({"path": bad, "env": []}));
    env.push("/hooks/poststart", rec_hook(&rec, "poststart"));
    env.push("/hooks/poststop", rec_hook(&rec, "poststop"));
    let id = env.id();
    env.create(&id).ok();
    let o = env.berth(&["start", &id]);
    o.fails_with(&["poststart hook", "bad-ps.sh"]);
    assert_eq!(env.status(&id), "stopped");
    assert!(log(&env).is_empty(), "the next poststart hook did not run");
    env.berth(&["delete", &id]).ok();
    assert_eq!(log(&env), ["poststop"]);
    env.assert_clean(&id);
    // runc fails too: 1.1.5 runs poststart hooks during create (fixed in 1.2, which runs
    // them at start as berth does) and kills the container.
    let root = env.tmp.path().join("runc-root");
    let runc = |args: &[&str]| {
        let mut c = std::process::Command::new("/usr/sbin/runc");
        c.arg("--root").arg(&root).args(args);
        run_cmd(&mut c, std::time::Duration::from_secs(30))
    };
    let b = env.bundle.to_str().unwrap();
    let created = runc(&["create", "--bundle", b, "r"]);
    assert!(created.code != 0 || runc(&["start", "r"]).code != 0);
    assert!(
        created.stderr.contains("exit status 1"),
        "{}",
        created.stderr
    );
    let _ = runc(&["delete", "--force", "r"]);
}

#[test]
fn failing_poststop_hook_only_warns() {
    let mut env = Env::new(&["true"]);
    let rec = recorder(&env);
    let bad = script(&env, "bad-pst.sh", "exit 1");
    env.push("/hooks/poststop", json!({"path": bad, "env": []}));
    env.push("/hooks/poststop", rec_hook(&rec, "poststop"));
    let id = env.id();
    env.create(&id).ok();
    env.berth(&["start", &id]).ok();
    env.wait_status(&id, "stopped");
    let o = env.berth(&["delete", &id]);
    o.ok();
    assert!(
        o.stderr.contains("warning") && o.stderr.contains("poststop"),
        "stderr: {:?}",
        o.stderr
    );
    assert_eq!(log(&env), ["poststop"], "the next poststop hook still runs");
    env.assert_clean(&id);
}

#[test]
fn missing_hook_program_fails_create() {
    let mut env = Env::new(&["true"]);
    let missing = env.tmp.path().join("no-such-hook");
    env.push("/hooks/createRuntime", json!({"path": missing, "env": []}));
    let id = env.id();
    env.create(&id)
        .fails_with(&["createRuntime", missing.to_str().unwrap()]);
    env.assert_clean(&id);
    assert!(!Path::new(&missing).exists());
}

#[test]
fn relative_hook_path_is_rejected() {
    let mut env = Env::new(&["true"]);
    env.push("/hooks/poststop", json!({"path": "/bin/true"}));
    env.push("/hooks/poststop", json!({"path": "bin/true"}));
    let id = env.id();
    env.create(&id)
        .fails_with(&["hooks.poststop[1].path", "absolute"]);
    env.assert_clean(&id);
}
