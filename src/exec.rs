//! `exec`: a further process in a running container. It joins every namespace of the
//! container's init (the user namespace first), its cgroups, and gets the same process
//! setup as the init stub. Success is the sync socket closing on execve (O_CLOEXEC).

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow};

use crate::cgroups::Cgroups;
use crate::container::{self, Error};
use crate::init::{self, InitError};
use crate::namespaces::{self, Forked};
use crate::spec::ProcessPlan;
use crate::state::{self, ContainerDir, Status};
use crate::sync::{Channel, ExpectError, Msg};

pub struct ExecOpts {
    pub process: ProcessPlan,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub ignore_paused: bool,
    pub preserve_fds: u32,
    /// The container's seccomp profile (exec'd processes get it too).
    pub seccomp: Option<crate::spec::SeccompPlan>,
}

/// The namespace files of the container's init that differ from ours, user first.
fn container_namespaces(pid: i32) -> Result<Vec<(CloneFlags, File, String)>, Error> {
    let kinds = [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let mut out = Vec::new();
    for (name, flag) in kinds {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ours = format!("/proc/self/ns/{name}");
        let (Ok(a), Ok(b)) = (std::fs::read_link(&theirs), std::fs::read_link(&ours)) else {
            continue;
        };
        if a != b {
            let f = File::open(&theirs).map_err(|e| Error::Msg(format!("open {theirs}: {e}")))?;
            out.push((flag, f, theirs));
        }
    }
    Ok(out)
}

pub fn exec(root: &Path, id: &str, o: &ExecOpts) -> Result<i32, Error> {
    let dir = ContainerDir::new(root, id)?;
    let st = dir.load()?;
    let status = state::status(&dir, &st);
    match status {
        Status::Stopped | Status::Creating => {
            return Err(Error::Msg(format!(
                "cannot exec in container {id}: it is {}",
                status.as_str()
            )));
        }
        Status::Paused if !o.ignore_paused => {
            return Err(Error::Msg(format!(
                "cannot exec in container {id}: it is paused (use --ignore-paused)"
            )));
        }
        _ => {}
    }
    if o.process.terminal && o.console_socket.is_none() && o.detach {
        return Err(Error::Msg(
            "exec --tty --detach needs --console-socket".into(),
        ));
    }
    let nss = container_namespaces(st.pid)?;
    let userns = nss.iter().any(|(f, _, _)| *f == CloneFlags::CLONE_NEWUSER);
    if crate::security::sealed::needed(&o.process, userns) && !crate::security::sealed::is_sealed()
    {
        crate::security::sealed::reexec().map_err(|e| Error::Msg(e.to_string()))?;
    }
    let mut console_rx = None;
    let console =
        match &o.console_socket {
            Some(p) => Some(UnixStream::connect(p).map_err(|e| {
                Error::Msg(format!("connect to console socket {}: {e}", p.display()))
            })?),
            None if o.process.terminal => {
                let (rx, tx) = UnixStream::pair()
                    .map_err(|e| Error::Msg(format!("console socketpair: {e}")))?;
                console_rx = Some(rx);
                Some(tx)
            }
            None => None,
        };
    let agent = match o.seccomp.as_ref().and_then(|s| s.listener_path.as_ref()) {
        Some(p) => Some(UnixStream::connect(p).map_err(|e| {
            Error::Msg(format!(
                "linux.seccomp.listenerPath: connect {}: {e}",
                p.display()
            ))
        })?),
        None => None,
    };
    let state = state::oci_state_json(&st, status);
    let set = container::forwarded();
    let mut old = SigSet::empty();
    if !o.detach {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .map_err(|e| Error::Msg(format!("block signals: {e}")))?;
    }
    let (parent_chan, child_chan) = Channel::pair()?;
    // A pid namespace only applies to children: enter it here, restore after the clone.
    let pidns = nss.iter().find(|(f, _, _)| *f == CloneFlags::CLONE_NEWPID);
    let saved = match pidns {
        Some((flag, f, path)) => {
            let own = File::open("/proc/self/ns/pid_for_children")
                .map_err(|e| Error::Msg(format!("open own pid namespace: {e}")))?;
            nix::sched::setns(f, *flag)
                .map_err(|e| Error::Msg(format!("join pid namespace {path}: {e}")))?;
            Some(own)
        }
        None => None,
    };
    let forked = namespaces::clone_into(CloneFlags::empty())?;
    let (pid, pidfd) = match forked {
        Forked::Child => {
            drop(parent_chan);
            let fds = ChildFds {
                console: console.as_ref().map(|c| c.as_raw_fd()),
                agent: agent.as_ref().map(|c| c.as_raw_fd()),
            };
            child(&child_chan, &nss, o, fds, &state)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(child_chan);
    crate::failpoint!("exec::clone");
    drop(console);
    drop(agent);
    if let Some(own) = saved {
        nix::sched::setns(own, CloneFlags::CLONE_NEWPID)
            .map_err(|e| Error::Msg(format!("restore pid namespace: {e}")))?;
    }
    let kill_child = |e: Error| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        e
    };
    let cg = Cgroups {
        joined: st.cgroup_joined.clone(),
        created: Vec::new(),
        hierarchies: Vec::new(),
    };
    cg.add(pid.as_raw()).map_err(|e| kill_child(e.into()))?;
    parent_chan
        .send(&Msg::Go {
            host_pid: pid.as_raw(),
        })
        .map_err(|e| kill_child(e.into()))?;
    if status == Status::Paused && o.detach {
        // The process froze on joining the paused cgroup; it runs on resume.
        if let Some(pf) = &o.pid_file {
            container::write_pid_file(pf, pid.as_raw())?;
        }
        return Ok(0);
    }
    match parent_chan.recv() {
        Ok(None) => {}
        Ok(Some(Msg::Error { msg })) => return Err(kill_child(Error::Msg(msg))),
        Ok(Some(other)) => {
            return Err(kill_child(Error::Msg(format!(
                "sync: unexpected {other:?}"
            ))));
        }
        Err(e) => return Err(kill_child(Error::Sync(ExpectError::from(e)))),
    }
    if let Some(pf) = &o.pid_file {
        container::write_pid_file(pf, pid.as_raw())?;
    }
    if o.detach {
        return Ok(0);
    }
    let code = container::wait_attached(pid, &pidfd, &set, console_rx.as_ref())?;
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    Ok(code)
}

struct ChildFds {
    console: Option<RawFd>,
    agent: Option<RawFd>,
}

/// The exec'd process between clone and execve; never returns.
fn child(
    chan: &Channel,
    nss: &[(CloneFlags, File, String)],
    o: &ExecOpts,
    fds: ChildFds,
    state: &serde_json::Value,
) -> ! {
    let err = match setup(chan, nss, o, fds, state) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = chan.send(&Msg::Error {
        msg: err.to_string(),
    });
    // SAFETY: _exit in the forked child, skipping the parent's destructors.
    unsafe { libc::_exit(1) }
}

fn setup(
    chan: &Channel,
    nss: &[(CloneFlags, File, String)],
    o: &ExecOpts,
    fds: ChildFds,
    state: &serde_json::Value,
) -> Result<std::convert::Infallible, InitError> {
    // Non-dumpable while berth's image is mapped: container processes must not reach it.
    let _ = nix::sys::prctl::set_dumpable(false);
    let host_pid = match chan.expect("Go")? {
        Msg::Go { host_pid } => host_pid,
        other => return Err(InitError::Msg(format!("sync: expected Go, got {other:?}"))),
    };
    let mut userns = false;
    for (flag, f, path) in nss
        .iter()
        .filter(|(f, _, _)| *f != CloneFlags::CLONE_NEWPID)
    {
        nix::sched::setns(f, *flag).map_err(|errno| InitError::Sys {
            step: format!("join namespace {path}"),
            errno,
        })?;
        userns |= *flag == CloneFlags::CLONE_NEWUSER;
    }
    // Joined but not yet exec'd: with `sleep(MS)` the CVE-2019-5736 test attacks the
    // process's image in this window.
    crate::failpoint!("exec::joined");
    if o.process.terminal {
        crate::rootfs::setup_console(fds.console, o.process.console_size, false)?;
    }
    let seccomp = o.seccomp.as_ref().map(|s| init::SeccompLoad {
        plan: s,
        socket: fds.agent,
        state: state.clone(),
        pid: host_pid,
    });
    init::setup_process(&o.process, None, userns, seccomp.as_ref())?;
    let exe = init::process::find_executable(&o.process)?;
    init::process::reset_signals();
    init::process::cloexec_fds_from(3 + o.preserve_fds)?;
    if o.process.no_new_privileges {
        if let Some(s) = &seccomp {
            init::load_seccomp(s)?;
        }
    }
    crate::failpoint!("exec::execve");
    Err(init::process::exec(&exe, &o.process))
}
