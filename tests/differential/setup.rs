//! What every scenario shares, made once per run: a scratch directory, the busybox bundle
//! from test-bundles/make-bundle.sh (its config is the template every scenario mutates),
//! rootfs variants, and host files that bind mounts use as sources. Both runtimes see the
//! same shared paths, so mountinfo lines naming them compare equal without normalising.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};

pub struct Setup {
    pub base: PathBuf,
    pub template: Value,
    pub shared: PathBuf,
}

pub fn get() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(make)
}

/// Removes the scratch directory once all scenarios are done (if it was made at all).
pub fn remove() {
    if let Some(base) = scratch_if_made() {
        let _ = std::fs::remove_dir_all(base);
    }
    // The per-container cgroups are gone after each delete; their common parent, made by
    // the runtimes, goes too (rmdir: only if empty, so nothing of anyone else is touched).
    for (_, dir) in crate::flows::own_cgroups() {
        let _ = std::fs::remove_dir(dir.join("berth-diff"));
    }
}

fn scratch_if_made() -> Option<PathBuf> {
    let p = scratch();
    p.exists().then_some(p)
}

fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("differential-{}", std::process::id()))
}

fn make() -> Setup {
    let base = scratch();
    let bundle = base.join("bundle");
    std::fs::create_dir_all(&base).expect("scratch dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-bundles/make-bundle.sh");
    let st = Command::new("bash")
        .arg(script)
        .arg(&bundle)
        .stdout(Stdio::null())
        .status()
        .expect("run make-bundle.sh");
    assert!(st.success(), "make-bundle.sh failed");
    let rootfs = bundle.join("rootfs");
    // Mount points the scenarios use exist beforehand: a runtime that creates one would
    // otherwise change the shared rootfs for the runtime that runs after it.
    for d in [
        "mnt/a", "mnt/b", "mnt/c", "mnt/d", "out", "home/app", "srv/ro",
    ] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::write(rootfs.join("mnt/file"), "mount point\n").unwrap();
    make_users_variant(&base, &rootfs);
    let shared = base.join("shared");
    std::fs::create_dir_all(shared.join("dir/sub")).unwrap();
    std::fs::write(shared.join("dir/hello"), "hello\n").unwrap();
    std::fs::write(shared.join("file"), "a host file\n").unwrap();
    let template = serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap())
        .expect("template config");
    Setup {
        base,
        template,
        shared,
    }
}

/// "users": the base rootfs plus an /etc/passwd entry for uid 1000 and groups naming it.
fn make_users_variant(base: &Path, rootfs: &Path) {
    let users = base.join("rootfs-users");
    copy_tree(rootfs, &users);
    std::fs::write(
        users.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        users.join("etc/group"),
        "root:x:0:\nwheel:x:10:app\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n",
    )
    .unwrap();
}

pub fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp -a");
    assert!(st.success(), "copying {} failed", from.display());
}

impl Setup {
    /// The rootfs of a variant: "base" or "users".
    pub fn rootfs(&self, variant: &str) -> PathBuf {
        match variant {
            "base" => self.base.join("bundle/rootfs"),
            v => self.base.join(format!("rootfs-{v}")),
        }
    }

    /// The template config for one container: absolute rootfs, a cgroup path of its own
    /// relative to the runtime's cgroup (inside the sandbox's), the observation script.
    pub fn config(&self, rootfs: &Path, id: &str, script: &str) -> Value {
        let mut c = self.template.clone();
        c["root"]["path"] = json!(rootfs);
        c["process"]["args"] = json!(["sh", "-c", script]);
        c["linux"]["cgroupsPath"] = json!(format!("berth-diff/{id}"));
        c
    }
}
