//! cgroup v2 device controller. cgroup v2 has no devices.allow/deny files: the kernel
//! instead runs every BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup and its
//! ancestors on each device open/mknod, and any program returning 0 denies. So the OCI
//! device rules are compiled into such a program here and loaded with raw bpf(2), since
//! berth carries no libbpf.
//!
//! Semantics follow the v1 devices controller: the last matching rule wins and no match
//! denies. Because one request can carry several access bits (an O_RDWR open asks for
//! read and write), "last match" is decided per bit: each requested bit is granted by the
//! last rule that matches the device and names that bit, and the request is allowed only
//! if every bit is granted. This is what v1 does too: a deny exception covering any
//! requested bit denies, and allow exceptions for the same device add up.

use std::ffi::c_long;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One device rule, in OCI terms (config-linux.md "Device allowlist").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// 'a' (any), 'c' or 'u' (char), 'b' (block). 'p' and unknown kinds never reach the
    /// device controller, so such rules are dropped.
    pub kind: char,
    /// None (or negative, as some tools write -1) = wildcard.
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Subset of "rwm"; other characters are ignored.
    pub access: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error("bpf prog load: {source}{}", log_suffix(.log))]
    Load { source: io::Error, log: String },
    #[error("bpf {step} {}: {source}", dir.display())]
    Cgroup {
        step: &'static str,
        dir: PathBuf,
        source: io::Error,
    },
}

fn log_suffix(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("\nverifier log:\n{log}")
    }
}

fn cg_err<'a>(step: &'static str, dir: &'a Path) -> impl FnOnce(io::Error) -> EbpfError + 'a {
    move |source| EbpfError::Cgroup {
        step,
        dir: dir.to_path_buf(),
        source,
    }
}

// Instruction encoding (Documentation/bpf/standardization/instruction-set.rst).
const BPF_LDX_MEM_W: u8 = 0x61;
const BPF_JMP: u8 = 0x05;
const BPF_JMP32: u8 = 0x06;
const BPF_ALU64: u8 = 0x07;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

// struct bpf_cgroup_dev_ctx and its encodings.
const DEVCG_DEV_BLOCK: i32 = 1;
const DEVCG_DEV_CHAR: i32 = 2;
const DEVCG_ACC_MKNOD: i32 = 1;
const DEVCG_ACC_READ: i32 = 2;
const DEVCG_ACC_WRITE: i32 = 4;

// Registers kept for the whole run: r1 = ctx (then scratch), r2 = device type,
// r3 = requested access bits not yet granted, r4 = major, r5 = minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// Lays the fields out as struct bpf_insn does in memory, so the u64 can be handed to
/// the kernel as is. The register nibbles are C bitfields, whose order follows the
/// byte order.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    let regs = if cfg!(target_endian = "little") {
        (src << 4) | (dst & 0xf)
    } else {
        (dst << 4) | (src & 0xf)
    };
    let mut b = [code, regs, 0, 0, 0, 0, 0, 0];
    b[2..4].copy_from_slice(&off.to_ne_bytes());
    b[4..8].copy_from_slice(&imm.to_ne_bytes());
    u64::from_ne_bytes(b)
}
fn alu64_imm(op: u8, dst: u8, imm: i32) -> u64 {
    insn(BPF_ALU64 | op, dst, 0, 0, imm)
}
fn mov64_reg(dst: u8, src: u8) -> u64 {
    insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
}
fn exit() -> u64 {
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

fn access_mask(access: &str) -> i32 {
    access.chars().fold(0, |m, c| match c {
        'm' => m | DEVCG_ACC_MKNOD,
        'r' => m | DEVCG_ACC_READ,
        'w' => m | DEVCG_ACC_WRITE,
        _ => m,
    })
}

/// Ok(None) = wildcard; Err(()) = a number no device can have, so the rule never matches.
fn dev_number(n: Option<i64>) -> Result<Option<i32>, ()> {
    match n {
        None => Ok(None),
        Some(v) if v < 0 => Ok(None),
        // The bits are what JMP32 compares, so reinterpreting as i32 is intended.
        Some(v) => u32::try_from(v).map(|v| Some(v as i32)).map_err(|_| ()),
    }
}

/// One rule's code, or None if the rule can never match anything.
fn rule_block(rule: &Rule) -> Option<Vec<u64>> {
    let ty = match rule.kind {
        'a' => None,
        'c' | 'u' => Some(DEVCG_DEV_CHAR),
        'b' => Some(DEVCG_DEV_BLOCK),
        _ => return None,
    };
    let (major, minor) = (dev_number(rule.major).ok()?, dev_number(rule.minor).ok()?);
    let mask = access_mask(&rule.access);
    if mask == 0 {
        return None;
    }
    // Both tails end in "skip the verdict (2 insns) if this rule decides nothing".
    let mut tail = if rule.allow {
        // Granting bits nobody asked for is harmless, so no overlap test is needed.
        vec![
            alu64_imm(BPF_AND, R3, !mask & 0xffff),
            insn(BPF_JMP | BPF_JNE, R3, 0, 2, 0),
        ]
    } else {
        // A deny decides only if it covers a bit still undecided.
        vec![
            mov64_reg(R1, R3),
            alu64_imm(BPF_AND, R1, mask),
            insn(BPF_JMP | BPF_JEQ, R1, 0, 2, 0),
        ]
    };
    tail.extend([alu64_imm(BPF_MOV, R0, rule.allow.into()), exit()]);
    let checks: Vec<(u8, i32)> = [(R2, ty), (R4, major), (R5, minor)]
        .into_iter()
        .filter_map(|(reg, v)| v.map(|v| (reg, v)))
        .collect();
    let n = checks.len();
    // JMP32 compares the low 32 bits, so u32 numbers above i32::MAX still match their
    // sign-extended immediate. A mismatch skips the rest of the block.
    let mut out: Vec<u64> = (checks.iter().enumerate())
        .map(|(i, &(reg, v))| {
            let off = (n - i - 1 + tail.len()) as i16;
            insn(BPF_JMP32 | BPF_JNE, reg, 0, off, v)
        })
        .collect();
    out.extend(tail);
    Some(out)
}

/// Builds the program: rules are walked from last to first so that the first block to
/// decide is the last matching rule; anything left undecided at the end is denied.
pub fn program(rules: &[Rule]) -> Vec<u64> {
    let mut out = vec![
        insn(BPF_LDX_MEM_W, R2, R1, 0, 0), // access_type
        mov64_reg(R3, R2),
        alu64_imm(BPF_AND, R2, 0xffff),
        alu64_imm(BPF_RSH, R3, 16),
        insn(BPF_LDX_MEM_W, R4, R1, 4, 0),
        insn(BPF_LDX_MEM_W, R5, R1, 8, 0),
        // A request for no access would be vacuously granted below; deny it instead.
        insn(BPF_JMP | BPF_JNE, R3, 0, 2, 0),
        alu64_imm(BPF_MOV, R0, 0),
        exit(),
    ];
    for rule in rules.iter().rev() {
        out.extend(rule_block(rule).into_iter().flatten());
    }
    out.extend([alu64_imm(BPF_MOV, R0, 0), exit()]);
    out
}

// bpf(2) commands, types and flags from <linux/bpf.h>.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// Programs are named so detach_all can tell berth's from those of others (systemd
/// attaches its own device programs).
const PROG_NAME: [u8; 16] = *b"berth_dev\0\0\0\0\0\0\0";

// Mirrors of the bpf_attr members used. Every gap is an explicit field so the whole
// struct is zeroed: the kernel rejects non-zero bytes where it expects none.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// # Safety
/// `attr` must be the bpf_attr member `cmd` expects, and every pointer stored in it must
/// be valid for the access the kernel makes for the duration of the call.
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<c_long> {
    let size = std::mem::size_of::<T>() as libc::c_uint;
    // SAFETY: the caller vouches for the pointers in attr; attr itself outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_u32(fd: &impl AsRawFd) -> u32 {
    // Open fds are never negative.
    fd.as_raw_fd() as u32
}

/// # Safety
/// `r` must be a file descriptor the kernel just returned to us and nobody else owns.
unsafe fn owned(r: c_long) -> OwnedFd {
    // SAFETY: see above; fds fit in c_int.
    unsafe { OwnedFd::from_raw_fd(r as libc::c_int) }
}

fn load(insns: &[u64]) -> Result<OwnedFd, EbpfError> {
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| EbpfError::Load {
        source: io::Error::from_raw_os_error(libc::E2BIG),
        log: String::new(),
    })?;
    let license = c"Apache-2.0";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: PROG_NAME,
        ..Default::default()
    };
    // SAFETY: insns and license outlive the call; the kernel only reads them.
    let source = match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        // SAFETY: a successful BPF_PROG_LOAD returns a new fd.
        Ok(fd) => return Ok(unsafe { owned(fd) }),
        Err(e) => e,
    };
    // Loading again with a log is left for failures: a log buffer that turns out too
    // small fails an otherwise valid load on older kernels.
    let mut log = vec![0u8; 1 << 20];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: as above, plus log is writable for log_size bytes and outlives the call.
    if let Ok(fd) = unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        // The failure was transient after all.
        // SAFETY: a successful BPF_PROG_LOAD returns a new fd.
        return Ok(unsafe { owned(fd) });
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    Err(EbpfError::Load {
        source,
        log: String::from_utf8_lossy(&log[..end]).trim_end().to_string(),
    })
}

fn open_dir(dir: &Path) -> Result<File, EbpfError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(cg_err("open cgroup", dir))
}

/// Loads the program and attaches it to the cgroup2 directory `dir` with
/// BPF_F_ALLOW_MULTI, so it runs alongside (not instead of) programs attached to
/// ancestors. The cgroup keeps the program alive; the returned fd may be dropped.
pub fn load_and_attach(insns: &[u64], dir: &Path) -> Result<OwnedFd, EbpfError> {
    let cg = open_dir(dir)?;
    let prog = load(insns)?;
    // target_fd, attach_bpf_fd, attach_type, attach_flags
    let mut attr = [
        fd_u32(&cg),
        fd_u32(&prog),
        BPF_CGROUP_DEVICE,
        BPF_F_ALLOW_MULTI,
    ];
    // SAFETY: this attr holds no pointers.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map_err(cg_err("attach", dir))?;
    Ok(prog)
}

/// Ids of the device programs attached directly to `cg` (not inherited ones).
fn query(cg: &File, dir: &Path) -> Result<Vec<u32>, EbpfError> {
    // The kernel caps a cgroup at BPF_CGROUP_MAX_PROGS (64) per attach type.
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: fd_u32(cg),
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    // SAFETY: ids is writable for prog_cnt u32s and outlives the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }.map_err(cg_err("query", dir))?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// None if the program went away meanwhile.
fn prog_by_id(id: u32) -> io::Result<Option<OwnedFd>> {
    // prog_id, next_id, open_flags
    let mut attr = [id, 0, 0];
    // SAFETY: this attr holds no pointers.
    match unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) } {
        // SAFETY: a successful BPF_PROG_GET_FD_BY_ID returns a new fd.
        Ok(fd) => Ok(Some(unsafe { owned(fd) })),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn prog_name(prog: &OwnedFd) -> io::Result<[u8; 16]> {
    // struct bpf_prog_info up to and including name[16] at byte 64; the kernel fills
    // only as much as we offer.
    let mut info = [0u64; 10];
    let mut attr = InfoAttr {
        bpf_fd: fd_u32(prog),
        info_len: std::mem::size_of_val(&info) as u32,
        info: info.as_mut_ptr() as u64,
    };
    // SAFETY: info is writable for info_len bytes and outlives the call.
    unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
    let mut name = [0u8; 16];
    for (chunk, word) in name.chunks_mut(8).zip(&info[8..]) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    Ok(name)
}

/// Detaches every device program berth attached to `dir` (recognised by name), leaving
/// other owners' programs in place. Note that between this and the next attach the
/// cgroup has no berth filter; ancestors' programs still apply.
pub fn detach_all(dir: &Path) -> Result<(), EbpfError> {
    let cg = open_dir(dir)?;
    for id in query(&cg, dir)? {
        let Some(prog) = prog_by_id(id).map_err(cg_err("get prog by id", dir))? else {
            continue;
        };
        if prog_name(&prog).map_err(cg_err("prog info", dir))? != PROG_NAME {
            continue;
        }
        // target_fd, attach_bpf_fd (needed to pick one of several), attach_type
        let mut attr = [fd_u32(&cg), fd_u32(&prog), BPF_CGROUP_DEVICE];
        // SAFETY: this attr holds no pointers.
        match unsafe { bpf(BPF_PROG_DETACH, &mut attr) } {
            // Someone else detached it first: the goal is met.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            r => {
                r.map_err(cg_err("detach", dir))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
