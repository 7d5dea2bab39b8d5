//! containerd with berth as the shim's runc binary (`ctr run --runc-binary <berth>`), one
//! private containerd daemon per test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{IMAGE, LIMIT, Scratch, image_dir, installed, ok, unique};
use crate::common::{Out, run_cmd};

pub(super) struct Containerd {
    s: Scratch,
    ns: String,
}

/// Starts containerd with `config` (whose `[grpc] address` is `<scratch>/c.sock`), its log
/// in the scratch dir; returns the socket once it listens.
pub(super) fn daemon(s: &mut Scratch, config: &Path) -> PathBuf {
    let log = s.path().join("containerd.log");
    let child = Command::new("containerd")
        .arg("--config")
        .arg(config)
        .args(["--log-level", "debug"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start containerd");
    s.daemons.push(child);
    s.logs.push(log);
    let sock = s.path().join("c.sock");
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "containerd did not listen on {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sock
}

impl Containerd {
    /// A private containerd daemon with the test image imported, or None (skip).
    pub(super) fn start() -> Option<Containerd> {
        if !installed(
            "containerd",
            &["containerd", "ctr", "containerd-shim-runc-v2"],
        ) {
            return None;
        }
        let mut s = Scratch::new("berth-containerd-");
        let d = s.path().to_str().unwrap().to_string();
        let config = s.path().join("config.toml");
        // The CRI plugin is not used here; off, the daemon starts faster and leaves the
        // host's CNI setup alone. /opt/containerd would otherwise be made on the host.
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/c.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
            ),
        )
        .unwrap();
        daemon(&mut s, &config);
        let ns = unique("berth");
        // The shim keeps runc-style state in /run/containerd/runc/<namespace>.
        let ns2 = ns.clone();
        let d2 = PathBuf::from(&d);
        s.cleanups.push(Box::new(move || {
            let ctr = |args: &[&str]| {
                let mut c = Command::new("ctr");
                c.arg("-a").arg(d2.join("c.sock")).args(["-n", &ns2]);
                run_cmd(c.args(args), LIMIT)
            };
            let tasks = ctr(&["task", "ls", "-q"]).stdout;
            for t in tasks.lines() {
                let _ = ctr(&["task", "rm", "-f", t]);
            }
            let cs = ctr(&["containers", "ls", "-q"]).stdout;
            for c in cs.lines() {
                let _ = ctr(&["containers", "rm", c]);
            }
            let _ = std::fs::remove_dir(Path::new("/run/containerd/runc").join(&ns2));
            // cgroupsPath is /<namespace>/<id>: the runtime removes the container's own
            // directory, as runc does, not the namespace's, which is the test's to remove.
            for h in std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = std::fs::remove_dir(h.path().join(&ns2));
            }
        }));
        let c = Containerd { s, ns };
        let image = image_dir().join("image.tar");
        ok(
            &c.ctr(&["images", "import", image.to_str().unwrap()]),
            "ctr images import",
        );
        Some(c)
    }

    fn command(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a")
            .arg(self.s.path().join("c.sock"))
            .args(["-n", &self.ns]);
        c
    }

    pub(super) fn ctr(&self, args: &[&str]) -> Out {
        run_cmd(self.command().args(args), LIMIT)
    }

    /// `ctr run --runc-binary RUNTIME OPTS IMAGE ID ARGS`, given up on after `limit`.
    pub(super) fn run_with(
        &self,
        runtime: &str,
        image: &str,
        id: &str,
        args: &[&str],
        limit: std::time::Duration,
    ) -> Out {
        let mut a = vec!["run", "--rm", "--runc-binary", runtime, image, id];
        a.extend_from_slice(args);
        run_cmd(self.command().args(&a), limit)
    }

    /// `ctr run --runc-binary berth OPTS IMAGE ID ARGS`
    fn run(&self, opts: &[&str], id: &str, args: &[&str]) -> Out {
        let rt = crate::engines::runtime();
        let mut a = vec!["run", "--runc-binary", rt.as_str()];
        a.extend_from_slice(opts);
        a.push(IMAGE);
        a.push(id);
        a.extend_from_slice(args);
        self.ctr(&a)
    }

    /// Waits until `ctr task ls` shows the task with `status`.
    pub(super) fn wait_status(&self, id: &str, status: &str) {
        let start = Instant::now();
        loop {
            let o = self.ctr(&["task", "ls"]);
            let line = o.stdout.lines().find(|l| l.starts_with(id)).unwrap_or("");
            if line.split_whitespace().nth(2) == Some(status) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "task {id} not {status}: {}",
                o.stdout
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn run_foreground_exit_code_and_output() {
    let Some(c) = Containerd::start() else { return };
    let o = c.run(
        &["--rm"],
        &unique("fg"),
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(o.code, 3, "stderr: {}", o.stderr);
    assert_eq!(o.stdout, "out\n");
    assert!(o.stderr.contains("err"), "{}", o.stderr);
    let host = c.s.path().join("vol");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from-host\n").unwrap();
    let mount = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        host.display()
    );
    let o = c.run(
        &[
            "--rm",
            "--env",
            "A=b",
            "--cwd",
            "/tmp",
            "--read-only",
            "--seccomp",
            "--cap-drop",
            "CAP_CHOWN",
            "--mount",
            &mount,
        ],
        &unique("opts"),
        &[
            "sh",
            "-c",
            "echo $A $(pwd); cat /data/in; touch /x 2>/dev/null || echo root-ro; \
             touch /data/x 2>/dev/null || echo data-ro; grep '^Seccomp:' /proc/self/status; \
             chown 5 /tmp 2>/dev/null || echo no-chown",
        ],
    );
    ok(&o, "ctr run with options");
    assert_eq!(
        o.stdout,
        "b /tmp\nfrom-host\nroot-ro\ndata-ro\nSeccomp:\t2\nno-chown\n"
    );
    // A user namespace.
    let o = c.run(
        &[
            "--rm",
            "--uidmap",
            "0:100000:65536",
            "--gidmap",
            "0:100000:65536",
        ],
        &unique("userns"),
        &["sh", "-c", "cat /proc/self/uid_map; id -u"],
    );
    ok(&o, "ctr run --uidmap");
    let words: Vec<&str> = o.stdout.split_whitespace().collect();
    assert_eq!(words, ["0", "100000", "65536", "0"]);
}

#[test]
fn detached_exec_kill_pause_ps_metrics() {
    let Some(c) = Containerd::start() else { return };
    let id = unique("det");
    let o = c.run(
        &["-d", "--memory-limit", "67108864"],
        &id,
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while true; do sleep 0.1; done",
        ],
    );
    ok(&o, "ctr run -d");
    c.wait_status(&id, "RUNNING");
    let o = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "x1",
        &id,
        "sh",
        "-c",
        "echo in-exec; exit 5",
    ]);
    assert_eq!(o.code, 5, "ctr task exec: {}", o.stderr);
    assert_eq!(o.stdout, "in-exec\n");
    let o = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "x2",
        "--cwd",
        "/tmp",
        &id,
        "pwd",
    ]);
    ok(&o, "ctr task exec --cwd");
    assert_eq!(o.stdout, "/tmp\n");
    let o = c.ctr(&["task", "ps", &id]);
    ok(&o, "ctr task ps");
    assert!(o.stdout.lines().count() >= 2, "{}", o.stdout);
    let o = c.ctr(&["task", "metrics", &id]);
    ok(&o, "ctr task metrics");
    assert!(
        o.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["memory.limit_in_bytes", "67108864"]),
        "{}",
        o.stdout
    );
    ok(&c.ctr(&["task", "pause", &id]), "ctr task pause");
    c.wait_status(&id, "PAUSED");
    ok(&c.ctr(&["task", "resume", &id]), "ctr task resume");
    c.wait_status(&id, "RUNNING");
    ok(&c.ctr(&["task", "kill", &id]), "ctr task kill");
    c.wait_status(&id, "STOPPED");
    let o = c.ctr(&["task", "rm", &id]);
    ok(&o, "ctr task rm");
    assert!(
        o.stderr.contains("exit code 7"),
        "ctr task rm: {} / {}",
        o.stdout,
        o.stderr
    );
    ok(&c.ctr(&["containers", "rm", &id]), "ctr containers rm");
    // kill -s KILL on a second task, from the same image.
    let id2 = unique("kill");
    ok(&c.run(&["-d"], &id2, &["sleep", "100"]), "ctr run -d");
    c.wait_status(&id2, "RUNNING");
    ok(
        &c.ctr(&["task", "kill", "-s", "SIGKILL", &id2]),
        "ctr task kill -s",
    );
    c.wait_status(&id2, "STOPPED");
    ok(&c.ctr(&["task", "rm", &id2]), "ctr task rm");
    ok(&c.ctr(&["containers", "rm", &id2]), "ctr containers rm");
}
