//! Normalisation: only what legitimately differs between two runs of the same scenario.
//! Each runtime gets its own scratch directory, container id and --root, so those paths and
//! names are replaced by placeholders; kernel-assigned numbers (pids, mount ids, device
//! numbers, pipe inodes) and times are masked; a failing runtime's error text is reduced to
//! "fails" because the wording is each runtime's own. Everything else must match.

use serde_json::Value;

/// The per-runtime strings to replace, longest (most specific) first.
pub struct Subst {
    pub pairs: Vec<(String, &'static str)>,
}

impl Subst {
    pub fn apply(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to) in &self.pairs {
            if !from.is_empty() {
                s = s.replace(from.as_str(), to);
            }
        }
        // Host pids in /proc paths (a hook's own /proc/PID/fd) are the kernel's numbering.
        for kind in [
            "/proc/", "stderr-", "pipe:[", "socket:[", "net:[", "mnt:[", "pid:[", "user:[", "ipc:[",
        ] {
            s = mask_after(&s, kind);
        }
        s
    }
}

/// Replaces the digits right after every `prefix` with "N" (`pipe:[1234]` → `pipe:[N]`).
fn mask_after(s: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        let (head, tail) = rest.split_at(i + prefix.len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push('N');
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// /proc/self/mountinfo: mount id, parent id and major:minor are the kernel's numbering,
/// and peer-group numbers in `shared:N`/`master:N` likewise; the rest (root, mount point,
/// options, type, source, super options) is what the runtime chose.
pub fn mountinfo(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let f: Vec<String> = line
            .split(' ')
            .enumerate()
            .map(|(i, w)| match i {
                0..=2 => "_".to_string(),
                _ => mask_peer(w),
            })
            .collect();
        out.push_str(&f.join(" "));
        out.push('\n');
    }
    out
}

fn mask_peer(w: &str) -> String {
    for p in ["shared:", "master:", "propagate_from:"] {
        if let Some(rest) = w.strip_prefix(p)
            && rest.bytes().all(|b| b.is_ascii_digit())
        {
            return format!("{p}N");
        }
    }
    w.to_string()
}

/// A state JSON document: id, pid, created time, bundle and rootfs paths and the version
/// fields are the runtime's or the kernel's; keys and the other values must match.
pub fn state_json(text: &str, subst: &Subst) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(text) else {
        return subst.apply(text);
    };
    match &mut v {
        Value::Array(a) => a.iter_mut().for_each(mask_state),
        v => mask_state(v),
    }
    let text = serde_json::to_string_pretty(&sorted(v)).unwrap();
    subst.apply(&text) + "\n"
}

fn mask_state(v: &mut Value) {
    // `ps --format json` is a list of host pids.
    if v.is_number() {
        *v = Value::from("<pid>");
    }
    if let Some(o) = v.as_object_mut() {
        for k in ["created", "ociVersion"] {
            if o.contains_key(k) {
                o.insert(k.into(), Value::from(format!("<{k}>")));
            }
        }
        if let Some(p) = o.get("pid").and_then(Value::as_i64)
            && p != 0
        {
            o.insert("pid".into(), Value::from("<pid>"));
        }
    }
}

/// Keys in sorted order: the order of keys in JSON is not an observation of its own.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<(String, Value)> = m.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(pairs.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A runtime's stderr: empty stays empty; an error from the runtime itself is "fails",
/// since each runtime words its errors its own way (exit codes are compared separately).
pub fn runtime_stderr(code: i32, text: &str, subst: &Subst) -> String {
    // DIFFERENTIAL_RAW_ERRORS=1 keeps the wording, for finding out why a scenario fails.
    let raw = std::env::var_os("DIFFERENTIAL_RAW_ERRORS").is_some();
    if raw {
        return subst.apply(text);
    }
    if code != 0 && !text.trim().is_empty() {
        return "fails\n".into();
    }
    container_stderr(text, subst)
}

/// The stderr of a run whose container ran: the container's own lines compared as they
/// are; the runtime's warnings dropped, its error lines reduced to "<runtime error>".
pub fn container_stderr(text: &str, subst: &Subst) -> String {
    let mut out = String::new();
    for l in text.lines().filter(|l| !is_warning(l)) {
        let runtime = l.contains("level=error") || l.starts_with("berth: ");
        out.push_str(if runtime { "<runtime error>" } else { l });
        out.push('\n');
    }
    subst.apply(&out)
}

/// runc logs warnings with logrus (`level=warning`); berth prints `berth: warning:`. A
/// warning is advice, not behaviour.
fn is_warning(l: &str) -> bool {
    l.contains("level=warning") || l.starts_with("berth: warning:")
}
