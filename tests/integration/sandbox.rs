//! The test command runs every container-starting test inside tests/isolate.sh, so a
//! runtime bug that pivots, unmounts or kills by cgroup damages only that sandbox. This
//! proves it: run-all records the host's namespaces before entering the sandbox.

fn ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_tests_run_in_their_own_mount_and_pid_namespace() {
    let (Ok(host_mnt), Ok(host_pid)) = (
        std::env::var("BERTH_TEST_HOST_MNTNS"),
        std::env::var("BERTH_TEST_HOST_PIDNS"),
    ) else {
        panic!(
            "BERTH_TEST_HOST_MNTNS/PIDNS unset: run the suite through tests/run-all.sh \
             (or tests/isolate.sh), never bare on the host"
        );
    };
    assert_ne!(
        ns("mnt"),
        host_mnt,
        "the tests share the host's mount namespace"
    );
    assert_ne!(
        ns("pid"),
        host_pid,
        "the tests share the host's pid namespace"
    );
    // PID 1 of our pid namespace is the sandbox's own shell, not the machine's init.
    let init = std::fs::read_to_string("/proc/1/cmdline").unwrap_or_default();
    assert!(
        !init.starts_with("/sbin/init") && !init.contains("systemd"),
        "pid 1 is {init:?}"
    );
    // The root mount is private in the sandbox: nothing mounted here propagates out.
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("a root mount");
    assert!(!root.contains("shared:"), "root mount is shared: {root}");
}
