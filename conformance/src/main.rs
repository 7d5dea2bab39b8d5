//! The conformance driver: runs every case against one runtime binary, through its CLI only,
//! and prints TAP plus a summary line; or merges result files into a Markdown table.
//!
//!   conformance --runtime PATH --template BUNDLE --checker PATH [--json OUT] [--name NAME]
//!               [--known-failures FILE] [--filter SUBSTR] [--timeout SECS] [-- GLOBAL FLAGS…]
//!   conformance --table OUT.md --column NAME=results.json [--column …]

mod cases;
mod env;
mod table;

use env::{Env, Outcome, Settings};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub type CaseFn = Box<dyn Fn(&mut Env) -> env::T<()>>;

/// One conformance case: what it checks, where the spec says so, and how.
pub struct Case {
    pub id: String,
    /// `file.md § section`.
    pub spec: &'static str,
    /// The MUST/SHOULD sentence checked, shortened with "…" where needed.
    pub quote: &'static str,
    pub run: CaseFn,
}

pub fn case(
    id: impl Into<String>,
    spec: &'static str,
    quote: &'static str,
    run: impl Fn(&mut Env) -> env::T<()> + 'static,
) -> Case {
    Case {
        id: id.into(),
        spec,
        quote,
        run: Box::new(run),
    }
}

struct Args {
    runtime: Option<PathBuf>,
    template: Option<PathBuf>,
    checker: Option<PathBuf>,
    json: Option<PathBuf>,
    name: String,
    known: Option<PathBuf>,
    filter: Vec<String>,
    timeout: u64,
    global: Vec<String>,
    table: Option<PathBuf>,
    columns: Vec<(String, PathBuf)>,
    list: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        runtime: None,
        template: None,
        checker: None,
        json: None,
        name: String::new(),
        known: None,
        filter: Vec::new(),
        timeout: 20,
        global: Vec::new(),
        table: None,
        columns: Vec::new(),
        list: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runtime" => a.runtime = Some(val()?.into()),
            "--template" => a.template = Some(val()?.into()),
            "--checker" => a.checker = Some(val()?.into()),
            "--json" => a.json = Some(val()?.into()),
            "--name" => a.name = val()?,
            "--known-failures" => a.known = Some(val()?.into()),
            "--filter" => a.filter.push(val()?),
            "--timeout" => a.timeout = val()?.parse().map_err(|_| "--timeout takes seconds")?,
            "--table" => a.table = Some(val()?.into()),
            "--column" => {
                let v = val()?;
                let (n, f) = v.split_once('=').ok_or("--column takes NAME=FILE")?;
                a.columns.push((n.to_owned(), f.into()));
            }
            "--list" => a.list = true,
            "--" => {
                a.global = it.by_ref().collect();
                break;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// `case-id  reason…` lines; `#` starts a comment.
fn known_failures(path: &Option<PathBuf>) -> Result<BTreeMap<String, String>, String> {
    let Some(p) = path else {
        return Ok(BTreeMap::new());
    };
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((id, why)) => (id.to_owned(), why.trim().to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect())
}

fn runtime_version(rt: &PathBuf) -> String {
    std::process::Command::new(rt)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("conformance: {e}");
            std::process::exit(2);
        }
    };
    if let Some(out) = &args.table {
        if let Err(e) = table::write(out, &args.columns) {
            eprintln!("conformance: {e}");
            std::process::exit(1);
        }
        return;
    }
    let all = cases::all();
    if args.list {
        for c in &all {
            println!("{}\t{}\t{}", c.id, c.spec, c.quote);
        }
        return;
    }
    let (Some(runtime), Some(template), Some(checker)) = (
        args.runtime.clone(),
        args.template.clone(),
        args.checker.clone(),
    ) else {
        eprintln!("conformance: --runtime, --template and --checker are required");
        std::process::exit(2);
    };
    let known = match known_failures(&args.known) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("conformance: {e}");
            std::process::exit(2);
        }
    };
    let work = std::env::temp_dir().join(format!("berth-conformance-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("conformance: {}: {e}", work.display());
        std::process::exit(1);
    }
    let settings = Settings {
        runtime: runtime.clone(),
        global: args.global.clone(),
        template,
        checker,
        timeout: Duration::from_secs(args.timeout),
        work: work.clone(),
    };
    let selected: Vec<&Case> = all
        .iter()
        .filter(|c| args.filter.is_empty() || args.filter.iter().any(|f| c.id.contains(f.as_str())))
        .collect();
    let name = if args.name.is_empty() {
        runtime.display().to_string()
    } else {
        args.name.clone()
    };
    println!("TAP version 13");
    println!(
        "# runtime {name}: {} {}",
        runtime.display(),
        runtime_version(&runtime)
    );
    println!("1..{}", selected.len());
    let (mut pass, mut failed, mut skipped, mut known_failed) = (0, 0, 0, 0);
    let mut results = Vec::new();
    let started = Instant::now();
    for (i, c) in selected.iter().enumerate() {
        let n = i + 1;
        let outcome = match Env::new(&settings, n) {
            Err(e) => Outcome::Fail(format!("case directory: {e}")),
            Ok(mut env) => match (c.run)(&mut env) {
                Ok(()) => Outcome::Pass,
                Err(o) => o,
            },
        };
        let is_known = known.get(&c.id);
        let (word, detail) = match &outcome {
            Outcome::Pass => {
                pass += 1;
                if is_known.is_some() {
                    println!(
                        "ok {n} - {} # known failure now passes: remove it from the list",
                        c.id
                    );
                } else {
                    println!("ok {n} - {}", c.id);
                }
                ("pass", String::new())
            }
            Outcome::Skip(why) => {
                skipped += 1;
                println!("ok {n} - {} # SKIP {why}", c.id);
                ("skip", why.clone())
            }
            Outcome::Fail(why) => {
                failed += 1;
                match is_known {
                    Some(reason) => {
                        known_failed += 1;
                        println!("not ok {n} - {} # TODO known failure: {reason}", c.id);
                    }
                    None => println!("not ok {n} - {}", c.id),
                }
                for l in why.lines() {
                    println!("  # {l}");
                }
                ("fail", why.clone())
            }
        };
        results.push(json!({
            "id": c.id, "spec": c.spec, "quote": c.quote, "outcome": word, "detail": detail,
            "known": is_known.is_some() && word == "fail",
        }));
    }
    let _ = std::fs::remove_dir_all(&work);
    let secs = started.elapsed().as_secs_f64();
    println!("# {name}: {} cases in {secs:.1} s", selected.len());
    println!("{pass} passed, {failed} failed, {skipped} skipped");
    if known_failed > 0 {
        println!("# {known_failed} of the failures are known (listed in the known-failures file)");
    }
    if let Some(p) = &args.json {
        let doc = json!({
            "name": name, "runtime": runtime.display().to_string(), "version": runtime_version(&runtime),
            "global_flags": args.global, "seconds": secs,
            "totals": { "cases": selected.len(), "passed": pass, "failed": failed, "skipped": skipped, "known_failures": known_failed },
            "results": Value::Array(results),
        });
        if let Err(e) = std::fs::write(p, format!("{doc:#}\n")) {
            eprintln!("conformance: {}: {e}", p.display());
            std::process::exit(1);
        }
    }
    if failed > known_failed {
        std::process::exit(1);
    }
}
