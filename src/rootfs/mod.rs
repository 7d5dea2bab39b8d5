//! The container's filesystem view, in the order the kernel needs it:
//! propagation (rootfsPropagation first) → rootfs bind → config mounts → devices →
//! pivot_root → /dev links → console (init) → read-only /dev, read-only paths, masked
//! paths → read-only root: runc's order, so mountinfo lists the mounts as runc's does.

mod copyup;
mod devices;
mod fdmount;
pub mod idmap;
mod mounts;
pub mod paths;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::spec::Plan;
pub use devices::setup_console;
use paths::{Kind, Root, fd_path};

#[derive(Debug, thiserror::Error)]
#[error("{}{step} {}: {errno}", mount.map(|i| format!("mounts[{i}]: ")).unwrap_or_default(), path.display())]
pub struct RootfsError {
    pub step: &'static str,
    pub path: PathBuf,
    pub errno: Errno,
    /// Index in config.json `mounts` when the error is about one: the message names it.
    pub mount: Option<usize>,
}

pub(crate) trait At<T> {
    fn at(self, step: &'static str, path: &Path) -> Result<T, RootfsError>;
}

impl<T> At<T> for Result<T, Errno> {
    fn at(self, step: &'static str, path: &Path) -> Result<T, RootfsError> {
        self.map_err(|errno| RootfsError {
            step,
            path: path.to_path_buf(),
            errno,
            mount: None,
        })
    }
}

const NONE: Option<&str> = None;

/// Everything before pivot_root; runs in the container's fresh mount namespace.
pub fn prepare(
    plan: &Plan,
    cgroups: &crate::cgroups::Cgroups,
    idmapped: &[(usize, std::os::fd::OwnedFd)],
) -> Result<Root, RootfsError> {
    // The first propagation change, as runc's prepareRoot: rootfsPropagation, or rslave.
    // It decides whether the container's copies of the host's mounts stay peers of the
    // host's: with `rshared` (containerd's choice for Kubernetes Bidirectional volumes) a
    // bind of a shared host directory joins its peer group, so what a CSI driver mounts
    // under it inside the container reaches the host and the other pods. Making `/`
    // rslave first would turn those copies into slaves for good: a later `rshared` only
    // makes a new peer group the host never hears from. berth's own mounts still stay
    // inside: the rootfs's parent is made private before the rootfs bind (so the bind and
    // everything mounted under it are private), and the old root is made rslave before
    // it is detached.
    let first = plan
        .rootfs_propagation
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(NONE, "/", NONE, first, NONE).at("set propagation of", Path::new("/"))?;
    make_parent_private(&plan.rootfs)?;
    mount(
        Some(&plan.rootfs),
        &plan.rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .at("bind-mount rootfs", &plan.rootfs)?;
    let root = Root::open(&plan.rootfs).at("open rootfs", &plan.rootfs)?;
    // Also root of a user namespace the runtime was started in (rootless podman): mknod,
    // sysfs and locked flags behave there as in one of the container's own.
    let userns = plan.namespaces.has_user() || crate::rootless::in_user_ns();
    let ns = mounts::NsView {
        userns,
        cgroupns: plan.namespaces.has(nix::sched::CloneFlags::CLONE_NEWCGROUP),
    };
    for m in &plan.mounts {
        let tree = idmapped
            .iter()
            .find(|(i, _)| *i == m.index)
            .map(|(_, fd)| fd);
        mounts::mount_one(&root, m, ns, cgroups, tree).map_err(|mut e| {
            e.mount = Some(m.index);
            e
        })?;
        // Between two mounts: the container's mount namespace is half made.
        #[cfg(feature = "failpoints")]
        if let Some(e) = crate::failpoints::eval("init::mount") {
            return Err(RootfsError {
                step: "after mounting",
                path: m.destination.join(e.to_string()),
                errno: Errno::EIO,
                mount: Some(m.index),
            });
        }
    }
    let dev_is_bind = plan
        .mounts
        .iter()
        .any(|m| m.destination == Path::new("/dev") && m.kind == crate::spec::MountKind::Bind);
    if !dev_is_bind {
        devices::default_devices(&root, userns)?;
    }
    devices::create_devices(&root, &plan.devices, userns)?;
    Ok(root)
}

/// pivot_root requires the new root's parent mount not to be shared, and a bind needs a
/// bindable source.
fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best: Option<(PathBuf, bool)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 7 {
            continue;
        }
        let mp = PathBuf::from(f[4].replace("\\040", " "));
        if rootfs.starts_with(&mp)
            && best
                .as_ref()
                .is_none_or(|(b, _)| mp.as_os_str().len() >= b.as_os_str().len())
        {
            // Shared: pivot_root refuses it, and the rootfs bind would propagate out.
            // Unbindable (rootfsPropagation runbindable): the bind itself fails (EINVAL).
            let shared = f[6..]
                .iter()
                .take_while(|x| **x != "-")
                .any(|x| x.starts_with("shared:") || *x == "unbindable");
            best = Some((mp, shared));
        }
    }
    if let Some((mp, true)) = best {
        mount(NONE, &mp, NONE, MsFlags::MS_PRIVATE, NONE).at("make private", &mp)?;
    }
    Ok(())
}

/// Makes the rootfs the process's `/`. With `no_pivot` (for ramfs roots) the rootfs is
/// moved over `/` and chrooted into, which leaves the old root reachable to CAP_SYS_CHROOT.
pub fn pivot(root: Root, no_pivot: bool) -> Result<(), RootfsError> {
    let p = root.path.clone();
    nix::unistd::fchdir(&root.fd).at("chdir to rootfs", &p)?;
    if no_pivot {
        mount(Some(&p), "/", NONE, MsFlags::MS_MOVE, NONE).at("move rootfs to /", &p)?;
        nix::unistd::chroot(".").at("chroot", &p)?;
    } else {
        // pivot_root(".", ".") stacks the old root on top of the new one at "/"; detaching
        // it leaves only the new root, with no directory needed for the old one. The old
        // root is addressed through an fd: "." would name the new root for mount(2) and
        // turn the container's own shared mounts into slaves.
        let old = Root::open(Path::new("/")).at("open old root", Path::new("/"))?;
        nix::unistd::pivot_root(".", ".").at("pivot_root", &p)?;
        nix::unistd::fchdir(&old.fd).at("chdir to old root", Path::new("/"))?;
        mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
            .at("make old root slave", Path::new("/"))?;
        umount2(".", MntFlags::MNT_DETACH).at("detach old root", Path::new("/"))?;
    }
    nix::unistd::chdir("/").at("chdir", Path::new("/"))?;
    drop(root);
    Ok(())
}

/// Without a mount namespace of berth's own: chroot into the rootfs as the image has it,
/// changing no mount (pivot_root and unmounting the old root would act on a namespace
/// berth did not create). The old root stays reachable to CAP_SYS_CHROOT, as with runc.
pub fn chroot_only(rootfs: &Path) -> Result<(), RootfsError> {
    let root = Root::open(rootfs).at("open rootfs", rootfs)?;
    nix::unistd::fchdir(&root.fd).at("chdir to rootfs", rootfs)?;
    nix::unistd::chroot(".").at("chroot", rootfs)?;
    nix::unistd::chdir("/").at("chdir", Path::new("/"))
}

/// After pivot_root, with `/` being the container's root: /dev links, and a shared or
/// unbindable rootfsPropagation applied again to the new `/` itself, as newer runc does
/// (1.2+): the container's root then shows what the config asked for (runtime-spec:
/// rootfsPropagation sets the rootfs mount's propagation). runc 1.1.5 leaves it private.
/// Slave and private need nothing more: the first change in `prepare` made them so.
pub fn finalize(plan: &Plan) -> Result<(), RootfsError> {
    let root = Root::open(Path::new("/")).at("open", Path::new("/"))?;
    devices::dev_links(&root)?;
    if let Some(prop) = plan
        .rootfs_propagation
        .filter(|p| p.intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE))
    {
        mount(NONE, "/", NONE, prop, NONE).at("set rootfsPropagation on", Path::new("/"))?;
    }
    Ok(())
}

/// The last filesystem step (after sysctls, which need /proc/sys writable): read-only
/// paths, then masked paths (runc's order, so mountinfo lists them as with runc), then the
/// read-only root.
pub fn protect(plan: &Plan) -> Result<(), RootfsError> {
    let root = Root::open(Path::new("/")).at("open", Path::new("/"))?;
    dev_readonly(plan, &root)?;
    for p in &plan.readonly_paths {
        readonly(&root, p)?;
    }
    let mut mask_dir = None;
    for p in &plan.masked_paths {
        mask(&root, p, &mut mask_dir)?;
    }
    if plan.readonly_root {
        remount_ro(Path::new("/"), MsFlags::empty())?;
    }
    Ok(())
}

/// A `/dev` tmpfs asked to be `ro` was mounted read-write so its nodes, links and the
/// console could be made; now it becomes read-only (the mount alone, as runc: /dev/pts,
/// /dev/shm and /dev/mqueue keep their own flags).
fn dev_readonly(plan: &Plan, root: &Root) -> Result<(), RootfsError> {
    let ro_dev = plan.mounts.iter().any(|m| {
        mounts::is_dev(&m.destination)
            && m.kind != crate::spec::MountKind::Bind
            && m.options.flags.contains(MsFlags::MS_RDONLY)
    });
    if !ro_dev {
        return Ok(());
    }
    let dev = Path::new("/dev");
    let fd = root
        .open_in(dev, libc::O_PATH | libc::O_DIRECTORY)
        .at("open", dev)?;
    fdmount::setattr(&fd, crate::spec::mountopts::attr::RDONLY, 0, 0, false)
        .at("remount read-only", dev)
}

/// maskedPaths: /dev/null over files, an empty read-only tmpfs over directories. /dev/null
/// is checked to be the real character device (a symlink or other file there is refused).
/// All directories share one tmpfs (`mask_dir`, made at the first): newer runc (1.3.x and
/// later, runc#5275) does the same so that Kubernetes' per-CPU sysfs masks do not cost a
/// superblock each; mountinfo shows the same plain `ro` tmpfs line per path as runc 1.1.5.
fn mask(root: &Root, p: &Path, mask_dir: &mut Option<OwnedFd>) -> Result<(), RootfsError> {
    let target = match root.open_in(p, libc::O_PATH) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.at("open masked path", p)?,
    };
    let st = nix::sys::stat::fstat(&target).at("stat masked path", p)?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let mnt = match mask_dir {
            Some(first) => fdmount::clone_tree(first, false).at("clone mask tmpfs for", p)?,
            None => fdmount::new_fs("tmpfs", "tmpfs", MsFlags::MS_RDONLY, &[], true)
                .at("mount mask tmpfs at", p)?,
        };
        fdmount::attach(&mnt, &target).at("mask directory", p)?;
        // Attached, the first tmpfs can be cloned (a detached mount cannot, before 6.15).
        mask_dir.get_or_insert(mnt);
        return Ok(());
    }
    let null = root
        .open_in(Path::new("/dev/null"), libc::O_PATH | libc::O_NOFOLLOW)
        .at("open /dev/null to mask", p)?;
    let ns = nix::sys::stat::fstat(&null).at("stat", Path::new("/dev/null"))?;
    if ns.st_mode & libc::S_IFMT != libc::S_IFCHR || ns.st_rdev != libc::makedev(1, 3) {
        return Err(Errno::EPERM).at("/dev/null is not the null device; refusing to mask", p);
    }
    mount(
        Some(&fd_path(&null)),
        &fd_path(&target),
        NONE,
        MsFlags::MS_BIND,
        NONE,
    )
    .at("mask file", p)
}

/// readonlyPaths: a recursive clone of what is there, made read-only while detached and
/// attached back over it: the path is resolved once, inside the root.
fn readonly(root: &Root, p: &Path) -> Result<(), RootfsError> {
    let target = match root.open_in(p, libc::O_PATH) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.at("open read-only path", p)?,
    };
    let tree = fdmount::clone_tree(&target, true).at("clone read-only path", p)?;
    fdmount::setattr(&tree, crate::spec::mountopts::attr::RDONLY, 0, 0, true)
        .at("make read-only", p)?;
    fdmount::attach(&tree, &target).at("bind read-only path", p)
}

/// Bind-remounts read-only, keeping the flags the kernel locks (nosuid, nodev, noexec and
/// atime flags must be repeated on remount inside a user namespace).
pub(crate) fn remount_ro(p: &Path, extra: MsFlags) -> Result<(), RootfsError> {
    let locked = locked_flags(p);
    mount(
        NONE,
        p,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked | extra,
        NONE,
    )
    .at("remount read-only", p)
}

pub(crate) fn locked_flags(p: &Path) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(p) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags as F;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (s, m) in [
        (F::ST_NOSUID, MsFlags::MS_NOSUID),
        (F::ST_NODEV, MsFlags::MS_NODEV),
        (F::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (F::ST_NOATIME, MsFlags::MS_NOATIME),
        (F::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (F::ST_RELATIME, MsFlags::MS_RELATIME),
        (F::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    out
}

/// Resolves a destination and reports whether the source of a bind is a directory.
pub(crate) fn ensure_for(
    root: &Root,
    dest: &Path,
    dir: bool,
) -> Result<std::os::fd::OwnedFd, RootfsError> {
    root.ensure(dest, if dir { Kind::Dir } else { Kind::File })
        .at("create mount destination", dest)
}
