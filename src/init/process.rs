//! Per-process kernel settings the init stub applies before execve, and the execve itself.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::InitError;
use crate::spec::{IoPriority, MemoryPolicyPlan, Personality, ProcessPlan, SchedulerPlan};

fn sys(step: impl Into<String>) -> impl FnOnce(Errno) -> InitError {
    let step = step.into();
    move |errno| InitError::Sys { step, errno }
}

/// Writes a /proc file, refusing unless the opened file really is on procfs and reached
/// without symlinks: a container image or mount cannot redirect the write (CVE-2019-16884,
/// CVE-2025-52881).
pub fn write_proc(path: &Path, value: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let fs =
        nix::sys::statfs::fstatfs(&f).map_err(|e| format!("{}: fstatfs: {e}", path.display()))?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(format!(
            "{}: not on procfs; refusing to write to it",
            path.display()
        ));
    }
    // Another procfs file bind-mounted over the target is still procfs: the file must sit
    // on the /proc mount itself (CVE-2025-52881).
    let proc_root = std::fs::File::open("/proc").map_err(|e| format!("/proc: {e}"))?;
    if mount_id(&f) != mount_id(&proc_root) {
        return Err(format!(
            "{}: a different file is mounted over it; refusing the redirected write",
            path.display()
        ));
    }
    f.write_all(value.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The id of the mount an fd lives on (statx STATX_MNT_ID); None if the kernel cannot say.
fn mount_id(f: &std::fs::File) -> Option<u64> {
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed statx buffer is a valid value for the kernel to fill.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx on an open fd with AT_EMPTY_PATH.
    let r = unsafe {
        libc::statx(
            f.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut st,
        )
    };
    (r == 0 && st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
}

pub fn oom_score_adj(v: i32) -> Result<(), InitError> {
    write_proc(Path::new("/proc/self/oom_score_adj"), &v.to_string()).map_err(|e| {
        let hint = if e.contains("ermission denied") && v < 0 {
            " (lowering it needs CAP_SYS_RESOURCE, which this host's bounding set lacks)"
        } else {
            ""
        };
        InitError::Msg(format!("oomScoreAdj {v}: {e}{hint}"))
    })
}

pub fn personality(p: Personality) -> Result<(), InitError> {
    // SAFETY: plain personality(2).
    if unsafe { libc::personality(p.domain) } < 0 {
        return Err(sys(format!("personality {:#x}", p.domain))(Errno::last()));
    }
    Ok(())
}

pub fn io_priority(io: IoPriority) -> Result<(), InitError> {
    const IOPRIO_WHO_PROCESS: i32 = 1;
    let value = (io.class << 13) | io.level;
    // SAFETY: ioprio_set on ourselves.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) } < 0 {
        return Err(sys(format!(
            "ioprio_set class {} priority {}",
            io.class, io.level
        ))(Errno::last()));
    }
    Ok(())
}

/// The NUMA policy is inherited over fork and kept over execve, so setting it here sets it
/// for the container's process and everything it starts.
pub fn memory_policy(m: &MemoryPolicyPlan) -> Result<(), InitError> {
    let mask = if m.mask.is_empty() {
        std::ptr::null()
    } else {
        m.mask.as_ptr()
    };
    // The kernel reads maxnode - 1 bits (a historical off-by-one every caller follows).
    let maxnode = (m.mask.len() * libc::c_ulong::BITS as usize + 1) as libc::c_ulong;
    // SAFETY: set_mempolicy reads at most maxnode - 1 bits from a mask we own, or none
    // from a null pointer.
    if unsafe { libc::syscall(libc::SYS_set_mempolicy, m.mode, mask, maxnode) } < 0 {
        return Err(sys(format!("linux.memoryPolicy: set_mempolicy {}", m.text))(Errno::last()));
    }
    Ok(())
}

#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

pub fn scheduler(s: SchedulerPlan) -> Result<(), InitError> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: s.policy,
        flags: s.flags,
        nice: s.nice,
        priority: s.priority,
        runtime: s.runtime,
        deadline: s.deadline,
        period: s.period,
    };
    // SAFETY: sched_setattr on ourselves with a valid attr struct.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } < 0 {
        return Err(sys(format!(
            "sched_setattr policy {} priority {} nice {}",
            s.policy, s.priority, s.nice
        ))(Errno::last()));
    }
    Ok(())
}

pub fn cpu_affinity(pid: i32, cpus: &[usize], which: &str) -> Result<(), InitError> {
    let mut set = nix::sched::CpuSet::new();
    for c in cpus {
        set.set(*c)
            .map_err(sys(format!("execCPUAffinity.{which}: cpu {c}")))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(pid), &set).map_err(sys(format!(
        "execCPUAffinity.{which}: sched_setaffinity {cpus:?}"
    )))
}

/// Finds args[0] like execvp would, using the container's PATH, and checks it can run,
/// so that a missing binary fails `create` rather than `start`.
pub fn find_executable(p: &ProcessPlan) -> Result<CString, InitError> {
    let arg0 = &p.args[0];
    let candidates: Vec<PathBuf> = if arg0.contains('/') {
        vec![if Path::new(arg0).is_absolute() {
            PathBuf::from(arg0)
        } else {
            p.cwd.join(arg0)
        }]
    } else {
        // Only the process's own PATH, as runc (Go's LookPath after setting the env):
        // without one (or with an empty one) a bare name is not found.
        let path = p
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("");
        path.split(':')
            .filter(|d| !path.is_empty() || !d.is_empty())
            .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(arg0))
            .collect()
    };
    for c in &candidates {
        if let Ok(md) = std::fs::metadata(c) {
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return CString::new(c.as_os_str().as_bytes())
                    .map_err(|_| InitError::Msg("exec: path has a NUL byte".into()));
            }
            if arg0.contains('/') {
                return Err(InitError::Msg(format!(
                    "exec: {arg0:?}: permission denied or not a regular file"
                )));
            }
        }
    }
    Err(InitError::Msg(if arg0.contains('/') {
        format!("exec: {arg0:?}: no such file or directory")
    } else {
        format!("exec: {arg0:?}: executable file not found in $PATH")
    }))
}

/// Signal dispositions and mask back to defaults: the runtime ignores SIGPIPE and may
/// have blocked signals to forward them, and neither must leak into the container.
pub fn reset_signals() {
    // The kernel's struct sigaction for rt_sigaction(2); libc's signal() refuses the two
    // real-time signals glibc reserves (32, 33), which a caller may still have ignored.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid kernel sigaction and sigset size 8.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Marks every fd above stdio (and the preserved ones) close-on-exec.
pub fn cloexec_fds_from(first: u32) -> Result<(), InitError> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        // A seccomp profile loaded earlier (without noNewPrivileges) may deny close_range,
        // or an old kernel lack it: fall back to one fcntl per open fd, as runc does, so
        // one missing allow in a profile does not fail every container.
        return cloexec_each_from(first, Errno::last());
    }
    Ok(())
}

/// FD_CLOEXEC on every fd from `first`, found in /proc/self/fd.
fn cloexec_each_from(first: u32, why: Errno) -> Result<(), InitError> {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|_| sys("close_range(CLOEXEC), then list /proc/self/fd")(why))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &i32| fd >= first as i32)
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD/F_SETFD only read and set the fd's flags; a fd that closed
        // meanwhile (the directory's own) fails harmlessly with EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) < 0 {
                return Err(sys("fcntl(FD_CLOEXEC)")(Errno::last()));
            }
        }
    }
    Ok(())
}

/// The environment the process execs with: the config's, with HOME from the container's
/// /etc/passwd when it has none. Call after the pivot (or exec's setns), once: startContainer
/// hooks get the same list.
pub fn exec_env(p: &ProcessPlan) -> Vec<String> {
    super::user::with_home(&p.env, p.uid, Path::new("/etc/passwd")).unwrap_or_else(|| p.env.clone())
}

pub fn exec(path: &CString, p: &ProcessPlan, env: &[String]) -> InitError {
    let to_c = |v: &[String]| -> Vec<CString> {
        v.iter()
            .map(|s| CString::new(s.as_bytes()).unwrap_or_default())
            .collect()
    };
    let args = to_c(&p.args);
    let env = to_c(env);
    match nix::unistd::execve(path, &args, &env) {
        Err(e) => InitError::Sys {
            step: format!("exec {:?}", p.args[0]),
            errno: e,
        },
    }
}
