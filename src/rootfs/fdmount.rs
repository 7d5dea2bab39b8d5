//! The new mount API on fds: clone a tree (open_tree), set its flags while it is still
//! detached (mount_setattr), attach it onto a target fd (move_mount). Nothing is looked up
//! by name after the first, safe resolution, so a symlink swapped in between cannot
//! redirect a remount or a bind (the CVE-2025-52565 / CVE-2026-41579 class).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::mount::MsFlags;

use crate::spec::mountopts::attr;

const OPEN_TREE_CLONE: u32 = 1;
const AT_RECURSIVE: u32 = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

/// A detached copy of the mount tree at `fd` (a bind mount not yet attached anywhere).
pub fn clone_tree(fd: &impl AsRawFd, recursive: bool) -> Result<OwnedFd, Errno> {
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as u32
        | libc::AT_EMPTY_PATH as u32
        | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: open_tree on a valid fd with an empty C path.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a new fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Attaches a detached tree onto `target` (an O_PATH fd resolved inside the root).
pub fn attach(tree: &impl AsRawFd, target: &impl AsRawFd) -> Result<(), Errno> {
    // SAFETY: move_mount between two fds with empty paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 { Err(Errno::last()) } else { Ok(()) }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount an fd names (and, `recursive`, every mount below it).
pub fn setattr(
    fd: &impl AsRawFd,
    set: u64,
    clr: u64,
    userns_fd: u64,
    recursive: bool,
) -> Result<(), Errno> {
    let a = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd,
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: valid fd, empty C string, attr struct of the size we pass.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &a as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 { Err(Errno::last()) } else { Ok(()) }
}

const FSOPEN_CLOEXEC: u32 = 1;
const FSMOUNT_CLOEXEC: u32 = 1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;

fn cstr(s: &str) -> Result<std::ffi::CString, Errno> {
    std::ffi::CString::new(s).map_err(|_| Errno::EINVAL)
}

fn fsconfig(fs: &OwnedFd, cmd: u32, key: Option<&str>, value: Option<&str>) -> Result<(), Errno> {
    let key = key.map(cstr).transpose()?;
    let value = value.map(cstr).transpose()?;
    let ptr = |c: &Option<std::ffi::CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: fsconfig with valid (or null) C strings, as `cmd` expects.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            cmd,
            ptr(&key),
            ptr(&value),
            0,
        )
    };
    if r < 0 { Err(Errno::last()) } else { Ok(()) }
}

/// A new filesystem as a detached mount (fsopen → fsconfig → fsmount): the caller fills,
/// chmods or makes it read-only through the fd, and attaches it where it was resolved.
/// `flags` are the config's mount(2) flags: per-mount ones become mount attributes,
/// superblock ones fsconfig flags (`ro` only with `sb_ro`: a tmpfs is filled first).
pub fn new_fs(
    fstype: &str,
    source: &str,
    flags: MsFlags,
    data: &[String],
    sb_ro: bool,
) -> Result<OwnedFd, Errno> {
    let t = cstr(fstype)?;
    // SAFETY: fsopen with a valid C string.
    let r = unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a new fd nothing else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(r as i32) };
    fsconfig(&fs, FSCONFIG_SET_STRING, Some("source"), Some(source))?;
    for (f, name) in [
        (MsFlags::MS_SYNCHRONOUS, "sync"),
        (MsFlags::MS_DIRSYNC, "dirsync"),
        (MsFlags::MS_MANDLOCK, "mand"),
        (MsFlags::MS_LAZYTIME, "lazytime"),
    ] {
        if flags.contains(f) {
            fsconfig(&fs, FSCONFIG_SET_FLAG, Some(name), None)?;
        }
    }
    if sb_ro && flags.contains(MsFlags::MS_RDONLY) {
        fsconfig(&fs, FSCONFIG_SET_FLAG, Some("ro"), None)?;
    }
    for d in data.iter().flat_map(|d| split_options(d)) {
        match d.split_once('=') {
            Some((k, v)) => fsconfig(&fs, FSCONFIG_SET_STRING, Some(k), Some(v))?,
            None => fsconfig(&fs, FSCONFIG_SET_FLAG, Some(d), None)?,
        }
    }
    fsconfig(&fs, FSCONFIG_CMD_CREATE, None, None)?;
    let (mut set, _) = remount_attrs(flags & !MsFlags::MS_RDONLY, MsFlags::empty());
    if sb_ro && flags.contains(MsFlags::MS_RDONLY) {
        set |= attr::RDONLY;
    }
    // SAFETY: fsmount on the configured context.
    let r = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, set) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a new fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// mount(8)-style data ("lowerdir=a,upperdir=b") → one option per fsconfig call; a comma
/// inside double quotes (an SELinux context) does not split.
fn split_options(d: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in d.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&d[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&d[start..]);
    out.retain(|o| !o.is_empty());
    out
}

/// An fd on the root directory of a mount fd, for fchmod, copy-up and *at() calls.
pub fn open_root(mnt: &OwnedFd, flags: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: openat relative to a valid fd; "." never leaves it.
    let r = unsafe { libc::openat(mnt.as_raw_fd(), c".".as_ptr(), flags | libc::O_CLOEXEC) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a new fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// What a `mount -o remount,bind,<wanted>` would do, as mount_setattr bits: the wanted
/// flags are set, explicitly cleared ones (`suid`, `rw`…) cleared, read-only cleared unless
/// wanted (a remount without MS_RDONLY makes the mount writable), the rest kept.
pub fn remount_attrs(wanted: MsFlags, cleared: MsFlags) -> (u64, u64) {
    let bits = |f: MsFlags| {
        [
            (MsFlags::MS_RDONLY, attr::RDONLY),
            (MsFlags::MS_NOSUID, attr::NOSUID),
            (MsFlags::MS_NODEV, attr::NODEV),
            (MsFlags::MS_NOEXEC, attr::NOEXEC),
            (MsFlags::MS_NODIRATIME, attr::NODIRATIME),
        ]
        .iter()
        .filter(|(m, _)| f.contains(*m))
        .fold(0, |acc, (_, a)| acc | a)
    };
    let mut set = bits(wanted);
    let mut clr = bits(cleared & !wanted);
    if !wanted.contains(MsFlags::MS_RDONLY) {
        clr |= attr::RDONLY;
    }
    let atime = MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME;
    // The atime mode is one field: setting it means clearing the whole mask first.
    if wanted.intersects(atime) || cleared.intersects(atime) {
        clr |= attr::ATIME_MASK;
        if wanted.contains(MsFlags::MS_NOATIME) {
            set |= attr::NOATIME;
        } else if wanted.contains(MsFlags::MS_STRICTATIME) {
            set |= attr::STRICTATIME;
        }
    }
    // The kernel wants the whole atime mask in `clr` whenever an atime mode is set.
    (set, clr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remount_attrs_as_remount_would() {
        let (s, c) = remount_attrs(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID, MsFlags::empty());
        assert_eq!(s, attr::RDONLY | attr::NOSUID);
        assert_eq!(c, 0);
        let (s, c) = remount_attrs(MsFlags::MS_NODEV, MsFlags::MS_NOSUID);
        assert_eq!(s, attr::NODEV);
        assert_eq!(c, attr::NOSUID | attr::RDONLY);
        let (s, c) = remount_attrs(MsFlags::MS_NOATIME, MsFlags::empty());
        assert_eq!(s, attr::NOATIME);
        assert_eq!(c, attr::ATIME_MASK | attr::RDONLY);
    }

    #[test]
    fn options_split_on_commas_outside_quotes() {
        assert_eq!(split_options("a=1,b,,c=2"), ["a=1", "b", "c=2"]);
        assert_eq!(
            split_options(r#"context="u:r:t:s0:c1,c2",mode=755"#),
            [r#"context="u:r:t:s0:c1,c2""#, "mode=755"]
        );
    }
}
