//! Containment tests for the runc escape classes (issue 4), each attempting the attack.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// Runs `berth run` with a host directory fd (not close-on-exec) at fd 5, like a leaky
/// caller would pass it.
fn run_with_leaked_fd(env: &Env, extra: &[&str]) -> Out {
    env.write_config();
    let id = env.id();
    let host_root = std::fs::File::open("/").unwrap();
    let raw = host_root.as_raw_fd();
    let mut cmd = Command::new(BIN);
    cmd.arg("--root")
        .arg(&env.root)
        .arg("run")
        .args(extra)
        .arg("--bundle")
        .arg(&env.bundle)
        .arg(&id);
    // SAFETY: dup2 in the child before exec; no allocation.
    unsafe {
        cmd.pre_exec(move || {
            // dup() never sets FD_CLOEXEC, whatever number it lands on.
            let t = libc::dup(raw);
            if t < 0 || (t != 5 && libc::dup2(t, 5) < 0) {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run_cmd(&mut cmd, Duration::from_secs(60));
    env.assert_clean(&id);
    out
}

#[test]
fn cve_2024_21626_no_host_fd_reaches_the_container() {
    let env = Env::new(&["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"]);
    let out = run_with_leaked_fd(&env, &[]);
    out.ok();
    let fds: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        fds,
        ["0", "1", "2", "3"],
        "only stdio (and ls's own dir fd) may be open"
    );
}

#[test]
fn cve_2024_21626_cwd_through_a_leaked_fd_is_refused() {
    let mut env = Env::new(&["sh", "-c", "ls /etc/shadow-of-host 2>&1; pwd"]);
    env.set("/process/cwd", json!("/proc/self/fd/5"));
    let out = run_with_leaked_fd(&env, &[]);
    out.fails_with(&["process.cwd", "outside the container"]);
}

#[test]
fn preserve_fds_passes_exactly_the_asked_fds() {
    let env = Env::new(&["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"]);
    env.write_config();
    let id = env.id();
    let f = std::fs::File::open("/dev/null").unwrap();
    let raw = f.as_raw_fd();
    let mut cmd = Command::new(BIN);
    cmd.arg("--root")
        .arg(&env.root)
        .args(["run", "--preserve-fds", "1", "--bundle"])
        .arg(&env.bundle)
        .arg(&id);
    // SAFETY: dup2 in the child before exec.
    unsafe {
        cmd.pre_exec(move || {
            let t = libc::dup(raw);
            libc::dup2(t, 3);
            libc::dup2(t, 4);
            Ok(())
        });
    }
    let out = run_cmd(&mut cmd, Duration::from_secs(60));
    out.ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3", "4"],
        "fd 3 passed, fd 4 is ls's own"
    );
}

#[test]
fn cve_2019_16884_sysctl_write_needs_a_real_procfs() {
    let mut env = Env::new(&["true"]);
    // /proc is a tmpfs holding a fake sys/ tree: the write must not land there.
    let mounts: Vec<_> = env.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            if m["destination"] == "/proc" {
                json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"})
            } else {
                m.clone()
            }
        })
        .collect();
    env.set("/mounts", json!(mounts));
    env.set("/linux/maskedPaths", json!([]));
    env.set("/linux/readonlyPaths", json!([]));
    env.set("/linux/sysctl", json!({"kernel.msgmax": "9999"}));
    let id = env.id();
    env.create(&id)
        .fails_with(&["sysctl kernel.msgmax", "/proc/sys/kernel/msgmax"]);
    env.assert_clean(&id);
}

#[test]
fn cve_2025_31133_masking_refuses_a_dev_null_that_is_not_null() {
    let mut env = Env::new(&["true"]);
    let decoy = env.tmp.path().join("decoy");
    std::fs::write(&decoy, "host secret").unwrap();
    env.push(
        "/mounts",
        json!({"destination": "/dev/null", "type": "bind", "source": decoy, "options": ["bind"]}),
    );
    env.set("/linux/maskedPaths", json!(["/proc/keys"]));
    let id = env.id();
    env.create(&id)
        .fails_with(&["/dev/null is not the null device", "/proc/keys"]);
    env.assert_clean(&id);
    assert_eq!(std::fs::read_to_string(&decoy).unwrap(), "host secret");
}

#[test]
fn cve_2019_5736_the_runtime_binary_cannot_be_reached_from_the_container() {
    let before = std::fs::read(BIN).unwrap();
    let env = Env::new(&["sleep", "100"]);
    let id = env.id();
    env.create(&id).ok();
    // While created, the container's pid 1 is berth's init stub (berth's own image): a
    // process exec'd into the container tries to read and overwrite it through /proc.
    let out = env.berth(&["exec", &id, "sh", "-c",
        "cat /proc/1/exe > /dev/null 2>&1; echo read=$?; echo x 2>/dev/null >> /proc/1/exe; echo write=$?; ls -l /proc/1/exe 2>&1 | grep -c berth; true"]);
    out.ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(l[0], "read=1", "{}", out.stdout);
    assert_eq!(l[1], "write=1", "{}", out.stdout);
    assert_eq!(l[2], "0", "the init's exe link is visible: {}", out.stdout);
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
    assert!(
        std::fs::read(BIN).unwrap() == before,
        "the berth binary changed"
    );
}

#[test]
fn symlinked_mount_destination_into_proc_stays_in_the_container() {
    // CVE-2019-19921 / CVE-2021-30465 / CVE-2023-27561 class: a mount destination that is a
    // symlink planted in the image. It resolves inside the container's root — here into the
    // container's own procfs, where nothing can be created — never on the host.
    let mut env = Env::new(&["true"]);
    let rootfs = env.private_rootfs();
    std::os::unix::fs::symlink("/proc/sys/kernel", rootfs.join("evil")).unwrap();
    env.set("/root/path", json!(rootfs));
    env.push(
        "/mounts",
        json!({"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs"}),
    );
    let id = env.id();
    env.create(&id)
        .fails_with(&["create mount destination /evil/x"]);
    env.assert_clean(&id);
    assert!(!std::path::Path::new("/proc/sys/kernel/x").exists());
    assert!(
        !rootfs.join("proc/sys").exists(),
        "nothing was created under the rootfs's /proc either"
    );
}

#[test]
fn selinux_fields_are_refused_on_a_host_without_selinux() {
    // No SELinux host was available (this VM and the guest lane run AppArmor or nothing):
    // labels cannot be applied, so berth says so rather than run the container unlabelled.
    // AppArmor has its own tests (apparmor.rs).
    assert!(!std::path::Path::new("/sys/fs/selinux/enforce").exists());
    for (ptr, v, field) in [
        (
            "/process/selinuxLabel",
            json!("system_u:system_r:container_t:s0"),
            "process.selinuxLabel",
        ),
        (
            "/linux/mountLabel",
            json!("system_u:object_r:container_file_t:s0"),
            "linux.mountLabel",
        ),
    ] {
        let mut env = Env::new(&["true"]);
        env.set(ptr, v);
        let id = env.id();
        env.create(&id).fails_with(&[field, "no SELinux"]);
        env.assert_clean(&id);
    }
}

#[test]
fn cve_2025_52881_redirected_proc_write_is_refused() {
    // A crafted mount puts another procfs file (here the harmless, uts-namespaced hostname)
    // over the sysctl berth is asked to write. The write must not follow the redirection.
    let mut env = Env::new(&["true"]);
    env.push("/mounts", json!({"destination": "/proc/sys/kernel/msgmax", "type": "bind", "source": "/proc/sys/kernel/hostname", "options": ["bind"]}));
    env.set("/linux/sysctl", json!({"kernel.msgmax": "12345"}));
    let id = env.id();
    env.create(&id)
        .fails_with(&["sysctl kernel.msgmax", "mounted over it"]);
    env.assert_clean(&id);
}

/// What /proc/<pid>/exe reads for berth's sealed image: a memfd ("/memfd:berth (deleted)")
/// or the binary at the root of the detached read-only overlayfs ("/<name>"), never `bin`.
fn sealed_image_name(link: &str, bin: &std::path::Path) -> bool {
    let name = bin.file_name().unwrap().to_string_lossy();
    link.starts_with("/memfd:berth") || link.trim() == format!("/{name}")
}

/// A container keeping CAP_SYS_PTRACE (no user namespace), driven by a copy of berth so an
/// attack that works cannot corrupt the binary the other tests use: (env, copy, its bytes).
fn ptrace_container() -> (Env, std::path::PathBuf, Vec<u8>) {
    let mut env = Env::new(&["sleep", "100"]);
    let bin = env.tmp.path().join("berth-copy");
    std::fs::copy(BIN, &bin).unwrap();
    let before = std::fs::read(&bin).unwrap();
    let caps = json!(["CAP_SYS_PTRACE", "CAP_KILL", "CAP_DAC_OVERRIDE"]);
    env.set(
        "/process/capabilities",
        json!({"bounding": caps, "effective": caps, "permitted": caps}),
    );
    env.write_config();
    (env, bin, before)
}

#[test]
fn cve_2019_5736_with_cap_sys_ptrace_the_exe_is_a_sealed_copy() {
    // The classic attack: grab /proc/<init>/exe while berth's image runs there, wait for the
    // runtime to be gone, then write through the saved fd. Run against a copy of berth so a
    // failure cannot corrupt the binary the other tests use.
    let (env, bin, before) = ptrace_container();
    let id = env.id();
    let berth = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.arg("--root").arg(&env.root).args(args);
        run_cmd(&mut c, Duration::from_secs(60))
    };
    berth(&["create", "--bundle", env.bundle.to_str().unwrap(), &id]).ok();
    let attack = "exec 3< /proc/1/exe; readlink /proc/1/exe > /out/exe; touch /out/armed; \
                  while [ ! -e /out/go ]; do sleep 0.05; done; \
                  echo pwned 2>/dev/null >> /proc/self/fd/3; echo write=$? > /out/result";
    berth(&["exec", "--detach", &id, "sh", "-c", attack]).ok();
    let wait = |f: &str| {
        for _ in 0..200 {
            if env.out.join(f).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("{f} never appeared");
    };
    wait("armed");
    assert!(
        sealed_image_name(&env.read_out("exe"), &bin),
        "the init runs from {}",
        env.read_out("exe")
    );
    berth(&["start", &id]).ok();
    std::fs::write(env.out.join("go"), "").unwrap();
    wait("result");
    assert_ne!(
        env.read_out("result").trim(),
        "write=0",
        "the write through /proc/<pid>/exe succeeded"
    );
    assert!(
        std::fs::read(&bin).unwrap() == before,
        "berth's binary was modified"
    );
    berth(&["delete", "--force", &id]).ok();
    env.assert_clean(&id);
}

#[test]
fn cve_2025_52565_planted_dev_console_symlink_is_not_followed() {
    // An image whose /dev/console is a symlink to another file: binding the pty must not
    // land on the symlink's target.
    let mut env = Env::new(&[
        "sh",
        "-c",
        "echo via-console > /dev/console; cat /etc/target; echo done",
    ]);
    let rootfs = env.private_rootfs();
    std::fs::write(rootfs.join("etc/target"), "original\n").unwrap();
    std::os::unix::fs::symlink("/etc/target", rootfs.join("dev/console")).unwrap();
    env.set("/root", json!({"path": rootfs, "readonly": false}));
    // /dev is the image's own directory (no tmpfs), so the planted link is what berth meets.
    let mounts: Vec<_> = env.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] != "/dev")
        .cloned()
        .collect();
    env.set("/mounts", json!(mounts));
    env.set("/process/terminal", json!(true));
    env.write_config();
    let sock = env.tmp.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || crate::cli::recv_console(listener));
    let id = env.id();
    env.berth(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ])
    .ok();
    let (_, master) = receiver.join().unwrap();
    env.berth(&["start", &id]).ok();
    let seen = crate::cli::read_until(&master, "done", Duration::from_secs(20));
    assert!(
        seen.contains("via-console") && seen.contains("original"),
        "{seen}"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/target")).unwrap(),
        "original\n",
        "the symlink's target was written"
    );
    assert!(
        !std::fs::symlink_metadata(rootfs.join("dev/console"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    env.wait_status(&id, "stopped");
    env.berth(&["delete", &id]).ok();
    env.assert_clean(&id);
}

// Needs the `failpoints` build: the exec::joined point holds the window open.
#[cfg(feature = "failpoints")]
#[test]
fn cve_2019_5736_during_exec_the_exec_child_image_is_a_sealed_copy() {
    // As above, but the target is the process `berth exec` forks into the container: while
    // it sits between joining the namespaces and execve (held open by the exec::joined
    // failpoint with a sleep action),
    // a process in the container with CAP_SYS_PTRACE grabs its exe, then writes once
    // berth is gone.
    let (env, bin, before) = ptrace_container();
    let id = env.id();
    let cmd = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.arg("--root").arg(&env.root).args(args);
        c
    };
    run_cmd(
        &mut cmd(&[
            "run",
            "--detach",
            "--bundle",
            env.bundle.to_str().unwrap(),
            &id,
        ]),
        Duration::from_secs(60),
    )
    .ok();
    let attack = "while :; do for p in /proc/[0-9]*; do e=$(readlink $p/exe 2>/dev/null); \
                  case \"$e\" in *berth*) echo \"$e\" > /out/exe; exec 3< $p/exe; touch /out/armed; break 2;; esac; done; sleep 0.01; done; \
                  while [ ! -e /out/go ]; do sleep 0.05; done; \
                  echo pwned 2>/dev/null >> /proc/self/fd/3; echo write=$? > /out/result";
    run_cmd(
        &mut cmd(&["exec", "--detach", &id, "sh", "-c", attack]),
        Duration::from_secs(60),
    )
    .ok();
    std::thread::sleep(Duration::from_millis(200));
    let mut victim = cmd(&["exec", &id, "true"]);
    victim.env("BERTH_FAILPOINTS", "exec::joined=sleep(1500)");
    let v = run_cmd(&mut victim, Duration::from_secs(60));
    v.ok();
    assert!(
        env.out.join("armed").exists(),
        "the attacker never saw the exec'd process"
    );
    assert!(
        sealed_image_name(&env.read_out("exe"), &bin),
        "the exec'd process ran from {}",
        env.read_out("exe")
    );
    std::fs::write(env.out.join("go"), "").unwrap();
    for _ in 0..200 {
        if env.out.join("result").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_ne!(
        env.read_out("result").trim(),
        "write=0",
        "the write through the exec'd process's exe succeeded"
    );
    assert!(
        std::fs::read(&bin).unwrap() == before,
        "berth's binary was modified"
    );
    run_cmd(
        &mut cmd(&["delete", "--force", &id]),
        Duration::from_secs(60),
    )
    .ok();
    env.assert_clean(&id);
}

#[test]
fn symlink_swapped_in_a_shared_volume_while_creating_stays_contained() {
    // CVE-2021-30465 shape: container A keeps swapping /vol/link between a directory and a
    // symlink to "/" in a volume it shares with B, while B is created with a mount whose
    // destination passes through /vol/link. Whatever B meets, the mount must land inside
    // B's root, never at the host's /.
    let vol = tempfile::tempdir().unwrap();
    let marker = format!("berth-race-{}", std::process::id());
    let mut a = Env::new(&[
        "sh",
        "-c",
        "while :; do rm -rf /vol/link; mkdir /vol/link; rm -rf /vol/link; ln -s / /vol/link; done",
    ]);
    a.push(
        "/mounts",
        json!({"destination": "/vol", "type": "bind", "source": vol.path(), "options": ["rbind"]}),
    );
    a.write_config();
    let ida = a.id();
    a.berth(&[
        "run",
        "--detach",
        "--bundle",
        a.bundle.to_str().unwrap(),
        &ida,
    ])
    .ok();
    // B has a rootfs of its own: what B creates through the symlink lands in B's root, and
    // must not appear in the shared rootfs that other tests copy meanwhile.
    let btmp = tempfile::tempdir().unwrap();
    let broot = btmp.path().join("rootfs");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(default_bundle().join("rootfs"))
            .arg(&broot)
            .status()
            .unwrap()
            .success()
    );
    for _ in 0..20 {
        let mut b = Env::new(&["true"]);
        b.set("/root/path", json!(broot));
        b.push("/mounts", json!({"destination": "/vol", "type": "bind", "source": vol.path(), "options": ["rbind"]}));
        b.push("/mounts", json!({"destination": format!("/vol/link/{marker}"), "type": "tmpfs", "source": "tmpfs"}));
        b.write_config();
        let id = b.id();
        let _ = b.berth(&["run", "--bundle", b.bundle.to_str().unwrap(), &id]);
        b.assert_clean(&id);
        assert!(
            !std::path::Path::new("/").join(&marker).exists(),
            "a mount destination was created at the host's /"
        );
    }
    a.berth(&["delete", "--force", &ida]).ok();
    a.assert_clean(&ida);
}
