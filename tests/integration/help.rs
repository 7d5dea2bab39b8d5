//! What a person meets first: version with the commit, help with a description for every
//! option, "did you mean" for a misspelt flag, completions and man pages generated from the
//! parser itself, and `spec` laid out like `runc spec`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

const T: Duration = Duration::from_secs(20);

fn berth(args: &[&str]) -> Out {
    run_cmd(Command::new(BIN).args(args), T)
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = berth(&["--version"]);
    out.ok();
    let head = run_cmd(
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
        T,
    );
    let want = if head.code == 0 {
        head.stdout.trim().to_string()
    } else {
        "unknown".to_string() // not built from a git checkout
    };
    assert!(
        out.stdout.lines().any(|l| l == format!("commit: {want}")),
        "want commit {want} in {:?}",
        out.stdout
    );
}

#[test]
fn features_names_berth_itself() {
    let out = berth(&["features"]);
    out.ok();
    let f: Value = serde_json::from_str(&out.stdout).unwrap();
    let a = &f["annotations"];
    assert_eq!(a["io.github.berth.name"], "berth");
    assert_eq!(a["io.github.berth.version"], env!("CARGO_PKG_VERSION"));
    assert!(
        a.get("org.opencontainers.runc.version").is_none(),
        "berth must not claim to be a runc version: {a}"
    );
    let v = berth(&["--version"]).stdout;
    let spec = v.lines().find_map(|l| l.strip_prefix("spec: ")).unwrap();
    assert_eq!(f["ociVersionMax"], spec, "features and --version agree");
}

#[test]
fn every_verb_documents_every_option_in_its_help() {
    let top = berth(&["--help"]);
    top.ok();
    let verbs: Vec<String> = top
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|v| v != "help")
        .collect();
    assert!(verbs.len() >= 15, "{verbs:?}");
    for verb in &verbs {
        let out = berth(&[verb, "--help"]);
        out.ok();
        // Every option or argument line carries text after its name, on the same line or
        // (clap's layout for long flags) on the next, indented further.
        let lines: Vec<&str> = out.stdout.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let is_arg = line.starts_with("  ") && (t.starts_with('-') || t.starts_with('<'));
            if !is_arg {
                continue;
            }
            let same = t
                .split_once("  ")
                .is_some_and(|(_, d)| !d.trim().is_empty());
            let next = lines.get(i + 1).is_some_and(|n| {
                let nt = n.trim_start();
                n.len() - nt.len() > line.len() - t.len() && !nt.is_empty()
            });
            assert!(
                same || next,
                "berth {verb} --help: {line:?} has no description"
            );
        }
        assert!(
            out.stdout.contains("Global options:"),
            "berth {verb} --help keeps global flags apart:\n{}",
            out.stdout
        );
    }
    let create = berth(&["create", "--help"]).stdout;
    let keyring = create
        .lines()
        .find(|l| l.contains("--no-new-keyring"))
        .unwrap();
    assert!(keyring.contains("keyring"), "{keyring}");
    let fds = create
        .lines()
        .find(|l| l.contains("--preserve-fds"))
        .unwrap();
    assert!(fds.contains("fds"), "{fds}");
}

#[test]
fn a_misspelt_flag_gets_a_suggestion() {
    let out = berth(&["create", "--bundel", "x", "id"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("--bundle"), "{}", out.stderr);
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = berth(&["completion", shell]);
        out.ok();
        assert!(out.stdout.len() > 1000, "{shell}: {}", out.stdout);
        assert!(
            out.stdout.contains("console-socket") && out.stdout.contains("berth"),
            "{shell} completion lacks berth's flags"
        );
    }
    berth(&["completion", "tcsh"]).fails_with(&["tcsh"]);
}

#[test]
fn man_pages_for_berth_and_each_verb() {
    let dir = tempfile::tempdir().unwrap();
    berth(&["man-pages", dir.path().to_str().unwrap()]).ok();
    for page in ["berth.8", "berth-create.8", "berth-exec.8", "berth-run.8"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
    let create = std::fs::read_to_string(dir.path().join("berth-create.8")).unwrap();
    assert!(create.contains("preserve\\-fds"), "{create}");
}

/// Keys of every object, depth first, in document order.
fn key_order(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(format!("{path}/{k}"));
                key_order(v, &format!("{path}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                key_order(v, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn spec_in(bin: &str, dir: &Path) -> (Value, Vec<String>) {
    run_cmd(Command::new(bin).arg("spec").current_dir(dir), T).ok();
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    // Parse keeping document order: serde_json here is built with preserve_order.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let mut keys = Vec::new();
    key_order(&v, "", &mut keys);
    // What legitimately differs: the spec version each implements, and the hostname.
    v["ociVersion"] = Value::Null;
    v["hostname"] = Value::Null;
    (v, keys)
}

#[test]
fn spec_keys_come_in_runc_specs_order() {
    const RUNC: &str = "/usr/sbin/runc";
    assert!(Path::new(RUNC).exists(), "runc is the oracle: install it");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (berth_doc, berth) = spec_in(BIN, a.path());
    let (runc_doc, runc) = spec_in(RUNC, b.path());
    assert_eq!(berth, runc, "key order");
    let top: Vec<&str> = berth
        .iter()
        .filter(|k| k.matches('/').count() == 1)
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        top,
        [
            "/ociVersion",
            "/process",
            "/root",
            "/hostname",
            "/mounts",
            "/linux"
        ]
    );
    // And the content: on this host (no pure cgroup v2) runc asks for no cgroup namespace.
    assert_eq!(berth_doc, runc_doc);
}
