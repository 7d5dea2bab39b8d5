//! `linux.seccomp`: compiled here with `seccompiler`; loaded by `seccomp_notify.rs` with raw
//! seccomp(2), which also holds the BPF evaluator and the behaviour tests.
//!
//! seccompiler builds one program per (match action, mismatch action) pair and has no NOTIFY,
//! so a profile becomes a stack of filters whose combined verdict is the profile's. The kernel
//! runs every filter and keeps the most restrictive result (KILL_PROCESS > KILL_THREAD > TRAP >
//! ERRNO > USER_NOTIF > TRACE > LOG > ALLOW):
//! * the default filter allows each syscall named by any rule while that rule's args hold, and
//!   returns defaultAction otherwise (there is none when defaultAction is ALLOW);
//! * each distinct non-ALLOW rule action (ERRNO(1) and ERRNO(22) are distinct) has a filter
//!   returning that action for its rules and ALLOW for everything else.
//!
//! A call matching rules of several actions thus gets the most restrictive one. Two ERRNO values
//! tie on action; the kernel then takes the filter loaded last, which is unspecified here (as in
//! libseccomp). NOTIFY rules are compiled with a placeholder TRACE value whose `ret`s become
//! SECCOMP_RET_USER_NOTIF. NOTIFY as defaultAction is refused: the runtime's own calls between
//! loading and execve would wait on an agent that has no listener fd yet.
//!
//! Architectures: seccompiler's arch check (kill unless x86_64) is replaced by our dispatch.
//! * x86_64 is always filtered, as libseccomp always keeps the native arch.
//! * SCMP_ARCH_X32: x32 calls arrive as AUDIT_ARCH_X86_64 with nr | 0x40000000 and get their own
//!   numbers. Without X32 every nr >= 0x40000000 kills the process, so a deny-list cannot be
//!   bypassed through the x32 ABI (seccomp sees those numbers even on kernels without x32).
//! * SCMP_ARCH_X86: the rules are compiled again with i386 numbers. Without X86, i386 calls
//!   (int 0x80, 32-bit binaries) kill the process.
//! * x32 and i386 compare only the low 32 bits of arguments, as libseccomp does for 32-bit ABIs.
//! * Other arches never reach this kernel: they are skipped with a warning, even when listed
//!   alone (runc, through libseccomp, always filters the native arch too).
//! * Unlike libseccomp, i386 rules on socket(2)-family calls are not mirrored onto socketcall(2).
//!
//! Each ABI gets its own program per action (NOTIFY excepted: the kernel allows one listener),
//! since seccompiler's linear code for podman's profile on three ABIs exceeds the kernel's 4096
//! instructions. Syscall numbers: Linux 6.1 uapi tables plus 451..=470, added by hand.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op,
};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};

#[path = "seccomp_notify.rs"]
mod notify;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp.{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("linux.seccomp: {0}")]
    Unsupported(String),
    #[error("linux.seccomp.flags: {0} is not supported by this kernel")]
    Flag(String),
    #[error("loading the {filter} seccomp filter: {reason}")]
    Load { filter: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SeccompError {
    SeccompError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Filters in load-preference order (`load` may reorder them), and the spec's flags.
#[derive(Debug, Clone)]
pub struct Compiled {
    filters: Vec<Filter>,
    flags: Vec<Flag>,
}

#[derive(Debug, Clone)]
struct Filter {
    label: String,
    prog: Vec<sock_filter>,
    notify: bool,
}

impl Compiled {
    /// True when `load` will return a user-notification listener.
    pub fn has_notify(&self) -> bool {
        self.filters.iter().any(|f| f.notify)
    }
}

/// Compiles the spec's filter for this machine. Unknown syscall names are skipped, each
/// reported in the returned warnings (as runc does).
pub fn compile(s: &LinuxSeccomp) -> Result<(Compiled, Vec<String>), SeccompError> {
    if !cfg!(target_arch = "x86_64") {
        let arch = std::env::consts::ARCH;
        return Err(SeccompError::Unsupported(format!(
            "compiled only on x86_64, not {arch}"
        )));
    }
    if s.listener_metadata().is_some() && s.listener_path().is_none() {
        return Err(invalid("listenerMetadata", "set without listenerPath"));
    }
    let default = verdict(s.default_action(), s.default_errno_ret(), "defaultErrnoRet")?;
    if default == Verdict::Notify {
        return Err(invalid(
            "defaultAction",
            "SCMP_ACT_NOTIFY cannot be used as default action",
        ));
    }
    let mut warnings = Vec::new();
    let enabled = architectures(s.architectures().as_deref().unwrap_or(&[]), &mut warnings);

    let tables = Tables::new();
    let newest = newest_named(s, &tables, enabled, default);
    // Keyed by the rules' verdict; the default filter is keyed Allow (it allows what rules take).
    let mut groups: BTreeMap<Verdict, Group> = BTreeMap::new();
    if default != Verdict::Allow {
        groups.entry(Verdict::Allow).or_default();
    }
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("syscalls[{i}]");
        if rule.names().is_empty() {
            return Err(invalid(
                format!("{field}.names"),
                "must name at least one syscall",
            ));
        }
        let v = verdict(
            rule.action(),
            rule.errno_ret(),
            &format!("{field}.errnoRet"),
        )?;
        let conds = (rule.args().iter().flatten().enumerate())
            .map(|(j, a)| condition(a, &format!("{field}.args[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        for name in rule.names() {
            // The init writes to berth after loading the filter; an agent would have to
            // answer its own runtime's writes (runc refuses it with these words).
            if v == Verdict::Notify && name == "write" {
                return Err(invalid(
                    format!("{field}.names"),
                    "SCMP_ACT_NOTIFY cannot be used for the write syscall",
                ));
            }
            let numbers = tables.numbers(name, enabled);
            if numbers.is_empty() {
                warnings.push(format!(
                    "linux.seccomp.{field}.names: unknown syscall {name:?} skipped"
                ));
            }
            for (abi, nr) in numbers {
                if default != Verdict::Allow {
                    groups
                        .entry(Verdict::Allow)
                        .or_default()
                        .add(abi, nr, &conds)?;
                }
                if v != Verdict::Allow {
                    groups.entry(v).or_default().add(abi, nr, &conds)?;
                }
            }
        }
    }

    let mut filters = Vec::new();
    for (key, group) in groups {
        let (on_match, otherwise) = match key {
            Verdict::Allow => (Verdict::Allow, default),
            v => (v, Verdict::Allow),
        };
        let mut sections = Vec::new();
        for (abi, rules) in group.0.into_iter().enumerate() {
            // Without rules an ABI's action filter would allow everything: leave it out.
            if enabled[abi] && (key == Verdict::Allow || !rules.is_empty()) {
                let mut b = body(rules, on_match, otherwise, &key.label())?;
                if let (Verdict::Allow, Some(max)) = (key, newest[abi]) {
                    b.splice(0..0, enosys_guard(max));
                }
                sections.push((abi, b));
            }
        }
        if key == Verdict::Notify {
            let mut prog = stitch(sections, enabled, &key.label())?;
            for ins in prog
                .iter_mut()
                .filter(|i| i.code == RET_K && i.k == NOTIFY_PLACEHOLDER_RET)
            {
                ins.k = RET_USER_NOTIF;
            }
            filters.push(Filter {
                label: key.label(),
                prog,
                notify: true,
            });
            continue;
        }
        for (abi, section) in sections {
            let label = format!("{} ({})", key.label(), ABI_NAMES[abi]);
            let prog = stitch(vec![(abi, section)], enabled, &label)?;
            filters.push(Filter {
                label,
                prog,
                notify: false,
            });
        }
    }
    // An allow-everything profile still needs the arch check that kills unlisted ABIs.
    if filters.is_empty() {
        let label = "architecture".to_string();
        filters.push(Filter {
            prog: stitch(vec![], enabled, &label)?,
            label,
            notify: false,
        });
    }
    // Default first; NOTIFY last, so that no load call of ours can wait on its listener.
    filters.sort_by_key(|f| (!f.label.starts_with("default"), f.notify));
    let flags = s.flags().clone().unwrap_or_default();
    Ok((Compiled { filters, flags }, warnings))
}

/// Per ABI, the highest syscall number the profile names, when calls above it get ENOSYS
/// rather than the default action (runc's -ENOSYS stub): a syscall newer than the profile
/// is then "not implemented", so libc falls back (clone3 to clone, statx to fstatat)
/// instead of failing with the default errno or being killed. Permissive defaults (ALLOW,
/// LOG, TRACE) and a default of ENOSYS itself need no guard.
fn newest_named(
    s: &LinuxSeccomp,
    tables: &Tables,
    enabled: [bool; 3],
    default: Verdict,
) -> [Option<u32>; 3] {
    let mut newest = [None; 3];
    if matches!(default, Verdict::Allow | Verdict::Log | Verdict::Trace(_))
        || default == Verdict::Errno(libc::ENOSYS as u16)
    {
        return newest;
    }
    for name in s.syscalls().iter().flatten().flat_map(|r| r.names()) {
        for (abi, nr) in tables.numbers(name, enabled) {
            newest[abi] = newest[abi].max(Some(nr));
        }
    }
    newest
}

/// Prepended to an ABI's default-filter body: calls numbered above `max` get ENOSYS.
fn enosys_guard(max: u32) -> [sock_filter; 3] {
    [
        stmt(LD_W_ABS, 0),
        jump(JGT_K, max, 0, 1),
        stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32),
    ]
}

/// Loads the filters into the calling thread (with SECCOMP_FILTER_FLAG_TSYNC, into all of its
/// process's threads). Needs no_new_privs or CAP_SYS_ADMIN. Call it as late as possible before
/// execve: from here on the runtime's own syscalls are filtered too. Flags this kernel lacks
/// are errors naming them. Returns the user-notification listener (close-on-exec, loaded with
/// SECCOMP_FILTER_FLAG_NEW_LISTENER) when the profile has NOTIFY rules.
pub fn load(c: &Compiled) -> Result<Option<OwnedFd>, SeccompError> {
    notify::install(c)
}

const ABI_NAMES: [&str; 3] = ["x86_64", "x32", "i386"];
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_BIT: u32 = 0x4000_0000;
const MAX_INSNS: usize = 4096;
// seccompiler has no NOTIFY; this TRACE value only ever appears in the NOTIFY filter.
const NOTIFY_PLACEHOLDER: u32 = 0x5eca;
const NOTIFY_PLACEHOLDER_RET: u32 = 0x7ff0_0000 | NOTIFY_PLACEHOLDER;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;
// Classic BPF opcodes, limited to what seccompiler and this module emit.
const LD_W_ABS: u16 = 0x20;
const AND_K: u16 = 0x54;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

/// Ordered like the kernel's precedence, most restrictive first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    KillProcess,
    KillThread,
    Trap,
    Errno(u16),
    Notify,
    Trace(u16),
    Log,
    Allow,
}

impl Verdict {
    fn action(self) -> SeccompAction {
        match self {
            Verdict::KillProcess => SeccompAction::KillProcess,
            Verdict::KillThread => SeccompAction::KillThread,
            Verdict::Trap => SeccompAction::Trap,
            Verdict::Errno(e) => SeccompAction::Errno(e.into()),
            Verdict::Notify => SeccompAction::Trace(NOTIFY_PLACEHOLDER),
            Verdict::Trace(d) => SeccompAction::Trace(d.into()),
            Verdict::Log => SeccompAction::Log,
            Verdict::Allow => SeccompAction::Allow,
        }
    }

    fn label(self) -> String {
        match self {
            Verdict::Errno(e) => format!("SCMP_ACT_ERRNO({e})"),
            Verdict::Trace(d) => format!("SCMP_ACT_TRACE({d})"),
            Verdict::Allow => "default".into(),
            Verdict::KillProcess => "SCMP_ACT_KILL_PROCESS".into(),
            Verdict::KillThread => "SCMP_ACT_KILL_THREAD".into(),
            Verdict::Trap => "SCMP_ACT_TRAP".into(),
            Verdict::Notify => "SCMP_ACT_NOTIFY".into(),
            Verdict::Log => "SCMP_ACT_LOG".into(),
        }
    }
}

fn verdict(action: Act, errno: Option<u32>, field: &str) -> Result<Verdict, SeccompError> {
    let data = |max: u32| match errno {
        None => Ok(libc::EPERM as u16),
        Some(e) if e <= max => Ok(e as u16),
        Some(e) => Err(invalid(field, format!("{e} is larger than {max}"))),
    };
    Ok(match action {
        // The kernel clamps errno values to 4095; refuse rather than silently change them.
        Act::ScmpActErrno => Verdict::Errno(data(4095)?),
        Act::ScmpActTrace => Verdict::Trace(data(0xffff)?),
        // The spec: "When the action doesn't support an errno, the runtime MUST ... fail."
        _ if errno.is_some() => return Err(invalid(field, format!("not allowed with {action}"))),
        Act::ScmpActKill | Act::ScmpActKillThread => Verdict::KillThread,
        Act::ScmpActKillProcess => Verdict::KillProcess,
        Act::ScmpActTrap => Verdict::Trap,
        Act::ScmpActNotify => Verdict::Notify,
        Act::ScmpActLog => Verdict::Log,
        Act::ScmpActAllow => Verdict::Allow,
    })
}

type Cond = (u8, SeccompCmpOp, u64);

fn condition(a: &LinuxSeccompArg, field: &str) -> Result<Cond, SeccompError> {
    let index = a.index();
    if index > 5 {
        return Err(invalid(
            format!("{field}.index"),
            format!("{index} out of range 0..5"),
        ));
    }
    let op = match a.op() {
        // OCI, like libseccomp: value is the mask, valueTwo the value compared after masking.
        Op::ScmpCmpMaskedEq => {
            return Ok((
                index as u8,
                SeccompCmpOp::MaskedEq(a.value()),
                a.value_two().unwrap_or(0),
            ));
        }
        _ if a.value_two().is_some_and(|v| v != 0) => {
            let reason = format!("only SCMP_CMP_MASKED_EQ uses it, not {}", a.op());
            return Err(invalid(format!("{field}.valueTwo"), reason));
        }
        Op::ScmpCmpNe => SeccompCmpOp::Ne,
        Op::ScmpCmpLt => SeccompCmpOp::Lt,
        Op::ScmpCmpLe => SeccompCmpOp::Le,
        Op::ScmpCmpEq => SeccompCmpOp::Eq,
        Op::ScmpCmpGe => SeccompCmpOp::Ge,
        Op::ScmpCmpGt => SeccompCmpOp::Gt,
    };
    Ok((index as u8, op, a.value()))
}

/// Returns which ABIs (x86_64, x32, i386) the filters cover.
fn architectures(list: &[Arch], warnings: &mut Vec<String>) -> [bool; 3] {
    let (mut enabled, mut foreign) = ([true, false, false], Vec::new());
    for a in list {
        match a {
            Arch::ScmpArchX86_64 | Arch::ScmpArchNative => {}
            Arch::ScmpArchX32 => enabled[1] = true,
            Arch::ScmpArchX86 => enabled[2] = true,
            other => foreign.push(other.to_string()),
        }
    }
    if !foreign.is_empty() {
        // As runc (libseccomp always keeps the native arch): listed alone too, the
        // profile still filters x86_64 calls.
        let names = foreign.join(", ");
        warnings.push(format!(
            "linux.seccomp.architectures: {names} skipped: such calls never reach an x86_64 kernel"
        ));
    }
    enabled
}

/// The syscalls one filter matches, per ABI (x86_64, x32, i386); `None` marks a syscall
/// matched whatever its arguments.
#[derive(Default)]
struct Group([BTreeMap<i64, Option<Vec<SeccompRule>>>; 3]);

impl Group {
    fn add(&mut self, abi: usize, nr: u32, conds: &[Cond]) -> Result<(), SeccompError> {
        let entry = self.0[abi]
            .entry(nr.into())
            .or_insert_with(|| Some(Vec::new()));
        let Some(rules) = entry else { return Ok(()) };
        if conds.is_empty() {
            *entry = None;
            return Ok(());
        }
        // 32-bit ABIs pass 32-bit arguments: their upper halves are not the caller's to set.
        let len = if abi == 0 {
            SeccompCmpArgLen::Qword
        } else {
            SeccompCmpArgLen::Dword
        };
        let rule = (conds.iter())
            .map(|(i, op, v)| SeccompCondition::new(*i, len.clone(), op.clone(), *v))
            .collect::<Result<Vec<_>, _>>()
            .and_then(SeccompRule::new)
            .map_err(|e| invalid("syscalls", e.to_string()))?;
        rules.push(rule);
        Ok(())
    }
}

/// seccompiler's program for one ABI, without its x86_64 arch check.
fn body(
    rules: BTreeMap<i64, Option<Vec<SeccompRule>>>,
    on_match: Verdict,
    otherwise: Verdict,
    label: &str,
) -> Result<Vec<sock_filter>, SeccompError> {
    let err = |e: seccompiler::BackendError| invalid("syscalls", format!("{label} filter: {e}"));
    let rules = rules
        .into_iter()
        .map(|(nr, r)| (nr, r.unwrap_or_default()))
        .collect();
    let filter = SeccompFilter::new(
        rules,
        otherwise.action(),
        on_match.action(),
        TargetArch::x86_64,
    )
    .map_err(err)?;
    let prog: Vec<sock_filter> = filter.try_into().map_err(err)?;
    let prelude = [
        stmt(LD_W_ABS, 4),
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, RET_KILL_PROCESS),
    ];
    match prog.strip_prefix(&prelude[..]) {
        Some(rest) => Ok(rest.to_vec()),
        None => Err(invalid(
            "syscalls",
            "seccompiler emitted an unexpected arch check",
        )),
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Puts ABI bodies under a dispatch that sends each call to its ABI's body, allows calls of
/// another enabled ABI (that ABI's own filter judges them) and kills everything else.
fn stitch(
    sections: Vec<(usize, Vec<sock_filter>)>,
    enabled: [bool; 3],
    label: &str,
) -> Result<Vec<sock_filter>, SeccompError> {
    const ALLOW_AT: usize = 9;
    const KILL_AT: usize = 10;
    let mut starts = [None; 3];
    let mut at = KILL_AT + 1;
    for (abi, body) in &sections {
        starts[*abi] = Some(at);
        at += body.len();
    }
    if at > MAX_INSNS {
        let reason =
            format!("the {label} filter needs {at} BPF instructions, the kernel takes {MAX_INSNS}");
        return Err(invalid("syscalls", reason));
    }
    // Conditional jumps reach 255 instructions at most; JA (relative to the next one) any.
    let ja = |from: usize, abi: usize| {
        let to = starts[abi].unwrap_or(if enabled[abi] { ALLOW_AT } else { KILL_AT });
        stmt(JA, (to - from - 1) as u32)
    };
    let mut out = vec![
        stmt(LD_W_ABS, 4),
        jump(JEQ_K, AUDIT_ARCH_I386, 0, 1),
        ja(2, 2),
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, RET_KILL_PROCESS),
        stmt(LD_W_ABS, 0),
        jump(JGE_K, X32_BIT, 0, 1),
        ja(7, 1),
        ja(8, 0),
        stmt(RET_K, RET_ALLOW),
        stmt(RET_K, RET_KILL_PROCESS),
    ];
    out.extend(sections.into_iter().flat_map(|(_, body)| body));
    Ok(out)
}

struct Tables([HashMap<&'static str, u32>; 3]);

impl Tables {
    fn new() -> Self {
        let table = |names: &'static str, bit: u32| {
            let (mut t, mut nr) = (HashMap::new(), 0);
            for name in names.split_whitespace() {
                if let Some(Ok(base)) = name.strip_prefix('@').map(str::parse::<u32>) {
                    nr = base;
                    continue;
                }
                t.insert(name, nr | bit);
                nr += 1;
            }
            t.remove("-");
            t
        };
        let mut x32 = table(X86_64, X32_BIT);
        // x32 reuses the x86_64 numbers except where it has its own (512+) entries.
        x32.extend(table(X32_ONLY, X32_BIT));
        Tables([table(X86_64, 0), x32, table(I386, 0)])
    }

    /// (ABI, number) for each enabled ABI that has `name`.
    fn numbers(&self, name: &str, enabled: [bool; 3]) -> Vec<(usize, u32)> {
        (0..3)
            .filter(|&abi| enabled[abi])
            .filter_map(|abi| Some((abi, *self.0[abi].get(name)?)))
            .collect()
    }
}

// Names in number order from 0, or from an `@number` marker; "-" marks unused numbers.
const X86_64: &str = "read write open close stat fstat lstat poll lseek mmap mprotect munmap brk \
    rt_sigaction rt_sigprocmask rt_sigreturn ioctl pread64 pwrite64 readv writev access pipe \
    select sched_yield mremap msync mincore madvise shmget shmat shmctl dup dup2 pause nanosleep \
    getitimer alarm setitimer getpid sendfile socket connect accept sendto recvfrom sendmsg \
    recvmsg shutdown bind listen getsockname getpeername socketpair setsockopt getsockopt clone \
    fork vfork execve exit wait4 kill uname semget semop semctl shmdt msgget msgsnd msgrcv msgctl \
    fcntl flock fsync fdatasync truncate ftruncate getdents getcwd chdir fchdir rename mkdir \
    rmdir creat link unlink symlink readlink chmod fchmod chown fchown lchown umask gettimeofday \
    getrlimit getrusage sysinfo times ptrace getuid syslog getgid setuid setgid geteuid getegid \
    setpgid getppid getpgrp setsid setreuid setregid getgroups setgroups setresuid getresuid \
    setresgid getresgid getpgid setfsuid setfsgid getsid capget capset rt_sigpending \
    rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend sigaltstack utime mknod uselib personality \
    ustat statfs fstatfs sysfs getpriority setpriority sched_setparam sched_getparam \
    sched_setscheduler sched_getscheduler sched_get_priority_max sched_get_priority_min \
    sched_rr_get_interval mlock munlock mlockall munlockall vhangup modify_ldt pivot_root _sysctl \
    prctl arch_prctl adjtimex setrlimit chroot sync acct settimeofday mount umount2 swapon \
    swapoff reboot sethostname setdomainname iopl ioperm create_module init_module delete_module \
    get_kernel_syms query_module quotactl nfsservctl getpmsg putpmsg afs_syscall tuxcall security \
    gettid readahead setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr \
    llistxattr flistxattr removexattr lremovexattr fremovexattr tkill time futex \
    sched_setaffinity sched_getaffinity set_thread_area io_setup io_destroy io_getevents \
    io_submit io_cancel get_thread_area lookup_dcookie epoll_create epoll_ctl_old epoll_wait_old \
    remap_file_pages getdents64 set_tid_address restart_syscall semtimedop fadvise64 timer_create \
    timer_settime timer_gettime timer_getoverrun timer_delete clock_settime clock_gettime \
    clock_getres clock_nanosleep exit_group epoll_wait epoll_ctl tgkill utimes vserver mbind \
    set_mempolicy get_mempolicy mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify \
    mq_getsetattr kexec_load waitid add_key request_key keyctl ioprio_set ioprio_get inotify_init \
    inotify_add_watch inotify_rm_watch migrate_pages openat mkdirat mknodat fchownat futimesat \
    newfstatat unlinkat renameat linkat symlinkat readlinkat fchmodat faccessat pselect6 ppoll \
    unshare set_robust_list get_robust_list splice tee sync_file_range vmsplice move_pages \
    utimensat epoll_pwait signalfd timerfd_create eventfd fallocate timerfd_settime \
    timerfd_gettime accept4 signalfd4 eventfd2 epoll_create1 dup3 pipe2 inotify_init1 preadv \
    pwritev rt_tgsigqueueinfo perf_event_open recvmmsg fanotify_init fanotify_mark prlimit64 \
    name_to_handle_at open_by_handle_at clock_adjtime syncfs sendmmsg setns getcpu \
    process_vm_readv process_vm_writev kcmp finit_module sched_setattr sched_getattr renameat2 \
    seccomp getrandom memfd_create kexec_file_load bpf execveat userfaultfd membarrier mlock2 \
    copy_file_range preadv2 pwritev2 pkey_mprotect pkey_alloc pkey_free statx io_pgetevents rseq \
    @424 pidfd_send_signal io_uring_setup io_uring_enter io_uring_register open_tree move_mount \
    fsopen fsconfig fsmount fspick pidfd_open clone3 close_range openat2 pidfd_getfd faccessat2 \
    process_madvise epoll_pwait2 mount_setattr quotactl_fd landlock_create_ruleset \
    landlock_add_rule landlock_restrict_self memfd_secret process_mrelease futex_waitv \
    set_mempolicy_home_node cachestat fchmodat2 map_shadow_stack futex_wake futex_wait \
    futex_requeue statmount listmount lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal \
    setxattrat getxattrat listxattrat removexattrat open_tree_attr file_getattr file_setattr \
    listns";
const I386: &str = "restart_syscall exit fork read write open close waitpid creat link unlink \
    execve chdir time mknod chmod lchown break oldstat lseek getpid mount umount setuid getuid \
    stime ptrace alarm oldfstat pause utime stty gtty access nice ftime sync kill rename mkdir \
    rmdir dup pipe times prof brk setgid getgid signal geteuid getegid acct umount2 lock ioctl \
    fcntl mpx setpgid ulimit oldolduname umask chroot ustat dup2 getppid getpgrp setsid sigaction \
    sgetmask ssetmask setreuid setregid sigsuspend sigpending sethostname setrlimit getrlimit \
    getrusage gettimeofday settimeofday getgroups setgroups select symlink oldlstat readlink \
    uselib swapon reboot readdir mmap munmap truncate ftruncate fchmod fchown getpriority \
    setpriority profil statfs fstatfs ioperm socketcall syslog setitimer getitimer stat lstat \
    fstat olduname iopl vhangup idle vm86old wait4 swapoff sysinfo ipc fsync sigreturn clone \
    setdomainname uname modify_ldt adjtimex mprotect sigprocmask create_module init_module \
    delete_module get_kernel_syms quotactl getpgid fchdir bdflush sysfs personality afs_syscall \
    setfsuid setfsgid _llseek getdents _newselect flock msync readv writev getsid fdatasync \
    _sysctl mlock munlock mlockall munlockall sched_setparam sched_getparam sched_setscheduler \
    sched_getscheduler sched_yield sched_get_priority_max sched_get_priority_min \
    sched_rr_get_interval nanosleep mremap setresuid getresuid vm86 query_module poll nfsservctl \
    setresgid getresgid prctl rt_sigreturn rt_sigaction rt_sigprocmask rt_sigpending \
    rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend pread64 pwrite64 chown getcwd capget capset \
    sigaltstack sendfile getpmsg putpmsg vfork ugetrlimit mmap2 truncate64 ftruncate64 stat64 \
    lstat64 fstat64 lchown32 getuid32 getgid32 geteuid32 getegid32 setreuid32 setregid32 \
    getgroups32 setgroups32 fchown32 setresuid32 getresuid32 setresgid32 getresgid32 chown32 \
    setuid32 setgid32 setfsuid32 setfsgid32 pivot_root mincore madvise getdents64 fcntl64 - - \
    gettid readahead setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr \
    llistxattr flistxattr removexattr lremovexattr fremovexattr tkill sendfile64 futex \
    sched_setaffinity sched_getaffinity set_thread_area get_thread_area io_setup io_destroy \
    io_getevents io_submit io_cancel fadvise64 - exit_group lookup_dcookie epoll_create epoll_ctl \
    epoll_wait remap_file_pages set_tid_address timer_create timer_settime timer_gettime \
    timer_getoverrun timer_delete clock_settime clock_gettime clock_getres clock_nanosleep \
    statfs64 fstatfs64 tgkill utimes fadvise64_64 vserver mbind get_mempolicy set_mempolicy \
    mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr kexec_load waitid - \
    add_key request_key keyctl ioprio_set ioprio_get inotify_init inotify_add_watch \
    inotify_rm_watch migrate_pages openat mkdirat mknodat fchownat futimesat fstatat64 unlinkat \
    renameat linkat symlinkat readlinkat fchmodat faccessat pselect6 ppoll unshare \
    set_robust_list get_robust_list splice sync_file_range tee vmsplice move_pages getcpu \
    epoll_pwait utimensat signalfd timerfd_create eventfd fallocate timerfd_settime \
    timerfd_gettime signalfd4 eventfd2 epoll_create1 dup3 pipe2 inotify_init1 preadv pwritev \
    rt_tgsigqueueinfo perf_event_open recvmmsg fanotify_init fanotify_mark prlimit64 \
    name_to_handle_at open_by_handle_at clock_adjtime syncfs sendmmsg setns process_vm_readv \
    process_vm_writev kcmp finit_module sched_setattr sched_getattr renameat2 seccomp getrandom \
    memfd_create bpf execveat socket socketpair bind connect listen accept4 getsockopt setsockopt \
    getsockname getpeername sendto sendmsg recvfrom recvmsg shutdown userfaultfd membarrier \
    mlock2 copy_file_range preadv2 pwritev2 pkey_mprotect pkey_alloc pkey_free statx arch_prctl \
    io_pgetevents rseq - - - - - - semget semctl shmget shmctl shmat shmdt msgget msgsnd msgrcv \
    msgctl clock_gettime64 clock_settime64 clock_adjtime64 clock_getres_time64 \
    clock_nanosleep_time64 timer_gettime64 timer_settime64 timerfd_gettime64 timerfd_settime64 \
    utimensat_time64 pselect6_time64 ppoll_time64 - io_pgetevents_time64 recvmmsg_time64 \
    mq_timedsend_time64 mq_timedreceive_time64 semtimedop_time64 rt_sigtimedwait_time64 \
    futex_time64 sched_rr_get_interval_time64 pidfd_send_signal io_uring_setup io_uring_enter \
    io_uring_register open_tree move_mount fsopen fsconfig fsmount fspick pidfd_open clone3 \
    close_range openat2 pidfd_getfd faccessat2 process_madvise epoll_pwait2 mount_setattr \
    quotactl_fd landlock_create_ruleset landlock_add_rule landlock_restrict_self memfd_secret \
    process_mrelease futex_waitv set_mempolicy_home_node cachestat fchmodat2 map_shadow_stack \
    futex_wake futex_wait futex_requeue statmount listmount lsm_get_self_attr lsm_set_self_attr \
    lsm_list_modules mseal setxattrat getxattrat listxattrat removexattrat open_tree_attr \
    file_getattr file_setattr listns";
const X32_ONLY: &str = "@512 rt_sigaction rt_sigreturn ioctl readv writev recvfrom sendmsg \
    recvmsg execve ptrace rt_sigpending rt_sigtimedwait rt_sigqueueinfo sigaltstack timer_create \
    mq_notify kexec_load waitid set_robust_list get_robust_list vmsplice move_pages preadv \
    pwritev rt_tgsigqueueinfo recvmmsg sendmmsg process_vm_readv process_vm_writev setsockopt \
    getsockopt io_setup io_submit execveat preadv2 pwritev2";

#[cfg(test)]
mod tests {
    use super::notify::tests::{ALLOWED, EPERM, x64};
    use super::*;
    use serde_json::{Value, json};

    fn err(v: Value) -> String {
        let spec = serde_json::from_value(v).unwrap();
        compile(&spec).unwrap_err().to_string()
    }

    #[test]
    fn unknown_names_are_skipped_with_warnings() {
        let s = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpid", "no_such_call"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["socketcall"], "action": "SCMP_ACT_ERRNO"}]});
        let (c, warnings) = compile(&serde_json::from_value(s).unwrap()).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0]
                .starts_with("linux.seccomp.syscalls[0].names: unknown syscall \"no_such_call\"")
        );
        assert!(
            warnings[1].contains("\"socketcall\""),
            "i386-only, and SCMP_ARCH_X86 is not listed"
        );
        assert_eq!(x64(&c, "getpid", [0; 6]), EPERM);
        assert_eq!(x64(&c, "getppid", [0; 6]), ALLOWED);
    }

    #[test]
    fn calls_newer_than_the_profile_get_enosys_unless_the_default_is_permissive() {
        const ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;
        let profile = |default: &str| {
            let s = json!({"defaultAction": default, "syscalls": [
                {"names": ["read", "write", "getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]});
            compile(&serde_json::from_value(s).unwrap()).unwrap().0
        };
        // getpid (39) is the newest named: sendfile (40) and clone3 are "not implemented";
        // writev (20) is older and unnamed, so it gets the default action.
        let errno = profile("SCMP_ACT_ERRNO");
        assert_eq!(x64(&errno, "sendfile", [0; 6]), ENOSYS);
        assert_eq!(x64(&errno, "clone3", [0; 6]), ENOSYS);
        assert_eq!(x64(&errno, "writev", [0; 6]), EPERM);
        assert_eq!(x64(&errno, "getpid", [0; 6]), ALLOWED);
        assert_eq!(x64(&errno, "dup", [0; 6]), 0x0005_0005);
        let kill = profile("SCMP_ACT_KILL_PROCESS");
        assert_eq!(x64(&kill, "clone3", [0; 6]), ENOSYS);
        assert_eq!(x64(&kill, "writev", [0; 6]), RET_KILL_PROCESS);
        for permissive in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"] {
            let c = profile(permissive);
            assert_ne!(x64(&c, "clone3", [0; 6]), ENOSYS, "{permissive}");
        }
    }

    #[test]
    fn invalid_fields_are_named() {
        let read = json!({"names": ["read"], "action": "SCMP_ACT_ALLOW"});
        let fourth = |r: Value| json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [read, read, read, r]});
        let arg =
            |a: Value| fourth(json!({"names": ["read"], "action": "SCMP_ACT_LOG", "args": [a]}));
        let cases = [
            (
                arg(json!({"index": 7, "value": 1, "op": "SCMP_CMP_EQ"})),
                "syscalls[3].args[0].index: 7 out of range 0..5",
            ),
            (
                arg(json!({"index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_GT"})),
                "syscalls[3].args[0].valueTwo: only SCMP_CMP_MASKED_EQ uses it, not SCMP_CMP_GT",
            ),
            (
                fourth(json!({"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1})),
                "syscalls[3].errnoRet: not allowed with SCMP_ACT_ALLOW",
            ),
            (
                fourth(json!({"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5000})),
                "syscalls[3].errnoRet: 5000 is larger than 4095",
            ),
            (
                fourth(json!({"names": [], "action": "SCMP_ACT_LOG"})),
                "syscalls[3].names: must name at least one syscall",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}),
                "defaultErrnoRet: not allowed with SCMP_ACT_KILL",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_NOTIFY"}),
                "defaultAction: SCMP_ACT_NOTIFY cannot be used as default action",
            ),
            (
                fourth(json!({"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"})),
                "syscalls[3].names: SCMP_ACT_NOTIFY cannot be used for the write syscall",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}),
                "listenerMetadata: set without listenerPath",
            ),
        ];
        for (spec, message) in cases {
            assert_eq!(err(spec), format!("linux.seccomp.{message}"));
        }
        let bogus =
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]});
        assert!(
            serde_json::from_value::<LinuxSeccomp>(bogus).is_err(),
            "the spec parser refuses it"
        );
    }
}
