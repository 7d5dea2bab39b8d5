//! The CLI flows a scenario can take, each turning what the runtime and its container did
//! into observations: exit codes, stdout (state JSON normalised), stderr ("fails" for an
//! error), the container's own sections, the files hooks wrote, and what was left behind.

use std::time::{Duration, Instant};

use crate::normalise;
use crate::observe;
use crate::runtime::{self, out_file, read_from};
use crate::scenario::{Ctx, Flow, Obs, Scenario, Step};

pub fn run(s: &Scenario, ctx: &Ctx) -> Obs {
    match &s.flow {
        Flow::Run => run_flow(ctx),
        Flow::Lifecycle(steps) => lifecycle(steps, ctx),
        Flow::Terminal => crate::console::terminal(ctx),
        Flow::TerminalRun => crate::console::terminal_run(ctx),
    }
}

fn run_flow(ctx: &Ctx) -> Obs {
    let f = out_file(&ctx.dir.join("stdout"));
    let bundle = ctx.bundle.to_string_lossy();
    let o = ctx.call(&["run", "--bundle", &bundle, &ctx.id], &f);
    let mut obs = vec![("run.exit".to_string(), exit_text(&o))];
    let stderr = if observe::container_ran(&o.stdout) {
        normalise::container_stderr(&o.stderr, &ctx.subst())
    } else {
        normalise::runtime_stderr(o.code, &o.stderr, &ctx.subst())
    };
    obs.push(("run.stderr".into(), stderr));
    // Foreground `run` without a terminal: runc relays stdio through pipes of its own,
    // `create` passes it through. A separate key lets that be listed on its own.
    let sections = container(&o.stdout, ctx)
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "proc.stdio" => ("run.proc.stdio".to_string(), v),
            _ => (k, v),
        });
    obs.extend(sections);
    obs.push(("leftover".into(), leftover(ctx)));
    obs
}

pub fn exit_text(o: &runtime::Out) -> String {
    if o.timed_out() {
        return "TIMEOUT (hung runtime)\n".into();
    }
    format!("{}\n", o.code)
}

/// The container's sections, each normalised (mountinfo also for kernel numbering).
pub fn container(out: &str, ctx: &Ctx) -> Obs {
    let subst = ctx.subst();
    observe::sections(out)
        .into_iter()
        .map(|(k, v)| {
            let v = subst.apply(&v);
            let v = if k == "proc.mountinfo" {
                normalise::mountinfo(&v)
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

fn lifecycle(steps: &[Step], ctx: &Ctx) -> Obs {
    let container_out = out_file(&ctx.dir.join("container-out"));
    let mut obs = Obs::new();
    for (i, step) in steps.iter().enumerate() {
        let (label, text) = match step {
            Step::Cli(args) => cli_step(args, ctx, i, &container_out),
            Step::Wait(status) => ("wait".to_string(), wait_for(ctx, status)),
        };
        obs.push((format!("step{i:02}.{label}"), text));
    }
    // A container still running keeps writing: what it printed by now is compared.
    obs.extend(container(&read_from(&container_out, 0), ctx));
    obs.push(("leftover".into(), leftover(ctx)));
    obs
}

fn cli_step(args: &[&str], ctx: &Ctx, i: usize, container_out: &std::fs::File) -> (String, String) {
    let bundle = ctx.bundle.to_string_lossy();
    let args: Vec<&str> = args
        .iter()
        .map(|a| match *a {
            "{id}" => ctx.id.as_str(),
            "{bundle}" => &bundle,
            a => a,
        })
        .collect();
    // `create` (and `run -d`) hands its stdout to the container: the container's output.
    let fresh;
    let hands_over = matches!(args[0], "create" | "run");
    let f = if hands_over {
        container_out
    } else {
        fresh = out_file(&ctx.dir.join(format!("step{i}")));
        &fresh
    };
    let o = ctx.call(&args, f);
    if o.code == 0 && matches!(args[0], "start" | "run") {
        settle(container_out);
    }
    let stdout = if hands_over {
        String::new()
    } else {
        o.stdout.clone()
    };
    (args[0].to_string(), cli_text(&o, &stdout, ctx))
}

fn cli_text(o: &runtime::Out, stdout: &str, ctx: &Ctx) -> String {
    let subst = ctx.subst();
    let t = stdout.trim_start();
    let stdout = if t.starts_with('{') || t.starts_with('[') {
        normalise::state_json(stdout, &subst)
    } else {
        subst.apply(stdout)
    };
    let stderr = normalise::runtime_stderr(o.code, &o.stderr, &subst);
    format!("exit {}stdout:\n{stdout}stderr:\n{stderr}", exit_text(o))
}

/// Waits (up to 5 s) until a started container printed its last section, so the next
/// step (a kill, a delete) never races its observations.
fn settle(container_out: &std::fs::File) {
    let start = Instant::now();
    while !read_from(container_out, 0).contains("@@ sleeping")
        && start.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How long a `wait:` step polls: a real status change takes milliseconds; the waits that
/// run out are those for a signal that pid 1 ignores, and each costs this much.
const WAIT_LIMIT: Duration = Duration::from_millis(1500);

/// Polls `state` until `want`; the last status seen (or "no state") is the observation.
pub fn wait_for(ctx: &Ctx, want: &str) -> String {
    let start = Instant::now();
    let scratch = out_file(&ctx.dir.join("wait"));
    loop {
        let o = ctx.call(&["state", &ctx.id], &scratch);
        let status = serde_json::from_str::<serde_json::Value>(&o.stdout)
            .ok()
            .and_then(|v| v["status"].as_str().map(String::from))
            .unwrap_or_else(|| "no state".into());
        if status == want || start.elapsed() > WAIT_LIMIT {
            return format!("{status}\n");
        }
        std::thread::sleep(Duration::from_millis(20));
        // Each poll appends to the same file; only this poll's text was parsed.
        let _ = scratch.set_len(0);
    }
}

/// Files the hooks (or the container, under /out) wrote, split into their sections.
pub fn outputs(ctx: &Ctx) -> Obs {
    let mut names: Vec<String> = std::fs::read_dir(&ctx.out)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let subst = ctx.subst();
    let mut obs = Obs::new();
    for n in names {
        let text = std::fs::read_to_string(ctx.out.join(&n)).unwrap_or_default();
        for (k, v) in observe::sections(&text) {
            let k = format!("out.{n}.{}", k.trim_start_matches("proc."));
            let v = if k.ends_with(".stdin") {
                normalise::state_json(&v, &subst)
            } else {
                subst.apply(&v)
            };
            obs.push((k, v));
        }
    }
    obs
}

/// What the scenario left under --root and in the cgroup hierarchies before cleanup.
pub fn leftover(ctx: &Ctx) -> String {
    let mut v: Vec<String> = std::fs::read_dir(&ctx.root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| format!("state dir {}", e.file_name().to_string_lossy()))
        .collect();
    v.extend(
        cgroups_left(&ctx.id)
            .into_iter()
            .map(|h| format!("cgroup in {h}")),
    );
    v.sort();
    ctx.subst().apply(&v.join("\n"))
}

/// Hierarchies holding `berth-diff/ID` below this process's own cgroup.
fn cgroups_left(id: &str) -> Vec<String> {
    own_cgroups()
        .into_iter()
        .filter(|(_, dir)| dir.join("berth-diff").join(id).exists())
        .map(|(name, _)| name)
        .collect()
}

/// (hierarchy name, this process's cgroup directory in it) for every hierarchy.
pub fn own_cgroups() -> Vec<(String, std::path::PathBuf)> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut v = Vec::new();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let name = match ctrls {
            "" => "unified".to_string(),
            c => c.trim_start_matches("name=").to_string(),
        };
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(&name)
            .join(path.trim_start_matches('/'));
        v.push((name, dir));
    }
    v
}

/// Whatever the flow left is force-deleted (pass or fail), so no container outlives its
/// scenario; ids a runtime generated itself are swept too.
pub fn cleanup(ctx: &Ctx) {
    let scratch = out_file(&ctx.dir.join("cleanup"));
    let _ = ctx.call(&["delete", "--force", &ctx.id], &scratch);
    for e in std::fs::read_dir(&ctx.root).into_iter().flatten().flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        let _ = ctx.call(&["delete", "--force", &id], &scratch);
    }
}
