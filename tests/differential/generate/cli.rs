//! The CLI around the lifecycle: create/start/state/kill/delete in different orders, exec
//! with its options, and malformed bundles (exit code and nothing left behind compared; the
//! error text is each runtime's own and normalised to "fails").

use serde_json::json;

use super::args;
use crate::scenario::{Flow, Scenario, Step};

fn cli(a: &[&'static str]) -> Step {
    Step::Cli(a.to_vec())
}

const CREATE: &[&str] = &["create", "--bundle", "{bundle}", "{id}"];
const START: &[&str] = &["start", "{id}"];
const STATE: &[&str] = &["state", "{id}"];
const DELETE: &[&str] = &["delete", "{id}"];
const DELETE_FORCE: &[&str] = &["delete", "--force", "{id}"];

/// A long-running container: observes, then waits to be signalled (no pid namespace, so
/// default dispositions apply; with one, pid 1 ignores them).
fn sleeper(name: &str, steps: Vec<Step>, pid_ns: bool) -> Scenario {
    let mut s = Scenario::new(name)
        .flow(Flow::Lifecycle(steps))
        .extra("o sleeping; exec sleep 30");
    if !pid_ns {
        s = s.set(
            "/linux/namespaces",
            super::namespaces(&["network", "ipc", "uts", "cgroup"]),
        );
    }
    s
}

pub fn lifecycles() -> Vec<Scenario> {
    let mut v = vec![
        sleeper(
            "lifecycle/create-state-delete",
            vec![cli(CREATE), cli(STATE), cli(DELETE), cli(STATE)],
            true,
        ),
        sleeper(
            "lifecycle/create-start-state-kill-delete",
            vec![
                cli(CREATE),
                cli(STATE),
                cli(START),
                Step::Wait("running"),
                cli(STATE),
                cli(&["kill", "{id}", "KILL"]),
                Step::Wait("stopped"),
                cli(STATE),
                cli(DELETE),
                cli(STATE),
            ],
            true,
        ),
        sleeper(
            "lifecycle/start-twice",
            vec![cli(CREATE), cli(START), cli(START), cli(DELETE_FORCE)],
            true,
        ),
        sleeper(
            "lifecycle/delete-running",
            vec![
                cli(CREATE),
                cli(START),
                Step::Wait("running"),
                cli(DELETE),
                cli(STATE),
                cli(DELETE_FORCE),
                cli(STATE),
            ],
            true,
        ),
        sleeper(
            "lifecycle/kill-created",
            vec![
                cli(CREATE),
                cli(&["kill", "{id}", "KILL"]),
                Step::Wait("stopped"),
                cli(STATE),
                cli(DELETE),
            ],
            true,
        ),
        sleeper(
            "lifecycle/kill-stopped",
            vec![
                cli(CREATE),
                cli(START),
                cli(&["kill", "{id}", "KILL"]),
                Step::Wait("stopped"),
                cli(&["kill", "{id}", "KILL"]),
                cli(DELETE),
            ],
            true,
        ),
        sleeper(
            "lifecycle/unknown-id",
            vec![
                cli(STATE),
                cli(START),
                cli(&["kill", "{id}"]),
                cli(DELETE),
                cli(DELETE_FORCE),
            ],
            true,
        ),
        sleeper(
            "lifecycle/create-twice",
            vec![cli(CREATE), cli(CREATE), cli(DELETE_FORCE)],
            true,
        ),
        sleeper(
            "lifecycle/list",
            vec![
                cli(CREATE),
                cli(&["list", "-q"]),
                cli(&["list", "--format", "json"]),
                cli(DELETE_FORCE),
                cli(&["list", "-q"]),
            ],
            true,
        ),
        sleeper(
            "lifecycle/ps-json",
            vec![
                cli(CREATE),
                cli(START),
                Step::Wait("running"),
                cli(&["ps", "--format", "json", "{id}"]),
                cli(DELETE_FORCE),
            ],
            true,
        ),
        sleeper(
            "lifecycle/pause-resume",
            vec![
                cli(CREATE),
                cli(START),
                Step::Wait("running"),
                cli(&["pause", "{id}"]),
                cli(STATE),
                cli(&["resume", "{id}"]),
                cli(STATE),
                cli(DELETE_FORCE),
            ],
            true,
        ),
        sleeper(
            "lifecycle/pause-created",
            vec![
                cli(CREATE),
                cli(&["pause", "{id}"]),
                cli(STATE),
                cli(DELETE_FORCE),
            ],
            true,
        ),
        sleeper(
            "lifecycle/run-detach",
            vec![
                cli(&["run", "--detach", "--bundle", "{bundle}", "{id}"]),
                Step::Wait("running"),
                cli(STATE),
                cli(DELETE_FORCE),
            ],
            true,
        ),
    ];
    for (sig, name) in [
        ("TERM", "term"),
        ("SIGTERM", "sigterm"),
        ("15", "15"),
        ("KILL", "kill"),
        ("HUP", "hup"),
        ("USR1", "usr1"),
        ("INT", "int"),
        ("RTMIN+1", "rtmin1"),
        ("NOSUCH", "bad-name"),
        ("99", "bad-number"),
    ] {
        for pid_ns in [false, true] {
            let steps = vec![
                cli(CREATE),
                cli(START),
                Step::Wait("running"),
                cli(&["kill", "{id}", sig]),
                Step::Wait("stopped"),
                cli(STATE),
                cli(DELETE_FORCE),
            ];
            let ns = if pid_ns { "pidns" } else { "hostpid" };
            v.push(sleeper(&format!("kill/{name}-{ns}"), steps, pid_ns));
        }
    }
    v.push(sleeper(
        "kill/default-signal",
        vec![
            cli(CREATE),
            cli(START),
            Step::Wait("running"),
            cli(&["kill", "{id}"]),
            Step::Wait("stopped"),
            cli(DELETE_FORCE),
        ],
        false,
    ));
    v.push(sleeper(
        "kill/all",
        vec![
            cli(CREATE),
            cli(START),
            Step::Wait("running"),
            cli(&["kill", "--all", "{id}", "KILL"]),
            Step::Wait("stopped"),
            cli(DELETE),
        ],
        true,
    ));
    v
}

pub fn execs() -> Vec<Scenario> {
    let cases: [(&str, &[&'static str]); 12] = [
        (
            "plain",
            &[
                "exec",
                "{id}",
                "sh",
                "-c",
                "id; pwd; env | sort; grep ^Cap /proc/self/status",
            ],
        ),
        (
            "env",
            &[
                "exec",
                "-e",
                "FOO=bar",
                "-e",
                "PATH=/bin",
                "{id}",
                "sh",
                "-c",
                "env | sort",
            ],
        ),
        ("cwd", &["exec", "--cwd", "/tmp", "{id}", "pwd"]),
        (
            "user",
            &[
                "exec",
                "-u",
                "1000:1000",
                "{id}",
                "sh",
                "-c",
                "id; env | sort; grep ^Cap /proc/self/status",
            ],
        ),
        (
            "additional-gids",
            &[
                "exec",
                "-u",
                "1000:1000",
                "--additional-gids",
                "10",
                "{id}",
                "id",
            ],
        ),
        (
            "cap",
            &[
                "exec",
                "--cap",
                "CAP_SYS_ADMIN",
                "{id}",
                "sh",
                "-c",
                "grep ^Cap /proc/self/status",
            ],
        ),
        (
            "no-new-privs",
            &[
                "exec",
                "--no-new-privs",
                "{id}",
                "grep",
                "NoNewPrivs",
                "/proc/self/status",
            ],
        ),
        ("exit-code", &["exec", "{id}", "sh", "-c", "exit 7"]),
        ("not-found", &["exec", "{id}", "no-such-command"]),
        (
            "fds",
            &[
                "exec",
                "{id}",
                "sh",
                "-c",
                "ls -l /proc/self/fd 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == \"->\") print $1, $(i-1), $(i+1)}'",
            ],
        ),
        (
            "pid-ns",
            &[
                "exec",
                "{id}",
                "sh",
                "-c",
                "[ $$ != 1 ] && echo not-init; ls /proc | grep -c '^[0-9]'",
            ],
        ),
        ("detach", &["exec", "-d", "{id}", "true"]),
    ];
    let mut v = Vec::new();
    for (name, a) in cases {
        let steps = vec![
            cli(CREATE),
            cli(START),
            Step::Wait("running"),
            cli(a),
            cli(DELETE_FORCE),
        ];
        v.push(sleeper(&format!("exec/{name}"), steps, true));
    }
    v.push(sleeper(
        "exec/created",
        vec![
            cli(CREATE),
            cli(&["exec", "{id}", "true"]),
            cli(DELETE_FORCE),
        ],
        true,
    ));
    let stopped = vec![
        cli(CREATE),
        cli(START),
        cli(&["kill", "{id}", "KILL"]),
        Step::Wait("stopped"),
        cli(&["exec", "{id}", "true"]),
        cli(DELETE),
    ];
    v.push(sleeper("exec/stopped", stopped, true));
    v
}

/// Malformed bundles: both must fail with the same exit code and leave nothing behind.
pub fn errors() -> Vec<Scenario> {
    let raw = [
        ("not-json", "{ this is not json"),
        ("empty-file", ""),
        ("empty-object", "{}"),
        ("array", "[]"),
    ];
    let mut v: Vec<Scenario> = raw
        .into_iter()
        .map(|(n, t)| Scenario::new(format!("error/{n}")).raw(t))
        .collect();
    let muts: [(&str, &str, serde_json::Value); 14] = [
        ("no-process", "/process", json!(null)),
        ("no-root", "/root", json!(null)),
        ("empty-args", "/process/args", json!([])),
        ("relative-cwd", "/process/cwd", json!("tmp")),
        ("uid-string", "/process/user/uid", json!("root")),
        ("root-missing", "/root/path", json!("/no/such/rootfs")),
        (
            "unknown-namespace",
            "/linux/namespaces",
            json!([{"type": "mount"}, {"type": "nosuch"}]),
        ),
        (
            "duplicate-namespace",
            "/linux/namespaces",
            json!([{"type": "mount"}, {"type": "pid"}, {"type": "pid"}]),
        ),
        (
            "netns-path-missing",
            "/linux/namespaces",
            json!([{"type": "mount"}, {"type": "network", "path": "/no/such/ns"}]),
        ),
        (
            "userns-without-maps",
            "/linux/namespaces",
            json!([{"type": "mount"}, {"type": "user"}]),
        ),
        (
            "maps-without-userns",
            "/linux/uidMappings",
            json!([{"containerID": 0, "hostID": 100000, "size": 1}]),
        ),
        (
            "mount-no-destination",
            "/mounts",
            json!([{"type": "tmpfs", "source": "tmpfs"}]),
        ),
        (
            "mount-relative-destination",
            "/mounts",
            json!([{"destination": "mnt/a", "type": "tmpfs", "source": "tmpfs"}]),
        ),
        ("oci-version-bad", "/ociVersion", json!("not-a-version")),
    ];
    for (n, ptr, val) in muts {
        let s = Scenario::new(format!("error/{n}"));
        v.push(if val.is_null() {
            s.unset(ptr)
        } else {
            s.set(ptr, val)
        });
    }
    v.push(args(Scenario::new("error/arg-empty-string"), &[""]));
    v
}
