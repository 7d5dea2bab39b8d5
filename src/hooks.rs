//! OCI hooks (config.md "POSIX-platform Hooks"): each hook gets the container state on
//! stdin, runs with its own args and env, and is killed when its timeout passes.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: {msg}")]
    Failed {
        kind: &'static str,
        path: String,
        msg: String,
    },
    #[cfg(feature = "failpoints")]
    #[error(transparent)]
    Injected(#[from] crate::failpoints::Injected),
}

/// Runs hooks in order; the first failure stops the list.
pub fn run_all(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    run_all_env(kind, hooks, state, &[])
}

/// As `run_all`, for the hooks that run in the container (createContainer,
/// startContainer): one without `env` gets `process_env`, the container process's
/// environment, as runc's do (its init has that environment when it runs them).
pub fn run_all_env(
    kind: &'static str,
    hooks: &[Hook],
    state: &[u8],
    process_env: &[String],
) -> Result<(), HookError> {
    crate::failpoint!(&format!("hook::{kind}::before"));
    for h in hooks {
        run(kind, h, state, process_env)?;
    }
    crate::failpoint!(&format!("hook::{kind}::after"));
    Ok(())
}

/// Runs hooks in order, turning failures into warnings (poststart, poststop).
pub fn run_all_warn(kind: &'static str, hooks: &[Hook], state: &[u8]) {
    if let Err(e) = run_all_each(kind, hooks, state) {
        crate::logging::warn(&e.to_string());
    }
}

/// Every hook of the list, even after one failed; the failures become warnings.
fn run_all_each(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    crate::failpoint!(&format!("hook::{kind}::before"));
    for h in hooks {
        if let Err(e) = run(kind, h, state, &[]) {
            crate::logging::warn(&e.to_string());
        }
    }
    crate::failpoint!(&format!("hook::{kind}::after"));
    Ok(())
}

fn run(
    kind: &'static str,
    h: &Hook,
    state: &[u8],
    default_env: &[String],
) -> Result<(), HookError> {
    let path = h.path().display().to_string();
    let fail = |msg: String| HookError::Failed {
        kind,
        path: path.clone(),
        msg,
    };
    let mut cmd = Command::new(h.path());
    let args = h.args().clone().unwrap_or_default();
    if let Some((first, rest)) = args.split_first() {
        cmd.arg0(first).args(rest);
    }
    // runc runs its hooks from the bundle directory (it chdirs there at create), and hook
    // scripts written for runc use relative paths from it. Where the bundle is not
    // reachable (hooks run inside the container), the directory is left as it is.
    // createContainer and startContainer hooks run where the init is (see init::mod).
    let in_container = matches!(kind, "createContainer" | "startContainer");
    if let Some(bundle) = bundle_of(state).filter(|b| !in_container && b.is_dir()) {
        cmd.current_dir(bundle);
    }
    cmd.env_clear();
    for kv in h.env().as_deref().unwrap_or(default_env) {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Hook output goes to our stderr: stdout may be the container's stdio.
    let stderr = std::io::stderr().as_fd().try_clone_to_owned().ok();
    // SAFETY: only close_range(2) runs between fork and exec: async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            // Nothing the caller held reaches the hook: stdio is already in place, every
            // other fd closes at exec (CVE-2024-21626 shape for hooks run by berth).
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    cmd.stdin(Stdio::piped())
        .stdout(stderr.map(Stdio::from).unwrap_or(Stdio::null()))
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state);
    }
    let timeout = h.timeout().map(|t| t.saturating_mul(1000));
    if let Some(ms) = timeout {
        if !wait_exit(child.id() as i32, ms) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timed out after {}s", ms / 1000)));
        }
    }
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(c), _) => Err(fail(format!("exited with status {c}"))),
        (None, Some(s)) => Err(fail(format!("killed by signal {s}"))),
        _ => Err(fail("ended abnormally".into())),
    }
}

/// The bundle directory named in the state handed to the hook (runtime.md "State").
fn bundle_of(state: &[u8]) -> Option<std::path::PathBuf> {
    let v: serde_json::Value = serde_json::from_slice(state).ok()?;
    v.get("bundle")?.as_str().map(std::path::PathBuf::from)
}

/// Waits up to `ms` for a child to exit, without reaping it. True if it exited.
fn wait_exit(pid: i32, ms: i64) -> bool {
    // Our own child, not reaped yet: the pid is still its.
    let Ok(fd) = crate::pidfd::open(pid) else {
        return true; // let wait() block; nothing better to do
    };
    crate::poll::poll_readable(&[fd.as_fd()], ms.clamp(0, i32::MAX as i64) as i32).is_some()
}
