//! runtime.md: state, lifecycle, and the create/start/kill/delete operations.

use super::{running, sleeper};
use crate::env::{Env, T, ensure, fail};
use crate::{Case, case};
use serde_json::json;
use std::time::Duration;

const STATE: &str = "runtime.md § State";
const LIFE: &str = "runtime.md § Lifecycle";
const ERR: &str = "runtime.md § Errors";
const Q: &str = "runtime.md § Query State";
const CREATE: &str = "runtime.md § Create";
const START: &str = "runtime.md § Start";
const KILL: &str = "runtime.md § Kill";
const DELETE: &str = "runtime.md § Delete";

fn state_of_created(env: &mut Env) -> T<(String, serde_json::Value, std::path::PathBuf)> {
    let (id, b) = sleeper(env, |b| {
        b.cfg["annotations"] = json!({ "org.example.key": "value" });
    })?;
    let st = env.state(&id)?;
    Ok((id, st, b.dir))
}

fn failing_cmd(env: &mut Env, args: &[&str]) -> T<()> {
    let o = env.rt(args);
    ensure(!o.ok() && !o.timed_out, || {
        format!("`{}` did not fail: {}", args.join(" "), o.describe())
    })
}

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "state.ociVersion",
            STATE,
            "The state of a container MUST include … ociVersion (string)",
            |env| {
                let (_, st, _) = state_of_created(env)?;
                ensure(
                    st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
                    || format!("ociVersion: {}", st["ociVersion"]),
                )
            },
        ),
        case(
            "state.id",
            STATE,
            "The state of a container MUST include … id (string) is the container's ID",
            |env| {
                let (id, st, _) = state_of_created(env)?;
                ensure(st["id"] == id.as_str(), || {
                    format!("id {} != {id}", st["id"])
                })
            },
        ),
        case(
            "state.status-created",
            CREATE,
            "Upon successful completion of this operation the status property of this container MUST be created.",
            |env| {
                let (_, st, _) = state_of_created(env)?;
                ensure(st["status"] == "created", || {
                    format!("status {}", st["status"])
                })
            },
        ),
        case(
            "state.pid-is-host-pid",
            STATE,
            "pid (int, REQUIRED when status is created or running on Linux) is the ID of the container process, as seen by the host",
            |env| {
                let (_, st, _) = state_of_created(env)?;
                let pid = st["pid"].as_i64().unwrap_or(0);
                ensure(pid > 0, || format!("pid {}", st["pid"]))?;
                // In a new pid namespace the container process is pid 1 there: the last NSpid.
                let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let nspid = s
                    .lines()
                    .find(|l| l.starts_with("NSpid:"))
                    .unwrap_or("")
                    .to_owned();
                ensure(nspid.split_whitespace().last() == Some("1"), || {
                    format!("host pid {pid} is not the container's pid 1: {nspid}")
                })
            },
        ),
        case(
            "state.bundle",
            STATE,
            "bundle (string, REQUIRED) is the absolute path to the container's bundle directory",
            |env| {
                let (_, st, dir) = state_of_created(env)?;
                let want = dir
                    .canonicalize()
                    .map_err(|e| crate::env::Outcome::Fail(e.to_string()))?;
                let got = st["bundle"].as_str().unwrap_or("");
                ensure(
                    got.starts_with('/')
                        && std::path::Path::new(got).canonicalize().ok() == Some(want.clone()),
                    || format!("bundle {:?}, want {}", st["bundle"], want.display()),
                )
            },
        ),
        case(
            "state.bundle-relative",
            STATE,
            "bundle (string, REQUIRED) is the absolute path to the container's bundle directory",
            |env| {
                let b = env.bundle(&[])?;
                b.write()?;
                let id = env.id();
                let rel = b
                    .dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let (out, err) = (env.path("rel.out"), env.path("rel.err"));
                let o = env.rt_in(
                    Some(&env.dir),
                    &["create", "--bundle", &rel, &id],
                    &out,
                    &err,
                );
                ensure(o.ok(), || {
                    format!("create with a relative bundle path: {}", o.describe())
                })?;
                let st = env.state(&id)?;
                let got = st["bundle"].as_str().unwrap_or("");
                let want = b.dir.canonicalize().ok();
                ensure(
                    got.starts_with('/') && std::path::Path::new(got).canonicalize().ok() == want,
                    || format!("bundle {got:?} for --bundle {rel}"),
                )
            },
        ),
        case(
            "state.annotations",
            STATE,
            "annotations (map, OPTIONAL) contains the list of annotations associated with the container",
            |env| {
                let (_, st, _) = state_of_created(env)?;
                ensure(st["annotations"]["org.example.key"] == "value", || {
                    format!("annotations {}", st["annotations"])
                })
            },
        ),
        case(
            "state.status-running",
            START,
            "Upon successful completion of this operation the status property of this container MUST be running.",
            |env| {
                let (id, _) = sleeper(env, |_| {})?;
                env.start(&id)?;
                let st = env.status(&id)?;
                ensure(st == "running", || format!("status {st}"))
            },
        ),
        case(
            "state.status-stopped-on-exit",
            KILL,
            "When the process in the container is stopped, irrespective of it being as a result of a kill operation or any other reason, the status property of this container MUST be stopped.",
            |env| {
                let mut b = env.bundle(&[])?;
                b.cfg["process"]["args"] = json!(["/bin/true"]);
                b.write()?;
                let id = env.id();
                env.create(&id, &b)?;
                env.start(&id)?;
                env.wait_status(&id, "stopped")
            },
        ),
        case(
            "state.status-stopped-after-kill",
            KILL,
            "When the process in the container is stopped, irrespective of it being as a result of a kill operation …, the status property … MUST be stopped.",
            |env| {
                let (id, _) = running(env, |_| {})?;
                let o = env.rt(&["kill", &id, "KILL"]);
                ensure(o.ok(), || format!("kill: {}", o.describe()))?;
                env.wait_status(&id, "stopped")
            },
        ),
        case(
            "state.pid-alive",
            STATE,
            "pid … is the ID of the container process, as seen by the host",
            |env| {
                let (id, _) = running(env, |_| {})?;
                let st = env.state(&id)?;
                let pid = st["pid"].as_i64().unwrap_or(0);
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                ensure(comm.trim() == "sleep", || {
                    format!("pid {pid} runs {comm:?}, not the container's sleep")
                })
            },
        ),
        case(
            "state.status-values",
            STATE,
            "status … MAY be one of: creating, created, running, stopped. Additional values MAY be defined by the runtime, however, they MUST be used to represent new runtime states",
            |env| {
                let (id, _) = sleeper(env, |_| {})?;
                let a = env.status(&id)?;
                env.start(&id)?;
                let b = env.status(&id)?;
                ensure(a == "created" && (b == "running" || b == "stopped"), || {
                    format!("statuses {a}, {b}")
                })
            },
        ),
        case(
            "query.no-id",
            Q,
            "This operation MUST generate an error if it is not provided the ID of a container.",
            |env| failing_cmd(env, &["state"]),
        ),
        case(
            "query.unknown-id",
            Q,
            "Attempting to query a container that does not exist MUST generate an error.",
            |env| failing_cmd(env, &["state", "no-such-container"]),
        ),
        case(
            "create.no-id",
            CREATE,
            "This operation MUST generate an error if it is not provided a path to the bundle and the container ID",
            |env| {
                let b = env.bundle(&[])?;
                b.write()?;
                let d = b.dir.display().to_string();
                failing_cmd(env, &["create", "--bundle", &d])
            },
        ),
        case(
            "create.bad-bundle",
            CREATE,
            "This operation MUST generate an error if it is not provided a path to the bundle …",
            |env| {
                let d = env.path("no-such-bundle").display().to_string();
                let id = env.id();
                failing_cmd(env, &["create", "--bundle", &d, &id])
            },
        ),
        case(
            "create.duplicate-id",
            CREATE,
            "If the ID provided is not unique …, the implementation MUST generate an error and a new container MUST NOT be created.",
            |env| {
                let (id, b) = sleeper(env, |_| {})?;
                let pid = env.state(&id)?["pid"].clone();
                let o = env.try_create(&id, &b);
                ensure(!o.ok(), || {
                    "a second create with the same id succeeded".into()
                })?;
                let st = env.state(&id)?;
                ensure(st["status"] == "created" && st["pid"] == pid, || {
                    format!("the first container changed: {st}")
                })
            },
        ),
        case(
            "create.invalid-id",
            CREATE,
            "If the ID provided is not unique …, or is not valid in any other way, the implementation MUST generate an error",
            |env| {
                let b = env.bundle(&[])?;
                b.write()?;
                let d = b.dir.display().to_string();
                failing_cmd(env, &["create", "--bundle", &d, "../escape"])?;
                ensure(
                    !env.root.parent().is_some_and(|p| p.join("escape").exists()),
                    || "state was written outside the root".into(),
                )
            },
        ),
        case(
            "create.no-user-code",
            LIFE,
            "the user-specified code (from process) MUST NOT be run at this time",
            |env| {
                let b = env.bundle(&[])?;
                b.write()?;
                let id = env.id();
                env.create(&id, &b)?;
                std::thread::sleep(Duration::from_millis(300));
                ensure(env.output(&id).is_empty(), || {
                    format!("the process ran before start: {:?}", env.output(&id))
                })?;
                let st = env.status(&id)?;
                ensure(st == "created", || format!("status {st} before start"))
            },
        ),
        case(
            "create.config-changes-ignored",
            LIFE,
            "Any updates to config.json after this step MUST NOT affect the container.",
            |env| {
                let mut b = env.bundle(&[])?;
                b.process()["env"] = json!(["PATH=/bin", "PHASE=before"]);
                b.write()?;
                let id = env.id();
                env.create(&id, &b)?;
                b.process()["env"] = json!(["PATH=/bin", "PHASE=after"]);
                b.write()?;
                env.start(&id)?;
                env.wait_status(&id, "stopped")?;
                let r = crate::env::parse_report(&env.output(&id))?;
                let envs = r["env"].to_string();
                ensure(envs.contains("PHASE=before"), || format!("env {envs}"))
            },
        ),
        case(
            "create.error-leaves-nothing",
            ERR,
            "generating an error MUST leave the state of the environment as if the operation were never attempted",
            |env| {
                let mut b = env.bundle(&[])?;
                let src = env.path("missing-source").display().to_string();
                b.mounts().push(json!({ "destination": "/mnt", "type": "bind", "source": src, "options": ["bind"] }));
                b.write()?;
                let id = env.id();
                let o = env.try_create(&id, &b);
                ensure(!o.ok(), || {
                    "create with a missing bind source succeeded".into()
                })?;
                failing_cmd(env, &["state", &id])
            },
        ),
        case(
            "create.error-id-reusable",
            ERR,
            "generating an error MUST leave the state of the environment as if the operation were never attempted",
            |env| {
                let mut b = env.bundle(&[])?;
                let src = env.path("missing-source").display().to_string();
                b.mounts().push(json!({ "destination": "/mnt", "type": "bind", "source": src, "options": ["bind"] }));
                b.write()?;
                let id = env.id();
                let _ = env.try_create(&id, &b);
                let good = env.bundle(&[])?;
                good.write()?;
                env.create(&id, &good)
            },
        ),
        case(
            "create.missing-executable",
            LIFE,
            "If the runtime is unable to create the environment specified in the config.json, it MUST generate an error.",
            |env| env.expect_error(|b| b.cfg["process"]["args"] = json!(["/no/such/binary"])),
        ),
        case(
            "start.no-id",
            START,
            "This operation MUST generate an error if it is not provided the container ID.",
            |env| failing_cmd(env, &["start"]),
        ),
        case(
            "start.unknown-id",
            START,
            "Attempting to start a container that does not exist MUST generate an error.",
            |env| failing_cmd(env, &["start", "no-such-container"]),
        ),
        case(
            "start.twice",
            START,
            "Attempting to start a container that is not created MUST have no effect on the container and MUST generate an error.",
            |env| {
                let (id, _) = running(env, |_| {})?;
                let pid = env.state(&id)?["pid"].clone();
                failing_cmd(env, &["start", &id])?;
                let st = env.state(&id)?;
                ensure(st["status"] == "running" && st["pid"] == pid, || {
                    format!("container changed: {st}")
                })
            },
        ),
        case(
            "start.stopped",
            START,
            "Attempting to start a container that is not created MUST have no effect on the container and MUST generate an error.",
            |env| {
                let mut b = env.bundle(&[])?;
                b.cfg["process"]["args"] = json!(["/bin/true"]);
                b.write()?;
                let id = env.id();
                env.create(&id, &b)?;
                env.start(&id)?;
                env.wait_status(&id, "stopped")?;
                failing_cmd(env, &["start", &id])
            },
        ),
        case(
            "start.runs-process",
            START,
            "This operation MUST run the user-specified code as specified by process.",
            |env| {
                let r = env.inspect(&["--stat", "/checker"], |_| {})?;
                ensure(r["args"][0] == "/checker", || format!("args {}", r["args"]))
            },
        ),
        case(
            "kill.no-id",
            KILL,
            "This operation MUST generate an error if it is not provided the container ID.",
            |env| failing_cmd(env, &["kill"]),
        ),
        case(
            "kill.unknown-id",
            KILL,
            "Attempting to send a signal to a container that is neither created nor running MUST … generate an error.",
            |env| failing_cmd(env, &["kill", "no-such-container", "KILL"]),
        ),
        case(
            "kill.stopped",
            KILL,
            "Attempting to send a signal to a container that is neither created nor running MUST have no effect on the container and MUST generate an error.",
            |env| {
                let mut b = env.bundle(&[])?;
                b.cfg["process"]["args"] = json!(["/bin/true"]);
                b.write()?;
                let id = env.id();
                env.create(&id, &b)?;
                env.start(&id)?;
                env.wait_status(&id, "stopped")?;
                failing_cmd(env, &["kill", &id, "KILL"])?;
                let st = env.status(&id)?;
                ensure(st == "stopped", || format!("status {st}"))
            },
        ),
        case(
            "kill.delivers-signal",
            KILL,
            "This operation MUST send the specified signal to the container process.",
            |env| {
                let mut b = env.bundle(&[])?;
                b.cfg["process"]["args"] = json!([
                    "/bin/sh",
                    "-c",
                    "trap 'echo got-USR1; exit 0' USR1; echo ready; while :; do sleep 0.05; done"
                ]);
                b.write()?;
                let id = env.id();
                env.create(&id, &b)?;
                env.start(&id)?;
                env.wait_output(&id, "ready")?;
                let o = env.rt(&["kill", &id, "USR1"]);
                ensure(o.ok(), || format!("kill: {}", o.describe()))?;
                env.wait_output(&id, "got-USR1")?;
                env.wait_status(&id, "stopped")
            },
        ),
        case(
            "kill.numeric-signal",
            KILL,
            "This operation MUST send the specified signal to the container process.",
            |env| {
                let (id, _) = running(env, |_| {})?;
                let o = env.rt(&["kill", &id, "9"]);
                ensure(o.ok(), || format!("kill 9: {}", o.describe()))?;
                env.wait_status(&id, "stopped")
            },
        ),
        case(
            "delete.no-id",
            DELETE,
            "This operation MUST generate an error if it is not provided the container ID.",
            |env| failing_cmd(env, &["delete"]),
        ),
        case(
            "delete.unknown-id",
            DELETE,
            "Attempting to delete a container that does not exist MUST generate an error.",
            |env| failing_cmd(env, &["delete", "no-such-container"]),
        ),
        case(
            "delete.running",
            DELETE,
            "Attempting to delete a container that is not stopped MUST have no effect on the container and MUST generate an error.",
            |env| {
                let (id, _) = running(env, |_| {})?;
                failing_cmd(env, &["delete", &id])?;
                let st = env.status(&id)?;
                ensure(st == "running", || {
                    format!("after a refused delete the status is {st}")
                })
            },
        ),
        case(
            "delete.stopped",
            DELETE,
            "Deleting a container MUST delete the resources that were created during the create step.",
            |env| {
                let (id, _) = running(env, |_| {})?;
                let pid = env.state(&id)?["pid"].as_i64().unwrap_or(0);
                let o = env.rt(&["kill", &id, "KILL"]);
                ensure(o.ok(), || format!("kill: {}", o.describe()))?;
                env.wait_status(&id, "stopped")?;
                env.delete(&id)?;
                failing_cmd(env, &["state", &id])?;
                ensure(!super::alive(pid), || format!("process {pid} still exists"))
            },
        ),
        case(
            "delete.removes-cgroup",
            DELETE,
            "Deleting a container MUST delete the resources that were created during the create step.",
            |env| {
                let cg = env.cgroup_path();
                let (id, _) = sleeper(env, |b| b.linux()["cgroupsPath"] = json!(cg))?;
                let dir = format!("/sys/fs/cgroup/pids{cg}");
                ensure(std::path::Path::new(&dir).is_dir(), || {
                    format!("{dir} was not created")
                })?;
                let o = env.rt(&["kill", &id, "KILL"]);
                ensure(o.ok(), || format!("kill: {}", o.describe()))?;
                env.wait_status(&id, "stopped")?;
                env.delete(&id)?;
                ensure(!std::path::Path::new(&dir).exists(), || {
                    format!("{dir} is still there after delete")
                })
            },
        ),
        case(
            "delete.keeps-foreign-cgroup",
            DELETE,
            "Note that resources associated with the container, but not created by this container, MUST NOT be deleted.",
            |env| {
                let parent = env.cgroup_path();
                let parent_dir = format!("/sys/fs/cgroup/pids{parent}");
                std::fs::create_dir_all(&parent_dir)
                    .map_err(|e| crate::env::Outcome::Fail(format!("{parent_dir}: {e}")))?;
                let cg = format!("{parent}/child");
                env.remember_cgroup(&cg);
                let (id, _) = running(env, |b| b.linux()["cgroupsPath"] = json!(cg))?;
                let o = env.rt(&["kill", &id, "KILL"]);
                ensure(o.ok(), || format!("kill: {}", o.describe()))?;
                env.wait_status(&id, "stopped")?;
                env.delete(&id)?;
                ensure(std::path::Path::new(&parent_dir).is_dir(), || {
                    format!("{parent_dir}, made before the container, was removed")
                })
            },
        ),
        case(
            "delete.keeps-bind-source",
            DELETE,
            "resources associated with the container, but not created by this container, MUST NOT be deleted.",
            |env| {
                let src = env.path("keep");
                std::fs::create_dir_all(&src)
                    .map_err(|e| crate::env::Outcome::Fail(e.to_string()))?;
                std::fs::write(src.join("file"), "x")
                    .map_err(|e| crate::env::Outcome::Fail(e.to_string()))?;
                let s = src.display().to_string();
                env.inspect(&[], |b| b.mounts().push(json!({ "destination": "/keep", "type": "bind", "source": s, "options": ["rbind"] })))?;
                ensure(src.join("file").exists(), || {
                    "the bind source's content is gone".into()
                })
            },
        ),
        case(
            "delete.id-reusable",
            DELETE,
            "Once a container is deleted its ID MAY be used by a subsequent container.",
            |env| {
                let (id, b) = running(env, |_| {})?;
                let o = env.rt(&["kill", &id, "KILL"]);
                ensure(o.ok(), || format!("kill: {}", o.describe()))?;
                env.wait_status(&id, "stopped")?;
                env.delete(&id)?;
                env.create(&id, &b)
            },
        ),
        case(
            "lifecycle.start-after-create",
            LIFE,
            "Runtime's start command is invoked with the unique identifier of the container. The runtime MUST run the user-specified code",
            |env| {
                let b = env.bundle(&[])?;
                b.write()?;
                let id = env.id();
                env.create(&id, &b)?;
                std::thread::sleep(Duration::from_millis(100));
                ensure(env.output(&id).is_empty(), || "ran before start".into())?;
                env.start(&id)?;
                env.wait_status(&id, "stopped")?;
                crate::env::parse_report(&env.output(&id)).map(|_| ())
            },
        ),
        case(
            "kill.created",
            KILL,
            "Attempting to send a signal to a container that is neither created nor running MUST … generate an error. This operation MUST send the specified signal to the container process.",
            |env| {
                let (id, _) = sleeper(env, |_| {})?;
                let o = env.rt(&["kill", &id, "KILL"]);
                ensure(o.ok(), || {
                    format!("kill of a created container: {}", o.describe())
                })?;
                env.wait_status(&id, "stopped")
            },
        ),
        case(
            "delete.created",
            DELETE,
            "Attempting to delete a container that is not stopped MUST have no effect on the container and MUST generate an error.",
            |env| {
                let (id, _) = sleeper(env, |_| {})?;
                let o = env.rt(&["delete", &id]);
                ensure(!o.ok(), || {
                    "delete of a created (not stopped) container succeeded".into()
                })?;
                let st = env.status(&id)?;
                ensure(st == "created", || {
                    format!("after a refused delete the status is {st}")
                })
            },
        ),
        case(
            "lifecycle.destroy-after-kill",
            LIFE,
            "The container MUST be destroyed by undoing the steps performed during create phase (step 2).",
            |env| {
                let (id, _) = sleeper(env, |_| {})?;
                let pid = env.state(&id)?["pid"].as_i64().unwrap_or(0);
                let o = env.rt(&["kill", &id, "KILL"]);
                ensure(o.ok(), || {
                    format!("kill of a created container: {}", o.describe())
                })?;
                env.wait_status(&id, "stopped")?;
                env.delete(&id)?;
                ensure(!super::alive(pid), || format!("init {pid} survived delete"))?;
                if env.rt(&["state", &id]).ok() {
                    return fail("state still answers after delete");
                }
                Ok(())
            },
        ),
    ]
}
