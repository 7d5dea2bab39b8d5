//! list, spec, features and --version.

use serde_json::Value;

use crate::common::*;

#[test]
fn list_shows_containers_in_every_format() {
    let env = Env::new(&["sleep", "100"]);
    env.write_config();
    let a = env.id();
    let b = env.id();
    env.berth(&[
        "run",
        "--detach",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &a,
    ])
    .ok();
    env.create(&b).ok();
    let q = env.berth(&["list", "-q"]);
    q.ok();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(q.stdout.lines().collect::<Vec<_>>(), want);
    let j: Vec<Value> =
        serde_json::from_str(&env.berth(&["list", "--format", "json"]).ok().stdout).unwrap();
    let status = |id: &str| {
        j.iter().find(|c| c["id"] == id).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status(&a), "running");
    assert_eq!(status(&b), "created");
    let t = env.berth(&["list"]);
    t.ok();
    assert!(
        t.stdout.starts_with("ID") && t.stdout.contains(&a) && t.stdout.contains("created"),
        "{}",
        t.stdout
    );
    // A half-made container directory (create killed early) does not break list.
    std::fs::create_dir_all(env.root.join("half-made")).unwrap();
    env.berth(&["list", "-q"]).ok();
    env.berth(&["delete", "half-made"]).ok();
    for id in [&a, &b] {
        env.berth(&["delete", "--force", id]).ok();
        env.assert_clean(id);
    }
    assert_eq!(env.berth(&["list", "-q"]).stdout, "");
}

#[test]
fn spec_writes_a_config_that_runs() {
    let env = Env::new(&["true"]);
    let dir = env.tmp.path().join("specced");
    std::fs::create_dir_all(&dir).unwrap();
    env.berth(&["spec", "--bundle", dir.to_str().unwrap()]).ok();
    env.berth(&["spec", "--bundle", dir.to_str().unwrap()])
        .fails_with(&["already exists"]);
    let mut c: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["process"]["terminal"], true);
    assert_eq!(c["process"]["args"][0], "sh");
    // Run it non-interactively on the shared rootfs.
    c["process"]["terminal"] = Value::Bool(false);
    c["process"]["args"] = serde_json::json!(["sh", "-c", "echo specced $(hostname)"]);
    c["root"]["path"] = serde_json::json!(default_bundle().join("rootfs"));
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
    let id = env.id();
    let out = env.berth(&["run", "--bundle", dir.to_str().unwrap(), &id]);
    out.ok();
    assert_eq!(out.stdout, "specced berth\n");
    let rl = env.tmp.path().join("rootless");
    std::fs::create_dir_all(&rl).unwrap();
    env.berth(&["spec", "--rootless", "--bundle", rl.to_str().unwrap()])
        .ok();
    let r: Value = serde_json::from_slice(&std::fs::read(rl.join("config.json")).unwrap()).unwrap();
    assert!(
        r["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "user")
    );
    assert!(
        !r["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network")
    );
    assert_eq!(r["linux"]["uidMappings"][0]["hostID"], 0);
}

#[test]
fn features_describes_this_build() {
    let out = Env::new(&["true"]).berth(&["features"]);
    out.ok();
    let f: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert_eq!(f["hooks"].as_array().unwrap().len(), 6);
    assert_eq!(f["linux"]["netDevices"]["enabled"], true);
    assert_eq!(
        f["linux"]["memoryPolicy"]["modes"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let ns: Vec<&str> = f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        ns,
        [
            "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"
        ]
    );
    assert!(
        f["mountOptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "rro")
    );
    assert!(
        f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN")
    );
    assert_eq!(f["linux"]["cgroup"]["systemd"], false);
    // Enabled exactly where the AppArmor LSM is active (apparmor.rs tests both ways).
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    assert_eq!(f["linux"]["apparmor"]["enabled"], apparmor);
}

#[test]
fn version_in_runcs_layout() {
    let out = Env::new(&["true"]).berth(&["--version"]);
    out.ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert!(l[0].starts_with("berth version "));
    assert!(l[1].starts_with("commit: "));
    assert!(l[2].starts_with("spec: 1."));
}

#[test]
fn a_new_session_keyring_unless_no_new_keyring() {
    for (flag, want) in [(None, true), (Some("--no-new-keyring"), false)] {
        let mut env = Env::new(&["true"]);
        let id = env.id();
        env.set(
            "/process/args",
            serde_json::json!([
                "sh",
                "-c",
                format!("grep -c ' _ses.{id}: ' /proc/keys; true")
            ]),
        );
        env.set("/linux/maskedPaths", serde_json::json!([]));
        env.write_config();
        let mut args = vec!["run"];
        args.extend(flag);
        args.extend(["--bundle", env.bundle.to_str().unwrap(), &id]);
        let out = env.berth(&args);
        out.ok();
        assert_eq!(out.stdout.trim() != "0", want, "{flag:?}: {}", out.stdout);
    }
}

#[test]
fn listen_fds_are_passed_to_the_container_init() {
    let env = Env::new(&["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; cat <&3"]);
    env.write_config();
    let id = env.id();
    let data = env.tmp.path().join("socket-stand-in");
    std::fs::write(&data, "activated\n").unwrap();
    // sh sets LISTEN_PID to its own pid, which berth keeps across exec.
    let script = format!(
        "exec 3<{}; export LISTEN_FDS=1 LISTEN_PID=$$; exec {} --root {} run --bundle {} {}",
        data.display(),
        BIN,
        env.root.display(),
        env.bundle.display(),
        id
    );
    let out = run_cmd(
        std::process::Command::new("sh").args(["-c", &script]),
        std::time::Duration::from_secs(60),
    );
    out.ok();
    assert_eq!(out.stdout, "1 1\nactivated\n");
    env.assert_clean(&id);
}
