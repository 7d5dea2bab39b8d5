//! Process credentials and limits: user and groups, capabilities, rlimits,
//! no_new_privs, seccomp. Each failure names its step.

pub mod lsm;
pub mod sealed;
pub mod seccomp;

use caps::{CapSet, Capability};
use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

use crate::spec::{CapSets, ProcessPlan, Rlimit};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("{step}: {errno}")]
    Sys { step: String, errno: Errno },
    #[error(
        "rlimit {name}: raising the hard limit to {hard} (soft {soft}) needs CAP_SYS_RESOURCE, which this host's bounding set lacks; the current hard limit is {current}"
    )]
    RlimitRaise {
        name: String,
        soft: u64,
        hard: u64,
        current: u64,
    },
    #[error("capabilities: {step}: {source}")]
    Caps {
        step: String,
        source: caps::errors::CapsError,
    },
}

fn sys(step: impl Into<String>) -> impl FnOnce(Errno) -> SecurityError {
    let step = step.into();
    move |errno| SecurityError::Sys { step, errno }
}

pub fn set_rlimits(limits: &[Rlimit]) -> Result<(), SecurityError> {
    for r in limits {
        let new = libc::rlimit64 {
            rlim_cur: r.soft,
            rlim_max: r.hard,
        };
        let mut old = libc::rlimit64 {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: prlimit64 on ourselves with valid structs.
        let ret = unsafe { libc::prlimit64(0, r.resource as _, &new, &mut old) };
        if ret < 0 {
            let errno = Errno::last();
            if errno == Errno::EPERM {
                let mut cur = libc::rlimit64 {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                // SAFETY: read-only query of our own limit.
                unsafe { libc::prlimit64(0, r.resource as _, std::ptr::null(), &mut cur) };
                if r.hard > cur.rlim_max {
                    return Err(SecurityError::RlimitRaise {
                        name: r.name.clone(),
                        soft: r.soft,
                        hard: r.hard,
                        current: cur.rlim_max,
                    });
                }
            }
            return Err(SecurityError::Sys {
                step: format!("setrlimit {} soft={} hard={}", r.name, r.soft, r.hard),
                errno,
            });
        }
    }
    Ok(())
}

/// Switches to the process user, keeping exactly the configured capabilities.
/// Order matters: bounding set first (needs CAP_SETPCAP), then ids with KEEPCAPS so the
/// permitted set survives setuid, then permitted/inheritable/effective, then ambient.
pub fn set_user_and_caps(p: &ProcessPlan, userns: bool) -> Result<(), SecurityError> {
    let capsets = p.caps.as_ref();
    if let Some(c) = capsets {
        nix::sys::prctl::set_keepcaps(true).map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
        for cap in caps::all() {
            if !c.bounding.contains(&cap) {
                match caps::drop(None, CapSet::Bounding, cap) {
                    Ok(()) => {}
                    // A capability this kernel does not know is already absent.
                    Err(_) if !caps::runtime::thread_all_supported().contains(&cap) => {}
                    Err(source) => {
                        return Err(SecurityError::Caps {
                            step: format!("drop {cap} from the bounding set"),
                            source,
                        });
                    }
                }
            }
        }
    }
    set_groups(p, userns)?;
    let (uid, gid) = (Uid::from_raw(p.uid), Gid::from_raw(p.gid));
    nix::unistd::setresgid(gid, gid, gid).map_err(sys(format!("setgid {}", p.gid)))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(sys(format!("setuid {}", p.uid)))?;
    if let Some(c) = capsets {
        apply_caps(c)?;
        nix::sys::prctl::set_keepcaps(false).map_err(sys("prctl(PR_SET_KEEPCAPS, 0)"))?;
    }
    Ok(())
}

fn set_groups(p: &ProcessPlan, userns: bool) -> Result<(), SecurityError> {
    let groups: Vec<Gid> = p
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&groups) {
        Ok(()) => Ok(()),
        // With setgroups denied in a user namespace, an empty list is the best we can do.
        Err(Errno::EPERM) if userns && groups.is_empty() => Ok(()),
        Err(e) => Err(sys(format!("setgroups {:?}", p.additional_gids))(e)),
    }
}

fn mask(v: &caps::CapsHashSet) -> u64 {
    v.iter().fold(0, |m, c| m | c.bitmask())
}

/// One capset(2) for all three sets: set one at a time, the kernel's subset rules
/// (effective ⊆ permitted, inheritable ⊆ permitted ∪ old inheritable) refuse valid configs.
fn apply_caps(c: &CapSets) -> Result<(), SecurityError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let (e, p, i) = (mask(&c.effective), mask(&c.permitted), mask(&c.inheritable));
    let mut hdr = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        Data {
            effective: e as u32,
            permitted: p as u32,
            inheritable: i as u32,
        },
        Data {
            effective: (e >> 32) as u32,
            permitted: (p >> 32) as u32,
            inheritable: (i >> 32) as u32,
        },
    ];
    // SAFETY: capset with a v3 header and the two data words it expects.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) } < 0 {
        return Err(SecurityError::Sys {
            step: format!(
                "capset effective={} permitted={} inheritable={}",
                names(&c.effective),
                names(&c.permitted),
                names(&c.inheritable)
            ),
            errno: Errno::last(),
        });
    }
    caps::clear(None, CapSet::Ambient).map_err(|source| SecurityError::Caps {
        step: "clear ambient".into(),
        source,
    })?;
    for cap in &c.ambient {
        // An ambient capability must be permitted and inheritable; runc skips others too.
        if c.permitted.contains(cap) && c.inheritable.contains(cap) {
            caps::raise(None, CapSet::Ambient, *cap).map_err(|source| SecurityError::Caps {
                step: format!("raise ambient {cap}"),
                source,
            })?;
        }
    }
    Ok(())
}

fn names(v: &caps::CapsHashSet) -> String {
    let mut n: Vec<String> = v.iter().map(Capability::to_string).collect();
    n.sort();
    format!("[{}]", n.join(" "))
}

pub fn set_no_new_privs() -> Result<(), SecurityError> {
    nix::sys::prctl::set_no_new_privs().map_err(sys("prctl(PR_SET_NO_NEW_PRIVS)"))
}

/// Hands a seccomp user-notification listener to the agent at linux.seccomp.listenerPath
/// (config-linux.md): the fd with SCM_RIGHTS and the container process state as JSON.
pub fn send_listener(
    socket: std::os::fd::RawFd,
    listener: &std::os::fd::OwnedFd,
    state: &serde_json::Value,
) -> Result<(), SecurityError> {
    use std::os::fd::AsRawFd;
    let payload = serde_json::to_vec(state).unwrap_or_default();
    let fds = [listener.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(
        socket,
        &[std::io::IoSlice::new(&payload)],
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map(|_| ())
    .map_err(sys(
        "send the seccomp listener to linux.seccomp.listenerPath",
    ))
}
