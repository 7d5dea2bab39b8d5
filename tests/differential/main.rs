//! The runc-vs-berth differential harness (tracker issue 14, "runc is the oracle").
//!
//! Every scenario (generated in generate/) runs under Debian's runc and under berth, each
//! with its own --root, bundle and container id; the observations (exit codes, state JSON,
//! what the container saw, what hooks saw, what was left behind) are normalised for what
//! legitimately differs and compared one by one. A difference fails the scenario unless
//! known-differences.txt lists it. docs/differential.md describes the whole.
//!
//! Run it as root inside a sandbox (it starts real containers):
//! `cargo test --test differential -- [FILTER]`.

mod console;
mod diff;
mod flows;
mod generate;
mod known;
mod normalise;
mod observe;
mod runtime;
mod scenario;
mod setup;

use std::sync::Arc;
use std::time::Instant;

use libtest_mimic::{Arguments, Trial};

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let known = Arc::new(known::Known::load());
    let scenarios = generate::all();
    assert_unique(&scenarios);
    known.count(
        &scenarios
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
    );
    let missing = missing_prerequisite();
    if let Some(why) = &missing {
        eprintln!("differential: every scenario ignored: {why}");
    }
    let trials = scenarios
        .into_iter()
        .map(|s| {
            let k = Arc::clone(&known);
            Trial::test(s.name.clone(), move || scenario::check(&s, &k))
                .with_ignored_flag(missing.is_some())
        })
        .collect();
    let start = Instant::now();
    let conclusion = libtest_mimic::run(&args, trials);
    if !args.list {
        known.report();
        let mut neither = scenario::NEITHER_RAN.lock().unwrap().clone();
        neither.sort();
        eprintln!(
            "{} scenario(s) where no container ran under either runtime (same exit code and \
             leftovers compared): {}",
            neither.len(),
            neither.join(" ")
        );
        eprintln!(
            "differential run took {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    setup::remove();
    conclusion.exit_code()
}

/// Two generators producing one name would make a filter ambiguous and hide a scenario.
fn assert_unique(s: &[scenario::Scenario]) {
    let mut names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    for w in names.windows(2) {
        assert_ne!(w[0], w[1], "two scenarios are named {}", w[0]);
    }
}

/// The oracle and root are needed; without them every scenario is ignored (and says why)
/// rather than failed, like a test that needs hardware the machine lacks.
fn missing_prerequisite() -> Option<String> {
    let runc = runtime::RUNTIMES[0].bin;
    if !std::path::Path::new(runc).exists() {
        return Some(format!(
            "the oracle {runc} is not installed (apt-get install runc)"
        ));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: the scenarios start real containers".into());
    }
    None
}
