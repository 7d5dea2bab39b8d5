//! Invoking a runtime: each call gets a hang guard (a hung runtime fails its scenario,
//! never the harness) and files for stdout/stderr, because after `create` the container
//! keeps the runtime's stdio and a pipe would never reach EOF.

use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The oracle first: its observations are the "expected" side of every diff.
pub const RUNTIMES: [Runtime; 2] = [
    Runtime {
        name: "runc",
        bin: "/usr/sbin/runc",
    },
    Runtime {
        name: "berth",
        bin: env!("CARGO_BIN_EXE_berth"),
    },
];

pub struct Runtime {
    pub name: &'static str,
    pub bin: &'static str,
}

/// What one runtime invocation did. `code` is -1 when the hang guard fired.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn timed_out(&self) -> bool {
        self.code == -1
    }
}

/// Long enough for a loaded 2-core machine, short enough that a hang costs little.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Runs `bin --root ROOT ARGS…` with stdin from /dev/null and stdout into `stdout_file`
/// (which the caller may keep reading after a container inherited it).
pub fn invoke(rt: &Runtime, root: &Path, args: &[&str], stdout_file: &std::fs::File) -> Out {
    let mut cmd = Command::new(rt.bin);
    cmd.arg("--root").arg(root).args(args);
    // A named file beside --root: a container holding it shows a path, not "(deleted)".
    let n = ERR_SEQ.fetch_add(1, Ordering::Relaxed);
    invoke_cmd(
        &mut cmd,
        stdout_file,
        &root.with_file_name(format!("stderr-{n}")),
    )
}

static ERR_SEQ: AtomicUsize = AtomicUsize::new(0);

fn invoke_cmd(cmd: &mut Command, stdout_file: &std::fs::File, err_path: &Path) -> Out {
    let err = out_file(err_path);
    let start_len = stdout_file.metadata().map(|m| m.len()).unwrap_or(0);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(stdout_file.try_clone().expect("dup stdout"))
        .stderr(err.try_clone().expect("dup stderr"))
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return failed_spawn(e),
    };
    let start = Instant::now();
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code().unwrap_or(128 + st.signal().unwrap_or(0));
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(3));
    };
    Out {
        code,
        stdout: read_from(stdout_file, start_len),
        stderr: read_from(&err, 0),
    }
}

fn failed_spawn(e: std::io::Error) -> Out {
    Out {
        code: -2,
        stdout: String::new(),
        stderr: format!("spawn failed: {e}"),
    }
}

/// The text written to `f` from byte `from` on, read with pread: the file offset is
/// shared with every process that inherited the file and must not move under them.
pub fn read_from(f: &std::fs::File, from: u64) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut at = from;
    while let Ok(n @ 1..) = f.read_at(&mut chunk, at) {
        buf.extend_from_slice(&chunk[..n]);
        at += n as u64;
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// An output file for a runtime's (and its container's) stdout: append mode, so every
/// writer adds at the end whatever the shared offset.
pub fn out_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .expect("create output file")
}
