//! config-linux.md: namespaces, id mappings, devices, sysctl, seccomp, propagation, masked
//! and read-only paths, personality, time offsets and the other Linux-only fields; plus the
//! Linux-only process fields of config.md.

use super::{errno_of, host_ns, mount_at, mount_opts, s};
use crate::env::{Bundle, Env, Outcome, T, ensure, skip};
use crate::{Case, case};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "config-linux.md § Namespaces";
const MAP: &str = "config-linux.md § User namespace mappings";
const DEV: &str = "config-linux.md § Devices";
const DEFDEV: &str = "config-linux.md § Default Devices";
const SECCOMP: &str = "config-linux.md § Seccomp";
const PROP: &str = "config-linux.md § Rootfs Mount Propagation";
const MASK: &str = "config-linux.md § Masked Paths";
const RO: &str = "config-linux.md § Readonly Paths";
const SYSCTL: &str = "config-linux.md § Sysctl";

pub fn rlimit_resource(kind: &str) -> libc::__rlimit_resource_t {
    match kind {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        _ => libc::RLIMIT_RTTIME,
    }
}

/// The /proc/self/ns link name of a spec namespace type.
fn link(kind: &str) -> &'static str {
    match kind {
        "pid" => "pid",
        "network" => "net",
        "ipc" => "ipc",
        "uts" => "uts",
        "mount" => "mnt",
        "user" => "user",
        "cgroup" => "cgroup",
        _ => "time",
    }
}

/// A user namespace needs mappings, and forbids mounting cgroup v1 and sysfs of a netns it
/// does not own; give the bundle what it takes to run in one.
fn with_userns(b: &mut Bundle) {
    b.set_ns("user", None);
    b.linux()["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.linux()["gidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.drop_mount("/sys/fs/cgroup");
}

fn new_ns(kind: &'static str) -> Case {
    case(
        format!("namespaces.{kind}.new"),
        NS,
        "If path is not specified, the runtime MUST create a new container namespace of type type.",
        move |env| {
            let r = env.inspect(&[], |b| {
                if kind == "user" {
                    with_userns(b);
                } else {
                    b.set_ns(kind, None);
                }
            })?;
            let l = link(kind);
            let got = s(&r["ns"][l]);
            ensure(!got.is_empty() && got != host_ns(l), || {
                format!("{l} namespace {got:?} is the host's")
            })
        },
    )
}

fn inherited_ns(kind: &'static str) -> Case {
    case(
        format!("namespaces.{kind}.inherited"),
        NS,
        "If a namespace type is not specified in the namespaces array, the container MUST inherit the runtime namespace of that type.",
        move |env| {
            let r = env.inspect(&[], |b| {
                b.drop_ns(kind);
                if kind == "uts" {
                    // Setting a hostname needs its own UTS namespace.
                    if let Some(o) = b.cfg.as_object_mut() {
                        o.remove("hostname");
                    }
                }
            })?;
            let l = link(kind);
            let got = s(&r["ns"][l]);
            ensure(got == host_ns(l), || {
                format!("{l} namespace {got:?}, the runtime's is {}", host_ns(l))
            })
        },
    )
}

/// A helper process holding namespaces of the given unshare(1) flags; returns the pid whose
/// /proc/PID/ns links name them.
fn holder(env: &mut Env, flags: &[&str]) -> T<u32> {
    let mut c = Command::new("unshare");
    c.args(flags)
        // --kill-child: killing the holder must also end the sleep it forked.
        .args(if flags.contains(&"--fork") {
            &["--kill-child"][..]
        } else {
            &[][..]
        })
        .args(["sleep", "600"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = c
        .spawn()
        .map_err(|e| Outcome::Fail(format!("unshare: {e}")))?;
    let pid = env.holder(child);
    // unshare execs sleep once the namespaces exist; with --fork, sleep is its child.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let target = if flags.contains(&"--fork") {
            child_of(pid)
        } else {
            Some(pid)
        };
        if let Some(t) = target
            && std::fs::read_to_string(format!("/proc/{t}/comm")).is_ok_and(|c| c.trim() == "sleep")
        {
            return Ok(t);
        }
        if Instant::now() > deadline {
            return Err(Outcome::Fail("the namespace holder did not start".into()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn child_of(pid: u32) -> Option<u32> {
    let t = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    t.split_whitespace().next()?.parse().ok()
}

fn joined_ns(kind: &'static str, flags: &'static [&'static str]) -> Case {
    case(
        format!("namespaces.{kind}.path"),
        NS,
        "path (string, OPTIONAL) - namespace file. … The runtime MUST place the container process in the namespace associated with that path.",
        move |env| {
            let pid = holder(env, flags)?;
            let l = link(kind);
            let path = format!("/proc/{pid}/ns/{l}");
            let want = std::fs::read_link(&path)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let r = env.inspect(&[], |b| {
                b.set_ns(kind, Some(&path));
                if kind == "user" {
                    // The joined namespace has its own mappings: the config must not carry any.
                    b.drop_mount("/sys/fs/cgroup");
                }
                if kind == "network" {
                    // sysfs may only be mounted by the owner of the network namespace.
                    b.drop_mount("/sys");
                }
            })?;
            let got = s(&r["ns"][l]);
            ensure(got == want, || {
                format!("{l} namespace {got:?}, joined {want:?}")
            })
        },
    )
}

fn default_dev(path: &'static str, major: u64, minor: u64) -> Case {
    case(
        format!("devices.default{}", path.replace('/', ".")),
        DEFDEV,
        "In addition to any devices configured with this setting, the runtime MUST also supply: /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty, /dev/console (if terminal), /dev/ptmx",
        move |env| {
            let r = env.inspect(&["--stat", path, "--open", path], |_| {})?;
            let st = &r["stat"][path];
            ensure(
                st["type"] == "c" && st["major"] == major && st["minor"] == minor,
                || format!("{path}: {st}"),
            )?;
            if path != "/dev/tty" {
                // /dev/tty opens only with a controlling terminal; the rest must open.
                let e = errno_of(&r, "open", path)?;
                ensure(e == 0, || format!("opening {path}: errno {e}"))?;
            }
            Ok(())
        },
    )
}

fn seccomp_rule(
    op: &'static str,
    value: u64,
    value_two: Option<u64>,
    call_arg: u64,
    blocked: bool,
) -> Case {
    let id = format!(
        "seccomp.operator.{op}{}",
        if blocked { "" } else { "-nomatch" }
    );
    case(
        id,
        SECCOMP,
        "syscalls … args (array of objects, OPTIONAL) - the specific syscall in seccomp. … op (string, REQUIRED) - valid values are SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ",
        move |env| {
            let call = format!("personality:{call_arg:x}");
            let r = env.inspect(&["--syscall", &call], |b| {
            let mut arg = json!({ "index": 0, "value": value, "op": op });
            if let Some(v2) = value_two {
                arg["valueTwo"] = json!(v2);
            }
            b.linux()["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{ "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77, "args": [arg] }],
            });
        })?;
            let e = r["syscall"][&call]["errno"].as_i64().unwrap_or(-1);
            ensure(e == if blocked { 77 } else { 0 }, || {
                format!("personality({call_arg:#x}) with {op} {value:#x}: errno {e}")
            })
        },
    )
}

/// Runs `sh -c '/checker --only-syscall personality; echo status:$?'` under a seccomp action
/// on personality(2), which the shell itself never calls.
fn seccomp_action(action: &'static str, want_status: &'static str) -> Case {
    case(
        format!("seccomp.action.{action}"),
        SECCOMP,
        "action (string, REQUIRED) - the action for seccomp rules. A valid list of constants as of libseccomp v2.5.0 is shown below.",
        move |env| {
            let mut b = env.bundle(&[])?;
            b.cfg["process"]["args"] = json!([
                "/bin/sh",
                "-c",
                "/checker --only-syscall personality:ffffffff; echo status:$?"
            ]);
            b.linux()["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["personality"], "action": action }],
            });
            b.write()?;
            let id = env.id();
            env.create(&id, &b)?;
            env.start(&id)?;
            env.wait_status(&id, "stopped")?;
            let out = env.output(&id);
            ensure(out.contains(&format!("status:{want_status}")), || {
                format!("output {out:?}, want status:{want_status}")
            })
        },
    )
}

fn propagation(mode: &'static str, check: fn(&str) -> bool, what: &'static str) -> Case {
    case(
        format!("rootfsPropagation.{mode}"),
        PROP,
        "rootfsPropagation (string, OPTIONAL) sets the rootfs's mount propagation. Its value is either shared, slave, private or unbindable.",
        move |env| {
            let r = env.inspect(&[], |b| b.linux()["rootfsPropagation"] = json!(mode))?;
            let l = mount_at(&r, "/")?;
            let optional: Vec<&str> = l
                .split(" - ")
                .next()
                .unwrap_or("")
                .split_whitespace()
                .skip(6)
                .collect();
            ensure(check(&optional.join(" ")), || {
                format!("/ has optional fields {optional:?}, want {what}")
            })
        },
    )
}

fn skip_if(cond: bool, why: &str) -> T<()> {
    if cond { skip(why) } else { Ok(()) }
}

fn lsm_absent() -> bool {
    std::fs::read_dir("/sys/kernel/security")
        .map(|d| d.count() == 0)
        .unwrap_or(true)
        && !std::path::Path::new("/sys/fs/selinux").exists()
}

pub fn cases() -> Vec<Case> {
    let kinds = [
        "pid", "network", "ipc", "uts", "mount", "user", "cgroup", "time",
    ];
    let mut v: Vec<Case> = kinds.iter().map(|k| new_ns(k)).collect();
    v.extend(["pid", "network", "ipc", "uts", "cgroup", "time", "user"].map(inherited_ns));
    v.extend([
        joined_ns("network", &["--net"]),
        joined_ns("ipc", &["--ipc"]),
        joined_ns("uts", &["--uts"]),
        joined_ns("cgroup", &["--cgroup"]),
        joined_ns("pid", &["--pid", "--fork"]),
        joined_ns("time", &["--time", "--fork"]),
        joined_ns("user", &["--user", "--map-root-user"]),
        joined_ns("mount", &["--mount"]),
    ]);
    v.extend([
        case("namespaces.path-wrong-type", NS, "The runtime MUST generate an error if path is not associated with a namespace of type type.", |env| {
            env.expect_error(|b| b.set_ns("network", Some("/proc/self/ns/ipc")))
        }),
        case("namespaces.path-missing", NS, "The runtime MUST generate an error if path is not associated with a namespace of type type.", |env| {
            let p = env.path("no-such-ns").display().to_string();
            env.expect_error(|b| b.set_ns("network", Some(&p)))
        }),
        case("userns.uidMappings", MAP, "uidMappings (array of objects, OPTIONAL) describes the user namespace uid mappings from the host to the container.", |env| {
            let r = env.inspect(&[], with_userns)?;
            let m: Vec<String> = s(&r["uid_map"]).split_whitespace().map(str::to_owned).collect();
            ensure(m == ["0", "100000", "65536"], || format!("uid_map {:?}", r["uid_map"]))?;
            ensure(r["uid"] == 0, || format!("uid {}", r["uid"]))
        }),
        case("userns.gidMappings", MAP, "gidMappings (array of objects, OPTIONAL) describes the user namespace gid mappings from the host to the container.", |env| {
            let r = env.inspect(&[], with_userns)?;
            let m: Vec<String> = s(&r["gid_map"]).split_whitespace().map(str::to_owned).collect();
            ensure(m == ["0", "100000", "65536"], || format!("gid_map {:?}", r["gid_map"]))
        }),
        case("userns.no-chown", MAP, "The runtime SHOULD NOT modify the ownership of referenced filesystems to realize the mapping.", |env| {
            let mut b = env.bundle(&[])?;
            with_userns(&mut b);
            let before = std::fs::metadata(b.rootfs().join("bin/busybox")).map(|m| std::os::unix::fs::MetadataExt::uid(&m)).ok();
            env.run_bundle(&b)?;
            let after = std::fs::metadata(b.rootfs().join("bin/busybox")).map(|m| std::os::unix::fs::MetadataExt::uid(&m)).ok();
            ensure(before == after, || format!("rootfs owner changed {before:?} → {after:?}"))
        }),
        case("userns.multiple-mappings", MAP, "uidMappings … describes the user namespace uid mappings from the host to the container.", |env| {
            let r = env.inspect(&[], |b| {
                with_userns(b);
                b.linux()["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 1000 }, { "containerID": 1000, "hostID": 200000, "size": 1000 }]);
            })?;
            let t = s(&r["uid_map"]);
            ensure(t.lines().count() == 2 && t.contains("200000"), || format!("uid_map {t:?}"))
        }),
        case("devices.char", DEV, "devices (array of objects, OPTIONAL) lists devices that MUST be available in the container.", |env| {
            let r = env.inspect(&["--stat", "/dev/conf-char"], |b| b.linux()["devices"] = json!([{ "path": "/dev/conf-char", "type": "c", "major": 1, "minor": 5 }]))?;
            let st = &r["stat"]["/dev/conf-char"];
            ensure(st["type"] == "c" && st["major"] == 1 && st["minor"] == 5, || format!("{st}"))
        }),
        case("devices.block", DEV, "type (string, REQUIRED) - type of device: c, b, u or p.", |env| {
            let r = env.inspect(&["--stat", "/dev/conf-blk"], |b| b.linux()["devices"] = json!([{ "path": "/dev/conf-blk", "type": "b", "major": 7, "minor": 3 }]))?;
            let st = &r["stat"]["/dev/conf-blk"];
            ensure(st["type"] == "b" && st["major"] == 7 && st["minor"] == 3, || format!("{st}"))
        }),
        case("devices.fifo", DEV, "type (string, REQUIRED) - type of device: c, b, u or p.", |env| {
            let r = env.inspect(&["--stat", "/dev/conf-fifo"], |b| b.linux()["devices"] = json!([{ "path": "/dev/conf-fifo", "type": "p" }]))?;
            let st = &r["stat"]["/dev/conf-fifo"];
            ensure(st["type"] == "p", || format!("{st}"))
        }),
        case("devices.fileMode", DEV, "fileMode (uint32, OPTIONAL) - file mode for the device.", |env| {
            let r = env.inspect(&["--stat", "/dev/conf-mode"], |b| b.linux()["devices"] = json!([{ "path": "/dev/conf-mode", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640 }]))?;
            let st = &r["stat"]["/dev/conf-mode"];
            ensure(st["mode"] == 0o640, || format!("mode {:o}", st["mode"].as_u64().unwrap_or(0)))
        }),
        case("devices.uid-gid", DEV, "uid (uint32, OPTIONAL) - id of device owner in the container namespace. gid (uint32, OPTIONAL) - id of device group", |env| {
            let r = env.inspect(&["--stat", "/dev/conf-own"], |b| b.linux()["devices"] = json!([{ "path": "/dev/conf-own", "type": "c", "major": 1, "minor": 5, "uid": 1001, "gid": 1002 }]))?;
            let st = &r["stat"]["/dev/conf-own"];
            ensure(st["uid"] == 1001 && st["gid"] == 1002, || format!("{st}"))
        }),
        case("devices.in-userns", DEV, "devices … lists devices that MUST be available in the container.", |env| {
            // mknod is not allowed in a user namespace, so runtimes bind the host's node at the
            // same path: use one the host has.
            let r = env.inspect(&["--stat", "/dev/loop0"], |b| {
                with_userns(b);
                b.linux()["devices"] = json!([{ "path": "/dev/loop0", "type": "b", "major": 7, "minor": 0 }]);
            })?;
            let st = &r["stat"]["/dev/loop0"];
            ensure(st["type"] == "b" && st["major"] == 7 && st["minor"] == 0, || format!("{st}"))
        }),
        case("devices.existing-mismatch", DEV, "If a file already exists at path that does not match the requested device, the runtime MUST generate an error.", |env| {
            env.expect_error(|b| {
                let _ = std::fs::write(b.rootfs().join("conf-dev"), "a regular file");
                b.linux()["devices"] = json!([{ "path": "/conf-dev", "type": "c", "major": 1, "minor": 5 }]);
            })
        }),
        case("devices.missing-major", "config.md § Valid values", "Runtimes … MUST generate an error when invalid or unsupported values are encountered. (major, minor: REQUIRED unless type is p)", |env| {
            env.expect_error(|b| b.linux()["devices"] = json!([{ "path": "/dev/conf-nomajor", "type": "c" }]))
        }),
        default_dev("/dev/null", 1, 3),
        default_dev("/dev/zero", 1, 5),
        default_dev("/dev/full", 1, 7),
        default_dev("/dev/random", 1, 8),
        default_dev("/dev/urandom", 1, 9),
        default_dev("/dev/tty", 5, 0),
        case("devices.default.dev.ptmx", DEFDEV, "the runtime MUST also supply … /dev/ptmx. A bind-mount or symlink of the container's /dev/pts/ptmx.", |env| {
            let r = env.inspect(&["--stat", "/dev/ptmx", "--open", "/dev/ptmx"], |_| {})?;
            let st = &r["stat"]["/dev/ptmx"];
            let ok = (st["type"] == "l" && s(&st["target"]).ends_with("pts/ptmx")) || (st["type"] == "c" && st["major"] == 5 && st["minor"] == 2);
            ensure(ok, || format!("/dev/ptmx {st}"))?;
            let e = errno_of(&r, "open", "/dev/ptmx")?;
            ensure(e == 0, || format!("opening /dev/ptmx: errno {e}"))
        }),
        case("filesystems.defaults", "config-linux.md § Default Filesystems", "The following filesystems SHOULD be made available in each container's filesystem: /proc proc, /sys sysfs, /dev/pts devpts, /dev/shm tmpfs", |env| {
            let r = env.inspect(&[], |_| {})?;
            for (p, t) in [("/proc", "proc"), ("/sys", "sysfs"), ("/dev/pts", "devpts"), ("/dev/shm", "tmpfs")] {
                let l = mount_at(&r, p)?;
                ensure(super::mount_fstype(&l) == t, || format!("{p}: {l}"))?;
            }
            Ok(())
        }),
        case("sysctl.net", SYSCTL, "sysctl (object, OPTIONAL) allows kernel parameters to be modified at runtime for the container.", |env| {
            let r = env.inspect(&["--read", "/proc/sys/net/ipv4/ip_forward"], |b| b.linux()["sysctl"] = json!({ "net.ipv4.ip_forward": "1" }))?;
            ensure(s(&r["read"]["/proc/sys/net/ipv4/ip_forward"]).trim() == "1", || format!("{}", r["read"]))
        }),
        case("sysctl.ipc", SYSCTL, "sysctl (object, OPTIONAL) allows kernel parameters to be modified at runtime for the container.", |env| {
            let r = env.inspect(&["--read", "/proc/sys/kernel/msgmax"], |b| b.linux()["sysctl"] = json!({ "kernel.msgmax": "12345" }))?;
            ensure(s(&r["read"]["/proc/sys/kernel/msgmax"]).trim() == "12345", || format!("{}", r["read"]))
        }),
        case("sysctl.unknown", "config.md § Valid values", "Runtimes … MUST generate an error when invalid or unsupported values are encountered.", |env| {
            env.expect_error(|b| b.linux()["sysctl"] = json!({ "kernel.no_such_sysctl_conformance": "1" }))
        }),
        case("seccomp.errno-default", SECCOMP, "errnoRet (uint, OPTIONAL) - the errno return code to use. … When the action doesn't support an errno, the runtime MUST print and error and fail. If not specified then its default value is EPERM.", |env| {
            let r = env.inspect(&["--syscall", "getcwd"], |b| b.linux()["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" }] }))?;
            let e = r["syscall"]["getcwd"]["errno"].as_i64().unwrap_or(-1);
            ensure(e == libc::EPERM as i64, || format!("getcwd errno {e}, want EPERM"))
        }),
        case("seccomp.errnoRet", SECCOMP, "errnoRet (uint, OPTIONAL) - the errno return code to use.", |env| {
            let r = env.inspect(&["--syscall", "getcwd"], |b| b.linux()["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42 }] }))?;
            let e = r["syscall"]["getcwd"]["errno"].as_i64().unwrap_or(-1);
            ensure(e == 42, || format!("getcwd errno {e}, want 42"))
        }),
        case("seccomp.status", SECCOMP, "Seccomp provides application sandboxing mechanism in the Linux kernel.", |env| {
            let r = env.inspect(&[], |b| b.linux()["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" }] }))?;
            ensure(super::status(&r, "Seccomp") == "2", || format!("Seccomp {}", super::status(&r, "Seccomp")))
        }),
        case("seccomp.without-nnp", SECCOMP, "Seccomp provides application sandboxing mechanism in the Linux kernel. Seccomp configuration allows one to configure actions to take for matched syscalls", |env| {
            // Without noNewPrivileges the filter must be loaded while the runtime still holds
            // CAP_SYS_ADMIN; personality(2) is blocked because no runtime needs it after that.
            let r = env.inspect(&["--syscall", "personality:ffffffff"], |b| {
                b.process()["noNewPrivileges"] = json!(false);
                b.linux()["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }] });
            })?;
            let e = r["syscall"]["personality:ffffffff"]["errno"].as_i64().unwrap_or(-1);
            ensure(e == 38 && super::status(&r, "NoNewPrivs") == "0", || format!("personality errno {e}, NoNewPrivs {}", super::status(&r, "NoNewPrivs")))
        }),
        case("seccomp.multiple-names", SECCOMP, "names (array of strings, REQUIRED) - the names of the syscalls.", |env| {
            let r = env.inspect(&["--syscall", "getcwd", "--syscall", "uname"], |b| b.linux()["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["getcwd", "uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 21 }] }))?;
            let (a, u) = (r["syscall"]["getcwd"]["errno"].as_i64(), r["syscall"]["uname"]["errno"].as_i64());
            ensure(a == Some(21) && u == Some(21), || format!("getcwd {a:?} uname {u:?}"))
        }),
        seccomp_rule("SCMP_CMP_EQ", 0xffff_ffff, None, 0xffff_ffff, true),
        seccomp_rule("SCMP_CMP_EQ", 0x1234, None, 0xffff_ffff, false),
        seccomp_rule("SCMP_CMP_NE", 0, None, 0xffff_ffff, true),
        seccomp_rule("SCMP_CMP_NE", 0xffff_ffff, None, 0xffff_ffff, false),
        seccomp_rule("SCMP_CMP_GT", 5, None, 0xffff_ffff, true),
        seccomp_rule("SCMP_CMP_GE", 0xffff_ffff, None, 0xffff_ffff, true),
        seccomp_rule("SCMP_CMP_LT", 0x1_0000_0000, None, 0xffff_ffff, true),
        seccomp_rule("SCMP_CMP_LE", 0xffff_ffff, None, 0xffff_ffff, true),
        seccomp_rule("SCMP_CMP_LT", 5, None, 0xffff_ffff, false),
        seccomp_rule("SCMP_CMP_MASKED_EQ", 0xff, Some(0xff), 0xffff_ffff, true),
        seccomp_rule("SCMP_CMP_MASKED_EQ", 0xff, Some(0x01), 0xffff_ffff, false),
        seccomp_action("SCMP_ACT_ALLOW", "0"),
        seccomp_action("SCMP_ACT_LOG", "0"),
        seccomp_action("SCMP_ACT_KILL", "159"),
        seccomp_action("SCMP_ACT_KILL_PROCESS", "159"),
        seccomp_action("SCMP_ACT_TRAP", "159"),
        propagation("shared", |o| o.contains("shared:"), "shared:N"),
        propagation("private", |o| !o.contains("shared:") && !o.contains("master:"), "no peer group"),
        propagation("slave", |o| !o.contains("shared:"), "not shared"),
        propagation("unbindable", |o| o.contains("unbindable"), "unbindable"),
        case("maskedPaths.file", MASK, "maskedPaths (array of strings, OPTIONAL) will mask over the provided paths inside the container so that they cannot be read.", |env| {
            // Only files this kernel has (e.g. no /proc/kcore without CONFIG_PROC_KCORE).
            let files: Vec<&str> = ["/proc/kcore", "/proc/timer_list", "/proc/keys"].into_iter().filter(|p| std::path::Path::new(p).exists()).collect();
            if files.is_empty() {
                return skip("none of /proc/kcore, /proc/timer_list, /proc/keys exists on this host");
            }
            let mut args = Vec::new();
            for f in &files {
                args.extend(["--read", f]);
            }
            let r = env.inspect(&args, |b| b.linux()["maskedPaths"] = json!(files))?;
            for f in &files {
                ensure(r["read"][*f] == "", || format!("{f} is readable: {}", r["read"][*f].to_string().chars().take(80).collect::<String>()))?;
            }
            Ok(())
        }),
        case("maskedPaths.directory", MASK, "maskedPaths … will mask over the provided paths inside the container so that they cannot be read.", |env| {
            let r = env.inspect(&["--ls", "/proc/acpi", "--ls", "/sys/firmware"], |b| b.linux()["maskedPaths"] = json!(["/proc/acpi", "/sys/firmware"]))?;
            let empty = |p: &str| r["ls"][p] == json!([]) || r["ls"][p]["errno"].is_i64();
            ensure(empty("/proc/acpi") && empty("/sys/firmware"), || format!("ls {}", r["ls"]))
        }),
        case("readonlyPaths.proc-sys", RO, "readonlyPaths (array of strings, OPTIONAL) will set the provided paths as readonly inside the container.", |env| {
            let r = env.inspect(&["--write", "/proc/sys/kernel/hostname"], |b| b.linux()["readonlyPaths"] = json!(["/proc/sys"]))?;
            let e = errno_of(&r, "write", "/proc/sys/kernel/hostname")?;
            ensure(e == 30, || format!("write errno {e}, want EROFS"))?;
            let o = mount_opts(&mount_at(&r, "/proc/sys")?);
            ensure(o.iter().any(|x| x == "ro"), || format!("/proc/sys options {o:?}"))
        }),
        case("readonlyPaths.directory-bind", RO, "readonlyPaths … will set the provided paths as readonly inside the container.", |env| {
            let r = env.inspect(&["--write", "/tmp/ro/x"], |b| {
                b.mounts().push(json!({ "destination": "/tmp/ro", "type": "tmpfs", "source": "tmpfs" }));
                b.linux()["readonlyPaths"] = json!(["/tmp/ro"]);
            })?;
            let e = errno_of(&r, "write", "/tmp/ro/x")?;
            ensure(e == 30, || format!("write errno {e}, want EROFS"))
        }),
        case("mountLabel", "config-linux.md § Mount Label", "mountLabel (string, OPTIONAL) will set the Selinux context for the mounts in the container.", |env| {
            skip_if(lsm_absent(), "SELinux is not enabled on this host: a mount label cannot be applied")?;
            env.inspect(&[], |b| b.linux()["mountLabel"] = json!("system_u:object_r:container_file_t:s0")).map(|_| ())
        }),
        case("process.selinuxLabel", "config.md § Linux process: selinuxLabel", "selinuxLabel (string, OPTIONAL) specifies the SELinux label for the process.", |env| {
            skip_if(lsm_absent(), "SELinux is not enabled on this host")?;
            env.inspect(&[], |b| b.process()["selinuxLabel"] = json!("system_u:system_r:container_t:s0")).map(|_| ())
        }),
        case("process.apparmorProfile", "config.md § Linux process: apparmorProfile", "apparmorProfile (string, OPTIONAL) specifies the name of the AppArmor profile for the process.", |env| {
            skip_if(!std::path::Path::new("/sys/kernel/security/apparmor").exists(), "AppArmor is not enabled on this host")?;
            env.inspect(&[], |b| b.process()["apparmorProfile"] = json!("unconfined")).map(|_| ())
        }),
        case("mountLabel.unavailable", "runtime.md § Lifecycle", "If the runtime is unable to create the environment specified in the config.json, it MUST generate an error.", |env| {
            skip_if(!lsm_absent(), "SELinux is enabled here: the label can be applied (see mountLabel)")?;
            env.expect_error(|b| b.linux()["mountLabel"] = json!("system_u:object_r:container_file_t:s0"))
        }),
        case("process.selinuxLabel.unavailable", "runtime.md § Lifecycle", "If the runtime is unable to create the environment specified in the config.json, it MUST generate an error.", |env| {
            skip_if(!lsm_absent(), "SELinux is enabled here: the label can be applied")?;
            env.expect_error(|b| b.process()["selinuxLabel"] = json!("system_u:system_r:container_t:s0"))
        }),
        case("process.apparmorProfile.unavailable", "runtime.md § Lifecycle", "If the runtime is unable to create the environment specified in the config.json, it MUST generate an error.", |env| {
            skip_if(std::path::Path::new("/sys/kernel/security/apparmor").exists(), "AppArmor is enabled here: the profile can be applied")?;
            env.expect_error(|b| b.process()["apparmorProfile"] = json!("conformance-profile"))
        }),
        case("personality.LINUX32", "config-linux.md § Personality", "domain (string, REQUIRED) the execution domain. The valid list of constants is shown below. LINUX32 will set the uname system call to show a 32 bit CPU type, such as i686.", |env| {
            let r = env.inspect(&[], |b| b.linux()["personality"] = json!({ "domain": "LINUX32" }))?;
            let p = r["personality"].as_i64().unwrap_or(-1);
            ensure(p & 0xff == 0x0008, || format!("personality {p:#x}, want PER_LINUX32 (0x8)"))
        }),
        case("personality.LINUX", "config-linux.md § Personality", "domain (string, REQUIRED) the execution domain.", |env| {
            let r = env.inspect(&[], |b| b.linux()["personality"] = json!({ "domain": "LINUX" }))?;
            let p = r["personality"].as_i64().unwrap_or(-1);
            ensure(p & 0xff == 0, || format!("personality {p:#x}"))
        }),
        case("timeOffsets", "config-linux.md § Offset for Time Namespace", "timeOffsets (object, OPTIONAL) sets the offset for Time Namespace.", |env| {
            let r = env.inspect(&["--read", "/proc/self/timens_offsets"], |b| {
                b.set_ns("time", None);
                b.linux()["timeOffsets"] = json!({ "monotonic": { "secs": 86400, "nanosecs": 0 }, "boottime": { "secs": 3600, "nanosecs": 0 } });
            })?;
            let t = s(&r["read"]["/proc/self/timens_offsets"]);
            ensure(t.contains("86400") && t.contains("3600"), || format!("timens_offsets {t:?}"))
        }),
        case("intelRdt", "config-linux.md § IntelRdt", "If intelRdt is set, the runtime MUST write the container process ID to the tasks file in a proper sub-directory in a mounted resctrl pseudo-filesystem", |env| {
            skip_if(!std::path::Path::new("/sys/fs/resctrl/tasks").exists(), "no resctrl filesystem on this host (no Intel RDT)")?;
            env.inspect(&[], |b| b.linux()["intelRdt"] = json!({ "closID": "conformance" })).map(|_| ())
        }),
        case("memoryPolicy", "config-linux.md § Memory policy", "memoryPolicy (object, OPTIONAL) sets the NUMA memory policy for the container.", |env| {
            let r = env.inspect(&[], |b| b.linux()["memoryPolicy"] = json!({ "mode": "MPOL_BIND", "nodes": "0" }))?;
            ensure(r["mempolicy"]["mode"] == 2 && r["mempolicy"]["nodes"] == 1, || format!("mempolicy {}", r["mempolicy"]))
        }),
        case("netDevices", "config-linux.md § Network Devices", "netDevices (object, OPTIONAL) - set of network devices that MUST be made available in and belong to the container.", |env| {
            // A veth pair (this kernel has no dummy driver); one end moves into the container.
            let name = format!("cfv{}", std::process::id() % 100000);
            let peer = format!("{name}p");
            let ok = Command::new("ip").args(["link", "add", &name, "type", "veth", "peer", "name", &peer]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
            skip_if(!ok, "cannot create a veth network device on this host")?;
            let r = env.inspect(&["--ls", "/sys/class/net"], |b| b.linux()["netDevices"] = json!({ name.clone(): { "name": "moved0" } }));
            let _ = Command::new("ip").args(["link", "del", &name]).stderr(Stdio::null()).status();
            let r = r?;
            let names = &r["ls"]["/sys/class/net"];
            ensure(names.as_array().is_some_and(|a| a.contains(&json!("moved0"))), || format!("devices in the container: {names}"))
        }),
        case("process.ioPriority", "config.md § Linux process: ioPriority", "ioPriority (object, OPTIONAL) configures the I/O priority settings for the container's processes", |env| {
            let r = env.inspect(&[], |b| b.process()["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 6 }))?;
            let p = r["ioprio"].as_i64().unwrap_or(-1);
            ensure(p == (2 << 13) | 6, || format!("ioprio {p:#x}, want class BE prio 6"))
        }),
        case("process.scheduler", "config.md § Linux process: scheduler", "scheduler (object, OPTIONAL) is an object describing the scheduler properties for the process.", |env| {
            let r = env.inspect(&[], |b| b.process()["scheduler"] = json!({ "policy": "SCHED_BATCH" }))?;
            ensure(r["sched_policy"] == 3, || format!("policy {}", r["sched_policy"]))
        }),
        case("process.execCPUAffinity", "config.md § Linux process: execCPUAffinity", "execCPUAffinity (object, OPTIONAL) specifies CPU affinity used to execute the process. final (string, OPTIONAL) is a list of CPUs the process will be run on after the transition to container's cgroup.", |env| {
            let r = env.inspect(&[], |b| b.process()["execCPUAffinity"] = json!({ "final": "0" }))?;
            ensure(r["affinity"] == json!([0]), || format!("affinity {}", r["affinity"]))
        }),
    ]);
    v
}
