//! Linux security modules that confine the container's process. AppArmor: the profile in
//! `process.apparmorProfile` (or `exec --apparmor`) becomes the process's at its execve,
//! through the kernel's on-exec transition (`exec NAME` written to the task's attr file),
//! as runc does. SELinux is refused by the spec checks: no SELinux host was available to
//! test it on.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// "Y" when the AppArmor LSM is active in this kernel (not merely built in).
const ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
/// The loaded profiles, one `NAME (MODE)` a line, where securityfs is mounted.
const PROFILES: &str = "/sys/kernel/security/apparmor/profiles";
/// The task's on-exec label: AppArmor's own directory first (kernels since 5.8, where
/// several LSMs may share /proc/self/attr), then the legacy shared file.
const EXEC_ATTR: [&str; 2] = ["/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"];

#[derive(Debug, thiserror::Error)]
#[error("{field} {profile:?}: {reason}")]
pub struct LsmError {
    pub field: &'static str,
    pub profile: String,
    pub reason: String,
}

/// AppArmor is the active LSM (the kernel enforces profiles), as runc's IsEnabled.
pub fn apparmor_enabled() -> bool {
    apparmor_enabled_in(Path::new(ENABLED))
}

fn apparmor_enabled_in(file: &Path) -> bool {
    fs::read_to_string(file).is_ok_and(|s| s.trim() == "Y")
}

/// Checks, before anything is made, that `profile` can be applied on this host: AppArmor
/// enabled, and the profile loaded where the list of loaded profiles is readable.
pub fn check_apparmor(field: &'static str, profile: &str) -> Result<(), LsmError> {
    let err = |reason: String| LsmError {
        field,
        profile: profile.to_string(),
        reason,
    };
    if !apparmor_enabled() {
        return Err(err(format!(
            "AppArmor is not enabled on this host ({ENABLED} is not Y), so the profile cannot be applied"
        )));
    }
    if let Ok(list) = fs::read_to_string(PROFILES) {
        if !is_loaded(&list, profile) {
            return Err(err(format!(
                "no such profile is loaded (see {PROFILES}; load it with apparmor_parser)"
            )));
        }
    }
    Ok(())
}

/// `unconfined` is a label of its own, never in the profile list.
fn is_loaded(list: &str, profile: &str) -> bool {
    profile == "unconfined"
        || list
            .lines()
            .filter_map(|l| l.rsplit_once(" (").map(|(name, _)| name))
            .any(|name| name == profile)
}

/// Asks the kernel to confine this task by `profile` from its next execve on. Runs in the
/// container's init (or exec'd process) after its /proc is the container's, before the
/// user switch and the seccomp filter: both may forbid the write.
pub fn apply_apparmor(profile: &str) -> Result<(), LsmError> {
    let err = |reason: String| LsmError {
        field: "process.apparmorProfile",
        profile: profile.to_string(),
        reason,
    };
    let mut missing = Vec::new();
    for path in EXEC_ATTR {
        let mut f = match fs::OpenOptions::new().write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(path);
                continue;
            }
            Err(e) => return Err(err(format!("open {path}: {e}"))),
        };
        return f
            .write_all(format!("exec {profile}").as_bytes())
            .map_err(|e| err(write_failure(path, &e)));
    }
    Err(err(format!(
        "the container has no {} to set it through (is /proc mounted?)",
        missing.join(" or ")
    )))
}

fn write_failure(path: &str, e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => format!("no such profile is loaded (write {path}: {e})"),
        Some(libc::EINVAL) => format!("AppArmor is not enabled in this kernel (write {path}: {e})"),
        _ => format!("write {path}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaded_profiles_are_matched_by_whole_name() {
        let list = "berth-test (enforce)\n/usr/sbin/ntpd (enforce)\nname with space (complain)\n";
        assert!(is_loaded(list, "berth-test"));
        assert!(is_loaded(list, "/usr/sbin/ntpd"));
        assert!(is_loaded(list, "name with space"));
        assert!(!is_loaded(list, "berth"));
        assert!(is_loaded("", "unconfined"));
    }

    #[test]
    fn enabled_only_when_the_module_says_y() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("enabled");
        assert!(!apparmor_enabled_in(&f));
        fs::write(&f, "N\n").unwrap();
        assert!(!apparmor_enabled_in(&f));
        fs::write(&f, "Y\n").unwrap();
        assert!(apparmor_enabled_in(&f));
    }
}
