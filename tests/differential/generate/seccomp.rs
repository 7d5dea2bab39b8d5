//! linux.seccomp: every rule action on mkdir (in a child shell, so a kill takes only it),
//! with and without noNewPrivileges; errnoRet values; podman's real profile with its own
//! default errno, with EPERM, and killing; a foreign arch alone; the refusals runc makes.

use serde_json::{Value, json};

use crate::scenario::Scenario;

/// What the container sees of the filter: its mode, and how a filtered mkdir ends.
const LOOKS: &str = "o seccomp; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; \
    sh -c 'mkdir /tmp/sc' 2>&1; echo rc=$?; [ -d /tmp/sc ] && echo made; rmdir /tmp/sc 2>/dev/null; \
    o seccomp-more; sh -c 'mkdir /tmp/sc2 && rmdir /tmp/sc2 && echo mkdir-again' 2>&1; ls / >/dev/null && echo ls-ok";

const ACTIONS: [(&str, &str, Option<u32>); 11] = [
    ("errno", "SCMP_ACT_ERRNO", None),
    ("errno-eacces", "SCMP_ACT_ERRNO", Some(13)),
    ("errno-enosys", "SCMP_ACT_ERRNO", Some(38)),
    ("errno-zero", "SCMP_ACT_ERRNO", Some(0)),
    ("kill", "SCMP_ACT_KILL", None),
    ("kill-process", "SCMP_ACT_KILL_PROCESS", None),
    ("kill-thread", "SCMP_ACT_KILL_THREAD", None),
    ("trap", "SCMP_ACT_TRAP", None),
    ("log", "SCMP_ACT_LOG", None),
    ("trace", "SCMP_ACT_TRACE", None),
    ("allow", "SCMP_ACT_ALLOW", None),
];

fn mkdir_rule(action: &str, errno: Option<u32>) -> Value {
    let mut r = json!({"names": ["mkdir", "mkdirat"], "action": action});
    if let Some(e) = errno {
        r["errnoRet"] = json!(e);
    }
    r
}

pub fn all() -> Vec<Scenario> {
    let mut v = Vec::new();
    for (name, action, errno) in ACTIONS {
        for nnp in [true, false] {
            let n = if nnp { "" } else { "-no-nnp" };
            v.push(
                Scenario::new(format!("seccomp/mkdir-{name}{n}"))
                    .set("/process/noNewPrivileges", json!(nnp))
                    .set(
                        "/linux/seccomp",
                        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [mkdir_rule(action, errno)]}),
                    )
                    .extra(LOOKS),
            );
        }
    }
    // A foreign arch alone: both warn and still filter x86_64 (libseccomp keeps the native).
    v.push(
        Scenario::new("seccomp/arch-arm-alone")
            .set(
                "/linux/seccomp",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_ARM"],
                       "syscalls": [mkdir_rule("SCMP_ACT_ERRNO", None)]}),
            )
            .extra(LOOKS),
    );
    v.extend(podman());
    v.extend(refusals());
    v
}

/// Podman's profile as podman hands it over with its default capabilities, or nothing
/// when containers-common is not installed (run-all installs it).
fn podman_profile() -> Option<Value> {
    let text = std::fs::read_to_string("/usr/share/containers/seccomp.json").ok()?;
    let mut p: Value = serde_json::from_str(&text).ok()?;
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let has = |a: &Value, pred: &dyn Fn(&str) -> bool| {
        a.as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str().is_some_and(pred)))
    };
    let rules: Vec<Value> = (p["syscalls"].as_array()?.iter())
        .filter(|s| {
            let (inc, exc) = (&s["includes"], &s["excludes"]);
            (inc["arches"].is_null() || has(&inc["arches"], &|a| a == "amd64"))
                && !has(&exc["arches"], &|a| a == "amd64")
                && !has(&inc["caps"], &|c| !caps.contains(&c))
                && !has(&exc["caps"], &|c| caps.contains(&c))
        })
        .map(|s| {
            let mut s = s.clone();
            for k in ["includes", "excludes", "comment"] {
                s.as_object_mut()?.remove(k);
            }
            Some(s)
        })
        .collect::<Option<_>>()?;
    p["syscalls"] = json!(rules);
    p["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let o = p.as_object_mut()?;
    o.remove("archMap");
    o.remove("defaultErrno");
    Some(p)
}

/// Podman's profile as is (default errno ENOSYS), with EPERM as its default, and killing
/// what it does not name; each with a call it names (mkdir) and one it does not (unshare).
fn podman() -> Vec<Scenario> {
    let Some(base) = podman_profile() else {
        return Vec::new();
    };
    let looks = "o podman-profile; sh -c 'mkdir /tmp/p && echo mkdir-ok' 2>&1; \
                 sh -c 'unshare -U true' 2>&1; echo rc=$?";
    let mut v = Vec::new();
    for (name, default, errno) in [
        ("as-shipped", "SCMP_ACT_ERRNO", Some(38)),
        ("eperm-default", "SCMP_ACT_ERRNO", None),
        ("kill-default", "SCMP_ACT_KILL_PROCESS", None),
    ] {
        let mut p = base.clone();
        p["defaultAction"] = json!(default);
        match errno {
            Some(e) => p["defaultErrnoRet"] = json!(e),
            None => {
                p.as_object_mut().map(|o| o.remove("defaultErrnoRet"));
            }
        }
        v.push(
            Scenario::new(format!("seccomp/podman-{name}"))
                .set("/linux/seccomp", p)
                .extra(looks),
        );
    }
    v
}

/// Profiles both runtimes refuse.
fn refusals() -> Vec<Scenario> {
    let listener = "/tmp/berth-diff-no-agent.sock";
    [
        (
            "notify-write",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": listener,
                   "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
        ),
        (
            "notify-default",
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": listener}),
        ),
        (
            "errnoret-on-allow",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}),
        ),
        (
            "unknown-action",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}),
        ),
    ]
    .into_iter()
    .map(|(name, p)| Scenario::new(format!("seccomp/refused-{name}")).set("/linux/seccomp", p))
    .collect()
}
