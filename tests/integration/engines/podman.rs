//! podman with berth as its runtime (`podman --runtime <berth>`), one private podman per test.

use std::path::Path;
use std::process::Command;

use super::{IMAGE, LIMIT, Scratch, host_cgroup, image_dir, installed, ok, unique};
use crate::common::{Out, run_cmd};

pub(super) struct Podman {
    s: Scratch,
    runtime: String,
}

/// podman's configuration for a private instance under `d`: no ulimits (this host's
/// bounding set cannot raise RLIMIT_NOFILE), no network, cgroupfs, files instead of journald.
pub(super) fn containers_conf(d: &str) -> String {
    format!(
        r#"[containers]
default_ulimits = []
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
image_copy_tmp_dir = "{d}/tmp"
lock_type = "file"
static_dir = "{d}/storage/libpod"
tmp_dir = "{d}/tmp"
volume_path = "{d}/volumes"
[network]
network_config_dir = "{d}/networks"
"#
    )
}

impl Podman {
    /// A private podman with the test image loaded, or None (skip) without podman.
    fn start() -> Option<Podman> {
        Podman::start_with(&crate::engines::runtime())
    }

    /// The same, with `runtime` (berth, or runc to compare with) as its OCI runtime.
    pub(super) fn start_with(runtime: &str) -> Option<Podman> {
        if !installed("podman", &["podman", "conmon"]) {
            return None;
        }
        let s = Scratch::new("berth-podman-");
        let d = s.path().to_str().unwrap().to_string();
        std::fs::write(s.path().join("containers.conf"), containers_conf(&d)).unwrap();
        let mut p = Podman {
            s,
            runtime: runtime.to_string(),
        };
        let (d2, rt) = (d.clone(), runtime.to_string());
        p.s.cleanups.push(Box::new(move || {
            let _ = run_cmd(
                Podman::command(Path::new(&d2), &rt).args(["rm", "-af", "-t", "0"]),
                LIMIT,
            );
        }));
        let image = image_dir().join("image.tar");
        ok(
            &p.run(&["load", "-i", image.to_str().unwrap()]),
            "podman load",
        );
        Some(p)
    }

    fn command(d: &Path, runtime: &str) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--runtime")
            .arg(runtime);
        c
    }

    pub(super) fn run(&self, args: &[&str]) -> Out {
        self.run_for(args, LIMIT)
    }

    pub(super) fn run_for(&self, args: &[&str], limit: std::time::Duration) -> Out {
        run_cmd(
            Podman::command(self.s.path(), &self.runtime).args(args),
            limit,
        )
    }

    /// `podman run --rm IMAGE sh -c SCRIPT` with `opts` before the image.
    fn sh(&self, opts: &[&str], script: &str) -> Out {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        self.run(&a)
    }
}

#[test]
fn run_exit_code_and_output() {
    let Some(p) = Podman::start() else { return };
    let o = p.sh(&[], "echo out; echo err >&2; exit 3");
    assert_eq!(o.code, 3, "stderr: {}", o.stderr);
    assert_eq!(o.stdout, "out\n");
    assert!(o.stderr.contains("err"), "{}", o.stderr);
    let o = p.run(&["run", "--rm", IMAGE, "echo", "hi"]);
    ok(&o, "podman run echo");
    assert_eq!(o.stdout, "hi\n");
    // The runtime's create errors, as podman maps runc's: not found 127, not executable 126.
    let o = p.run(&["run", "--rm", IMAGE, "/no/such/binary"]);
    assert_eq!(o.code, 127, "stderr: {}", o.stderr);
    assert!(o.stderr.contains("/no/such/binary"), "{}", o.stderr);
    let o = p.run(&["run", "--rm", IMAGE, "nosuchcmd"]);
    assert_eq!(o.code, 127, "stderr: {}", o.stderr);
    let o = p.run(&["run", "--rm", IMAGE, "/etc/passwd"]);
    assert_eq!(o.code, 126, "stderr: {}", o.stderr);
    // Nothing for berth's unknown seccomp names on the user's stderr.
    let o = p.run(&["run", "--rm", IMAGE, "true"]);
    ok(&o, "podman run true");
    assert!(!o.stderr.contains("berth"), "{}", o.stderr);
}

#[test]
fn run_env_user_workdir_and_hostname() {
    let Some(p) = Podman::start() else { return };
    let o = p.sh(
        &[
            "-e",
            "FOO=bar baz",
            "-u",
            "1000:1001",
            "-w",
            "/tmp",
            "--hostname",
            "engine-box",
        ],
        "echo \"$FOO\"; id -u; id -g; pwd; hostname; touch f && echo cwd-writable",
    );
    ok(&o, "podman run -e -u -w");
    assert_eq!(
        o.stdout,
        "bar baz\n1000\n1001\n/tmp\nengine-box\ncwd-writable\n"
    );
}

#[test]
fn run_capabilities_and_seccomp() {
    let Some(p) = Podman::start() else { return };
    let caps = "grep -E '^Cap(Eff|Bnd)' /proc/self/status; grep '^Seccomp:' /proc/self/status";
    let o = p.sh(&["--cap-drop", "all"], caps);
    ok(&o, "podman run --cap-drop all");
    assert_eq!(
        o.stdout,
        "CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nSeccomp:\t2\n"
    );
    // One capability dropped: chown (CAP_CHOWN) fails, mknod (CAP_MKNOD) still works.
    let o = p.sh(
        &["--cap-drop", "CAP_CHOWN"],
        "touch /f; chown 5 /f || echo no-chown; mknod /n c 1 3 && echo mknod-ok",
    );
    ok(&o, "podman run --cap-drop CAP_CHOWN");
    assert_eq!(o.stdout, "no-chown\nmknod-ok\n", "stderr: {}", o.stderr);
    let o = p.sh(
        &["--cap-add", "CAP_SYS_ADMIN"],
        "grep '^CapEff' /proc/self/status",
    );
    ok(&o, "podman run --cap-add");
    let eff = u64::from_str_radix(o.stdout.trim().rsplit('\t').next().unwrap(), 16).unwrap();
    assert_ne!(eff & (1 << 21), 0, "CAP_SYS_ADMIN missing: {}", o.stdout);
    let o = p.sh(
        &["--security-opt", "seccomp=unconfined"],
        "grep '^Seccomp:' /proc/self/status",
    );
    ok(&o, "podman run seccomp=unconfined");
    assert_eq!(o.stdout, "Seccomp:\t0\n");
}

#[test]
fn run_read_only_with_tmpcopyup() {
    let Some(p) = Podman::start() else { return };
    // --read-only puts tmpfs with `tmpcopyup` on /tmp, /run and /var/tmp: each starts with
    // what the image has there (make-image.sh seeds /run), keeping modes and links.
    let o = p.sh(
        &["--read-only"],
        "touch /x 2>/dev/null || echo root-ro; \
         echo w > /tmp/w && echo > /run/w && echo tmp-rw; \
         cat /run/seed /run/sub/file /run/sub/link; \
         stat -c '%a %n' /run /run/seed /tmp /var/tmp; \
         grep ' /run ' /proc/mounts | cut -d' ' -f3",
    );
    ok(&o, "podman run --read-only");
    assert_eq!(
        o.stdout,
        "root-ro\ntmp-rw\nseeded\ndeeper\nseeded\n755 /run\n640 /run/seed\n1777 /tmp\n1777 /var/tmp\ntmpfs\n",
        "stderr: {}",
        o.stderr
    );
}

#[test]
fn run_with_a_volume() {
    let Some(p) = Podman::start() else { return };
    let host = p.s.path().join("vol");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from-host\n").unwrap();
    let spec = format!("{}:/data", host.display());
    let o = p.sh(
        &["-v", &spec],
        "cat /data/in; echo from-container > /data/out",
    );
    ok(&o, "podman run -v");
    assert_eq!(o.stdout, "from-host\n");
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from-container\n"
    );
    let spec = format!("{}:/data:ro", host.display());
    let o = p.sh(&["-v", &spec], "touch /data/x 2>/dev/null || echo vol-ro");
    ok(&o, "podman run -v :ro");
    assert_eq!(o.stdout, "vol-ro\n");
    let o = p.sh(
        &["--tmpfs", "/scratch:rw,size=1m"],
        "df -k /scratch | tail -1",
    );
    ok(&o, "podman run --tmpfs");
    assert!(o.stdout.contains("1024"), "{}", o.stdout);
}

#[test]
fn memory_and_pids_limits() {
    let Some(p) = Podman::start() else { return };
    if !Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        eprintln!("skipped: no cgroup v1 memory controller on this host");
        return;
    }
    // Seen from inside: the container's own cgroups are at /sys/fs/cgroup/<controller>.
    let o = p.sh(
        &["--memory", "64m", "--pids-limit", "20"],
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
    );
    ok(&o, "podman run --memory --pids-limit");
    assert_eq!(o.stdout, "67108864\n20\n");
    // Seen from the host, and enforced: 30 background sleeps cannot all fork.
    let name = unique("lim");
    let o = p.run(&[
        "run",
        "-d",
        "--name",
        &name,
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        IMAGE,
        "sleep",
        "100",
    ]);
    ok(&o, "podman run -d --memory");
    let pid = p.run(&["inspect", "--format", "{{.State.Pid}}", &name]);
    ok(&pid, "podman inspect");
    let pid = pid.stdout.trim();
    let mem = host_cgroup(pid, "memory").join("memory.limit_in_bytes");
    assert_eq!(std::fs::read_to_string(&mem).unwrap(), "67108864\n");
    let pids = host_cgroup(pid, "pids").join("pids.max");
    assert_eq!(std::fs::read_to_string(&pids).unwrap(), "20\n");
    let o = p.run(&[
        "exec",
        &name,
        "sh",
        "-c",
        "n=0; for i in $(seq 30); do sleep 5 2>/dev/null & n=$((n+1)); done; wait; \
         cat /sys/fs/cgroup/pids/pids.events 2>/dev/null || true",
    ]);
    assert!(
        o.stderr.contains("fork") || o.stderr.contains("Resource temporarily unavailable"),
        "the pids limit did not stop forks: {} / {}",
        o.stdout,
        o.stderr
    );
    ok(&p.run(&["rm", "-f", "-t", "0", &name]), "podman rm -f");
}

#[test]
fn detached_exec_logs_pause_stop_rm() {
    let Some(p) = Podman::start() else { return };
    let name = unique("det");
    let o = p.run(&[
        "run",
        "-d",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "echo started; trap 'echo got-term; exit 7' TERM; while true; do sleep 0.1; done",
    ]);
    ok(&o, "podman run -d");
    let o = p.run(&["exec", &name, "sh", "-c", "echo in-exec; exit 5"]);
    assert_eq!(o.code, 5, "podman exec: {}", o.stderr);
    assert_eq!(o.stdout, "in-exec\n");
    let o = p.run(&[
        "exec",
        "-e",
        "X=1",
        "-u",
        "1000",
        "-w",
        "/tmp",
        &name,
        "sh",
        "-c",
        "echo $X $(id -u) $(pwd)",
    ]);
    ok(&o, "podman exec -e -u -w");
    assert_eq!(o.stdout, "1 1000 /tmp\n");
    assert!(!o.stderr.contains("berth"), "{}", o.stderr);
    let o = p.run(&["top", &name]);
    ok(&o, "podman top");
    assert!(o.stdout.contains("sleep"), "{}", o.stdout);
    ok(&p.run(&["pause", &name]), "podman pause");
    let st = p.run(&["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(st.stdout.trim(), "paused");
    ok(&p.run(&["unpause", &name]), "podman unpause");
    let st = p.run(&["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(st.stdout.trim(), "running");
    let o = p.run(&["stop", "-t", "10", &name]);
    ok(&o, "podman stop");
    assert!(
        !o.stderr.contains("resorting to SIGKILL"),
        "SIGTERM did not reach the container: {}",
        o.stderr
    );
    let code = p.run(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(code.stdout.trim(), "7");
    let logs = p.run(&["logs", &name]);
    ok(&logs, "podman logs");
    assert_eq!(logs.stdout, "started\ngot-term\n");
    // Started again from the same bundle, then killed.
    ok(&p.run(&["start", &name]), "podman start");
    ok(&p.run(&["kill", "-s", "KILL", &name]), "podman kill");
    let w = p.run(&["wait", &name]);
    assert_eq!(w.stdout.trim(), "137", "podman wait: {}", w.stderr);
    ok(&p.run(&["rm", &name]), "podman rm");
    let ps = p.run(&["ps", "-aq"]);
    assert_eq!(ps.stdout, "");
}

#[test]
fn run_with_a_tty() {
    let Some(p) = Podman::start() else { return };
    let o = p.sh(&["-t"], "tty; exit 4");
    assert_eq!(o.code, 4, "stderr: {}", o.stderr);
    assert_eq!(o.stdout, "/dev/pts/0\r\n");
    let name = unique("tty");
    ok(
        &p.run(&["run", "-d", "-t", "--name", &name, IMAGE, "sleep", "100"]),
        "podman run -d -t",
    );
    let o = p.run(&["exec", "-t", &name, "tty"]);
    ok(&o, "podman exec -t");
    assert!(o.stdout.starts_with("/dev/pts/"), "{}", o.stdout);
    ok(&p.run(&["rm", "-f", "-t", "0", &name]), "podman rm -f");
}
