//! Terminal and cgroup behaviour where runc is the oracle (issue 14) and the differential
//! harness cannot express the setup: a cgroup frozen or a cpuset parent left empty before
//! create, huge page limits per host page size, realtime budgets raised and lowered, and
//! `exec -t` relaying berth's own terminal. Every test removes the cgroups it made.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

const RUNC: &str = "/usr/sbin/runc";

/// A cgroup path at the top of every hierarchy, unique to this test process.
fn top_path(tag: &str) -> String {
    format!("/berth-ct-{}-{tag}", std::process::id())
}

/// Removes `path` (and its children, deepest first) from every hierarchy, thawed first.
fn remove_everywhere(path: &str) {
    for h in cgroup_mounts() {
        let dir = h.join(path.trim_start_matches('/'));
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
        let mut dirs: Vec<PathBuf> = walk(&dir);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let _ = std::fs::remove_dir(&d);
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&e.path()));
        }
    }
    out
}

fn assert_gone(path: &str) {
    for h in cgroup_mounts() {
        let dir = h.join(path.trim_start_matches('/'));
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

fn runc(env: &Env, args: &[&str]) -> Out {
    let root = env.tmp.path().join("runc-root");
    run_cmd(
        Command::new(RUNC).arg("--root").arg(&root).args(args),
        Duration::from_secs(30),
    )
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn a_frozen_cgroup_is_refused_at_create_as_runc() {
    let path = top_path("frozen");
    let freezer = PathBuf::from("/sys/fs/cgroup/freezer").join(path.trim_start_matches('/'));
    std::fs::create_dir(&freezer).unwrap();
    std::fs::write(freezer.join("freezer.state"), "FROZEN").unwrap();
    let mut env = Env::new(&["true"]);
    env.set("/linux/cgroupsPath", json!(path));
    let id = env.id();
    let started = Instant::now();
    let out = env.create(&id);
    let took = started.elapsed();
    env.write_config();
    let oracle = runc(
        &env,
        &[
            "create",
            "--bundle",
            env.bundle.to_str().unwrap(),
            "rc-frozen",
        ],
    );
    let _ = runc(&env, &["delete", "--force", "rc-frozen"]);
    remove_everywhere(&path);
    out.fails_with(&["linux.cgroupsPath", "unexpectedly frozen"]);
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "one line: {}",
        out.stderr
    );
    assert!(took < Duration::from_secs(10), "create took {took:?}");
    assert_ne!(oracle.code, 0, "runc created in a frozen cgroup");
    assert!(
        oracle.stderr.contains("unexpectedly frozen"),
        "runc: {}",
        oracle.stderr
    );
    assert!(!env.root.join(&id).exists(), "state dir left behind");
    assert_gone(&path);
}

/// A parent made by someone else without cpus/mems (clone_children off): both runtimes
/// fill it from its own parent and the container runs (berth failed with ENOSPC).
#[test]
fn a_cpuset_under_an_empty_parent_inherits_from_above_as_runc() {
    let cpuset_root = Path::new("/sys/fs/cgroup/cpuset");
    for (runtime, tag) in [("berth", "cpuset-b"), ("runc", "cpuset-r")] {
        let path = top_path(tag);
        let parent = cpuset_root.join(path.trim_start_matches('/'));
        std::fs::create_dir(&parent).unwrap();
        assert_eq!(
            read(&parent.join("cpuset.cpus")),
            "",
            "a fresh parent is empty"
        );
        let mut env = Env::new(&["sh", "-c", "echo ran"]);
        env.set("/linux/cgroupsPath", json!(format!("{path}/c")));
        let out = if runtime == "berth" {
            env.run()
        } else {
            env.run_runc()
        };
        let cpus = read(&parent.join("cpuset.cpus"));
        remove_everywhere(&path);
        out.ok();
        assert_eq!(out.stdout, "ran\n", "{runtime}");
        assert_eq!(
            cpus,
            read(&cpuset_root.join("cpuset.cpus")),
            "{runtime}: parent"
        );
        assert_gone(&path);
    }
}

/// Every page size of /sys/kernel/mm/hugepages, named as runc names it, gets its limit and
/// its reservation limit; a size the host lacks is refused naming the field.
#[test]
fn hugetlb_limits_for_every_host_page_size() {
    let unified = Path::new("/sys/fs/cgroup/unified");
    let sizes: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let kb: u64 = n
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(match kb {
                k if k % (1024 * 1024) == 0 => format!("{}GB", k / 1024 / 1024),
                k if k % 1024 == 0 => format!("{}MB", k / 1024),
                k => format!("{k}KB"),
            })
        })
        .collect();
    if sizes.is_empty() || !unified.join("cgroup.controllers").exists() {
        eprintln!("skipped: no huge pages or no cgroup2 hugetlb here");
        return;
    }
    let path = top_path("hugetlb");
    let mut env = Env::new(&["sleep", "30"]);
    env.set("/linux/cgroupsPath", json!(path));
    let limits: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"pageSize": s, "limit": (i as u64 + 1) * 1073741824}))
        .collect();
    env.set("/linux/resources/hugepageLimits", json!(limits));
    let id = env.id();
    let created = env.create(&id);
    let dir = unified.join(path.trim_start_matches('/'));
    let mut seen = Vec::new();
    for (i, s) in sizes.iter().enumerate() {
        let want = (i as u64 + 1) * 1073741824;
        let max = format!("hugetlb.{s}.max");
        seen.push((max.clone(), std::fs::read_to_string(dir.join(&max)), want));
        let rsvd = format!("hugetlb.{s}.rsvd.max");
        if dir.join(&rsvd).exists() {
            seen.push((rsvd.clone(), std::fs::read_to_string(dir.join(&rsvd)), want));
        }
    }
    env.berth(&["delete", "--force", &id]).ok();
    created.ok();
    for (f, got, want) in seen {
        assert_eq!(
            got.map(|s| s.trim().to_string()).ok(),
            Some(want.to_string()),
            "{f}"
        );
    }
    env.set(
        "/linux/resources/hugepageLimits",
        json!([{"pageSize": "3MB", "limit": 1}]),
    );
    env.create(&id)
        .fails_with(&["hugepageLimits[0].pageSize", "\"3MB\"", &sizes[0]]);
    remove_everywhere(&path);
    assert_gone(&path);
}

/// Lowering both realtime values needs the runtime first, raising them the period first:
/// both orders succeed and read back (runc 1.1.5 writes the period first always and fails
/// the lowering; newer runc retries in the other order, as berth does).
#[test]
fn cpu_rt_period_and_runtime_are_written_in_the_order_the_kernel_accepts() {
    let cpu = Path::new("/sys/fs/cgroup/cpu");
    if !cpu.join("cpu.rt_runtime_us").exists() {
        eprintln!("skipped: no realtime group scheduling here");
        return;
    }
    let path = top_path("rt");
    let mut env = Env::new(&["sleep", "30"]);
    env.set("/linux/cgroupsPath", json!(path));
    env.set(
        "/linux/resources/cpu",
        json!({"realtimePeriod": 1000000, "realtimeRuntime": 500000}),
    );
    let id = env.id();
    let created = env.create(&id);
    let dir = cpu.join(path.trim_start_matches('/'));
    let values = || {
        (
            read(&dir.join("cpu.rt_period_us")),
            read(&dir.join("cpu.rt_runtime_us")),
        )
    };
    let first = values();
    // Runtime 500000 > the new period: the period alone would be refused.
    let lowered = env.berth(&[
        "update",
        "--cpu-rt-period",
        "200000",
        "--cpu-rt-runtime",
        "100000",
        &id,
    ]);
    let after_lower = values();
    // Runtime 600000 > the old period: the runtime alone would be refused.
    let raised = env.berth(&[
        "update",
        "--cpu-rt-period",
        "1000000",
        "--cpu-rt-runtime",
        "600000",
        &id,
    ]);
    let after_raise = values();
    env.berth(&["delete", "--force", &id]).ok();
    remove_everywhere(&path);
    created.ok();
    lowered.ok();
    raised.ok();
    assert_eq!(first, ("1000000".into(), "500000".into()));
    assert_eq!(after_lower, ("200000".into(), "100000".into()));
    assert_eq!(after_raise, ("1000000".into(), "600000".into()));
    assert_gone(&path);
}

/// `exec -t` as uid 1000 from a terminal (script(1) gives the runtime one) with no console
/// socket: the runtime relays its own terminal. Under both runtimes the exec's pty is owned
/// by uid 1000 (group tty, 5) and has ONLCR cleared, and lines reach us as "\r\n" (our
/// terminal's own output processing, which the runtime's raw mode keeps).
#[test]
fn exec_tty_relay_owner_and_onlcr_as_runc() {
    let env = Env::new(&["sleep", "100"]);
    env.write_config();
    // Inside the double quotes of script's command line: `$` escaped so the container's
    // shell, not script's, runs `tty`.
    // The pause: an exec'd process may print before the runtime has received the master
    // and cleared ONLCR (runc and berth alike clear it as they receive it, not before the
    // process runs), so the process looks only once the relay is surely set up.
    let probe = "sleep 1; stat -c 'owner %u %g' \\$(tty); stty -a | tr ' ;' '\\n\\n' | grep -x -- '-*onlcr'";
    let mut seen = Vec::new();
    for (bin, root) in [
        (BIN, env.root.clone()),
        (RUNC, env.tmp.path().join("runc-root")),
    ] {
        let id = format!("{}-x", env.id());
        let start = |args: &[&str]| {
            run_cmd(
                Command::new(bin).arg("--root").arg(&root).args(args),
                Duration::from_secs(30),
            )
        };
        start(&[
            "run",
            "--detach",
            "--bundle",
            env.bundle.to_str().unwrap(),
            &id,
        ])
        .ok();
        let cmd = format!(
            "{bin} --root {} exec -t --user 1000:1000 {id} sh -c \"{probe}\"",
            root.display()
        );
        let mut c = Command::new("script");
        c.args(["-qefc", &cmd, "/dev/null"]);
        let out = run_cmd(&mut c, Duration::from_secs(30));
        start(&["delete", "--force", &id]);
        if bin == BIN {
            env.assert_clean(&id);
        }
        seen.push((bin, out));
    }
    for (bin, out) in &seen {
        assert_eq!(out.code, 0, "{bin}: {} {}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("owner 1000 5\r\n"),
            "{bin}: {:?}",
            out.stdout
        );
        assert!(out.stdout.contains("-onlcr"), "{bin}: {:?}", out.stdout);
    }
    // script(1) types a NUL of its own (its stdin at EOF), echoed as "^@" at any point.
    let text = |i: usize| seen[i].1.stdout.replace("^@", "");
    let (b, r) = (text(0), text(1));
    assert_eq!(b, r, "berth vs runc");
}
