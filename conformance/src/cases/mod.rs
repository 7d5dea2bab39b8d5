//! The cases, one module per spec file. Each case cites the sentence it checks.

mod config;
mod features;
mod hooks;
mod linux;
mod resources;
mod runtime;

use crate::Case;
use crate::env::{Bundle, Env, Outcome, T, fail};
use serde_json::{Value, json};

pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(runtime::cases());
    v.extend(hooks::cases());
    v.extend(config::cases());
    v.extend(linux::cases());
    v.extend(resources::cases());
    v.extend(features::cases());
    v
}

/// Creates (not starts) a container whose process is `sleep 1000`, changed by MUTATE.
pub fn sleeper(env: &mut Env, mutate: impl FnOnce(&mut Bundle)) -> T<(String, Bundle)> {
    let mut b = env.bundle(&[])?;
    b.cfg["process"]["args"] = json!(["/bin/sleep", "1000"]);
    mutate(&mut b);
    b.write()?;
    let id = env.id();
    env.create(&id, &b)?;
    Ok((id, b))
}

/// Creates and starts a sleeper; returns once `state` says running.
pub fn running(env: &mut Env, mutate: impl FnOnce(&mut Bundle)) -> T<(String, Bundle)> {
    let (id, b) = sleeper(env, mutate)?;
    env.start(&id)?;
    env.wait_status(&id, "running")?;
    Ok((id, b))
}

/// The host's namespace link for KIND (e.g. `net:[4026531840]`).
pub fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The field of /proc/self/status the checker saw.
pub fn status<'a>(r: &'a Value, key: &str) -> &'a str {
    s(&r["status"][key])
}

pub fn hex(text: &str) -> u64 {
    u64::from_str_radix(text, 16).unwrap_or(u64::MAX)
}

pub const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub fn cap_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| CAPS.iter().position(|c| c == n))
        .fold(0, |m, i| m | (1 << i))
}

/// The errno the checker recorded for an operation (0 when it succeeded).
pub fn errno_of(r: &Value, section: &str, key: &str) -> T<i64> {
    let v = &r[section][key];
    if v["ok"].as_bool() == Some(true) {
        return Ok(0);
    }
    if let Some(e) = v["errno"].as_i64() {
        return Ok(e);
    }
    fail(format!("checker has no {section}[{key}]: {v}"))
}

/// Mount points (field 5) and their rest, from the checker's mountinfo.
pub fn mounts(r: &Value) -> Vec<(String, String)> {
    r["mountinfo"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let l = l.as_str()?;
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(4)?.to_string(), l.to_owned()))
        })
        .collect()
}

/// The last mountinfo line for mount point P (the one a path lookup sees).
pub fn mount_at(r: &Value, p: &str) -> T<String> {
    mounts(r)
        .into_iter()
        .rev()
        .find(|(m, _)| m == p)
        .map(|(_, l)| l)
        .ok_or_else(|| Outcome::Fail(format!("no mount at {p}")))
}

/// Per-mount options (field 6) of a mountinfo line.
pub fn mount_opts(line: &str) -> Vec<String> {
    line.split_whitespace()
        .nth(5)
        .unwrap_or("")
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// Filesystem type (after the " - " separator) of a mountinfo line.
pub fn mount_fstype(line: &str) -> String {
    line.split(" - ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("")
        .to_owned()
}

/// Whether PID is a live process (a zombie waiting for its reaper counts as gone: it runs
/// nothing and holds nothing but its pid).
pub fn alive(pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(s) => !s
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
        Err(_) => false,
    }
}
