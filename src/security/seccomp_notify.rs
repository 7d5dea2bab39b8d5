//! Loading compiled filters: seccomp(2) flags as this kernel supports them, the
//! SECCOMP_FILTER_FLAG_NEW_LISTENER fd of the NOTIFY filter, a load order that works, and a
//! BPF evaluator; plus the tests that check what compiled filters do, by evaluation and by
//! loading them into forked children (as root), NOTIFY included.
//!
//! Each filter after the first is loaded through seccomp(2), which the filters already in may
//! deny (an allow-list without `seccomp` does). The programs are run here on the very calls
//! that will load them, and the order chosen so that each call gets through.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use oci_spec::runtime::LinuxSeccompFilterFlag as Flag;

use super::{AND_K, AUDIT_ARCH_X86_64, Compiled, Filter, JA, JEQ_K, JGE_K, JGT_K, LD_W_ABS};
use super::{RET_ACTION_FULL, RET_ALLOW, RET_K, RET_LOG, SeccompError, sock_filter};

/// The kernel checks flags before it reads the program, so with a null program EINVAL means
/// unknown flags (and EFAULT known ones; other errors are left for the real load to report).
fn kernel_accepts(flags: libc::c_ulong) -> bool {
    let null = std::ptr::null::<libc::sock_fprog>();
    // SAFETY: the kernel fails on the null program before anything is installed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            null,
        )
    };
    ret >= 0 || Errno::last() != Errno::EINVAL
}

pub(super) fn install(c: &Compiled) -> Result<Option<OwnedFd>, SeccompError> {
    let (mut common, mut listener) = (0, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER);
    for flag in &c.flags {
        let bits = match flag {
            Flag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            Flag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => {
                // Only valid together with NEW_LISTENER, so only the NOTIFY filter gets it.
                listener |= libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
                if !kernel_accepts(listener) {
                    return Err(SeccompError::Flag(flag.to_string()));
                }
                continue;
            }
        };
        if !kernel_accepts(bits) {
            return Err(SeccompError::Flag(flag.to_string()));
        }
        common |= bits;
    }
    if c.has_notify() && common & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
        // TSYNC reports a failing thread by returning its id, which a listener fd would shadow.
        listener |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        if !kernel_accepts(common | listener) {
            let flag = "SECCOMP_FILTER_FLAG_TSYNC together with SCMP_ACT_NOTIFY";
            return Err(SeccompError::Flag(flag.into()));
        }
    }

    let mut progs: Vec<(Vec<libc::sock_filter>, libc::c_ulong)> = (c.filters.iter())
        .map(|f| {
            let prog = f.prog.iter().map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            });
            (
                prog.collect(),
                if f.notify { common | listener } else { common },
            )
        })
        .collect();
    let fprogs: Vec<libc::sock_fprog> = (progs.iter_mut())
        .map(|(p, _)| libc::sock_fprog {
            len: p.len() as u16,
            filter: p.as_mut_ptr(),
        })
        .collect();
    let calls: Vec<[u64; 6]> = (fprogs.iter().zip(&progs))
        .map(|(fp, (_, flags))| {
            let ptr = fp as *const libc::sock_fprog as u64;
            [libc::SECCOMP_SET_MODE_FILTER.into(), *flags, ptr, 0, 0, 0]
        })
        .collect();
    let order = load_order(&c.filters, &calls)?;

    // Until the last filter is in, only failures allocate: the filters may deny mmap or brk.
    let mut listener_fd = None;
    for i in order {
        let fprog: *const libc::sock_fprog = &fprogs[i];
        // SAFETY: fprogs[i] points into progs[i], both alive and unmoved until we return.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                progs[i].1,
                fprog,
            )
        };
        let filter = &c.filters[i];
        let fail = |reason: String| SeccompError::Load {
            filter: filter.label.clone(),
            reason,
        };
        if ret < 0 {
            return Err(fail(Errno::last().to_string()));
        } else if filter.notify {
            // SAFETY: with NEW_LISTENER, success returns a new fd that nothing else owns.
            listener_fd = Some(unsafe { OwnedFd::from_raw_fd(ret as i32) });
        } else if ret > 0 {
            return Err(fail(format!("TSYNC could not synchronize thread {ret}")));
        }
    }
    Ok(listener_fd)
}

/// An order in which each filter's load call is let through by the filters loaded before it,
/// chosen from the back: any filter whose call all the others let through can go last.
fn load_order(filters: &[Filter], calls: &[[u64; 6]]) -> Result<Vec<usize>, SeccompError> {
    let lets_through = |f: &Filter, call: &[u64; 6]| {
        let data = seccomp_data(AUDIT_ARCH_X86_64, libc::SYS_seccomp as u32, *call);
        // LOG still runs the call; TRACE without a tracer and USER_NOTIF would not.
        run(&f.prog, &data).is_some_and(|r| [RET_ALLOW, RET_LOG].contains(&(r & RET_ACTION_FULL)))
    };
    let mut left: Vec<usize> = (0..filters.len()).collect();
    let mut order = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let last = (0..left.len()).rev().find(|&p| {
            left.iter()
                .all(|&o| o == left[p] || lets_through(&filters[o], &calls[left[p]]))
        });
        let Some(p) = last else {
            let names: Vec<_> = left.iter().map(|&i| filters[i].label.as_str()).collect();
            return Err(SeccompError::Load {
                filter: names.join(", "),
                reason: "each denies the seccomp(2) call loading another one; \
                         allow seccomp(SECCOMP_SET_MODE_FILTER) in the profile"
                    .into(),
            });
        };
        order.push(left.remove(p));
    }
    order.reverse();
    Ok(order)
}

/// Runs a program on a seccomp_data given as 16 native-endian words, as the kernel would.
fn run(prog: &[sock_filter], data: &[u32; 16]) -> Option<u32> {
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = prog.get(pc)?;
        pc += 1;
        match i.code {
            LD_W_ABS => a = *data.get(i.k as usize / 4)?,
            AND_K => a &= i.k,
            JA => pc += i.k as usize,
            JEQ_K | JGT_K | JGE_K => {
                let taken = match i.code {
                    JEQ_K => a == i.k,
                    JGT_K => a > i.k,
                    _ => a >= i.k,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            RET_K => return Some(i.k),
            _ => return None,
        }
    }
}

fn seccomp_data(arch: u32, nr: u32, args: [u64; 6]) -> [u32; 16] {
    let mut d = [0u32; 16];
    (d[0], d[1]) = (nr, arch);
    for (i, a) in args.iter().enumerate() {
        (d[4 + 2 * i], d[5 + 2 * i]) = (*a as u32, (*a >> 32) as u32);
    }
    d
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::*;
    use super::*;
    use nix::sys::signal::Signal;
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    use serde_json::{Value, json};
    use std::io::Read;
    use std::os::fd::AsRawFd;

    const PODMAN: &str = "/usr/share/containers/seccomp.json";
    pub(in super::super) const ALLOWED: u32 = RET_ALLOW;
    pub(in super::super) const EPERM: u32 = 0x0005_0001;

    fn compiled(v: Value) -> Compiled {
        compile(&serde_json::from_value(v).unwrap()).unwrap().0
    }

    /// The stack's verdict on one call, by the kernel's rule: the lowest signed action wins.
    fn verdict_of(c: &Compiled, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let data = seccomp_data(arch, nr, args);
        let rets = c.filters.iter().map(|f| run(&f.prog, &data).unwrap());
        rets.min_by_key(|r| (r & RET_ACTION_FULL) as i32).unwrap()
    }

    pub(in super::super) fn x64(c: &Compiled, name: &str, args: [u64; 6]) -> u32 {
        verdict_of(c, AUDIT_ARCH_X86_64, Tables::new().0[0][name], args)
    }

    /// Podman's profile as podman hands it to a runtime on x86_64 with its default capabilities.
    fn podman() -> Option<Value> {
        let Ok(text) = std::fs::read_to_string(PODMAN) else {
            eprintln!("skipped: no {PODMAN} (apt-get install golang-github-containers-common)");
            return None;
        };
        let caps = "CHOWN DAC_OVERRIDE FOWNER FSETID KILL NET_BIND_SERVICE SETFCAP SETGID SETPCAP \
                    SETUID SYS_CHROOT";
        let caps: Vec<String> = caps.split(' ').map(|c| format!("CAP_{c}")).collect();
        let any = |v: &Value, pred: &dyn Fn(&str) -> bool| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|x| pred(x.as_str().unwrap())))
        };
        let mut v: Value = serde_json::from_str(&text).unwrap();
        let keep = |s: &&Value| {
            let (inc, exc) = (&s["includes"], &s["excludes"]);
            (inc["arches"].is_null() || any(&inc["arches"], &|a| a == "amd64"))
                && !any(&exc["arches"], &|a| a == "amd64")
                && !any(&inc["caps"], &|c| !caps.iter().any(|k| k == c))
                && !any(&exc["caps"], &|c| caps.iter().any(|k| k == c))
        };
        v["syscalls"] = v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(keep)
            .cloned()
            .collect();
        v["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
        Some(v)
    }

    #[test]
    fn architectures_pick_the_abis_filtered() {
        let s = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]});
        let (c, w) = compile(&serde_json::from_value(s).unwrap()).unwrap();
        assert!(w[0].contains("SCMP_ARCH_AARCH64 skipped"), "{w:?}");
        let v = |c: &Compiled, arch, nr| verdict_of(c, arch, nr, [0; 6]);
        assert_eq!(v(&c, AUDIT_ARCH_X86_64, 39), ALLOWED);
        assert_eq!(
            v(&c, AUDIT_ARCH_I386, 20),
            RET_KILL_PROCESS,
            "X86 not listed"
        );
        assert_eq!(
            v(&c, AUDIT_ARCH_X86_64, 39 | X32_BIT),
            RET_KILL_PROCESS,
            "X32 not listed"
        );
        assert_eq!(v(&c, 0xc000_00b7, 172), RET_KILL_PROCESS, "aarch64");

        let c = compiled(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["getpid", "rt_sigaction"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0xffff_ffff_u64, "op": "SCMP_CMP_EQ"}]}]}),
        );
        assert_eq!(v(&c, AUDIT_ARCH_I386, 20), ALLOWED, "i386 getpid");
        assert_eq!(v(&c, AUDIT_ARCH_I386, 64), 0x0005_0026, "i386 getppid");
        assert_eq!(
            v(&c, AUDIT_ARCH_X86_64, 39 | X32_BIT),
            ALLOWED,
            "x32 getpid"
        );
        assert_eq!(
            v(&c, AUDIT_ARCH_X86_64, 512 | X32_BIT),
            ALLOWED,
            "x32 rt_sigaction"
        );
        assert_eq!(
            v(&c, AUDIT_ARCH_X86_64, 13 | X32_BIT),
            0x0005_0026,
            "x86_64-only number"
        );
        // 32-bit ABIs compare the low half only; x86_64 compares all 64 bits.
        let upper = [0x1_ffff_ffff, 0, 0, 0, 0, 0];
        assert_eq!(x64(&c, "personality", upper), 0x0005_0026);
        assert_eq!(verdict_of(&c, AUDIT_ARCH_I386, 136, upper), ALLOWED);
    }

    #[test]
    fn rules_combine_by_precedence() {
        let c = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [
                {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 0xff00, "valueTwo": 0x5400, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}, {"names": ["gettid"], "action": "SCMP_ACT_LOG"},
            {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS"}, {"names": ["kill"], "action": "SCMP_ACT_ALLOW"}]}));
        assert!(c.has_notify());
        assert_eq!(x64(&c, "socket", [2, 1, 0, 0, 0, 0]), ALLOWED);
        assert_eq!(x64(&c, "socket", [16, 3, 9, 0, 0, 0]), 0x0005_0016);
        assert_eq!(
            x64(&c, "socket", [16, 3, 0, 0, 0, 0]),
            EPERM,
            "no rule holds: the default"
        );
        assert_eq!(x64(&c, "ioctl", [1, 0x5401, 0, 0, 0, 0]), ALLOWED);
        assert_eq!(x64(&c, "ioctl", [1, 0x8901, 0, 0, 0, 0]), EPERM);
        assert_eq!(x64(&c, "getppid", [0; 6]), RET_USER_NOTIF);
        assert_eq!(x64(&c, "gettid", [0; 6]), RET_LOG);
        assert_eq!(x64(&c, "kill", [0; 6]), RET_KILL_PROCESS);
        assert_eq!(x64(&c, "getpid", [0; 6]), EPERM);
    }

    #[test]
    fn podman_profile_compiles() {
        let Some(converted) = podman() else { return };
        let raw: LinuxSeccomp =
            serde_json::from_str(&std::fs::read_to_string(PODMAN).unwrap()).unwrap();
        let (_, warnings) = compile(&raw).unwrap();
        assert!(
            warnings.iter().any(|w| w.contains("\"arm_fadvise64_64\"")),
            "{warnings:?}"
        );
        let c = compiled(converted);
        assert_eq!(x64(&c, "getpid", [0; 6]), ALLOWED);
        assert_eq!(x64(&c, "add_key", [0; 6]), 0x0005_0026);
        assert_eq!(x64(&c, "kexec_load", [0; 6]), EPERM);
        assert_eq!(x64(&c, "socket", [16, 3, 9, 0, 0, 0]), 0x0005_0016);
        assert_eq!(verdict_of(&c, AUDIT_ARCH_I386, 20, [0; 6]), ALLOWED);
        assert_eq!(
            verdict_of(&c, AUDIT_ARCH_X86_64, 39 | X32_BIT, [0; 6]),
            ALLOWED
        );
        assert_eq!(verdict_of(&c, 0xc000_00b7, 172, [0; 6]), RET_KILL_PROCESS);
    }

    // Root: a forked child loads the filters; its syscalls' results come back through a pipe.

    fn root() -> bool {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            eprintln!("skipped: loading filters into forked children needs root");
        }
        root
    }

    fn sys(nr: libc::c_long, a: u64, b: u64, c: u64) -> i64 {
        // SAFETY: integer arguments, or pointers to live NUL-terminated strings.
        let r = unsafe { libc::syscall(nr, a, b, c) };
        if r < 0 {
            -(nix::errno::Errno::last() as i64)
        } else {
            r
        }
    }

    /// An i386 syscall from this 64-bit process.
    fn int80(nr: u32) -> i64 {
        let ret: i32;
        // SAFETY: int 0x80 with no arguments; r8-r11 are declared clobbered to be safe.
        unsafe {
            std::arch::asm!("int 0x80", inlateout("eax") nr => ret,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _, options(nostack));
        }
        ret.into()
    }

    fn exited(s: WaitStatus) -> bool {
        matches!(s, WaitStatus::Exited(_, 0))
    }

    fn sigsys(s: WaitStatus) -> bool {
        matches!(s, WaitStatus::Signaled(_, Signal::SIGSYS, _))
    }

    /// Only write(2) and exit_group(2) are needed after the load: results go out raw.
    fn in_child(c: Option<&Compiled>, f: impl FnOnce() -> [i64; 4]) -> (WaitStatus, Vec<i64>) {
        let (r, w) = nix::unistd::pipe().unwrap();
        // SAFETY: the child loads the filter, makes raw syscalls and _exits.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                if let Some(Err(e)) = c.map(load) {
                    eprintln!("load: {e}");
                    unsafe { libc::_exit(3) };
                }
                let out = f();
                unsafe { libc::write(w.as_raw_fd(), out.as_ptr().cast(), 32) };
                unsafe { libc::_exit(0) };
            }
            ForkResult::Parent { child } => {
                drop(w);
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut buf).unwrap();
                let vals = buf
                    .chunks(8)
                    .map(|b| i64::from_ne_bytes(b.try_into().unwrap()));
                (waitpid(child, None).unwrap(), vals.collect())
            }
        }
    }

    const BASICS: [&str; 2] = ["write", "exit_group"];
    const DIR: &std::ffi::CStr = c"/nonexistent-berth-test/dir";

    #[test]
    fn root_errno_default_and_rules() {
        if !root() {
            return;
        }
        let c = compiled(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [{"names": BASICS, "action": "SCMP_ACT_ALLOW"}, {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}),
        );
        let dir = DIR.as_ptr() as u64;
        let (s, v) = in_child(Some(&c), || {
            [
                sys(libc::SYS_getpid, 0, 0, 0),
                sys(libc::SYS_mkdir, dir, 0o700, 0),
                0,
                0,
            ]
        });
        assert!(exited(s) && v[0] > 0 && v[1] == -38, "{s:?} {v:?}");

        let c = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["getppid"], "action": "SCMP_ACT_LOG"}]}));
        let (s, v) = in_child(Some(&c), || {
            let p = sys(libc::SYS_getppid, 0, 0, 0);
            [
                sys(libc::SYS_mkdir, dir, 0o700, 0),
                sys(libc::SYS_rmdir, dir, 0, 0),
                p,
                0,
            ]
        });
        assert!(
            exited(s) && v[..3] == [-1, -13, std::process::id().into()],
            "{s:?} {v:?}"
        );
    }

    #[test]
    fn root_argument_conditions() {
        if !root() {
            return;
        }
        let p = libc::SYS_personality;
        let c = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": BASICS, "action": "SCMP_ACT_ALLOW"}, {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0xffff_ffff_u64, "op": "SCMP_CMP_EQ"}]}]}));
        let (s, v) = in_child(Some(&c), || {
            [sys(p, 0xffff_ffff, 0, 0), sys(p, 8, 0, 0), 0, 0]
        });
        assert!(exited(s) && v[0] >= 0 && v[1] == -1, "{s:?} {v:?}");

        let c = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [{"index": 0, "value": 0xff, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]}]}));
        let (s, v) = in_child(Some(&c), || {
            [
                sys(p, 0xffff_ffff, 0, 0),
                sys(p, 8, 0, 0),
                sys(p, 0x0100_0008, 0, 0),
                0,
            ]
        });
        assert!(
            exited(s) && v[0] >= 0 && v[1..3] == [-22, -22],
            "{s:?} {v:?}"
        );
    }

    #[test]
    fn root_kill_and_trap_raise_sigsys() {
        if !root() {
            return;
        }
        for action in [
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_TRAP",
        ] {
            let c = compiled(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": action}]}),
            );
            let (s, _) = in_child(Some(&c), || [sys(libc::SYS_getppid, 0, 0, 0), 0, 0, 0]);
            assert!(sigsys(s), "{action}: {s:?}");
        }
    }

    #[test]
    fn root_x32_and_i386() {
        if !root() {
            return;
        }
        let x32 = |nr: i64| sys(nr | X32_BIT as i64, 0, 0, 0);
        let only64 = compiled(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}),
        );
        let (s, _) = in_child(Some(&only64), || [x32(39), 0, 0, 0]);
        assert!(sigsys(s), "x32 not listed: {s:?}");
        let all = compiled(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": [
                {"names": BASICS, "action": "SCMP_ACT_ALLOW"}, {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}),
        );
        // This kernel may lack x32 (ENOSYS) but seccomp judges the call first.
        let (s, v) = in_child(Some(&all), || [x32(110), x32(39), 0, 0]);
        assert!(
            exited(s) && v[0] == -13 && v[1] != -1,
            "x32 listed: {s:?} {v:?}"
        );

        let (s, v) = in_child(None, || [int80(20), 0, 0, 0]);
        if !exited(s) || v[0] <= 0 {
            eprintln!("skipped the i386 half: int 0x80 does not work here ({s:?} {v:?})");
            return;
        }
        let (s, _) = in_child(Some(&only64), || [int80(20), 0, 0, 0]);
        assert!(sigsys(s), "i386 not listed: {s:?}");
        let (s, v) = in_child(Some(&all), || {
            [
                int80(20),
                int80(64),
                int80(39),
                sys(libc::SYS_getppid, 0, 0, 0),
            ]
        });
        assert!(
            exited(s) && v[0] > 0 && v[1..] == [-13, -1, -13],
            "i386 listed: {s:?} {v:?}"
        );
    }

    #[test]
    fn root_podman_profile_loads() {
        if !root() {
            return;
        }
        let Some(p) = podman() else { return };
        let c = compiled(p);
        let (s, v) = in_child(Some(&c), || {
            let null = c"/dev/null".as_ptr() as u64;
            let fd = sys(
                libc::SYS_openat,
                libc::AT_FDCWD as u64,
                null,
                libc::O_RDONLY as u64,
            );
            let netlink_audit = sys(libc::SYS_socket, 16, 3, 9);
            [
                fd,
                sys(libc::SYS_add_key, 0, 0, 0),
                sys(libc::SYS_kexec_load, 0, 0, 0),
                netlink_audit,
            ]
        });
        assert!(
            exited(s) && v[0] >= 0 && v[1..] == [-38, -1, -22],
            "{s:?} {v:?}"
        );
        // As stored, with every capability-conditional rule in: chroot is then denied.
        let raw: Value = serde_json::from_str(&std::fs::read_to_string(PODMAN).unwrap()).unwrap();
        let c = compiled(raw);
        let (s, v) = in_child(Some(&c), || {
            let root = c"/".as_ptr() as u64;
            [
                sys(libc::SYS_getpid, 0, 0, 0),
                sys(libc::SYS_chroot, root, 0, 0),
                0,
                0,
            ]
        });
        assert!(exited(s) && v[0] > 0 && v[1] == -1, "{s:?} {v:?}");
    }

    #[test]
    fn load_order_gets_every_filter_in() {
        // The default filter denies seccomp(2), so it must go in last.
        let c = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}));
        let labels: Vec<_> = c.filters.iter().map(|f| f.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "default (x86_64)",
                "SCMP_ACT_ERRNO(13) (x86_64)",
                "SCMP_ACT_NOTIFY"
            ]
        );
        assert_eq!(
            load_order(&c.filters, &[[1, 0, 0, 0, 0, 0]; 3]).unwrap(),
            [1, 2, 0]
        );
        // Two filters that each deny the other's load cannot both go in.
        let c = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["seccomp"], "action": "SCMP_ACT_TRAP"}]}));
        assert!(load_order(&c.filters, &[[1, 0, 0, 0, 0, 0]; 2]).is_err());
    }

    /// Stands in for the seccomp agent: takes the child's listener with pidfd_getfd(2) and
    /// answers one notification with 4242.
    fn agent(pid: i32, fd: i32) {
        let pidfd = sys(libc::SYS_pidfd_open, pid as u64, 0, 0);
        let listener = sys(libc::SYS_pidfd_getfd, pidfd as u64, fd as u64, 0) as i32;
        assert!(
            pidfd >= 0 && listener >= 0,
            "pidfd {pidfd} listener {listener}"
        );
        // SAFETY: plain-data structs, zeroed as NOTIF_RECV requires, owned by this frame.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        let ret = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
        assert_eq!((ret, i64::from(req.data.nr)), (0, libc::SYS_getppid));
        let resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 4242,
            error: 0,
            flags: 0,
        };
        assert_eq!(
            unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) },
            0
        );
        unsafe { libc::close(listener) };
        unsafe { libc::close(pidfd as i32) };
    }

    #[test]
    fn root_notify_is_answered_through_the_listener() {
        if !root() {
            return;
        }
        let c = compiled(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        let (r, w) = nix::unistd::pipe().unwrap();
        // SAFETY: the child loads the filter, makes raw syscalls and _exits.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                drop(r);
                let Ok(Some(fd)) = load(&c) else {
                    unsafe { libc::_exit(3) }
                };
                let me = [std::process::id() as i64, fd.as_raw_fd().into()];
                unsafe { libc::write(w.as_raw_fd(), me.as_ptr().cast(), 16) };
                let got = sys(libc::SYS_getppid, 0, 0, 0);
                unsafe { libc::write(w.as_raw_fd(), (&got as *const i64).cast(), 8) };
                unsafe { libc::_exit(0) };
            }
            ForkResult::Parent { child } => {
                drop(w);
                let mut pipe = std::fs::File::from(r);
                let mut buf = [0u8; 16];
                pipe.read_exact(&mut buf).unwrap();
                let word = |b: &[u8; 16], i: usize| {
                    i64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().unwrap())
                };
                let (pid, fd) = (word(&buf, 0) as i32, word(&buf, 1) as i32);
                if let Err(e) = std::panic::catch_unwind(|| agent(pid, fd)) {
                    // Unanswered, the child would wait in getppid forever.
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    let _ = nix::sys::wait::waitpid(child, None);
                    std::panic::resume_unwind(e);
                }
                pipe.read_exact(&mut buf[..8]).unwrap();
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                let got = word(&buf, 0);
                assert!(exited(status) && got == 4242, "{status:?} got {got}");
            }
        }
    }
}
