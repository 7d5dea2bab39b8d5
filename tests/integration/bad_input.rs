//! Bad input: each mistake is a one-line error naming the field or path, exit 1, and
//! nothing left behind (no state dir, cgroup, mount or process).

use serde_json::{Value, json};

use crate::common::*;

/// `create` of a fresh id must fail with `needles`; nothing of it may remain.
fn create_fails(env: &Env, needles: &[&str]) {
    let id = env.id();
    env.create(&id).fails_with(needles);
    env.assert_clean(&id);
    assert!(!env.root.join(&id).exists());
}

/// The index the next pushed mount gets.
fn next_mount(env: &Env) -> usize {
    env.config["mounts"].as_array().unwrap().len()
}

fn without_ns(env: &mut Env, kind: &str) {
    let ns: Vec<Value> = env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != kind)
        .cloned()
        .collect();
    env.set("/linux/namespaces", json!(ns));
}

fn ns_index(env: &Env, kind: &str) -> usize {
    env.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .position(|n| n["type"] == kind)
        .unwrap()
}

#[test]
fn missing_bundle_directory() {
    let env = Env::new(&["true"]);
    let id = env.id();
    let missing = env.tmp.path().join("no-such-bundle");
    env.berth(&["create", "--bundle", missing.to_str().unwrap(), &id])
        .fails_with(&["bundle", missing.to_str().unwrap()]);
    env.assert_clean(&id);
}

#[test]
fn bundle_without_config_json() {
    let env = Env::new(&["true"]);
    let id = env.id();
    // env.bundle exists but config.json was never written.
    env.berth(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .fails_with(&["config.json", env.bundle.to_str().unwrap()]);
    env.assert_clean(&id);
}

#[test]
fn invalid_json_names_line_and_column() {
    let env = Env::new(&["true"]);
    let id = env.id();
    std::fs::write(
        env.bundle.join("config.json"),
        "{\n  \"ociVersion\": \"1.0.2\",\n  oops\n}\n",
    )
    .unwrap();
    env.berth(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .fails_with(&["config.json", "line 3", "column"]);
    env.assert_clean(&id);
}

#[test]
fn wrongly_typed_field_names_its_path() {
    let mut env = Env::new(&["true"]);
    env.set("/process/user/uid", json!("zero"));
    create_fails(&env, &["process.user.uid"]);
}

#[test]
fn unsupported_oci_version() {
    let mut env = Env::new(&["true"]);
    env.set("/ociVersion", json!("2.0.0"));
    create_fails(&env, &["ociVersion", "2.0.0"]);
}

#[test]
fn unknown_mount_type() {
    let mut env = Env::new(&["true"]);
    let i = next_mount(&env);
    env.push(
        "/mounts",
        json!({"destination": "/x", "type": "nosuchfs", "source": "none"}),
    );
    create_fails(&env, &[&format!("mounts[{i}].type"), "nosuchfs"]);
}

/// Not bad input after all: runc hands filesystem data on a bind to mount(2), which
/// ignores it, so engines' configs carrying such words run; berth ignores it too.
#[test]
fn unknown_option_on_a_bind_mount_is_ignored() {
    let mut env = Env::new(&["sh", "-c", "grep -c ' /x ' /proc/self/mountinfo"]);
    let src = env.out.clone();
    env.push(
        "/mounts",
        json!({"destination": "/x", "type": "bind", "source": src, "options": ["rbind", "frobnicate", "mode=755"]}),
    );
    let out = env.run();
    out.ok();
    assert_eq!(out.stdout.trim(), "1", "{}", out.stdout);
}

/// A relative destination is taken relative to `/`, as runc does (with a warning).
#[test]
fn relative_mount_destination_is_taken_from_root() {
    let mut env = Env::new(&["sh", "-c", "grep -c ' /x ' /proc/self/mountinfo"]);
    env.push(
        "/mounts",
        json!({"destination": "x", "type": "tmpfs", "source": "tmpfs"}),
    );
    let out = env.run();
    out.ok();
    assert_eq!(out.stdout.trim(), "1", "{}", out.stdout);
    assert!(out.stderr.contains("relative"), "{}", out.stderr);
}

#[test]
fn bind_mount_of_a_missing_source() {
    let mut env = Env::new(&["true"]);
    let src = env.tmp.path().join("no-such-source");
    env.push(
        "/mounts",
        json!({"destination": "/x", "type": "bind", "source": src, "options": ["rbind"]}),
    );
    create_fails(&env, &[src.to_str().unwrap()]);
}

#[test]
fn nonexistent_root_path() {
    let mut env = Env::new(&["true"]);
    let missing = env.tmp.path().join("no-such-rootfs");
    env.set("/root/path", json!(missing));
    create_fails(&env, &["root.path", missing.to_str().unwrap()]);
}

#[test]
fn relative_cwd() {
    let mut env = Env::new(&["true"]);
    env.set("/process/cwd", json!("tmp"));
    create_fails(&env, &["process.cwd"]);
}

#[test]
fn empty_args() {
    let mut env = Env::new(&["true"]);
    env.set("/process/args", json!([]));
    create_fails(&env, &["process.args"]);
}

#[test]
fn duplicate_id_leaves_the_first_container_alone() {
    let env = Env::new(&["sh", "-c", "echo ran > /out/marker"]);
    let id = env.id();
    env.create(&id).ok();
    let state_path = env.root.join(&id).join("state.json");
    let before = std::fs::read(&state_path).unwrap();
    env.create(&id).fails_with(&["already exists", &id]);
    assert_eq!(env.status(&id), "created");
    assert_eq!(std::fs::read(&state_path).unwrap(), before);
    assert!(env.root.join(&id).join("exec.fifo").exists());
    assert_eq!(env.read_out("marker"), "");
    // The first container still works.
    env.berth(&["start", &id]).ok();
    env.wait_status(&id, "stopped");
    assert_eq!(env.read_out("marker"), "ran\n");
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn malformed_ids_are_refused() {
    let env = Env::new(&["true"]);
    env.write_config();
    for bad in ["a/b", "..", ".", "", "a b", "../bundle"] {
        env.berth(&["create", "--bundle", env.bundle.to_str().unwrap(), bad])
            .fails_with(&["invalid"]);
        assert_eq!(
            std::fs::read_dir(&env.root).map(|d| d.count()).unwrap_or(0),
            0,
            "create {bad:?} left something under --root"
        );
    }
    // The other verbs check the id too: "../bundle" must not reach the bundle dir.
    for verb in [
        &["delete", "--force", "../bundle"][..],
        &["state", "../bundle"],
        &["start", "../bundle"],
        &["kill", "../bundle", "KILL"],
    ] {
        env.berth(verb).fails_with(&["invalid"]);
    }
    assert!(env.bundle.join("config.json").exists());
}

#[test]
fn verbs_on_a_missing_container() {
    let env = Env::new(&["true"]);
    let id = env.id();
    for verb in [
        &["start", &id][..],
        &["state", &id],
        &["kill", &id, "KILL"],
        &["delete", &id],
    ] {
        env.berth(verb).fails_with(&["does not exist", &id]);
    }
    // As runc: engines force-delete containers that are already gone, and expect success.
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn missing_executable() {
    let env = Env::new(&["no-such-program-xyz", "arg"]);
    create_fails(&env, &["no-such-program-xyz", "executable file not found"]);
}

#[test]
fn missing_executable_by_path() {
    let env = Env::new(&["/bin/no-such-program"]);
    create_fails(&env, &["/bin/no-such-program", "no such file"]);
}

#[test]
fn hostname_without_uts_namespace() {
    let mut env = Env::new(&["true"]);
    without_ns(&mut env, "uts");
    create_fails(&env, &["hostname", "uts"]);
}

#[test]
fn namespace_path_of_the_wrong_type() {
    let mut env = Env::new(&["true"]);
    let i = ns_index(&env, "network");
    env.config["linux"]["namespaces"][i] = json!({"type": "network", "path": "/proc/self/ns/uts"});
    create_fails(
        &env,
        &[
            &format!("linux.namespaces[{i}].path"),
            "/proc/self/ns/uts",
            "not a network namespace",
        ],
    );
}

#[test]
fn namespace_path_that_is_not_a_namespace() {
    let mut env = Env::new(&["true"]);
    let i = ns_index(&env, "network");
    env.config["linux"]["namespaces"][i] = json!({"type": "network", "path": "/etc/passwd"});
    create_fails(
        &env,
        &[
            &format!("linux.namespaces[{i}].path"),
            "/etc/passwd",
            "not a namespace file",
        ],
    );
}

#[test]
fn namespace_path_that_does_not_exist() {
    let mut env = Env::new(&["true"]);
    let i = ns_index(&env, "ipc");
    let missing = env.tmp.path().join("no-such-ns");
    env.config["linux"]["namespaces"][i] = json!({"type": "ipc", "path": missing});
    create_fails(
        &env,
        &[
            &format!("linux.namespaces[{i}].path"),
            missing.to_str().unwrap(),
        ],
    );
}

#[test]
fn rlimit_above_the_host_hard_limit() {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a valid struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) }, 0);
    assert_ne!(cur.rlim_max, libc::RLIM_INFINITY);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    const CAP_SYS_RESOURCE: u32 = 24;
    assert_eq!(
        bnd & (1u64 << CAP_SYS_RESOURCE),
        0,
        "this test expects a host without CAP_SYS_RESOURCE in the bounding set"
    );
    let mut env = Env::new(&["true"]);
    let hard = cur.rlim_max + 1;
    env.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "hard": hard, "soft": 1024}]),
    );
    create_fails(
        &env,
        &["RLIMIT_NOFILE", "CAP_SYS_RESOURCE", &hard.to_string()],
    );
}

#[test]
fn rlimit_soft_above_hard() {
    let mut env = Env::new(&["true"]);
    env.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 2048}]),
    );
    create_fails(&env, &["process.rlimits[0]", "RLIMIT_NOFILE", "soft"]);
}

#[test]
fn unknown_rlimit_type() {
    let mut env = Env::new(&["true"]);
    env.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOPE", "hard": 1, "soft": 1}]),
    );
    create_fails(&env, &["process.rlimits", "RLIMIT_NOPE"]);
}
