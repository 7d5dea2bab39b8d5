//! The command line around the lifecycle: the console socket (pty master over SCM_RIGHTS),
//! --log/--log-format/--debug, --version, --systemd-cgroup, and side-by-side behaviour
//! against runc, the reference implementation.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use serde_json::{Value, json};

use crate::common::*;

const RUNC: &str = "/usr/sbin/runc";

/// Deletes the container with --force when dropped, so a failed assertion leaves no
/// container running (`berth` or `runc`, each with its own --root).
struct Guard {
    bin: &'static str,
    root: PathBuf,
    id: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = run_cmd(
            Command::new(self.bin)
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force", &self.id]),
            Duration::from_secs(30),
        );
    }
}

/// Accepts one connection on `listener` and receives (payload, fd) from one message.
pub(crate) fn recv_console(listener: UnixListener) -> (String, OwnedFd) {
    let (stream, _) = listener.accept().expect("accept console connection");
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("recvmsg on console socket");
    let mut fd = None;
    for c in msg.cmsgs().expect("control messages") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: fds received with SCM_RIGHTS are new descriptors we own.
                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                if fd.is_none() {
                    fd = Some(owned);
                }
            }
        }
    }
    let n = msg.bytes;
    let payload = String::from_utf8_lossy(&buf[..n]).into_owned();
    (payload, fd.expect("no fd in SCM_RIGHTS message"))
}

/// Reads the pty master until `needle` appears, EOF/EIO (slave closed), or `limit`.
pub(crate) fn read_until(master: &OwnedFd, needle: &str, limit: Duration) -> String {
    let mut out = Vec::new();
    let start = Instant::now();
    while !String::from_utf8_lossy(&out).contains(needle) {
        let left = limit.saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "timed out waiting for {needle:?} on the console; got {:?}",
            String::from_utf8_lossy(&out)
        );
        let mut pfd = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let ms = left.as_millis().min(1000) as u16;
        match poll(&mut pfd, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => panic!("poll on pty master: {e}"),
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("read pty master: {e}"),
        }
    }
    String::from_utf8_lossy(&out).replace('\r', "")
}

#[test]
fn console_socket_gets_pty_master_and_process_gets_the_terminal() {
    let mut env = Env::new(&["sh", "-c", "tty; stty size; ls -l /dev/console; echo done"]);
    env.set("/process/terminal", json!(true));
    env.set("/process/consoleSize", json!({"height": 40, "width": 120}));
    env.write_config();
    let sock = env.tmp.path().join("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    let receiver = std::thread::spawn(move || recv_console(listener));
    let id = env.id();
    let _g = Guard {
        bin: BIN,
        root: env.root.clone(),
        id: id.clone(),
    };
    env.berth(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ])
    .ok();
    let (payload, master) = receiver.join().expect("console receiver thread");
    assert!(
        payload.trim_end_matches('\0').starts_with("/dev/pts/"),
        "console socket payload should be the pty name, got {payload:?}"
    );
    env.berth(&["start", &id]).ok();
    let text = read_until(&master, "done", Duration::from_secs(20));
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let tty = lines.first().copied().unwrap_or_default();
    assert!(
        tty.starts_with("/dev/pts/") && tty["/dev/pts/".len()..].parse::<u32>().is_ok(),
        "`tty` should name a /dev/pts device; console output: {text:?}"
    );
    assert!(
        lines.contains(&"40 120"),
        "`stty size` should print the consoleSize \"40 120\"; console output: {text:?}"
    );
    let console = lines
        .iter()
        .find(|l| l.ends_with("/dev/console"))
        .unwrap_or_else(|| panic!("no `ls -l /dev/console` line in {text:?}"));
    assert!(
        console.starts_with('c'),
        "/dev/console should be a character device: {console:?}"
    );
    drop(master);
    env.wait_status(&id, "stopped");
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn terminal_without_console_socket_is_refused() {
    let mut env = Env::new(&["true"]);
    env.set("/process/terminal", json!(true));
    let id = env.id();
    env.create(&id)
        .fails_with(&["process.terminal", "--console-socket"]);
    env.assert_clean(&id);
}

/// A bundle whose root.path does not exist.
fn bad_root_env() -> Env {
    let mut env = Env::new(&["true"]);
    let missing = env.tmp.path().join("no-such-rootfs");
    env.set("/root/path", json!(missing));
    env.write_config();
    env
}

/// `berth --log FILE --log-format FMT create` on `env`, which must fail.
fn create_with_log(env: &Env, id: &str, log: &Path, format: &str) -> Out {
    env.berth(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        format,
        "create",
        "--bundle",
        env.bundle.to_str().unwrap(),
        id,
    ])
}

#[test]
fn json_log_records_the_error() {
    let env = bad_root_env();
    let id = env.id();
    let log = env.tmp.path().join("berth.log");
    create_with_log(&env, &id, &log, "json").fails_with(&["root.path"]);
    env.assert_clean(&id);
    let text = std::fs::read_to_string(&log).expect("log file written");
    let errors: Vec<Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l:?}"))
        })
        .filter(|v| v["level"] == "error")
        .collect();
    assert!(
        !errors.is_empty(),
        "no error line in the JSON log: {text:?}"
    );
    let e = &errors[0];
    assert!(
        e["msg"].as_str().unwrap_or_default().contains("root.path"),
        "msg should name root.path: {e}"
    );
    let time = e["time"].as_str().unwrap_or_default();
    let b = time.as_bytes();
    assert!(
        b.len() >= 20
            && time.ends_with('Z')
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && time[..4].parse::<u32>().is_ok_and(|y| y >= 2020),
        "time should be RFC 3339 UTC: {time:?}"
    );
}

#[test]
fn text_log_records_the_error() {
    let env = bad_root_env();
    let id = env.id();
    let log = env.tmp.path().join("berth.log");
    create_with_log(&env, &id, &log, "text").fails_with(&["root.path"]);
    env.assert_clean(&id);
    let text = std::fs::read_to_string(&log).expect("log file written");
    assert!(
        text.lines()
            .any(|l| l.contains("level=error") && l.contains("root.path") && l.contains("time=")),
        "no `level=error` line naming root.path in the text log: {text:?}"
    );
}

#[test]
fn debug_writes_debug_lines_to_the_log() {
    let env = Env::new(&["true"]);
    env.write_config();
    let id = env.id();
    let log = env.tmp.path().join("debug.log");
    env.berth(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ])
    .ok();
    env.assert_clean(&id);
    let text = std::fs::read_to_string(&log).expect("log file written");
    let debug = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "debug")
        .count();
    assert!(debug >= 1, "no debug line in the log: {text:?}");
    // Without --debug, the same run logs no debug line.
    let log2 = env.tmp.path().join("nodebug.log");
    let id2 = env.id();
    env.berth(&[
        "--log",
        log2.to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id2,
    ])
    .ok();
    env.assert_clean(&id2);
    let text2 = std::fs::read_to_string(&log2).unwrap_or_default();
    assert!(
        !text2.contains("\"debug\""),
        "debug lines logged without --debug: {text2:?}"
    );
}

#[test]
fn version_names_berth_and_spec() {
    for flag in ["--version", "-v"] {
        let out = run_cmd(Command::new(BIN).arg(flag), Duration::from_secs(10));
        out.ok();
        let first = out.stdout.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("berth version "),
            "{flag}: first line {first:?}"
        );
        assert!(
            out.stdout.lines().any(|l| l.starts_with("spec: 1.")),
            "{flag}: no `spec: 1.` line in {:?}",
            out.stdout
        );
    }
}

/// This host has no systemd (no /run/systemd/system): `--systemd-cgroup` is refused for
/// create and run in one line that names the flag and the reason, before anything is made.
/// (The driver itself is tested in the cgroup v2 + systemd guest, tests/guest.)
#[test]
fn systemd_cgroup_without_systemd_is_refused() {
    assert!(
        !Path::new("/run/systemd/system").exists(),
        "this test is for a host without systemd"
    );
    let env = Env::new(&["true"]);
    env.write_config();
    let id = env.id();
    let bundle = env.bundle.to_str().unwrap();
    for verb in ["create", "run"] {
        env.berth(&["--systemd-cgroup", verb, "--bundle", bundle, &id])
            .fails_with(&[
                "--systemd-cgroup",
                "systemd is not running",
                "/run/systemd/system",
            ]);
        env.assert_clean(&id);
    }
    let f: serde_json::Value =
        serde_json::from_str(&env.berth(&["--systemd-cgroup", "features"]).ok().stdout).unwrap();
    assert_eq!(f["linux"]["cgroup"]["systemd"], false);
    // Later verbs follow the container's state, as runc's: the flag does not fail them.
    env.berth(&["--systemd-cgroup", "delete", "--force", &id])
        .ok();
}

// ---- against runc -------------------------------------------------------------------

fn have_runc() -> bool {
    if Path::new(RUNC).exists() {
        return true;
    }
    eprintln!("skipped: {RUNC} is not installed, nothing to compare with");
    false
}

/// One runtime (berth or runc) with its own --root.
struct Rt {
    bin: &'static str,
    root: PathBuf,
}

impl Rt {
    fn berth(env: &Env) -> Rt {
        Rt {
            bin: BIN,
            root: env.root.clone(),
        }
    }
    fn runc(env: &Env) -> Rt {
        Rt {
            bin: RUNC,
            root: env.tmp.path().join("runc-root"),
        }
    }
    fn name(&self) -> &'static str {
        if self.bin == RUNC { "runc" } else { "berth" }
    }
    fn cmd(&self, args: &[&str]) -> Out {
        run_cmd(
            Command::new(self.bin)
                .arg("--root")
                .arg(&self.root)
                .args(args),
            Duration::from_secs(60),
        )
    }
    /// Creates `id` from `bundle`, returning a guard that force-deletes it.
    fn create(&self, bundle: &Path, id: &str) -> Guard {
        let out = self.cmd(&["create", "--bundle", bundle.to_str().unwrap(), id]);
        assert_eq!(
            out.code,
            0,
            "{} create failed: {}{}",
            self.name(),
            out.stderr,
            out.stdout
        );
        Guard {
            bin: self.bin,
            root: self.root.clone(),
            id: id.to_string(),
        }
    }
    fn state(&self, id: &str) -> Value {
        let out = self.cmd(&["state", id]);
        assert_eq!(out.code, 0, "{} state: {}", self.name(), out.stderr);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{} state is not JSON ({e}): {}", self.name(), out.stdout))
    }
    fn wait_status(&self, id: &str, want: &str) -> Value {
        let start = Instant::now();
        loop {
            let st = self.state(id);
            if st["status"] == want {
                return st;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{}: status stayed {}, wanted {want}",
                self.name(),
                st["status"]
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn state_matches_runc_through_the_lifecycle() {
    if !have_runc() {
        return;
    }
    let env = Env::new(&["sh", "-c", "exit 0"]);
    env.write_config();
    let (berth, runc) = (Rt::berth(&env), Rt::runc(&env));
    let (bid, rid) = (env.id(), env.id());
    let _gb = berth.create(&env.bundle, &bid);
    let _gr = runc.create(&env.bundle, &rid);

    let (b, r) = (berth.state(&bid), runc.state(&rid));
    let (bk, rk) = (keys(&b), keys(&r));
    let missing: Vec<&String> = rk.iter().filter(|k| !bk.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "berth state lacks runc's keys {missing:?}\nberth: {b}\nrunc: {r}"
    );
    let extra: Vec<&String> = bk
        .iter()
        .filter(|k| !rk.contains(k) && k.as_str() != "annotations")
        .collect();
    assert!(
        extra.is_empty(),
        "berth state has keys runc lacks: {extra:?}\nberth: {b}\nrunc: {r}"
    );
    assert_eq!(b["status"], "created");
    assert_eq!(r["status"], "created");
    assert_eq!(b["bundle"], r["bundle"], "berth: {b}\nrunc: {r}");
    assert_eq!(b["rootfs"], r["rootfs"], "berth: {b}\nrunc: {r}");
    assert_eq!(b["id"], bid.as_str());
    assert_eq!(r["id"], rid.as_str());
    assert!(b["pid"].as_i64().unwrap() > 0 && r["pid"].as_i64().unwrap() > 0);

    for (rt, id) in [(&berth, &bid), (&runc, &rid)] {
        let out = rt.cmd(&["start", id]);
        assert_eq!(out.code, 0, "{} start: {}", rt.name(), out.stderr);
    }
    let b = berth.wait_status(&bid, "stopped");
    let r = runc.wait_status(&rid, "stopped");
    assert_eq!(b["pid"], r["pid"], "stopped pid; berth: {b}\nrunc: {r}");
    assert_eq!(keys(&r).iter().filter(|k| !keys(&b).contains(k)).count(), 0);

    for (rt, id) in [(&berth, &bid), (&runc, &rid)] {
        let out = rt.cmd(&["delete", id]);
        assert_eq!(out.code, 0, "{} delete: {}", rt.name(), out.stderr);
        let out = rt.cmd(&["state", id]);
        assert_eq!(
            out.code,
            1,
            "{} state of a deleted container should exit 1: {}{}",
            rt.name(),
            out.stdout,
            out.stderr
        );
    }
    env.assert_clean(&bid);
}

#[test]
fn delete_refusal_and_kill_signals_match_runc() {
    if !have_runc() {
        return;
    }
    let env = Env::new(&["sleep", "100"]);
    env.write_config();
    for rt in [Rt::berth(&env), Rt::runc(&env)] {
        for sig in ["KILL", "9"] {
            let id = env.id();
            let _g = rt.create(&env.bundle, &id);
            let out = rt.cmd(&["start", &id]);
            assert_eq!(out.code, 0, "{} start: {}", rt.name(), out.stderr);
            rt.wait_status(&id, "running");
            let out = rt.cmd(&["delete", &id]);
            assert_eq!(
                out.code,
                1,
                "{} should refuse to delete a running container: {}{}",
                rt.name(),
                out.stdout,
                out.stderr
            );
            assert_eq!(
                rt.state(&id)["status"],
                "running",
                "{}: a refused delete must leave the container running",
                rt.name()
            );
            let out = rt.cmd(&["kill", &id, sig]);
            assert_eq!(out.code, 0, "{} kill {id} {sig}: {}", rt.name(), out.stderr);
            rt.wait_status(&id, "stopped");
            let out = rt.cmd(&["delete", &id]);
            assert_eq!(out.code, 0, "{} delete: {}", rt.name(), out.stderr);
            if rt.bin == BIN {
                env.assert_clean(&id);
            }
        }
    }
}
