//! Scenario generators: each module crosses a few axes of the config (or the CLI) and
//! names every combination `area/variant`, so `cargo test --test differential -- AREA/`
//! runs one area. Add an axis value and every combination with it appears.

mod cli;
mod hooks;
mod linux;
mod mounts;
mod process;
mod seccomp;

use serde_json::{Value, json};

use crate::scenario::Scenario;

pub fn all() -> Vec<Scenario> {
    let mut v = Vec::new();
    v.extend(linux::namespaces());
    v.extend(linux::sysctls());
    v.extend(linux::hostnames());
    v.extend(linux::paths());
    v.extend(mounts::all());
    v.extend(process::users());
    v.extend(process::env_and_cwd());
    v.extend(process::capabilities());
    v.extend(process::limits());
    v.extend(process::exits());
    v.extend(process::terminals());
    v.extend(hooks::all());
    v.extend(seccomp::all());
    v.extend(cli::lifecycles());
    v.extend(cli::execs());
    v.extend(cli::errors());
    v
}

/// The namespaces list: mount always (a container without one would share the sandbox's
/// mount table), plus `extra`.
pub fn namespaces(extra: &[&str]) -> Value {
    let mut v = vec![json!({"type": "mount"})];
    v.extend(extra.iter().map(|t| json!({"type": t})));
    Value::Array(v)
}

/// Container ids 0..65536 mapped to host 100000..: a user namespace both runtimes can set
/// up as root.
pub fn with_userns(s: Scenario) -> Scenario {
    s.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    )
    .set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    )
}

/// Replaces the process args (for scenarios about the process, not the observations).
pub fn args(s: Scenario, a: &[&str]) -> Scenario {
    let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    s.set("/process/args", json!(a))
}
