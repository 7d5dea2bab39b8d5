//! Operations on a live container's cgroups: update, pause, resume, ps, events.

use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::{self, Controllers};
use crate::container::Error;
use crate::state::{self, ContainerDir, State, Status};

fn load_live(root: &Path, id: &str) -> Result<(ContainerDir, State, Status), Error> {
    let dir = ContainerDir::new(root, id)?;
    let st = dir.load()?;
    let status = state::status(&dir, &st);
    Ok((dir, st, status))
}

/// `update`: applies new limits to a created, running or paused container.
pub fn update(root: &Path, id: &str, res: &LinuxResources) -> Result<(), Error> {
    let (dir, st, status) = load_live(root, id)?;
    let _lock = dir.lock()?;
    if status == Status::Stopped {
        return Err(Error::Msg(format!(
            "cannot update container {id}: it is stopped"
        )));
    }
    if let (Some(unit), Some(dir)) = (&st.systemd_unit, st.cgroup_joined.first()) {
        return Ok(cgroups::systemd::update(unit, dir, res)?);
    }
    let c = Controllers::of(&st.cgroup_joined)?;
    cgroups::apply(&c, res, true)?;
    Ok(())
}

pub fn pause(root: &Path, id: &str) -> Result<(), Error> {
    let (dir, st, status) = load_live(root, id)?;
    let _lock = dir.lock()?;
    match status {
        Status::Running | Status::Created => Ok(cgroups::set_frozen(&st.cgroup_joined, true)?),
        s => Err(Error::Msg(format!(
            "cannot pause container {id}: it is {}",
            s.as_str()
        ))),
    }
}

pub fn resume(root: &Path, id: &str) -> Result<(), Error> {
    let (dir, st, status) = load_live(root, id)?;
    let _lock = dir.lock()?;
    match status {
        Status::Paused => Ok(cgroups::set_frozen(&st.cgroup_joined, false)?),
        s => Err(Error::Msg(format!(
            "cannot resume container {id}: it is {}, not paused",
            s.as_str()
        ))),
    }
}

/// The container's pids (all processes of its cgroup).
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>, Error> {
    let (_, st, status) = load_live(root, id)?;
    if status == Status::Stopped {
        return Err(Error::NotRunning(id.to_string()));
    }
    // A rootless container on v1 has none: its processes cannot be listed.
    if st.cgroup_joined.is_empty() {
        return Err(Error::Msg(crate::rootless::no_cgroup_reason("pids")));
    }
    Ok(cgroups::pids(&st.cgroup_joined))
}

/// `ps` table: runs ps(1) with `args` and keeps the header and the container's rows,
/// finding the PID column from the header as runc does.
pub fn ps_table(pids: &[i32], args: &[String]) -> Result<String, Error> {
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::Msg(format!("ps {}: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(Error::Msg(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::Msg("ps output has no PID column".into()))?;
    let mut res = format!("{header}\n");
    for l in lines {
        if l.split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            res.push_str(l);
            res.push('\n');
        }
    }
    Ok(res)
}

/// "5s", "100ms", "1m", "2" (seconds) → Duration.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid interval {s:?}");
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs.is_nan() || secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `events`: one stats object with `stats_once`, else a stream of stats every `interval`
/// plus an "oom" event whenever the OOM-kill count rises, until the container stops.
pub fn events(
    root: &Path,
    id: &str,
    stats_once: bool,
    interval: Duration,
    out: &mut dyn std::io::Write,
) -> Result<(), Error> {
    let (dir, st, status) = load_live(root, id)?;
    if status == Status::Stopped {
        return Err(Error::NotRunning(id.to_string()));
    }
    let emit = |out: &mut dyn std::io::Write, v: serde_json::Value| -> Result<(), Error> {
        writeln!(out, "{v}")
            .and_then(|_| out.flush())
            .map_err(|e| Error::Msg(format!("events: write: {e}")))
    };
    if stats_once {
        return emit(out, cgroups::stats::event(id, &st.cgroup_joined));
    }
    let mut ooms = oom_count(&st.cgroup_joined);
    let mut stopped = false;
    loop {
        // Checked once more after the container stopped: an OOM kill that ended it
        // (memory.oom.group kills every task) is still reported.
        let now = oom_count(&st.cgroup_joined);
        if now > ooms {
            emit(out, serde_json::json!({"type": "oom", "id": id}))?;
            ooms = now;
        }
        if stopped {
            return Ok(());
        }
        emit(out, cgroups::stats::event(id, &st.cgroup_joined))?;
        std::thread::sleep(interval);
        stopped = state::status(&dir, &st) == Status::Stopped;
    }
}

/// OOM kills so far: v1 memory.oom_control "oom_kill N", v2 memory.events "oom_kill N".
fn oom_count(dirs: &[std::path::PathBuf]) -> u64 {
    dirs.iter()
        .filter_map(|d| {
            std::fs::read_to_string(d.join("memory.oom_control"))
                .or_else(|_| std::fs::read_to_string(d.join("memory.events")))
                .ok()
        })
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
                .collect::<Vec<_>>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("fast").is_err());
    }
}
