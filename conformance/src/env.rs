//! One case's world: its temporary directory, state root, bundles, and every container,
//! cgroup, mount and helper process it made, all torn down on drop — also when the case
//! failed half-way, so one broken case cannot poison the next.

use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a case ends with. `Err` of a case's `Result` carries Fail or Skip; `Ok` is a pass.
#[derive(Debug, Clone)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

pub type T<X> = Result<X, Outcome>;

pub fn fail<X>(msg: impl Into<String>) -> T<X> {
    Err(Outcome::Fail(msg.into()))
}

pub fn skip<X>(msg: impl Into<String>) -> T<X> {
    Err(Outcome::Skip(msg.into()))
}

pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> T<()> {
    if cond { Ok(()) } else { fail(msg()) }
}

/// Settings shared by every case of a run.
pub struct Settings {
    pub runtime: PathBuf,
    pub global: Vec<String>,
    pub template: PathBuf,
    pub checker: PathBuf,
    pub timeout: Duration,
    pub work: PathBuf,
}

/// The result of one runtime command.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
    pub fn describe(&self) -> String {
        if self.timed_out {
            return "timed out".into();
        }
        let err = self.stderr.trim();
        let err: String = err.chars().take(300).collect();
        format!("exit {:?}: {}", self.code, err)
    }
}

pub struct Bundle {
    pub dir: PathBuf,
    pub cfg: Value,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    pub fn write(&self) -> T<()> {
        let text =
            serde_json::to_string_pretty(&self.cfg).map_err(|e| Outcome::Fail(e.to_string()))?;
        fs::write(self.dir.join("config.json"), text)
            .map_err(|e| Outcome::Fail(format!("config.json: {e}")))
    }
    /// The `linux` object, created if absent.
    pub fn linux(&mut self) -> &mut Value {
        obj(&mut self.cfg, "linux")
    }
    pub fn process(&mut self) -> &mut Value {
        obj(&mut self.cfg, "process")
    }
    pub fn mounts(&mut self) -> &mut Vec<Value> {
        let m = &mut self.cfg["mounts"];
        if !m.is_array() {
            *m = json!([]);
        }
        m.as_array_mut().expect("mounts was just made an array")
    }
    pub fn namespaces(&mut self) -> &mut Vec<Value> {
        let l = self.linux();
        if !l["namespaces"].is_array() {
            l["namespaces"] = json!([]);
        }
        l["namespaces"]
            .as_array_mut()
            .expect("namespaces was just made an array")
    }
    pub fn drop_ns(&mut self, kind: &str) {
        self.namespaces().retain(|n| n["type"] != kind);
    }
    pub fn set_ns(&mut self, kind: &str, path: Option<&str>) {
        self.drop_ns(kind);
        let mut n = json!({ "type": kind });
        if let Some(p) = path {
            n["path"] = json!(p);
        }
        self.namespaces().push(n);
    }
    /// Drops a mount by destination (e.g. the cgroup mount, which a user namespace forbids).
    pub fn drop_mount(&mut self, dest: &str) {
        self.mounts().retain(|m| m["destination"] != dest);
    }
}

/// `v[key]` as an object, made one if it is not.
pub fn obj<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    if !v[key].is_object() {
        v[key] = json!({});
    }
    &mut v[key]
}

pub struct Env<'a> {
    pub s: &'a Settings,
    pub dir: PathBuf,
    pub root: PathBuf,
    ids: Vec<String>,
    cgroups: Vec<String>,
    holders: Vec<Child>,
    mounts: Vec<PathBuf>,
    n: usize,
    tag: String,
}

impl<'a> Env<'a> {
    pub fn new(s: &'a Settings, index: usize) -> std::io::Result<Self> {
        let dir = s.work.join(format!("case{index}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let root = dir.join("state");
        fs::create_dir_all(&root)?;
        Ok(Env {
            s,
            dir,
            root,
            ids: Vec::new(),
            cgroups: Vec::new(),
            holders: Vec::new(),
            mounts: Vec::new(),
            n: 0,
            tag: format!("cf{}-{index}", std::process::id()),
        })
    }

    /// A fresh container id, remembered so drop deletes it.
    pub fn id(&mut self) -> String {
        self.n += 1;
        let id = format!("{}-{}", self.tag, self.n);
        self.ids.push(id.clone());
        id
    }

    /// A cgroup path unique to this case, remembered so drop removes what the runtime left.
    pub fn cgroup_path(&mut self) -> String {
        self.n += 1;
        let p = format!("/berth-conformance/{}-{}", self.tag, self.n);
        self.cgroups.push(p.clone());
        p
    }

    pub fn remember_cgroup(&mut self, p: &str) {
        self.cgroups.push(p.to_owned());
    }

    pub fn remember_mount(&mut self, p: &Path) {
        self.mounts.push(p.to_owned());
    }

    pub fn holder(&mut self, c: Child) -> u32 {
        let pid = c.id();
        self.holders.push(c);
        pid
    }

    /// A directory under the case's temp dir (for bind sources, hook logs, …).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A bundle whose process is `/checker ARGS…`, from the template's rootfs and config.
    pub fn bundle(&mut self, args: &[&str]) -> T<Bundle> {
        self.n += 1;
        let dir = self.dir.join(format!("bundle{}", self.n));
        fs::create_dir_all(&dir).map_err(|e| Outcome::Fail(format!("bundle dir: {e}")))?;
        make_rootfs(
            &self.s.template.join("rootfs"),
            &dir.join("rootfs"),
            &self.s.checker,
        )
        .map_err(|e| Outcome::Fail(format!("making the rootfs: {e}")))?;
        let text = fs::read_to_string(self.s.template.join("config.json"))
            .map_err(|e| Outcome::Fail(format!("template config: {e}")))?;
        let mut cfg: Value =
            serde_json::from_str(&text).map_err(|e| Outcome::Fail(e.to_string()))?;
        let mut a = vec![json!("/checker")];
        a.extend(args.iter().map(|x| json!(x)));
        cfg["process"]["args"] = Value::Array(a);
        // An explicit cgroup path under the suite's prefix, remembered: a runtime killed
        // mid-create (a hang) cannot leave its default cgroup behind where drop won't look.
        cfg["linux"]["cgroupsPath"] = json!(self.cgroup_path());
        Ok(Bundle { dir, cfg })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.s.runtime);
        c.args(&self.s.global)
            .arg("--root")
            .arg(&self.root)
            .args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs the runtime with ARGS; stdout and stderr go to files because a container created
    /// by it may inherit them and keep a pipe open forever.
    pub fn rt(&mut self, args: &[&str]) -> Out {
        self.n += 1;
        let out = self.dir.join(format!("cmd{}.out", self.n));
        let err = self.dir.join(format!("cmd{}.err", self.n));
        self.rt_to(args, &out, &err)
    }

    pub fn rt_to(&self, args: &[&str], out: &Path, err: &Path) -> Out {
        self.rt_in(None, args, out, err)
    }

    /// Like rt_to, in working directory CWD (for relative paths on the command line).
    pub fn rt_in(&self, cwd: Option<&Path>, args: &[&str], out: &Path, err: &Path) -> Out {
        let mut c = self.command(args);
        if let Some(d) = cwd {
            c.current_dir(d);
        }
        let files = (fs::File::create(out), fs::File::create(err));
        let (Ok(o), Ok(e)) = files else {
            return Out {
                code: None,
                stdout: String::new(),
                stderr: "cannot create output files".into(),
                timed_out: false,
            };
        };
        c.stdout(o).stderr(e);
        let res = run_with_timeout(c, self.s.timeout);
        let stdout = fs::read_to_string(out).unwrap_or_default();
        let stderr = fs::read_to_string(err).unwrap_or_default();
        match res {
            Ok((code, timed_out)) => Out {
                code,
                stdout,
                stderr,
                timed_out,
            },
            Err(e) => Out {
                code: None,
                stdout,
                stderr: format!("spawn: {e}"),
                timed_out: false,
            },
        }
    }

    /// `create --bundle B ID`; the container's stdout and stderr are `<dir>/<ID>.out/.err`.
    pub fn try_create(&self, id: &str, b: &Bundle) -> Out {
        let out = self.dir.join(format!("{id}.out"));
        let err = self.dir.join(format!("{id}.err"));
        let bundle = b.dir.display().to_string();
        self.rt_to(&["create", "--bundle", &bundle, id], &out, &err)
    }

    pub fn create(&self, id: &str, b: &Bundle) -> T<()> {
        let o = self.try_create(id, b);
        ensure(o.ok(), || format!("create failed: {}", o.describe()))
    }

    pub fn output(&self, id: &str) -> String {
        fs::read_to_string(self.dir.join(format!("{id}.out"))).unwrap_or_default()
    }

    pub fn start(&mut self, id: &str) -> T<()> {
        let o = self.rt(&["start", id]);
        ensure(o.ok(), || format!("start failed: {}", o.describe()))
    }

    pub fn state(&mut self, id: &str) -> T<Value> {
        let o = self.rt(&["state", id]);
        ensure(o.ok(), || format!("state failed: {}", o.describe()))?;
        serde_json::from_str(&o.stdout)
            .map_err(|e| Outcome::Fail(format!("state is not JSON ({e}): {}", o.stdout)))
    }

    pub fn status(&mut self, id: &str) -> T<String> {
        Ok(self.state(id)?["status"].as_str().unwrap_or("").to_owned())
    }

    pub fn wait_status(&mut self, id: &str, want: &str) -> T<()> {
        let deadline = Instant::now() + self.s.timeout;
        loop {
            let st = self.status(id)?;
            if st == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return fail(format!("status stayed {st:?}, wanted {want:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the container's stdout holds TEXT (e.g. a shell saying it is ready).
    pub fn wait_output(&self, id: &str, text: &str) -> T<()> {
        let deadline = Instant::now() + self.s.timeout;
        while !self.output(id).contains(text) {
            if Instant::now() > deadline {
                return fail(format!(
                    "output never contained {text:?}: {:?}",
                    self.output(id)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    pub fn delete(&mut self, id: &str) -> T<()> {
        let o = self.rt(&["delete", id]);
        ensure(o.ok(), || format!("delete failed: {}", o.describe()))
    }

    /// Create, start, wait until stopped, delete; the checker's JSON report.
    pub fn run_bundle(&mut self, b: &Bundle) -> T<Value> {
        b.write()?;
        let id = self.id();
        self.create(&id, b)?;
        self.start(&id)?;
        self.wait_status(&id, "stopped")?;
        self.delete(&id)?;
        parse_report(&self.output(&id))
    }

    /// The common case: a bundle running `/checker ARGS`, changed by MUTATE, run to the end.
    pub fn inspect(&mut self, args: &[&str], mutate: impl FnOnce(&mut Bundle)) -> T<Value> {
        let mut b = self.bundle(args)?;
        mutate(&mut b);
        self.run_bundle(&b)
    }

    /// A bundle that must be refused: create (or, failing that, start) must fail.
    pub fn expect_error(&mut self, mutate: impl FnOnce(&mut Bundle)) -> T<()> {
        let mut b = self.bundle(&[])?;
        mutate(&mut b);
        b.write()?;
        let id = self.id();
        let o = self.try_create(&id, &b);
        if !o.ok() {
            return Ok(());
        }
        let s = self.rt(&["start", &id]);
        ensure(!s.ok(), || "both create and start succeeded".into())
    }
}

/// The applets the cases use; copying all of busybox's ~400 links per bundle cost most of a
/// case's time on this disk.
const APPLETS: [&str; 14] = [
    "sh", "sleep", "true", "false", "cat", "echo", "readlink", "test", "[", "id", "hostname", "ls",
    "chmod", "mkdir",
];

/// A small private rootfs: the template's layout, busybox (hard-linked when possible), the
/// applets the cases use, and the checker at /checker.
fn make_rootfs(template: &Path, root: &Path, checker: &Path) -> std::io::Result<()> {
    for d in [
        "bin", "sbin", "usr/bin", "etc", "proc", "sys", "dev", "tmp", "root", "var", "run", "home",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    let link_or_copy = |from: &Path, to: &Path| {
        fs::hard_link(from, to).or_else(|_| fs::copy(from, to).map(|_| ()))
    };
    link_or_copy(&template.join("bin/busybox"), &root.join("bin/busybox"))?;
    link_or_copy(checker, &root.join("checker"))?;
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a))?;
    }
    for f in ["etc/passwd", "etc/group"] {
        fs::copy(template.join(f), root.join(f))?;
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
}

pub fn parse_report(text: &str) -> T<Value> {
    text.lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l.trim())
                .ok()
                .filter(Value::is_object)
        })
        .ok_or_else(|| {
            Outcome::Fail(format!(
                "no checker report in output: {:?}",
                text.chars().take(300).collect::<String>()
            ))
        })
}

/// Runs C; kills only that process if it outlives TIMEOUT. Returns (exit code, timed out).
pub fn run_with_timeout(mut c: Command, timeout: Duration) -> std::io::Result<(Option<i32>, bool)> {
    let mut child = c.spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok((st.code(), false));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok((None, true));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Drop for Env<'_> {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.ids) {
            let mut c = self.command(&["delete", "--force", &id]);
            c.stdout(Stdio::null()).stderr(Stdio::null());
            let _ = run_with_timeout(c, self.s.timeout);
        }
        for mut h in std::mem::take(&mut self.holders) {
            let _ = h.kill();
            let _ = h.wait();
        }
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(m)
                .stderr(Stdio::null())
                .status();
        }
        // Deepest first, so a parent we made is empty when its turn comes.
        let mut cgs = std::mem::take(&mut self.cgroups);
        let mut parents: Vec<String> = Vec::new();
        for c in &cgs {
            let mut p = Path::new(c).parent();
            while let Some(x) = p {
                let s = x.display().to_string();
                if s == "/" || s.is_empty() {
                    break;
                }
                parents.push(s);
                p = x.parent();
            }
        }
        cgs.extend(parents);
        cgs.sort_by_key(|c| std::cmp::Reverse(c.matches('/').count()));
        cgs.dedup();
        if let Ok(hier) = fs::read_dir("/sys/fs/cgroup") {
            let hier: Vec<PathBuf> = hier.flatten().map(|e| e.path()).collect();
            for c in &cgs {
                for h in &hier {
                    // Only directories under the conformance prefix: never one we did not make.
                    if c.starts_with("/berth-conformance") || c.contains(&self.tag) {
                        let _ = fs::remove_dir(h.join(c.trim_start_matches('/')));
                    }
                }
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
