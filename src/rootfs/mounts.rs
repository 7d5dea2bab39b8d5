//! One config.json mount, done by fd inside the root.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

use super::paths::{Root, fd_path};
use super::{At, NONE, RootfsError, ensure_for, fdmount};
use crate::spec::{MountKind, MountPlan};

/// Flags a bind mount can only get through a second, remount call.
const REMOUNT_FLAGS: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOATIME)
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

/// The container's namespaces that change how a mount is made.
#[derive(Debug, Clone, Copy)]
pub struct NsView {
    /// A user namespace: v1 cgroupfs cannot be mounted, locked flags must be kept.
    pub userns: bool,
    /// A cgroup namespace: a fresh cgroupfs shows the container's cgroup as its root.
    pub cgroupns: bool,
}

pub fn mount_one(
    root: &Root,
    m: &MountPlan,
    ns: NsView,
    cgroups: &crate::cgroups::Cgroups,
    idmapped: Option<&OwnedFd>,
) -> Result<(), RootfsError> {
    let mnt = match &m.kind {
        MountKind::Bind => bind(root, m, idmapped)?,
        MountKind::Fs(t) if t == "cgroup" || t == "cgroup2" => cgroup(root, m, ns, cgroups)?,
        MountKind::Fs(t) if t == "tmpfs" => tmpfs(root, m)?,
        MountKind::Fs(t) if t == "sysfs" && ns.userns => sysfs_or_bind(root, m)?,
        MountKind::Fs(t) => filesystem(root, m, t)?,
    };
    after_mount_fd(&mnt, m)
}

/// Any other filesystem: made detached, attached onto the destination's fd.
fn filesystem(root: &Root, m: &MountPlan, t: &str) -> Result<OwnedFd, RootfsError> {
    let dest = m.destination.as_path();
    if t == "proc" || t == "sysfs" {
        refuse_odd_proc_sys_dest(root, dest, t)?;
    }
    let target = ensure_for(root, dest, true)?;
    let source = source_of(m, t);
    let mnt = fdmount::new_fs(t, &source, m.options.flags, &m.options.data, true)
        .at(mount_step(t), dest)?;
    fdmount::attach(&mnt, &target).at(mount_step(t), dest)?;
    Ok(mnt)
}

/// Only the owner of the network namespace may mount sysfs: in a user namespace without
/// a network namespace of its own (`spec --rootless`, rootless podman with the host's
/// network) the host's /sys is bound instead, recursively and with the mount's flags, as
/// runc's rootless spec asks and newer runc does by itself.
fn sysfs_or_bind(root: &Root, m: &MountPlan) -> Result<OwnedFd, RootfsError> {
    match filesystem(root, m, "sysfs") {
        Err(e) if e.errno == Errno::EPERM => {
            let mut b = m.clone();
            b.kind = MountKind::Bind;
            b.source = Some(PathBuf::from("/sys"));
            b.options.recursive_bind = true;
            bind(root, &b, None)
        }
        r => r,
    }
}

fn source_of(m: &MountPlan, t: &str) -> String {
    m.source
        .as_ref()
        .map_or_else(|| t.to_string(), |s| s.to_string_lossy().into_owned())
}

/// A tmpfs, as runc makes it: over a directory that already existed, its root takes that
/// directory's mode unless `mode=` is given (an image's 0755 /run stays 0755, /tmp keeps
/// 1777), and with
/// `tmpcopyup` it starts with a copy of what it covers. It is filled, chmod-ed and made
/// read-only (`ro`) while still detached, then attached where the destination resolved.
fn tmpfs(root: &Root, m: &MountPlan) -> Result<OwnedFd, RootfsError> {
    use std::os::fd::AsFd;
    let dest = m.destination.as_path();
    let existing = root.open_in(dest, libc::O_PATH).ok().filter(|fd| {
        nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
    });
    let existing_mode = existing
        .as_ref()
        .and_then(|fd| nix::sys::stat::fstat(fd).ok())
        .map(|st| st.st_mode & 0o7777);
    let target = match existing {
        Some(fd) => fd,
        None => ensure_for(root, dest, true)?,
    };
    // tmpcopyup: the shadowed directory, reopened readable from the fd we resolved.
    let lower = if m.options.tmpcopyup {
        let dir = nix::fcntl::open(
            &fd_path(&target),
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        );
        Some(dir.at("open directory to copy up", dest)?)
    } else {
        None
    };
    let mnt = fdmount::new_fs(
        "tmpfs",
        &source_of(m, "tmpfs"),
        m.options.flags,
        &m.options.data,
        false,
    )
    .at("mount tmpfs at", dest)?;
    let upper =
        fdmount::open_root(&mnt, libc::O_RDONLY | libc::O_DIRECTORY).at("open new tmpfs", dest)?;
    if let Some(lower) = lower {
        super::copyup::copy_tree(lower.as_fd(), upper.as_fd()).map_err(|e| RootfsError {
            step: e.step,
            path: dest.join(&e.rel),
            errno: e.errno,
            mount: None,
        })?;
    }
    // A `mode=` option wins over the covered directory's mode, as in runc 1.1.8 and
    // later (runc#3912): Docker's `--tmpfs /run:mode=1777` over an image's 0755 /run
    // asks for 1777. runc 1.1.5 always took the directory's mode.
    if let Some(mode) = existing_mode.filter(|_| !has_mode_option(&m.options.data)) {
        nix::sys::stat::fchmod(&upper, nix::sys::stat::Mode::from_bits_truncate(mode))
            .at("set mode of tmpfs at", dest)?;
    }
    // A read-only /dev is made read-only only once its nodes, links and console are in
    // place (`super::dev_readonly`), as runc does in finalizeRootfs.
    if m.options.flags.contains(MsFlags::MS_RDONLY) && !is_dev(dest) {
        fdmount::setattr(&mnt, crate::spec::mountopts::attr::RDONLY, 0, 0, false)
            .at("remount read-only", dest)?;
    }
    fdmount::attach(&mnt, &target).at("mount tmpfs at", dest)?;
    Ok(mnt)
}

fn has_mode_option(data: &[String]) -> bool {
    data.iter()
        .flat_map(|d| d.split(','))
        .any(|o| o.starts_with("mode="))
}

pub(super) fn is_dev(dest: &Path) -> bool {
    dest == Path::new("/dev")
}

fn mount_step(t: &str) -> &'static str {
    match t {
        "proc" => "mount proc at",
        "sysfs" => "mount sysfs at",
        "tmpfs" => "mount tmpfs at",
        "devpts" => "mount devpts at",
        "mqueue" => "mount mqueue at",
        "overlay" => "mount overlay at",
        _ => "mount filesystem at",
    }
}

/// procfs or sysfs on a symlink in the image would land wherever it points (inside the
/// root, but over something else), and on a file it fails obscurely: refused, as runc does.
fn refuse_odd_proc_sys_dest(root: &Root, dest: &Path, t: &str) -> Result<(), RootfsError> {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Ok(());
    };
    let dir = match root.open_in(parent, libc::O_PATH | libc::O_DIRECTORY) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.at("open parent of mount destination", dest)?,
    };
    match nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => Ok(()),
        Ok(st) => {
            let step = match (t, st.st_mode & libc::S_IFMT == libc::S_IFLNK) {
                ("proc", true) => "refusing to mount proc on a symlink at",
                ("proc", false) => "refusing to mount proc on a non-directory at",
                (_, true) => "refusing to mount sysfs on a symlink at",
                (_, false) => "refusing to mount sysfs on a non-directory at",
            };
            Err(Errno::ENOTDIR).at(step, dest)
        }
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).at("inspect mount destination", dest),
    }
}

/// A bind mount as a detached clone of the source, its flags set before it is attached
/// onto the target fd: nothing is looked up by name again. Returns the attached tree.
fn bind(root: &Root, m: &MountPlan, idmapped: Option<&OwnedFd>) -> Result<OwnedFd, RootfsError> {
    let dest = m.destination.as_path();
    let src_path = m.source.as_deref().unwrap_or(Path::new(""));
    let src = nix::fcntl::open(
        src_path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .at("open bind source", src_path)?;
    let st = nix::sys::stat::fstat(&src).at("stat bind source", src_path)?;
    let target = ensure_for(root, dest, st.st_mode & libc::S_IFMT == libc::S_IFDIR)?;
    let tree = match idmapped {
        // The detached, idmapped tree the parent made: attached itself (our own fd to it).
        Some(t) => t
            .try_clone()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF))),
        None => fdmount::clone_tree(&src, m.options.recursive_bind),
    }
    .at("clone bind source", src_path)?;
    let wanted = m.options.flags & REMOUNT_FLAGS;
    if !wanted.is_empty() {
        let (set, clr) = fdmount::remount_attrs(wanted, m.options.cleared & REMOUNT_FLAGS);
        match fdmount::setattr(&tree, set, clr, 0, false) {
            // A user namespace locks the source's flags. Only clearing one fails (setting
            // nosuid and the like never does): keep the source's read-only and atime
            // flags and try again, as runc 1.1.5 retries with ro and runc 1.2 with all
            // locked flags.
            Err(Errno::EPERM) => {
                let (set, clr) = keep_locked(&tree, set, clr);
                fdmount::setattr(&tree, set, clr, 0, false)
            }
            r => r,
        }
        .at("set bind mount options (mount_setattr) for", dest)?;
    }
    fdmount::attach(&tree, &target).at("bind-mount onto", dest)?;
    Ok(tree)
}

/// mount_setattr bits that leave the flags a user namespace may have locked on `tree`
/// as they are: read-only and the atime mode are never cleared or changed.
fn keep_locked(tree: &OwnedFd, set: u64, clr: u64) -> (u64, u64) {
    use crate::spec::mountopts::attr;
    use nix::sys::statvfs::FsFlags as F;
    let Ok(st) = nix::sys::statvfs::fstatvfs(tree) else {
        return (set, clr);
    };
    let f = st.flags();
    let (mut set, mut clr) = (set, clr);
    if f.contains(F::ST_RDONLY) {
        set |= attr::RDONLY;
        clr &= !attr::RDONLY;
    }
    // Leaving the atime mask out of `clr` leaves the atime mode alone.
    set &= !(attr::ATIME_MASK | attr::NODIRATIME);
    clr &= !(attr::ATIME_MASK | attr::NODIRATIME);
    (set, clr)
}

/// Propagation changes and recursive attributes, on the fd of the mount we attached.
fn after_mount_fd(mnt: &impl AsRawFd, m: &MountPlan) -> Result<(), RootfsError> {
    let dest = m.destination.as_path();
    let o = &m.options;
    for p in &o.propagation {
        mount(NONE, &fd_path(mnt), NONE, *p, NONE).at("set propagation of", dest)?;
    }
    if o.attr_set != 0 || o.attr_clr != 0 {
        fdmount::setattr(mnt, o.attr_set, o.attr_clr, 0, true)
            .at("set recursive mount attributes on", dest)?;
    }
    Ok(())
}

/// A `cgroup` mount. On a v2-only host it is cgroup2. With v1 hierarchies (v1 or hybrid) it
/// is a tmpfs holding one mount per hierarchy, as the host has them. Inside a cgroup
/// namespace each is a fresh cgroupfs, whose root is the container's cgroup. Otherwise, as
/// runc does, the container's own cgroup directory is bind-mounted there: a fresh mount
/// would show (and, read-write, hand over) the host's whole hierarchy.
fn cgroup(
    root: &Root,
    m: &MountPlan,
    ns: NsView,
    cgroups: &crate::cgroups::Cgroups,
) -> Result<OwnedFd, RootfsError> {
    let dest = m.destination.as_path();
    // The parent read these before cloning us: no second read of mountinfo.
    let hs = &cgroups.hierarchies;
    let flags = m.options.flags & !MsFlags::MS_REMOUNT;
    let target = ensure_for(root, dest, true)?;
    if hs.iter().all(|h| h.v2) || matches!(&m.kind, MountKind::Fs(t) if t == "cgroup2") {
        let mnt = match fdmount::new_fs("cgroup2", "cgroup2", flags, &[], true) {
            // A user namespace without a cgroup namespace of its own (rootless): the
            // container's cgroup is bound, or the host's tree when it has none, as runc.
            Err(Errno::EPERM) if ns.userns => cgroup2_bind(hs, flags, cgroups, dest)?,
            r => r.at("mount cgroup2 at", dest)?,
        };
        fdmount::attach(&mnt, &target).at("mount cgroup2 at", dest)?;
        return Ok(mnt);
    }
    let mode = ["mode=755".to_string()];
    let mnt = fdmount::new_fs("tmpfs", "tmpfs", flags & !MsFlags::MS_RDONLY, &mode, false)
        .at("mount cgroup tmpfs at", dest)?;
    // Attached first, so the hierarchies can be attached below it, each onto an fd made
    // relative to this mount's own root.
    fdmount::attach(&mnt, &target).at("mount cgroup tmpfs at", dest)?;
    let dir = fdmount::open_root(&mnt, libc::O_PATH | libc::O_DIRECTORY).at("open", dest)?;
    // Only the v1 hierarchies, as runc 1.1.5: on a hybrid host the cgroup2 `unified`
    // hierarchy is not mounted into the container (systemd inside would find a v2 tree
    // it cannot use, and runc-based images do not expect it).
    for h in hs.iter().filter(|h| !h.v2) {
        let name = h.mount.file_name().map(PathBuf::from).unwrap_or_default();
        let sub = dest.join(&name);
        match nix::sys::stat::mkdirat(
            &dir,
            name.as_path(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).at("create mount destination", &sub),
        }
        let t = nix::fcntl::openat(
            &dir,
            name.as_path(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .at("open", &sub)?;
        hierarchy(h, &t, &sub, flags, ns, cgroups)?;
        // Co-mounted controllers ("cpu,cpuacct") get one symlink per controller.
        let n = name.to_string_lossy();
        if n.contains(',') {
            for part in n.split(',') {
                match nix::unistd::symlinkat(n.as_ref(), &dir, part) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e).at("symlink cgroup controller", &dest.join(part)),
                }
            }
        }
    }
    // The tmpfs itself stays read-write with `ro`, as with runc: only the hierarchies are
    // read-only. It is the container's own tmpfs; nothing written there reaches the host.
    Ok(mnt)
}

/// One v1 hierarchy under the cgroup tmpfs, onto the directory fd `t`. In a cgroup
/// namespace a fresh cgroupfs, as runc (also in a user namespace, where the kernel allows
/// an existing v1 hierarchy to be mounted; should it refuse, the bind below is used).
/// Otherwise the container's own cgroup directory is bind-mounted.
fn hierarchy(
    h: &crate::cgroups::Hierarchy,
    t: &OwnedFd,
    sub: &Path,
    flags: MsFlags,
    ns: NsView,
    cgroups: &crate::cgroups::Cgroups,
) -> Result<(), RootfsError> {
    let fresh = if ns.cgroupns {
        match fresh_hierarchy(h, flags) {
            Ok(m) => Some(m),
            Err(Errno::EPERM) if ns.userns => None,
            Err(e) => return Err(e).at("mount cgroup at", sub),
        }
    } else {
        None
    };
    let mnt = match fresh {
        Some(m) => m,
        None => match bind_own_cgroup(h, sub, flags, cgroups)? {
            Some(tree) => tree,
            None => return Ok(()),
        },
    };
    fdmount::attach(&mnt, t).at("mount cgroup at", sub)
}

fn cgroup2_bind(
    hs: &[crate::cgroups::Hierarchy],
    flags: MsFlags,
    cgroups: &crate::cgroups::Cgroups,
    dest: &Path,
) -> Result<OwnedFd, RootfsError> {
    let Some(h) = hs.iter().find(|h| h.v2) else {
        return Err(Errno::ENOENT).at("find the host's cgroup2 mount for", dest);
    };
    if let Some(tree) = bind_own_cgroup(h, dest, flags, cgroups)? {
        return Ok(tree);
    }
    let src = nix::fcntl::open(
        h.mount.as_path(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .at("open cgroup2 mount", &h.mount)?;
    let tree = fdmount::clone_tree(&src, false).at("bind cgroup2 at", dest)?;
    let (set, clr) = fdmount::remount_attrs(flags & REMOUNT_FLAGS, MsFlags::empty());
    fdmount::setattr(&tree, set, clr, 0, false).at("remount cgroup2 bind at", dest)?;
    Ok(tree)
}

fn fresh_hierarchy(h: &crate::cgroups::Hierarchy, flags: MsFlags) -> Result<OwnedFd, Errno> {
    if h.v2 {
        return fdmount::new_fs("cgroup2", "cgroup2", flags, &[], true);
    }
    // runc names the name=systemd hierarchy's source "systemd": mountinfo as tools in
    // runc containers have always seen it.
    let named_systemd = h.controllers.iter().any(|c| c == "name=systemd");
    let source = if named_systemd { "systemd" } else { "cgroup" };
    fdmount::new_fs("cgroup", source, flags, &h.controllers, true)
}

/// A detached clone of the container's own cgroup directory in hierarchy `h` (none when
/// it joined none there), with the mount's flags.
fn bind_own_cgroup(
    h: &crate::cgroups::Hierarchy,
    sub: &Path,
    flags: MsFlags,
    cgroups: &crate::cgroups::Cgroups,
) -> Result<Option<OwnedFd>, RootfsError> {
    let Some(own) = cgroups.joined.iter().find(|d| d.starts_with(&h.mount)) else {
        return Ok(None);
    };
    let src = nix::fcntl::open(
        own.as_path(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .at("open cgroup", own)?;
    let tree = fdmount::clone_tree(&src, true).at("bind cgroup at", sub)?;
    let wanted = flags & REMOUNT_FLAGS;
    if !wanted.is_empty() {
        let (set, clr) = fdmount::remount_attrs(wanted, MsFlags::empty());
        fdmount::setattr(&tree, set, clr, 0, false)
            .at("remount cgroup bind with its options at", sub)?;
    }
    Ok(Some(tree))
}
