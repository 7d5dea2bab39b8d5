//! The in-container checker: a static program the conformance driver copies into each bundle's
//! rootfs as `/checker`. It reports what the process sees (ids, capabilities, limits, mounts,
//! namespaces, …) as one JSON object, so the driver can assert on it without trusting any
//! shell or tool inside the container.
//!
//! Arguments (any number, in any order):
//!   --stat P      lstat P: type, mode, uid, gid, rdev major/minor
//!   --read P      P's content (or the errno of opening it)
//!   --write P     try to create/open P for writing; report ok or the errno
//!   --open P      try to open P read-write without creating it; ok or errno
//!   --syscall S   call S (getcwd, getpid, uname, personality:HEX) raw; report ret/errno
//!   --ls D        the names in directory D
//!   --out F       write the JSON to F instead of stdout (for a terminal, whose output is
//!                 rewritten by the line discipline)
//!   --only-syscall S  call S and exit 0 without printing anything (for seccomp kill cases)

use serde_json::{Map, Value, json};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn io_err(e: &std::io::Error) -> Value {
    json!({ "errno": e.raw_os_error().unwrap_or(0), "error": e.to_string() })
}

/// One raw syscall by short name; raw so the C library cannot hide or retry what seccomp did.
fn syscall(spec: &str) -> Value {
    let (name, arg) = match spec.split_once(':') {
        Some((n, a)) => (n, u64::from_str_radix(a.trim_start_matches("0x"), 16).ok()),
        None => (spec, None),
    };
    let mut buf = [0u8; 4096];
    // SAFETY: each call gets valid arguments for its kernel signature; buffers outlive the call.
    let ret = unsafe {
        match name {
            "getcwd" => libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()),
            "getpid" => libc::syscall(libc::SYS_getpid),
            "uname" => libc::syscall(libc::SYS_uname, buf.as_mut_ptr()),
            "personality" => libc::syscall(libc::SYS_personality, arg.unwrap_or(0xffff_ffff)),
            _ => return json!({ "error": format!("unknown syscall {name}") }),
        }
    };
    if ret < 0 {
        json!({ "ret": ret, "errno": errno() })
    } else {
        json!({ "ret": ret, "errno": 0 })
    }
}

fn stat(path: &str) -> Value {
    match fs::symlink_metadata(path) {
        Err(e) => io_err(&e),
        Ok(m) => {
            let ft = m.file_type();
            let kind = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else if ft.is_fifo() {
                "p"
            } else if ft.is_symlink() {
                "l"
            } else if ft.is_dir() {
                "d"
            } else if ft.is_socket() {
                "s"
            } else {
                "f"
            };
            let rdev = m.rdev();
            json!({
                "type": kind,
                "mode": m.mode() & 0o7777,
                "uid": m.uid(),
                "gid": m.gid(),
                "major": libc::major(rdev),
                "minor": libc::minor(rdev),
                "target": fs::read_link(path).ok().map(|p| p.display().to_string()),
            })
        }
    }
}

fn try_write(path: &str) -> Value {
    match fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Ok(_) => json!({ "ok": true }),
        Err(e) => io_err(&e),
    }
}

fn try_open(path: &str) -> Value {
    match fs::OpenOptions::new().read(true).write(true).open(path) {
        Ok(_) => json!({ "ok": true }),
        Err(e) => io_err(&e),
    }
}

fn read(path: &str) -> Value {
    match fs::read(path) {
        Ok(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
        Err(e) => io_err(&e),
    }
}

fn lines(path: &str) -> Value {
    match fs::read_to_string(path) {
        Ok(s) => Value::Array(s.lines().map(|l| Value::String(l.to_owned())).collect()),
        Err(e) => io_err(&e),
    }
}

fn rlimits() -> Value {
    let kinds: [(&str, libc::__rlimit_resource_t); 16] = [
        ("RLIMIT_CPU", libc::RLIMIT_CPU),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
        ("RLIMIT_STACK", libc::RLIMIT_STACK),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_RSS", libc::RLIMIT_RSS),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ];
    let mut out = Map::new();
    for (name, res) in kinds {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: rl is a valid out-pointer.
        if unsafe { libc::getrlimit(res, &mut rl) } == 0 {
            out.insert(name.into(), json!([rl.rlim_cur, rl.rlim_max]));
        }
    }
    Value::Object(out)
}

fn status() -> Value {
    let mut out = Map::new();
    if let Ok(s) = fs::read_to_string("/proc/self/status") {
        for l in s.lines() {
            if let Some((k, v)) = l.split_once(':') {
                out.insert(k.to_owned(), Value::String(v.trim().to_owned()));
            }
        }
    }
    Value::Object(out)
}

fn namespaces() -> Value {
    let mut out = Map::new();
    for ns in [
        "pid",
        "net",
        "ipc",
        "uts",
        "mnt",
        "user",
        "cgroup",
        "time",
        "pid_for_children",
    ] {
        if let Ok(t) = fs::read_link(format!("/proc/self/ns/{ns}")) {
            out.insert(ns.into(), Value::String(t.display().to_string()));
        }
    }
    Value::Object(out)
}

fn utsname() -> (String, String) {
    // SAFETY: utsname is plain old data, filled by uname(2).
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid out-pointer.
    if unsafe { libc::uname(&mut u) } != 0 {
        return (String::new(), String::new());
    }
    let s = |a: &[libc::c_char]| {
        let b: Vec<u8> = a
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (s(&u.nodename), s(&u.domainname))
}

fn groups() -> Value {
    let mut g = [0 as libc::gid_t; 256];
    // SAFETY: g has room for 256 entries, as told.
    let n = unsafe { libc::getgroups(g.len() as i32, g.as_mut_ptr()) };
    Value::Array(g.iter().take(n.max(0) as usize).map(|x| json!(x)).collect())
}

fn affinity() -> Value {
    // SAFETY: cpu_set_t is plain old data.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid out-pointer of the size given.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0
    {
        return Value::Null;
    }
    let cpus: Vec<Value> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: i is below CPU_SETSIZE.
        .filter(|i| unsafe { libc::CPU_ISSET(*i, &set) })
        .map(|i| json!(i))
        .collect();
    Value::Array(cpus)
}

fn mempolicy() -> Value {
    let mut mode: libc::c_int = -1;
    let mut mask = [0u64; 16];
    // SAFETY: get_mempolicy(mode*, nodemask*, maxnode, addr, flags) with buffers of the size given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut libc::c_int,
            mask.as_mut_ptr(),
            (mask.len() * 64) as u64,
            0usize,
            0u64,
        )
    };
    if r != 0 {
        return json!({ "errno": errno() });
    }
    json!({ "mode": mode, "nodes": mask[0] })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut out = Map::new();
    let (mut stats, mut reads, mut writes, mut opens, mut calls, mut lss) = (
        Map::new(),
        Map::new(),
        Map::new(),
        Map::new(),
        Map::new(),
        Map::new(),
    );
    let mut out_file: Option<String> = None;
    let mut i = 1;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--stat" => drop(stats.insert(val.clone(), stat(&val))),
            "--read" => drop(reads.insert(val.clone(), read(&val))),
            "--write" => drop(writes.insert(val.clone(), try_write(&val))),
            "--open" => drop(opens.insert(val.clone(), try_open(&val))),
            "--syscall" => drop(calls.insert(val.clone(), syscall(&val))),
            "--ls" => {
                let names = fs::read_dir(&val).map(|d| {
                    let mut v: Vec<String> = d
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    v.sort();
                    v
                });
                lss.insert(
                    val.clone(),
                    names.map(|v| json!(v)).unwrap_or_else(|e| io_err(&e)),
                );
            }
            "--out" => out_file = Some(val.clone()),
            "--only-syscall" => {
                syscall(&val);
                return;
            }
            other => {
                eprintln!("checker: unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let (host, domain) = utsname();
    // SAFETY: these getters cannot fail.
    let (uid, gid, euid, egid, pid, ppid) = unsafe {
        (
            libc::getuid(),
            libc::getgid(),
            libc::geteuid(),
            libc::getegid(),
            libc::getpid(),
            libc::getppid(),
        )
    };
    // SAFETY: 0xffffffff only queries the persona.
    let persona = unsafe { libc::personality(0xffff_ffff) };
    // SAFETY: plain getters on the calling process.
    let (ioprio, sched) = unsafe {
        (
            libc::syscall(libc::SYS_ioprio_get, 1, 0),
            libc::sched_getscheduler(0),
        )
    };
    out.insert("args".into(), json!(args));
    out.insert(
        "env".into(),
        json!(
            std::env::vars_os()
                .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
                .collect::<Vec<_>>()
        ),
    );
    out.insert(
        "cwd".into(),
        json!(
            std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
    );
    out.insert("uid".into(), json!(uid));
    out.insert("gid".into(), json!(gid));
    out.insert("euid".into(), json!(euid));
    out.insert("egid".into(), json!(egid));
    out.insert("groups".into(), groups());
    out.insert("pid".into(), json!(pid));
    out.insert("ppid".into(), json!(ppid));
    out.insert("hostname".into(), json!(host));
    out.insert("domainname".into(), json!(domain));
    out.insert("personality".into(), json!(persona));
    out.insert("ioprio".into(), json!(ioprio));
    out.insert("sched_policy".into(), json!(sched));
    out.insert("affinity".into(), affinity());
    out.insert("mempolicy".into(), mempolicy());
    out.insert("status".into(), status());
    out.insert("rlimits".into(), rlimits());
    out.insert("ns".into(), namespaces());
    out.insert("mountinfo".into(), lines("/proc/self/mountinfo"));
    out.insert("cgroup".into(), lines("/proc/self/cgroup"));
    out.insert("uid_map".into(), read("/proc/self/uid_map"));
    out.insert("gid_map".into(), read("/proc/self/gid_map"));
    out.insert("oom_score_adj".into(), read("/proc/self/oom_score_adj"));
    // SAFETY: isatty only inspects the descriptor.
    out.insert(
        "isatty".into(),
        json!([0, 1, 2].map(|fd| unsafe { libc::isatty(fd) } == 1)),
    );
    out.insert("stat".into(), Value::Object(stats));
    out.insert("read".into(), Value::Object(reads));
    out.insert("write".into(), Value::Object(writes));
    out.insert("open".into(), Value::Object(opens));
    out.insert("syscall".into(), Value::Object(calls));
    out.insert("ls".into(), Value::Object(lss));
    let text = Value::Object(out).to_string();
    match out_file {
        Some(f) => {
            let tmp = format!("{f}.tmp");
            // Written then renamed, so the driver never reads half a report.
            let ok = fs::write(&tmp, &text).and_then(|()| fs::rename(&tmp, &f));
            if let Err(e) = ok {
                eprintln!("checker: writing {f}: {e}");
                std::process::exit(1);
            }
        }
        None => {
            let mut so = std::io::stdout().lock();
            if so
                .write_all(text.as_bytes())
                .and_then(|()| so.write_all(b"\n"))
                .is_err()
            {
                std::process::exit(1);
            }
        }
    }
}
