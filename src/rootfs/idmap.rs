//! Idmapped bind mounts (mount_setattr MOUNT_ATTR_IDMAP). The parent, in the host user
//! namespace, makes a detached clone of each source (open_tree) mapped through a throwaway
//! user namespace that holds the mount's mappings; the init stub attaches it with
//! move_mount. Ownership on disk is shown through the mapping: an on-disk id equal to a
//! mapping's containerID appears as its hostID.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sched::CloneFlags;

use super::{At, RootfsError, fdmount};
use crate::namespaces::{self, Forked};
use crate::spec::{IdMap, Plan};

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Detached, idmapped clones of the config's idmapped bind sources: (mount index, tree fd).
pub fn prepare(plan: &Plan) -> Result<Vec<(usize, OwnedFd)>, RootfsError> {
    let mut out = Vec::new();
    for m in &plan.mounts {
        let Some((uids, gids)) = &m.idmap else {
            continue;
        };
        let src = m.source.as_deref().unwrap_or(Path::new(""));
        let userns =
            userns_with(uids, gids).at("make the user namespace for idmapped mount of", src)?;
        // The tree is cloned whole for `rbind`; the mapping reaches its submounts only
        // with `ridmap` (as runc: `idmap` on an rbind maps the top mount alone).
        let recursive = m.options.recursive_bind;
        let source = nix::fcntl::open(
            src,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .at("open idmapped mount source", src)?;
        let tree = fdmount::clone_tree(&source, recursive)
            .at("open_tree (clone) of idmapped mount source", src)?;
        fdmount::setattr(
            &tree,
            MOUNT_ATTR_IDMAP,
            0,
            userns.as_raw_fd() as u64,
            m.options.recursive_idmap,
        )
        .at("idmap (mount_setattr MOUNT_ATTR_IDMAP)", src)?;
        out.push((m.index, tree));
    }
    Ok(out)
}

/// A user namespace holding `uids`/`gids`, kept alive only by the returned fd: a child is
/// cloned into it, the maps written, the namespace opened, and the child let go.
fn userns_with(uids: &[IdMap], gids: &[IdMap]) -> Result<OwnedFd, Errno> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    match namespaces::clone_into(CloneFlags::CLONE_NEWUSER).map_err(|_| Errno::last())? {
        Forked::Child => {
            drop(w);
            let mut f = std::fs::File::from(r);
            let _ = f.read(&mut [0u8; 1]);
            // SAFETY: _exit in the forked child.
            unsafe { libc::_exit(0) }
        }
        Forked::Parent { pid, .. } => {
            drop(r);
            let result = (|| {
                let text = |m: &[IdMap]| namespaces::map_text(m);
                std::fs::write(format!("/proc/{pid}/uid_map"), text(uids))
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL)))?;
                std::fs::write(format!("/proc/{pid}/gid_map"), text(gids))
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL)))?;
                let f = std::fs::File::open(format!("/proc/{pid}/ns/user"))
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL)))?;
                Ok(OwnedFd::from(f))
            })();
            drop(w);
            let _ = nix::sys::wait::waitpid(pid, None);
            result
        }
    }
}
