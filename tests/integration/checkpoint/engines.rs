//! `podman container checkpoint`/`restore` and `docker checkpoint create`/`start
//! --checkpoint` (experimental dockerd) with berth as the runtime, and with runc the same
//! way for comparison. Each engine runs privately under a temp dir (as in ../engines.rs),
//! with the built CRIU first on PATH: the engines and the runtimes find it there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{RUNC, assert_consecutive, criu, wait_until};
use crate::common::{BIN, Out, run_cmd};
use crate::engines::{Scratch, image_dir, installed, ok, spawn_dockerd};

const IMAGE: &str = "localhost/busybox:latest";
const COUNTER: &str = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done";
const LIMIT: Duration = Duration::from_secs(90);

/// PATH with the built CRIU's directory first.
fn path_with_criu() -> String {
    let dir = criu().parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn numbers(text: &str) -> Vec<u64> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

struct Podman {
    s: Scratch,
    runtime: String,
}

impl Podman {
    fn start(runtime: &str) -> Podman {
        let s = Scratch::new("berth-criu-podman-");
        let d = s.path().display().to_string();
        std::fs::write(
            s.path().join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = []\nnetns = \"none\"\n[engine]\n\
                 cgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
                 events_logfile_path = \"{d}/events.log\"\nimage_copy_tmp_dir = \"{d}/tmp\"\n\
                 lock_type = \"file\"\nstatic_dir = \"{d}/storage/libpod\"\ntmp_dir = \"{d}/tmp\"\n\
                 volume_path = \"{d}/volumes\"\n[network]\nnetwork_config_dir = \"{d}/networks\"\n"
            ),
        )
        .unwrap();
        let mut p = Podman {
            s,
            runtime: runtime.to_string(),
        };
        let cmd = p.command();
        p.s.cleanups.push(Box::new(move || {
            let mut cmd = cmd;
            let _ = run_cmd(cmd.args(["rm", "-af", "-t", "0"]), LIMIT);
        }));
        ok(
            &p.run(&[
                "load",
                "-i",
                image_dir().join("image.tar").to_str().unwrap(),
            ]),
            "podman load",
        );
        p
    }

    fn command(&self) -> Command {
        let d = self.s.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("PATH", path_with_criu())
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--runtime")
            .arg(&self.runtime);
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        run_cmd(self.command().args(args), LIMIT)
    }
}

fn podman_checkpoint_restore(runtime: &str) {
    let p = Podman::start(runtime);
    let name = "counter";
    ok(
        &p.run(&["run", "-d", "--name", name, IMAGE, "sh", "-c", COUNTER]),
        "podman run -d",
    );
    let logs = || numbers(&p.run(&["logs", name]).stdout);
    wait_until("podman logs to show 5 numbers", || logs().len() >= 5);
    ok(
        &p.run(&["container", "checkpoint", name]),
        &format!("podman container checkpoint ({runtime})"),
    );
    let st = p.run(&["inspect", "-f", "{{.State.Status}}", name]);
    assert_eq!(
        st.stdout.trim(),
        "exited",
        "{runtime}: after checkpoint: {}",
        st.stderr
    );
    let before = logs().len();
    ok(
        &p.run(&["container", "restore", name]),
        &format!("podman container restore ({runtime})"),
    );
    wait_until("podman logs to grow after restore", || {
        logs().len() > before + 5
    });
    assert_consecutive(
        &logs(),
        &format!("podman with {runtime}: the counter across the restore"),
    );
    let st = p.run(&["inspect", "-f", "{{.State.Status}}", name]);
    assert_eq!(st.stdout.trim(), "running", "{runtime}: after restore");
    ok(&p.run(&["rm", "-f", "-t", "0", name]), "podman rm -f");
}

#[test]
fn podman_container_checkpoint_and_restore() {
    criu();
    if !installed("podman", &["podman", "conmon"]) {
        return;
    }
    podman_checkpoint_restore(BIN);
    podman_checkpoint_restore(RUNC);
}

struct Docker {
    s: Scratch,
}

impl Docker {
    fn start() -> Docker {
        let mut s = Scratch::new("berth-criu-docker-");
        spawn_dockerd(
            &mut s,
            r#"{"experimental": true}"#,
            &[("berth", BIN), ("oracle", RUNC)],
            Some(&path_with_criu()),
        );
        let dk = Docker { s };
        wait_until("dockerd to answer", || dk.docker(&["version"]).code == 0);
        let sock = dk.sock();
        let mut dk = dk;
        dk.s.cleanups.push(Box::new(move || {
            let ids = run_cmd(docker_cmd(&sock).args(["ps", "-aq"]), LIMIT).stdout;
            for id in ids.lines() {
                let _ = run_cmd(docker_cmd(&sock).args(["rm", "-f", id]), LIMIT);
            }
        }));
        ok(
            &dk.docker(&[
                "load",
                "-i",
                image_dir().join("image.tar").to_str().unwrap(),
            ]),
            "docker load",
        );
        dk
    }

    fn sock(&self) -> PathBuf {
        self.s.path().join("d.sock")
    }

    fn docker(&self, args: &[&str]) -> Out {
        run_cmd(docker_cmd(&self.sock()).args(args), LIMIT)
    }

    /// `docker start --checkpoint`, past Docker 20.10's "content … already exists" when it
    /// uploads the checkpoint to containerd (moby/moby#42900, runc meets it alike): the
    /// stale blob is removed from containerd's store and the start tried once more.
    fn start_from(&self, cp: &str, name: &str) -> Out {
        let o = self.docker(&["start", "--checkpoint", cp, name]);
        let Some(digest) = o
            .stderr
            .split_whitespace()
            .find(|w| w.starts_with("sha256:") && o.stderr.contains("already exists"))
        else {
            return o;
        };
        let sock = self.s.path().join("exec/containerd/containerd.sock");
        let rm = run_cmd(
            Command::new("ctr").arg("-a").arg(&sock).args([
                "-n",
                "moby",
                "content",
                "rm",
                digest.trim_end_matches(':'),
            ]),
            LIMIT,
        );
        ok(&rm, "ctr content rm (moby/moby#42900)");
        self.docker(&["start", "--checkpoint", cp, name])
    }
}

fn docker_cmd(sock: &Path) -> Command {
    let mut c = Command::new("docker");
    c.arg("-H").arg(format!("unix://{}", sock.display()));
    c
}

fn docker_checkpoint_restore(dk: &Docker, runtime: &str) {
    let name = format!("counter-{runtime}");
    let o = dk.docker(&[
        "run",
        "-d",
        "--runtime",
        runtime,
        "--network",
        "none",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        COUNTER,
    ]);
    ok(&o, "docker run -d");
    let logs = || numbers(&dk.docker(&["logs", &name]).stdout);
    wait_until("docker logs to show 5 numbers", || logs().len() >= 5);
    ok(
        &dk.docker(&["checkpoint", "create", &name, "cp1"]),
        &format!("docker checkpoint create ({runtime})"),
    );
    wait_until("the checkpointed container to exit", || {
        dk.docker(&["inspect", "-f", "{{.State.Running}}", &name])
            .stdout
            .trim()
            == "false"
    });
    let before = logs().len();
    ok(
        &dk.start_from("cp1", &name),
        &format!("docker start --checkpoint ({runtime})"),
    );
    wait_until("docker logs to grow after restore", || {
        logs().len() > before + 5
    });
    assert_consecutive(
        &logs(),
        &format!("docker with {runtime}: the counter across the restore"),
    );
    ok(&dk.docker(&["rm", "-f", &name]), "docker rm -f");
}

#[test]
fn docker_checkpoint_create_and_start_from_it() {
    criu();
    if !installed("Docker", &["dockerd", "docker", "ctr"]) {
        return;
    }
    // Docker 20.10 leaves the images it restores from in /tmp/ctrd-checkpoint* (with any
    // runtime): the ones this test made go when it ends.
    let before = ctrd_checkpoints();
    let _tidy = Tidy(Box::new(move || {
        for d in ctrd_checkpoints().difference(&before) {
            let _ = std::fs::remove_dir_all(d);
        }
    }));
    let dk = Docker::start();
    docker_checkpoint_restore(&dk, "berth");
    docker_checkpoint_restore(&dk, "oracle");
}

fn ctrd_checkpoints() -> std::collections::BTreeSet<PathBuf> {
    std::fs::read_dir("/tmp")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("ctrd-checkpoint")
        })
        .map(|e| e.path())
        .collect()
}

/// Runs its closure when dropped, pass or fail.
struct Tidy(Box<dyn Fn()>);

impl Drop for Tidy {
    fn drop(&mut self) {
        (self.0)();
    }
}
