//! End to end: real engines drive the built berth as their OCI runtime (issue 5).
//!
//! Each test starts what it needs under its own temporary directory and removes it all
//! when it ends, pass or fail (the `Scratch` drop guard): podman with a private storage
//! root, run root, tmp dir, file locks and a containers.conf of its own (no default
//! ulimits, which this host cannot grant, and no network, so nothing touches the host's
//! podman state or firewall); containerd as a daemon with its root, state, socket and opt
//! dir in the temp dir and a namespace of its own; dockerd likewise (data and exec roots,
//! socket), without iptables or a bridge. A test is skipped, with the reason printed, only
//! when its engine is not installed (tests/run-all.sh installs podman, containerd and
//! docker.io with apt-get). The image is test-bundles' busybox rootfs, packed by
//! tests/engines/make-image.sh into one archive all three engines load.
//!
//! What the engines still leave on the host, by their own design: containerd's shims put
//! sockets in /run/containerd/s and ctr its fifos in /run/containerd/fifo (fixed paths in
//! containerd 1.6); podman keeps its parent cgroup /libpod_parent, as with any runtime.
//! The CRI path (Kubernetes) is driven by a gRPC client in the test itself (`cri.rs`):
//! Debian 12 packages no crictl.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::common::{Out, run_cmd};

mod containerd;
mod cri;
mod docker;
pub(crate) use docker::spawn_dockerd;
mod podman;
mod podman_rootless;
mod services;

const IMAGE: &str = "localhost/busybox:latest";
/// Any one engine command; a hang fails the test (the guard still cleans up).
const LIMIT: Duration = Duration::from_secs(60);

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this test process and call.
pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(prog))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Checks that every program is installed; otherwise prints why the test is skipped.
pub(crate) fn installed(engine: &str, progs: &[&str]) -> bool {
    let missing: Vec<&str> = progs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    eprintln!(
        "skipped: {engine} cannot run here, {} not installed (tests/run-all.sh installs it with apt-get)",
        missing.join(", ")
    );
    false
}

/// The image archive (and rootfs tarball), made once per test run.
pub(crate) fn image_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("engine-image");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines/make-image.sh");
        let out = run_cmd(Command::new("bash").arg(script).arg(&dir), LIMIT);
        assert_eq!(out.code, 0, "make-image.sh failed: {}", out.stderr);
        dir
    })
}

#[track_caller]
pub(crate) fn ok(out: &Out, what: &str) {
    assert_eq!(
        out.code, 0,
        "{what} failed\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
}

/// A temp dir with the processes started under it and cleanup steps; dropping it runs the
/// steps (last first), ends what is left of those processes, unmounts everything below the
/// dir and removes it. A failing test also gets the daemon logs printed.
pub(crate) struct Scratch {
    dir: tempfile::TempDir,
    pub(crate) daemons: Vec<Child>,
    pub(crate) cleanups: Vec<Box<dyn FnOnce()>>,
    pub(crate) logs: Vec<PathBuf>,
}

impl Scratch {
    pub(crate) fn new(prefix: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir");
        Scratch {
            dir,
            daemons: Vec::new(),
            cleanups: Vec::new(),
            logs: Vec::new(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Processes whose command line names the temp dir: engine helpers started for this
    /// test (conmon, containerd shims) that its own cleanup did not end.
    fn leftover_pids(&self) -> Vec<i32> {
        let needle = self.path().as_os_str().as_encoded_bytes().to_vec();
        let me = std::process::id() as i32;
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle.as_slice()))
            })
            .collect()
    }

    /// Mount points below the temp dir, deepest (latest) first.
    fn mounts_below(&self) -> Vec<PathBuf> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut v: Vec<PathBuf> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(|m| PathBuf::from(m.replace("\\040", " ")))
            .filter(|m| m.starts_with(self.path()))
            .collect();
        v.reverse();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in &self.logs {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- last lines of {}:", log.display());
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        for f in self.cleanups.drain(..).rev() {
            f();
        }
        for d in &mut self.daemons {
            // SAFETY: plain kill(2) of a child we started and have not reaped.
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let start = Instant::now();
            while d.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = d.kill();
                    let _ = d.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for pid in self.leftover_pids() {
            // SAFETY: kill(2) of a process started for this test (it names our temp dir).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for m in self.mounts_below() {
            let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: valid C string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        // TempDir's own drop removes the directory.
    }
}

/// The host cgroup directory of a running container's process in one v1 hierarchy.
fn host_cgroup(pid: &str, controller: &str) -> PathBuf {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = cg
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls.split(',').any(|c| c == controller).then_some(path)
        })
        .unwrap_or_else(|| panic!("no {controller} cgroup in {cg}"));
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel.trim_start_matches('/'))
}

/// The runtime the engines are given: berth, or another binary named by
/// BERTH_ENGINE_RUNTIME (e.g. /usr/sbin/runc, to show a failure is berth's own).
pub(crate) fn runtime() -> String {
    std::env::var("BERTH_ENGINE_RUNTIME").unwrap_or_else(|_| crate::common::BIN.to_string())
}
