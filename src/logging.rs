//! Logging in runc's shape: human text on stderr; with `--log FILE` also one line per
//! message in the file, as text or (`--log-format json`) `{"level","msg","time"}` objects,
//! which containerd and conmon read to show the last error to the user.

use std::fs::File;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

struct Logger {
    file: Option<File>,
    json: bool,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Opens the log file (append) and remembers the format. An unopenable log is reported
/// once on stderr and otherwise ignored, as runc does not fail a command over its log.
pub fn init(path: Option<&std::path::Path>, json: bool, debug: bool) {
    let file = path.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| eprintln!("berth: warning: cannot open log {}: {e}", p.display()))
            .ok()
    });
    let _ = LOGGER.set(Logger { file, json, debug });
}

fn write(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    if let Some(mut f) = l.file.as_ref() {
        let line = if l.json {
            serde_json::json!({"level": level, "msg": msg, "time": rfc3339(SystemTime::now(), false)})
                .to_string()
        } else {
            format!(
                "time=\"{}\" level={level} msg={msg:?}",
                rfc3339(SystemTime::now(), false)
            )
        };
        let _ = writeln!(f, "{line}");
    }
}

pub fn error(msg: &str) {
    eprintln!("berth: {msg}");
    write("error", msg);
}

pub fn warn(msg: &str) {
    eprintln!("berth: warning: {msg}");
    write("warning", msg);
}

/// A warning about something every run of a given config would repeat (e.g. syscall names
/// this kernel lacks in an engine's stock seccomp profile): to the log file, and to stderr
/// only with `--debug`, so that `podman exec`/`docker exec` output stays the process's own
/// (runc skips such names silently).
pub fn warn_quiet(msg: &str) {
    if debug_enabled() {
        eprintln!("berth: warning: {msg}");
    }
    write("warning", msg);
}

pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

/// `--debug` messages: to the log file when there is one, else stderr.
pub fn debug(msg: impl FnOnce() -> String) {
    let Some(l) = LOGGER.get() else { return };
    if !l.debug {
        return;
    }
    let msg = msg();
    if l.file.is_some() {
        write("debug", &msg);
    } else {
        eprintln!("berth: debug: {msg}");
    }
}

/// `--debug` step timestamps: microseconds since the process started its command, so a
/// run's cost can be read step by step (init-stub steps are logged by the stub itself), and
/// the CLOCK_MONOTONIC time, so bench/steps.py can place every step of every process (the
/// sealed re-exec, the stub) against the moment it spawned the command.
pub fn step(name: &str) {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    if !debug_enabled() {
        return;
    }
    let start = START.get_or_init(std::time::Instant::now);
    let us = start.elapsed().as_micros();
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    let mono = t.tv_sec * 1_000_000 + t.tv_nsec / 1000;
    debug(|| {
        format!(
            "step {name} +{us}us (pid {}) mono {mono}",
            std::process::id()
        )
    });
}

/// RFC 3339 in UTC, optionally with nanoseconds (as runc's `created`).
pub fn rfc3339(t: SystemTime, nanos: bool) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, dd) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if nanos {
        format!(
            "{y:04}-{m:02}-{dd:02}T{hh:02}:{mm:02}:{ss:02}.{:09}Z",
            d.subsec_nanos()
        )
    } else {
        format!("{y:04}-{m:02}-{dd:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339(t, false), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(t, true), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400), false),
            "2000-02-29T00:00:00Z"
        );
    }
}
