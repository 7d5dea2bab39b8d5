//! One config.json mount, done by fd inside the root.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

use super::paths::{Root, fd_path};
use super::{At, NONE, RootfsError, ensure_for, fdmount, locked_flags};
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
    let dest = m.destination.as_path();
    match &m.kind {
        MountKind::Bind => {
            let tree = bind(root, m, idmapped)?;
            return after_mount_fd(&tree, m);
        }
        MountKind::Fs(t) if t == "cgroup" || t == "cgroup2" => cgroup(root, m, ns, cgroups)?,
        MountKind::Fs(t) if t == "tmpfs" => tmpfs(root, m)?,
        MountKind::Fs(t) => {
            if t == "proc" || t == "sysfs" {
                refuse_odd_proc_sys_dest(root, dest, t)?;
            }
            let target = ensure_for(root, dest, true)?;
            let source = m.source.clone().unwrap_or_else(|| PathBuf::from(t));
            let data = m.options.data_string();
            let flags = m.options.flags & !MsFlags::MS_REMOUNT;
            mount(
                Some(&source),
                &fd_path(&target),
                Some(t.as_str()),
                flags,
                (!data.is_empty()).then_some(data.as_str()),
            )
            .at(mount_step(t), dest)?;
        }
    }
    after_mount(root, m)
}

/// A tmpfs, as runc makes it: over a directory that already existed, its root takes that
/// directory's mode (an image's 0755 /run stays 0755, /tmp keeps 1777), and with
/// `tmpcopyup` it starts with a copy of what it covers. It is mounted read-write and made
/// read-only (`ro`) only after both.
fn tmpfs(root: &Root, m: &MountPlan) -> Result<(), RootfsError> {
    use std::os::fd::AsFd;
    let dest = m.destination.as_path();
    let existing_mode = root
        .open_in(dest, libc::O_PATH)
        .ok()
        .and_then(|fd| nix::sys::stat::fstat(&fd).ok())
        .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .map(|st| st.st_mode & 0o7777);
    let target = ensure_for(root, dest, true)?;
    // tmpcopyup: the shadowed directory, opened before the tmpfs covers it.
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
    let source = m.source.clone().unwrap_or_else(|| PathBuf::from("tmpfs"));
    let data = m.options.data_string();
    let flags = m.options.flags & !(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY);
    mount(
        Some(&source),
        &fd_path(&target),
        Some("tmpfs"),
        flags,
        (!data.is_empty()).then_some(data.as_str()),
    )
    .at("mount tmpfs at", dest)?;
    let upper = root
        .open_in(dest, libc::O_RDONLY | libc::O_DIRECTORY)
        .at("open new tmpfs", dest)?;
    if let Some(lower) = lower {
        super::copyup::copy_tree(lower.as_fd(), upper.as_fd()).map_err(|e| RootfsError {
            step: e.step,
            path: dest.join(&e.rel),
            errno: e.errno,
            mount: None,
        })?;
    }
    if let Some(mode) = existing_mode {
        nix::sys::stat::fchmod(&upper, nix::sys::stat::Mode::from_bits_truncate(mode))
            .at("set mode of tmpfs at", dest)?;
    }
    if m.options.flags.contains(MsFlags::MS_RDONLY) {
        super::remount_ro(&fd_path(&upper), MsFlags::empty()).map_err(|e| RootfsError {
            path: dest.to_path_buf(),
            ..e
        })?;
    }
    Ok(())
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
fn bind(
    root: &Root,
    m: &MountPlan,
    idmapped: Option<&OwnedFd>,
) -> Result<OwnedFd, RootfsError> {
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
        fdmount::setattr(&tree, set, clr, 0, false)
            .at("set bind mount options (mount_setattr) for", dest)?;
    }
    fdmount::attach(&tree, &target).at("bind-mount onto", dest)?;
    Ok(tree)
}

/// Propagation changes and recursive attributes, applied to the mount now at `dest`.
fn after_mount(root: &Root, m: &MountPlan) -> Result<(), RootfsError> {
    let o = &m.options;
    if o.propagation.is_empty() && o.attr_set == 0 && o.attr_clr == 0 {
        return Ok(());
    }
    let dest = m.destination.as_path();
    let target = root.open_in(dest, libc::O_PATH).at("reopen mount", dest)?;
    after_mount_fd(&target, m)
}

/// The same, on an fd naming the mount itself (a tree we attached).
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
/// namespace (and no user namespace) each is a fresh cgroupfs, whose root is the
/// container's cgroup. Otherwise, as runc does, the container's own cgroup directory is
/// bind-mounted there: a fresh mount would show (and, read-write, hand over) the host's
/// whole hierarchy, and a user namespace cannot mount v1 cgroupfs at all.
fn cgroup(
    root: &Root,
    m: &MountPlan,
    ns: NsView,
    cgroups: &crate::cgroups::Cgroups,
) -> Result<(), RootfsError> {
    let dest = m.destination.as_path();
    // The parent read these before cloning us: no second read of mountinfo.
    let hs = &cgroups.hierarchies;
    let flags = m.options.flags & !MsFlags::MS_REMOUNT;
    let target = ensure_for(root, dest, true)?;
    let v1: Vec<_> = hs.iter().filter(|h| !h.v2).collect();
    if v1.is_empty() || matches!(&m.kind, MountKind::Fs(t) if t == "cgroup2") {
        return mount(
            Some("cgroup2"),
            &fd_path(&target),
            Some("cgroup2"),
            flags,
            NONE,
        )
        .at("mount cgroup2 at", dest);
    }
    mount(
        Some("tmpfs"),
        &fd_path(&target),
        Some("tmpfs"),
        flags & !MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .at("mount cgroup tmpfs at", dest)?;
    for h in hs {
        let name = h.mount.file_name().map(PathBuf::from).unwrap_or_default();
        let sub = dest.join(&name);
        let t = ensure_for(root, &sub, true)?;
        let own = cgroups.joined.iter().find(|d| d.starts_with(&h.mount));
        if ns.userns || !ns.cgroupns {
            if let Some(own) = own {
                mount(
                    Some(own),
                    &fd_path(&t),
                    NONE,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    NONE,
                )
                .at("bind cgroup at", &sub)?;
                let wanted = flags & REMOUNT_FLAGS;
                if !wanted.is_empty() {
                    let t = root.open_in(&sub, libc::O_PATH).at("reopen", &sub)?;
                    let fp = fd_path(&t);
                    let keep = locked_flags(&fp) & !MsFlags::MS_RDONLY;
                    mount(
                        NONE,
                        &fp,
                        NONE,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | wanted | keep,
                        NONE,
                    )
                    .at("remount cgroup bind with its options at", &sub)?;
                }
            }
        } else if h.v2 {
            mount(Some("cgroup2"), &fd_path(&t), Some("cgroup2"), flags, NONE)
                .at("mount cgroup2 at", &sub)?;
        } else {
            let opts = h.controllers.join(",");
            mount(
                Some("cgroup"),
                &fd_path(&t),
                Some("cgroup"),
                flags,
                Some(opts.as_str()),
            )
            .at("mount cgroup at", &sub)?;
        }
        // Co-mounted controllers ("cpu,cpuacct") get one symlink per controller.
        let n = name.to_string_lossy();
        if n.contains(',') {
            for part in n.split(',') {
                let link = root.open_in(dest, libc::O_PATH).at("open", dest)?;
                match nix::unistd::symlinkat(n.as_ref(), &link, part) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e).at("symlink cgroup controller", &dest.join(part)),
                }
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let t = root.open_in(dest, libc::O_PATH).at("reopen", dest)?;
        mount(
            NONE,
            &fd_path(&t),
            NONE,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags,
            NONE,
        )
        .at("remount cgroup tmpfs read-only at", dest)?;
    }
    Ok(())
}
