//! /dev: default device nodes, linux.devices, the standard links, and the console.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag};

use super::paths::{Kind, Root, fd_path};
use super::{At, NONE, RootfsError};
use crate::spec::DevicePlan;

/// runc's order (specconv's AllowedDevices): in a user namespace each is a bind mount, and
/// mountinfo lists them in this order.
const DEFAULT: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("random", 1, 8),
    ("full", 1, 7),
    ("tty", 5, 0),
    ("zero", 1, 5),
    ("urandom", 1, 9),
];

pub fn default_devices(root: &Root, userns: bool) -> Result<(), RootfsError> {
    for (name, major, minor) in DEFAULT {
        let d = DevicePlan {
            path: PathBuf::from("/dev").join(name),
            kind: libc::S_IFCHR,
            major: *major,
            minor: *minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        };
        match create(root, &d, userns, Existing::Replace) {
            // The config mounted something there itself: its choice stands (masking still
            // checks that /dev/null is the null device before trusting it).
            Err(RootfsError {
                errno: Errno::EBUSY,
                ..
            }) => {}
            r => r?,
        }
    }
    Ok(())
}

pub fn create_devices(
    root: &Root,
    devices: &[DevicePlan],
    userns: bool,
) -> Result<(), RootfsError> {
    for d in devices {
        create(root, d, userns, Existing::MustMatch)?;
    }
    Ok(())
}

/// What to do with a file already at a device's path.
#[derive(Clone, Copy, PartialEq)]
enum Existing {
    /// Default devices: whatever the image put there gives way to the real node.
    Replace,
    /// linux.devices: config-linux.md says a file that does not match the requested
    /// device MUST be an error; the same device is recreated with the configured owner/mode.
    MustMatch,
}

/// mknod, or inside a user namespace (where mknod is refused) a bind mount of the host's node.
fn create(
    root: &Root,
    d: &DevicePlan,
    userns: bool,
    existing: Existing,
) -> Result<(), RootfsError> {
    let p = d.path.as_path();
    if userns {
        let target = root
            .ensure(p, Kind::File)
            .at("create device bind target", p)?;
        return mount(Some(p), &fd_path(&target), NONE, MsFlags::MS_BIND, NONE)
            .at("bind-mount host device", p);
    }
    let parent = p.parent().unwrap_or(Path::new("/"));
    let name = p.file_name().ok_or(Errno::EINVAL).at("device path", p)?;
    let dir = root
        .mkdir_all(parent)
        .at("create device directory", parent)?;
    if existing == Existing::MustMatch {
        let rdev = libc::makedev(d.major as u32, d.minor as u32);
        match nix::sys::stat::fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if st.st_mode & libc::S_IFMT != d.kind || st.st_rdev != rdev => {
                return Err(Errno::EEXIST).at("linux.devices: another file is at", p);
            }
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).at("inspect existing device", p),
        }
    }
    match nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        // A mount of the very device (checked above) that the config put there: keep it.
        Err(Errno::EBUSY) if existing == Existing::MustMatch => return Ok(()),
        Err(e) => return Err(e).at("replace existing device", p),
    }
    let kind = SFlag::from_bits_truncate(d.kind);
    let mode = Mode::from_bits_truncate(d.mode);
    nix::sys::stat::mknodat(
        &dir,
        name,
        kind,
        mode,
        libc::makedev(d.major as u32, d.minor as u32),
    )
    .at("mknod", p)?;
    nix::unistd::fchownat(
        &dir,
        name,
        Some(nix::unistd::Uid::from_raw(d.uid)),
        Some(nix::unistd::Gid::from_raw(d.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .at("chown device", p)?;
    // mknod applies the umask; set the mode the config asked for exactly.
    nix::sys::stat::fchmodat(
        &dir,
        name,
        mode,
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .at("chmod device", p)
}

/// The links every container expects in /dev (after pivot_root).
pub fn dev_links(root: &Root) -> Result<(), RootfsError> {
    let Ok(dev) = root.open_in(Path::new("/dev"), libc::O_PATH | libc::O_DIRECTORY) else {
        return Ok(());
    };
    let has_pts = root
        .open_in(Path::new("/dev/pts/ptmx"), libc::O_PATH)
        .is_ok();
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if has_pts {
        // /dev/ptmx must be the devpts instance's own ptmx so ptys land in /dev/pts.
        match nix::unistd::unlinkat(&dev, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).at("replace", Path::new("/dev/ptmx")),
        }
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).at("symlink", &Path::new("/dev").join(name)),
        }
    }
    Ok(())
}

/// terminal:true — a pty made inside the container: the master goes to the engine over the
/// console socket (SCM_RIGHTS, the pty name as payload, as runc does), the slave becomes
/// the controlling terminal, stdio and /dev/console. Every step works on fds: /dev/ptmx is
/// resolved inside the root and checked to be the multiplexer, the slave comes from the
/// master (TIOCGPTPEER), and /dev/console gets a clone of the slave's own mount, so a
/// symlinked /dev/pts or /dev/console in the image cannot substitute another file.
pub fn setup_console(
    socket: Option<RawFd>,
    size: Option<(u16, u16)>,
    bind_console: bool,
    relayed: bool,
) -> Result<(), RootfsError> {
    let ptmx = Path::new("/dev/ptmx");
    let root = Root::open(Path::new("/")).at("open", Path::new("/"))?;
    let (master, slave, name) = open_pty(&root)?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
            return Err(Errno::last()).at("set console size", ptmx);
        }
    }
    if bind_console {
        bind_dev_console(&root, &slave)?;
    }
    // berth's own relay clears ONLCR (console::clear_onlcr) when it receives the master;
    // an exec'd process starts without waiting for that, so its first line would still
    // get "\r\n": cleared here, before the process can write.
    if relayed {
        crate::console::clear_onlcr(std::os::fd::AsFd::as_fd(&master))
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
            .at("clear ONLCR on", ptmx)?;
    }
    if let Some(sock) = socket {
        let fds = [master.as_raw_fd()];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        nix::sys::socket::sendmsg::<()>(
            sock,
            &[IoSlice::new(name.as_bytes())],
            &cmsg,
            nix::sys::socket::MsgFlags::empty(),
            None,
        )
        .at("send pty master to console socket", Path::new(&name))?;
    }
    nix::unistd::setsid().at("setsid", Path::new(&name))?;
    // SAFETY: TIOCSCTTY on our new session's terminal.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(Errno::last()).at("make controlling terminal", Path::new(&name));
    }
    for fd in 0..3 {
        // SAFETY: dup2 onto stdio.
        if unsafe { libc::dup2(slave.as_raw_fd(), fd) } < 0 {
            return Err(Errno::last()).at("dup pty onto stdio", Path::new(&name));
        }
    }
    Ok(())
}

/// Opens /dev/ptmx inside the root, checks it is the pty multiplexer (5:2), unlocks a new
/// pty and returns (master, slave, "/dev/pts/N").
fn open_pty(root: &Root) -> Result<(OwnedFd, OwnedFd, String), RootfsError> {
    let ptmx = Path::new("/dev/ptmx");
    let master = root
        .open_in(ptmx, libc::O_RDWR | libc::O_NOCTTY)
        .at("open pty master", ptmx)?;
    let st = nix::sys::stat::fstat(&master).at("stat", ptmx)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(5, 2) {
        return Err(Errno::ENODEV).at("not the pty multiplexer (5:2), refusing", ptmx);
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK with a pointer to an int.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(Errno::last()).at("unlockpt", ptmx);
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN with a pointer to an unsigned int.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } < 0 {
        return Err(Errno::last()).at("ptsname", ptmx);
    }
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER returns a new fd on the slave of this master.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd < 0 {
        return Err(Errno::last()).at("open pty slave (TIOCGPTPEER)", ptmx);
    }
    // SAFETY: a new fd nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok((master, slave, format!("/dev/pts/{n}")))
}

/// /dev/console: a clone of the slave's mount (not its name) over an empty file we made.
fn bind_dev_console(root: &Root, slave: &OwnedFd) -> Result<(), RootfsError> {
    let console = Path::new("/dev/console");
    // A planted /dev/console symlink would aim the bind mount elsewhere (CVE-2025-52565):
    // whatever non-regular file is there is replaced by an empty file we create.
    if let Ok(dev) = root.open_in(Path::new("/dev"), libc::O_PATH | libc::O_DIRECTORY) {
        let st = nix::sys::stat::fstatat(&dev, "console", AtFlags::AT_SYMLINK_NOFOLLOW);
        if st.is_ok_and(|st| st.st_mode & libc::S_IFMT != libc::S_IFREG) {
            nix::unistd::unlinkat(&dev, "console", nix::unistd::UnlinkatFlags::NoRemoveDir)
                .at("remove", console)?;
        }
    }
    let target = root.ensure(console, Kind::File).at("create", console)?;
    let tree = super::fdmount::clone_tree(slave, false).at("clone pty for", console)?;
    super::fdmount::attach(&tree, &target).at("bind-mount pty onto", console)
}
