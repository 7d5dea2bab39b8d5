//! CVE-2019-5736: a container process must never get to write berth's binary. Non-dumpability
//! of the init stub and of exec'd processes closes /proc/<pid>/exe to most of the container,
//! but not the `#!/proc/self/exe` shape: an entrypoint (or exec target) that is a script with
//! that interpreter makes the kernel resolve /proc/self/exe *in the process calling execve* —
//! berth's clone — and start berth's image as a container process, which is then dumpable and
//! whose exe any container process can grab and write once it exits. So `create`, `run` and
//! `exec` always re-execute berth from an image nobody can write before anything else, and
//! every clone of it (the init stub, exec's child) inherits that image:
//!
//! - preferably, as runc 1.2 does, the binary seen through a detached, read-only overlayfs of
//!   its own directory (fsopen/fsmount, attached nowhere): no copy, the page cache is shared,
//!   and an overlay without an upper layer cannot be written even if remounted;
//! - else (no overlayfs, no CAP_SYS_ADMIN, --root inside the binary's directory) a memfd copy
//!   sealed with F_SEAL_SEAL|SHRINK|GROW|WRITE. Measured here (docs/design.md): create +1.2 ms
//!   through the overlay, +4.3 ms through the memfd (copy, faults of a fresh image, freeing).
//!
//! Whether the re-exec is needed is asked of the kernel, never of an environment variable:
//! /proc/self/exe is either a memfd carrying every seal, or on a read-only mount.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use nix::fcntl::{FcntlArg, SealFlag, fcntl};

use super::SecurityError;

/// Every seal berth puts on its copy; a file with all of them cannot change or be unsealed.
const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when the image this process runs from cannot be written through /proc/<pid>/exe:
/// a memfd with all of `SEALS` (F_GET_SEALS), or a file on a read-only mount (fstatvfs).
pub fn is_sealed() -> bool {
    File::open("/proc/self/exe").is_ok_and(|f| has_seals(&f) || on_readonly_mount(&f))
}

/// Whether `f` is a memfd carrying every seal in `SEALS`.
pub fn has_seals(f: &impl AsFd) -> bool {
    fcntl(f, FcntlArg::F_GET_SEALS).is_ok_and(|s| s & SEALS == SEALS)
}

fn on_readonly_mount(f: &impl AsFd) -> bool {
    nix::sys::statvfs::fstatvfs(f)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// The spare lower layer under `--root`, one per process and removed as soon as the overlay
/// is mounted (the mount keeps what it needs), so --root is left as it was. '@' is not allowed
/// in a container id: `list` and the verbs never take a leftover for a container.
pub fn spare_dir(root: &Path) -> std::path::PathBuf {
    root.join(format!("@exe-lower.{}", std::process::id()))
}

/// Re-executes berth from an image nobody can write unless it already runs from one. Call
/// before any state is made: the new image starts the verb again from its first line.
/// `spare` is a path berth may make an empty directory at, for overlayfs's second lower layer
/// (removed again; it must not overlap the binary's directory, else the memfd copy is used).
pub fn ensure(spare: &Path) -> Result<(), SecurityError> {
    if is_sealed() {
        return Ok(());
    }
    let image = match overlay_image(spare) {
        Some(fd) => fd,
        None => sealed_copy()?,
    };
    crate::logging::step("sealed: image ready, re-executing");
    match reexec(&image) {
        Ok(never) => match never {},
        Err(e) => Err(e),
    }
}

fn fail(step: &str, e: std::io::Error) -> SecurityError {
    SecurityError::Sys {
        step: format!("sealed self copy: {step}: {e}"),
        errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// berth's binary through a detached read-only overlayfs of its directory, or None when that
/// cannot be had here (the caller falls back to the memfd copy).
fn overlay_image(spare: &Path) -> Option<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    // A binary replaced or removed since we started: the path names another file.
    if exe.as_os_str().as_bytes().ends_with(b" (deleted)") {
        return None;
    }
    let (dir, name) = (exe.parent()?, exe.file_name()?);
    // overlayfs refuses layers inside one another (ELOOP): no need to ask it.
    if spare.starts_with(dir) || dir.starts_with(spare) {
        return None;
    }
    let made = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(spare);
    if made.is_err() {
        return None;
    }
    // overlayfs needs two lower layers to mount without an upper one; the binary's directory
    // is on top, so a file of the same name in the spare one cannot mask it.
    let lower = format!("{}:{}", escape(dir), escape(spare));
    let mnt = fsmount_overlay(&lower);
    let _ = std::fs::remove_dir(spare);
    let mnt = mnt?;
    let c = CString::new(name.as_bytes()).ok()?;
    // SAFETY: openat on the mount fd with a NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            mnt.as_raw_fd(),
            c.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    // SAFETY: a new fd that nothing else owns.
    let image = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })?;
    same_file(&image).then_some(image)
}

/// The overlay shows the file now at the binary's path: it must be the one we run (overlayfs
/// may remap inode numbers, so size, mtime and mode stand in for identity).
fn same_file(image: &OwnedFd) -> bool {
    let ours = std::fs::metadata("/proc/self/exe");
    let theirs = nix::sys::stat::fstat(image);
    match (ours, theirs) {
        (Ok(a), Ok(b)) => {
            a.size() == b.st_size as u64
                && a.mtime() == b.st_mtime
                && a.mtime_nsec() == b.st_mtime_nsec
                && a.mode() == b.st_mode
        }
        _ => false,
    }
}

/// overlayfs's lowerdir syntax: ':' separates layers, '\' escapes.
fn escape(p: &Path) -> String {
    p.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
}

/// fsopen("overlay") + lowerdir + fsmount(read-only, nosuid, nodev): a mount fd attached
/// nowhere, gone when the last fd or image using it goes.
fn fsmount_overlay(lower: &str) -> Option<OwnedFd> {
    const FSOPEN_CLOEXEC: u32 = 1;
    const FSCONFIG_SET_STRING: u32 = 1;
    const FSCONFIG_CMD_CREATE: u32 = 6;
    const FSMOUNT_CLOEXEC: u32 = 1;
    const MOUNT_ATTR: u32 = 0x1 | 0x2 | 0x4; // RDONLY | NOSUID | NODEV
    let own = |r: libc::c_long| {
        // SAFETY: a new fd returned by the kernel that nothing else owns.
        (r >= 0).then(|| unsafe { OwnedFd::from_raw_fd(r as i32) })
    };
    // SAFETY: fsopen with a NUL-terminated name.
    let ctx = own(unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) })?;
    let set = |key: &std::ffi::CStr, val: &std::ffi::CStr| {
        // SAFETY: fsconfig on our context fd with NUL-terminated key and value.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                ctx.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                val.as_ptr(),
                0,
            )
        };
        r == 0
    };
    if !set(c"lowerdir", &CString::new(lower).ok()?) {
        return None;
    }
    // Not wanted, and it logs to dmesg when the layers are on different filesystems.
    let _ = set(c"xino", c"off");
    // SAFETY: fsconfig CMD_CREATE takes no pointers.
    let created = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            0,
        )
    };
    if created != 0 {
        return None;
    }
    // SAFETY: fsmount on our configured context; no pointers.
    own(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            ctx.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR,
        )
    })
}

/// A sealed memfd holding the bytes of berth's binary.
fn sealed_copy() -> Result<OwnedFd, SecurityError> {
    let mut exe = File::open("/proc/self/exe").map_err(|e| fail("open /proc/self/exe", e))?;
    let memfd = nix::sys::memfd::memfd_create(
        c"berth",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(|e| fail("memfd_create", e.into()))?;
    let mut out = File::from(memfd);
    // std copies File to File in the kernel (copy_file_range, else sendfile): no user buffer.
    std::io::copy(&mut exe, &mut out).map_err(|e| fail("copy", e))?;
    fcntl(
        &out,
        FcntlArg::F_ADD_SEALS(SealFlag::from_bits_truncate(SEALS)),
    )
    .map_err(|e| fail("seal", e.into()))?;
    if !has_seals(&out) {
        return Err(fail("seal", std::io::Error::from_raw_os_error(libc::EPERM)));
    }
    Ok(out.into())
}

/// Re-executes berth (same arguments and environment) from `image`.
fn reexec(image: &OwnedFd) -> Result<std::convert::Infallible, SecurityError> {
    let cstr = |v: OsString| CString::new(v.into_vec()).unwrap_or_default();
    let argv: Vec<CString> = std::env::args_os().map(cstr).collect();
    let envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstr(kv)
        })
        .collect();
    match nix::unistd::fexecve(image, &argv, &envp) {
        Ok(never) => match never {},
        Err(e) => Err(fail("fexecve", e.into())),
    }
}
