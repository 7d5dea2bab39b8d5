//! cgroup v2 on a real unified hierarchy: every `linux.resources` field as the kernel's
//! files show it, for berth and for runc (the oracle) on the same config. These need a
//! pure cgroup v2 host: they are #[ignore]d everywhere and run by the guest lane
//! (tests/guest/run.sh: `--ignored guest_` in a bookworm guest with systemd and AppArmor),
//! so on a v1 or hybrid host they are listed as ignored, never counted as passed.
//! Lifecycle scenarios (freeze, kill, update, events, nesting) are in cgroups_v2_life.rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Env, Out, host_block_device, run_cmd};

pub const RUNC: &str = "/usr/sbin/runc";
const MIB: i64 = 1 << 20;

/// Asserts this is the host the guest tests are written for; run elsewhere with
/// `--ignored` they fail here instead of asserting something false.
pub fn guest() {
    let pure = crate::common::cgroup_mounts() == [PathBuf::from("/sys/fs/cgroup")]
        && Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert!(
        pure,
        "guest lane test: needs a pure cgroup v2 host (cgroup2 alone at /sys/fs/cgroup); run it with tests/guest/run.sh"
    );
}

/// `runc --root <env's runc root> ARGS…`
pub fn runc(env: &Env, args: &[&str]) -> Out {
    let mut c = Command::new(RUNC);
    c.arg("--root")
        .arg(env.tmp.path().join("runc-root"))
        .args(args);
    run_cmd(&mut c, Duration::from_secs(120))
}

/// The cgroup directory of an absolute cgroupsPath.
pub fn cg_dir(path: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'))
}

pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

pub enum Rt {
    Berth,
    Runc,
}

impl Rt {
    pub fn cmd(&self, env: &Env, args: &[&str]) -> Out {
        match self {
            Rt::Berth => env.berth(args),
            Rt::Runc => runc(env, args),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Rt::Berth => "berth",
            Rt::Runc => "runc",
        }
    }
}

/// Creates a container with runtime `rt` in its own cgroup /berth-v2/<id>, hands its
/// directory to `look`, then deletes it and asserts the directory went with it.
pub fn with_created<T>(env: &mut Env, rt: &Rt, look: impl FnOnce(&Env, &Path, &str) -> T) -> T {
    let id = format!("{}-{}", env.id(), rt.name());
    let path = format!("/berth-v2/{id}");
    env.set("/linux/cgroupsPath", json!(path));
    env.write_config();
    rt.cmd(
        env,
        &["create", "--bundle", env.bundle.to_str().unwrap(), &id],
    )
    .ok();
    let dir = cg_dir(&path);
    let out = look(env, &dir, &id);
    rt.cmd(env, &["delete", "--force", &id]).ok();
    assert!(
        !dir.exists(),
        "{}: {} left behind",
        rt.name(),
        dir.display()
    );
    out
}

/// The values of `files` in the container's cgroup, for berth and for runc.
pub fn both(env: &mut Env, files: &[&str]) -> (Vec<String>, Vec<String>) {
    let grab =
        |_: &Env, dir: &Path, _: &str| files.iter().map(|f| read(dir, f)).collect::<Vec<_>>();
    let b = with_created(env, &Rt::Berth, grab);
    let r = with_created(env, &Rt::Runc, grab);
    (b, r)
}

/// berth's values are `want`, and runc's are the same.
fn same(env: &mut Env, want: &[(&str, &str)]) {
    let files: Vec<&str> = want.iter().map(|(f, _)| *f).collect();
    let (b, r) = both(env, &files);
    for (i, (f, v)) in want.iter().enumerate() {
        assert_eq!(b[i], *v, "berth: {f}");
        assert_eq!(b[i], r[i], "{f}: berth {:?}, runc {:?}", b[i], r[i]);
    }
}

fn env_with(resources: Value) -> Env {
    let mut env = Env::new(&["sleep", "100"]);
    env.set("/linux/resources", resources);
    env
}

#[test]
#[ignore = "guest lane: needs a pure cgroup v2 host (tests/guest/run.sh)"]
fn guest_cgv2_memory_max_low_swap_high_oom_group() {
    guest();
    let mut env = env_with(json!({
        "memory": {"limit": 64 * MIB, "reservation": 32 * MIB, "swap": 96 * MIB},
        "unified": {"memory.high": (48 * MIB).to_string(), "memory.oom.group": "1"},
        "devices": [{"allow": false, "access": "rwm"}]
    }));
    let mut want = vec![
        ("memory.max", (64 * MIB).to_string()),
        ("memory.low", (32 * MIB).to_string()),
        ("memory.high", (48 * MIB).to_string()),
        ("memory.oom.group", "1".to_string()),
    ];
    // Swap accounting can be off (swapaccount=0): then there is no memory.swap.max, and
    // both runtimes must refuse the swap limit rather than drop it.
    if Path::new("/sys/fs/cgroup/system.slice/memory.swap.max").exists() {
        want.push(("memory.swap.max", (32 * MIB).to_string()));
    }
    let want: Vec<(&str, &str)> = want.iter().map(|(f, v)| (*f, v.as_str())).collect();
    same(&mut env, &want);
}

#[test]
#[ignore = "guest lane: needs a pure cgroup v2 host (tests/guest/run.sh)"]
fn guest_cgv2_cpu_weight_and_max() {
    guest();
    let mut env = env_with(json!({
        "cpu": {"shares": 2048, "quota": 50000, "period": 100000}
    }));
    // runc 1.1.5's conversion: weight = 1 + (shares - 2) * 9999 / 262142.
    same(
        &mut env,
        &[("cpu.weight", "79"), ("cpu.max", "50000 100000")],
    );
}

/// cpu.max.burst and cpu.idle: berth alone (runc 1.1.5 sets burst only from 1.2 on, and
/// its idle handling differs by version), asserted against the kernel's files.
#[test]
#[ignore = "guest lane: needs a pure cgroup v2 host (tests/guest/run.sh)"]
fn guest_cgv2_cpu_burst_and_idle() {
    guest();
    let mut env = env_with(json!({
        "cpu": {"quota": 20000, "period": 100000, "burst": 10000}
    }));
    let got = with_created(&mut env, &Rt::Berth, |_, d, _| {
        (read(d, "cpu.max"), read(d, "cpu.max.burst"))
    });
    assert_eq!(got, ("20000 100000".into(), "10000".into()));
    let mut env = env_with(json!({"cpu": {"idle": 1}}));
    let idle = with_created(&mut env, &Rt::Berth, |_, d, _| read(d, "cpu.idle"));
    assert_eq!(idle, "1");
}

#[test]
#[ignore = "guest lane: needs a pure cgroup v2 host (tests/guest/run.sh)"]
fn guest_cgv2_cpuset_as_the_process_sees_it() {
    guest();
    let mut env = env_with(json!({"cpu": {"cpus": "0", "mems": "0"}}));
    same(
        &mut env,
        &[
            ("cpuset.cpus", "0"),
            ("cpuset.mems", "0"),
            ("cpuset.cpus.effective", "0"),
        ],
    );
    // The process itself may run on CPU 0 only.
    env.config["process"]["args"] = json!(["sh", "-c", "grep Cpus_allowed_list /proc/self/status"]);
    env.set(
        "/linux/cgroupsPath",
        json!(format!("/berth-v2/{}", env.id())),
    );
    let out = env.run();
    out.ok();
    assert_eq!(
        out.stdout.split_whitespace().last(),
        Some("0"),
        "{}",
        out.stdout
    );
}

#[test]
#[ignore = "guest lane: needs a pure cgroup v2 host (tests/guest/run.sh)"]
fn guest_cgv2_io_max_and_weight() {
    guest();
    let (major, minor) = host_block_device().expect("the guest has a virtio disk");
    let mut env = env_with(json!({"blockIO": {
        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": MIB}],
        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]
    }}));
    let want = format!("{major}:{minor} rbps={MIB} wbps=max riops=max wiops=100");
    same(&mut env, &[("io.max", want.as_str())]);

    // io.weight exists only where the I/O scheduler offers it (BFQ or iocost): set it
    // there, else berth must refuse it by name rather than drop it.
    let mut env = env_with(json!({"blockIO": {"weight": 500}}));
    env.set("/linux/cgroupsPath", json!("/berth-v2/probe"));
    let offered = ["io.bfq.weight", "io.weight"]
        .iter()
        .any(|f| Path::new("/sys/fs/cgroup/system.slice").join(f).exists());
    if offered {
        let file = ["io.bfq.weight", "io.weight"]
            .into_iter()
            .find(|f| Path::new("/sys/fs/cgroup/system.slice").join(f).exists())
            .unwrap();
        let (b, r) = both(&mut env, &[file]);
        assert_eq!(b, r, "{file}: berth {b:?}, runc {r:?}");
        assert_ne!(b[0], "default 100", "{file} was not set");
    } else {
        let id = env.id();
        env.create(&id).fails_with(&["blockIO.weight"]);
        env.assert_clean(&id);
    }
}

#[test]
#[ignore = "guest lane: needs a pure cgroup v2 host (tests/guest/run.sh)"]
fn guest_cgv2_pids_max_enforced() {
    guest();
    let mut env = env_with(json!({"pids": {"limit": 10}}));
    same(&mut env, &[("pids.max", "10")]);
    // Inside: forks past the limit fail (the shell gives up at the first), and the
    // kernel counts them in pids.events.
    env.config["process"]["args"] = json!([
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids.max > /out/max; \
         i=0; while [ $i -lt 20 ]; do sleep 30 & i=$((i+1)); done 2>/out/err"
    ]);
    let path = format!("/berth-v2/{}", env.id());
    env.set("/linux/cgroupsPath", json!(path));
    let id = env.start_detached();
    let dir = cg_dir(&path);
    let start = std::time::Instant::now();
    while env.status(&id) != "stopped" {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the fork loop never ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(env.read_out("max").trim(), "10", "pids.max inside");
    let events = read(&dir, "pids.events");
    let refused: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max ")?.parse().ok())
        .unwrap_or(0);
    assert!(refused >= 1, "pids.events: {events}");
    assert!(
        env.read_out("err").contains("fork"),
        "{}",
        env.read_out("err")
    );
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
    assert!(!dir.exists());
}

#[test]
#[ignore = "guest lane: needs a pure cgroup v2 host (tests/guest/run.sh)"]
fn guest_cgv2_hugetlb_limit() {
    guest();
    assert!(
        Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists(),
        "the guest kernel offers 2MB huge pages"
    );
    let mut env = env_with(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MIB}]}));
    same(&mut env, &[("hugetlb.2MB.max", "4194304")]);
}

/// rdma and misc: the controllers are enabled for the container; no RDMA device exists in
/// the guest, so a limit on one is refused with the file named, by berth as by runc.
#[test]
#[ignore = "guest lane: needs a pure cgroup v2 host (tests/guest/run.sh)"]
fn guest_cgv2_rdma_and_misc() {
    guest();
    let mut env = env_with(json!({}));
    let files = with_created(&mut env, &Rt::Berth, |_, d, _| {
        (d.join("rdma.max").exists(), d.join("misc.max").exists())
    });
    assert_eq!(
        files,
        (true, true),
        "rdma.max and misc.max in the container's cgroup"
    );
    let devices = std::fs::read_dir("/sys/class/infiniband").map_or(0, |d| d.count());
    assert_eq!(devices, 0, "this test expects no RDMA device in the guest");
    env.set(
        "/linux/resources",
        json!({"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10}}}),
    );
    env.set(
        "/linux/cgroupsPath",
        json!(format!("/berth-v2/{}", env.id())),
    );
    let id = env.id();
    env.create(&id).fails_with(&["rdma.max", "mlx5_1"]);
    env.assert_clean(&id);
    assert!(!cg_dir(&format!("/berth-v2/{id}")).exists());
    let rid = format!("{id}-runc");
    assert_ne!(
        runc(
            &env,
            &["create", "--bundle", env.bundle.to_str().unwrap(), &rid]
        )
        .code,
        0,
        "runc sets a limit on a missing RDMA device"
    );
    runc(&env, &["delete", "--force", &rid]);
}

#[test]
#[ignore = "guest lane: needs a pure cgroup v2 host (tests/guest/run.sh)"]
fn guest_cgv2_unified_keys() {
    guest();
    let mut env = env_with(json!({"unified": {
        "pids.max": "7", "memory.high": "max", "cpu.weight": "150", "memory.swap.high": "max"
    }}));
    let mut want = vec![
        ("pids.max", "7"),
        ("memory.high", "max"),
        ("cpu.weight", "150"),
    ];
    if !Path::new("/sys/fs/cgroup/system.slice/memory.swap.high").exists() {
        env.config["linux"]["resources"]["unified"]
            .as_object_mut()
            .unwrap()
            .remove("memory.swap.high");
    } else {
        want.push(("memory.swap.high", "max"));
    }
    same(&mut env, &want);
}

/// The device rules become an eBPF program on the container's cgroup: a node outside the
/// allow list cannot be opened, one allowed can; runc's container sees the same.
#[test]
#[ignore = "guest lane: needs a pure cgroup v2 host (tests/guest/run.sh)"]
fn guest_cgv2_ebpf_device_filter() {
    guest();
    // The guest's own disk, read-only: no capability needed to open it, so only the
    // device filter decides.
    let (major, minor) = host_block_device().expect("the guest has a virtio disk");
    let script = "for d in disk null; do if (exec 3</dev/$d) 2>/dev/null; then echo $d:open; \
                  else echo $d:denied; fi; done";
    let mut env = Env::new(&["sh", "-c", script]);
    env.push(
        "/linux/devices",
        json!({"path": "/dev/disk", "type": "b", "major": major, "minor": minor, "fileMode": 0o600}),
    );
    let rules = |allow_disk: bool| {
        let mut r = vec![json!({"allow": false, "access": "rwm"})];
        if allow_disk {
            r.push(
                json!({"allow": true, "type": "b", "major": major, "minor": minor, "access": "r"}),
            );
        }
        json!(r)
    };
    for (allow, want) in [
        (false, "disk:denied null:open"),
        (true, "disk:open null:open"),
    ] {
        env.set("/linux/resources/devices", rules(allow));
        env.set(
            "/linux/cgroupsPath",
            json!(format!("/berth-v2/{}", env.id())),
        );
        let b = env.run();
        b.ok();
        let r = env.run_runc();
        r.ok();
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(words(&b.stdout), want, "berth, disk allowed: {allow}");
        assert_eq!(words(&r.stdout), want, "runc, disk allowed: {allow}");
    }
}
