//! `linux.resources` → cgroup files. This covers the device allow-list and the common
//! limits (memory, pids, cpu, cpuset) on v1; every other field is reported, not applied
//! (see README "What does not work yet").

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::{CgroupError, write};
use crate::spec::DevicePlan;

/// Devices every container may use even under a deny-all rule (as runc allows them).
const DEFAULT_ALLOWED: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

fn find<'a>(dirs: &'a [PathBuf], file: &str) -> Option<&'a Path> {
    dirs.iter()
        .map(PathBuf::as_path)
        .find(|d| d.join(file).exists())
}

fn rule(d: &LinuxDeviceCgroup) -> String {
    let typ = d
        .typ()
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| "a".into());
    let num = |n: Option<i64>| n.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    if typ == "a" {
        "a".to_string()
    } else {
        format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
    }
}

/// Applies what berth supports of `res`; returns the names of set fields it did not apply.
pub fn apply(
    dirs: &[PathBuf],
    res: &LinuxResources,
    devices: &[DevicePlan],
) -> Result<Vec<&'static str>, CgroupError> {
    if let Some(dev) = find(dirs, "devices.allow") {
        for d in res.devices().iter().flatten() {
            let file = if d.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write(&dev.join(file), &rule(d))?;
        }
        if res.devices().as_ref().is_some_and(|v| !v.is_empty()) {
            for r in DEFAULT_ALLOWED {
                write(&dev.join("devices.allow"), r)?;
            }
            for d in devices {
                let t = if d.kind == libc::S_IFBLK { 'b' } else { 'c' };
                if d.kind != libc::S_IFIFO {
                    write(
                        &dev.join("devices.allow"),
                        &format!("{t} {}:{} rwm", d.major, d.minor),
                    )?;
                }
            }
        }
    }
    let mut skipped = Vec::new();
    if let Some(m) = res.memory() {
        if let Some(limit) = m.limit() {
            match find(dirs, "memory.limit_in_bytes") {
                Some(d) => write(&d.join("memory.limit_in_bytes"), &limit.to_string())?,
                None => match find(dirs, "memory.max") {
                    Some(d) => write(&d.join("memory.max"), &v2_max(limit))?,
                    None => skipped.push("memory.limit"),
                },
            }
        }
        if m.reservation().is_some()
            || m.swap().is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer().is_some()
            || m.kernel().is_some()
            || m.kernel_tcp().is_some()
        {
            skipped.push("memory (other than limit)");
        }
    }
    if let Some(p) = res.pids() {
        match find(dirs, "pids.max") {
            Some(d) => write(&d.join("pids.max"), &v2_max(p.limit()))?,
            None => skipped.push("pids.limit"),
        }
    }
    if let Some(c) = res.cpu() {
        let v1 = |file: &str, v: String| -> Result<bool, CgroupError> {
            match find(dirs, file) {
                Some(d) => write(&d.join(file), &v).map(|_| true),
                None => Ok(false),
            }
        };
        if let Some(s) = c.shares() {
            if !v1("cpu.shares", s.to_string())? {
                skipped.push("cpu.shares");
            }
        }
        if let Some(p) = c.period() {
            if !v1("cpu.cfs_period_us", p.to_string())? {
                skipped.push("cpu.period");
            }
        }
        if let Some(q) = c.quota() {
            if !v1("cpu.cfs_quota_us", q.to_string())? {
                skipped.push("cpu.quota");
            }
        }
        if let Some(cpus) = c.cpus() {
            if !v1("cpuset.cpus", cpus.clone())? {
                skipped.push("cpu.cpus");
            }
        }
        if let Some(mems) = c.mems() {
            if !v1("cpuset.mems", mems.clone())? {
                skipped.push("cpu.mems");
            }
        }
        if c.realtime_runtime().is_some() || c.realtime_period().is_some() || c.idle().is_some() {
            skipped.push("cpu (realtime, idle)");
        }
    }
    if res.block_io().is_some() {
        skipped.push("blockIO");
    }
    if res
        .hugepage_limits()
        .as_ref()
        .is_some_and(|v| !v.is_empty())
    {
        skipped.push("hugepageLimits");
    }
    if res.network().is_some() {
        skipped.push("network");
    }
    if res.rdma().is_some() {
        skipped.push("rdma");
    }
    if res.unified().as_ref().is_some_and(|v| !v.is_empty()) {
        skipped.push("unified");
    }
    Ok(skipped)
}

/// cgroup v2 spells "no limit" as "max"; the spec uses -1 (or 0 for pids).
pub fn v2_max(v: i64) -> String {
    if v <= 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};

    #[test]
    fn device_rules() {
        let all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(rule(&all), "a");
        let null = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rw")
            .build()
            .unwrap();
        assert_eq!(rule(&null), "c 1:3 rw");
        let any = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::B)
            .build()
            .unwrap();
        assert_eq!(rule(&any), "b *:* rwm");
    }

    #[test]
    fn max_values() {
        assert_eq!(v2_max(-1), "max");
        assert_eq!(v2_max(100), "100");
    }
}
