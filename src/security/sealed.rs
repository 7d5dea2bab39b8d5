//! CVE-2019-5736: a container process must never get to write berth's binary through
//! /proc/<pid>/exe of the init stub or of an exec'd process. Both are non-dumpable, which
//! shuts out every process without CAP_SYS_PTRACE in the host user namespace. A container
//! *with* it (no user namespace, CAP_SYS_PTRACE kept) could still open the image, so for
//! those berth first re-executes itself from a sealed memfd copy: what /proc/<pid>/exe then
//! names is an anonymous, write-sealed file, not the host binary.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

use caps::Capability;

use super::SecurityError;
use crate::spec::ProcessPlan;

const MARKER: &str = "_BERTH_SEALED_EXE";

/// True when this process already runs from the sealed copy.
pub fn is_sealed() -> bool {
    std::env::var_os(MARKER).is_some()
}

/// Whether a process with this plan could reach berth's image despite non-dumpability.
pub fn needed(p: &ProcessPlan, userns: bool) -> bool {
    !userns
        && p.caps
            .as_ref()
            .is_none_or(|c| c.bounding.contains(&Capability::CAP_SYS_PTRACE))
}

/// Re-executes berth (same arguments) from a sealed memfd copy of its binary.
pub fn reexec() -> Result<std::convert::Infallible, SecurityError> {
    use std::io::Read;
    let fail = |step: &str, e: std::io::Error| SecurityError::Sys {
        step: format!("sealed self copy: {step}: {e}"),
        errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    };
    let mut exe =
        std::fs::File::open("/proc/self/exe").map_err(|e| fail("open /proc/self/exe", e))?;
    let memfd = nix::sys::memfd::memfd_create(
        c"berth",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(|e| fail("memfd_create", e.into()))?;
    let mut out = std::fs::File::from(memfd);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = exe.read(&mut buf).map_err(|e| fail("read", e))?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut out, &buf[..n]).map_err(|e| fail("write", e))?;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    nix::fcntl::fcntl(
        &out,
        nix::fcntl::FcntlArg::F_ADD_SEALS(nix::fcntl::SealFlag::from_bits_truncate(seals)),
    )
    .map_err(|e| fail("seal", e.into()))?;
    let cstr = |v: OsString| CString::new(v.into_vec()).unwrap_or_default();
    let argv: Vec<CString> = std::env::args_os().map(cstr).collect();
    let mut envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstr(kv)
        })
        .collect();
    envp.push(cstr(format!("{MARKER}=1").into()));
    match nix::unistd::fexecve(&out, &argv, &envp) {
        Ok(never) => match never {},
        Err(e) => Err(fail("fexecve", e.into())),
    }
}
