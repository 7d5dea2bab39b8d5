//! Values between the spec's v1 terms and cgroup v2 files. Formulas as the kernel and the
//! OCI "cgroup v2 conversion" note agree on them; each is unit-tested at its edges.

/// cpu.shares [2, 262144] → cpu.weight [1, 10000], linear over the two ranges:
/// weight = 1 + (shares - 2) * 9999 / 262142. shares 1024 (the v1 default) → 39.
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + (s - 2) * 9999 / 262_142
}

/// blkio weight [10, 1000] → io.weight [1, 10000]: weight = 1 + (w - 10) * 9999 / 990.
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    let w = u64::from(w).clamp(10, 1000);
    1 + (w - 10) * 9999 / 990
}

/// cgroup v2 spells "no limit" as "max"; the spec uses -1 (and 0 for pids).
pub fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// cpu.max from quota and period: "max 100000" when the quota is unlimited.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> String {
    let q = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    format!("{q} {}", period.unwrap_or(100_000))
}

/// v1 memory.memsw is memory+swap; v2 memory.swap.max is swap alone.
pub fn swap_v2(memsw: i64, limit: Option<i64>) -> String {
    match (memsw, limit) {
        (s, _) if s < 0 => "max".to_string(),
        (s, Some(l)) if l >= 0 => (s - l).max(0).to_string(),
        (s, _) => s.to_string(),
    }
}

/// "512m", "1G", "100k", "4096", "-1" → bytes (binary multiples, as runc's flags accept).
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    if n < 0.0 {
        return Err(format!("invalid size {s:?}"));
    }
    Ok((n * mult as f64) as i64)
}

/// runc's reading of zeros: for these fields 0 means "not set", and runc writes nothing
/// for them (e.g. `if r.CpuShares != 0`). Docker fills `cpu.shares: 0` and
/// `blockIO.weight: 0` in every config; written as given, 0 shares would become the
/// minimum weight (2) and the kernel refuses a blkio weight of 0.
pub fn zeros_unset(res: &oci_spec::runtime::LinuxResources) -> oci_spec::runtime::LinuxResources {
    let mut r = res.clone();
    let nz_i = |v: Option<i64>| v.filter(|v| *v != 0);
    let nz_u = |v: Option<u64>| v.filter(|v| *v != 0);
    let nz_w = |v: Option<u16>| v.filter(|v| *v != 0);
    if let Some(m) = r.memory_mut() {
        m.set_limit(nz_i(m.limit()));
        m.set_reservation(nz_i(m.reservation()));
        m.set_swap(nz_i(m.swap()));
        m.set_kernel(nz_i(m.kernel()));
        m.set_kernel_tcp(nz_i(m.kernel_tcp()));
    }
    if let Some(c) = r.cpu_mut() {
        c.set_shares(nz_u(c.shares()));
        c.set_quota(nz_i(c.quota()));
        c.set_period(nz_u(c.period()));
        c.set_realtime_runtime(nz_i(c.realtime_runtime()));
        c.set_realtime_period(nz_u(c.realtime_period()));
    }
    if let Some(b) = r.block_io_mut() {
        b.set_weight(nz_w(b.weight()));
        b.set_leaf_weight(nz_w(b.leaf_weight()));
        if let Some(wds) = b.weight_device().clone() {
            let wds = wds
                .into_iter()
                .map(|wd| {
                    let mut nb = oci_spec::runtime::LinuxWeightDeviceBuilder::default()
                        .major(wd.major())
                        .minor(wd.minor());
                    if let Some(w) = nz_w(wd.weight()) {
                        nb = nb.weight(w);
                    }
                    if let Some(w) = nz_w(wd.leaf_weight()) {
                        nb = nb.leaf_weight(w);
                    }
                    nb.build().unwrap_or(wd)
                })
                .collect();
            b.set_weight_device(Some(wds));
        }
    }
    if let Some(n) = r.network_mut() {
        n.set_class_id(n.class_id().filter(|c| *c != 0));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_onto_weight_range() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(0), 1, "below range clamps");
    }

    #[test]
    fn blkio_weight_maps_onto_io_weight() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
    }

    #[test]
    fn cpu_max_and_swap() {
        assert_eq!(cpu_max(Some(50_000), Some(100_000)), "50000 100000");
        assert_eq!(cpu_max(Some(-1), None), "max 100000");
        assert_eq!(swap_v2(-1, Some(100)), "max");
        assert_eq!(swap_v2(300, Some(100)), "200");
        assert_eq!(max_or(-1), "max");
        assert_eq!(max_or(5), "5");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("100kb"), Ok(100 << 10));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("-1"), Ok(-1));
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn zeros_mean_unset_as_in_runc() {
        let r: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "disableOOMKiller": false},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "idle": 0},
            "blockIO": {"weight": 0, "weightDevice": [{"major": 8, "minor": 0, "weight": 0, "leafWeight": 10}]},
            "network": {"classID": 0}
        }))
        .unwrap();
        let z = zeros_unset(&r);
        let m = z.memory().as_ref().unwrap();
        assert_eq!(
            (m.limit(), m.reservation(), m.swap(), m.kernel()),
            (None, None, None, None)
        );
        assert_eq!(m.disable_oom_killer(), Some(false));
        let c = z.cpu().as_ref().unwrap();
        assert_eq!((c.shares(), c.quota(), c.period()), (None, None, None));
        assert_eq!(c.idle(), Some(0), "idle 0 is a real value");
        let b = z.block_io().as_ref().unwrap();
        assert_eq!(b.weight(), None);
        let wd = &b.weight_device().as_ref().unwrap()[0];
        assert_eq!((wd.weight(), wd.leaf_weight()), (None, Some(10)));
        assert_eq!(z.network().as_ref().unwrap().class_id(), None);
        // Non-zero values pass through.
        let r: oci_spec::runtime::LinuxResources = serde_json::from_value(
            serde_json::json!({"memory": {"limit": -1}, "cpu": {"shares": 512}}),
        )
        .unwrap();
        let z = zeros_unset(&r);
        assert_eq!(z.memory().as_ref().unwrap().limit(), Some(-1));
        assert_eq!(z.cpu().as_ref().unwrap().shares(), Some(512));
    }
}
