//! features.md: the runtime's `features` output.

use crate::env::{Env, Outcome, T, ensure};
use crate::{Case, case};
use serde_json::{Value, json};

const F: &str = "features.md";

fn features(env: &mut Env) -> T<Value> {
    let o = env.rt(&["features"]);
    ensure(o.ok(), || format!("features failed: {}", o.describe()))?;
    serde_json::from_str(&o.stdout)
        .map_err(|e| Outcome::Fail(format!("features output is not JSON: {e}")))
}

fn semver(v: &str) -> Option<(u32, u32, u32)> {
    let core = v.split(['-', '+']).next()?;
    let mut p = core.split('.').map(|x| x.parse::<u32>().ok());
    Some((p.next()??, p.next()??, p.next()??))
}

fn strings_within(v: &Value, allowed: &[&str]) -> Result<(), String> {
    let Some(a) = v.as_array() else {
        return if v.is_null() {
            Ok(())
        } else {
            Err(format!("not an array: {v}"))
        };
    };
    for x in a {
        let s = x.as_str().unwrap_or("");
        if !allowed.contains(&s) {
            return Err(format!("unknown value {x}"));
        }
    }
    Ok(())
}

fn accepts(which: &'static str) -> Case {
    case(
        format!("features.{which}-accepted"),
        F,
        "The runtime MUST accept this value as the ociVersion property of config.json.",
        move |env| {
            let f = features(env)?;
            let v = f[which].as_str().unwrap_or("").to_owned();
            ensure(!v.is_empty(), || format!("no {which}"))?;
            env.inspect(&[], |b| b.cfg["ociVersion"] = json!(v))
                .map(|_| ())
        },
    )
}

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "features.json",
            F,
            "A runtime MAY provide a JSON structure about its implemented features to runtime callers.",
            |env| features(env).map(|_| ()),
        ),
        case(
            "features.ociVersionMin",
            F,
            "ociVersionMin (string, REQUIRED) The minimum recognized version of the Open Container Initiative Runtime Specification.",
            |env| {
                let f = features(env)?;
                ensure(
                    f["ociVersionMin"].as_str().and_then(semver).is_some(),
                    || format!("ociVersionMin {}", f["ociVersionMin"]),
                )
            },
        ),
        case(
            "features.ociVersionMax",
            F,
            "ociVersionMax (string, REQUIRED) … The value MUST NOT be less than the value of the ociVersionMin property.",
            |env| {
                let f = features(env)?;
                let (min, max) = (
                    f["ociVersionMin"].as_str().and_then(semver),
                    f["ociVersionMax"].as_str().and_then(semver),
                );
                ensure(max.is_some() && min <= max, || {
                    format!("min {} max {}", f["ociVersionMin"], f["ociVersionMax"])
                })
            },
        ),
        accepts("ociVersionMin"),
        accepts("ociVersionMax"),
        case(
            "features.hooks",
            F,
            "hooks (array of strings, OPTIONAL) The list of the recognized hook names. The runtime MUST support the values in this list.",
            |env| {
                let f = features(env)?;
                strings_within(
                    &f["hooks"],
                    &[
                        "prestart",
                        "createRuntime",
                        "createContainer",
                        "startContainer",
                        "poststart",
                        "poststop",
                    ],
                )
                .map_err(Outcome::Fail)
            },
        ),
        case(
            "features.mountOptions",
            F,
            "mountOptions (array of strings, OPTIONAL) The list of the recognized mount options, e.g., \"ro\".",
            |env| {
                let f = features(env)?;
                let ok = f["mountOptions"].is_null()
                    || f["mountOptions"]
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_string));
                ensure(ok, || format!("mountOptions {}", f["mountOptions"]))
            },
        ),
        case(
            "features.linux.namespaces",
            F,
            "namespaces (array of strings, OPTIONAL) The list of the recognized namespaces, e.g., \"mount\". The runtime MUST support the values in this list.",
            |env| {
                let f = features(env)?;
                strings_within(
                    &f["linux"]["namespaces"],
                    &[
                        "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
                    ],
                )
                .map_err(Outcome::Fail)
            },
        ),
        case(
            "features.linux.capabilities",
            F,
            "capabilities (array of strings, OPTIONAL) The list of the recognized capabilities, e.g., \"CAP_SYS_ADMIN\". The runtime MUST support the values in this list.",
            |env| {
                let f = features(env)?;
                strings_within(&f["linux"]["capabilities"], &super::CAPS).map_err(Outcome::Fail)
            },
        ),
        case(
            "features.linux.seccomp.actions",
            F,
            "actions (array of strings, OPTIONAL) The list of the recognized actions. The runtime MUST support the values in this list.",
            |env| {
                let f = features(env)?;
                strings_within(
                    &f["linux"]["seccomp"]["actions"],
                    &[
                        "SCMP_ACT_KILL",
                        "SCMP_ACT_KILL_PROCESS",
                        "SCMP_ACT_KILL_THREAD",
                        "SCMP_ACT_TRAP",
                        "SCMP_ACT_ERRNO",
                        "SCMP_ACT_TRACE",
                        "SCMP_ACT_ALLOW",
                        "SCMP_ACT_LOG",
                        "SCMP_ACT_NOTIFY",
                    ],
                )
                .map_err(Outcome::Fail)
            },
        ),
        case(
            "features.linux.seccomp.operators",
            F,
            "operators (array of strings, OPTIONAL) The list of the recognized operators. The runtime MUST support the values in this list.",
            |env| {
                let f = features(env)?;
                strings_within(
                    &f["linux"]["seccomp"]["operators"],
                    &[
                        "SCMP_CMP_NE",
                        "SCMP_CMP_LT",
                        "SCMP_CMP_LE",
                        "SCMP_CMP_EQ",
                        "SCMP_CMP_GE",
                        "SCMP_CMP_GT",
                        "SCMP_CMP_MASKED_EQ",
                    ],
                )
                .map_err(Outcome::Fail)
            },
        ),
        case(
            "features.linux.cgroup",
            F,
            "cgroup (object, OPTIONAL) … v1 (bool, OPTIONAL) represents whether the runtime supports cgroup v1. v2 (bool, OPTIONAL) …",
            |env| {
                let f = features(env)?;
                let c = &f["linux"]["cgroup"];
                let ok = c.is_null()
                    || ["v1", "v2", "systemd", "systemdUser", "rdma"]
                        .iter()
                        .all(|k| c[*k].is_null() || c[*k].is_boolean());
                ensure(ok, || format!("cgroup {c}"))
            },
        ),
        case(
            "features.annotations",
            F,
            "annotations (object, OPTIONAL) contains implementation-specific annotation strings",
            |env| {
                let f = features(env)?;
                let a = &f["annotations"];
                ensure(
                    a.is_null()
                        || a.as_object()
                            .is_some_and(|o| o.values().all(Value::is_string)),
                    || format!("annotations {a}"),
                )
            },
        ),
        case(
            "features.namespaces-work",
            F,
            "namespaces … The runtime MUST support the values in this list.",
            |env| {
                let f = features(env)?;
                let list: Vec<String> = f["linux"]["namespaces"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .filter(|k| k != "user" && k != "mount")
                    .collect();
                env.inspect(&[], |b| {
                    for k in &list {
                        b.set_ns(k, None);
                    }
                })
                .map(|_| ())
            },
        ),
    ]
}
