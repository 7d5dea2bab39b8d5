//! Docker with berth as an added runtime (`dockerd --add-runtime berth=<berth>`,
//! `docker run --runtime berth`), one private dockerd (and the containerd it starts) per
//! test, without iptables, bridge or network.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{IMAGE, LIMIT, Scratch, host_cgroup, image_dir, installed, ok, unique, which};
use crate::common::{Out, run_cmd};

struct Docker {
    s: Scratch,
    cli: PathBuf,
}

impl Docker {
    fn start() -> Option<Docker> {
        if !installed("Docker", &["dockerd", "docker"]) {
            return None;
        }
        // The CLI packaged with dockerd, else whichever is on PATH.
        let cli = Some(PathBuf::from("/usr/bin/docker"))
            .filter(|p| p.exists())
            .or_else(|| which("docker"))
            .unwrap();
        let mut s = Scratch::new("berth-docker-");
        spawn_dockerd(&mut s, "{}", &[("berth", &crate::engines::runtime())], None);
        let dk = Docker { s, cli };
        let start = Instant::now();
        while dk.docker(&["version"]).code != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "dockerd did not come up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let (cli, sock) = (dk.cli.clone(), dk.s.path().join("d.sock"));
        let mut dk = dk;
        dk.s.cleanups.push(Box::new(move || {
            let ids = run_cmd(command(&cli, &sock).args(["ps", "-aq"]), LIMIT).stdout;
            for id in ids.lines() {
                let _ = run_cmd(command(&cli, &sock).args(["rm", "-f", id]), LIMIT);
            }
        }));
        let image = image_dir().join("image.tar");
        ok(
            &dk.docker(&["load", "-i", image.to_str().unwrap()]),
            "docker load",
        );
        Some(dk)
    }

    fn docker(&self, args: &[&str]) -> Out {
        let sock = self.s.path().join("d.sock");
        run_cmd(command(&self.cli, &sock).args(args), LIMIT)
    }

    /// `docker run --rm --runtime berth --network none OPTS IMAGE sh -c SCRIPT`
    fn sh(&self, opts: &[&str], script: &str) -> Out {
        let mut a = vec!["run", "--rm", "--runtime", "berth", "--network", "none"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        self.docker(&a)
    }
}

fn command(cli: &Path, sock: &Path) -> Command {
    let mut c = Command::new(cli);
    c.arg("-H").arg(format!("unix://{}", sock.display()));
    c
}

#[test]
fn run_exit_code_output_and_options() {
    let Some(dk) = Docker::start() else { return };
    let o = dk.sh(&[], "echo out; echo err >&2; exit 3");
    assert_eq!(o.code, 3, "stderr: {}", o.stderr);
    assert_eq!(o.stdout, "out\n");
    assert!(o.stderr.contains("err"), "{}", o.stderr);
    // Docker fills cpu.shares 0 and blockIO.weight 0 in every config: runc's "unset".
    let o = dk.sh(
        &[
            "-e",
            "A=b",
            "-u",
            "1000",
            "-w",
            "/tmp",
            "--read-only",
            "--cap-drop",
            "all",
            "--memory",
            "64m",
            "--pids-limit",
            "20",
            "--cpu-shares",
            "512",
        ],
        "echo $A $(id -u) $(pwd); touch /x 2>/dev/null || echo root-ro; \
         grep '^CapEff' /proc/self/status; \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
             /sys/fs/cgroup/cpu/cpu.shares",
    );
    ok(&o, "docker run with options");
    assert_eq!(
        o.stdout,
        "b 1000 /tmp\nroot-ro\nCapEff:\t0000000000000000\n67108864\n20\n512\n"
    );
    // Without --cpu-shares the container keeps the default weight, not the minimum.
    let o = dk.sh(&[], "cat /sys/fs/cgroup/cpu/cpu.shares");
    ok(&o, "docker run");
    assert_eq!(o.stdout, "1024\n");
    // Volumes: a host directory read-write, and read-only.
    let host = dk.s.path().join("vol");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from-host\n").unwrap();
    let rw = format!("{}:/data", host.display());
    let o = dk.sh(
        &["-v", &rw],
        "cat /data/in; echo from-container > /data/out",
    );
    ok(&o, "docker run -v");
    assert_eq!(o.stdout, "from-host\n");
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from-container\n"
    );
    let ro = format!("{}:/data:ro", host.display());
    let o = dk.sh(&["-v", &ro], "touch /data/x 2>/dev/null || echo vol-ro");
    ok(&o, "docker run -v :ro");
    assert_eq!(o.stdout, "vol-ro\n");
    let o = dk.sh(&["-t"], "tty");
    ok(&o, "docker run -t");
    assert_eq!(o.stdout, "/dev/pts/0\r\n");
}

#[test]
fn detached_exec_pause_stop_logs_rm() {
    let Some(dk) = Docker::start() else { return };
    let name = unique("det");
    let o = dk.docker(&[
        "run",
        "-d",
        "--runtime",
        "berth",
        "--network",
        "none",
        "--memory",
        "64m",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "echo started; trap 'echo got-term; exit 7' TERM; while true; do sleep 0.1; done",
    ]);
    ok(&o, "docker run -d");
    let o = dk.docker(&["exec", &name, "sh", "-c", "echo in-exec; exit 5"]);
    assert_eq!(o.code, 5, "docker exec: {}", o.stderr);
    assert_eq!(o.stdout, "in-exec\n");
    let o = dk.docker(&[
        "exec",
        "-u",
        "1000",
        "-w",
        "/tmp",
        &name,
        "sh",
        "-c",
        "id -u; pwd",
    ]);
    ok(&o, "docker exec -u -w");
    assert_eq!(o.stdout, "1000\n/tmp\n");
    let pid = dk.docker(&["inspect", "-f", "{{.State.Pid}}", &name]);
    ok(&pid, "docker inspect");
    let mem = host_cgroup(pid.stdout.trim(), "memory").join("memory.limit_in_bytes");
    assert_eq!(std::fs::read_to_string(mem).unwrap(), "67108864\n");
    ok(&dk.docker(&["top", &name]), "docker top");
    // stats read berth's `events --stats`; the limit is the container's.
    let o = dk.docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", &name]);
    ok(&o, "docker stats --no-stream");
    assert!(o.stdout.trim().ends_with("/ 64MiB"), "{}", o.stdout);
    // update goes through `berth update` (memory and swap together, raised past the old
    // swap limit, so the order of the writes matters).
    ok(
        &dk.docker(&["update", "--memory", "96m", "--memory-swap", "192m", &name]),
        "docker update --memory",
    );
    let cg = host_cgroup(pid.stdout.trim(), "memory");
    assert_eq!(
        std::fs::read_to_string(cg.join("memory.limit_in_bytes")).unwrap(),
        "100663296\n"
    );
    assert_eq!(
        std::fs::read_to_string(cg.join("memory.memsw.limit_in_bytes")).unwrap(),
        "201326592\n"
    );
    ok(&dk.docker(&["pause", &name]), "docker pause");
    let st = dk.docker(&["inspect", "-f", "{{.State.Status}}", &name]);
    assert_eq!(st.stdout.trim(), "paused");
    ok(&dk.docker(&["unpause", &name]), "docker unpause");
    let o = dk.docker(&["stop", "-t", "10", &name]);
    ok(&o, "docker stop");
    let code = dk.docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
    assert_eq!(code.stdout.trim(), "7");
    let logs = dk.docker(&["logs", &name]);
    ok(&logs, "docker logs");
    assert_eq!(logs.stdout, "started\ngot-term\n");
    ok(&dk.docker(&["start", &name]), "docker start");
    ok(&dk.docker(&["kill", &name]), "docker kill");
    let w = dk.docker(&["wait", &name]);
    assert_eq!(w.stdout.trim(), "137", "docker wait: {}", w.stderr);
    ok(&dk.docker(&["rm", &name]), "docker rm");
}

/// Starts a private dockerd (and the containerd it starts) under `s`: its own roots, socket
/// `d.sock`, cgroup parent and daemon.json, no iptables, bridge or network, and `runtimes`
/// added by name; `path` replaces its PATH. Everything is undone when `s` drops, and its log
/// is shown if the test fails. The caller waits for `docker version` to answer.
pub(crate) fn spawn_dockerd(
    s: &mut Scratch,
    daemon_json: &str,
    runtimes: &[(&str, &str)],
    path: Option<&str>,
) {
    let d = s.path().to_path_buf();
    std::fs::write(d.join("daemon.json"), daemon_json).unwrap();
    // dockerd writes its trust key to /etc/docker whatever its roots: remove what we made.
    if !Path::new("/etc/docker").exists() {
        s.cleanups.push(Box::new(|| {
            let _ = std::fs::remove_file("/etc/docker/key.json");
            let _ = std::fs::remove_dir("/etc/docker");
        }));
    }
    // A cgroup parent of its own (not /docker), removed at the end like the rest.
    let parent = unique("berth-docker");
    let p2 = parent.clone();
    s.cleanups.push(Box::new(move || {
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join(&p2));
        }
    }));
    let log = d.join("dockerd.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut c = Command::new("dockerd");
    if let Some(p) = path {
        c.env("PATH", p);
    }
    c.args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
        .arg("--data-root")
        .arg(d.join("data"))
        .arg("--exec-root")
        .arg(d.join("exec"))
        .arg("--pidfile")
        .arg(d.join("dockerd.pid"))
        .arg("--config-file")
        .arg(d.join("daemon.json"))
        .arg("-H")
        .arg(format!("unix://{}", d.join("d.sock").display()))
        .arg("--cgroup-parent")
        .arg(format!("/{parent}"));
    for (name, bin) in runtimes {
        c.arg("--add-runtime").arg(format!("{name}={bin}"));
    }
    let child = c
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start dockerd");
    s.daemons.push(child);
    s.logs.push(log);
}
