//! Real services behind the engines (issue 14): a Debian image made by debootstrap with
//! redis, postgres and nginx, run by podman with `--network none` and by `ctr run` (a new
//! network namespace with only loopback), with berth and with runc as the runtime. The
//! services talk over 127.0.0.1, so this fails whenever the runtime leaves `lo` down.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::containerd::Containerd;
use super::podman::Podman;
use super::{ok, unique};
use crate::common::run_cmd;

pub(super) const DEBIAN: &str = "localhost/debian-services:latest";
const RUNC: &str = "/usr/sbin/runc";
/// Starting three servers and asking each once, under an engine on a busy 2-core machine.
pub(super) const SERVICE_LIMIT: Duration = Duration::from_secs(120);

/// Starts redis, postgres and nginx on loopback, asks each once, prints one line each.
pub(super) const SCRIPT: &str = r#"set -e
redis-server --daemonize yes --bind 127.0.0.1 --save '' >/dev/null
pg=$(ls -d /usr/lib/postgresql/*/bin)
su postgres -s /bin/sh -c "$pg/postgres -D /var/lib/postgresql/data -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp >/tmp/pg.log 2>&1 &"
nginx
for i in $(seq 200); do [ "$(redis-cli -h 127.0.0.1 ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
echo "redis=$(redis-cli -h 127.0.0.1 ping)"
for i in $(seq 300); do psql -h 127.0.0.1 -U postgres -tAc 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
echo "postgres=$(psql -h 127.0.0.1 -U postgres -tAc 'select 40 + 2')"
echo "nginx=$(python3 -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1/").status)')"
"#;
pub(super) const WANT: &str = "redis=PONG\npostgres=42\nnginx=200\n";

/// The image archive, built (or taken from the cache outside the checkout) once per run.
pub(super) fn debian_image() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("debian-image");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines/make-debian-image.sh");
        let out = run_cmd(
            Command::new("bash").arg(script).arg(&dir),
            Duration::from_secs(900),
        );
        assert_eq!(
            out.code, 0,
            "make-debian-image.sh failed (tests/run-all.sh builds it before the sandbox, \
             which has no network): {}",
            out.stderr
        );
        dir.join("debian.tar")
    })
}

fn runtimes() -> [String; 2] {
    [crate::engines::runtime(), RUNC.to_string()]
}

#[test]
fn podman_without_network_serves_redis_postgres_and_nginx_on_localhost() {
    for rt in runtimes() {
        let Some(p) = Podman::start_with(&rt) else {
            return;
        };
        let tar = debian_image().to_str().unwrap();
        ok(
            &p.run_for(&["load", "-i", tar], SERVICE_LIMIT),
            "podman load",
        );
        let o = p.run_for(
            &[
                "run",
                "--rm",
                "--network",
                "none",
                DEBIAN,
                "bash",
                "-c",
                SCRIPT,
            ],
            SERVICE_LIMIT,
        );
        assert_eq!(o.stdout, WANT, "podman --runtime {rt}: stderr {}", o.stderr);
        assert_eq!(o.code, 0, "podman --runtime {rt}: {}", o.stderr);
    }
}

#[test]
fn ctr_run_serves_redis_postgres_and_nginx_on_localhost() {
    let Some(c) = Containerd::start() else { return };
    let tar = debian_image().to_str().unwrap();
    ok(&c.ctr(&["images", "import", tar]), "ctr images import");
    for rt in runtimes() {
        let id = unique("svc");
        let o = c.run_with(&rt, DEBIAN, &id, &["bash", "-c", SCRIPT], SERVICE_LIMIT);
        assert_eq!(
            o.stdout, WANT,
            "ctr --runc-binary {rt}: stderr {}",
            o.stderr
        );
        assert_eq!(o.code, 0, "ctr --runc-binary {rt}: {}", o.stderr);
    }
}

/// `podman kill -s KILL` of a paused container ends it at once (the runtime must deliver
/// SIGKILL to frozen tasks and thaw them), with exit code 137, for berth as for runc.
#[test]
fn podman_kill_of_a_paused_container() {
    for rt in runtimes() {
        let Some(p) = Podman::start_with(&rt) else {
            return;
        };
        let name = unique("paused");
        ok(
            &p.run(&["run", "-d", "--name", &name, super::IMAGE, "sleep", "600"]),
            "podman run -d",
        );
        ok(&p.run(&["pause", &name]), "podman pause");
        let start = std::time::Instant::now();
        ok(&p.run(&["kill", "-s", "KILL", &name]), "podman kill");
        let o = p.run(&["wait", &name]);
        assert_eq!(
            o.stdout.trim(),
            "137",
            "podman --runtime {rt}: {}",
            o.stderr
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "podman --runtime {rt}: kill of a paused container took {:?}",
            start.elapsed()
        );
        ok(&p.run(&["rm", "-f", &name]), "podman rm");
    }
}

/// `ctr task kill -s SIGKILL` of a paused task, for berth as for runc.
#[test]
fn ctr_kill_of_a_paused_task() {
    let Some(c) = Containerd::start() else { return };
    for rt in runtimes() {
        let id = unique("paused");
        ok(
            &c.ctr(&[
                "run",
                "-d",
                "--runc-binary",
                &rt,
                super::IMAGE,
                &id,
                "sleep",
                "600",
            ]),
            "ctr run -d",
        );
        c.wait_status(&id, "RUNNING");
        ok(&c.ctr(&["task", "pause", &id]), "ctr task pause");
        c.wait_status(&id, "PAUSED");
        ok(
            &c.ctr(&["task", "kill", "-s", "SIGKILL", &id]),
            "ctr task kill -s SIGKILL",
        );
        c.wait_status(&id, "STOPPED");
        ok(&c.ctr(&["task", "rm", &id]), "ctr task rm");
        ok(&c.ctr(&["containers", "rm", &id]), "ctr containers rm");
    }
}
