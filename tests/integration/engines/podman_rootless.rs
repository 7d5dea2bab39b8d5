//! Rootless podman (issue 16): the `berth-rootless` user's own podman, with berth and then
//! runc as its runtime, for its everyday verbs. Its storage, run root, runtime copy and
//! XDG_RUNTIME_DIR are in the test's directory (owned by the user); the image is imported
//! by the user from the engine tests' archive. This host is hybrid cgroup v1, where a
//! rootless container has no cgroup: podman itself refuses `pause` there.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{IMAGE, LIMIT, image_dir, installed, ok};
use crate::common::{Out, run_cmd, run_cmd_stdin};
use crate::rootless::{UserDir, user};

struct RootlessPodman {
    u: UserDir,
    runtime: String,
}

impl RootlessPodman {
    fn start(runtime: &str) -> Option<RootlessPodman> {
        if !installed(
            "rootless podman",
            &["podman", "conmon", "newuidmap", "runuser"],
        ) {
            return None;
        }
        let u = UserDir::new("berth-rlpodman-");
        let d = u.path().to_str().unwrap().to_string();
        let runtime = if runtime == "berth" {
            u.berth.to_str().unwrap().to_string()
        } else {
            runtime.to_string()
        };
        std::fs::write(
            u.path().join("containers.conf"),
            super::podman::containers_conf(&d),
        )
        .unwrap();
        std::fs::copy(image_dir().join("image.tar"), u.path().join("image.tar")).unwrap();
        let p = RootlessPodman { u, runtime };
        let image = p.u.path().join("image.tar");
        ok(
            &p.podman(&["load", "-i", image.to_str().unwrap()]),
            "podman load (rootless)",
        );
        Some(p)
    }

    /// The podman command line, as the user runs it.
    fn line(&self, args: &[&str]) -> Vec<String> {
        let d = self.u.path();
        let mut v = vec![
            format!("CONTAINERS_CONF={}", d.join("containers.conf").display()),
            "podman".to_string(),
            "--root".to_string(),
            d.join("storage").display().to_string(),
            "--runroot".to_string(),
            d.join("run").display().to_string(),
            "--runtime".to_string(),
            self.runtime.clone(),
        ];
        v.extend(args.iter().map(|a| a.to_string()));
        v
    }

    fn podman(&self, args: &[&str]) -> Out {
        let line = self.line(args);
        let refs: Vec<&str> = line.iter().map(String::as_str).collect();
        run_cmd(&mut self.u.command("env", &refs), LIMIT)
    }

    /// `podman ARGS` under `script`, so that its stdin and stdout are a terminal (`-it`).
    fn in_pty(&self, args: &[&str]) -> Out {
        let quoted: Vec<String> = self
            .line(args)
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect();
        let cmd = format!("env {}", quoted.join(" "));
        // Its stdin stays open until it is done: on EOF podman closes the container's
        // stdin, and the pty's hangup lost the output of runc's container 2 times in 8.
        let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let out = run_cmd_stdin(
            &mut self.u.command("script", &["-qec", &cmd, "/dev/null"]),
            std::fs::File::from(rx),
        );
        drop(tx);
        out
    }
}

impl Drop for RootlessPodman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "-af", "-t", "0"]);
        kill_pause_process(self.u.path(), &self.u.xdg);
        // Conmon and runtime copies name the user's directory: end any left.
        let needle = self.u.path().as_os_str().as_encoded_bytes().to_vec();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            let named = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle.as_slice()));
            if named && pid != std::process::id() as i32 {
                // SAFETY: kill(2) of a process started for this test (it names our dir).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Rootless podman keeps a pause process holding its user namespace between commands;
/// it would outlive the test.
/// Its pid file is in podman's tmp_dir (ours: `<dir>/tmp`), by default under XDG_RUNTIME_DIR.
fn kill_pause_process(dir: &Path, xdg: &Path) {
    for f in [dir.join("tmp/pause.pid"), xdg.join("libpod/tmp/pause.pid")] {
        if let Some(pid) = std::fs::read_to_string(&f)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) of the pause process this test's podman started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn norm(s: &str) -> Vec<String> {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Every scenario with one runtime (`runtime` is named in failures).
fn scenarios(runtime: &str) {
    let Some(p) = RootlessPodman::start(runtime) else {
        return;
    };
    let (uid, gid, sub, _) = user();
    // run: root inside, the user's uid and subordinate range mapped (podman's namespace).
    let o = p.podman(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    ok(&o, &format!("{runtime}: podman run"));
    assert_eq!(
        norm(&o.stdout),
        [
            "0".to_string(),
            format!("0 {uid} 1"),
            format!("1 {sub} 65536")
        ],
        "{runtime}"
    );
    // run -d, exec, logs, ps, pause (refused by podman on v1), stop, rm.
    let name = format!("rl{}", std::process::id());
    let o = p.podman(&[
        "run",
        "-d",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    ok(&o, &format!("{runtime}: podman run -d"));
    let o = p.podman(&["exec", &name, "sh", "-c", "echo in-exec; id -u"]);
    ok(&o, &format!("{runtime}: podman exec"));
    assert_eq!(o.stdout, "in-exec\n0\n", "{runtime}");
    let mut logs = String::new();
    for _ in 0..100 {
        logs = p.podman(&["logs", &name]).stdout;
        if logs.contains("started") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(logs, "started\n", "{runtime}: podman logs");
    let o = p.podman(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    ok(&o, "podman ps");
    assert!(
        o.stdout.starts_with(&format!("{name} Up")),
        "{runtime}: {}",
        o.stdout
    );
    let o = p.podman(&["pause", &name]);
    assert_ne!(o.code, 0, "{runtime}: pause worked without a cgroup?");
    assert!(
        o.stderr.contains("rootless containers with cgroup V1"),
        "{runtime}: {}",
        o.stderr
    );
    ok(&p.podman(&["stop", "-t", "1", &name]), "podman stop");
    let o = p.podman(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        o.stdout.starts_with(&format!("{name} Exited")),
        "{runtime}: {}",
        o.stdout
    );
    ok(&p.podman(&["rm", &name]), "podman rm");
    // -it: a terminal inside, output through it.
    let o = p.in_pty(&["run", "--rm", "-it", IMAGE, "sh", "-c", "tty; echo tty-ok"]);
    ok(&o, &format!("{runtime}: podman run -it"));
    // Carriage returns vary: the runtime clears ONLCR on the pty master while the process
    // may already write (a race runc has too), and script's own pty adds one.
    assert!(
        o.stdout.replace('\r', "").contains("/dev/pts/0\ntty-ok\n"),
        "{runtime}: {:?}",
        o.stdout
    );
    // A volume: the container's root writes as the user.
    let vol = p.u.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("in"), "from-host\n").unwrap();
    std::os::unix::fs::chown(&vol, Some(uid), Some(gid)).unwrap();
    let spec = format!("{}:/v", vol.display());
    let o = p.podman(&[
        "run",
        "--rm",
        "-v",
        &spec,
        IMAGE,
        "sh",
        "-c",
        "cat /v/in; echo out > /v/out",
    ]);
    ok(&o, &format!("{runtime}: podman run -v"));
    assert_eq!(o.stdout, "from-host\n");
    let m = std::fs::metadata(vol.join("out")).unwrap();
    assert_eq!((m.uid(), m.gid()), (uid, gid), "{runtime}");
    // --userns=keep-id: the user's own id inside, in a user namespace of the container's.
    let o = p.podman(&[
        "run",
        "--rm",
        "--userns=keep-id",
        IMAGE,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    ok(&o, &format!("{runtime}: podman run --userns=keep-id"));
    let lines = norm(&o.stdout);
    assert_eq!(lines[0], uid.to_string(), "{runtime}");
    assert!(
        lines.contains(&format!("{uid} 0 1")),
        "{runtime}: {lines:?}"
    );
    let o = p.podman(&["ps", "-aq"]);
    assert_eq!(o.stdout, "", "{runtime}: containers left");
    p.u.assert_clean(&[&name]);
}

#[test]
fn rootless_podman_with_berth() {
    scenarios("berth");
}

#[test]
fn rootless_podman_with_runc() {
    scenarios("/usr/sbin/runc");
}
