//! AppArmor: `process.apparmorProfile` and `exec --apparmor`. On a host without AppArmor
//! (this VM) the refusal is tested; the enforcing tests need AppArmor and run in the guest
//! lane (tests/guest/run.sh), with runc beside berth on the same bundle.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::cgroups_v2::runc;
use crate::common::Env;

const PROFILE: &str = "berth-test";

fn apparmor_on() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

fn features_apparmor(env: &Env) -> Value {
    let out = env.berth(&["features"]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    v["linux"]["apparmor"].clone()
}

/// Runs everywhere: where AppArmor is off, a profile is refused in one line naming the
/// field and the profile (create and exec), nothing is left, and `features` says
/// disabled; where it is on, `features` says so and a profile that is not loaded is
/// refused likewise.
#[test]
fn apparmor_profile_refused_where_it_cannot_apply() {
    let mut env = Env::new(&["sleep", "100"]);
    let (reason, profile) = if apparmor_on() {
        assert_eq!(features_apparmor(&env), json!({"enabled": true}));
        ("no such profile is loaded", "berth-never-loaded")
    } else {
        assert_eq!(features_apparmor(&env), json!({"enabled": false}));
        ("AppArmor is not enabled", PROFILE)
    };
    env.set("/process/apparmorProfile", json!(profile));
    let id = env.id();
    env.create(&id)
        .fails_with(&["process.apparmorProfile", profile, reason]);
    env.assert_clean(&id);

    // exec: --apparmor, and a process.json naming a profile.
    env.set("/process/apparmorProfile", json!(""));
    let id = env.start_detached();
    env.berth(&["exec", "--apparmor", profile, &id, "true"])
        .exec_fails_with(&["--apparmor", profile, reason]);
    let mut p = env.config["process"].clone();
    p["args"] = json!(["true"]);
    p["apparmorProfile"] = json!(profile);
    let pj = env.tmp.path().join("process.json");
    std::fs::write(&pj, p.to_string()).unwrap();
    env.berth(&["exec", "--process", pj.to_str().unwrap(), &id])
        .exec_fails_with(&["process.apparmorProfile", profile, reason]);
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}

/// Loads the test profile once: everything allowed but reading /etc/group.
fn load_profile() {
    static LOADED: OnceLock<()> = OnceLock::new();
    LOADED.get_or_init(|| {
        let text = format!(
            "profile {PROFILE} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  network,\n  capability,\n  signal,\n  umount,\n  deny /etc/group r,\n}}\n"
        );
        let f = std::env::temp_dir().join("berth-test.apparmor");
        std::fs::write(&f, text).unwrap();
        let st = Command::new("apparmor_parser")
            .arg("-r")
            .arg(&f)
            .status()
            .expect("apparmor_parser (the guest image has it)");
        assert!(st.success(), "apparmor_parser -r {}", f.display());
        let list = std::fs::read_to_string("/sys/kernel/security/apparmor/profiles").unwrap();
        assert!(list.contains(&format!("{PROFILE} (enforce)")), "{list}");
    });
}

/// What a process under the test profile sees: its label, an allowed read, a denied one.
const PROBE: &str = "cat /proc/self/attr/current; echo; \
    cat /etc/passwd >/dev/null && echo passwd:read; \
    cat /etc/group >/dev/null 2>&1 || echo group:denied";

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn confined() -> Vec<String> {
    lines(&format!("{PROFILE} (enforce)\npasswd:read\ngroup:denied"))
}

#[test]
#[ignore = "guest lane: needs AppArmor enabled (tests/guest/run.sh)"]
fn guest_apparmor_profile_confines_the_container() {
    crate::cgroups_v2::guest();
    assert!(apparmor_on());
    load_profile();
    let mut env = Env::new(&["sh", "-c", PROBE]);
    env.set("/process/apparmorProfile", json!(PROFILE));
    let b = env.run();
    b.ok();
    assert_eq!(lines(&b.stdout), confined(), "berth");
    let r = env.run_runc();
    r.ok();
    assert_eq!(lines(&r.stdout), confined(), "runc");
    assert_eq!(features_apparmor(&env), json!({"enabled": true}));
}

#[test]
#[ignore = "guest lane: needs AppArmor enabled (tests/guest/run.sh)"]
fn guest_apparmor_exec_takes_the_flag_the_process_or_the_containers() {
    crate::cgroups_v2::guest();
    load_profile();
    let bundle_args = ["sleep", "100"];
    // An unconfined container: exec --apparmor confines the exec'd process only.
    let mut env = Env::new(&bundle_args);
    let id = env.start_detached();
    let b = env.berth(&["exec", "--apparmor", PROFILE, &id, "sh", "-c", PROBE]);
    b.ok();
    assert_eq!(lines(&b.stdout), confined(), "berth exec --apparmor");
    let plain = env.berth(&["exec", &id, "cat", "/proc/self/attr/current"]);
    assert_eq!(
        plain.stdout.trim(),
        "unconfined",
        "berth exec without a profile"
    );
    // process.json naming the profile.
    let mut p = env.config["process"].clone();
    p["args"] = json!(["sh", "-c", PROBE]);
    p["apparmorProfile"] = json!(PROFILE);
    let pj = env.tmp.path().join("process.json");
    std::fs::write(&pj, p.to_string()).unwrap();
    let b = env.berth(&["exec", "--process", pj.to_str().unwrap(), &id]);
    b.ok();
    assert_eq!(lines(&b.stdout), confined(), "berth exec --process");
    env.berth(&["delete", "--force", &id]).ok();

    // runc beside it, same bundle.
    env.write_config();
    let rid = format!("{id}-runc");
    let bundle = env.bundle.to_str().unwrap().to_string();
    runc(&env, &["run", "--detach", "--bundle", &bundle, &rid]).ok();
    let r = runc(
        &env,
        &["exec", "--apparmor", PROFILE, &rid, "sh", "-c", PROBE],
    );
    assert_eq!(lines(&r.stdout), confined(), "runc exec --apparmor");
    runc(&env, &["delete", "--force", &rid]);

    // A confined container: a plain exec is confined by the container's profile.
    env.set("/process/apparmorProfile", json!(PROFILE));
    let id = env.start_detached();
    let b = env.berth(&["exec", &id, "sh", "-c", PROBE]);
    assert_eq!(
        lines(&b.stdout),
        confined(),
        "berth exec in a confined container"
    );
    env.berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
    assert!(Path::new("/sys/kernel/security/apparmor").exists());
}

#[test]
#[ignore = "guest lane: needs AppArmor enabled (tests/guest/run.sh)"]
fn guest_apparmor_unloaded_profile_refused_like_runc() {
    crate::cgroups_v2::guest();
    let mut env = Env::new(&["true"]);
    env.set("/process/apparmorProfile", json!("berth-never-loaded"));
    let id = env.id();
    env.create(&id).fails_with(&[
        "process.apparmorProfile",
        "berth-never-loaded",
        "no such profile is loaded",
    ]);
    env.assert_clean(&id);
    let r = env.run_runc();
    assert_ne!(r.code, 0, "runc ran with a profile that is not loaded");
}
