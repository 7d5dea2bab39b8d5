//! The malformed-input catalogue: every entry is a bundle, config.json or container id that
//! `create` must refuse with exit 1, exactly one line on stderr naming the field or path, and
//! nothing left behind (state dir, cgroup, mount, process). The table is also the source of
//! docs/errors.md: the test compares that file with what berth really prints, and rewrites
//! it when `BERTH_WRITE_ERRORS_MD=1` is set. bad_input.rs holds the earlier cases; none is
//! repeated here.

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// One change to the default bundle. JSON values are text; `$TMP` in them is the test's
/// scratch directory (which holds the bundle at `$TMP/bundle`).
enum Edit {
    /// Sets a JSON pointer (objects on the way are created; array indexes must exist).
    Set(&'static str, &'static str),
    /// Sets a JSON pointer to text no JSON library would write (e.g. `1e400`).
    SetText(&'static str, &'static str),
    /// Appends to the array at a JSON pointer.
    Push(&'static str, &'static str),
    /// Removes the value at a JSON pointer.
    Remove(&'static str),
    /// config.json is exactly these bytes.
    Raw(&'static [u8]),
    /// The container id `create` is given (bytes: not every id is UTF-8).
    Id(&'static [u8]),
    /// A change on disk, described for the docs; it may also edit the config.
    Fs(&'static str, fn(&mut Env)),
}

struct Case {
    name: &'static str,
    edits: &'static [Edit],
    /// Substrings of the one error line (the field or path first).
    needles: &'static [&'static str],
}

use Edit::*;

const CASES: &[Case] = &[
    // --- config.json as a file ---
    Case {
        name: "empty config.json",
        edits: &[Raw(b"")],
        needles: &["config.json", "EOF"],
    },
    Case {
        name: "config.json is a JSON array",
        edits: &[Raw(b"[1, 2]")],
        needles: &["config.json", "line 1 column 1", "must be a JSON object"],
    },
    Case {
        name: "trailing bytes after the object",
        edits: &[Raw(b"{\"ociVersion\": \"1.0.2\"} x")],
        needles: &["config.json", "trailing characters", "line 1"],
    },
    Case {
        name: "not UTF-8",
        edits: &[Raw(b"{\"ociVersion\": \"1.0.\xff\"}")],
        needles: &["config.json", "line 1"],
    },
    Case {
        name: "10000 unclosed arrays",
        edits: &[Fs("config.json is `{\"x\":` then 10000 `[`", |env| {
            let mut s = b"{\"x\":".to_vec();
            s.extend(std::iter::repeat_n(b'[', 10000));
            std::fs::write(env.bundle.join("config.json"), s).unwrap();
        })],
        needles: &["config.json", "EOF while parsing a list"],
    },
    Case {
        name: "config.json is a directory",
        edits: &[Fs("config.json is a directory", |env| {
            std::fs::create_dir(env.bundle.join("config.json")).unwrap();
        })],
        needles: &["config.json", "not a regular file"],
    },
    Case {
        name: "config.json is a FIFO",
        edits: &[Fs("config.json is a FIFO (a read would block)", |env| {
            let p = std::ffi::CString::new(env.bundle.join("config.json").into_os_string().into_vec())
                .unwrap();
            // SAFETY: mkfifo on a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o600) }, 0);
        })],
        needles: &["config.json", "not a regular file"],
    },
    Case {
        name: "config.json links to /dev/zero",
        edits: &[Fs("config.json is a symlink to /dev/zero (endless)", |env| {
            std::os::unix::fs::symlink("/dev/zero", env.bundle.join("config.json")).unwrap();
        })],
        needles: &["config.json", "not a regular file"],
    },
    Case {
        name: "missing ociVersion",
        edits: &[Remove("/ociVersion")],
        needles: &["ociVersion", "missing"],
    },
    // --- wrong JSON types ---
    Case {
        name: "args is a string",
        edits: &[Set("/process/args", r#""sh""#)],
        needles: &["process.args", "invalid type: string"],
    },
    Case {
        name: "env is an object",
        edits: &[Set("/process/env", r#"{"A": "b"}"#)],
        needles: &["process.env", "invalid type: map"],
    },
    Case {
        name: "terminal is a string",
        edits: &[Set("/process/terminal", r#""yes""#)],
        needles: &["process.terminal", "expected a boolean"],
    },
    Case {
        name: "root.readonly is a number",
        edits: &[Set("/root/readonly", "1")],
        needles: &["root.readonly", "expected a boolean"],
    },
    Case {
        name: "mounts is an object",
        edits: &[Set("/mounts", "{}")],
        needles: &["mounts", "invalid type: map"],
    },
    Case {
        name: "mount options is a string",
        edits: &[Set("/mounts/0/options", r#""ro""#)],
        needles: &["mounts[0].options", "invalid type: string"],
    },
    Case {
        name: "namespaces is a string",
        edits: &[Set("/linux/namespaces", r#""pid""#)],
        needles: &["linux.namespaces", "invalid type: string"],
    },
    Case {
        name: "hostname is a number",
        edits: &[Set("/hostname", "42")],
        needles: &["hostname", "invalid type: integer"],
    },
    Case {
        name: "annotations is an array",
        edits: &[Set("/annotations", r#"["a"]"#)],
        needles: &["annotations", "invalid type: sequence"],
    },
    Case {
        name: "memory limit is a string",
        edits: &[Set("/linux/resources/memory/limit", r#""1g""#)],
        needles: &["linux.resources.memory.limit", "invalid type: string"],
    },
    Case {
        name: "capability set is a string",
        edits: &[Set("/process/capabilities/bounding", r#""CAP_KILL""#)],
        needles: &["process.capabilities.bounding", "invalid type: string"],
    },
    Case {
        name: "sysctl value is a number",
        edits: &[Set("/linux/sysctl", r#"{"net.ipv4.ip_forward": 1}"#)],
        needles: &["linux.sysctl.net.ipv4.ip_forward", "invalid type: integer"],
    },
    Case {
        name: "umask is a string",
        edits: &[Set("/process/user/umask", r#""022""#)],
        needles: &["process.user.umask", "invalid type: string"],
    },
    Case {
        name: "additionalGids holds a string",
        edits: &[Set("/process/user/additionalGids", r#"["wheel"]"#)],
        needles: &["process.user.additionalGids[0]", "invalid type: string"],
    },
    Case {
        name: "process is null",
        edits: &[Set("/process", "null")],
        needles: &["process", "missing"],
    },
    Case {
        name: "root is null",
        edits: &[Set("/root", "null")],
        needles: &["root", "missing"],
    },
    // --- numbers out of range ---
    Case {
        name: "negative uid",
        edits: &[Set("/process/user/uid", "-1")],
        needles: &["process.user.uid", "-1"],
    },
    Case {
        name: "gid above u32",
        edits: &[Set("/process/user/gid", "4294967296")],
        needles: &["process.user.gid", "4294967296"],
    },
    Case {
        name: "rlimit above u64",
        edits: &[Set("/process/rlimits/0/soft", "18446744073709551616")],
        needles: &["process.rlimits[0].soft"],
    },
    Case {
        name: "negative rlimit",
        edits: &[Set("/process/rlimits/0/hard", "-1")],
        needles: &["process.rlimits[0].hard", "-1"],
    },
    Case {
        name: "pids limit is 1e400",
        edits: &[SetText("/linux/resources/pids/limit", "1e400")],
        needles: &["linux.resources.pids.limit"],
    },
    Case {
        name: "oomScoreAdj above 1000",
        edits: &[Set("/process/oomScoreAdj", "1001")],
        needles: &["process.oomScoreAdj", "1001", "-1000..1000"],
    },
    Case {
        name: "oomScoreAdj above i32",
        edits: &[Set("/process/oomScoreAdj", "2147483648")],
        needles: &["process.oomScoreAdj", "2147483648"],
    },
    Case {
        name: "ioPriority level 8",
        edits: &[Set(
            "/process/ioPriority",
            r#"{"class": "IOPRIO_CLASS_BE", "priority": 8}"#,
        )],
        needles: &["process.ioPriority.priority", "8"],
    },
    Case {
        name: "nice 20",
        edits: &[Set(
            "/process/scheduler",
            r#"{"policy": "SCHED_OTHER", "nice": 20}"#,
        )],
        needles: &["process.scheduler.nice", "20"],
    },
    Case {
        name: "SCHED_FIFO without a priority",
        edits: &[Set("/process/scheduler", r#"{"policy": "SCHED_FIFO"}"#)],
        needles: &["process.scheduler.priority", "SCHED_FIFO"],
    },
    Case {
        name: "CPU list backwards",
        edits: &[Set("/process/execCPUAffinity", r#"{"initial": "3-1"}"#)],
        needles: &["process.execCPUAffinity.initial", "3-1"],
    },
    Case {
        name: "CPU 5000",
        edits: &[Set("/process/execCPUAffinity", r#"{"final": "5000"}"#)],
        needles: &["process.execCPUAffinity.final", "5000"],
    },
    // --- root filesystem ---
    Case {
        name: "empty root.path",
        edits: &[Set("/root/path", r#""""#)],
        needles: &["root.path", "missing"],
    },
    Case {
        name: "root.path escapes with ..",
        edits: &[Set("/root/path", r#""../../../../../no-such-dir""#)],
        needles: &["root.path", "no-such-dir", "No such file"],
    },
    Case {
        name: "rootfs is a file",
        edits: &[Fs("root.path is a regular file", |env| {
            let f = env.bundle.join("rootfs");
            std::fs::write(&f, "").unwrap();
            env.set("/root/path", serde_json::json!("rootfs"));
        })],
        needles: &["root.path", "/bundle/rootfs", "not a directory"],
    },
    Case {
        name: "rootfs is a dangling symlink",
        edits: &[Fs("root.path is a symlink to a missing directory", |env| {
            std::os::unix::fs::symlink("/no-such-rootfs", env.bundle.join("rootfs")).unwrap();
            env.set("/root/path", serde_json::json!("rootfs"));
        })],
        needles: &["root.path", "/bundle/rootfs", "No such file"],
    },
    Case {
        name: "rootfs is a symlink loop",
        edits: &[Fs("root.path is a symlink to itself", |env| {
            std::os::unix::fs::symlink("rootfs", env.bundle.join("rootfs")).unwrap();
            env.set("/root/path", serde_json::json!("rootfs"));
        })],
        needles: &["root.path", "/bundle/rootfs", "symbolic links"],
    },
    Case {
        name: "rootfs is a symlink to a file",
        edits: &[Fs("root.path is a symlink to /etc/passwd", |env| {
            std::os::unix::fs::symlink("/etc/passwd", env.bundle.join("rootfs")).unwrap();
            env.set("/root/path", serde_json::json!("rootfs"));
        })],
        needles: &["root.path", "/etc/passwd", "not a directory"],
    },
    Case {
        name: "root.path holds a NUL",
        edits: &[Set("/root/path", r#""root\u0000fs""#)],
        needles: &["root.path", "NUL byte"],
    },
    // --- process ---
    Case {
        name: "empty program name",
        edits: &[Set("/process/args", r#"[""]"#)],
        needles: &["process.args", "program"],
    },
    Case {
        name: "env entry without =",
        edits: &[Push("/process/env", r#""JUSTAKEY""#)],
        needles: &["process.env[2]", "JUSTAKEY", "KEY=VALUE"],
    },
    Case {
        name: "empty cwd",
        edits: &[Set("/process/cwd", r#""""#)],
        needles: &["process.cwd", "absolute"],
    },
    Case {
        name: "duplicate rlimit",
        edits: &[Push(
            "/process/rlimits",
            r#"{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 10}"#,
        )],
        needles: &["process.rlimits[1].type", "duplicate RLIMIT_NOFILE"],
    },
    Case {
        name: "lower-case rlimit name",
        edits: &[Set(
            "/process/rlimits/0/type",
            r#""rlimit_nofile""#,
        )],
        needles: &["process.rlimits[0].type", "rlimit_nofile"],
    },
    Case {
        name: "unknown scheduler policy",
        edits: &[Set("/process/scheduler", r#"{"policy": "SCHED_FAST"}"#)],
        needles: &["process.scheduler.policy", "SCHED_FAST"],
    },
    Case {
        name: "unknown ioPriority class",
        edits: &[Set(
            "/process/ioPriority",
            r#"{"class": "IOPRIO_CLASS_URGENT", "priority": 1}"#,
        )],
        needles: &["process.ioPriority.class", "IOPRIO_CLASS_URGENT"],
    },
    Case {
        name: "terminal without a console socket",
        edits: &[Set("/process/terminal", "true")],
        needles: &["process.terminal", "--console-socket"],
    },
    Case {
        name: "AppArmor profile on a host without AppArmor",
        edits: &[Set("/process/apparmorProfile", r#""docker-default""#)],
        needles: &["process.apparmorProfile", "AppArmor"],
    },
    Case {
        name: "SELinux mount label",
        edits: &[Set("/linux/mountLabel", r#""system_u:object_r:container_file_t:s0""#)],
        needles: &["linux.mountLabel", "SELinux"],
    },
    // --- namespaces and id mappings ---
    Case {
        name: "unknown namespace type",
        edits: &[Push("/linux/namespaces", r#"{"type": "time-travel"}"#)],
        needles: &["linux.namespaces[6].type", "time-travel"],
    },
    Case {
        name: "duplicate namespace",
        edits: &[Push("/linux/namespaces", r#"{"type": "pid"}"#)],
        needles: &["linux.namespaces[6]", "duplicate namespace type pid"],
    },
    Case {
        name: "uid mappings without a user namespace",
        edits: &[Set(
            "/linux/uidMappings",
            r#"[{"containerID": 0, "hostID": 1000, "size": 1}]"#,
        )],
        needles: &["linux.uidMappings", "user namespace"],
    },
    Case {
        name: "user namespace without gid mappings",
        edits: &[
            Push("/linux/namespaces", r#"{"type": "user"}"#),
            Set(
                "/linux/uidMappings",
                r#"[{"containerID": 0, "hostID": 100000, "size": 65536}]"#,
            ),
        ],
        needles: &["linux.uidMappings", "gidMappings"],
    },
    Case {
        name: "zero-size uid mapping",
        edits: &[
            Push("/linux/namespaces", r#"{"type": "user"}"#),
            Set(
                "/linux/uidMappings",
                r#"[{"containerID": 0, "hostID": 100000, "size": 0}]"#,
            ),
            Set(
                "/linux/gidMappings",
                r#"[{"containerID": 0, "hostID": 100000, "size": 65536}]"#,
            ),
        ],
        needles: &["linux.uidMappings[0].size", "greater than zero"],
    },
    Case {
        name: "overlapping uid mappings",
        edits: &[
            Push("/linux/namespaces", r#"{"type": "user"}"#),
            Set(
                "/linux/uidMappings",
                r#"[{"containerID": 0, "hostID": 100000, "size": 1000}, {"containerID": 500, "hostID": 200000, "size": 10}]"#,
            ),
            Set(
                "/linux/gidMappings",
                r#"[{"containerID": 0, "hostID": 100000, "size": 65536}]"#,
            ),
        ],
        needles: &["linux.uidMappings[1]", "overlaps", "linux.uidMappings[0]"],
    },
    Case {
        name: "gid mapping wraps past 2^32",
        edits: &[
            Push("/linux/namespaces", r#"{"type": "user"}"#),
            Set(
                "/linux/uidMappings",
                r#"[{"containerID": 0, "hostID": 100000, "size": 65536}]"#,
            ),
            Set(
                "/linux/gidMappings",
                r#"[{"containerID": 0, "hostID": 4294967295, "size": 2}]"#,
            ),
        ],
        needles: &["linux.gidMappings[0]", "4294967295"],
    },
    Case {
        name: "offset of the realtime clock",
        edits: &[
            Push("/linux/namespaces", r#"{"type": "time"}"#),
            Set("/linux/timeOffsets", r#"{"realtime": {"secs": 1}}"#),
        ],
        needles: &["linux.timeOffsets.realtime", "monotonic"],
    },
    Case {
        name: "time offsets without a time namespace",
        edits: &[Set("/linux/timeOffsets", r#"{"monotonic": {"secs": 1}}"#)],
        needles: &["linux.timeOffsets.monotonic", "time namespace"],
    },
    Case {
        name: "relative namespace path",
        edits: &[Set(
            "/linux/namespaces/1",
            r#"{"type": "network", "path": "ns/net"}"#,
        )],
        needles: &["linux.namespaces[1].path", "ns/net", "absolute"],
    },
    // --- devices ---
    Case {
        name: "device type x",
        edits: &[Push(
            "/linux/devices",
            r#"{"path": "/dev/x", "type": "x", "major": 1, "minor": 3}"#,
        )],
        needles: &["linux.devices[0].type", "x"],
    },
    Case {
        name: "device type a",
        edits: &[Push(
            "/linux/devices",
            r#"{"path": "/dev/x", "type": "a", "major": 1, "minor": 3}"#,
        )],
        needles: &["linux.devices[0].type", "c, b, u or p"],
    },
    Case {
        name: "device major 4096",
        edits: &[Push(
            "/linux/devices",
            r#"{"path": "/dev/x", "type": "c", "major": 4096, "minor": 3}"#,
        )],
        needles: &["linux.devices[0].major", "4096"],
    },
    Case {
        name: "negative device major",
        edits: &[Push(
            "/linux/devices",
            r#"{"path": "/dev/x", "type": "b", "major": -1, "minor": 3}"#,
        )],
        needles: &["linux.devices[0].major", "-1"],
    },
    Case {
        name: "device minor 2^20",
        edits: &[Push(
            "/linux/devices",
            r#"{"path": "/dev/x", "type": "c", "major": 1, "minor": 1048576}"#,
        )],
        needles: &["linux.devices[0].minor", "1048576"],
    },
    Case {
        name: "char device without major",
        edits: &[Push(
            "/linux/devices",
            r#"{"path": "/dev/x", "type": "c", "minor": 3}"#,
        )],
        needles: &["linux.devices[0].major", "required for a c device"],
    },
    Case {
        name: "block device without minor",
        edits: &[Push("/linux/devices", r#"{"path": "/dev/x", "type": "b", "major": 7}"#)],
        needles: &["linux.devices[0].minor", "required for a b device"],
    },
    Case {
        name: "relative device path",
        edits: &[Push(
            "/linux/devices",
            r#"{"path": "dev/x", "type": "c", "major": 1, "minor": 3}"#,
        )],
        needles: &["linux.devices[0].path", "absolute"],
    },
    Case {
        name: "device outside /dev",
        edits: &[Push(
            "/linux/devices",
            r#"{"path": "/etc/passwd", "type": "c", "major": 1, "minor": 3}"#,
        )],
        needles: &["linux.devices[0].path", "/etc/passwd", "/dev"],
    },
    Case {
        name: "device path escapes /dev with ..",
        edits: &[Push(
            "/linux/devices",
            r#"{"path": "/dev/../etc/x", "type": "c", "major": 1, "minor": 3}"#,
        )],
        needles: &["linux.devices[0].path", ".."],
    },
    Case {
        name: "device at /dev itself",
        edits: &[Push(
            "/linux/devices",
            r#"{"path": "/dev", "type": "c", "major": 1, "minor": 3}"#,
        )],
        needles: &["linux.devices[0].path", "/dev"],
    },
    // --- mounts ---
    Case {
        name: "mount over /",
        edits: &[Push(
            "/mounts",
            r#"{"destination": "/", "type": "tmpfs", "source": "tmpfs"}"#,
        )],
        needles: &["mounts[9].destination", "root"],
    },
    Case {
        name: "mount destination with ..",
        edits: &[Push(
            "/mounts",
            r#"{"destination": "/proc/../../etc", "type": "tmpfs", "source": "tmpfs"}"#,
        )],
        needles: &["mounts[9].destination", ".."],
    },
    Case {
        name: "empty mount destination",
        edits: &[Push(
            "/mounts",
            r#"{"destination": "", "type": "tmpfs", "source": "tmpfs"}"#,
        )],
        needles: &["mounts[9].destination", "absolute"],
    },
    Case {
        name: "mount without a type",
        edits: &[Push(
            "/mounts",
            r#"{"destination": "/x", "source": "tmpfs"}"#,
        )],
        needles: &["mounts[9].type", "missing"],
    },
    Case {
        name: "bind mount without a source",
        edits: &[Push(
            "/mounts",
            r#"{"destination": "/x", "type": "bind", "options": ["rbind"]}"#,
        )],
        needles: &["mounts[9].source", "needs a source"],
    },
    Case {
        name: "tmpcopyup on a bind mount",
        edits: &[Push(
            "/mounts",
            r#"{"destination": "/x", "type": "bind", "source": "$TMP/out", "options": ["rbind", "tmpcopyup"]}"#,
        )],
        needles: &["mounts[9].options", "tmpcopyup"],
    },
    Case {
        name: "idmap on a tmpfs",
        edits: &[Push(
            "/mounts",
            r#"{"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}"#,
        )],
        needles: &["mounts[9].options", "bind"],
    },
    Case {
        name: "bind source is a symlink loop",
        edits: &[Fs(
            "mounts += bind of `$TMP/loop`, a symlink to itself",
            |env| {
                let l = env.tmp.path().join("loop");
                std::os::unix::fs::symlink(&l, &l).unwrap();
                env.push(
                    "/mounts",
                    serde_json::json!({"destination": "/x", "type": "bind", "source": l, "options": ["rbind"]}),
                );
            },
        )],
        needles: &["mounts[9]", "/loop", "symbolic links"],
    },
    Case {
        name: "destination through a symlink loop",
        edits: &[Fs(
            "rootfs has `/loop -> /loop`; mounts += tmpfs at /loop/x",
            |env| {
                let rootfs = env.private_rootfs();
                std::os::unix::fs::symlink("/loop", rootfs.join("loop")).unwrap();
                env.set("/root/path", serde_json::json!("rootfs"));
                env.push(
                    "/mounts",
                    serde_json::json!({"destination": "/loop/x", "type": "tmpfs", "source": "tmpfs"}),
                );
            },
        )],
        needles: &["mounts[9]", "/loop/x"],
    },
    Case {
        name: "bad tmpfs size",
        edits: &[Push(
            "/mounts",
            r#"{"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=lots"]}"#,
        )],
        needles: &["mounts[9]", "/x"],
    },
    Case {
        name: "unknown rootfsPropagation",
        edits: &[Set("/linux/rootfsPropagation", r#""sideways""#)],
        needles: &["linux.rootfsPropagation", "sideways"],
    },
    Case {
        name: "relative masked path",
        edits: &[Push("/linux/maskedPaths", r#""proc/kcore""#)],
        needles: &["linux.maskedPaths[10]", "absolute"],
    },
    Case {
        name: "read-only path with ..",
        edits: &[Push("/linux/readonlyPaths", r#""/proc/../etc""#)],
        needles: &["linux.readonlyPaths[5]", ".."],
    },
    // --- seccomp ---
    Case {
        name: "unknown seccomp action",
        edits: &[Set(
            "/linux/seccomp",
            r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#,
        )],
        needles: &["linux.seccomp.defaultAction", "SCMP_ACT_MAYBE"],
    },
    Case {
        name: "unknown seccomp architecture",
        edits: &[Set(
            "/linux/seccomp",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}"#,
        )],
        needles: &["linux.seccomp.architectures[0]", "SCMP_ARCH_Z80"],
    },
    Case {
        name: "unknown seccomp operator",
        edits: &[Set(
            "/linux/seccomp",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}"#,
        )],
        needles: &["linux.seccomp.syscalls[0].args[0].op", "SCMP_CMP_ABOUT"],
    },
    Case {
        name: "seccomp argument index 6",
        edits: &[Set(
            "/linux/seccomp",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        )],
        needles: &["syscalls[0].args[0].index", "6"],
    },
    Case {
        name: "seccomp rule without names",
        edits: &[Set(
            "/linux/seccomp",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}"#,
        )],
        needles: &["syscalls[0].names"],
    },
    Case {
        name: "NOTIFY as the default action",
        edits: &[Set(
            "/linux/seccomp",
            r#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/x.sock"}"#,
        )],
        needles: &["defaultAction", "SCMP_ACT_NOTIFY"],
    },
    Case {
        name: "NOTIFY without a listener",
        edits: &[Set(
            "/linux/seccomp",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        )],
        needles: &["linux.seccomp.listenerPath", "SCMP_ACT_NOTIFY"],
    },
    // --- hooks ---
    Case {
        name: "relative hook path",
        edits: &[Set("/hooks/prestart", r#"[{"path": "bin/true"}]"#)],
        needles: &["hooks.prestart[0].path", "absolute"],
    },
    Case {
        name: "zero hook timeout",
        edits: &[Set(
            "/hooks/createRuntime",
            r#"[{"path": "/bin/true", "timeout": 0}]"#,
        )],
        needles: &["hooks.createRuntime[0].timeout", "greater than zero"],
    },
    Case {
        name: "missing hook program",
        edits: &[Set(
            "/hooks/createRuntime",
            r#"[{"path": "$TMP/no-such-hook"}]"#,
        )],
        needles: &["createRuntime", "/no-such-hook"],
    },
    // --- sysctl, personality, cgroups ---
    Case {
        name: "sysctl key with an empty part",
        edits: &[Set("/linux/sysctl", r#"{"net..ipv4": "1"}"#)],
        needles: &["linux.sysctl.net..ipv4", "malformed"],
    },
    Case {
        name: "sysctl key escaping /proc/sys",
        edits: &[Set("/linux/sysctl", r#"{"../../etc/passwd": "x"}"#)],
        needles: &["linux.sysctl.../../etc/passwd", "malformed"],
    },
    Case {
        name: "unknown sysctl",
        edits: &[Set("/linux/sysctl", r#"{"kernel.no_such_knob": "1"}"#)],
        needles: &["kernel.no_such_knob"],
    },
    Case {
        name: "host-wide sysctl",
        edits: &[Set("/linux/sysctl", r#"{"vm.swappiness": "0"}"#)],
        needles: &["linux.sysctl.vm.swappiness", "namespace"],
    },
    Case {
        name: "net sysctl without a network namespace",
        edits: &[
            Fs("linux.namespaces without network", |env| {
                let ns: Vec<Value> = env.config["linux"]["namespaces"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|n| n["type"] != "network")
                    .cloned()
                    .collect();
                env.set("/linux/namespaces", Value::Array(ns));
            }),
            Set("/linux/sysctl", r#"{"net.ipv4.ip_forward": "1"}"#),
        ],
        needles: &["linux.sysctl.net.ipv4.ip_forward", "network namespace"],
    },
    Case {
        name: "unknown personality domain",
        edits: &[Set("/linux/personality", r#"{"domain": "LINUX64"}"#)],
        needles: &["linux.personality.domain", "LINUX64"],
    },
    Case {
        name: "personality flags",
        edits: &[Set(
            "/linux/personality",
            r#"{"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}"#,
        )],
        needles: &["linux.personality.flags"],
    },
    Case {
        name: "MPOL_BIND without nodes",
        edits: &[Set("/linux/memoryPolicy", r#"{"mode": "MPOL_BIND"}"#)],
        needles: &["linux.memoryPolicy.nodes", "needs at least one node"],
    },
    Case {
        name: "memory policy on a node the host lacks",
        edits: &[Set("/linux/memoryPolicy", r#"{"mode": "MPOL_INTERLEAVE", "nodes": "5"}"#)],
        needles: &["linux.memoryPolicy", "set_mempolicy", "EINVAL"],
    },
    Case {
        name: "netDevices name with a slash",
        edits: &[Set("/linux/netDevices", r#"{"eth9": {"name": "a/b"}}"#)],
        needles: &["linux.netDevices.eth9.name", "'/'"],
    },
    Case {
        name: "netDevices name of 16 bytes",
        edits: &[Set("/linux/netDevices", r#"{"eth9": {"name": "abcdefghijklmnop"}}"#)],
        needles: &["linux.netDevices.eth9.name", "1 to 15 bytes"],
    },
    Case {
        name: "netDevices without a new network namespace",
        edits: &[
            Set("/linux/namespaces", r#"[{"type": "pid"}, {"type": "mount"}]"#),
            Set("/linux/netDevices", r#"{"eth9": {}}"#),
        ],
        needles: &["linux.netDevices: needs a new network namespace"],
    },
    Case {
        name: "cgroupsPath with ..",
        edits: &[Set("/linux/cgroupsPath", r#""/berth/../../../tmp/escape""#)],
        needles: &["linux.cgroupsPath", ".."],
    },
    Case {
        name: "unknown unified cgroup file",
        edits: &[Set(
            "/linux/resources/unified",
            r#"{"hugetlb.no_such_file": "1"}"#,
        )],
        needles: &["hugetlb.no_such_file"],
    },
    Case {
        name: "unified key escaping the cgroup",
        edits: &[Set(
            "/linux/resources/unified",
            r#"{"../../cgroup.procs": "1"}"#,
        )],
        needles: &["linux.resources.unified", "../../cgroup.procs"],
    },
    Case {
        name: "memory limit -2",
        edits: &[Set("/linux/resources/memory/limit", "-2")],
        needles: &["memory.limit_in_bytes", "\"-2\"", "Invalid argument"],
    },
    Case {
        name: "device rule with access q",
        edits: &[Push(
            "/linux/resources/devices",
            r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "q"}"#,
        )],
        needles: &["linux.resources.devices[1].access", "q"],
    },
    Case {
        name: "hostname of 65 bytes",
        edits: &[Set(
            "/hostname",
            r#""aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa""#,
        )],
        needles: &["hostname", "64"],
    },
    // --- container ids on the command line ---
    Case {
        name: "id with a newline",
        edits: &[Id(b"a\nb")],
        needles: &["container id", "\"a\\nb\"", "invalid"],
    },
    Case {
        name: "id with a tab",
        edits: &[Id(b"a\tb")],
        needles: &["container id", "\"a\\tb\"", "invalid"],
    },
    Case {
        name: "id of spaces",
        edits: &[Id(b"   ")],
        needles: &["container id", "\"   \"", "invalid"],
    },
    Case {
        name: "absolute id",
        edits: &[Id(b"/etc")],
        needles: &["container id", "\"/etc\"", "invalid"],
    },
    Case {
        name: "id climbing out",
        edits: &[Id(b"x/../../y")],
        needles: &["container id", "x/../../y", "invalid"],
    },
    Case {
        name: "non-ASCII id",
        edits: &[Id("caf\u{e9}".as_bytes())],
        needles: &["container id", "caf", "invalid"],
    },
    Case {
        name: "id with shell characters",
        edits: &[Id(b"$(reboot)")],
        needles: &["container id", "$(reboot)", "invalid"],
    },
    Case {
        name: "id with DEL",
        edits: &[Id(b"a\x7fb")],
        needles: &["container id", "\\u{7f}", "invalid"],
    },
    Case {
        name: "id that is not UTF-8",
        edits: &[Id(b"a\xffb")],
        needles: &["invalid UTF-8", "--help"],
    },
    Case {
        name: "id longer than a file name may be",
        edits: &[Id(b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")],
        needles: &["/root/xxxxxxxxxx", "File name too long"],
    },
    Case {
        name: "id of 2000 bytes",
        edits: &[Id(&[b'y'; 2000])],
        needles: &["container id", "longer than 1024 bytes"],
    },
];

const PLACEHOLDER: &str = "@@berth-malformed@@";

/// What one case printed, with the test's own paths replaced for the docs.
struct Outcome {
    line: String,
}

fn json_text(s: &str, env: &Env) -> Value {
    let s = s.replace("$TMP", env.tmp.path().to_str().unwrap());
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("bad JSON in the table: {s}: {e}"))
}

/// Sets a JSON pointer whose parent may be an array (Env::set only walks objects).
fn set_pointer(env: &mut Env, pointer: &str, v: Value) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    match env.config.pointer_mut(parent) {
        Some(Value::Array(a)) => {
            let i: usize = last.parse().unwrap();
            a[i] = v;
        }
        Some(Value::Object(o)) => {
            o.insert(last.to_string(), v);
        }
        _ => {
            env.set(pointer, v);
        }
    }
}

fn remove_pointer(env: &mut Env, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    match env.config.pointer_mut(parent) {
        Some(Value::Object(o)) => {
            o.remove(last);
        }
        Some(Value::Array(a)) => {
            a.remove(last.parse::<usize>().unwrap());
        }
        _ => panic!("nothing at {pointer}"),
    }
}

/// Runs one case; panics (caught by the caller) when berth does not behave.
fn run_case(case: &Case) -> Outcome {
    let mut env = Env::new(&["true"]);
    let mut raw = None;
    let mut text_config: Option<Vec<u8>> = None;
    let mut id = env.id().into_bytes();
    let mut wrote = false;
    for e in case.edits {
        match e {
            Set(p, v) => {
                let v = json_text(v, &env);
                set_pointer(&mut env, p, v);
            }
            Push(p, v) => {
                let v = json_text(v, &env);
                env.push(p, v);
            }
            Remove(p) => remove_pointer(&mut env, p),
            SetText(p, text) => {
                set_pointer(&mut env, p, Value::String(PLACEHOLDER.into()));
                let doc = serde_json::to_string(&env.config).unwrap();
                let doc = doc.replace(&format!("\"{PLACEHOLDER}\""), text);
                text_config = Some(doc.into_bytes());
            }
            Raw(b) => raw = Some(*b),
            Id(b) => id = b.to_vec(),
            Fs(_, f) => {
                f(&mut env);
                wrote |= env.bundle.join("config.json").symlink_metadata().is_ok();
            }
        }
    }
    if let Some(t) = &text_config {
        raw = Some(t.as_slice());
    }
    match raw {
        Some(b) => std::fs::write(env.bundle.join("config.json"), b).unwrap(),
        None if !wrote => env.write_config(),
        None => {}
    }
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--root")
        .arg(&env.root)
        .arg("create")
        .arg("--bundle")
        .arg(&env.bundle)
        .arg(OsStr::from_bytes(&id));
    let out = run_cmd(&mut cmd, Duration::from_secs(60));
    assert_eq!(
        out.code, 1,
        "exit code {}; stdout {:?}; stderr {:?}",
        out.code, out.stdout, out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line on stderr: {:?}", out.stderr);
    for n in case.needles {
        assert!(out.stderr.contains(n), "{:?} lacks {n:?}", out.stderr);
    }
    let id_str = String::from_utf8_lossy(&id).into_owned();
    if id_str.contains('/') {
        // assert_clean would look at <root>/<id>, which an absolute id turns into a host
        // path; the --root check below covers the state dir.
        for h in cgroup_mounts() {
            let p = h.join("berth").join(id_str.trim_start_matches('/'));
            assert!(!p.exists(), "cgroup {} left behind", p.display());
        }
    } else {
        env.assert_clean(&id_str);
    }
    // Nothing under --root at all (an odd id must not have made some other directory).
    let left: Vec<_> = std::fs::read_dir(&env.root)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left under --root: {left:?}");
    assert!(
        !Path::new("/tmp/escape").exists(),
        "a cgroupsPath escaped to /tmp"
    );
    let mut line = lines[0].replace(env.tmp.path().to_str().unwrap(), "$TMP");
    line = line.replace(default_bundle().to_str().unwrap(), "$BASE");
    if std::str::from_utf8(&id).is_ok() && id.len() > 3 && id_str.starts_with("it") {
        line = line.replace(&id_str, "$ID");
    }
    line = without_compact_column(&line);
    if id.len() > 40 {
        // Keeps docs/errors.md readable; the test above saw the whole line.
        line = line.replace(&id_str, &format!("<the {}-byte id>", id.len()));
    }
    Outcome { line }
}

/// A position deep in line 1 of a compact config counts every byte before it, $BASE's path
/// among them, which differs between checkouts: such a column is shown as `$COL`. Columns
/// before the first path (under 100) are the same everywhere and stay.
fn without_compact_column(line: &str) -> String {
    const AT: &str = "line 1 column ";
    let Some(i) = line.find(AT) else {
        return line.to_string();
    };
    let rest = &line[i + AT.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    match rest[..digits].parse::<u32>() {
        Ok(col) if col >= 100 => format!("{}$COL{}", &line[..i + AT.len()], &rest[digits..]),
        _ => line.to_string(),
    }
}

/// Backquoted for a Markdown table cell: pipes escaped, a longer fence around backquotes.
fn cell(s: &str) -> String {
    let s = s.replace('|', "\\|");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

fn describe(e: &Edit) -> String {
    match e {
        Set(p, v) | SetText(p, v) => format!("`{p}` = {}", cell(v)),
        Push(p, v) => format!("`{p}` += {}", cell(v)),
        Remove(p) => format!("no `{p}`"),
        Raw(b) => format!(
            "config.json is {}",
            cell(&format!("{:?}", String::from_utf8_lossy(b)))
        ),
        Id(b) => {
            let s = String::from_utf8_lossy(b);
            if s.len() > 40 {
                format!("id of {} bytes", b.len())
            } else {
                format!("id {}", cell(&format!("{:?}", OsStr::from_bytes(b))))
            }
        }
        Fs(d, _) => d.to_string(),
    }
}

fn errors_md(rows: &[(&Case, String)]) -> String {
    let mut s = String::from(
        "# Errors berth gives for malformed input\n\n\
         Generated from `tests/integration/malformed.rs` (regenerate with\n\
         `BERTH_WRITE_ERRORS_MD=1 cargo test --test integration malformed`; the test fails when this\n\
         file and berth's real output differ). Every case runs `berth create` on the default\n\
         test bundle changed as shown; berth exits 1, prints exactly this one line on stderr and\n\
         leaves no state directory, cgroup, mount or process. `$TMP` is the test's scratch\n\
         directory (the bundle is `$TMP/bundle`), `$BASE` the shared default bundle, `$ID` the\n\
         generated container id. Earlier cases live in `tests/integration/bad_input.rs`.\n\n\
         | # | case | input | error |\n|---|---|---|---|\n",
    );
    for (i, (case, line)) in rows.iter().enumerate() {
        let input: Vec<String> = case.edits.iter().map(describe).collect();
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            i + 1,
            case.name,
            input.join("; "),
            cell(line)
        ));
    }
    s
}

#[test]
fn malformed_catalogue() {
    assert!(CASES.len() >= 50);
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in CASES {
        match std::panic::catch_unwind(|| run_case(case)) {
            Ok(o) => rows.push((case, o.line)),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {msg}", case.name));
                rows.push((case, format!("FAILED: {msg}")));
            }
        }
    }
    let md = errors_md(&rows);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/errors.md");
    if std::env::var_os("BERTH_WRITE_ERRORS_MD").is_some() {
        std::fs::write(&path, &md).unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    if doc != md {
        let diff: Vec<String> = md
            .lines()
            .filter(|l| !doc.lines().any(|d| d == *l))
            .map(str::to_string)
            .collect();
        panic!(
            "docs/errors.md differs from berth's output (regenerate with BERTH_WRITE_ERRORS_MD=1); new or changed rows:\n{}",
            diff.join("\n")
        );
    }
}
