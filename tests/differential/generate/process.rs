//! The process: user and groups (with and without /etc/passwd entries), umask, env, cwd,
//! capabilities, noNewPrivileges, rlimits, oomScoreAdj, exit codes and signals, terminal.

use serde_json::{Value, json};

use super::args;
use crate::scenario::{Flow, Rootfs, Scenario};

/// uid/gid × /etc/passwd entry or not × additionalGids × umask.
pub fn users() -> Vec<Scenario> {
    let ids = [
        ("uid0", 0, 0),
        ("uid1000", 1000, 1000),
        ("uid1234", 1234, 1234),
        ("uid65534", 65534, 65534),
    ];
    let passwd = [("no-passwd-entry", "base"), ("passwd-entry", "users")];
    let gids: [(&str, Option<Value>); 2] = [("", None), ("-gids", Some(json!([10, 2000, 3000])))];
    let umasks: [(&str, Option<u32>); 3] = [
        ("", None),
        ("-umask0022", Some(0o022)),
        ("-umask0077", Some(0o077)),
    ];
    let mut v = Vec::new();
    for (idn, uid, gid) in ids {
        for (pn, variant) in passwd {
            for (gn, g) in &gids {
                for (un, u) in umasks {
                    let mut s = Scenario::new(format!("user/{idn}-{pn}{gn}{un}"))
                        .rootfs(Rootfs::Shared(variant))
                        .set("/process/user", json!({"uid": uid, "gid": gid}));
                    if let Some(g) = g {
                        s = s.set("/process/user/additionalGids", g.clone());
                    }
                    if let Some(u) = u {
                        s = s.set("/process/user/umask", json!(u));
                    }
                    v.push(s);
                }
            }
        }
    }
    v
}

/// env with and without HOME and PATH, for users with and without an /etc/passwd entry;
/// cwd variants.
pub fn env_and_cwd() -> Vec<Scenario> {
    let envs: [(&str, Value); 5] = [
        (
            "default",
            json!([
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ]),
        ),
        ("no-path", json!(["TERM=xterm"])),
        ("home-set", json!(["PATH=/bin", "HOME=/srv"])),
        ("empty", json!([])),
        ("duplicate", json!(["A=1", "A=2", "PATH=/bin"])),
    ];
    let users = [
        ("root", 0, "users"),
        ("app", 1000, "users"),
        ("nopasswd", 1234, "base"),
    ];
    let mut v = Vec::new();
    for (en, e) in &envs {
        for (un, uid, variant) in users {
            v.push(
                Scenario::new(format!("env/{en}-{un}"))
                    .rootfs(Rootfs::Shared(variant))
                    .set("/process/env", e.clone())
                    .set("/process/user", json!({"uid": uid, "gid": uid})),
            );
        }
    }
    v.push(Scenario::new("env/unset").unset("/process/env"));
    for (cn, cwd) in [
        ("root", "/"),
        ("tmp", "/tmp"),
        ("proc", "/proc/self"),
        ("home", "/home/app"),
        ("dev-shm", "/dev/shm"),
    ] {
        v.push(Scenario::new(format!("cwd/{cn}")).set("/process/cwd", json!(cwd)));
    }
    for ro in [false, true] {
        v.push(
            Scenario::new(format!("cwd/missing-readonly-{ro}"))
                .rootfs(Rootfs::Private("base"))
                .set("/root/readonly", json!(ro))
                .set("/process/cwd", json!("/no/such/dir")),
        );
    }
    v.push(
        Scenario::new("cwd/unreadable-for-user")
            .set("/process/user", json!({"uid": 1000, "gid": 1000}))
            .set("/process/cwd", json!("/root"))
            .extra("o cwd-root; ls /root 2>&1 | head -1"),
    );
    v
}

/// Capability sets (absent, empty, a few) × uid 0 and 1000 × noNewPrivileges.
pub fn capabilities() -> Vec<Scenario> {
    let three = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let sets: [(&str, Option<Value>); 7] = [
        ("absent", None),
        ("empty-object", Some(json!({}))),
        (
            "empty-sets",
            Some(
                json!({"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []}),
            ),
        ),
        (
            "default",
            Some(
                json!({"bounding": three, "effective": three, "permitted": three, "ambient": three}),
            ),
        ),
        (
            "net-admin",
            Some(caps_all(&["CAP_NET_ADMIN", "CAP_NET_RAW"])),
        ),
        (
            "sys-admin-chown",
            Some(caps_all(&[
                "CAP_SYS_ADMIN",
                "CAP_CHOWN",
                "CAP_DAC_OVERRIDE",
            ])),
        ),
        (
            "bounding-only",
            Some(json!({"bounding": ["CAP_CHOWN", "CAP_KILL"]})),
        ),
    ];
    let mut v = Vec::new();
    for (cn, c) in &sets {
        for (un, uid) in [("uid0", 0), ("uid1000", 1000)] {
            for nnp in [true, false] {
                let mut s = Scenario::new(format!("caps/{cn}-{un}-nnp-{nnp}"))
                    .set("/process/user", json!({"uid": uid, "gid": uid}))
                    .set("/process/noNewPrivileges", json!(nnp));
                s = match c {
                    Some(c) => s.set("/process/capabilities", c.clone()),
                    None => s.unset("/process/capabilities"),
                };
                v.push(s);
            }
        }
    }
    v.push(
        Scenario::new("caps/ambient-not-inheritable")
            .set("/process/capabilities", json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]}))
            .set("/process/user", json!({"uid": 1000, "gid": 1000})),
    );
    v.push(
        Scenario::new("caps/unknown-name")
            .set("/process/capabilities", caps_all(&["CAP_NO_SUCH_THING"])),
    );
    v.push(Scenario::new("caps/nnp-unset").unset("/process/noNewPrivileges"));
    v
}

/// The same capabilities in every set (inheritable too, so ambient holds).
fn caps_all(c: &[&str]) -> Value {
    json!({"bounding": c, "effective": c, "permitted": c, "inheritable": c, "ambient": c})
}

/// rlimits and oomScoreAdj.
pub fn limits() -> Vec<Scenario> {
    let rl: [(&str, Value); 10] = [
        ("none", json!([])),
        (
            "nofile-512-1024",
            json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}]),
        ),
        (
            "nofile-above-host-hard",
            json!([{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]),
        ),
        (
            "nproc-100",
            json!([{"type": "RLIMIT_NPROC", "soft": 100, "hard": 100}]),
        ),
        (
            "core-0",
            json!([{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]),
        ),
        (
            "stack-8m",
            json!([{"type": "RLIMIT_STACK", "soft": 8388608, "hard": 8388608}]),
        ),
        (
            "memlock-64k",
            json!([{"type": "RLIMIT_MEMLOCK", "soft": 65536, "hard": 65536}]),
        ),
        (
            "soft-above-hard",
            json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]),
        ),
        (
            "duplicate",
            json!([{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}, {"type": "RLIMIT_CORE", "soft": 1, "hard": 1}]),
        ),
        (
            "unknown-type",
            json!([{"type": "RLIMIT_NOSUCH", "soft": 1, "hard": 1}]),
        ),
    ];
    let mut v: Vec<Scenario> = rl
        .into_iter()
        .map(|(n, r)| Scenario::new(format!("rlimit/{n}")).set("/process/rlimits", r))
        .collect();
    v.push(Scenario::new("rlimit/absent").unset("/process/rlimits"));
    for adj in [0, 100, 1000, -1, -1000] {
        v.push(
            Scenario::new(format!("oom/score-adj{adj}")).set("/process/oomScoreAdj", json!(adj)),
        );
    }
    v
}

/// Exit codes and deaths by signal (no pid namespace, so the shell is not an init that
/// ignores the signal).
pub fn exits() -> Vec<Scenario> {
    let mut v = Vec::new();
    for code in [0, 1, 2, 3, 42, 126, 127, 255] {
        let cmd = format!("echo '@@ out'; echo out; echo err >&2; exit {code}");
        v.push(args(
            Scenario::new(format!("exit/code-{code}")),
            &["sh", "-c", &cmd],
        ));
    }
    let no_pid = super::namespaces(&["network", "ipc", "uts", "cgroup"]);
    for sig in ["TERM", "KILL", "HUP", "INT", "USR1", "SEGV", "ABRT"] {
        let cmd = format!("echo '@@ sig'; kill -{sig} $$; sleep 5");
        let s =
            Scenario::new(format!("exit/signal-{sig}")).set("/linux/namespaces", no_pid.clone());
        v.push(args(s, &["sh", "-c", &cmd]));
    }
    let cases: [(&str, &[&str]); 5] = [
        ("command-not-found", &["no-such-command"]),
        ("not-executable", &["/etc/passwd"]),
        ("directory", &["/tmp"]),
        ("relative-path", &["bin/true"]),
        (
            "args-with-spaces",
            &["sh", "-c", "printf '[%s]' \"$0\" \"$1\"", "a b", "c\td"],
        ),
    ];
    for (n, a) in cases {
        v.push(args(Scenario::new(format!("exit/{n}")), a));
    }
    v.push(args(
        Scenario::new("exit/pid1-ignores-term"),
        &["sh", "-c", "kill -TERM $$; echo alive"],
    ));
    v
}

/// Who owns the container's terminal: the pty slave and /dev/console (the same pty).
const TTY_OWNER: &str =
    "o ttyowner; stat -c '%a %u %g' $(tty); ls -l /dev/console | awk '{print $1, $3, $4}'";

/// terminal: true with a console socket, or relayed by a foreground `run`: ONLCR, stty,
/// the terminal's size and owner.
pub fn terminals() -> Vec<Scenario> {
    let mut v = Vec::new();
    for (un, uid) in [("uid0", 0), ("uid1000", 1000)] {
        for size in [false, true] {
            let mut s = Scenario::new(format!("term/{un}-size-{size}"))
                .flow(Flow::Terminal)
                .set("/process/terminal", json!(true))
                .set("/process/user", json!({"uid": uid, "gid": uid}))
                .extra(TTY_OWNER);
            if size {
                s = s.set("/process/consoleSize", json!({"height": 40, "width": 120}));
            }
            v.push(s);
        }
    }
    for (un, uid) in [("uid0", 0), ("uid1000", 1000)] {
        v.push(
            Scenario::new(format!("term/run-foreground-{un}"))
                .flow(Flow::TerminalRun)
                .set("/process/terminal", json!(true))
                .set("/process/user", json!({"uid": uid, "gid": uid}))
                .extra(TTY_OWNER),
        );
    }
    v.push(
        Scenario::new("term/no-term-env")
            .flow(Flow::Terminal)
            .set("/process/terminal", json!(true))
            .set("/process/env", json!(["PATH=/bin"])),
    );
    v
}
