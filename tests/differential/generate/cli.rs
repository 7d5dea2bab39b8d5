//! The CLI around the lifecycle: create/start/state/kill/delete in different orders, exec
//! with its options, and malformed bundles (exit code and nothing left behind compared; the
//! error text is each runtime's own and normalised to "fails").

use serde_json::json;

use super::args;
use crate::scenario::{Flow, Scenario, Step};

/// A lifecycle written as words: `create start wait:running kill:KILL state delete`.
/// `kill:SIG` and `kill-all:SIG` signal, `kill` uses the default; `wait:STATUS` polls
/// `state`; `exec` steps are given as argument lists instead (see [`execs`]).
fn steps(script: &'static str) -> Vec<Step> {
    script.split_whitespace().map(word).collect()
}

fn word(w: &'static str) -> Step {
    if let Some(status) = w.strip_prefix("wait:") {
        return Step::Wait(status);
    }
    if let Some(sig) = w.strip_prefix("kill:") {
        return Step::Cli(vec!["kill", "{id}", sig]);
    }
    if let Some(sig) = w.strip_prefix("kill-all:") {
        return Step::Cli(vec!["kill", "--all", "{id}", sig]);
    }
    let args: &[&'static str] = match w {
        "create" => &["create", "--bundle", "{bundle}", "{id}"],
        "run-detach" => &["run", "--detach", "--bundle", "{bundle}", "{id}"],
        "delete-force" => &["delete", "--force", "{id}"],
        "list-q" => &["list", "-q"],
        "list-json" => &["list", "--format", "json"],
        "ps-json" => &["ps", "--format", "json", "{id}"],
        "start" | "state" | "delete" | "kill" | "pause" | "resume" => {
            return Step::Cli(vec![w, "{id}"]);
        }
        other => panic!("unknown lifecycle word {other:?}"),
    };
    Step::Cli(args.to_vec())
}

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

const LIFECYCLES: [(&str, &str); 13] = [
    ("create-state-delete", "create state delete state"),
    (
        "create-start-state-kill-delete",
        "create state start wait:running state kill:KILL wait:stopped state delete state",
    ),
    ("start-twice", "create start start delete-force"),
    (
        "delete-running",
        "create start wait:running delete state delete-force state",
    ),
    ("kill-created", "create kill:KILL wait:stopped state delete"),
    (
        "kill-stopped",
        "create start kill:KILL wait:stopped kill:KILL delete",
    ),
    ("unknown-id", "state start kill delete delete-force"),
    ("create-twice", "create create delete-force"),
    ("list", "create list-q list-json delete-force list-q"),
    ("ps-json", "create start wait:running ps-json delete-force"),
    (
        "pause-resume",
        "create start wait:running pause state resume state delete-force",
    ),
    ("pause-created", "create pause state delete-force"),
    ("run-detach", "run-detach wait:running state delete-force"),
];

const SIGNALS: [(&str, &str); 10] = [
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
];

pub fn lifecycles() -> Vec<Scenario> {
    let mut v: Vec<Scenario> = LIFECYCLES
        .iter()
        .map(|(name, script)| sleeper(&format!("lifecycle/{name}"), steps(script), true))
        .collect();
    for (sig, name) in SIGNALS {
        for pid_ns in [false, true] {
            let mut st = steps("create start wait:running");
            st.push(Step::Cli(vec!["kill", "{id}", sig]));
            st.extend(steps("wait:stopped state delete-force"));
            let ns = if pid_ns { "pidns" } else { "hostpid" };
            v.push(sleeper(&format!("kill/{name}-{ns}"), st, pid_ns));
        }
    }
    let default = steps("create start wait:running kill wait:stopped delete-force");
    v.push(sleeper("kill/default-signal", default, false));
    let all = steps("create start wait:running kill-all:KILL wait:stopped delete");
    v.push(sleeper("kill/all", all, true));
    v
}

const EXECS: [(&str, &[&str]); 12] = [
    (
        "plain",
        &[
            "sh",
            "-c",
            "id; pwd; env | sort; grep ^Cap /proc/self/status",
        ],
    ),
    (
        "env",
        &[
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
    ("cwd", &["--cwd", "/tmp", "{id}", "pwd"]),
    (
        "user",
        &[
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
        &["-u", "1000:1000", "--additional-gids", "10", "{id}", "id"],
    ),
    (
        "cap",
        &[
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
            "--no-new-privs",
            "{id}",
            "grep",
            "NoNewPrivs",
            "/proc/self/status",
        ],
    ),
    ("exit-code", &["sh", "-c", "exit 7"]),
    ("not-found", &["no-such-command"]),
    (
        "fds",
        &[
            "sh",
            "-c",
            "ls -l /proc/self/fd 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == \"->\") print $1, $(i-1), $(i+1)}'",
        ],
    ),
    (
        "pid-ns",
        &[
            "sh",
            "-c",
            "[ $$ != 1 ] && echo not-init; ls /proc > /dev/shm/.procs; grep -c '^[0-9]' /dev/shm/.procs",
        ],
    ),
    ("detach", &["-d", "{id}", "true"]),
];

/// `exec ARGS`: ARGS with options name `{id}` themselves; the rest get it in front.
fn exec(args: &[&'static str]) -> Step {
    let mut v = vec!["exec"];
    if !args.contains(&"{id}") {
        v.push("{id}");
    }
    v.extend_from_slice(args);
    Step::Cli(v)
}

pub fn execs() -> Vec<Scenario> {
    let mut v = Vec::new();
    for (name, args) in EXECS {
        let mut st = steps("create start wait:running");
        st.push(exec(args));
        st.extend(steps("delete-force"));
        v.push(sleeper(&format!("exec/{name}"), st, true));
    }
    let mut created = steps("create");
    created.extend([exec(&["true"]), word("delete-force")]);
    v.push(sleeper("exec/created", created, true));
    let mut stopped = steps("create start kill:KILL wait:stopped");
    stopped.extend([exec(&["true"]), word("delete")]);
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
