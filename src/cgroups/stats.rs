//! Container resource statistics in the JSON shape `runc events --stats` prints
//! (runc's `types.Stats`), so containerd's go-runc, docker and scripts written
//! against runc parse berth's output unchanged.
//!
//! A controller is recognised by the files a directory exposes rather than by
//! which hierarchy it sits in, so v1, v2 and hybrid layouts need no special
//! casing. Statistics are best effort: a missing or unparsable file gives a
//! zero or omitted field, never an error, because a stats query must not fail
//! just because a kernel lacks an optional counter. Zeros are left out wherever
//! runc's struct tags say `omitempty`, so the same fields appear as with runc.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// cpuacct.stat counts USER_HZ ticks; the kernel exports USER_HZ=100 to
/// userspace on every architecture containers run on (runc assumes it too).
const NS_PER_TICK: u64 = 1_000_000_000 / 100;
const NS_PER_USEC: u64 = 1_000;

/// v1 blkio file suffixes and the runc keys they fill. runc spells the queued
/// list "ioQueueRecursive", and that spelling is what its clients parse.
const BLKIO_FILES: [(&str, &str); 8] = [
    ("sectors_recursive", "sectorsRecursive"),
    ("io_service_time_recursive", "ioServiceTimeRecursive"),
    ("io_wait_time_recursive", "ioWaitTimeRecursive"),
    ("io_merged_recursive", "ioMergedRecursive"),
    ("io_queued_recursive", "ioQueueRecursive"),
    ("time_recursive", "ioTimeRecursive"),
    ("io_serviced_recursive", "ioServicedRecursive"),
    ("io_service_bytes_recursive", "ioServiceBytesRecursive"),
];
const BLKIO_THROTTLE_BASE: [(&str, &str); 2] = [
    ("io_serviced", "ioServicedRecursive"),
    ("io_service_bytes", "ioServiceBytesRecursive"),
];

/// Reads stats from the container's cgroup directories (one per hierarchy: v1
/// controller dirs and/or a cgroup2 dir); which directory serves which
/// controller is found by which files exist in it.
pub fn read(dirs: &[PathBuf]) -> Value {
    let mut s = Stats {
        // cpuacct also has per-CPU figures, so it wins over the v2 cpu.stat a
        // hybrid host shows for the same processes.
        cpuacct: dirs.iter().any(|d| has(d, "cpuacct.usage")),
        ..Stats::default()
    };
    for dir in dirs {
        s.collect(dir);
    }
    s.into_json()
}

/// The whole event line object: {"type":"stats","id":id,"data":read(dirs)}
pub fn event(id: &str, dirs: &[PathBuf]) -> Value {
    json!({ "type": "stats", "id": id, "data": read(dirs) })
}

/// runc's `MemoryEntry`.
#[derive(Default)]
struct Mem {
    limit: u64,
    usage: u64,
    max: u64,
    failcnt: u64,
}

impl Mem {
    fn v1(dir: &Path, prefix: &str) -> Self {
        let get = |suffix: &str| num(dir, &format!("{prefix}.{suffix}")).unwrap_or(0);
        Mem {
            limit: get("limit_in_bytes"),
            usage: get("usage_in_bytes"),
            max: get("max_usage_in_bytes"),
            failcnt: get("failcnt"),
        }
    }

    fn v2(dir: &Path, prefix: &str) -> Self {
        let get = |suffix: &str| num(dir, &format!("{prefix}.{suffix}")).unwrap_or(0);
        let events = slurp(dir, &format!("{prefix}.events")).unwrap_or_default();
        Mem {
            limit: get("max"),
            usage: get("current"),
            max: get("peak"),
            // "max" events count charges that hit the limit, which is v1's failcnt.
            failcnt: keyed(&events, "max"),
        }
    }

    fn json(&self) -> Value {
        let m = obj(&[
            ("limit", self.limit, true),
            ("usage", self.usage, false),
            ("max", self.max, false),
            ("failcnt", self.failcnt, true),
        ]);
        Value::Object(m)
    }
}

#[derive(Default)]
struct Stats {
    cpuacct: bool,
    usage: Map<String, Value>,
    throttling: Map<String, Value>,
    cpuset: Option<PathBuf>,
    memory: Map<String, Value>,
    pids: Map<String, Value>,
    blkio: Map<String, Value>,
    hugetlb: Map<String, Value>,
}

impl Stats {
    fn collect(&mut self, dir: &Path) {
        if has(dir, "cpuacct.usage") {
            self.cpuacct_v1(dir);
        }
        if let Some(text) = slurp(dir, "cpu.stat") {
            self.cpu_stat(&text);
        }
        if has(dir, "cpuset.cpu_exclusive") {
            self.cpuset = Some(dir.to_path_buf());
        }
        if has(dir, "memory.usage_in_bytes") {
            self.memory(dir, false);
        } else if has(dir, "memory.current") {
            self.memory(dir, true);
        }
        if let Some(current) = num(dir, "pids.current") {
            // runc reports an unlimited "max" as 0, which clients read as "no limit".
            let limit = match slurp(dir, "pids.max") {
                Some(t) if t.trim() != "max" => t.trim().parse().unwrap_or(0),
                _ => 0,
            };
            self.pids = obj(&[("current", current, false), ("limit", limit, false)]);
        }
        if let Some(blkio) = blkio_v1(dir) {
            self.blkio = blkio;
        }
        if let Some(text) = slurp(dir, "io.stat") {
            self.io_v2(&text);
        }
        self.hugetlb(dir);
    }

    fn cpuacct_v1(&mut self, dir: &Path) {
        let (mut kernel, mut user) = (Vec::new(), Vec::new());
        if let Some(all) = slurp(dir, "cpuacct.usage_all") {
            // Header "cpu user system", then "<cpu> <user ns> <system ns>" per CPU.
            for line in all.lines().skip(1) {
                let f: Vec<u64> = line
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
                if let [_, u, s] = f[..] {
                    user.push(u);
                    kernel.push(s);
                }
            }
        } else {
            kernel = numbers(dir, "cpuacct.usage_percpu_sys");
            user = numbers(dir, "cpuacct.usage_percpu_user");
        }
        let u = &mut self.usage;
        put(u, "total", num(dir, "cpuacct.usage").unwrap_or(0));
        for (key, list) in [
            ("percpu", numbers(dir, "cpuacct.usage_percpu")),
            ("percpu_kernel", kernel),
            ("percpu_user", user),
        ] {
            if !list.is_empty() {
                u.insert(key.into(), list.into());
            }
        }
        // runc splits user/kernel with the tick-based cpuacct.stat; the ns
        // counters only serve kernels that lack it.
        if let Some(stat) = slurp(dir, "cpuacct.stat") {
            put(u, "user", keyed(&stat, "user").saturating_mul(NS_PER_TICK));
            put(
                u,
                "kernel",
                keyed(&stat, "system").saturating_mul(NS_PER_TICK),
            );
        } else {
            put(u, "user", num(dir, "cpuacct.usage_user").unwrap_or(0));
            put(u, "kernel", num(dir, "cpuacct.usage_sys").unwrap_or(0));
        }
    }

    /// v1 and v2 cpu.stat use disjoint key names, so one parser serves both.
    fn cpu_stat(&mut self, text: &str) {
        for (k, v) in pairs(text) {
            let us = v.saturating_mul(NS_PER_USEC);
            match k {
                "usage_usec" if !self.cpuacct => put(&mut self.usage, "total", us),
                "user_usec" if !self.cpuacct => put(&mut self.usage, "user", us),
                "system_usec" if !self.cpuacct => put(&mut self.usage, "kernel", us),
                "nr_periods" => bump(&mut self.throttling, "periods", v),
                "nr_throttled" => bump(&mut self.throttling, "throttledPeriods", v),
                "throttled_time" => bump(&mut self.throttling, "throttledTime", v),
                "throttled_usec" => bump(&mut self.throttling, "throttledTime", us),
                _ => {}
            }
        }
    }

    fn memory(&mut self, dir: &Path, v2: bool) {
        if let Some(text) = slurp(dir, "memory.stat") {
            // v2 renamed v1's page-cache counter "cache" to "file".
            put(
                &mut self.memory,
                "cache",
                keyed(&text, if v2 { "file" } else { "cache" }),
            );
            let raw: Map<String, Value> = pairs(&text).map(|(k, v)| (k.into(), v.into())).collect();
            if !raw.is_empty() {
                self.memory.insert("raw".into(), raw.into());
            }
        }
        let entries = if v2 {
            let mem = Mem::v2(dir, "memory");
            let swap = Mem::v2(dir, "memory.swap");
            // Clients expect v1's memsw meaning (memory+swap), so report the sum
            // as runc does; the peak of a sum is unknowable and stays 0.
            let swap = Mem {
                usage: swap.usage.saturating_add(mem.usage),
                limit: match swap.limit {
                    u64::MAX => u64::MAX,
                    limit => limit.saturating_add(mem.limit),
                },
                max: 0,
                failcnt: swap.failcnt,
            };
            vec![("usage", mem), ("swap", swap)]
        } else {
            vec![
                ("usage", Mem::v1(dir, "memory")),
                ("swap", Mem::v1(dir, "memory.memsw")),
                ("kernel", Mem::v1(dir, "memory.kmem")),
                ("kernelTCP", Mem::v1(dir, "memory.kmem.tcp")),
            ]
        };
        for (key, entry) in entries {
            self.memory.insert(key.into(), entry.json());
        }
    }

    /// "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6" lines, spread over
    /// v1's tables; discard counters have no place in runc's shape and runc
    /// drops them too.
    fn io_v2(&mut self, text: &str) {
        let (mut bytes, mut ios) = (Vec::new(), Vec::new());
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let Some((major, minor)) = words.next().and_then(parse_dev) else {
                continue;
            };
            for (k, v) in words.filter_map(|kv| kv.split_once('=')) {
                let (list, op) = match k {
                    "rbytes" => (&mut bytes, "Read"),
                    "wbytes" => (&mut bytes, "Write"),
                    "rios" => (&mut ios, "Read"),
                    "wios" => (&mut ios, "Write"),
                    _ => continue,
                };
                if let Ok(value) = v.parse() {
                    list.push(blk_entry(major, minor, op, value));
                }
            }
        }
        for (key, list) in [
            ("ioServiceBytesRecursive", bytes),
            ("ioServicedRecursive", ios),
        ] {
            if !list.is_empty() {
                self.blkio.insert(key.into(), Value::Array(list));
            }
        }
    }

    fn hugetlb(&mut self, dir: &Path) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let sizes: BTreeSet<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| Some(n.strip_prefix("hugetlb.")?.split('.').next()?.to_string()))
            .collect();
        for size in sizes {
            let base = format!("hugetlb.{size}");
            // Like runc, prefer the reservation (".rsvd") counters where the kernel
            // has them: they also charge mmap-time reservations, which is what the
            // limits runc and berth write actually police.
            let get = |suffix: &str| {
                let rsvd = num(dir, &format!("{base}.rsvd.{suffix}"));
                rsvd.or_else(|| num(dir, &format!("{base}.{suffix}")))
                    .unwrap_or(0)
            };
            let (usage, max, failcnt) = if has(dir, &format!("{base}.usage_in_bytes")) {
                (
                    get("usage_in_bytes"),
                    get("max_usage_in_bytes"),
                    get("failcnt"),
                )
            } else if has(dir, &format!("{base}.current")) {
                // v2 keeps no hugetlb peak, so "max" (peak usage) stays 0.
                let events = slurp(dir, &format!("{base}.events")).unwrap_or_default();
                (get("current"), 0, keyed(&events, "max"))
            } else {
                continue;
            };
            let m = obj(&[
                ("usage", usage, false),
                ("max", max, false),
                ("failcnt", failcnt, true),
            ]);
            self.hugetlb.insert(size, m.into());
        }
    }

    fn into_json(mut self) -> Value {
        for key in ["kernel", "user"] {
            self.usage.entry(key).or_insert(0.into());
        }
        for key in ["usage", "swap", "kernel", "kernelTCP"] {
            self.memory
                .entry(key)
                .or_insert_with(|| Mem::default().json());
        }
        json!({
            "cpu": { "usage": self.usage, "throttling": self.throttling },
            "cpuset": cpuset_json(self.cpuset.as_deref()),
            "memory": self.memory,
            "pids": self.pids,
            "blkio": self.blkio,
            "hugetlb": self.hugetlb,
            "intel_rdt": {},
            "network_interfaces": null,
        })
    }
}

/// The flags are never omitted by runc, so they read 0 when no v1 cpuset
/// directory exists (runc reports no cpuset stats for v2 either).
fn cpuset_json(dir: Option<&Path>) -> Value {
    let get = |name: &str| {
        dir.and_then(|d| slurp(d, &format!("cpuset.{name}")))
            .unwrap_or_default()
    };
    let mut m = Map::new();
    for key in ["cpus", "mems"] {
        let ids = id_list(&get(key));
        if !ids.is_empty() {
            m.insert(key.into(), ids.into());
        }
    }
    for key in [
        "cpu_exclusive",
        "mem_hardwall",
        "mem_exclusive",
        "memory_migrate",
        "memory_spread_page",
        "memory_spread_slab",
        "memory_pressure",
        "sched_load_balance",
    ] {
        m.insert(
            key.into(),
            get(key).trim().parse::<u64>().unwrap_or(0).into(),
        );
    }
    let level = get("sched_relax_domain_level")
        .trim()
        .parse::<i64>()
        .unwrap_or(0);
    m.insert("sched_relax_domain_level".into(), level.into());
    Value::Object(m)
}

/// Picks the first v1 blkio source, in runc's order, whose first file has
/// entries: BFQ with debug counters, plain BFQ, CFQ (kernels before 5.0), then
/// the throttle counters every kernel keeps. An inactive scheduler's files
/// exist but stay empty, hence "has entries" rather than "exists".
fn blkio_v1(dir: &Path) -> Option<Map<String, Value>> {
    let groups: [(&str, &[(&str, &str)]); 5] = [
        ("blkio.bfq.", &BLKIO_FILES),
        ("blkio.bfq.", &BLKIO_FILES[6..]),
        ("blkio.", &BLKIO_FILES),
        ("blkio.throttle.", &BLKIO_FILES[6..]),
        ("blkio.throttle.", &BLKIO_THROTTLE_BASE),
    ];
    let (prefix, files) = groups.into_iter().find(|(prefix, files)| {
        !blkio_entries(dir, &format!("{prefix}{}", files[0].0)).is_empty()
    })?;
    let mut m = Map::new();
    for (file, key) in files {
        let list = blkio_entries(dir, &format!("{prefix}{file}"));
        if !list.is_empty() {
            m.insert((*key).into(), Value::Array(list));
        }
    }
    Some(m)
}

/// Lines are "8:0 Read 123" or, for sectors and time, "8:0 123"; the closing
/// "Total 123" line names no device and is left out, as runc does.
fn blkio_entries(dir: &Path, file: &str) -> Vec<Value> {
    let text = slurp(dir, file).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dev, op, value) = match f[..] {
            [dev, op, value] => (dev, op, value),
            [dev, value] => (dev, "", value),
            _ => continue,
        };
        if let (Some((major, minor)), Ok(value)) = (parse_dev(dev), value.parse()) {
            out.push(blk_entry(major, minor, op, value));
        }
    }
    out
}

/// Every field of runc's BlkioEntry is omitempty, so a zero minor or value
/// disappears from the output.
fn blk_entry(major: u64, minor: u64, op: &str, value: u64) -> Value {
    let mut m = obj(&[
        ("major", major, false),
        ("minor", minor, false),
        ("value", value, false),
    ]);
    if !op.is_empty() {
        m.insert("op".into(), op.into());
    }
    Value::Object(m)
}

fn parse_dev(dev: &str) -> Option<(u64, u64)> {
    let (major, minor) = dev.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// "0-3,8" → [0, 1, 2, 3, 8]
fn id_list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) {
            out.extend(lo..=hi);
        }
    }
    out
}

/// An object from (key, value, keep_zero) triples; keep_zero is false for the
/// fields runc tags omitempty.
fn obj(fields: &[(&str, u64, bool)]) -> Map<String, Value> {
    let mut m = Map::new();
    for &(key, value, keep_zero) in fields {
        if keep_zero || value != 0 {
            m.insert(key.into(), value.into());
        }
    }
    m
}

fn put(m: &mut Map<String, Value>, key: &str, value: u64) {
    if value != 0 {
        m.insert(key.into(), value.into());
    }
}

/// A hybrid host can show throttling counters in both hierarchies; only the
/// one enforcing the quota counts, so the larger figure is the real one.
fn bump(m: &mut Map<String, Value>, key: &str, value: u64) {
    let old = m.get(key).and_then(Value::as_u64).unwrap_or(0);
    put(m, key, old.max(value));
}

fn has(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

fn slurp(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// A single-number file. "max" means unlimited and reads as u64::MAX, as runc
/// reports v2 limits; a negative number is v1's "unset" and reads as 0.
fn num(dir: &Path, file: &str) -> Option<u64> {
    let text = slurp(dir, file)?;
    match text.trim() {
        "max" => Some(u64::MAX),
        t => t.parse().ok().or_else(|| t.parse::<i64>().ok().map(|_| 0)),
    }
}

/// A whitespace-separated list of numbers, e.g. cpuacct.usage_percpu.
fn numbers(dir: &Path, file: &str) -> Vec<u64> {
    let text = slurp(dir, file).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// "key value" lines; a line whose value isn't a u64 is skipped.
fn pairs(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|line| {
        let (k, v) = line.split_once(' ')?;
        Some((k, v.trim().parse().ok()?))
    })
}

fn keyed(text: &str, key: &str) -> u64 {
    pairs(text).find(|(k, _)| *k == key).map_or(0, |(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fake cgroup directory under the temp dir, removed on drop. The spec
    /// has one "file = content" per line, '|' standing for a newline.
    struct Fake(PathBuf);

    impl Fake {
        fn new(spec: &str) -> Self {
            static SEQ: AtomicU32 = AtomicU32::new(0);
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("berth-stats-{}-{n}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            for (name, text) in spec.lines().filter_map(|l| l.split_once(" = ")) {
                fs::write(dir.join(name.trim()), text.replace('|', "\n") + "\n").unwrap();
            }
            Fake(dir)
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn stats(fakes: &[&Fake]) -> Value {
        read(&fakes.iter().map(|f| f.0.clone()).collect::<Vec<_>>())
    }

    fn expect(actual: &Value, expected: &str) {
        let expected: Value = serde_json::from_str(expected).unwrap();
        assert_eq!(*actual, expected);
    }

    #[test]
    fn v1_hierarchies() {
        let cpuacct = Fake::new(
            "cpuacct.usage = 3000000000
             cpuacct.usage_percpu = 1000000000 2000000000
             cpuacct.usage_all = cpu user system|0 700 300|1 1500 500
             cpuacct.stat = user 150|system 25",
        );
        let cpu = Fake::new("cpu.stat = nr_periods 40|nr_throttled 3|throttled_time 123456");
        let memory = Fake::new(
            "memory.stat = cache 4096|rss 8192|hierarchical_memory_limit 9223372036854771712
             memory.usage_in_bytes = 12288
             memory.max_usage_in_bytes = 20480
             memory.limit_in_bytes = 104857600
             memory.failcnt = 2
             memory.memsw.usage_in_bytes = 16384
             memory.memsw.limit_in_bytes = 209715200
             memory.kmem.usage_in_bytes = 512
             memory.kmem.limit_in_bytes = -1
             memory.kmem.tcp.limit_in_bytes = 9223372036854771712",
        );
        let pids = Fake::new("pids.current = 7\npids.max = max");
        let blkio = Fake::new(
            "blkio.bfq.io_serviced_recursive = Total 0
             blkio.throttle.io_service_bytes_recursive = 8:0 Read 4096|8:0 Write 0|8:16 Total 8192|Total 12288
             blkio.throttle.io_serviced_recursive = 8:0 Read 1|8:0 Write 2|Total 3",
        );
        let cpuset = Fake::new(
            "cpuset.cpus = 0-2,5\ncpuset.mems = 0\ncpuset.cpu_exclusive = 1
             cpuset.sched_load_balance = 1\ncpuset.sched_relax_domain_level = -1",
        );
        let hugetlb = Fake::new(
            "hugetlb.2MB.usage_in_bytes = 4194304
             hugetlb.2MB.max_usage_in_bytes = 6291456
             hugetlb.2MB.failcnt = 1
             hugetlb.1GB.usage_in_bytes = 0
             hugetlb.1GB.rsvd.usage_in_bytes = 1073741824",
        );
        let data = stats(&[&cpuacct, &cpu, &memory, &pids, &blkio, &cpuset, &hugetlb]);
        // cpuacct.stat: 150 and 25 ticks at USER_HZ=100 → 1.5 s and 0.25 s.
        expect(
            &data["cpu"],
            r#"{"usage": {"total": 3000000000, "percpu": [1000000000, 2000000000],
                "percpu_kernel": [300, 500], "percpu_user": [700, 1500],
                "kernel": 250000000, "user": 1500000000},
                "throttling": {"periods": 40, "throttledPeriods": 3, "throttledTime": 123456}}"#,
        );
        expect(
            &data["memory"],
            r#"{"cache": 4096,
                "usage": {"limit": 104857600, "usage": 12288, "max": 20480, "failcnt": 2},
                "swap": {"limit": 209715200, "usage": 16384, "failcnt": 0},
                "kernel": {"limit": 0, "usage": 512, "failcnt": 0},
                "kernelTCP": {"limit": 9223372036854771712, "failcnt": 0},
                "raw": {"cache": 4096, "rss": 8192, "hierarchical_memory_limit": 9223372036854771712}}"#,
        );
        expect(&data["pids"], r#"{"current": 7}"#);
        expect(
            &data["blkio"],
            r#"{"ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 4096},
                {"major": 8, "op": "Write"}, {"major": 8, "minor": 16, "op": "Total", "value": 8192}],
                "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1},
                {"major": 8, "op": "Write", "value": 2}]}"#,
        );
        expect(
            &data["cpuset"],
            r#"{"cpus": [0, 1, 2, 5], "mems": [0], "cpu_exclusive": 1, "mem_hardwall": 0,
                "mem_exclusive": 0, "memory_migrate": 0, "memory_spread_page": 0,
                "memory_spread_slab": 0, "memory_pressure": 0, "sched_load_balance": 1,
                "sched_relax_domain_level": -1}"#,
        );
        expect(
            &data["hugetlb"],
            r#"{"2MB": {"usage": 4194304, "max": 6291456, "failcnt": 1},
                "1GB": {"usage": 1073741824, "failcnt": 0}}"#,
        );
        expect(&data["intel_rdt"], "{}");
        assert_eq!(data["network_interfaces"], Value::Null);
    }

    #[test]
    fn v1_fallback_files() {
        let d = Fake::new(
            "cpuacct.usage = 10
             cpuacct.usage_percpu_sys = 1 2
             cpuacct.usage_percpu_user = 3 4
             cpuacct.usage_sys = 3
             cpuacct.usage_user = 7
             blkio.throttle.io_serviced_recursive = Total 0
             blkio.throttle.io_serviced = 259:0 Read 5
             blkio.throttle.io_service_bytes = 259:0 Read 20480|259:0 Write 0",
        );
        let data = stats(&[&d]);
        expect(
            &data["cpu"]["usage"],
            r#"{"total": 10, "percpu_kernel": [1, 2], "percpu_user": [3, 4], "kernel": 3, "user": 7}"#,
        );
        expect(
            &data["blkio"],
            r#"{"ioServicedRecursive": [{"major": 259, "op": "Read", "value": 5}],
                "ioServiceBytesRecursive": [{"major": 259, "op": "Read", "value": 20480},
                {"major": 259, "op": "Write"}]}"#,
        );
    }

    #[test]
    fn v2_unified() {
        let d = Fake::new(
            "cgroup.controllers = cpu io memory pids hugetlb
             cpu.stat = usage_usec 2500|user_usec 2000|system_usec 500|nr_periods 10|nr_throttled 4|throttled_usec 7
             memory.current = 1048576
             memory.max = max
             memory.peak = 2097152
             memory.swap.current = 4096
             memory.swap.max = 1000000
             memory.events = low 0|high 0|max 5|oom 1|oom_kill 1
             memory.stat = anon 900000|file 100000
             pids.current = 3
             pids.max = 100
             io.stat = 8:0 rbytes=180224 wbytes=4096 rios=3 wios=1 dbytes=9 dios=1|253:1 rbytes=0 wbytes=0 rios=0 wios=0
             hugetlb.2MB.current = 2097152
             hugetlb.2MB.max = max
             hugetlb.2MB.events = max 2
             hugetlb.2MB.rsvd.current = 4194304",
        );
        let data = stats(&[&d]);
        // µs → ns.
        expect(
            &data["cpu"],
            r#"{"usage": {"total": 2500000, "kernel": 500000, "user": 2000000},
                "throttling": {"periods": 10, "throttledPeriods": 4, "throttledTime": 7000}}"#,
        );
        // swap is memory+swap as in v1; a finite swap.max plus an unlimited
        // memory.max saturates rather than wrapping around.
        expect(
            &data["memory"],
            r#"{"cache": 100000, "raw": {"anon": 900000, "file": 100000},
                "usage": {"limit": 18446744073709551615, "usage": 1048576, "max": 2097152, "failcnt": 5},
                "swap": {"limit": 18446744073709551615, "usage": 1052672, "failcnt": 0},
                "kernel": {"limit": 0, "failcnt": 0}, "kernelTCP": {"limit": 0, "failcnt": 0}}"#,
        );
        expect(&data["pids"], r#"{"current": 3, "limit": 100}"#);
        expect(
            &data["blkio"],
            r#"{"ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 180224},
                {"major": 8, "op": "Write", "value": 4096},
                {"major": 253, "minor": 1, "op": "Read"}, {"major": 253, "minor": 1, "op": "Write"}],
                "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 3},
                {"major": 8, "op": "Write", "value": 1},
                {"major": 253, "minor": 1, "op": "Read"}, {"major": 253, "minor": 1, "op": "Write"}]}"#,
        );
        expect(
            &data["hugetlb"],
            r#"{"2MB": {"usage": 4194304, "failcnt": 2}}"#,
        );
    }

    #[test]
    fn v2_swap_limit_adds_finite_memory_limit() {
        let d = Fake::new(
            "memory.current = 100\nmemory.max = 1000\nmemory.swap.current = 10
             memory.swap.max = 500\nmemory.swap.events = high 0|max 4|fail 0",
        );
        let data = stats(&[&d]);
        expect(
            &data["memory"]["swap"],
            r#"{"limit": 1500, "usage": 110, "failcnt": 4}"#,
        );
        assert!(data["memory"].get("raw").is_none());
    }

    #[test]
    fn hybrid_prefers_cpuacct_in_any_order() {
        let v1 = Fake::new("cpuacct.usage = 999\ncpuacct.stat = user 1|system 2");
        let v2 = Fake::new("cpu.stat = usage_usec 5|user_usec 4|system_usec 1");
        for order in [[&v1, &v2], [&v2, &v1]] {
            let usage = &stats(&order)["cpu"]["usage"];
            expect(
                usage,
                r#"{"total": 999, "kernel": 20000000, "user": 10000000}"#,
            );
        }
    }

    #[test]
    fn missing_and_garbage_files_give_zeroes() {
        let d =
            Fake::new("memory.usage_in_bytes = garbage\npids.current = \ncpu.stat = nr_periods x");
        let gone = std::env::temp_dir().join("berth-stats-does-not-exist");
        let data = read(&[d.0.clone(), gone]);
        expect(
            &data["cpu"],
            r#"{"usage": {"kernel": 0, "user": 0}, "throttling": {}}"#,
        );
        expect(&data["memory"]["usage"], r#"{"limit": 0, "failcnt": 0}"#);
        for key in ["pids", "blkio", "hugetlb", "intel_rdt"] {
            expect(&data[key], "{}");
        }
        assert_eq!(data["cpuset"]["sched_relax_domain_level"], 0);
        assert!(data["cpuset"].get("cpus").is_none());
        let ev = event("abc", &[]);
        expect(&ev["type"], r#""stats""#);
        expect(&ev["id"], r#""abc""#);
        assert_eq!(ev["data"]["network_interfaces"], Value::Null);
    }

    #[test]
    fn real_v1_memory_cgroup_of_this_process() {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:")?.split_whitespace().nth(1));
        if euid != Some("0") {
            println!("skipped: not root, the memory cgroup may be unreadable");
            return;
        }
        let own = fs::read_to_string("/proc/self/cgroup").unwrap();
        let Some(path) = own.lines().find_map(|l| {
            let (_, rest) = l.split_once(':')?;
            let (ctrls, path) = rest.split_once(':')?;
            ctrls.split(',').any(|c| c == "memory").then_some(path)
        }) else {
            println!("skipped: no v1 memory hierarchy in /proc/self/cgroup");
            return;
        };
        let dir = Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
        if !dir.join("memory.usage_in_bytes").exists() {
            println!("skipped: {} is not a v1 memory cgroup", dir.display());
            return;
        }
        let data = read(&[dir]);
        let usage = data["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
        assert!(usage > 0, "a running test process uses memory: {data}");
        assert!(
            data["memory"]["raw"]
                .as_object()
                .is_some_and(|r| !r.is_empty())
        );
    }
}
