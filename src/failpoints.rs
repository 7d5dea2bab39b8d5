//! Fault injection for the reliability tests (tests/integration/faults.rs), on the `fail`
//! crate. Everything here exists only with the `failpoints` cargo feature: without it the
//! [`failpoint!`](crate::failpoint) macro expands to nothing, and a release binary holds
//! neither the crate nor a single point name.
//!
//! `BERTH_FAILPOINTS="name=action;name=action…"` (fail's action syntax) arms points in this
//! process; the init stub and exec's child are clones, so they inherit the configuration.
//! Actions the tests use:
//! - `return`: the step fails with an error naming the point;
//! - `return(kill)`: the process dies there by SIGKILL, as if the machine's OOM killer or an
//!   impatient engine had struck (a pid-namespace init, which cannot SIGKILL itself, exits
//!   with `_exit` instead: just as abrupt);
//! - `return(hold)`: records the point, then holds it for 2 s and carries on: a test kills
//!   the berth that cloned the init stub (or exec's child) meanwhile. The clone cannot do it
//!   itself: from inside a new pid namespace no signal reaches the parent;
//! - `sleep(MS)`: holds the step open (exec::joined uses it for a CVE-2019-5736 test).
//!
//! `BERTH_FAILPOINTS_LOG=FILE` appends "name action pid" for every point that fires, so a test
//! can tell that its point was reached (the file is opened up front: the init stub may have
//! pivoted away from the host's filesystem by the time it fires).

/// The environment variable holding the configuration.
pub const ENV: &str = "BERTH_FAILPOINTS";
/// The environment variable naming the file where fired points are recorded.
pub const LOG_ENV: &str = "BERTH_FAILPOINTS_LOG";

/// The error an armed `return` point makes its step fail with.
#[cfg(feature = "failpoints")]
#[derive(Debug, thiserror::Error)]
#[error("failpoint {0}: injected failure")]
pub struct Injected(pub String);

/// Fails the enclosing function (which must return a `Result` whose error has
/// `From<Injected>`) when the named point is armed with `return`; dies on `return(kill)`.
#[macro_export]
macro_rules! failpoint {
    ($name:expr) => {
        #[cfg(feature = "failpoints")]
        if let Some(e) = $crate::failpoints::eval($name) {
            return Err(e.into());
        }
    };
}

#[cfg(feature = "failpoints")]
mod imp {
    use std::fs::File;
    use std::io::Write;
    use std::sync::OnceLock;

    use super::{ENV, Injected, LOG_ENV};

    static LOG: OnceLock<Option<File>> = OnceLock::new();

    /// Arms the points named in `BERTH_FAILPOINTS`; called once by `main`.
    pub fn setup() -> Result<(), String> {
        let log = std::env::var_os(LOG_ENV).and_then(|p| {
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .ok()
        });
        let _ = LOG.set(log);
        let Ok(conf) = std::env::var(ENV) else {
            return Ok(());
        };
        for item in conf.split(';').filter(|s| !s.trim().is_empty()) {
            let (name, action) = item
                .split_once('=')
                .ok_or_else(|| format!("{ENV}: {item:?} is not name=action"))?;
            fail::cfg(name.trim(), action.trim()).map_err(|e| format!("{ENV}: {name}: {e}"))?;
        }
        Ok(())
    }

    fn record(name: &str, action: &str) {
        if let Some(Some(mut f)) = LOG.get().map(Option::as_ref) {
            let _ = f.write_all(format!("{name} {action} {}\n", std::process::id()).as_bytes());
        }
    }

    /// Evaluates point `name`: `Some` when the step must fail; never returns on `kill`.
    pub fn eval(name: &str) -> Option<Injected> {
        fail::eval(name, |arg| match arg.as_deref() {
            Some("kill") => {
                record(name, "kill");
                // SAFETY: signalling ourselves; _exit if we are a pid-namespace init, which
                // ignores SIGKILL from inside its own namespace.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                    libc::_exit(137)
                }
            }
            // The test kills our parent meanwhile; we carry on and meet the consequences.
            Some("hold") => {
                record(name, "hold");
                std::thread::sleep(std::time::Duration::from_secs(2));
                None
            }
            _ => {
                record(name, "error");
                Some(Injected(name.to_string()))
            }
        })
        .flatten()
    }
}

#[cfg(feature = "failpoints")]
pub use imp::{eval, setup};
