//! Checkpoint and restore with CRIU (issue 17), berth and runc side by side on the same
//! CRIU: the one tests/criu/build-criu.sh builds (Debian trixie's 4.1.1; bookworm's 3.17.1
//! fails on this kernel). tests/run-all.sh builds it before the sandboxed run and passes
//! its path in BERTH_TEST_CRIU; without it these tests fail and say so, never pass.
//!
//! Each scenario runs a counter that appends 0, 1, 2, … to /out/log (a bind mount of a host
//! directory): a restored process that goes on from where it was checkpointed writes the
//! next number, never 0 again and never one it skipped.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::common::{BIN, Env, Out, run_cmd};

mod engines;
mod scenarios;

const RUNC: &str = "/usr/sbin/runc";
const CACHED: &str = "/var/cache/berth-tests/criu-4.1.1/sbin/criu";
const COUNTER: &str = "i=0; while true; do echo $i >> /out/log; i=$((i+1)); sleep 0.05; done";

/// The CRIU the tests use; a missing one fails the test with what to run.
pub(crate) fn criu() -> PathBuf {
    let p = std::env::var_os("BERTH_TEST_CRIU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CACHED));
    assert!(
        p.is_file(),
        "CRIU {} is missing: run `bash tests/criu/build-criu.sh` (tests/run-all.sh does) \
         or set BERTH_TEST_CRIU",
        p.display()
    );
    p
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Rt {
    Berth,
    Runc,
}

/// One runtime over one test bundle, with its own --root; what it leaves is force-deleted.
struct Cr {
    env: Env,
    rt: Rt,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Drop for Cr {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.cmd(&["delete", "--force", id]);
        }
    }
}

impl Cr {
    fn new(rt: Rt, args: &[&str]) -> Cr {
        Cr {
            env: Env::new(args),
            rt,
            ids: Default::default(),
        }
    }

    fn root(&self) -> PathBuf {
        match self.rt {
            Rt::Berth => self.env.root.clone(),
            Rt::Runc => self.env.tmp.path().join("runc-root"),
        }
    }

    fn cmd(&self, args: &[&str]) -> Out {
        let bin = if self.rt == Rt::Berth { BIN } else { RUNC };
        let mut c = Command::new(bin);
        c.arg("--criu")
            .arg(criu())
            .arg("--root")
            .arg(self.root())
            .args(args);
        run_cmd(&mut c, Duration::from_secs(60))
    }

    fn ok(&self, args: &[&str]) -> Out {
        let o = self.cmd(args);
        assert_eq!(
            o.code, 0,
            "{:?} {args:?} failed\nstdout: {}\nstderr: {}",
            self.rt, o.stdout, o.stderr
        );
        o
    }

    fn bundle(&self) -> String {
        self.env.bundle.to_string_lossy().into_owned()
    }

    /// Runs the bundle detached as `id`, on /dev/null: CRIU can dump no file the
    /// container cannot see (the harness's temp files for output are such files).
    fn run(&self, id: &str) {
        self.env.write_config();
        self.ids.borrow_mut().push(id.to_string());
        let bin = if self.rt == Rt::Berth { BIN } else { RUNC };
        let st = Command::new(bin)
            .arg("--root")
            .arg(self.root())
            .args(["run", "--detach", "--bundle", &self.bundle(), id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{:?} run --detach {id}: {st}", self.rt);
    }

    fn restore(&self, id: &str, images: &Path, bundle: &str, extra: &[&str]) -> Out {
        self.ids.borrow_mut().push(id.to_string());
        let mut a = vec![
            "restore",
            "--detach",
            "--image-path",
            images.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--bundle", bundle, id]);
        self.cmd(&a)
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id]).stdout).expect("state JSON")
    }

    fn images(&self, name: &str) -> PathBuf {
        self.env.tmp.path().join(name)
    }
}

/// The numbers a counter appended to `file`.
fn numbers(file: &Path) -> Vec<u64> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `file` holds more than `n` numbers; returns them.
fn grows_past(file: &Path, n: usize) -> Vec<u64> {
    wait_until(
        &format!("{} to grow past {n} lines", file.display()),
        || numbers(file).len() > n,
    );
    numbers(file)
}

fn assert_consecutive(v: &[u64], what: &str) {
    for (i, x) in v.iter().enumerate() {
        assert_eq!(*x, i as u64, "{what}: not 0, 1, 2, … at line {i}: {v:?}");
    }
}

/// Checkpoints `id`, makes sure its counter stopped, returns the numbers written so far.
fn checkpoint_stops(c: &Cr, id: &str, images: &Path, extra: &[&str]) -> Vec<u64> {
    let mut a = vec!["checkpoint", "--image-path", images.to_str().unwrap()];
    a.extend_from_slice(extra);
    a.push(id);
    c.ok(&a);
    let log = c.env.out.join("log");
    let before = numbers(&log);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        numbers(&log),
        before,
        "{:?}: the counter ran on after checkpoint",
        c.rt
    );
    assert_ne!(
        c.cmd(&["state", id]).code,
        0,
        "{:?}: {id} is still there",
        c.rt
    );
    before
}

fn counter_continues(rt: Rt) {
    let mut c = Cr::new(rt, &["sh", "-c", COUNTER]);
    c.env.set("/annotations", json!({"org.berth.test": "kept"}));
    let id = c.env.id();
    c.run(&id);
    let log = c.env.out.join("log");
    grows_past(&log, 5);
    let created = c.state(&id)["created"].clone();
    let images = c.images("img");
    let before = checkpoint_stops(&c, &id, &images, &[]);
    let pid_file = c.env.tmp.path().join("pid");
    let o = c.restore(
        &id,
        &images,
        &c.bundle(),
        &["--pid-file", pid_file.to_str().unwrap()],
    );
    assert_eq!(o.code, 0, "{rt:?} restore: {}", o.stderr);
    let after = grows_past(&log, before.len() + 5);
    assert_consecutive(&after, &format!("{rt:?}: the counter across the restore"));
    let st = c.state(&id);
    assert_eq!(st["status"], "running", "{rt:?}: {st}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(
        st["pid"].to_string(),
        pid.trim(),
        "{rt:?}: pid file vs state"
    );
    assert_eq!(st["annotations"]["org.berth.test"], "kept", "{rt:?}: {st}");
    assert_eq!(st["bundle"], c.bundle(), "{rt:?}");
    assert_ne!(
        st["created"], created,
        "{rt:?}: created is the restore time"
    );
    c.ok(&["delete", "--force", &id]);
    if rt == Rt::Berth {
        c.env.assert_clean(&id);
    }
}

#[test]
fn a_restored_counter_goes_on_from_where_it_was() {
    criu();
    counter_continues(Rt::Berth);
    counter_continues(Rt::Runc);
}

fn leave_running(rt: Rt) {
    let c = Cr::new(rt, &["sh", "-c", COUNTER]);
    let id = c.env.id();
    c.run(&id);
    let log = c.env.out.join("log");
    grows_past(&log, 3);
    let pid = c.state(&id)["pid"].clone();
    let images = c.images("img");
    let mut a = vec!["checkpoint", "--leave-running", "--image-path"];
    a.push(images.to_str().unwrap());
    a.push(&id);
    c.ok(&a);
    let at = numbers(&log).len();
    grows_past(&log, at + 3);
    let st = c.state(&id);
    assert_eq!(
        (st["status"].as_str(), &st["pid"]),
        (Some("running"), &pid),
        "{rt:?}"
    );
    // The images hold the counter as it was then: restored, it writes again the numbers
    // that followed the checkpoint.
    c.ok(&["delete", "--force", &id]);
    let ran_to = numbers(&log).len();
    assert_eq!(
        c.restore(&id, &images, &c.bundle(), &[]).code,
        0,
        "{rt:?} restore"
    );
    let v = grows_past(&log, ran_to + 3);
    assert_consecutive(&v[..ran_to], &format!("{rt:?}: the original"));
    let first = v[ran_to] as usize;
    assert!(
        first >= at.saturating_sub(1) && first < ran_to,
        "{rt:?}: the restored counter went on at {first}, checkpointed near {at}, original ran to {ran_to}"
    );
    assert_consecutive(
        &v[ran_to..]
            .iter()
            .map(|x| x - first as u64)
            .collect::<Vec<_>>(),
        &format!("{rt:?}: the restored counter"),
    );
}

#[test]
fn leave_running_keeps_the_original_running() {
    criu();
    leave_running(Rt::Berth);
    leave_running(Rt::Runc);
}

/// Whether the kernel tracks dirty memory (CONFIG_MEM_SOFT_DIRTY), which pre-dump needs.
fn dirty_tracking() -> bool {
    Command::new(criu())
        .args(["check", "--feature", "mem_dirty_track"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn pre_dump(rt: Rt) {
    let c = Cr::new(rt, &["sh", "-c", COUNTER]);
    let id = c.env.id();
    c.run(&id);
    let log = c.env.out.join("log");
    grows_past(&log, 3);
    let images = c.images("img");
    let pre = images.join("pre");
    let o = c.cmd(&[
        "checkpoint",
        "--pre-dump",
        "--image-path",
        pre.to_str().unwrap(),
        &id,
    ]);
    if !dirty_tracking() {
        // This kernel is built without CONFIG_MEM_SOFT_DIRTY: both runtimes refuse in
        // one line before touching the container, which keeps running.
        assert_ne!(o.code, 0, "{rt:?}: pre-dump without dirty tracking");
        assert!(
            o.stderr.contains("missing features"),
            "{rt:?}: {}",
            o.stderr
        );
        if rt == Rt::Berth {
            assert!(o.stderr.contains("MemTrack"), "{}", o.stderr);
        }
        assert_eq!(o.stderr.trim().lines().count(), 1, "{rt:?}: {}", o.stderr);
        assert_eq!(c.state(&id)["status"], "running", "{rt:?}");
        eprintln!(
            "pre-dump refused as this kernel cannot track dirty memory ({rt:?}): {}",
            o.stderr.trim()
        );
        return;
    }
    assert_eq!(o.code, 0, "{rt:?} pre-dump: {}", o.stderr);
    let fin = images.join("final");
    let before = checkpoint_stops(&c, &id, &fin, &["--parent-path", "../pre"]);
    assert_eq!(
        c.restore(&id, &fin, &c.bundle(), &[]).code,
        0,
        "{rt:?} restore"
    );
    assert_consecutive(&grows_past(&log, before.len() + 3), &format!("{rt:?}"));
}

#[test]
fn pre_dump_then_dump_with_parent_path() {
    criu();
    pre_dump(Rt::Berth);
    pre_dump(Rt::Runc);
    // The parent must be given relative to the image path, and exist.
    let c = Cr::new(Rt::Berth, &["sh", "-c", COUNTER]);
    let id = c.env.id();
    c.run(&id);
    let img = c.images("img");
    let img = img.to_str().unwrap();
    c.cmd(&[
        "checkpoint",
        "--image-path",
        img,
        "--parent-path",
        "/abs",
        &id,
    ])
    .fails_with(&["--parent-path", "relative"]);
    c.cmd(&[
        "checkpoint",
        "--image-path",
        img,
        "--parent-path",
        "../none",
        &id,
    ])
    .fails_with(&["invalid --parent-path", "none"]);
    assert_eq!(c.state(&id)["status"], "running");
}

fn new_id_and_bundle(rt: Rt) {
    let c = Cr::new(rt, &["sh", "-c", COUNTER]);
    let id = c.env.id();
    c.run(&id);
    let log = c.env.out.join("log");
    grows_past(&log, 3);
    let images = c.images("img");
    let before = checkpoint_stops(&c, &id, &images, &[]);
    // A second bundle whose /out is another host directory: the external mount is
    // given its new source on restore.
    let bundle2 = c.env.tmp.path().join("bundle2");
    let out2 = c.env.tmp.path().join("out2");
    std::fs::create_dir_all(&bundle2).unwrap();
    std::fs::create_dir_all(&out2).unwrap();
    let mut cfg = c.env.config.clone();
    for m in cfg["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/out" {
            m["source"] = json!(out2);
        }
    }
    std::fs::write(bundle2.join("config.json"), cfg.to_string()).unwrap();
    let id2 = format!("{id}-moved");
    let o = c.restore(&id2, &images, bundle2.to_str().unwrap(), &[]);
    assert_eq!(o.code, 0, "{rt:?} restore as {id2}: {}", o.stderr);
    let log2 = out2.join("log");
    let v = grows_past(&log2, 3);
    let next = *before.last().unwrap() + 1;
    assert_eq!(
        v[0], next,
        "{rt:?}: the moved counter's first number: {v:?}"
    );
    assert_consecutive(
        &v.iter().map(|x| x - next).collect::<Vec<_>>(),
        &format!("{rt:?}: the moved counter"),
    );
    assert_eq!(numbers(&log), before, "{rt:?}: the old /out was written to");
    let st = c.state(&id2);
    assert_eq!(st["id"], id2.as_str());
    assert_eq!(st["bundle"], bundle2.to_str().unwrap(), "{rt:?}");
    assert_ne!(c.cmd(&["state", &id]).code, 0, "{rt:?}: the old id is back");
}

#[test]
fn restore_under_a_new_id_and_bundle() {
    criu();
    new_id_and_bundle(Rt::Berth);
    new_id_and_bundle(Rt::Runc);
}

#[test]
fn errors_are_one_line_and_leave_nothing() {
    let criu = criu();
    let c = Cr::new(Rt::Berth, &["sh", "-c", COUNTER]);
    let id = c.env.id();
    let img = c.images("img");
    let img_s = img.to_str().unwrap();
    c.cmd(&["checkpoint", "--image-path", img_s, "nosuch"])
        .fails_with(&["nosuch", "does not exist"]);
    c.env.create(&id).ok();
    c.ids.borrow_mut().push(id.clone());
    c.cmd(&["checkpoint", "--image-path", img_s, &id])
        .fails_with(&["cannot be checkpointed in created state"]);
    c.ok(&["delete", "--force", &id]);
    // A restore from nothing: one line, no state, no cgroup.
    let missing = c.images("missing");
    c.restore(&id, &missing, &c.bundle(), &[]).fails_with(&[
        "--image-path",
        "missing",
        "No such file",
    ]);
    c.env.assert_clean(&id);
    // An image directory that is not a checkpoint.
    std::fs::create_dir_all(&img).unwrap();
    c.restore(&id, &img, &c.bundle(), &[])
        .fails_with(&["no checkpoint there", "descriptors.json"]);
    // CRIU fails half-way (images without their contents): nothing is left behind.
    std::fs::write(
        img.join("descriptors.json"),
        "[\"/dev/null\",\"/dev/null\",\"/dev/null\"]",
    )
    .unwrap();
    c.restore(&id, &img, &c.bundle(), &[])
        .fails_with(&["restore: criu failed: type RESTORE", "restore.log"]);
    c.env.assert_clean(&id);
    // An unusable CRIU: missing, or one whose `criu check` fails on this host.
    c.run(&id);
    let mut bad = Command::new(BIN);
    bad.args(["--criu", "/nonexistent/criu", "--root"])
        .arg(c.root());
    run_cmd(
        bad.args(["checkpoint", "--image-path", img_s, &id]),
        Duration::from_secs(30),
    )
    .fails_with(&["CRIU binary /nonexistent/criu", "No such file", "--criu"]);
    let fake = c.env.tmp.path().join("old-criu");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'Error (kerndat.c:1): kernel too new' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut bad = Command::new(BIN);
    bad.arg("--criu").arg(&fake).arg("--root").arg(c.root());
    run_cmd(
        bad.args(["checkpoint", "--image-path", img_s, &id]),
        Duration::from_secs(30),
    )
    .fails_with(&[
        "unusable on this host",
        "`criu check` fails",
        "kernel too new",
    ]);
    // Bookworm's own CRIU, where installed, is such a one on kernels it predates.
    let old = Path::new("/usr/sbin/criu");
    if old.exists()
        && !Command::new(old)
            .arg("check")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        let mut bad = Command::new(BIN);
        bad.arg("--criu").arg(old).arg("--root").arg(c.root());
        run_cmd(
            bad.args(["checkpoint", "--image-path", img_s, &id]),
            Duration::from_secs(30),
        )
        .fails_with(&["unusable on this host", "criu check"]);
    }
    // Flags CRIU would not understand are refused before it runs.
    let flag = |f: &str, v: &str| c.cmd(&["checkpoint", "--image-path", img_s, f, v, &id]);
    flag("--manage-cgroups-mode", "bogus").fails_with(&["--manage-cgroups-mode \"bogus\""]);
    flag("--empty-ns", "pid").fails_with(&["--empty-ns \"pid\"", "not supported"]);
    flag("--page-server", "nowhere").fails_with(&["--page-server \"nowhere\"", "ADDRESS:PORT"]);
    assert_eq!(
        c.state(&id)["status"],
        "running",
        "a refused checkpoint ended the container"
    );
    assert_ne!(criu, fake);
}
