//! Hooks: config.md § POSIX-platform Hooks and their place in runtime.md § Lifecycle.
//!
//! Every hook is `/bin/sh -c SCRIPT`: it saves the state it got on stdin, its mount namespace
//! and its place in the order into a log directory, which is bind-mounted into the container
//! at /hooklog so hooks that run in the container's namespaces can write there too.

use super::host_ns;
use crate::env::{Bundle, Env, Outcome, T, ensure, fail};
use crate::{Case, case};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const HOOKS: &str = "config.md § POSIX-platform Hooks";
const LIFE: &str = "runtime.md § Lifecycle";

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

struct Log(PathBuf);

impl Log {
    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.0.join(f)).unwrap_or_default()
    }
    fn order(&self) -> Vec<String> {
        self.read("order").lines().map(str::to_owned).collect()
    }
    fn state(&self, kind: &str) -> T<Value> {
        let t = self.read(&format!("{kind}.json"));
        serde_json::from_str(&t).map_err(|e| {
            Outcome::Fail(format!(
                "{kind} hook's stdin is not state JSON ({e}): {t:?}"
            ))
        })
    }
}

fn script(log: &str, kind: &str, extra: &str) -> String {
    format!(
        "D={log}; [ -d /hooklog ] && D=/hooklog; cat > $D/{kind}.json; readlink /proc/self/ns/mnt > $D/{kind}.mnt; echo {kind} >> $D/order; {extra}"
    )
}

fn hook(log: &str, kind: &str, extra: &str) -> Value {
    json!({ "path": "/bin/sh", "args": ["sh", "-c", script(log, kind, extra)] })
}

/// A bundle with the log bind mount and the given hooks (kind, extra shell) added.
fn hooked(env: &mut Env, hooks: &[(&str, &str)]) -> T<(Bundle, Log)> {
    let log = env.path("hooklog");
    std::fs::create_dir_all(&log).map_err(|e| Outcome::Fail(e.to_string()))?;
    let l = log.display().to_string();
    let mut b = env.bundle(&[])?;
    std::fs::create_dir_all(b.rootfs().join("hooklog"))
        .map_err(|e| Outcome::Fail(e.to_string()))?;
    b.mounts().push(json!({ "destination": "/hooklog", "type": "bind", "source": l, "options": ["rbind", "rw"] }));
    for (kind, extra) in hooks {
        let list = &mut b.cfg["hooks"][*kind];
        if !list.is_array() {
            *list = json!([]);
        }
        if let Some(a) = list.as_array_mut() {
            a.push(hook(&l, kind, extra));
        }
    }
    Ok((b, Log(log)))
}

fn all_hooks() -> Vec<(&'static str, &'static str)> {
    KINDS.iter().map(|k| (*k, "")).collect()
}

/// Runs a full lifecycle (create, start, wait, delete) of a bundle whose process exits at once.
fn lifecycle(env: &mut Env, b: &mut Bundle) -> T<String> {
    b.cfg["process"]["args"] = json!(["/bin/true"]);
    b.write()?;
    let id = env.id();
    env.create(&id, b)?;
    env.start(&id)?;
    env.wait_status(&id, "stopped")?;
    env.delete(&id)?;
    Ok(id)
}

fn runs(kind: &'static str) -> Case {
    case(
        format!("hooks.{kind}.runs-with-state"),
        HOOKS,
        "The state of the container MUST be passed to hooks over stdin so that they may do work appropriate to the current state of the container.",
        move |env| {
            let (mut b, log) = hooked(env, &[(kind, "")])?;
            let id = lifecycle(env, &mut b)?;
            let st = log.state(kind)?;
            ensure(st["id"] == id.as_str(), || format!("{kind} got state {st}"))?;
            let bundle = std::fs::canonicalize(&b.dir).ok();
            ensure(
                st["bundle"]
                    .as_str()
                    .and_then(|p| std::fs::canonicalize(p).ok())
                    == bundle,
                || format!("{kind} state bundle {}", st["bundle"]),
            )
        },
    )
}

fn namespace(kind: &'static str, container: bool) -> Case {
    let quote = if container {
        "The createContainer/startContainer hooks MUST be called … in the container namespace"
    } else {
        "prestart, createRuntime, poststart and poststop hooks MUST be called … in the runtime namespace"
    };
    case(
        format!("hooks.{kind}.namespace"),
        HOOKS,
        quote,
        move |env| {
            let (mut b, log) = hooked(env, &[(kind, "")])?;
            lifecycle(env, &mut b)?;
            let mnt = log.read(&format!("{kind}.mnt"));
            ensure(!mnt.is_empty(), || format!("{kind} did not run"))?;
            let host = host_ns("mnt");
            if container {
                ensure(mnt.trim() != host, || {
                    format!("{kind} ran in the runtime's mount namespace {host}")
                })
            } else {
                ensure(mnt.trim() == host, || {
                    format!("{kind} ran in {}, not the runtime's {host}", mnt.trim())
                })
            }
        },
    )
}

fn create_fails(kind: &'static str) -> Case {
    let quote = "If any prestart/createRuntime/createContainer hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at step 12.";
    case(format!("hooks.{kind}.failure"), LIFE, quote, move |env| {
        let (b, log) = hooked(env, &[(kind, "exit 1"), ("poststop", "")])?;
        b.write()?;
        let id = env.id();
        let o = env.try_create(&id, &b);
        ensure(!o.ok(), || {
            format!("create succeeded although the {kind} hook failed")
        })?;
        let st = env.rt(&["state", &id]);
        if st.ok() && !st.stdout.contains("\"stopped\"") {
            return fail(format!("container left behind: {}", st.stdout));
        }
        ensure(!log.order().contains(&"startContainer".to_owned()), || {
            "lifecycle went on".into()
        })?;
        ensure(log.order().contains(&"poststop".to_owned()), || {
            format!("poststop did not run (step 12); order {:?}", log.order())
        })
    })
}

pub fn cases() -> Vec<Case> {
    let mut v: Vec<Case> = KINDS.iter().map(|k| runs(k)).collect();
    v.extend(
        KINDS
            .iter()
            .map(|k| namespace(k, *k == "createContainer" || *k == "startContainer")),
    );
    v.extend(["prestart", "createRuntime", "createContainer"].map(create_fails));
    v.push(case("hooks.create-phase-order", LIFE, "prestart hooks MUST be invoked …; createRuntime hooks MUST be invoked …; createContainer hooks MUST be invoked … (steps 4–6 of create)", |env| {
        let (b, log) = hooked(env, &all_hooks())?;
        b.write()?;
        let id = env.id();
        env.create(&id, &b)?;
        let order = log.order();
        ensure(order == ["prestart", "createRuntime", "createContainer"], || format!("after create the hooks ran as {order:?}"))
    }));
    v.push(case("hooks.start-phase-order", LIFE, "startContainer hooks MUST be invoked …; the runtime MUST run the user-specified program; poststart hooks MUST be invoked", |env| {
        let (mut b, log) = hooked(env, &all_hooks())?;
        lifecycle(env, &mut b)?;
        let order = log.order();
        let want = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];
        ensure(order == want, || format!("hooks ran as {order:?}"))
    }));
    v.push(case(
        "hooks.startContainer-before-process",
        HOOKS,
        "The startContainer hooks MUST be called before the user-specified process is executed",
        |env| {
            let (mut b, _log) = hooked(env, &[("startContainer", "")])?;
            b.cfg["process"]["args"] = json!([
                "/bin/sh",
                "-c",
                "if [ -e /hooklog/startContainer.json ]; then echo SEEN; else echo NOTSEEN; fi"
            ]);
            b.write()?;
            let id = env.id();
            env.create(&id, &b)?;
            env.start(&id)?;
            env.wait_status(&id, "stopped")?;
            let out = env.output(&id);
            ensure(out.contains("SEEN") && !out.contains("NOTSEEN"), || {
                format!("process output {out:?}")
            })
        },
    ));
    v.push(case("hooks.poststart-before-start-returns", HOOKS, "The poststart hooks MUST be called after the user-specified process is executed but before the start operation returns.", |env| {
        let (mut b, log) = hooked(env, &[("poststart", "")])?;
        b.cfg["process"]["args"] = json!(["/bin/sleep", "1000"]);
        b.write()?;
        let id = env.id();
        env.create(&id, &b)?;
        ensure(log.order().is_empty(), || "poststart ran during create".into())?;
        env.start(&id)?;
        ensure(log.order() == ["poststart"], || format!("after start returned the log is {:?}", log.order()))
    }));
    v.push(case("hooks.poststop-on-delete", HOOKS, "The poststop hooks MUST be called after the container is deleted but before the delete operation returns.", |env| {
        let (mut b, log) = hooked(env, &[("poststop", "")])?;
        b.cfg["process"]["args"] = json!(["/bin/true"]);
        b.write()?;
        let id = env.id();
        env.create(&id, &b)?;
        env.start(&id)?;
        env.wait_status(&id, "stopped")?;
        ensure(log.order().is_empty(), || "poststop ran before delete".into())?;
        env.delete(&id)?;
        ensure(log.order() == ["poststop"], || format!("after delete the log is {:?}", log.order()))
    }));
    v.push(case("hooks.startContainer.failure", LIFE, "If any startContainer hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at step 12.", |env| {
        let (mut b, log) = hooked(env, &[("startContainer", "exit 1"), ("poststop", "")])?;
        b.cfg["process"]["args"] = json!(["/bin/sh", "-c", "echo USER-CODE-RAN"]);
        b.write()?;
        let id = env.id();
        env.create(&id, &b)?;
        let o = env.rt(&["start", &id]);
        ensure(!o.ok(), || "start succeeded although the startContainer hook failed".into())?;
        std::thread::sleep(Duration::from_millis(100));
        ensure(!env.output(&id).contains("USER-CODE-RAN"), || "the user process ran".into())?;
        let st = env.rt(&["state", &id]);
        if st.ok() && !st.stdout.contains("\"stopped\"") {
            return fail(format!("container not stopped: {}", st.stdout));
        }
        let _ = env.rt(&["delete", &id]);
        ensure(log.order().contains(&"poststop".to_owned()), || format!("poststop never ran; order {:?}", log.order()))
    }));
    v.push(case("hooks.poststart.failure", LIFE, "If any poststart hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at step 12. (runtime-spec 1.3.0)", |env| {
        let (mut b, log) = hooked(env, &[("poststart", "exit 1"), ("poststart", ""), ("poststop", "")])?;
        b.cfg["process"]["args"] = json!(["/bin/sleep", "1000"]);
        b.write()?;
        let id = env.id();
        env.create(&id, &b)?;
        let o = env.rt(&["start", &id]);
        ensure(!o.ok(), || "start succeeded although a poststart hook failed".into())?;
        // The failing hook logs itself before exiting 1; the one after it must not run.
        ensure(log.order() == ["poststart"], || format!("hooks after the failed one ran: {:?}", log.order()))?;
        let st = env.status(&id)?;
        ensure(st == "stopped", || format!("container status {st} after a failed poststart hook"))?;
        let _ = env.rt(&["delete", &id]);
        ensure(log.order() == ["poststart", "poststop"], || format!("the lifecycle did not continue at delete: {:?}", log.order()))
    }));
    v.push(case("hooks.poststop.failure", LIFE, "If any poststop hook fails, the runtime MUST log a warning, but the remaining hooks and lifecycle continue as if the hook had succeeded.", |env| {
        let (mut b, log) = hooked(env, &[("poststop", "exit 1"), ("poststop", "")])?;
        let id = match lifecycle(env, &mut b) {
            Ok(id) => id,
            Err(Outcome::Fail(m)) => return fail(format!("lifecycle with a failing poststop hook: {m}")),
            Err(o) => return Err(o),
        };
        ensure(log.order() == ["poststop", "poststop"], || format!("hooks ran as {:?}", log.order()))?;
        ensure(!env.rt(&["state", &id]).ok(), || "container still exists after delete".into())
    }));
    v.push(case("hooks.args", HOOKS, "args (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008 execv's argv.", |env| {
        let (mut b, log) = hooked(env, &[])?;
        let l = log.0.display().to_string();
        b.cfg["hooks"]["createRuntime"] = json!([{ "path": "/bin/sh", "args": ["sh", "-c", format!("cat >/dev/null; echo \"$0|$1|$2\" > {l}/args"), "zero", "one", "two"] }]);
        lifecycle(env, &mut b)?;
        ensure(log.read("args").trim() == "zero|one|two", || format!("hook argv {:?}", log.read("args")))
    }));
    v.push(case("hooks.env", HOOKS, "env (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008's environ.", |env| {
        let (mut b, log) = hooked(env, &[])?;
        let l = log.0.display().to_string();
        b.cfg["hooks"]["createRuntime"] = json!([{ "path": "/bin/sh", "args": ["sh", "-c", format!("cat >/dev/null; echo \"$HOOKVAR\" > {l}/env")], "env": ["HOOKVAR=from-config"] }]);
        lifecycle(env, &mut b)?;
        ensure(log.read("env").trim() == "from-config", || format!("hook env {:?}", log.read("env")))
    }));
    v.push(case(
        "hooks.path",
        HOOKS,
        "path (string, REQUIRED) with similar semantics to IEEE Std 1003.1-2008 execv's path.",
        |env| {
            let (mut b, log) = hooked(env, &[])?;
            let l = log.0.display().to_string();
            let script = log.0.join("hook.sh");
            std::fs::write(
                &script,
                format!("#!/bin/sh\ncat >/dev/null\necho ran > {l}/path\n"),
            )
            .map_err(|e| Outcome::Fail(e.to_string()))?;
            let _ = std::process::Command::new("chmod")
                .arg("755")
                .arg(&script)
                .status();
            b.cfg["hooks"]["prestart"] = json!([{ "path": script.display().to_string() }]);
            lifecycle(env, &mut b)?;
            ensure(log.read("path").trim() == "ran", || {
                "a hook with only path did not run".into()
            })
        },
    ));
    v.push(case("hooks.timeout", HOOKS, "timeout (int, OPTIONAL) is the number of seconds before aborting the hook. If set, timeout MUST be greater than zero.", |env| {
        let (mut b, _) = hooked(env, &[])?;
        b.cfg["hooks"]["createRuntime"] = json!([{ "path": "/bin/sh", "args": ["sh", "-c", "cat >/dev/null; exec sleep 30"], "timeout": 1 }]);
        b.write()?;
        let id = env.id();
        let t = Instant::now();
        let o = env.try_create(&id, &b);
        let took = t.elapsed();
        ensure(!o.ok() && took < Duration::from_secs(10), || format!("create {} after {took:?} with a 1 s hook timeout", if o.ok() { "succeeded" } else { "failed" }))
    }));
    v.push(case(
        "hooks.state-pid",
        HOOKS,
        "The state of the container MUST be passed to hooks over stdin",
        |env| {
            let (mut b, log) = hooked(env, &[("createRuntime", "")])?;
            b.cfg["process"]["args"] = json!(["/bin/sleep", "1000"]);
            b.write()?;
            let id = env.id();
            env.create(&id, &b)?;
            let pid = env.state(&id)?["pid"].clone();
            let st = log.state("createRuntime")?;
            ensure(st["pid"] == pid, || {
                format!("hook saw pid {}, state says {pid}", st["pid"])
            })
        },
    ));
    v
}
