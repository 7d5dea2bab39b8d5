//! `process` of config.json → [`ProcessPlan`].

use std::collections::HashSet;
use std::str::FromStr;

use oci_spec::runtime::{
    Capabilities, IOPriorityClass, LinuxSchedulerFlag, LinuxSchedulerPolicy, PosixRlimitType,
    Process,
};

use super::{
    CapSets, IoPriority, PlanOptions, ProcessPlan, Rlimit, SchedulerPlan, SpecError, invalid,
};

pub(super) fn plan(p: &Process, _opts: &PlanOptions) -> Result<ProcessPlan, SpecError> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(invalid("process.args", "must name a program to run"));
    }
    let env = p.env().clone().unwrap_or_default();
    if let Some(i) = env.iter().position(|e| !e.contains('=')) {
        return Err(invalid(
            format!("process.env[{i}]"),
            format!("{:?} is not KEY=VALUE", env[i]),
        ));
    }
    if !p.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{}: must be an absolute path", super::shown(p.cwd())),
        ));
    }
    let caps = match p.capabilities() {
        // Absent means no capabilities in any set, as in runc: not "keep the runtime's".
        None => Some(CapSets {
            bounding: Default::default(),
            effective: Default::default(),
            permitted: Default::default(),
            inheritable: Default::default(),
            ambient: Default::default(),
        }),
        Some(c) => {
            let set = |name: &str, s: &Option<Capabilities>| convert_caps(name, s);
            Some(CapSets {
                bounding: set("bounding", c.bounding())?,
                effective: set("effective", c.effective())?,
                permitted: set("permitted", c.permitted())?,
                inheritable: set("inheritable", c.inheritable())?,
                ambient: set("ambient", c.ambient())?,
            })
        }
    };
    let mut rlimits = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let name = serde_json::to_value(r.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if !seen.insert(name.clone()) {
            return Err(invalid(
                format!("process.rlimits[{i}].type"),
                format!("duplicate {name}"),
            ));
        }
        if r.soft() > r.hard() {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                format!(
                    "{name}: soft limit {} is above hard limit {}",
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        rlimits.push(Rlimit {
            name,
            resource: rlimit_resource(r.typ()),
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    let io_priority = p.io_priority().as_ref().map(|io| {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        (class, io.priority())
    });
    let io_priority = match io_priority {
        Some((class, level)) if !(0..=7).contains(&level) => {
            return Err(invalid(
                "process.ioPriority.priority",
                format!("{level} out of range 0..7 (class {class})"),
            ));
        }
        Some((class, level)) => Some(IoPriority {
            class,
            level: level as i32,
        }),
        None => None,
    };
    let scheduler = p.scheduler().as_ref().map(scheduler).transpose()?;
    let affinity = |field: &str, v: Option<&String>| -> Result<Option<Vec<usize>>, SpecError> {
        v.map(|s| parse_cpu_list(s).map_err(|e| invalid(field, e)))
            .transpose()
    };
    let (initial, fin) = match p.exec_cpu_affinity() {
        Some(a) => (
            affinity("process.execCPUAffinity.initial", a.initial().as_ref())?,
            affinity(
                "process.execCPUAffinity.final",
                a.cpu_affinity_final().as_ref(),
            )?,
        ),
        None => (None, None),
    };
    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(invalid(
                "process.oomScoreAdj",
                format!("{adj} out of range -1000..1000"),
            ));
        }
    }
    let user = p.user();
    Ok(ProcessPlan {
        args,
        env,
        cwd: p.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        umask: user.umask(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        caps,
        rlimits,
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        oom_score_adj: p.oom_score_adj(),
        io_priority,
        scheduler,
        cpu_affinity_initial: initial,
        cpu_affinity_final: fin,
        terminal: p.terminal().unwrap_or(false),
        console_size: p.console_size().map(|b| {
            (
                b.height().min(u16::MAX as u64) as u16,
                b.width().min(u16::MAX as u64) as u16,
            )
        }),
        apparmor_profile: p.apparmor_profile().clone().filter(|a| !a.is_empty()),
    })
}

/// A capability this build or kernel does not know is ignored with a warning, as runc
/// does ("ignoring unknown or unavailable capabilities"): images and engines list newer
/// capabilities than an older host has, and runc runs them.
fn convert_caps(set: &str, caps: &Option<Capabilities>) -> Result<caps::CapsHashSet, SpecError> {
    let mut out = caps::CapsHashSet::new();
    let mut unknown = Vec::new();
    for c in caps.iter().flatten() {
        let name = format!("CAP_{c}");
        match caps::Capability::from_str(&name) {
            Ok(cap) => {
                out.insert(cap);
            }
            Err(_) => unknown.push(name),
        }
    }
    if !unknown.is_empty() {
        crate::logging::warn(&format!(
            "process.capabilities.{set}: ignoring unknown or unavailable capabilities: {}",
            unknown.join(", ")
        ));
    }
    Ok(out)
}

fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    use PosixRlimitType as T;
    (match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

fn scheduler(s: &oci_spec::runtime::Scheduler) -> Result<SchedulerPlan, SpecError> {
    use LinuxSchedulerPolicy as P;
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => {
            return Err(invalid(
                "process.scheduler.policy",
                "SCHED_ISO is not implemented by Linux",
            ));
        }
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(invalid(
            "process.scheduler.nice",
            format!("{nice} out of range -20..19"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    if priority < 0 {
        return Err(invalid(
            "process.scheduler.priority",
            "must not be negative",
        ));
    }
    if (policy == 1 || policy == 2) && priority == 0 {
        return Err(invalid(
            "process.scheduler.priority",
            "SCHED_FIFO and SCHED_RR need a priority of 1..99",
        ));
    }
    Ok(SchedulerPlan {
        policy,
        nice,
        priority: priority as u32,
        flags,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

/// "0-3,7" → [0,1,2,3,7].
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("malformed CPU list {s:?}");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b >= 1024 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => {
                let n: usize = part.parse().map_err(|_| bad())?;
                if n >= 1024 {
                    return Err(bad());
                }
                out.push(n);
            }
        }
    }
    if out.is_empty() {
        return Err(format!("empty CPU list {s:?}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn caps_convert_by_name() {
        let mut set = Capabilities::new();
        set.insert(oci_spec::runtime::Capability::NetBindService);
        set.insert(oci_spec::runtime::Capability::SysAdmin);
        let c = convert_caps("bounding", &Some(set)).unwrap();
        assert!(c.contains(&caps::Capability::CAP_NET_BIND_SERVICE));
        assert!(c.contains(&caps::Capability::CAP_SYS_ADMIN));
    }
}
