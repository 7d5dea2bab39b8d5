//! config.md `process` and the per-process parts of config-linux.md, read back from
//! /proc/self inside the container.

use serde_json::json;

use crate::common::*;

/// The value of a "Key:\tvalue" line of /proc/self/status as printed by the container.
fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} not in {status}"))
        .trim()
}

#[test]
fn args_env_and_cwd() {
    let mut env = Env::new(&["sh", "-c", "echo \"$0|$1|$FOO|$(pwd)\"", "zero", "one"]);
    env.set("/process/env", json!(["PATH=/bin", "FOO=bar baz"]));
    env.set("/process/cwd", json!("/tmp"));
    let out = env.run();
    out.ok();
    assert_eq!(out.stdout, "zero|one|bar baz|/tmp\n");
}

#[test]
fn user_groups_and_umask() {
    let mut env = Env::new(&[
        "sh",
        "-c",
        "grep -E '^(Uid|Gid|Groups):' /proc/self/status; umask; touch /tmp/f; stat -c %a /tmp/f",
    ]);
    env.set(
        "/process/user",
        json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027}),
    );
    let out = env.run();
    out.ok();
    let s = &out.stdout;
    assert_eq!(status_field(s, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(s, "Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(status_field(s, "Groups"), "10 20");
    let tail: Vec<&str> = s.lines().skip(3).collect();
    assert_eq!(tail, ["0027", "640"]);
}

#[test]
fn capabilities_of_root() {
    let env = Env::new(&["grep", "^Cap", "/proc/self/status"]);
    let out = env.run();
    out.ok();
    // AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10).
    let want = format!("{:016x}", (1u64 << 29) | (1 << 5) | (1 << 10));
    for set in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(status_field(&out.stdout, set), want, "{set}");
    }
    assert_eq!(status_field(&out.stdout, "CapInh"), "0000000000000000");
}

#[test]
fn ambient_capabilities_reach_a_non_root_user() {
    let mut env = Env::new(&["grep", "^Cap", "/proc/self/status"]);
    env.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    let caps = json!(["CAP_NET_BIND_SERVICE", "CAP_KILL"]);
    env.set("/process/capabilities", json!({
        "bounding": caps, "effective": caps, "permitted": caps, "inheritable": ["CAP_NET_BIND_SERVICE"], "ambient": ["CAP_NET_BIND_SERVICE"]
    }));
    let out = env.run();
    out.ok();
    let nbs = format!("{:016x}", 1u64 << 10);
    assert_eq!(status_field(&out.stdout, "CapAmb"), nbs);
    assert_eq!(
        status_field(&out.stdout, "CapEff"),
        nbs,
        "only the ambient cap survives exec for uid 1000"
    );
    assert_eq!(
        status_field(&out.stdout, "CapBnd"),
        format!("{:016x}", (1u64 << 10) | (1 << 5))
    );
}

#[test]
fn rlimits_no_new_privs_and_oom_score_adj() {
    let mut env = Env::new(&[
        "sh",
        "-c",
        "grep -E '^(Max open files|Max processes)' /proc/self/limits; grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj",
    ]);
    env.set(
        "/process/rlimits",
        json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
            {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400}
        ]),
    );
    env.set("/process/oomScoreAdj", json!(500));
    let out = env.run();
    out.ok();
    let mut words: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let line = |p: &str| {
        words
            .iter()
            .find(|l| l.join(" ").starts_with(p))
            .unwrap()
            .join(" ")
    };
    assert!(
        line("Max open files").starts_with("Max open files 512 1000 "),
        "{}",
        out.stdout
    );
    assert!(
        line("Max processes").starts_with("Max processes 300 400 "),
        "{}",
        out.stdout
    );
    words.drain(..2);
    assert_eq!(words[0], ["NoNewPrivs:", "1"]);
    assert_eq!(words[1], ["500"]);
}

#[test]
fn hostname_domainname_and_sysctl() {
    let mut env = Env::new(&[
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax",
    ]);
    env.set("/hostname", json!("box1"));
    env.set("/domainname", json!("example.org"));
    env.set(
        "/linux/sysctl",
        json!({"net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"}),
    );
    let out = env.run();
    out.ok();
    assert_eq!(out.stdout, "box1\nexample.org\n1\n12345\n");
    // The host's values did not change (they live in the container's namespaces).
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap(),
        "12345\n"
    );
}

#[test]
fn personality_linux32() {
    let mut env = Env::new(&["uname", "-m"]);
    env.set("/linux/personality", json!({"domain": "LINUX32"}));
    let out = env.run();
    out.ok();
    assert_eq!(out.stdout, "i686\n");
}

#[test]
fn io_priority_and_scheduler() {
    let mut env = Env::new(&[
        "sh",
        "-c",
        "ionice -p $$; grep '^policy' /proc/self/sched | tr -s ' '; cut -d' ' -f19 /proc/self/stat",
    ]);
    env.set(
        "/process/ioPriority",
        json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}),
    );
    env.set(
        "/process/scheduler",
        json!({"policy": "SCHED_BATCH", "nice": 7}),
    );
    let out = env.run();
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "idle", "{lines:?}");
    assert_eq!(lines[1], "policy : 3", "SCHED_BATCH is policy 3");
    assert_eq!(lines[2], "7", "nice value");
}

#[test]
fn exec_cpu_affinity() {
    let ncpu = std::thread::available_parallelism().unwrap().get();
    let last = ncpu - 1;
    let mut env = Env::new(&["grep", "Cpus_allowed_list", "/proc/self/status"]);
    env.set(
        "/process/execCPUAffinity",
        json!({"initial": "0", "final": last.to_string()}),
    );
    let out = env.run();
    out.ok();
    assert_eq!(
        status_field(&out.stdout, "Cpus_allowed_list"),
        last.to_string()
    );
    let mut env = Env::new(&["grep", "Cpus_allowed_list", "/proc/self/status"]);
    env.set(
        "/process/execCPUAffinity",
        json!({"initial": last.to_string()}),
    );
    let out = env.run();
    out.ok();
    assert_eq!(
        status_field(&out.stdout, "Cpus_allowed_list"),
        last.to_string(),
        "initial alone is inherited by the process"
    );
}

#[test]
fn no_new_privileges_false_is_respected() {
    let mut env = Env::new(&["grep", "NoNewPrivs", "/proc/self/status"]);
    env.set("/process/noNewPrivileges", json!(false));
    let out = env.run();
    out.ok();
    assert_eq!(out.stdout.split_whitespace().nth(1), Some("0"));
}

#[test]
fn signals_are_default_in_the_container() {
    // berth ignores SIGPIPE and blocks signals it forwards; neither may leak in.
    let env = Env::new(&["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
    let out = env.run();
    out.ok();
    assert_eq!(status_field(&out.stdout, "SigBlk"), "0000000000000000");
    assert_eq!(status_field(&out.stdout, "SigIgn"), "0000000000000000");
}

/// This host has one NUMA node (0). The policy is not visible in /proc/self/status
/// (Mems_allowed comes from the cpuset, which it must leave alone) but numa_maps names
/// the task policy for every mapping without one of its own.
#[test]
fn memory_policy_bind_and_interleave() {
    for (policy, word) in [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
            "interleave:0",
        ),
    ] {
        let mut env = Env::new(&[
            "sh",
            "-c",
            "grep Mems_allowed_list /proc/self/status; cut -d' ' -f2 /proc/self/numa_maps | sort | uniq -c",
        ]);
        env.set("/linux/memoryPolicy", policy);
        let out = env.run();
        out.ok();
        assert_eq!(status_field(&out.stdout, "Mems_allowed_list"), "0");
        assert!(out.stdout.contains(word), "{word}: {}", out.stdout);
        assert!(!out.stdout.contains("default"), "{word}: {}", out.stdout);
    }
    // Without a policy the mappings say "default": the check above is not vacuous.
    let env = Env::new(&["cut", "-d ", "-f2", "/proc/self/numa_maps"]);
    let out = env.run();
    out.ok();
    assert!(out.stdout.contains("default"), "{}", out.stdout);
}

#[test]
fn memory_policy_on_a_missing_node_names_the_field() {
    let mut env = Env::new(&["true"]);
    env.set(
        "/linux/memoryPolicy",
        json!({"mode": "MPOL_BIND", "nodes": "5"}),
    );
    env.run()
        .fails_with(&["linux.memoryPolicy", "MPOL_BIND nodes 5", "EINVAL"]);
}
