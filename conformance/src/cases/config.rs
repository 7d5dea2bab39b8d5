//! config.md: ociVersion, root, mounts, process, hostname, domainname, annotations and
//! extensibility.

use super::{cap_mask, errno_of, hex, mount_at, mount_fstype, mount_opts, s, status};
use crate::env::{Env, Outcome, T, ensure};
use crate::{Case, case};
use serde_json::{Value, json};

const ROOT: &str = "config.md § Root";
const MOUNTS: &str = "config.md § Mounts";
const PROC: &str = "config.md § Process";
const USER: &str = "config.md § User (POSIX)";
const CAPS: &str = "config.md § Linux process: capabilities";
const RLIM: &str = "config.md § POSIX process: rlimits";
const EXT: &str = "config.md § Extensibility";
const VALID: &str = "config.md § Valid values";

const EROFS: i64 = 30;

fn errorish(env: &mut Env, f: impl FnOnce(&mut crate::env::Bundle)) -> T<()> {
    env.expect_error(f)
}

fn cap_case(set: &'static str, key: &'static str) -> Case {
    case(
        format!("process.capabilities.{set}"),
        CAPS,
        "capabilities (object, OPTIONAL) is an object containing arrays that specifies the sets of capabilities for the process.",
        move |env| {
            let want = [
                "CAP_CHOWN",
                "CAP_KILL",
                "CAP_NET_RAW",
                "CAP_SETUID",
                "CAP_SETGID",
            ];
            let r = env.inspect(&[], |b| {
            b.process()["capabilities"] = json!({
                "bounding": want, "effective": want, "permitted": want, "inheritable": want, "ambient": want,
            });
        })?;
            let got = hex(status(&r, key));
            ensure(got == cap_mask(&want), || {
                format!("{key} {got:x}, want {:x}", cap_mask(&want))
            })
        },
    )
}

/// A limit below this host's hard limits (the bounding set lacks CAP_SYS_RESOURCE, so a
/// container can only lower them), distinct from the usual defaults so it shows.
fn rlimit_case(kind: &'static str, soft: u64, hard: u64) -> Case {
    case(
        format!("process.rlimits.{kind}"),
        RLIM,
        "rlimits … For each entry in rlimits, a getrlimit(3) on type MUST succeed … the runtime MUST … set the limit",
        move |env| {
            let mut host = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            let res = super::linux::rlimit_resource(kind);
            // SAFETY: host is a valid out-pointer.
            unsafe { libc::getrlimit(res, &mut host) };
            let (soft, hard) = (soft.min(host.rlim_max), hard.min(host.rlim_max));
            let r = env.inspect(&[], |b| {
                b.process()["rlimits"] = json!([{ "type": kind, "soft": soft, "hard": hard }])
            })?;
            let got = &r["rlimits"][kind];
            ensure(got == &json!([soft, hard]), || {
                format!("{kind} is {got}, want [{soft}, {hard}]")
            })
        },
    )
}

fn ignored_field(id: &'static str, path: &'static [&'static str]) -> Case {
    case(
        format!("extensibility.{id}"),
        EXT,
        "Runtimes that are reading or processing this configuration file MUST NOT generate an error if they encounter an unknown property. Instead they MUST ignore unknown properties.",
        move |env| {
            env.inspect(&[], |b| {
                let mut v = &mut b.cfg;
                for p in path {
                    v = &mut v[*p];
                }
                v["org.example.unknownProperty"] = json!({ "nested": [1, 2, 3] });
            })?;
            Ok(())
        },
    )
}

pub fn cases() -> Vec<Case> {
    let mut v = vec![
        case(
            "ociVersion.state",
            "config.md § Specification version",
            "ociVersion (string, REQUIRED) MUST be in SemVer v2.0.0 format and specifies the version of the Open Container Initiative Runtime Specification",
            |env| {
                let (id, _) = super::sleeper(env, |_| {})?;
                let st = env.state(&id)?;
                let v = s(&st["ociVersion"]);
                let core = v.split(['-', '+']).next().unwrap_or("");
                let parts: Vec<&str> = core.split('.').collect();
                ensure(
                    parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
                    || format!("ociVersion {v:?} is not SemVer"),
                )
            },
        ),
        case(
            "root.path-relative",
            ROOT,
            "path (string, REQUIRED) … On POSIX platforms, path is either an absolute path or a relative path to the bundle.",
            |env| {
                let r = env.inspect(&["--stat", "/checker"], |_| {})?;
                ensure(r["stat"]["/checker"]["type"] == "f", || {
                    "no /checker".into()
                })
            },
        ),
        case(
            "root.path-absolute",
            ROOT,
            "path … is either an absolute path or a relative path to the bundle.",
            |env| {
                let r = env.inspect(&["--stat", "/checker"], |b| {
                    b.cfg["root"]["path"] = json!(b.rootfs().display().to_string());
                })?;
                ensure(r["stat"]["/checker"]["type"] == "f", || {
                    "no /checker".into()
                })
            },
        ),
        case(
            "root.readonly-true",
            ROOT,
            "readonly (bool, OPTIONAL) If true then the root filesystem MUST be read-only inside the container",
            |env| {
                let r = env.inspect(&["--write", "/rofile"], |b| {
                    b.cfg["root"]["readonly"] = json!(true)
                })?;
                let e = errno_of(&r, "write", "/rofile")?;
                ensure(e == EROFS, || {
                    format!("writing / gave errno {e}, want EROFS")
                })
            },
        ),
        case(
            "root.readonly-false",
            ROOT,
            "readonly (bool, OPTIONAL) If true then the root filesystem MUST be read-only …, defaults to false.",
            |env| {
                let r = env.inspect(&["--write", "/rwfile"], |b| {
                    b.cfg["root"]["readonly"] = json!(false)
                })?;
                let e = errno_of(&r, "write", "/rwfile")?;
                ensure(e == 0, || format!("writing / gave errno {e}"))
            },
        ),
        case(
            "root.missing",
            "runtime.md § Lifecycle",
            "If the runtime is unable to create the environment specified in the config.json, it MUST generate an error.",
            |env| errorish(env, |b| b.cfg["root"]["path"] = json!("no-such-rootfs")),
        ),
        case(
            "mounts.order",
            MOUNTS,
            "The runtime MUST mount entries in the listed order.",
            |env| {
                let r = env.inspect(&["--stat", "/m/inner"], |b| {
                b.mounts().push(json!({ "destination": "/m", "type": "tmpfs", "source": "first", "options": ["size=1m"] }));
                b.mounts().push(json!({ "destination": "/m", "type": "tmpfs", "source": "second", "options": ["size=2m"] }));
                b.mounts().push(json!({ "destination": "/m/inner", "type": "tmpfs", "source": "third", "options": ["size=3m"] }));
            })?;
                let l = mount_at(&r, "/m")?;
                ensure(l.contains(" second "), || {
                    format!("the last mount at /m is {l}")
                })?;
                ensure(r["stat"]["/m/inner"]["type"] == "d", || {
                    "a later mount inside an earlier one is missing".into()
                })
            },
        ),
        case(
            "mounts.tmpfs",
            MOUNTS,
            "type (string, OPTIONAL) The type of the filesystem to be mounted.",
            |env| {
                let r = env.inspect(&[], |b| b.mounts().push(json!({ "destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=700"] })))?;
                let l = mount_at(&r, "/data")?;
                ensure(
                    mount_fstype(&l) == "tmpfs"
                        && l.contains("size=1024k")
                        && l.contains("mode=700"),
                    || format!("mount {l}"),
                )
            },
        ),
        case(
            "mounts.destination-created",
            MOUNTS,
            "destination (string, REQUIRED) Destination of mount point: path inside container.",
            |env| {
                let r = env.inspect(&["--stat", "/deep/new/dir"], |b| b.mounts().push(json!({ "destination": "/deep/new/dir", "type": "tmpfs", "source": "tmpfs" })))?;
                ensure(r["stat"]["/deep/new/dir"]["type"] == "d", || {
                    "destination missing".into()
                })
            },
        ),
        case(
            "mounts.bind-dir",
            MOUNTS,
            "source (string, OPTIONAL) A device name, but can also be a file or directory name for bind mounts",
            |env| {
                let src = env.path("bind-src");
                std::fs::create_dir_all(&src).map_err(|e| Outcome::Fail(e.to_string()))?;
                std::fs::write(src.join("hello"), "from-host")
                    .map_err(|e| Outcome::Fail(e.to_string()))?;
                let srcs = src.display().to_string();
                let r = env.inspect(&["--read", "/b/hello"], |b| b.mounts().push(json!({ "destination": "/b", "type": "bind", "source": srcs, "options": ["rbind"] })))?;
                ensure(r["read"]["/b/hello"] == "from-host", || {
                    format!("read {}", r["read"]["/b/hello"])
                })
            },
        ),
        case(
            "mounts.bind-file",
            MOUNTS,
            "source … can also be a file or directory name for bind mounts",
            |env| {
                let src = env.path("file-src");
                std::fs::write(&src, "file-content").map_err(|e| Outcome::Fail(e.to_string()))?;
                let srcs = src.display().to_string();
                let r = env.inspect(&["--read", "/etc/bound"], |b| b.mounts().push(json!({ "destination": "/etc/bound", "type": "bind", "source": srcs, "options": ["bind"] })))?;
                ensure(r["read"]["/etc/bound"] == "file-content", || {
                    format!("read {}", r["read"]["/etc/bound"])
                })
            },
        ),
        case(
            "mounts.bind-ro",
            MOUNTS,
            "options (array of strings, OPTIONAL) Mount options of the filesystem to be used.",
            |env| {
                let src = env.path("ro-src");
                std::fs::create_dir_all(&src).map_err(|e| Outcome::Fail(e.to_string()))?;
                let srcs = src.display().to_string();
                let r = env.inspect(&["--write", "/ro/x"], |b| b.mounts().push(json!({ "destination": "/ro", "type": "bind", "source": srcs, "options": ["bind", "ro"] })))?;
                let e = errno_of(&r, "write", "/ro/x")?;
                ensure(e == EROFS, || {
                    format!("write on a ro bind mount: errno {e}")
                })
            },
        ),
        case(
            "mounts.flags",
            MOUNTS,
            "options … Mount options of the filesystem to be used (nosuid, nodev, noexec)",
            |env| {
                let r = env.inspect(&[], |b| b.mounts().push(json!({ "destination": "/flags", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec"] })))?;
                let o = mount_opts(&mount_at(&r, "/flags")?);
                ensure(
                    ["nosuid", "nodev", "noexec"]
                        .iter()
                        .all(|f| o.iter().any(|x| x == f)),
                    || format!("options {o:?}"),
                )
            },
        ),
        case(
            "mounts.rbind-recursive",
            MOUNTS,
            "options … rbind (recursive bind, see mount(8))",
            |env| {
                let src = env.path("rbind-src");
                let sub = src.join("sub");
                std::fs::create_dir_all(&sub).map_err(|e| Outcome::Fail(e.to_string()))?;
                let st = std::process::Command::new("mount")
                    .args(["-t", "tmpfs", "-o", "size=1m", "conformance-sub"])
                    .arg(&sub)
                    .status();
                ensure(st.is_ok_and(|s| s.success()), || {
                    "cannot mount a tmpfs on the host".into()
                })?;
                env.remember_mount(&sub);
                std::fs::write(sub.join("inner"), "sub-mounted")
                    .map_err(|e| Outcome::Fail(e.to_string()))?;
                let srcs = src.display().to_string();
                let r = env.inspect(&["--read", "/rb/sub/inner"], |b| b.mounts().push(json!({ "destination": "/rb", "type": "bind", "source": srcs, "options": ["rbind"] })))?;
                ensure(r["read"]["/rb/sub/inner"] == "sub-mounted", || {
                    format!("read {}", r["read"]["/rb/sub/inner"])
                })
            },
        ),
        case(
            "mounts.error",
            "runtime.md § Lifecycle",
            "If the runtime is unable to create the environment specified in the config.json, it MUST generate an error.",
            |env| {
                errorish(env, |b| {
                    b.mounts().push(json!({ "destination": "/bad", "type": "no-such-fstype", "source": "none" }))
                })
            },
        ),
        case(
            "process.args",
            PROC,
            "args (array of strings, OPTIONAL) with similar semantics to IEEE Std 1003.1-2008 execvp's argv.",
            |env| {
                let r = env.inspect(&["--ls", "/"], |_| {})?;
                ensure(r["args"] == json!(["/checker", "--ls", "/"]), || {
                    format!("argv {}", r["args"])
                })
            },
        ),
        case(
            "process.args-path-lookup",
            PROC,
            "This specification extends the IEEE standard in that at least one entry is REQUIRED …, and that entry is used with the same semantics as execvp's file.",
            |env| {
                let r = env.inspect(&[], |b| {
                    let _ = std::fs::copy(
                        b.rootfs().join("checker"),
                        b.rootfs().join("bin/conformance-checker"),
                    );
                    b.cfg["process"]["args"] = json!(["conformance-checker"]);
                })?;
                ensure(r["args"][0] == "conformance-checker", || {
                    format!("argv {}", r["args"])
                })
            },
        ),
        case(
            "process.env",
            PROC,
            "env (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008's environ.",
            |env| {
                let r = env.inspect(&[], |b| {
                    b.process()["env"] = json!(["PATH=/bin", "FOO=bar baz", "EMPTY="])
                })?;
                let e = r["env"].as_array().cloned().unwrap_or_default();
                ensure(
                    ["PATH=/bin", "FOO=bar baz", "EMPTY="]
                        .iter()
                        .all(|x| e.contains(&json!(x))),
                    || format!("env {e:?}"),
                )
            },
        ),
        case(
            "process.cwd",
            PROC,
            "cwd (string, REQUIRED) is the working directory that will be set for the executable.",
            |env| {
                let r = env.inspect(&[], |b| b.process()["cwd"] = json!("/tmp"))?;
                ensure(r["cwd"] == "/tmp", || format!("cwd {}", r["cwd"]))
            },
        ),
        case(
            "process.user.uid",
            USER,
            "uid (int, REQUIRED) specifies the user ID in the container namespace.",
            |env| {
                let r = env.inspect(&[], |b| {
                    b.process()["user"] = json!({ "uid": 1234, "gid": 0 })
                })?;
                ensure(r["uid"] == 1234 && r["euid"] == 1234, || {
                    format!("uid {} euid {}", r["uid"], r["euid"])
                })
            },
        ),
        case(
            "process.user.gid",
            USER,
            "gid (int, REQUIRED) specifies the group ID in the container namespace.",
            |env| {
                let r = env.inspect(&[], |b| {
                    b.process()["user"] = json!({ "uid": 0, "gid": 4321 })
                })?;
                ensure(r["gid"] == 4321 && r["egid"] == 4321, || {
                    format!("gid {} egid {}", r["gid"], r["egid"])
                })
            },
        ),
        case(
            "process.user.additionalGids",
            USER,
            "additionalGids (array of ints, OPTIONAL) specifies additional group IDs in the container namespace to be added to the process.",
            |env| {
                let r = env.inspect(&[], |b| {
                    b.process()["user"] =
                        json!({ "uid": 1000, "gid": 1000, "additionalGids": [11, 22] })
                })?;
                let g = r["groups"].as_array().cloned().unwrap_or_default();
                ensure(g.contains(&json!(11)) && g.contains(&json!(22)), || {
                    format!("groups {g:?}")
                })
            },
        ),
        case(
            "process.user.umask",
            USER,
            "umask (int, OPTIONAL) specifies the umask of the user.",
            |env| {
                let r = env.inspect(&[], |b| b.process()["user"]["umask"] = json!(0o027))?;
                ensure(status(&r, "Umask") == "0027", || {
                    format!("Umask {}", status(&r, "Umask"))
                })
            },
        ),
        cap_case("bounding", "CapBnd"),
        cap_case("effective", "CapEff"),
        cap_case("permitted", "CapPrm"),
        cap_case("inheritable", "CapInh"),
        cap_case("ambient", "CapAmb"),
        case(
            "process.capabilities.distinct-sets",
            CAPS,
            "capabilities (object, OPTIONAL) is an object containing arrays that specifies the sets of capabilities for the process.",
            |env| {
                // A non-root user keeps across execve only its ambient set (in permitted and
                // effective); bounding and inheritable are kept as configured.
                let r = env.inspect(&[], |b| {
                    b.process()["user"] = json!({ "uid": 1000, "gid": 1000 });
                    b.process()["capabilities"] = json!({
                        "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID"],
                        "permitted": ["CAP_KILL", "CAP_CHOWN"],
                        "inheritable": ["CAP_KILL", "CAP_CHOWN"],
                        "effective": ["CAP_KILL", "CAP_CHOWN"],
                        "ambient": ["CAP_KILL"],
                    });
                })?;
                let (e, p, bnd, i, a) = (
                    hex(status(&r, "CapEff")),
                    hex(status(&r, "CapPrm")),
                    hex(status(&r, "CapBnd")),
                    hex(status(&r, "CapInh")),
                    hex(status(&r, "CapAmb")),
                );
                let kill = cap_mask(&["CAP_KILL"]);
                let ok = e == kill
                    && p == kill
                    && a == kill
                    && i == cap_mask(&["CAP_KILL", "CAP_CHOWN"])
                    && bnd == cap_mask(&["CAP_KILL", "CAP_CHOWN", "CAP_SETUID"]);
                ensure(ok, || {
                    format!("eff {e:x} prm {p:x} inh {i:x} amb {a:x} bnd {bnd:x}")
                })
            },
        ),
        case(
            "process.capabilities.ambient-not-grantable",
            CAPS,
            "Any value which cannot be mapped to a relevant kernel interface, or cannot be granted otherwise MUST be logged as a warning by the runtime. Runtimes SHOULD NOT fail if the container configuration requests capabilities that cannot be granted",
            |env| {
                // The kernel grants an ambient capability only if it is permitted and
                // inheritable: the container runs without it.
                let r = env.inspect(&[], |b| {
                    b.process()["capabilities"] = json!({ "bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"], "effective": ["CAP_KILL"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_CHOWN"] });
                })?;
                let amb = hex(status(&r, "CapAmb"));
                ensure(amb == 0, || format!("CapAmb {amb:x}, want none granted"))
            },
        ),
        case(
            "process.rlimits.soft-above-hard",
            RLIM,
            "For each entry in rlimits, a getrlimit(3) on type MUST succeed. … Runtimes MUST generate an error when invalid or unsupported values are encountered.",
            |env| {
                env.expect_error(|b| {
                    b.process()["rlimits"] =
                        json!([{ "type": "RLIMIT_NOFILE", "soft": 200, "hard": 100 }])
                })
            },
        ),
        case(
            "process.args-empty",
            PROC,
            "This specification extends the IEEE standard in that at least one entry is REQUIRED (non-Windows)",
            |env| env.expect_error(|b| b.process()["args"] = json!([])),
        ),
        case(
            "process.cwd-relative",
            PROC,
            "cwd (string, REQUIRED) is the working directory that will be set for the executable. This value MUST be an absolute path.",
            |env| env.expect_error(|b| b.process()["cwd"] = json!("tmp")),
        ),
        case(
            "mounts.rro",
            MOUNTS,
            "options (array of strings, OPTIONAL) Mount options of the filesystem to be used. (rro: recursive read-only)",
            |env| {
                let src = env.path("rro-src");
                let sub = src.join("sub");
                std::fs::create_dir_all(&sub).map_err(|e| Outcome::Fail(e.to_string()))?;
                let st = std::process::Command::new("mount")
                    .args(["-t", "tmpfs", "-o", "size=1m", "conformance-rro"])
                    .arg(&sub)
                    .status();
                ensure(st.is_ok_and(|s| s.success()), || {
                    "cannot mount a tmpfs on the host".into()
                })?;
                env.remember_mount(&sub);
                let srcs = src.display().to_string();
                let r = env.inspect(&["--write", "/rro/sub/x"], |b| b.mounts().push(json!({ "destination": "/rro", "type": "bind", "source": srcs, "options": ["rbind", "rro"] })))?;
                let e = errno_of(&r, "write", "/rro/sub/x")?;
                ensure(e == EROFS, || {
                    format!("write in a submount of an rro mount: errno {e}, want EROFS")
                })
            },
        ),
        case(
            "process.capabilities.unknown",
            CAPS,
            "Any value which cannot be mapped to a relevant kernel interface, or cannot be granted otherwise MUST be logged as a warning by the runtime. Runtimes SHOULD NOT fail if the container configuration requests capabilities that cannot be granted",
            |env| {
                // Runs, with the capabilities it can grant.
                let r = env.inspect(&[], |b| {
                    b.process()["capabilities"]["bounding"] =
                        json!(["CAP_KILL", "CAP_NO_SUCH_THING"])
                })?;
                let bnd = hex(status(&r, "CapBnd"));
                ensure(bnd == cap_mask(&["CAP_KILL"]), || {
                    format!("CapBnd {bnd:x}, want CAP_KILL alone")
                })
            },
        ),
        case(
            "process.rlimits.unknown-type",
            RLIM,
            "type (string, REQUIRED) the platform resource being limited … the runtime MUST generate an error for any values which cannot be mapped to a relevant kernel interface.",
            |env| {
                errorish(env, |b| {
                    b.process()["rlimits"] =
                        json!([{ "type": "RLIMIT_NO_SUCH", "soft": 1, "hard": 1 }])
                })
            },
        ),
        case(
            "process.noNewPrivileges-true",
            "config.md § Linux process: noNewPrivileges",
            "noNewPrivileges (bool, OPTIONAL) setting noNewPrivileges to true prevents the process from gaining additional privileges.",
            |env| {
                let r = env.inspect(&[], |b| b.process()["noNewPrivileges"] = json!(true))?;
                ensure(status(&r, "NoNewPrivs") == "1", || {
                    format!("NoNewPrivs {}", status(&r, "NoNewPrivs"))
                })
            },
        ),
        case(
            "process.noNewPrivileges-false",
            "config.md § Linux process: noNewPrivileges",
            "noNewPrivileges (bool, OPTIONAL) setting noNewPrivileges to true prevents the process from gaining additional privileges.",
            |env| {
                let r = env.inspect(&[], |b| b.process()["noNewPrivileges"] = json!(false))?;
                ensure(status(&r, "NoNewPrivs") == "0", || {
                    format!("NoNewPrivs {}", status(&r, "NoNewPrivs"))
                })
            },
        ),
        case(
            "process.oomScoreAdj",
            "config.md § Linux process: oomScoreAdj",
            "oomScoreAdj (int, OPTIONAL) adjusts the oom-killer score in [pid]/oom_score_adj for the process's [pid] in a proc pseudo-filesystem.",
            |env| {
                let r = env.inspect(&[], |b| b.process()["oomScoreAdj"] = json!(345))?;
                ensure(s(&r["oom_score_adj"]).trim() == "345", || {
                    format!("oom_score_adj {}", r["oom_score_adj"])
                })
            },
        ),
        case(
            "process.terminal",
            PROC,
            "terminal (bool, OPTIONAL) specifies whether a terminal is attached to the process, defaults to false.",
            terminal,
        ),
        case(
            "process.terminal-false",
            PROC,
            "terminal (bool, OPTIONAL) specifies whether a terminal is attached to the process, defaults to false.",
            |env| {
                let r = env.inspect(&[], |b| b.process()["terminal"] = json!(false))?;
                ensure(r["isatty"] == json!([false, false, false]), || {
                    format!("isatty {}", r["isatty"])
                })
            },
        ),
        case(
            "hostname",
            "config.md § Hostname",
            "hostname (string, OPTIONAL) specifies the container's hostname as seen by processes running inside the container.",
            |env| {
                let r = env.inspect(&[], |b| b.cfg["hostname"] = json!("conformance-host"))?;
                ensure(r["hostname"] == "conformance-host", || {
                    format!("hostname {}", r["hostname"])
                })
            },
        ),
        case(
            "domainname",
            "config.md § Domainname",
            "domainname (string, OPTIONAL) specifies the container's domainname as seen by processes running inside the container.",
            |env| {
                let r = env.inspect(&[], |b| b.cfg["domainname"] = json!("conformance.example"))?;
                ensure(r["domainname"] == "conformance.example", || {
                    format!("domainname {}", r["domainname"])
                })
            },
        ),
        case(
            "annotations.accepted",
            "config.md § Annotations",
            "Keys MUST be unique within this map … Values MUST be strings.",
            |env| {
                let (id, _) = super::sleeper(env, |b| {
                    b.cfg["annotations"] = json!({ "com.example.a": "1", "com.example.b": "" })
                })?;
                let st = env.state(&id)?;
                ensure(st["annotations"]["com.example.a"] == "1", || {
                    format!("annotations {}", st["annotations"])
                })
            },
        ),
        case(
            "valid.namespace-type",
            VALID,
            "Runtimes that are reading or processing this configuration file MUST generate an error when invalid or unsupported values are encountered.",
            |env| {
                errorish(env, |b| {
                    b.namespaces().push(json!({ "type": "no-such-namespace" }))
                })
            },
        ),
        case(
            "valid.seccomp-action",
            VALID,
            "Runtimes … MUST generate an error when invalid or unsupported values are encountered.",
            |env| {
                errorish(env, |b| {
                    b.linux()["seccomp"] = json!({ "defaultAction": "SCMP_ACT_NO_SUCH" })
                })
            },
        ),
        case(
            "valid.device-type",
            VALID,
            "Runtimes … MUST generate an error when invalid or unsupported values are encountered.",
            |env| {
                errorish(
                    env,
                    |b| {
                        b.linux()["devices"] =
                            json!([{ "path": "/dev/bad", "type": "x", "major": 1, "minor": 3 }])
                    },
                )
            },
        ),
        case(
            "valid.rootfsPropagation",
            VALID,
            "Runtimes … MUST generate an error when invalid or unsupported values are encountered.",
            |env| {
                errorish(env, |b| {
                    b.linux()["rootfsPropagation"] = json!("no-such-propagation")
                })
            },
        ),
    ];
    // One case per rlimit type: each lowers the limit below the host's hard limit.
    let limits: [(&str, u64, u64); 16] = [
        ("RLIMIT_CPU", 3000, 3600),
        ("RLIMIT_FSIZE", 1 << 30, 1 << 31),
        ("RLIMIT_DATA", 1 << 31, 1 << 32),
        ("RLIMIT_STACK", 4 << 20, 16 << 20),
        ("RLIMIT_CORE", 0, 1 << 20),
        ("RLIMIT_RSS", 1 << 30, 1 << 31),
        ("RLIMIT_NPROC", 20000, 30000),
        ("RLIMIT_NOFILE", 321, 654),
        ("RLIMIT_MEMLOCK", 32768, 65536),
        ("RLIMIT_AS", 1 << 33, 1 << 34),
        ("RLIMIT_LOCKS", 100, 200),
        ("RLIMIT_SIGPENDING", 500, 1000),
        ("RLIMIT_MSGQUEUE", 8192, 16384),
        ("RLIMIT_NICE", 0, 0),
        ("RLIMIT_RTPRIO", 0, 0),
        ("RLIMIT_RTTIME", 100000, 200000),
    ];
    v.extend(limits.iter().map(|(k, s, h)| rlimit_case(k, *s, *h)));
    v.extend([
        ignored_field("top-level", &[]),
        ignored_field("process", &["process"]),
        ignored_field("root", &["root"]),
        ignored_field("linux", &["linux"]),
        ignored_field("user", &["process", "user"]),
    ]);
    v
}

/// terminal: true with a console socket (the runtime sends the pty master over it with
/// SCM_RIGHTS); the checker writes its report to a bind-mounted file, since the pty rewrites
/// output, and reports whether its stdio is a terminal.
fn terminal(env: &mut Env) -> T<()> {
    use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::net::UnixListener;
    let sock = env.path("console.sock");
    let listener =
        UnixListener::bind(&sock).map_err(|e| Outcome::Fail(format!("console socket: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Outcome::Fail(e.to_string()))?;
    let outdir = env.path("tty-out");
    std::fs::create_dir_all(&outdir).map_err(|e| Outcome::Fail(e.to_string()))?;
    let mut b = env.bundle(&["--out", "/out/report.json", "--stat", "/dev/console"])?;
    b.process()["terminal"] = json!(true);
    let od = outdir.display().to_string();
    b.mounts()
        .push(json!({ "destination": "/out", "type": "bind", "source": od, "options": ["rbind"] }));
    b.write()?;
    let id = env.id();
    let bundle = b.dir.display().to_string();
    let sock_s = sock.display().to_string();
    let out = env.path("tty-create.out");
    let err = env.path("tty-create.err");
    let o = env.rt_to(
        &[
            "create",
            "--bundle",
            &bundle,
            "--console-socket",
            &sock_s,
            &id,
        ],
        &out,
        &err,
    );
    ensure(o.ok(), || {
        format!("create with a console socket: {}", o.describe())
    })?;
    let (conn, _) = listener.accept().map_err(|e| {
        Outcome::Fail(format!(
            "the runtime never connected to the console socket: {e}"
        ))
    })?;
    let master = recv_fd(conn.as_raw_fd())
        .ok_or_else(|| Outcome::Fail("no pty fd received on the console socket".into()))?;
    // SAFETY: recv_fd returned a fresh descriptor that we now own.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    env.start(&id)?;
    env.wait_status(&id, "stopped")?;
    drop(master);
    let text = std::fs::read_to_string(outdir.join("report.json"))
        .map_err(|e| Outcome::Fail(format!("no report: {e}")))?;
    let r: Value = serde_json::from_str(&text).map_err(|e| Outcome::Fail(e.to_string()))?;
    ensure(r["isatty"] == json!([true, true, true]), || {
        format!("isatty {}", r["isatty"])
    })?;
    let c = &r["stat"]["/dev/console"];
    // "/dev/console is set up if terminal is enabled … by bind mounting the pseudoterminal pty"
    ensure(c["type"] == "c" && c["major"] == 136, || {
        format!("/dev/console {c}, want the pty (136:N)")
    })
}

fn recv_fd(sock: i32) -> Option<i32> {
    let mut buf = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cmsg = [0u64; 64];
    // SAFETY: msghdr is plain old data; every pointer set below outlives recvmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    // SAFETY: the socket is blocking by default for accepted connections; msg is valid.
    let n = unsafe { libc::recvmsg(sock, &mut msg, 0) };
    if n < 0 {
        return None;
    }
    // SAFETY: walking the control messages recvmsg filled in.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    None
}
