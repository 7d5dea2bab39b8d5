//! Entry points of the fuzz targets (`fuzz/fuzz_targets/`). They live in the library so
//! that the seed-corpus unit test runs exactly what the fuzzer runs, without cargo-fuzz.
//! Neither touches the host: no file system, no /proc, no kernel calls.

use std::path::Path;

use crate::state::{self, State, Status};

/// The bundle the config target pretends to plan in; it need not exist.
const BUNDLE: &str = "/fuzz/bundle";

/// config.json bytes through `create`'s parse, validation and planning ([`super::check_bytes`]).
/// Errors are expected; a panic is the bug. The message is rendered too, since `create`
/// prints it, and it must be one line (a newline would split berth's error output).
pub fn config(data: &[u8]) {
    if let Err(e) = super::check_bytes(data, Path::new(BUNDLE)) {
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
    }
}

/// state.json bytes through what `state`/`list` do with them that is pure: the same
/// deserialisation as `ContainerDir::load`, then the OCI state document for every status
/// (the status itself comes from /proc, which the target must not read) and the list row.
pub fn state(data: &[u8]) {
    let Ok(st) = serde_json::from_slice::<State>(data) else {
        return;
    };
    for status in [
        Status::Creating,
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Stopped,
    ] {
        let v = state::oci_state_json(&st, status);
        let text = v.to_string();
        // What `state` prints must read back as JSON.
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_ok(),
            "state JSON does not parse back: {text}"
        );
    }
    // `list` and every verb re-check the id of what they load; and `create` rewrites the
    // file with `save`, which must serialise whatever it read.
    let _ = state::validate_id(&st.id);
    assert!(serde_json::to_vec(&st).is_ok(), "state does not serialise");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The committed seeds (fuzz/seeds/) and any crash the fuzzer ever found
    /// (fuzz/regressions/), for one target.
    fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut out = Vec::new();
        for dir in ["seeds", "regressions"] {
            let Ok(rd) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let data = std::fs::read(&p).expect("read seed");
                out.push((p, data));
            }
        }
        out.sort();
        out
    }

    /// Each input whole, then cut short and with one byte changed at a stride: a few
    /// hundred cheap variants per seed, so CI keeps some of the fuzzer's reach without it.
    fn run_all(target: &str, f: fn(&[u8])) -> usize {
        let all = inputs(target);
        assert!(!all.is_empty(), "no seeds for {target}: run fuzz/seed.sh");
        let mut n = 0;
        for (path, data) in &all {
            let stride = (data.len() / 60).max(1);
            let mut variants = vec![data.clone()];
            for at in (0..data.len()).step_by(stride) {
                variants.push(data[..at].to_vec());
                for b in [b'"', b'-', b'9', b'{', 0xff] {
                    let mut v = data.clone();
                    v[at] = b;
                    variants.push(v);
                }
            }
            for v in &variants {
                let r = std::panic::catch_unwind(|| f(v));
                assert!(
                    r.is_ok(),
                    "{target} panicked on a variant of {}: {:?}",
                    path.display(),
                    String::from_utf8_lossy(v)
                );
                n += 1;
            }
        }
        n
    }

    #[test]
    fn config_seeds_do_not_panic() {
        assert!(run_all("config", super::config) > 0);
    }

    #[test]
    fn state_seeds_do_not_panic() {
        assert!(run_all("state", super::state) > 0);
    }

    /// Seeds that fail early would leave most of planning unexplored.
    #[test]
    fn every_config_seed_plans() {
        let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/config");
        for (path, data) in inputs("config") {
            if !path.starts_with(&seeds) {
                continue;
            }
            let plan = super::super::check_bytes(&data, std::path::Path::new(super::BUNDLE))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                plan.rootfs.starts_with("/fuzz/bundle"),
                "{}",
                path.display()
            );
        }
    }
}
