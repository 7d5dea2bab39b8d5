//! Tests of the device-filter generator (a small BPF interpreter) and, as root, of
//! loading it for real.
use super::*;

const CTX_BASE: u64 = 0x1000_0000;

/// Executes just the instructions program() emits, checking what the verifier would:
/// known opcodes, forward jumps within bounds, r0 written before exit.
fn run(prog: &[u64], ctx: [u32; 3]) -> u64 {
    let (mut r, mut r0_set, mut pc) = ([0u64; 11], false, 0usize);
    r[1] = CTX_BASE;
    loop {
        let b = prog[pc].to_ne_bytes();
        let (lo, hi) = ((b[1] & 0xf) as usize, (b[1] >> 4) as usize);
        let (dst, src) = if cfg!(target_endian = "little") {
            (lo, hi)
        } else {
            (hi, lo)
        };
        let off = i16::from_ne_bytes([b[2], b[3]]);
        let imm = i32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
        let (code, class) = (b[0], b[0] & 7);
        pc += 1;
        let operand = if code & BPF_X != 0 {
            r[src]
        } else {
            imm as i64 as u64
        };
        match class {
            1 => {
                assert_eq!(code, BPF_LDX_MEM_W);
                let at = r[src]
                    .wrapping_add(off as i64 as u64)
                    .wrapping_sub(CTX_BASE);
                r[dst] = ctx[[0, 4, 8].iter().position(|&o| o == at).expect("ctx off")] as u64;
            }
            BPF_ALU64 => {
                r[dst] = match code & 0xf0 {
                    BPF_MOV => operand,
                    BPF_AND => r[dst] & operand,
                    BPF_RSH => r[dst] >> (operand & 63),
                    op => panic!("alu op {op:#x}"),
                };
                r0_set |= dst == 0;
            }
            BPF_JMP | BPF_JMP32 => {
                if code & 0xf0 == BPF_EXIT {
                    assert!(r0_set, "exit with r0 unset");
                    return r[0];
                }
                let width = if class == BPF_JMP32 {
                    u32::MAX as u64
                } else {
                    u64::MAX
                };
                let (a, b) = (r[dst] & width, operand & width);
                let taken = match code & 0xf0 {
                    BPF_JEQ => a == b,
                    BPF_JNE => a != b,
                    op => panic!("jmp op {op:#x}"),
                };
                assert!(off >= 0, "backward jump");
                pc += if taken { off as usize } else { 0 };
                assert!(pc < prog.len(), "jump out of program");
            }
            _ => panic!("class {class}"),
        }
    }
}

fn ask(prog: &[u64], kind: char, major: u32, minor: u32, access: &str) -> bool {
    let ty = if kind == 'b' {
        DEVCG_DEV_BLOCK
    } else {
        DEVCG_DEV_CHAR
    } as u32;
    let acc = access_mask(access) as u32;
    match run(prog, [(acc << 16) | ty, major, minor]) {
        0 => false,
        1 => true,
        v => panic!("verdict {v}"),
    }
}

/// Independent statement of the semantics: each requested bit is decided by the last
/// rule that matches the device and names it; all must be allowed.
fn reference(rules: &[Rule], kind: char, major: u32, minor: u32, access: &str) -> bool {
    let num_ok = |n: Option<i64>, v: u32| n.is_none_or(|n| n < 0 || n == v as i64);
    let acc = access_mask(access);
    acc != 0
        && [1, 2, 4].iter().filter(|&&bit| acc & bit != 0).all(|&bit| {
            (rules.iter().rev())
                .find(|r| {
                    (r.kind == 'a' || r.kind == kind || (r.kind == 'u' && kind == 'c'))
                        && num_ok(r.major, major)
                        && num_ok(r.minor, minor)
                        && access_mask(&r.access) & bit != 0
                })
                .is_some_and(|r| r.allow)
        })
}

/// "allow c 1:3 rw"; '*' (or a negative number) is a wildcard.
fn parse(spec: &str) -> Rule {
    let f: Vec<&str> = spec.split(' ').collect();
    let (ma, mi) = f[2].split_once(':').unwrap();
    let num = |s: &str| (s != "*").then(|| s.parse().unwrap());
    let kind = f[1].chars().next().unwrap();
    let access = f.get(3).unwrap_or(&"").to_string();
    Rule {
        allow: f[0] == "allow",
        kind,
        major: num(ma),
        minor: num(mi),
        access,
    }
}

/// `rules` is ';'-separated specs for parse(); `cases` is ','-separated requests,
/// "c 1:3 rw +" for must-allow and "c 1:3 rw -" for must-deny.
fn check(rules: &str, cases: &str) {
    let rules: Vec<Rule> = rules.split(';').map(|s| parse(s.trim())).collect();
    let p = program(&rules);
    for case in cases.split(',').map(str::trim) {
        let f: Vec<&str> = case.split(' ').collect();
        let kind = f[0].chars().next().unwrap();
        let (ma, mi) = f[1].split_once(':').unwrap();
        let (ma, mi) = (ma.parse().unwrap(), mi.parse().unwrap());
        let got = ask(&p, kind, ma, mi, f[2]);
        assert_eq!(got, f[3] == "+", "{rules:?}: {case}");
        let want = reference(&rules, kind, ma, mi, f[2]);
        assert_eq!(got, want, "reference: {rules:?}: {case}");
    }
}

#[test]
fn encoding_matches_struct_bpf_insn() {
    let mov = alu64_imm(BPF_MOV, R0, 1).to_ne_bytes();
    assert_eq!(mov, [0xb7, 0, 0, 0, 1, 0, 0, 0]);
    // ldxw r2, [r1+4]: dst in the low nibble on little endian.
    let regs = if cfg!(target_endian = "little") {
        0x12
    } else {
        0x21
    };
    let b = insn(BPF_LDX_MEM_W, R2, R1, 4, 0).to_ne_bytes();
    let off = i16::from_ne_bytes([b[2], b[3]]);
    assert_eq!((b[0], b[1], off), (0x61, regs, 4));
    assert_eq!(exit().to_ne_bytes(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn no_rules_denies_everything() {
    let p = program(&[]);
    for (ty, acc) in [
        (DEVCG_DEV_CHAR, 2),
        (DEVCG_DEV_CHAR, 7),
        (DEVCG_DEV_BLOCK, 1),
    ] {
        assert_eq!(run(&p, [(acc << 16 | ty) as u32, 1, 3]), 0);
    }
    let p = program(&[parse("allow a *:* rwm")]);
    assert_eq!(run(&p, [DEVCG_DEV_CHAR as u32, 1, 3]), 0, "empty access");
}

#[test]
fn allow_c_1_3_rw() {
    let rules = "allow c 1:3 rw";
    check(
        rules,
        "c 1:3 r +, c 1:3 w +, c 1:3 rw +, c 1:3 m -, c 1:3 rwm -",
    );
    check(rules, "c 1:5 r -, c 2:3 r -, b 1:3 r -");
}

#[test]
fn wildcards() {
    let rules = "allow c *:* m; allow c 136:* rwm; allow b *:7 r; allow c -1:9 w";
    check(
        rules,
        "c 4:1 m +, c 4:1 r -, c 136:0 rw +, c 136:4242 rwm +",
    );
    check(
        rules,
        "c 137:0 r -, b 8:7 r +, b 8:7 w -, b 8:0 m -, c 77:9 w +",
    );
}

#[test]
fn kind_a_matches_both_types() {
    check("allow a 10:* r", "c 10:1 r +, b 10:1 r +, b 10:1 w -");
    let rules = "allow a *:* rwm; deny a 8:* w";
    check(rules, "b 8:1 w -, c 8:1 w -, c 8:1 r +, b 9:1 w +");
}

#[test]
fn last_match_wins() {
    check("allow a *:* rwm; deny c 1:3 rwm", "c 1:3 r -, c 1:5 r +");
    check("deny c 1:3 rwm; allow a *:* rwm", "c 1:3 r +");
    let rules = "deny a *:* rwm; allow c 1:3 rwm; deny c *:* w";
    check(rules, "c 1:3 w -, c 1:3 r +, c 1:3 m +, c 1:4 r -");
}

#[test]
fn access_subsets_per_bit() {
    // A deny of "r" must catch an O_RDWR open even though it does not name "w".
    let rules = "allow a *:* rwm; deny c 1:3 r";
    check(rules, "c 1:3 r -, c 1:3 rw -, c 1:3 w +, c 1:3 wm +");
    // Separate allows for one device add up, as v1 exceptions do.
    check("allow c 1:3 r; allow c 1:3 w", "c 1:3 rw +, c 1:3 rwm -");
    // Unknown characters and empty access contribute nothing.
    check("allow c *:* xr; deny c *:*", "c 1:1 r +, c 1:1 w -");
}

#[test]
fn odd_kinds_and_numbers() {
    // 'u' is a char device, 'p' never reaches the controller, 2^40 fits no device.
    let rules = "allow u 4:1 r; allow p *:* rwm; allow c 1099511627776:* rwm";
    check(rules, "c 4:1 r +, b 4:1 r -, c 5:1 r -, c 0:0 w -");
    let rules = "allow c 4294967280:2147483648 w";
    check(rules, "c 4294967280:2147483648 w +, c 4294967280:0 w -");
}

#[test]
fn oci_default_style_list() {
    let rules = "deny a *:* rwm; allow c *:* m; allow b *:* m; allow c 1:3 rwm; \
                 allow c 1:5 rwm; allow c 1:9 rwm; allow c 5:0 rwm; allow c 136:* rwm";
    check(rules, "c 1:9 rw +, c 136:3 rw +, c 4:1 r -, c 4:1 m +");
    check(rules, "b 8:0 r -, b 8:0 m +, b 8:0 rm -, c 5:1 w -");
}

#[test]
fn matches_reference_on_random_rule_lists() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let accesses = ["", "r", "w", "m", "rw", "rm", "wm", "rwm"];
    let num = |v: u64| [Some(0), Some(1), Some(2), Some(-1), None][v as usize];
    for _ in 0..2000 {
        let rules: Vec<Rule> = (0..rnd(6))
            .map(|_| Rule {
                allow: rnd(2) == 0,
                kind: ['a', 'b', 'c', 'u'][rnd(4) as usize],
                major: num(rnd(5)),
                minor: num(rnd(5)),
                access: accesses[rnd(8) as usize].into(),
            })
            .collect();
        let p = program(&rules);
        for (kind, major, minor) in
            (0..18).map(|i| (['b', 'c'][i / 9], i as u32 / 3 % 3, i as u32 % 3))
        {
            for access in &accesses[1..] {
                let want = reference(&rules, kind, major, minor, access);
                let got = ask(&p, kind, major, minor, access);
                assert_eq!(got, want, "{rules:?} {kind} {major}:{minor} {access}");
            }
        }
    }
}

/// A cgroup2 directory for a root-only test, detached and removed on drop.
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(tag: &str) -> Option<Self> {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: not root");
            return None;
        }
        let unified = Path::new("/sys/fs/cgroup/unified");
        let root = if unified.join("cgroup.procs").exists() {
            unified
        } else {
            Path::new("/sys/fs/cgroup")
        };
        let dir = root.join(format!("berth-ebpf-test-{tag}-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        Some(TestCgroup(dir))
    }

    fn attached(&self) -> usize {
        query(&open_dir(&self.0).unwrap(), &self.0).unwrap().len()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = detach_all(&self.0);
        // An exited child can keep the cgroup busy for a moment after being reaped.
        for _ in 0..100 {
            match std::fs::remove_dir(&self.0) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                _ => return,
            }
        }
    }
}

/// Opens made by the forked child, with whether each must succeed; a denied one
/// must fail with EPERM.
const PROBES: [(&std::ffi::CStr, i32, bool); 4] = [
    (c"/dev/null", libc::O_RDONLY, false),
    (c"/dev/null", libc::O_WRONLY, true),
    (c"/dev/null", libc::O_RDWR, false),
    (c"/dev/zero", libc::O_RDONLY, true),
];

/// Runs in the forked child, so only raw libc calls: the harness has other threads.
/// Returns 0, or 1 + the index of the probe that went wrong.
fn child_probe(go: &OwnedFd) -> i32 {
    let mut b = [0u8; 1];
    if nix::unistd::read(go, &mut b) != Ok(1) {
        return 99;
    }
    for (i, &(path, flags, must_open)) in PROBES.iter().enumerate() {
        // SAFETY: open/close on a NUL-terminated literal.
        let fd = unsafe { libc::open(path.as_ptr(), flags) };
        let errno = io::Error::last_os_error().raw_os_error();
        if fd >= 0 {
            // SAFETY: fd was just opened here.
            unsafe { libc::close(fd) };
        }
        if (fd >= 0) != must_open || (fd < 0 && errno != Some(libc::EPERM)) {
            return i as i32 + 1;
        }
    }
    0
}

#[test]
fn real_attach_denies_read_of_dev_null_then_detach() {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork, pipe, write};
    let Some(cg) = TestCgroup::new("attach") else {
        return;
    };
    let p = program(&[parse("allow a *:* rwm"), parse("deny c 1:3 r")]);
    drop(load_and_attach(&p, &cg.0).unwrap());
    assert_eq!(
        cg.attached(),
        1,
        "still attached after the prog fd is closed"
    );

    let (rx, tx) = pipe().unwrap();
    // SAFETY: the child makes only async-signal-safe calls, then _exit.
    match unsafe { fork() }.unwrap() {
        // SAFETY: leaving the forked child without running the harness' exit path.
        ForkResult::Child => unsafe { libc::_exit(child_probe(&rx)) },
        ForkResult::Parent { child } => {
            drop(rx);
            let moved = std::fs::write(cg.0.join("cgroup.procs"), child.to_string());
            let go = write(&tx, if moved.is_ok() { b"g" } else { b"" });
            drop(tx);
            let status = waitpid(child, None).unwrap();
            moved.unwrap();
            go.unwrap();
            assert_eq!(status, WaitStatus::Exited(child, 0), "see PROBES");
        }
    }
    // The parent is outside the cgroup, so its own access is untouched.
    assert!(File::open("/dev/null").is_ok());
    load_and_attach(&p, &cg.0).unwrap();
    assert_eq!(cg.attached(), 2, "ALLOW_MULTI stacks");
    detach_all(&cg.0).unwrap();
    assert_eq!(cg.attached(), 0);
    detach_all(&cg.0).unwrap();
}

#[test]
fn real_load_failure_carries_verifier_log() {
    let Some(_cg) = TestCgroup::new("load") else {
        return;
    };
    // Every block shape the generator has must pass the real verifier.
    let mut rules = String::from("deny a *:* rwm");
    for (verdict, kind, num, acc) in (0..24).map(|i| (i % 2, i / 2 % 3, i / 6 % 4, i % 7)) {
        let verdict = ["allow", "deny"][verdict];
        let num = ["*:*", "1:*", "*:3", "4294967295:2147483648"][num];
        let acc = ["r", "w", "m", "rw", "rm", "wm", "rwm"][acc];
        rules += &format!("; {verdict} {} {num} {acc}", ['a', 'b', 'c'][kind]);
    }
    let rules: Vec<Rule> = rules.split("; ").map(parse).collect();
    load(&program(&rules)).unwrap();
    // Exiting without setting r0 is something the verifier always rejects.
    let text = load(&[exit()]).unwrap_err().to_string();
    println!("{text}");
    assert!(text.starts_with("bpf prog load: "), "{text}");
    assert!(
        text.contains("verifier log:") && text.contains("R0"),
        "{text}"
    );
    let err = load_and_attach(&program(&[]), Path::new("/nonexistent-cg")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bpf open cgroup /nonexistent-cg: "),
        "{err}"
    );
}
