//! Shared harness: each test gets its own `--root`, bundle directory and host scratch dir,
//! all sharing one busybox rootfs made by test-bundles/make-bundle.sh. Commands run with a
//! hang guard: a berth invocation that takes over 60 s fails the test.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// The shared default bundle (rootfs + template config.json), made once per test run.
pub fn default_bundle() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("default-bundle");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-bundles/make-bundle.sh");
        let st = Command::new("bash")
            .arg(script)
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("run make-bundle.sh");
        assert!(st.success(), "make-bundle.sh failed");
        dir
    })
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success; stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        self
    }
    /// Asserts exit 1 with a one-line error on stderr containing every `needle`.
    pub fn fails_with(&self, needles: &[&str]) -> &Self {
        self.fails_code(1, needles)
    }

    /// `exec`'s failures exit 255, as runc's (`fatalWithCode(…, 255)`), so a caller can
    /// tell them from the exec'd process's own exit code 1.
    pub fn exec_fails_with(&self, needles: &[&str]) -> &Self {
        self.fails_code(255, needles)
    }

    /// Asserts exit `code` with a one-line error on stderr containing every `needle`.
    pub fn fails_code(&self, code: i32, needles: &[&str]) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}; stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.contains("warning:"))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected a one-line error, got: {:?}",
            self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "error {:?} lacks {n:?}",
                self.stderr
            );
        }
        self
    }
}

/// Like [`run_cmd`], with stdin from `input`.
pub fn run_cmd_stdin(cmd: &mut Command, input: std::fs::File) -> Out {
    cmd.stdin(input);
    run_cmd_keep_stdin(cmd, Duration::from_secs(60))
}

/// Runs a command with stdin closed and a hang guard. Output goes to files, not pipes:
/// after `create` the container keeps berth's stdio, so a pipe would never reach EOF.
pub fn run_cmd(cmd: &mut Command, limit: Duration) -> Out {
    cmd.stdin(Stdio::null());
    run_cmd_keep_stdin(cmd, limit)
}

fn run_cmd_keep_stdin(cmd: &mut Command, limit: Duration) -> Out {
    let so = tempfile::tempfile().expect("tempfile");
    let se = tempfile::tempfile().expect("tempfile");
    let mut child = cmd
        .stdout(so.try_clone().unwrap())
        .stderr(se.try_clone().unwrap())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hang: {:?} did not finish within {limit:?}", cmd);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let read = |mut f: std::fs::File| {
        use std::io::Seek;
        let mut s = String::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_string(&mut s).unwrap();
        s
    };
    use std::os::unix::process::ExitStatusExt;
    Out {
        code: status.code().unwrap_or(128 + status.signal().unwrap_or(0)),
        stdout: read(so),
        stderr: read(se),
    }
}

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub bundle: PathBuf,
    /// Host directory bind-mounted at /out in the container (read-write).
    pub out: PathBuf,
    pub config: Value,
}

/// A test that fails between `create` and its own cleanup would leave the container (its
/// init waiting on the FIFO, its cgroups) on the host: whatever is still under this test's
/// --root is force-deleted when the Env goes, pass or fail.
impl Drop for Env {
    fn drop(&mut self) {
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = Command::new(BIN)
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force"])
                .arg(e.file_name())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl Env {
    /// A bundle running `args`, with the default config and /out bound to a host dir.
    pub fn new(args: &[&str]) -> Env {
        let base = default_bundle();
        let tmp = tempfile::Builder::new()
            .prefix("berth-it-")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().join("root");
        let bundle = tmp.path().join("bundle");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(base.join("config.json")).unwrap()).unwrap();
        config["root"]["path"] = json!(base.join("rootfs"));
        config["process"]["args"] = json!(args);
        config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]
        }));
        Env {
            tmp,
            root,
            bundle,
            out,
            config,
        }
    }

    /// Unique container id for this test process.
    pub fn id(&self) -> String {
        format!(
            "it{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// Sets a value by JSON pointer ("/process/cwd"), creating objects on the way.
    pub fn set(&mut self, pointer: &str, v: Value) -> &mut Self {
        let mut cur = &mut self.config;
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        for p in &parts[..parts.len() - 1] {
            if cur.get(*p).is_none() || cur[*p].is_null() {
                cur[*p] = json!({});
            }
            cur = &mut cur[*p];
        }
        cur[parts[parts.len() - 1]] = v;
        self
    }

    /// Appends to an array by JSON pointer, creating it if needed.
    pub fn push(&mut self, pointer: &str, v: Value) -> &mut Self {
        if self.config.pointer(pointer).is_none_or(|x| x.is_null()) {
            self.set(pointer, json!([]));
        }
        self.config
            .pointer_mut(pointer)
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(v);
        self
    }

    /// A new user namespace mapping container ids 0..65536 to host ids from `uid`/`gid`.
    pub fn with_userns(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.push("/linux/namespaces", json!({"type": "user"}));
        self.set(
            "/linux/uidMappings",
            json!([{"containerID": 0, "hostID": uid, "size": 65536}]),
        );
        self.set(
            "/linux/gidMappings",
            json!([{"containerID": 0, "hostID": gid, "size": 65536}]),
        )
    }

    pub fn write_config(&self) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// `berth --root <root> ARGS…`
    pub fn berth(&self, args: &[&str]) -> Out {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.root).args(args);
        run_cmd(&mut c, Duration::from_secs(60))
    }

    /// Writes config.json and runs the container in the foreground.
    pub fn run(&self) -> Out {
        self.write_config();
        let id = self.id();
        let out = self.berth(&["run", "--bundle", self.bundle.to_str().unwrap(), &id]);
        self.assert_clean(&id);
        out
    }

    /// Writes config.json, starts a container detached (`run --detach`), returns its id.
    pub fn start_detached(&self) -> String {
        self.write_config();
        let id = self.id();
        self.berth(&[
            "run",
            "--detach",
            "--bundle",
            self.bundle.to_str().unwrap(),
            &id,
        ])
        .ok();
        id
    }

    /// A private copy of the default rootfs at <bundle>/rootfs, for tests that change it.
    pub fn private_rootfs(&self) -> PathBuf {
        let rootfs = self.bundle.join("rootfs");
        let st = Command::new("cp")
            .arg("-a")
            .arg(default_bundle().join("rootfs"))
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(st.success(), "copying the rootfs failed");
        rootfs
    }

    /// The same bundle run by runc, the oracle (its own --root beside berth's), so a test
    /// can compare what each runtime's container sees.
    pub fn run_runc(&self) -> Out {
        const RUNC: &str = "/usr/sbin/runc";
        assert!(Path::new(RUNC).exists(), "runc is the oracle: install it");
        self.write_config();
        let id = format!("{}-runc", self.id());
        let root = self.tmp.path().join("runc-root");
        let out = run_cmd(
            Command::new(RUNC).arg("--root").arg(&root).args([
                "run",
                "--bundle",
                self.bundle.to_str().unwrap(),
                &id,
            ]),
            Duration::from_secs(60),
        );
        let _ = run_cmd(
            Command::new(RUNC)
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force", &id]),
            Duration::from_secs(60),
        );
        out
    }

    /// Writes config.json and creates container `id`.
    pub fn create(&self, id: &str) -> Out {
        self.write_config();
        self.berth(&["create", "--bundle", self.bundle.to_str().unwrap(), id])
    }

    pub fn status(&self, id: &str) -> String {
        let o = self.berth(&["state", id]);
        o.ok();
        let v: Value = serde_json::from_str(&o.stdout).expect("state JSON");
        v["status"].as_str().unwrap().to_string()
    }

    /// Waits until the container reports `want`, up to 10 s.
    pub fn wait_status(&self, id: &str, want: &str) {
        let start = Instant::now();
        loop {
            let s = self.status(id);
            if s == want {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "status stayed {s}, wanted {want}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Nothing of container `id` is left: no state dir, no cgroup dir, no mount of ours.
    pub fn assert_clean(&self, id: &str) {
        assert!(
            !self.root.join(id).exists(),
            "state dir of {id} left behind"
        );
        for h in cgroup_mounts() {
            let p = h.join("berth").join(id);
            assert!(!p.exists(), "cgroup {} left behind", p.display());
        }
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let tmp = self.tmp.path().to_string_lossy().to_string();
        assert!(
            !mi.contains(&tmp),
            "a mount under {tmp} is left in the host mount namespace"
        );
        let pids = pids_with_env_marker(id);
        assert!(pids.is_empty(), "processes of {id} left: {pids:?}");
    }

    /// A file the container wrote under /out.
    pub fn read_out(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).unwrap_or_default()
    }
}

/// Every cgroup hierarchy mount point on the host.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .map(|l| PathBuf::from(l.split(' ').nth(4).unwrap()))
        .collect()
}

/// Host processes whose cgroup path names container `id`.
fn pids_with_env_marker(id: &str) -> Vec<i32> {
    let needle = format!("/berth/{id}\n");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|c| c.contains(&needle))
        })
        .collect()
}

/// Whether this kernel offers `file` in the v1 hierarchy `controller` (or "unified", the
/// cgroup2 mount): tests ask for a resource only where the host can grant it.
pub fn host_cgroup_file(controller: &str, file: &str) -> bool {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(file)
        .exists()
        || (controller == "unified" && unified_offers(file))
}

/// A cgroup2 file exists only below the root for some controllers (hugetlb.*): ask
/// cgroup.controllers for the controller and the kernel for the page size.
fn unified_offers(file: &str) -> bool {
    let ctrl = file.split('.').next().unwrap_or_default();
    let listed = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|c| c == ctrl));
    match file
        .strip_prefix("hugetlb.")
        .and_then(|f| f.split('.').next())
    {
        Some("2MB") => listed && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists(),
        Some("1GB") => listed && Path::new("/sys/kernel/mm/hugepages/hugepages-1048576kB").exists(),
        _ => listed,
    }
}

/// A disk's major:minor for I/O throttling (virtio, SCSI or NVMe), if the host has one.
pub fn host_block_device() -> Option<(u32, u32)> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| ["vd", "sd", "nvme", "xvd"].iter().any(|p| n.starts_with(p)))
        .collect();
    names.sort();
    let dev = std::fs::read_to_string(format!("/sys/block/{}/dev", names.first()?)).ok()?;
    let (major, minor) = dev.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The host's namespace inode for `kind` ("net", "uts"…).
pub fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// No process on the host holds an fd to anything under `dir` (state dir, bundle, FIFO).
pub fn assert_no_fds_into(dir: &Path) {
    let dir = dir.to_string_lossy().to_string();
    for pid in std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
    {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(t) = std::fs::read_link(fd.path()) {
                assert!(
                    !t.to_string_lossy().starts_with(&dir),
                    "process {pid} still holds {}",
                    t.display()
                );
            }
        }
    }
}

/// No child of the test process stays a zombie (berth commands are reaped by the harness;
/// a zombie that outlives a short grace period was lost).
pub fn assert_no_zombie_children() {
    let me = std::process::id().to_string();
    let zombies = || -> Vec<String> {
        let Ok(d) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        d.flatten()
            .filter_map(|e| {
                let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                let rest = &stat[stat.rfind(')')? + 2..];
                let mut f = rest.split(' ');
                let (state, ppid) = (f.next()?, f.next()?);
                (state == "Z" && ppid == me).then(|| e.file_name().to_string_lossy().into())
            })
            .collect()
    };
    let first = zombies();
    if first.is_empty() {
        return;
    }
    // Other tests of this process reap their own children a few ms late.
    std::thread::sleep(Duration::from_millis(500));
    let still: Vec<String> = zombies()
        .into_iter()
        .filter(|z| first.contains(z))
        .collect();
    assert!(still.is_empty(), "zombie children left: {still:?}");
}
