//! Cgroups: hierarchy discovery from /proc/self/mountinfo (v1, v2, hybrid), the
//! container's directories in every hierarchy, placement, teardown and the freezer.
//! Resource limits live in `resources.rs`, unit conversions in `convert.rs`.

pub mod convert;
pub mod ebpf;
mod hugetlb;
mod resources;
mod signal;
pub mod stats;
pub mod subgroup;
pub mod systemd;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

pub use resources::{Controllers, DEFAULT_ALLOWED, apply};
pub use signal::kill_all;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("linux.resources.{field}: {reason}")]
    Unsupported { field: String, reason: String },
    #[error("{0}")]
    State(String),
}

impl CgroupError {
    fn kind(&self) -> Option<io::ErrorKind> {
        match self {
            CgroupError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

fn cg_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// Path inside the hierarchy that is mounted at `mount` (usually "/").
    pub root: PathBuf,
    pub v2: bool,
    /// v1: controllers and "name=…" from the super options; v2: empty.
    pub controllers: Vec<String>,
}

/// Reads the cgroup mounts of the calling process's mount namespace.
pub fn hierarchies() -> io::Result<Vec<Hierarchy>> {
    let text = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text))
}

pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let (root, mount) = (unescape(pre[3]), unescape(pre[4]));
        let h = match post[0] {
            "cgroup2" => Hierarchy {
                mount: mount.into(),
                root: root.into(),
                v2: true,
                controllers: vec![],
            },
            "cgroup" => Hierarchy {
                mount: mount.into(),
                root: root.into(),
                v2: false,
                controllers: post[2]
                    .split(',')
                    .filter(|o| {
                        !matches!(*o, "rw" | "ro")
                            && !o.starts_with("release_agent")
                            && *o != "clone_children"
                            && *o != "noprefix"
                            && *o != "xattr"
                            && *o != "nsdelegate"
                            && *o != "memory_recursiveprot"
                            && *o != "cpuset_v2_mode"
                    })
                    .map(str::to_string)
                    .collect(),
            },
            _ => continue,
        };
        // The same hierarchy mounted twice: keep the first mount.
        if !out
            .iter()
            .any(|o| o.v2 == h.v2 && o.controllers == h.controllers)
        {
            out.push(h);
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The runtime's own cgroup in a hierarchy, from /proc/self/cgroup.
fn own_cgroup(h: &Hierarchy, self_cgroup: &str) -> PathBuf {
    for line in self_cgroup.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrls, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or("/"));
        let matches = if h.v2 {
            ctrls.is_empty()
        } else {
            let set: Vec<&str> = ctrls.split(',').collect();
            !ctrls.is_empty() && h.controllers.iter().all(|c| set.contains(&c.as_str()))
        };
        if matches {
            return PathBuf::from(path);
        }
    }
    PathBuf::from("/")
}

/// The container's cgroup directory in each hierarchy: what it joined and what berth made.
#[derive(Debug, Default, Clone)]
pub struct Cgroups {
    pub joined: Vec<PathBuf>,
    pub created: Vec<PathBuf>,
    /// The host's hierarchies as read at creation (empty when rebuilt from state).
    pub hierarchies: Vec<Hierarchy>,
    /// Under `--systemd-cgroup`: the transient unit that holds the container's cgroup.
    pub unit: Option<systemd::Unit>,
}

/// cgroupsPath semantics: absolute is from the hierarchy root, relative is below the
/// runtime's own cgroup, unset is `/berth/<id>`.
pub fn resolve(h: &Hierarchy, cgroups_path: Option<&Path>, id: &str, self_cgroup: &str) -> PathBuf {
    let inner = match cgroups_path {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        Some(p) if !p.as_os_str().is_empty() => own_cgroup(h, self_cgroup).join(p),
        _ => PathBuf::from("/berth").join(id),
    };
    let inner = inner
        .strip_prefix(&h.root)
        .map(Path::to_path_buf)
        .unwrap_or(inner);
    let rel: PathBuf = inner
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    h.mount.join(rel)
}

impl Cgroups {
    /// Creates (or reuses) the container's directory in every hierarchy.
    pub fn create(id: &str, cgroups_path: Option<&Path>) -> Result<Cgroups, CgroupError> {
        Self::planned(id, cgroups_path)?.make()
    }

    /// What [`Cgroups::create`] will make, without making it: `joined` are the container's
    /// directories, `created` those of their components that do not exist yet. Recorded
    /// before they are made, so that a runtime killed in the middle leaves a state naming
    /// them (removing one that someone else made meanwhile fails while it is in use).
    pub fn planned(id: &str, cgroups_path: Option<&Path>) -> Result<Cgroups, CgroupError> {
        let hs = hierarchies().map_err(cg_err("read", Path::new("/proc/self/mountinfo")))?;
        if systemd::requested() {
            // systemd makes the directory when the unit starts: nothing is made before.
            let (unit, dir) = systemd::plan(id, cgroups_path)?;
            return Ok(Cgroups {
                joined: vec![dir],
                created: Vec::new(),
                hierarchies: hs,
                unit: Some(unit),
            });
        }
        let self_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut cg = Cgroups::default();
        for h in &hs {
            let dir = resolve(h, cgroups_path, id, &self_cgroup);
            let mut cur = h.mount.clone();
            for comp in dir
                .strip_prefix(&h.mount)
                .unwrap_or(Path::new(""))
                .components()
            {
                cur.push(comp);
                if !cur.exists() {
                    cg.created.push(cur.clone());
                }
            }
            cg.joined.push(dir);
        }
        cg.hierarchies = hs;
        Ok(cg)
    }

    /// Refuses a cgroup that already holds processes, as runc does: berth would otherwise
    /// count them as the container's, and signal and kill them with it.
    pub fn check_empty(&self, cgroups_path: Option<&Path>) -> Result<(), CgroupError> {
        for dir in &self.joined {
            let n = pids(std::slice::from_ref(dir)).len();
            if n > 0 {
                return Err(CgroupError::State(format!(
                    "{}: cgroup {} is not empty ({n} process(es) in it)",
                    field(cgroups_path),
                    dir.display()
                )));
            }
        }
        Ok(())
    }

    /// Refuses a cgroup someone left frozen, as runc ("container's cgroup unexpectedly
    /// frozen"): the init would stop on joining it and create would wait for it forever.
    pub fn check_not_frozen(&self, cgroups_path: Option<&Path>) -> Result<(), CgroupError> {
        // Both freezers: on a hybrid host either one stops the init.
        let files = self
            .joined
            .iter()
            .flat_map(|d| ["freezer.state", "cgroup.freeze"].map(|f| d.join(f)));
        match files.into_iter().find(|f| frozen_now(f)) {
            Some(file) => Err(CgroupError::State(format!(
                "{}: container's cgroup unexpectedly frozen ({})",
                field(cgroups_path),
                file.display()
            ))),
            None => Ok(()),
        }
    }

    /// Makes the planned directories; the result lists the ones really made.
    pub fn make(self) -> Result<Cgroups, CgroupError> {
        if self.unit.is_some() {
            return Ok(self);
        }
        let mut cg = Cgroups::default();
        let pure_v2 = self.hierarchies.iter().all(|h| h.v2);
        for dir in self.joined {
            // By mount, not by position: a rootless container joins only some hierarchies.
            let h = self
                .hierarchies
                .iter()
                .filter(|h| dir.starts_with(&h.mount))
                .max_by_key(|h| h.mount.as_os_str().len());
            let cpuset = h.is_some_and(|h| h.controllers.iter().any(|c| c == "cpuset"));
            let mount = h.map_or_else(|| dir.clone(), |h| h.mount.clone());
            let mut tries = 0;
            // Another container's delete may remove a shared ancestor while we walk: retry.
            while let Err(e) = cg.make_path(&mount, &dir, cpuset) {
                tries += 1;
                if e.kind() != Some(io::ErrorKind::NotFound) || tries > 5 {
                    cg.remove_created();
                    return Err(e);
                }
            }
            if pure_v2 {
                enable_controllers(&mount, &dir);
            }
            cg.joined.push(dir);
        }
        cg.hierarchies = self.hierarchies;
        Ok(cg)
    }

    /// Walks down from the mount making what is missing, remembering what it made.
    fn make_path(&mut self, mount: &Path, dir: &Path, cpuset: bool) -> Result<(), CgroupError> {
        let mut cur = mount.to_path_buf();
        for comp in dir
            .strip_prefix(mount)
            .unwrap_or(Path::new(""))
            .components()
        {
            cur.push(comp);
            match fs::create_dir(&cur) {
                Ok(()) => self.created.push(cur.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(cg_err("create", &cur)(e)),
            }
        }
        // Also for a leaf that already existed: an empty cpuset would refuse the init.
        if cpuset && cur != mount {
            inherit_cpuset(&cur)?;
        }
        Ok(())
    }

    /// Puts the container's init in its cgroup. Under systemd the unit starts with it, and
    /// `res` is applied then (cgroupfs containers had theirs before the init was cloned).
    pub fn enter_init(&self, pid: i32, res: Option<&LinuxResources>) -> Result<(), CgroupError> {
        match (&self.unit, self.joined.first()) {
            (Some(unit), Some(dir)) => systemd::start(unit, dir, pid, res),
            _ => self.add(pid),
        }
    }

    pub fn add(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in &self.joined {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// `exec`'s join. On cgroup v2 the container's own cgroup may no longer take a process:
    /// a systemd init moves itself into a child (init.scope) and enables controllers, and
    /// the no-internal-process rule then refuses new members (EBUSY). As runc, the process
    /// joins the init's current cgroup instead, which must lie below the container's.
    pub fn join_exec(&self, pid: i32, init_pid: i32) -> Result<(), CgroupError> {
        for dir in &self.joined {
            match write(&dir.join("cgroup.procs"), &pid.to_string()) {
                Err(e) if e.kind() == Some(io::ErrorKind::ResourceBusy) => {
                    let sub = init_cgroup_below(init_pid, dir).ok_or(e)?;
                    write(&sub.join("cgroup.procs"), &pid.to_string())?;
                }
                other => other?,
            }
        }
        Ok(())
    }

    /// Kills whatever is left in the container's cgroups and removes the directories berth
    /// made, deepest first. Directories it did not make are never removed.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        kill_all(&self.joined, libc::SIGKILL);
        let stopped = self.unit.as_ref().map_or(Ok(()), systemd::stop);
        self.remove_created_checked().and(stopped)
    }

    fn remove_created(&self) {
        let _ = self.remove_created_checked();
    }

    fn remove_created_checked(&self) -> Result<(), CgroupError> {
        let mut result = Ok(());
        for dir in self.created.iter().rev() {
            let leaf = self.joined.contains(dir);
            if leaf {
                remove_children(dir);
            }
            // A killed task leaves its cgroup asynchronously: retry EBUSY for a short while.
            let mut tries = 0;
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && leaf && tries < 200 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    // An ancestor we made may now hold other containers: it stays.
                    Err(_) if !leaf => break,
                    Err(e) => {
                        if result.is_ok() {
                            result = Err(cg_err("remove", dir)(e));
                        }
                        break;
                    }
                }
            }
        }
        result
    }
}

/// On a cgroup v2 host, every controller the hierarchy offers is handed down to the
/// container's cgroup through each ancestor's subtree_control, as runc does: the
/// container's memory.stat, pids.current, cpu.stat… then exist whatever its limits, for
/// `events`, `update` and nested engines. Best effort, one by one if the whole set is
/// refused (an ancestor holding processes refuses them all): a limit that needs a missing
/// controller fails on its own, naming its field.
fn enable_controllers(mount: &Path, dir: &Path) {
    let offered = fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
    let all: Vec<String> = offered
        .split_whitespace()
        .map(|c| format!("+{c}"))
        .collect();
    if all.is_empty() {
        return;
    }
    let mut cur = mount.to_path_buf();
    for comp in dir
        .strip_prefix(mount)
        .unwrap_or(Path::new(""))
        .components()
    {
        let sc = cur.join("cgroup.subtree_control");
        if write(&sc, &all.join(" ")).is_err() {
            for c in &all {
                let _ = write(&sc, c);
            }
        }
        cur.push(comp);
    }
}

/// The cgroups made inside the container's own (a systemd init's init.scope and slices,
/// a nested engine's), deepest first: a cgroup with children cannot be removed. Best
/// effort; what is left makes the container's own removal fail and be reported.
fn remove_children(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let child = e.path();
            remove_children(&child);
            for _ in 0..200 {
                match fs::remove_dir(&child) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    _ => break,
                }
            }
        }
    }
}

/// The v2 cgroup directory `init_pid` is in, if it is `dir` or below it.
fn init_cgroup_below(init_pid: i32, dir: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{init_pid}/cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let h = hierarchies().ok()?.into_iter().find(|h| h.v2)?;
    let rel = Path::new(path).strip_prefix(&h.root).ok()?;
    let sub = h.mount.join(rel);
    (sub.starts_with(dir)
        && !sub
            .components()
            .any(|c| c == std::path::Component::ParentDir))
    .then_some(sub)
}

/// The config field an error about the container's cgroup names.
fn field(cgroups_path: Option<&Path>) -> String {
    match cgroups_path {
        Some(p) => format!("linux.cgroupsPath {}", p.display()),
        None => "linux.cgroupsPath (default)".to_string(),
    }
}

/// The freezer file says FROZEN (v1) or 1 (v2's cgroup.freeze); an unreadable one is not.
fn frozen_now(file: &Path) -> bool {
    fs::read_to_string(file).is_ok_and(|s| matches!(s.trim(), "FROZEN" | "1"))
}

/// A new v1 cpuset cgroup starts with empty cpus/mems, which refuses tasks (ENOSPC): copy
/// the parent's. A parent someone else made may be empty too, so first fill each empty
/// ancestor from its own parent, down from the nearest one that has values (runc's cpuset
/// ensureParent/copyIfNeeded). The hierarchy root always has them.
fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let v = cpuset_value(parent, f)?;
        if v.is_empty() && parent.parent().is_some_and(|gp| gp.join(f).exists()) {
            inherit_cpuset(parent)?;
        }
        let v = cpuset_value(parent, f)?;
        if !v.is_empty() && cpuset_value(dir, f)?.is_empty() {
            write(&dir.join(f), &v)?;
        }
    }
    Ok(())
}

fn cpuset_value(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let p = dir.join(file);
    Ok(fs::read_to_string(&p)
        .map_err(cg_err("read", &p))?
        .trim()
        .to_string())
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(cg_err("open", path))?;
    f.write_all(value.as_bytes())
        .map_err(|source| CgroupError::Io {
            op: "write",
            path: path.to_path_buf(),
            source: io::Error::new(source.kind(), format!("value {value:?}: {source}")),
        })
}

/// cgroup v2 has no device files: the rules become an eBPF program attached to the
/// container's directory (replacing berth's previous one on update).
pub(crate) fn devices_v2(
    dir: &Path,
    rules: &[oci_spec::runtime::LinuxDeviceCgroup],
) -> Result<(), CgroupError> {
    let list: Vec<ebpf::Rule> = resources::v1_rules(rules)
        .into_iter()
        .filter_map(|(allow, r)| parse_rule(allow, &r))
        .collect();
    let prog = ebpf::program(&list);
    let fail = |e: ebpf::EbpfError| CgroupError::State(format!("linux.resources.devices: {e}"));
    ebpf::detach_all(dir).map_err(fail)?;
    ebpf::load_and_attach(&prog, dir).map_err(fail)?;
    Ok(())
}

/// "c 1:3 rwm" / "a" (the v1 rule syntax) → an eBPF rule.
fn parse_rule(allow: bool, r: &str) -> Option<ebpf::Rule> {
    if r == "a" {
        return Some(ebpf::Rule {
            allow,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        });
    }
    let mut it = r.split(' ');
    let kind = it.next()?.chars().next()?;
    let (maj, min) = it.next()?.split_once(':')?;
    let num = |s: &str| if s == "*" { None } else { s.parse().ok() };
    Some(ebpf::Rule {
        allow,
        kind,
        major: num(maj),
        minor: num(min),
        access: it.next().unwrap_or("rwm").to_string(),
    })
}

/// Pids in the first readable cgroup.procs among `dirs`.
pub fn pids(dirs: &[PathBuf]) -> Vec<i32> {
    for d in dirs {
        if let Ok(s) = fs::read_to_string(d.join("cgroup.procs")) {
            return s.lines().filter_map(|l| l.trim().parse().ok()).collect();
        }
    }
    Vec::new()
}

/// The freezer file: v1's freezer.state wherever the host has it (on a hybrid host the
/// cgroup2 directory also has cgroup.freeze, but v1 is what engines and `state` read).
fn freezer(dirs: &[PathBuf]) -> Option<(PathBuf, bool)> {
    let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.exists());
    find("freezer.state")
        .map(|p| (p, true))
        .or_else(|| find("cgroup.freeze").map(|p| (p, false)))
}

pub fn is_frozen(dirs: &[PathBuf]) -> bool {
    match freezer(dirs) {
        // FREEZING: a freeze is under way, or a task (an `exec --ignore-paused`) just joined
        // the frozen cgroup and is not stopped yet; either way the container is paused.
        Some((p, true)) => {
            fs::read_to_string(p).is_ok_and(|s| matches!(s.trim(), "FROZEN" | "FREEZING"))
        }
        Some((p, false)) => fs::read_to_string(p).is_ok_and(|s| s.trim() == "1"),
        None => false,
    }
}

/// Freezes (or thaws) every process of the container and waits until the kernel says so.
pub fn set_frozen(dirs: &[PathBuf], frozen: bool) -> Result<(), CgroupError> {
    let (file, v1) = freezer(dirs)
        .ok_or_else(|| CgroupError::State(crate::rootless::no_cgroup_reason("freezer")))?;
    let want = match (v1, frozen) {
        (true, true) => "FROZEN",
        (true, false) => "THAWED",
        (false, true) => "1",
        (false, false) => "0",
    };
    for _ in 0..1000 {
        write(&file, want)?;
        let now = if v1 {
            fs::read_to_string(&file).unwrap_or_default()
        } else {
            // cgroup.events says when every task has really stopped.
            let ev = fs::read_to_string(file.with_file_name("cgroup.events")).unwrap_or_default();
            let f = ev.lines().any(|l| l == "frozen 1");
            (if f { "1" } else { "0" }).to_string()
        };
        if now.trim() == want {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err(CgroupError::State(format!(
        "{}: did not become {want}",
        file.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str = "\
30 24 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";

    #[test]
    fn v1_rule_text_to_ebpf_rule() {
        let r = parse_rule(true, "c 1:3 rw").unwrap();
        assert_eq!(
            (r.kind, r.major, r.minor, r.access.as_str()),
            ('c', Some(1), Some(3), "rw")
        );
        let r = parse_rule(false, "b *:* m").unwrap();
        assert_eq!((r.allow, r.major, r.minor), (false, None, None));
        assert_eq!(parse_rule(false, "a").unwrap().kind, 'a');
    }

    #[test]
    fn hybrid_mountinfo() {
        let hs = parse_mountinfo(MI);
        assert_eq!(hs.len(), 4);
        assert!(hs[0].v2);
        assert_eq!(hs[1].controllers, vec!["name=systemd"]);
        assert_eq!(hs[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(hs[2].mount, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
    }

    #[test]
    fn cgroups_path_semantics() {
        let hs = parse_mountinfo(MI);
        let mem = &hs[3];
        let selfcg = "4:memory:/user.slice/sess\n0::/init\n";
        assert_eq!(
            resolve(mem, Some(Path::new("/a/b")), "id", selfcg),
            PathBuf::from("/sys/fs/cgroup/memory/a/b")
        );
        assert_eq!(
            resolve(mem, Some(Path::new("rel")), "id", selfcg),
            PathBuf::from("/sys/fs/cgroup/memory/user.slice/sess/rel")
        );
        assert_eq!(
            resolve(mem, None, "c1", selfcg),
            PathBuf::from("/sys/fs/cgroup/memory/berth/c1")
        );
        assert_eq!(
            resolve(&hs[0], Some(Path::new("rel")), "id", selfcg),
            PathBuf::from("/sys/fs/cgroup/unified/init/rel")
        );
    }
}
