//! CVE-2019-5736: a container process must never get to write berth's binary. Non-dumpability
//! of the init stub and of exec'd processes closes /proc/<pid>/exe to most of the container,
//! but not the `#!/proc/self/exe` shape: an entrypoint (or exec target) that is a script with
//! that interpreter makes the kernel resolve /proc/self/exe *in the process calling execve* —
//! berth's clone — and start berth's image as a container process, which is then dumpable and
//! whose exe any container process can grab and write once it exits. So `create`, `run` and
//! `exec` always re-execute berth from a write-sealed memfd copy before anything else: what
//! /proc/self/exe names from then on, in the runtime and in every clone of it, is an anonymous
//! file the kernel refuses to change (F_SEAL_WRITE|GROW|SHRINK, and F_SEAL_SEAL so nobody can
//! lift them). runc 1.2 prefers a detached read-only overlayfs of the binary's directory and
//! falls back to the same memfd; berth's static binary is small, and the kernel-side copy
//! (sendfile into shmem) measured under a millisecond, so berth keeps one mechanism.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;

use nix::fcntl::{FcntlArg, SealFlag, fcntl};

use super::SecurityError;

/// Every seal berth puts on its copy; a file with all of them cannot change or be unsealed.
const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when the kernel says the image this process runs from carries all of `SEALS` (asked
/// with F_GET_SEALS, never told by an environment variable a caller could set).
pub fn is_sealed() -> bool {
    File::open("/proc/self/exe").is_ok_and(|f| has_seals(&f))
}

/// Whether `f` is a memfd carrying every seal in `SEALS`.
pub fn has_seals(f: &impl AsFd) -> bool {
    fcntl(f, FcntlArg::F_GET_SEALS).is_ok_and(|s| s & SEALS == SEALS)
}

/// Re-executes berth from a sealed copy unless it already runs from one. Call before any
/// state is made: the new image starts the verb again from its first line.
pub fn ensure() -> Result<(), SecurityError> {
    if is_sealed() {
        return Ok(());
    }
    match reexec() {
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

/// A sealed memfd holding the bytes of berth's binary.
fn sealed_copy() -> Result<File, SecurityError> {
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
    Ok(out)
}

/// Re-executes berth (same arguments and environment) from a sealed memfd copy.
fn reexec() -> Result<std::convert::Infallible, SecurityError> {
    let out = sealed_copy()?;
    if !has_seals(&out) {
        return Err(fail("seal", std::io::Error::from_raw_os_error(libc::EPERM)));
    }
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
    match nix::unistd::fexecve(&out, &argv, &envp) {
        Ok(never) => match never {},
        Err(e) => Err(fail("fexecve", e.into())),
    }
}
