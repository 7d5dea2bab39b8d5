//! config-linux.md § Control groups: cgroupsPath and linux.resources, checked in the host's
//! cgroup files of a created container. This host is hybrid: v1 controllers plus a cgroup2
//! mount with only hugetlb, so v1 files are read where the spec's fields map to v1.

use super::sleeper;
use crate::env::{Env, T, ensure, skip};
use crate::{Case, case};
use serde_json::{Value, json};
use std::path::Path;

const CG: &str = "config-linux.md § Control groups";
const RES: &str = "config-linux.md § Control groups";

fn read(p: &str) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("<{e}>"))
}

/// Creates a container in a fresh cgroup with RESOURCES; returns the cgroup path.
fn with_resources(env: &mut Env, resources: Value) -> T<String> {
    let cg = env.cgroup_path();
    sleeper(env, |b| {
        b.linux()["cgroupsPath"] = json!(cg);
        b.linux()["resources"] = resources;
    })?;
    Ok(cg)
}

/// One resource field: set it, then compare a host file (v1 controller CTRL) with WANT.
fn res(
    id: &'static str,
    quote: &'static str,
    resources: Value,
    ctrl: &'static str,
    file: &'static str,
    want: &'static str,
) -> Case {
    case(format!("resources.{id}"), RES, quote, move |env| {
        if !Path::new(&format!("/sys/fs/cgroup/{ctrl}")).is_dir() {
            return skip(format!("this host has no v1 {ctrl} controller"));
        }
        // The kernel may lack the file (e.g. blkio.weight without BFQ): probe a scratch cgroup
        // at the top, not under the containers' parent — a v1 cpuset parent made here would
        // have empty cpus/mems, which is a different test.
        let sdir = format!(
            "/sys/fs/cgroup/{ctrl}/berth-conformance-probe-{}",
            std::process::id()
        );
        let _ = std::fs::create_dir(&sdir);
        let has = Path::new(&format!("{sdir}/{file}")).exists();
        let _ = std::fs::remove_dir(&sdir);
        if !has {
            return skip(format!("this kernel has no {ctrl} file {file}"));
        }
        let cg = with_resources(env, resources.clone())?;
        let got = read(&format!("/sys/fs/cgroup/{ctrl}{cg}/{file}"));
        ensure(got.contains(want), || {
            format!("{ctrl}/{file} = {got:?}, want {want:?}")
        })
    })
}

/// The host's first real block device (major:minor), for throttle rules.
fn block_dev() -> Option<(u64, u64)> {
    let t = std::fs::read_to_string("/sys/block/vda/dev")
        .ok()
        .or_else(|| {
            std::fs::read_dir("/sys/block")
                .ok()?
                .flatten()
                .find(|e| !e.file_name().to_string_lossy().starts_with("loop"))
                .and_then(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        })?;
    let (a, b) = t.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn throttle(kind: &'static str, file: &'static str) -> Case {
    case(
        format!("resources.blockIO.{kind}"),
        RES,
        "throttleReadBpsDevice, throttleWriteBpsDevice, throttleReadIOPSDevice, throttleWriteIOPSDevice (array of objects, OPTIONAL) specify the list of devices which will be IO rate limited.",
        move |env| {
            let Some((maj, min)) = block_dev() else {
                return skip("no block device on this host");
            };
            let cg = with_resources(
                env,
                json!({ "blockIO": { kind: [{ "major": maj, "minor": min, "rate": 1048576 }] } }),
            )?;
            let got = read(&format!("/sys/fs/cgroup/blkio{cg}/{file}"));
            ensure(got.contains(&format!("{maj}:{min} 1048576")), || {
                format!("{file} = {got:?}")
            })
        },
    )
}

fn unavailable(
    id: &'static str,
    quote: &'static str,
    why: &'static str,
    probe: &'static str,
) -> Case {
    case(format!("resources.{id}"), RES, quote, move |env| {
        if !Path::new(probe).exists() {
            return skip(why);
        }
        let _ = env;
        skip(format!(
            "{why} (probe {probe} exists, but no check is written for it)"
        ))
    })
}

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "cgroupsPath.absolute",
            CG,
            "If the value is specified, the runtime MUST consistently attach to the same place in the cgroups hierarchy given the same value of cgroupsPath.",
            |env| {
                let cg = with_resources(env, json!({}))?;
                let procs = read(&format!("/sys/fs/cgroup/pids{cg}/cgroup.procs"));
                ensure(!procs.is_empty() && !procs.starts_with('<'), || {
                    format!("no process in pids{cg}: {procs:?}")
                })
            },
        ),
        case(
            "cgroupsPath.process-inside",
            CG,
            "The runtime MUST … attach to the same place in the cgroups hierarchy given the same value of cgroupsPath.",
            |env| {
                let cg = env.cgroup_path();
                let (id, _) = sleeper(env, |b| b.linux()["cgroupsPath"] = json!(cg))?;
                let pid = env.state(&id)?["pid"].as_i64().unwrap_or(0);
                let own = read(&format!("/proc/{pid}/cgroup"));
                ensure(
                    own.lines()
                        .any(|l| l.contains(":memory:") && l.ends_with(cg.as_str())),
                    || format!("/proc/{pid}/cgroup: {own}"),
                )
            },
        ),
        case(
            "cgroupsPath.relative",
            CG,
            "If the value of cgroupsPath is relative, … the runtime MAY interpret the path relative to a runtime-determined location in the cgroups hierarchy.",
            |env| {
                let name = format!("berth-conformance-rel-{}", std::process::id());
                env.remember_cgroup(&format!("/{name}"));
                let (id, _) = sleeper(env, |b| b.linux()["cgroupsPath"] = json!(name))?;
                let pid = env.state(&id)?["pid"].as_i64().unwrap_or(0);
                let own = read(&format!("/proc/{pid}/cgroup"));
                ensure(
                    own.lines()
                        .any(|l| l.contains(":pids:") && l.ends_with(name.as_str())),
                    || format!("/proc/{pid}/cgroup: {own}"),
                )
            },
        ),
        case(
            "cgroupsPath.namespace-root",
            "config-linux.md § Namespaces",
            "cgroup the container will have a virtualized view of the cgroup hierarchy.",
            |env| {
                let r = env.inspect(&[], |b| {
                    b.set_ns("cgroup", None);
                })?;
                let lines = r["cgroup"].as_array().cloned().unwrap_or_default();
                let ok = lines
                    .iter()
                    .filter_map(|l| l.as_str())
                    .filter(|l| l.contains(":memory:") || l.contains(":pids:"))
                    .all(|l| l.ends_with(":/"));
                ensure(ok && !lines.is_empty(), || {
                    format!("/proc/self/cgroup {lines:?}")
                })
            },
        ),
        res(
            "memory.limit",
            "limit (int64, OPTIONAL) - sets limit of memory usage in bytes",
            json!({ "memory": { "limit": 268435456 } }),
            "memory",
            "memory.limit_in_bytes",
            "268435456",
        ),
        res(
            "memory.reservation",
            "reservation (int64, OPTIONAL) - sets soft limit of memory usage in bytes",
            json!({ "memory": { "reservation": 134217728 } }),
            "memory",
            "memory.soft_limit_in_bytes",
            "134217728",
        ),
        res(
            "memory.swap",
            "swap (int64, OPTIONAL) - sets limit of memory+Swap usage",
            json!({ "memory": { "limit": 268435456, "swap": 536870912 } }),
            "memory",
            "memory.memsw.limit_in_bytes",
            "536870912",
        ),
        res(
            "memory.swappiness",
            "swappiness (uint64, OPTIONAL) - sets swappiness parameter of vmscan",
            json!({ "memory": { "swappiness": 17 } }),
            "memory",
            "memory.swappiness",
            "17",
        ),
        res(
            "memory.disableOOMKiller",
            "disableOOMKiller (bool, OPTIONAL) - enables or disables the OOM killer",
            json!({ "memory": { "disableOOMKiller": true } }),
            "memory",
            "memory.oom_control",
            "oom_kill_disable 1",
        ),
        res(
            "cpu.shares",
            "shares (uint64, OPTIONAL) - specifies a relative share of CPU time available to the tasks in a cgroup",
            json!({ "cpu": { "shares": 512 } }),
            "cpu",
            "cpu.shares",
            "512",
        ),
        res(
            "cpu.quota",
            "quota (int64, OPTIONAL) - specifies the total amount of time in microseconds for which all tasks in a cgroup can run during one period",
            json!({ "cpu": { "quota": 50000, "period": 100000 } }),
            "cpu",
            "cpu.cfs_quota_us",
            "50000",
        ),
        res(
            "cpu.period",
            "period (uint64, OPTIONAL) - specifies a period of time in microseconds for how regularly a cgroup's access to CPU resources should be reallocated",
            json!({ "cpu": { "quota": 25000, "period": 50000 } }),
            "cpu",
            "cpu.cfs_period_us",
            "50000",
        ),
        res(
            "cpu.burst",
            "burst (uint64, OPTIONAL) - specifies the maximum amount of accumulated time in microseconds for which all tasks in a cgroup can run additionally for burst during one period",
            json!({ "cpu": { "quota": 50000, "period": 100000, "burst": 10000 } }),
            "cpu",
            "cpu.cfs_burst_us",
            "10000",
        ),
        res(
            "cpu.realtimePeriod",
            "realtimePeriod (uint64, OPTIONAL) - period of time in microseconds for realtime scheduling",
            json!({ "cpu": { "realtimePeriod": 500000 } }),
            "cpu",
            "cpu.rt_period_us",
            "500000",
        ),
        res(
            "cpu.realtimeRuntime",
            "realtimeRuntime (int64, OPTIONAL) - specifies a period of time in microseconds for the longest continuous period in which the tasks in a cgroup have access to CPU resources",
            json!({ "cpu": { "realtimeRuntime": 0 } }),
            "cpu",
            "cpu.rt_runtime_us",
            "0",
        ),
        res(
            "cpu.idle",
            "idle (int64, OPTIONAL) - cgroups are configured with minimum weight, 0: default behavior, 1: SCHED_IDLE.",
            json!({ "cpu": { "idle": 1 } }),
            "cpu",
            "cpu.idle",
            "1",
        ),
        res(
            "cpu.cpus",
            "cpus (string, OPTIONAL) - list of CPUs the container will run in",
            json!({ "cpu": { "cpus": "0" } }),
            "cpuset",
            "cpuset.cpus",
            "0",
        ),
        res(
            "cpu.mems",
            "mems (string, OPTIONAL) - list of Memory Nodes the container will run in",
            json!({ "cpu": { "mems": "0" } }),
            "cpuset",
            "cpuset.mems",
            "0",
        ),
        res(
            "pids.limit",
            "limit (int64, REQUIRED) - specifies the maximum number of tasks in the cgroup",
            json!({ "pids": { "limit": 77 } }),
            "pids",
            "pids.max",
            "77",
        ),
        res(
            "blockIO.weight",
            "weight (uint16, OPTIONAL) - specifies per-cgroup weight.",
            json!({ "blockIO": { "weight": 300 } }),
            "blkio",
            "blkio.weight",
            "300",
        ),
        throttle("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
        throttle("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
        throttle("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
        throttle(
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
        ),
        case(
            "resources.hugepageLimits",
            RES,
            "hugepageLimits (array of objects, OPTIONAL) represents the hugetlb controller which allows to limit the HugeTLB reservations",
            |env| {
                let v1 = Path::new("/sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes").exists();
                let v2 = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
                    .is_ok_and(|c| c.contains("hugetlb"));
                if !v1 && !v2 {
                    return skip("no hugetlb controller on this host");
                }
                let cg = with_resources(
                    env,
                    json!({ "hugepageLimits": [{ "pageSize": "2MB", "limit": 4194304 }] }),
                )?;
                let got = if v1 {
                    read(&format!(
                        "/sys/fs/cgroup/hugetlb{cg}/hugetlb.2MB.limit_in_bytes"
                    ))
                } else {
                    read(&format!("/sys/fs/cgroup/unified{cg}/hugetlb.2MB.max"))
                };
                ensure(got == "4194304", || format!("hugetlb 2MB limit {got:?}"))
            },
        ),
        case(
            "resources.devices.deny",
            "config-linux.md § Allowed Device Whitelist",
            "devices (array of objects, OPTIONAL) configures the allowed device list. The runtime MUST apply entries in the listed order.",
            |env| {
                let r = env.inspect(&["--open", "/dev/conf-kvm"], |b| {
                b.linux()["devices"] = json!([{ "path": "/dev/conf-kvm", "type": "c", "major": 10, "minor": 232, "fileMode": 438 }]);
                b.linux()["resources"] = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
            })?;
                let e = super::errno_of(&r, "open", "/dev/conf-kvm")?;
                ensure(e == libc::EPERM as i64, || {
                    format!("opening a denied device: errno {e}, want EPERM")
                })
            },
        ),
        case(
            "resources.devices.allow",
            "config-linux.md § Allowed Device Whitelist",
            "devices … The runtime MUST apply entries in the listed order.",
            |env| {
                let r = env.inspect(&["--open", "/dev/conf-kvm"], |b| {
                b.linux()["devices"] = json!([{ "path": "/dev/conf-kvm", "type": "c", "major": 10, "minor": 232, "fileMode": 438 }]);
                b.linux()["resources"] = json!({ "devices": [{ "allow": false, "access": "rwm" }, { "allow": true, "type": "c", "major": 10, "minor": 232, "access": "rw" }] });
            })?;
                // Past the cgroup check the driver may still refuse (ENODEV or ENXIO without kvm).
                let e = super::errno_of(&r, "open", "/dev/conf-kvm")?;
                ensure(e != libc::EPERM as i64, || {
                    format!("opening an allowed device: errno {e}")
                })
            },
        ),
        case(
            "resources.devices.order",
            "config-linux.md § Allowed Device Whitelist",
            "The runtime MUST apply entries in the listed order.",
            |env| {
                let r = env.inspect(&["--open", "/dev/conf-kvm"], |b| {
                b.linux()["devices"] = json!([{ "path": "/dev/conf-kvm", "type": "c", "major": 10, "minor": 232, "fileMode": 438 }]);
                b.linux()["resources"] = json!({ "devices": [
                    { "allow": false, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 10, "minor": 232, "access": "rw" },
                    { "allow": false, "type": "c", "major": 10, "minor": 232, "access": "rw" } ] });
            })?;
                let e = super::errno_of(&r, "open", "/dev/conf-kvm")?;
                ensure(e == libc::EPERM as i64, || {
                    format!("a later deny did not win: errno {e}")
                })
            },
        ),
        unavailable(
            "network",
            "network (object, OPTIONAL) represents the cgroup subsystems net_cls and net_prio.",
            "this host mounts neither net_cls nor net_prio",
            "/sys/fs/cgroup/net_cls",
        ),
        unavailable(
            "rdma",
            "rdma (object, OPTIONAL) represents the cgroup subsystem rdma.",
            "this host has no rdma controller",
            "/sys/fs/cgroup/rdma",
        ),
        case(
            "resources.unified",
            "config-linux.md § Unified",
            "Each key in the map refers to a file in the cgroup unified hierarchy. The OCI runtime MUST ensure that the needed cgroup controllers are enabled for the cgroup.",
            |env| {
                // On this hybrid host the cgroup2 mount carries only hugetlb: use its file.
                let ctl = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
                    .unwrap_or_default();
                if !ctl.contains("hugetlb")
                    || !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
                {
                    return skip(
                        "no cgroup2 controller free on this host to write a unified key to",
                    );
                }
                let cg =
                    with_resources(env, json!({ "unified": { "hugetlb.2MB.max": "6291456" } }))?;
                let got = read(&format!("/sys/fs/cgroup/unified{cg}/hugetlb.2MB.max"));
                ensure(got == "6291456", || {
                    format!("unified hugetlb.2MB.max = {got:?}")
                })
            },
        ),
        case(
            "resources.unified.absent-controller",
            "config-linux.md § Unified",
            "The runtime MUST generate an error when the configuration refers to a cgroup controller that is not present or that cannot be enabled.",
            |env| {
                let ctl = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
                    .unwrap_or_default();
                if ctl.split_whitespace().any(|c| c == "pids") {
                    return skip(
                        "pids is available on cgroup2 here: no absent controller to refer to",
                    );
                }
                let cg = env.cgroup_path();
                env.expect_error(|b| {
                    b.linux()["cgroupsPath"] = json!(cg);
                    b.linux()["resources"] = json!({ "unified": { "pids.max": "10" } });
                })
            },
        ),
    ]
}
