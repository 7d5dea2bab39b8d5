//! linux.resources → systemd unit properties, as runc's systemd v2 driver translates them
//! (docs/systemd.md "cgroup v2" table and genV2ResourcesProperties). berth also writes
//! every resource through cgroupfs afterwards, as runc does: a property systemd lacks
//! is still applied, and the unit holds the same values so systemd never rewrites them.

use oci_spec::runtime::LinuxResources;

use super::super::convert;
use super::wire::Value;
use crate::cgroups::CgroupError;

/// systemd's USEC_INFINITY and "no limit" for byte and task counts.
const INFINITY: u64 = u64::MAX;
const DEFAULT_PERIOD: u64 = 100_000;

fn bad(field: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::Unsupported {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// The properties for `res`. `version` is asked (once at most) only when a property
/// depends on the systemd version: CPUQuotaPeriodUSec needs 242, AllowedCPUs 244.
pub fn properties(
    res: &LinuxResources,
    mut version: impl FnMut() -> u32,
) -> Result<Vec<Value>, CgroupError> {
    let res = convert::zeros_unset(res);
    let mut known: Option<u32> = None;
    let mut version = move || *known.get_or_insert_with(&mut version);
    let mut out = Vec::new();
    if let Some(m) = res.memory() {
        let limit = m.limit().unwrap_or(0);
        if limit != 0 {
            out.push(Value::prop("MemoryMax", Value::U64(limit as u64)));
        }
        if let Some(r) = m.reservation().filter(|r| *r != 0) {
            out.push(Value::prop("MemoryLow", Value::U64(r as u64)));
        }
        let swap = swap_v2(m.swap().unwrap_or(0), limit)?;
        if swap != 0 {
            out.push(Value::prop("MemorySwapMax", Value::U64(swap as u64)));
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            let w = convert::shares_to_weight(s);
            out.push(Value::prop("CPUWeight", Value::U64(w)));
        }
        cpu_quota(
            &mut out,
            c.quota().unwrap_or(0),
            c.period().unwrap_or(0),
            &mut version,
        );
        for (field, prop, list) in [
            ("cpu.cpus", "AllowedCPUs", c.cpus()),
            ("cpu.mems", "AllowedMemoryNodes", c.mems()),
        ] {
            if let Some(list) = list.as_deref().filter(|l| !l.trim().is_empty()) {
                let bits = range_to_bits(list).map_err(|e| bad(field, e))?;
                if version() >= 244 {
                    out.push(Value::prop(prop, bytes(bits)));
                }
            }
        }
    }
    if let Some(p) = res.pids() {
        let l = p.limit();
        if l > 0 || l == -1 {
            out.push(Value::prop("TasksMax", Value::U64(l as u64)));
        }
    }
    if let Some(w) = res.block_io().as_ref().and_then(|b| b.weight()) {
        let w = convert::blkio_weight_to_io_weight(w);
        out.push(Value::prop("IOWeight", Value::U64(w)));
    }
    for (k, v) in res.unified().iter().flatten() {
        unified(&mut out, k, v.trim(), &mut version)?;
    }
    Ok(out)
}

fn bytes(bits: Vec<u8>) -> Value {
    Value::Array("y".into(), bits.into_iter().map(Value::Byte).collect())
}

/// runc's ConvertMemorySwapToCgroupV2Value: v1's memory+swap to v2's swap alone.
fn swap_v2(swap: i64, memory: i64) -> Result<i64, CgroupError> {
    let field = "memory.swap";
    Ok(match (swap, memory) {
        (0, -1) => -1,
        (-1 | 0, _) => swap,
        (_, 0 | -1) => return Err(bad(field, "a swap limit needs a memory limit")),
        (s, m) if s < m => return Err(bad(field, "memory+swap must be >= memory.limit")),
        (s, m) => s - m,
    })
}

/// runc's addCpuQuota: CPUQuotaPeriodUSec (systemd 242+) and CPUQuotaPerSecUSec, the
/// latter rounded up to whole 10 ms because systemd keeps it as a percentage.
fn cpu_quota(out: &mut Vec<Value>, quota: i64, period: u64, version: &mut impl FnMut() -> u32) {
    if period != 0 && version() >= 242 {
        out.push(Value::prop("CPUQuotaPeriodUSec", Value::U64(period)));
    }
    if quota == 0 && period == 0 {
        return;
    }
    let mut per_sec = INFINITY;
    if quota > 0 {
        let period = if period == 0 { DEFAULT_PERIOD } else { period };
        per_sec = (quota as u64).saturating_mul(1_000_000) / period;
        if per_sec % 10_000 != 0 {
            per_sec = (per_sec / 10_000 + 1) * 10_000;
        }
    }
    out.push(Value::prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
}

/// runc's unifiedResToSystemdProps: the unified keys systemd has properties for; every
/// other key only goes to cgroupfs.
fn unified(
    out: &mut Vec<Value>,
    key: &str,
    v: &str,
    version: &mut impl FnMut() -> u32,
) -> Result<(), CgroupError> {
    let field = format!("unified.{key}");
    let num = |s: &str| -> Result<u64, CgroupError> {
        if s == "max" {
            return Ok(INFINITY);
        }
        s.parse()
            .map_err(|_| bad(&field, format!("{v:?} is not a number or max")))
    };
    match key {
        "cpu.max" => {
            let parts: Vec<&str> = v.split_whitespace().collect();
            if parts.is_empty() || parts.len() > 2 {
                return Err(bad(&field, format!("{v:?}: expected \"QUOTA [PERIOD]\"")));
            }
            let quota = match parts[0] {
                "max" => 0,
                q => q.parse().map_err(|_| bad(&field, format!("quota {q:?}")))?,
            };
            let period = match parts.get(1) {
                Some(p) => p
                    .parse()
                    .map_err(|_| bad(&field, format!("period {p:?}")))?,
                None => DEFAULT_PERIOD,
            };
            cpu_quota(out, quota, period, version);
        }
        "cpu.weight" => {
            let w = v.parse().map_err(|_| bad(&field, format!("{v:?}")))?;
            out.push(Value::prop("CPUWeight", Value::U64(w)));
        }
        "cpuset.cpus" | "cpuset.mems" => {
            let bits = range_to_bits(v).map_err(|e| bad(&field, e))?;
            let prop = if key == "cpuset.cpus" {
                "AllowedCPUs"
            } else {
                "AllowedMemoryNodes"
            };
            if version() >= 244 {
                out.push(Value::prop(prop, bytes(bits)));
            }
        }
        "memory.high" | "memory.low" | "memory.min" | "memory.max" | "memory.swap.max" => {
            let prop = match key {
                "memory.high" => "MemoryHigh",
                "memory.low" => "MemoryLow",
                "memory.min" => "MemoryMin",
                "memory.max" => "MemoryMax",
                _ => "MemorySwapMax",
            };
            out.push(Value::prop(prop, Value::U64(num(v)?)));
        }
        "pids.max" => out.push(Value::prop("TasksMax", Value::U64(num(v)?))),
        _ => {}
    }
    Ok(())
}

/// "0-3,8" → the CPU (or node) bitmask systemd's AllowedCPUs takes: byte i holds CPUs
/// 8i..8i+7, lowest bit first, no trailing zero bytes (at least one byte).
pub fn range_to_bits(list: &str) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| -> Result<usize, String> {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n < 65_536)
                .ok_or_else(|| format!("{list:?}: {s:?} is not a CPU or node number"))
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if lo > hi {
            return Err(format!("{list:?}: range {part:?} runs backwards"));
        }
        for n in lo..=hi {
            if out.len() <= n / 8 {
                out.resize(n / 8 + 1, 0);
            }
            out[n / 8] |= 1 << (n % 8);
        }
    }
    if out.is_empty() {
        out.push(0);
    }
    Ok(out)
}

/// "252.38-1~deb12u1" (the manager's Version property) → 252; 0 when unreadable.
pub fn version_number(v: &str) -> u32 {
    let v = v.trim().trim_start_matches('v');
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).expect("resources")
    }

    fn props(json: &str, version: u32) -> Vec<(String, Value)> {
        properties(&res(json), || version)
            .expect("properties")
            .into_iter()
            .map(|p| match p {
                Value::Struct(mut kv) => match (kv.pop(), kv.pop()) {
                    (Some(Value::Variant(v)), Some(Value::Str(k))) => (k, *v),
                    _ => panic!("not (sv)"),
                },
                _ => panic!("not a struct"),
            })
            .collect()
    }

    fn get<'a>(ps: &'a [(String, Value)], k: &str) -> Option<&'a Value> {
        ps.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }

    #[test]
    fn memory_limits() {
        let ps = props(
            r#"{"memory":{"limit":33554432,"reservation":1048576,"swap":67108864}}"#,
            252,
        );
        assert_eq!(get(&ps, "MemoryMax"), Some(&Value::U64(33_554_432)));
        assert_eq!(get(&ps, "MemoryLow"), Some(&Value::U64(1_048_576)));
        assert_eq!(get(&ps, "MemorySwapMax"), Some(&Value::U64(33_554_432)));
        let ps = props(r#"{"memory":{"limit":-1}}"#, 252);
        assert_eq!(get(&ps, "MemoryMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&ps, "MemorySwapMax"), Some(&Value::U64(u64::MAX)));
        let e = properties(&res(r#"{"memory":{"limit":100,"swap":50}}"#), || 252);
        assert!(e.unwrap_err().to_string().contains("memory.swap"));
    }

    #[test]
    fn cpu_shares_quota_and_sets() {
        let ps = props(
            r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1","mems":"0"}}"#,
            252,
        );
        assert_eq!(get(&ps, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get(&ps, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(get(&ps, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&ps, "AllowedCPUs"), Some(&bytes(vec![3])));
        assert_eq!(get(&ps, "AllowedMemoryNodes"), Some(&bytes(vec![1])));
        // 1234 µs per 100 ms = 12340 µs/s, rounded up to whole 10 ms.
        let ps = props(r#"{"cpu":{"quota":1234}}"#, 252);
        assert_eq!(get(&ps, "CPUQuotaPerSecUSec"), Some(&Value::U64(20_000)));
        assert_eq!(get(&ps, "CPUQuotaPeriodUSec"), None);
        let ps = props(r#"{"cpu":{"quota":-1,"period":50000}}"#, 252);
        assert_eq!(get(&ps, "CPUQuotaPerSecUSec"), Some(&Value::U64(u64::MAX)));
    }

    #[test]
    fn old_systemd_gets_no_newer_properties() {
        let ps = props(r#"{"cpu":{"period":50000,"cpus":"1"}}"#, 241);
        assert_eq!(get(&ps, "CPUQuotaPeriodUSec"), None);
        assert_eq!(get(&ps, "AllowedCPUs"), None);
        assert!(get(&ps, "CPUQuotaPerSecUSec").is_some());
    }

    #[test]
    fn version_asked_only_when_needed_and_once() {
        let mut asked = 0;
        properties(&res(r#"{"memory":{"limit":1}}"#), || {
            asked += 1;
            252
        })
        .expect("props");
        assert_eq!(asked, 0);
        properties(
            &res(r#"{"cpu":{"period":1000,"cpus":"0","mems":"0"}}"#),
            || {
                asked += 1;
                252
            },
        )
        .expect("props");
        assert_eq!(asked, 1);
    }

    #[test]
    fn pids_io_and_zeros() {
        let ps = props(r#"{"pids":{"limit":10},"blockIO":{"weight":500}}"#, 252);
        assert_eq!(get(&ps, "TasksMax"), Some(&Value::U64(10)));
        assert_eq!(
            get(&ps, "IOWeight"),
            Some(&Value::U64(1 + 490 * 9999 / 990))
        );
        assert_eq!(
            get(&props(r#"{"pids":{"limit":-1}}"#, 252), "TasksMax"),
            Some(&Value::U64(u64::MAX))
        );
        // Docker's zeros mean "unset", as in runc.
        assert!(
            props(
                r#"{"pids":{"limit":0},"cpu":{"shares":0},"blockIO":{"weight":0}}"#,
                252
            )
            .is_empty()
        );
    }

    #[test]
    fn unified_keys() {
        let ps = props(
            r#"{"unified":{"memory.high":"1048576","memory.min":"max","pids.max":"7","cpu.max":"max 50000","cpu.weight":"77","io.max":"8:0 rbps=1"}}"#,
            252,
        );
        assert_eq!(get(&ps, "MemoryHigh"), Some(&Value::U64(1_048_576)));
        assert_eq!(get(&ps, "MemoryMin"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&ps, "TasksMax"), Some(&Value::U64(7)));
        assert_eq!(get(&ps, "CPUWeight"), Some(&Value::U64(77)));
        assert_eq!(get(&ps, "CPUQuotaPeriodUSec"), Some(&Value::U64(50_000)));
        assert_eq!(get(&ps, "CPUQuotaPerSecUSec"), Some(&Value::U64(u64::MAX)));
        assert_eq!(ps.len(), 6, "io.max has no property: {ps:?}");
        let e = properties(&res(r#"{"unified":{"memory.high":"lots"}}"#), || 252);
        assert!(e.unwrap_err().to_string().contains("unified.memory.high"));
    }

    #[test]
    fn bitmasks_as_systemd_reads_them() {
        assert_eq!(range_to_bits("0"), Ok(vec![1]));
        assert_eq!(range_to_bits("0-3,5"), Ok(vec![0x2f]));
        assert_eq!(range_to_bits("8"), Ok(vec![0, 1]));
        assert_eq!(range_to_bits("1,9-10"), Ok(vec![2, 6]));
        assert_eq!(range_to_bits(""), Ok(vec![0]));
        assert!(range_to_bits("3-1").is_err());
        assert!(range_to_bits("a").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(version_number("252.38-1~deb12u1"), 252);
        assert_eq!(version_number("v245.4-1.fc32"), 245);
        assert_eq!(version_number("junk"), 0);
    }
}
