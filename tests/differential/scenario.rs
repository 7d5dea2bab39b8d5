//! A scenario: a config mutation on the busybox template, a rootfs, extra observation
//! commands and a flow of CLI calls. `observe` runs it under one runtime and returns the
//! normalised observations in order; `check` compares runc's with berth's.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::flows;
use crate::known::Known;
use crate::normalise::Subst;
use crate::runtime::{self, Runtime};
use crate::setup;

pub type Mutation = Arc<dyn Fn(&mut Value, &Ctx) + Send + Sync>;

#[derive(Clone)]
pub enum Rootfs {
    /// A variant shared by both runtimes (never written: every mount point exists).
    Shared(&'static str),
    /// A private copy per runtime, for scenarios that may write into the rootfs.
    Private(&'static str),
}

#[derive(Clone)]
pub enum Step {
    /// `runtime --root R ARGS…`, with `{id}` and `{bundle}` replaced.
    Cli(Vec<&'static str>),
    /// Polls `state` until the status is the one named (up to 1.5 s: a status change takes
    /// milliseconds, and a signal pid 1 ignores must not cost long); observes the last one.
    Wait(&'static str),
}

#[derive(Clone)]
pub enum Flow {
    Run,
    Lifecycle(Vec<Step>),
    /// create with --console-socket, start, read the pty master to EOF, delete.
    Terminal,
    /// `run` in the foreground on a terminal the harness owns (no console socket).
    TerminalRun,
}

#[derive(Clone)]
pub struct Scenario {
    pub name: String,
    pub rootfs: Rootfs,
    pub mutations: Vec<Mutation>,
    pub extra: String,
    pub flow: Flow,
    /// Written as config.json instead of the mutated template (malformed-input scenarios).
    pub raw_config: Option<String>,
}

/// One runtime's run of one scenario: its paths and names.
pub struct Ctx {
    pub rt: &'static Runtime,
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub out: PathBuf,
    pub rootfs: PathBuf,
    pub shared: PathBuf,
    pub id: String,
}

pub type Obs = Vec<(String, String)>;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Scenarios whose container ran under neither runtime (both refused or failed alike):
/// listed at the end, so agreement on an error is visible as such.
pub static NEITHER_RAN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

impl Scenario {
    pub fn new(name: impl Into<String>) -> Scenario {
        Scenario {
            name: name.into(),
            rootfs: Rootfs::Shared("base"),
            mutations: Vec::new(),
            extra: String::new(),
            flow: Flow::Run,
            raw_config: None,
        }
    }

    pub fn m(mut self, f: impl Fn(&mut Value, &Ctx) + Send + Sync + 'static) -> Self {
        self.mutations.push(Arc::new(f));
        self
    }

    /// Sets a value by JSON pointer, creating objects on the way.
    pub fn set(self, ptr: &'static str, v: Value) -> Self {
        self.m(move |c, _| set_ptr(c, ptr, v.clone()))
    }

    /// Removes the value at a JSON pointer.
    pub fn unset(self, ptr: &'static str) -> Self {
        self.m(move |c, _| remove_ptr(c, ptr))
    }

    pub fn extra(mut self, cmds: &str) -> Self {
        self.extra.push_str(cmds);
        self.extra.push('\n');
        self
    }

    pub fn rootfs(mut self, r: Rootfs) -> Self {
        self.rootfs = r;
        self
    }

    pub fn flow(mut self, f: Flow) -> Self {
        self.flow = f;
        self
    }

    pub fn raw(mut self, text: &str) -> Self {
        self.raw_config = Some(text.to_string());
        self
    }
}

pub fn set_ptr(c: &mut Value, ptr: &str, v: Value) {
    let parts: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    let mut cur = c;
    for p in &parts[..parts.len() - 1] {
        if cur.get(*p).is_none_or(Value::is_null) {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    cur[parts[parts.len() - 1]] = v;
}

pub fn remove_ptr(c: &mut Value, ptr: &str) {
    let (parent, key) = ptr.rsplit_once('/').unwrap();
    if let Some(Value::Object(o)) = c.pointer_mut(parent) {
        o.remove(key);
    }
}

impl Ctx {
    fn new(rt: &'static Runtime) -> Ctx {
        let s = setup::get();
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = s.base.join("runs").join(format!("{seq}-{}", rt.name));
        let id = format!("df{}-{seq}-{}", std::process::id(), rt.name);
        Ctx {
            rt,
            root: dir.join("root"),
            bundle: dir.join("bundle"),
            out: dir.join("out"),
            rootfs: PathBuf::new(),
            shared: s.shared.clone(),
            dir,
            id,
        }
    }

    /// What differs legitimately between the two runs: paths, the id, the runtime's name.
    pub fn subst(&self) -> Subst {
        let s = |p: &PathBuf| p.to_string_lossy().into_owned();
        Subst {
            pairs: vec![
                (s(&self.rootfs), "<rootfs>"),
                (s(&self.bundle), "<bundle>"),
                (s(&self.dir), "<dir>"),
                (s(&self.shared), "<shared>"),
                (self.id.clone(), "<id>"),
                (self.rt.bin.to_string(), "<runtime>"),
            ],
        }
    }

    /// `runtime --root ROOT ARGS…` with its stdout into `stdout` (see runtime::invoke).
    pub fn call(&self, args: &[&str], stdout: &std::fs::File) -> runtime::Out {
        runtime::invoke(self.rt, &self.root, args, stdout)
    }
}

/// Runs `s` under `rt` and returns its normalised observations.
pub fn observe(s: &Scenario, rt: &'static Runtime) -> Obs {
    let mut ctx = Ctx::new(rt);
    for d in [&ctx.root, &ctx.bundle, &ctx.out] {
        std::fs::create_dir_all(d).unwrap();
    }
    ctx.rootfs = match s.rootfs {
        Rootfs::Shared(v) => setup::get().rootfs(v),
        Rootfs::Private(v) => {
            let p = ctx.bundle.join("rootfs");
            setup::copy_tree(&setup::get().rootfs(v), &p);
            p
        }
    };
    write_config(s, &ctx);
    // Should the harness itself panic mid-flow, the container still goes.
    let guard = CleanupGuard(&ctx);
    let mut obs = flows::run(s, &ctx);
    obs.extend(flows::outputs(&ctx));
    drop(guard);
    // After `delete --force` nothing may remain, whatever the other runtime does.
    let left = flows::leftover(&ctx);
    if !left.is_empty() {
        obs.push(("after-cleanup".into(), left));
    }
    let _ = std::fs::remove_dir_all(&ctx.dir);
    obs
}

/// Force-deletes the scenario's container when dropped, pass, fail or panic.
struct CleanupGuard<'a>(&'a Ctx);

impl Drop for CleanupGuard<'_> {
    fn drop(&mut self) {
        flows::cleanup(self.0);
    }
}

fn write_config(s: &Scenario, ctx: &Ctx) {
    let text = match &s.raw_config {
        Some(t) => t.clone(),
        None => {
            let script = format!("{}{}", crate::observe::SCRIPT, s.extra);
            let mut c = setup::get().config(&ctx.rootfs, &ctx.id, &script);
            for m in &s.mutations {
                m(&mut c, ctx);
            }
            serde_json::to_string_pretty(&c).unwrap()
        }
    };
    std::fs::write(ctx.bundle.join("config.json"), text).unwrap();
}

/// Runs the scenario under both runtimes; fails on any difference not explained by
/// known-differences.txt.
pub fn check(s: &Scenario, known: &Known) -> Result<(), libtest_mimic::Failed> {
    let [runc, berth] = &runtime::RUNTIMES;
    let expected = observe(s, runc);
    let got = observe(s, berth);
    known.ran(&s.name);
    let ran = |o: &Obs| o.iter().any(|(k, _)| k.starts_with("proc."));
    if !ran(&expected) && !ran(&got) {
        NEITHER_RAN.lock().unwrap().push(s.name.clone());
    }
    if std::env::var_os("DIFFERENTIAL_SHOW").is_some() {
        show(&s.name, &expected, &got);
    }
    let mut report = String::new();
    for (rt, obs) in [("runc", &expected), ("berth", &got)] {
        if let Some((_, left)) = obs.iter().find(|(k, _)| k == "after-cleanup") {
            report.push_str(&format!(
                "--- {rt} left this behind after delete --force:\n{left}\n"
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (key, a, b) in crate::diff::pairs(&expected, &got) {
        if a == b {
            continue;
        }
        let (a, b) = known.filter(&s.name, &key, (&a, &b), &mut seen);
        if a != b {
            report.push_str(&crate::diff::render(&key, &a, &b));
        }
    }
    known.saw(&seen);
    if report.is_empty() {
        Ok(())
    } else {
        Err(report.into())
    }
}

/// DIFFERENTIAL_SHOW=1: every observation of both runtimes, for writing a new scenario.
fn show(name: &str, runc: &Obs, berth: &Obs) {
    for (rt, obs) in [("runc", runc), ("berth", berth)] {
        for (k, v) in obs {
            println!("[{name}] {rt} {k}:\n{v}");
        }
    }
}
