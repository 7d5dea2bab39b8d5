//! `linux.resources` → cgroup files, on v1, v2 and hybrid hosts. Each field goes to the v1
//! controller when the host has it there, else to the cgroup2 directory (converting v1
//! terms), else it is an error naming the field: berth never drops a limit silently.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::convert::{blkio_weight_to_io_weight, cpu_max, max_or, shares_to_weight, swap_v2};
use super::{CgroupError, Hierarchy, hierarchies, write};

/// Devices every container may use even under a deny-all rule (as runc allows them).
pub const DEFAULT_ALLOWED: &[&str] = &[
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

/// Which of the container's directories serves which controller.
pub struct Controllers {
    v1: Vec<(Vec<String>, PathBuf)>,
    v2: Option<(PathBuf, PathBuf)>,
}

impl Controllers {
    /// Matches the container's directories (one per hierarchy) against the mounts.
    pub fn of(dirs: &[PathBuf]) -> Result<Controllers, CgroupError> {
        let hs = hierarchies().map_err(super::cg_err("read", Path::new("/proc/self/mountinfo")))?;
        Ok(Self::from_parts(&hs, dirs))
    }

    pub fn from_parts(hs: &[Hierarchy], dirs: &[PathBuf]) -> Controllers {
        let mut c = Controllers {
            v1: Vec::new(),
            v2: None,
        };
        for d in dirs {
            // The longest matching mount point owns the directory.
            let h = hs
                .iter()
                .filter(|h| d.starts_with(&h.mount))
                .max_by_key(|h| h.mount.as_os_str().len());
            match h {
                Some(h) if h.v2 => c.v2 = Some((h.mount.clone(), d.clone())),
                Some(h) => c.v1.push((h.controllers.clone(), d.clone())),
                None => {}
            }
        }
        c
    }

    pub fn v1(&self, ctrl: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(cs, _)| cs.iter().any(|c| c == ctrl))
            .map(|(_, d)| d.as_path())
    }

    /// The cgroup2 directory, with `ctrl` enabled on the way down if the host offers it.
    pub fn v2(&self, ctrl: &str) -> Result<Option<&Path>, CgroupError> {
        let Some((mount, dir)) = &self.v2 else {
            return Ok(None);
        };
        let avail = fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
        if !avail.split_whitespace().any(|c| c == ctrl) {
            return Ok(None);
        }
        let mut cur = mount.clone();
        for comp in dir
            .strip_prefix(mount)
            .unwrap_or(Path::new(""))
            .components()
        {
            let sc = cur.join("cgroup.subtree_control");
            let on = fs::read_to_string(&sc).unwrap_or_default();
            if !on.split_whitespace().any(|c| c == ctrl) {
                // EBUSY: the cgroup holds processes; EOPNOTSUPP: it holds processes and
                // already hands threaded controllers (cpu, pids) down, which makes it a
                // thread root, where no domain controller can be enabled.
                write(&sc, &format!("+{ctrl}")).map_err(|e| match e.kind() {
                    Some(std::io::ErrorKind::ResourceBusy | std::io::ErrorKind::Unsupported) => CgroupError::State(format!(
                        "cgroup {}: cannot hand the {ctrl} controller down to {}: it holds processes, and cgroup v2 lets only a cgroup without processes enable controllers for its children (the no-internal-process rule)",
                        cur.display(),
                        dir.display()
                    )),
                    _ => e,
                })?;
            }
            cur.push(comp);
        }
        Ok(Some(dir.as_path()))
    }

    pub fn v2_dir(&self) -> Option<&Path> {
        self.v2.as_ref().map(|(_, d)| d.as_path())
    }

    /// v1 directory of `ctrl`, or the v2 directory, or an error naming the field.
    pub(super) fn either(&self, ctrl: &str, field: &str) -> Result<Dir<'_>, CgroupError> {
        if let Some(d) = self.v1(ctrl) {
            return Ok(Dir::V1(d));
        }
        let v2name = match ctrl {
            "blkio" => "io",
            "cpuacct" => "cpu",
            c => c,
        };
        match self.v2(v2name)? {
            Some(d) => Ok(Dir::V2(d)),
            None => Err(missing(field, ctrl)),
        }
    }
}

pub(super) enum Dir<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

fn missing(field: &str, ctrl: &str) -> CgroupError {
    CgroupError::Unsupported {
        field: field.to_string(),
        reason: format!("the {ctrl} cgroup controller is not available on this host"),
    }
}

pub(super) fn unsupported(field: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::Unsupported {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn first_existing(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.exists())
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

/// Applies `res`. `update` is true for `berth update` (checkBeforeUpdate applies, devices
/// are left alone unless given).
pub fn apply(c: &Controllers, res: &LinuxResources, update: bool) -> Result<(), CgroupError> {
    let res = &super::convert::zeros_unset(res);
    if let Some(rules) = res.devices().as_ref().filter(|r| !r.is_empty()) {
        apply_devices(c, rules)?;
    }
    if let Some(m) = res.memory() {
        memory(c, m, update)?;
    }
    if let Some(cpu) = res.cpu() {
        self::cpu(c, cpu)?;
    }
    if let Some(p) = res.pids() {
        let file = match c.either("pids", "pids.limit")? {
            Dir::V1(d) | Dir::V2(d) => d.join("pids.max"),
        };
        write(
            &file,
            &if p.limit() <= 0 {
                "max".to_string()
            } else {
                p.limit().to_string()
            },
        )?;
    }
    if let Some(b) = res.block_io() {
        blkio(c, b)?;
    }
    if let Some(limits) = res.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
        super::hugetlb::apply(c, limits, &super::hugetlb::host_sizes())?;
    }
    if let Some(n) = res.network() {
        if let Some(id) = n.class_id() {
            let d = c
                .v1("net_cls")
                .ok_or_else(|| missing("network.classID", "net_cls"))?;
            write(&d.join("net_cls.classid"), &id.to_string())?;
        }
        for p in n.priorities().iter().flatten() {
            let d = c
                .v1("net_prio")
                .ok_or_else(|| missing("network.priorities", "net_prio"))?;
            write(
                &d.join("net_prio.ifpriomap"),
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    for (dev, r) in res.rdma().iter().flatten() {
        let d = match c.either("rdma", "rdma")? {
            Dir::V1(d) | Dir::V2(d) => d,
        };
        let mut v = dev.clone();
        if let Some(h) = r.hca_handles() {
            v.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = r.hca_objects() {
            v.push_str(&format!(" hca_object={o}"));
        }
        write(&d.join("rdma.max"), &v)?;
    }
    for (key, value) in res.unified().iter().flatten() {
        let field = format!("unified.{key}");
        if key.contains('/') || key.starts_with('.') || !key.contains('.') {
            return Err(unsupported(&field, "not a cgroup v2 interface file name"));
        }
        let ctrl = key.split('.').next().unwrap_or("");
        let d = match ctrl {
            "cgroup" => c.v2_dir(),
            _ => c.v2(ctrl)?,
        }
        .ok_or_else(|| {
            unsupported(
                &field,
                format!("needs cgroup v2 with the {ctrl} controller, which this host lacks"),
            )
        })?;
        write(&d.join(key), value)?;
    }
    Ok(())
}

fn apply_devices(c: &Controllers, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let Some(dev) = c.v1("devices") else {
        return match c.v2_dir() {
            Some(dir) => super::devices_v2(dir, rules),
            None => Err(missing("devices", "devices")),
        };
    };
    for (allow, r) in v1_rules(rules) {
        write(
            &dev.join(if allow {
                "devices.allow"
            } else {
                "devices.deny"
            }),
            &r,
        )?;
    }
    Ok(())
}

/// The rules in the order to apply them: the spec's list (last match wins), with the
/// devices every container needs allowed right after the last "deny all" — so a later
/// rule in the config can still deny one of them. `linux.devices` nodes get no implicit
/// rule (as in runc): the config's list decides, in order, as config-linux.md requires.
pub fn v1_rules(rules: &[LinuxDeviceCgroup]) -> Vec<(bool, String)> {
    let deny_all = |d: &LinuxDeviceCgroup| !d.allow() && rule(d) == "a";
    let at = rules.iter().rposition(deny_all).map(|i| i + 1).unwrap_or(0);
    let mut out: Vec<(bool, String)> = rules[..at].iter().map(|d| (d.allow(), rule(d))).collect();
    out.extend(DEFAULT_ALLOWED.iter().map(|r| (true, r.to_string())));
    out.extend(rules[at..].iter().map(|d| (d.allow(), rule(d))));
    out
}

fn memory(
    c: &Controllers,
    m: &oci_spec::runtime::LinuxMemory,
    update: bool,
) -> Result<(), CgroupError> {
    let dir = c.either("memory", "memory")?;
    match dir {
        Dir::V1(d) => {
            if update && m.check_before_update() == Some(true) {
                if let Some(limit) = m.limit().filter(|l| *l > 0) {
                    let usage: i64 = fs::read_to_string(d.join("memory.usage_in_bytes"))
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .unwrap_or(0);
                    if limit < usage {
                        return Err(unsupported(
                            "memory.limit",
                            format!(
                                "{limit} is below the current usage {usage} (checkBeforeUpdate)"
                            ),
                        ));
                    }
                }
            }
            let limit = d.join("memory.limit_in_bytes");
            let memsw = d.join("memory.memsw.limit_in_bytes");
            match (m.limit(), m.swap()) {
                // memsw must stay >= limit at every step: order the two writes accordingly.
                (Some(l), Some(s)) => {
                    if write(&limit, &l.to_string()).is_err() {
                        write(&memsw, &s.to_string())?;
                        write(&limit, &l.to_string())?;
                    } else {
                        write(&memsw, &s.to_string())?;
                    }
                }
                (Some(l), None) => write(&limit, &l.to_string())?,
                (None, Some(s)) => write(&memsw, &s.to_string())?,
                (None, None) => {}
            }
            if let Some(r) = m.reservation() {
                write(&d.join("memory.soft_limit_in_bytes"), &r.to_string())?;
            }
            if let Some(s) = m.swappiness() {
                if s > 100 {
                    return Err(unsupported(
                        "memory.swappiness",
                        format!("{s} is above 100"),
                    ));
                }
                write(&d.join("memory.swappiness"), &s.to_string())?;
            }
            if let Some(off) = m.disable_oom_killer() {
                write(&d.join("memory.oom_control"), if off { "1" } else { "0" })?;
            }
            if let Some(h) = m.use_hierarchy() {
                write(&d.join("memory.use_hierarchy"), if h { "1" } else { "0" })?;
            }
            for (v, file, field) in [
                (m.kernel(), "memory.kmem.limit_in_bytes", "memory.kernel"),
                (
                    m.kernel_tcp(),
                    "memory.kmem.tcp.limit_in_bytes",
                    "memory.kernelTCP",
                ),
            ] {
                if let Some(v) = v {
                    if let Err(e) = write(&d.join(file), &v.to_string()) {
                        // Kernel memory limits are deprecated; runc ignores them too.
                        crate::logging::warn(&format!(
                            "linux.resources.{field}: ignored, this kernel no longer supports it ({e})"
                        ));
                    }
                }
            }
        }
        Dir::V2(d) => {
            if let Some(l) = m.limit() {
                write(&d.join("memory.max"), &max_or(l))?;
            }
            if let Some(s) = m.swap() {
                write(&d.join("memory.swap.max"), &swap_v2(s, m.limit()))?;
            }
            if let Some(r) = m.reservation() {
                write(&d.join("memory.low"), &max_or(r))?;
            }
            if m.swappiness().is_some() {
                return Err(unsupported(
                    "memory.swappiness",
                    "cgroup v2 has no per-cgroup swappiness",
                ));
            }
            if m.disable_oom_killer() == Some(true) {
                return Err(unsupported(
                    "memory.disableOOMKiller",
                    "cgroup v2 cannot disable the OOM killer",
                ));
            }
        }
    }
    Ok(())
}

fn cpu(c: &Controllers, cpu: &oci_spec::runtime::LinuxCpu) -> Result<(), CgroupError> {
    let needs_cpu = cpu.shares().is_some()
        || cpu.quota().is_some()
        || cpu.period().is_some()
        || cpu.burst().is_some()
        || cpu.realtime_runtime().is_some()
        || cpu.realtime_period().is_some()
        || cpu.idle().is_some();
    if needs_cpu {
        match c.either("cpu", "cpu")? {
            Dir::V1(d) => {
                if let Some(s) = cpu.shares() {
                    write(&d.join("cpu.shares"), &s.to_string())?;
                }
                if let Some(p) = cpu.period() {
                    write(&d.join("cpu.cfs_period_us"), &p.to_string())?;
                }
                if let Some(q) = cpu.quota() {
                    write(&d.join("cpu.cfs_quota_us"), &q.to_string())?;
                }
                if let Some(b) = cpu.burst() {
                    write(&d.join("cpu.cfs_burst_us"), &b.to_string())?;
                }
                rt_sched(d, cpu.realtime_period(), cpu.realtime_runtime())?;
                if let Some(i) = cpu.idle() {
                    write(&d.join("cpu.idle"), &i.to_string())?;
                }
            }
            Dir::V2(d) => {
                if let Some(s) = cpu.shares() {
                    write(&d.join("cpu.weight"), &shares_to_weight(s).to_string())?;
                }
                if cpu.quota().is_some() || cpu.period().is_some() {
                    write(&d.join("cpu.max"), &cpu_max(cpu.quota(), cpu.period()))?;
                }
                if let Some(b) = cpu.burst() {
                    write(&d.join("cpu.max.burst"), &b.to_string())?;
                }
                if cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some() {
                    return Err(unsupported(
                        "cpu.realtimeRuntime",
                        "cgroup v2 has no realtime CPU budget",
                    ));
                }
                if let Some(i) = cpu.idle() {
                    write(&d.join("cpu.idle"), &i.to_string())?;
                }
            }
        }
    }
    for (v, file, field) in [
        (cpu.cpus(), "cpuset.cpus", "cpu.cpus"),
        (cpu.mems(), "cpuset.mems", "cpu.mems"),
    ] {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            match c.either("cpuset", field)? {
                Dir::V1(d) | Dir::V2(d) => write(&d.join(file), v)?,
            }
        }
    }
    Ok(())
}

/// cpu.rt_period_us and cpu.rt_runtime_us bound each other (runtime ≤ period, and the
/// group's share of its parent's budget): raising both needs the period first, lowering
/// both the runtime first. As runc: period first; if the kernel refuses it (EINVAL) while a
/// runtime is also given, the runtime goes first and the period after it.
fn rt_sched(d: &Path, period: Option<u64>, runtime: Option<i64>) -> Result<(), CgroupError> {
    let period_file = d.join("cpu.rt_period_us");
    let mut deferred = None;
    if let Some(p) = period {
        match write(&period_file, &p.to_string()) {
            Err(e) if runtime.is_some() && e.kind() == Some(std::io::ErrorKind::InvalidInput) => {
                deferred = Some(p);
            }
            other => other?,
        }
    }
    if let Some(r) = runtime {
        write(&d.join("cpu.rt_runtime_us"), &r.to_string())?;
    }
    if let Some(p) = deferred {
        write(&period_file, &p.to_string())?;
    }
    Ok(())
}

fn blkio(c: &Controllers, b: &oci_spec::runtime::LinuxBlockIo) -> Result<(), CgroupError> {
    match c.either("blkio", "blockIO")? {
        Dir::V1(d) => {
            if let Some(w) = b.weight() {
                let f =
                    first_existing(d, &["blkio.weight", "blkio.bfq.weight"]).ok_or_else(|| {
                        unsupported(
                            "blockIO.weight",
                            "this host's I/O scheduler offers no blkio.weight or blkio.bfq.weight",
                        )
                    })?;
                write(&f, &w.to_string())?;
            }
            if let Some(w) = b.leaf_weight() {
                let f = first_existing(d, &["blkio.leaf_weight"]).ok_or_else(|| {
                    unsupported(
                        "blockIO.leafWeight",
                        "this host's I/O scheduler offers no blkio.leaf_weight",
                    )
                })?;
                write(&f, &w.to_string())?;
            }
            for wd in b.weight_device().iter().flatten() {
                let dev = format!("{}:{}", wd.major(), wd.minor());
                if let Some(w) = wd.weight() {
                    let f = first_existing(d, &["blkio.weight_device", "blkio.bfq.weight_device"])
                        .ok_or_else(|| {
                            unsupported(
                                "blockIO.weightDevice",
                                "this host's I/O scheduler offers no blkio.weight_device",
                            )
                        })?;
                    write(&f, &format!("{dev} {w}"))?;
                }
                if let Some(w) = wd.leaf_weight() {
                    let f = first_existing(d, &["blkio.leaf_weight_device"]).ok_or_else(|| {
                        unsupported(
                            "blockIO.weightDevice.leafWeight",
                            "this host's I/O scheduler offers no blkio.leaf_weight_device",
                        )
                    })?;
                    write(&f, &format!("{dev} {w}"))?;
                }
            }
            for (list, file) in [
                (
                    b.throttle_read_bps_device(),
                    "blkio.throttle.read_bps_device",
                ),
                (
                    b.throttle_write_bps_device(),
                    "blkio.throttle.write_bps_device",
                ),
                (
                    b.throttle_read_iops_device(),
                    "blkio.throttle.read_iops_device",
                ),
                (
                    b.throttle_write_iops_device(),
                    "blkio.throttle.write_iops_device",
                ),
            ] {
                for t in list.iter().flatten() {
                    write(
                        &d.join(file),
                        &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                    )?;
                }
            }
        }
        Dir::V2(d) => {
            if let Some(w) = b.weight() {
                let f = first_existing(d, &["io.bfq.weight", "io.weight"])
                    .ok_or_else(|| unsupported("blockIO.weight", "no io.weight on this host"))?;
                let v = if f.ends_with("io.bfq.weight") {
                    u64::from(w)
                } else {
                    blkio_weight_to_io_weight(w)
                };
                write(&f, &v.to_string())?;
            }
            if b.leaf_weight().is_some() {
                return Err(unsupported(
                    "blockIO.leafWeight",
                    "cgroup v2 has no leaf weight",
                ));
            }
            for wd in b.weight_device().iter().flatten() {
                if let Some(w) = wd.weight() {
                    write(
                        &d.join("io.weight"),
                        &format!(
                            "{}:{} {}",
                            wd.major(),
                            wd.minor(),
                            blkio_weight_to_io_weight(w)
                        ),
                    )?;
                }
            }
            for (list, key) in [
                (b.throttle_read_bps_device(), "rbps"),
                (b.throttle_write_bps_device(), "wbps"),
                (b.throttle_read_iops_device(), "riops"),
                (b.throttle_write_iops_device(), "wiops"),
            ] {
                for t in list.iter().flatten() {
                    write(
                        &d.join("io.max"),
                        &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
                    )?;
                }
            }
        }
    }
    Ok(())
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
    fn defaults_follow_the_last_deny_all() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        let deny_null_read = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("r")
            .build()
            .unwrap();
        let r = v1_rules(&[deny_all, deny_null_read]);
        assert_eq!(r[0], (false, "a".to_string()));
        assert_eq!(r[1], (true, DEFAULT_ALLOWED[0].to_string()));
        assert_eq!(r.last().unwrap(), &(false, "c 1:3 r".to_string()));
        assert_eq!(r.len(), DEFAULT_ALLOWED.len() + 2);
    }

    /// A fake cgroup2 tree (this host's cgroup2 mount offers only hugetlb, so the other v2
    /// controllers are exercised here, not on the kernel).
    fn fake_v2(files: &[&str]) -> (PathBuf, Controllers) {
        let mnt = std::env::temp_dir().join(format!(
            "berth-fake-v2-{}-{}",
            std::process::id(),
            files.len()
        ));
        let dir = mnt.join("berth/c");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            mnt.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma",
        )
        .unwrap();
        fs::write(mnt.join("cgroup.subtree_control"), "").unwrap();
        fs::write(mnt.join("berth/cgroup.subtree_control"), "").unwrap();
        for f in files {
            fs::write(dir.join(f), "").unwrap();
        }
        let h = Hierarchy {
            mount: mnt.clone(),
            root: PathBuf::from("/"),
            v2: true,
            controllers: vec![],
        };
        (mnt, Controllers::from_parts(&[h], &[dir]))
    }

    #[test]
    fn v2_conversions_on_a_fake_tree() {
        let files = [
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "cpu.weight",
            "cpu.max",
            "cpu.max.burst",
            "cpu.idle",
            "cpuset.cpus",
            "cpuset.mems",
            "pids.max",
            "io.weight",
            "io.max",
            "hugetlb.2MB.max",
            "rdma.max",
        ];
        let (mnt, c) = fake_v2(&files);
        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 1000, "swap": 3000, "reservation": 500},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10, "idle": 1, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 0},
            "blockIO": {"weight": 1000, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 42}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": -1}],
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10}}
        }))
        .unwrap();
        apply(&c, &res, false).unwrap();
        let d = mnt.join("berth/c");
        let read = |f: &str| fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(read("memory.max"), "1000");
        assert_eq!(read("memory.swap.max"), "2000", "v2 swap excludes memory");
        assert_eq!(read("memory.low"), "500");
        assert_eq!(read("cpu.weight"), "39", "shares 1024 → weight 39");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("cpu.max.burst"), "10");
        assert_eq!(read("cpu.idle"), "1");
        assert_eq!(read("cpuset.cpus"), "0-1");
        assert_eq!(read("pids.max"), "max");
        assert_eq!(
            read("io.weight"),
            "10000",
            "blkio weight 1000 → io.weight 10000"
        );
        assert_eq!(read("io.max"), "8:0 rbps=42");
        assert_eq!(read("hugetlb.2MB.max"), "max");
        assert_eq!(read("rdma.max"), "mlx5_1 hca_handle=3 hca_object=10");
        // Controllers were enabled on the way down.
        assert!(
            fs::read_to_string(mnt.join("berth/cgroup.subtree_control"))
                .unwrap()
                .starts_with('+')
        );
        for (bad, needle) in [
            (
                serde_json::json!({"memory": {"swappiness": 10}}),
                "memory.swappiness",
            ),
            (
                serde_json::json!({"memory": {"disableOOMKiller": true}}),
                "memory.disableOOMKiller",
            ),
            (
                serde_json::json!({"cpu": {"realtimeRuntime": 10}}),
                "cpu.realtimeRuntime",
            ),
            (
                serde_json::json!({"blockIO": {"leafWeight": 10}}),
                "blockIO.leafWeight",
            ),
        ] {
            let res: LinuxResources = serde_json::from_value(bad).unwrap();
            let e = apply(&c, &res, false).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        fs::remove_dir_all(&mnt).unwrap();
    }

    #[test]
    fn directories_are_matched_to_their_hierarchy() {
        let hs = super::super::parse_mountinfo(
            "1 0 0:1 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             2 0 0:2 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             3 0 0:3 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        );
        let c = Controllers::from_parts(
            &hs,
            &[
                PathBuf::from("/sys/fs/cgroup/unified/berth/x"),
                PathBuf::from("/sys/fs/cgroup/memory/berth/x"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/berth/x"),
            ],
        );
        assert_eq!(
            c.v1("memory"),
            Some(Path::new("/sys/fs/cgroup/memory/berth/x"))
        );
        assert_eq!(
            c.v1("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/berth/x"))
        );
        assert_eq!(c.v1("pids"), None);
        assert_eq!(
            c.v2_dir(),
            Some(Path::new("/sys/fs/cgroup/unified/berth/x"))
        );
    }
}
