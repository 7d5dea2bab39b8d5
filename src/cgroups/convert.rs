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
}
