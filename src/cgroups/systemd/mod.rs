//! The systemd cgroup driver (`--systemd-cgroup`), with runc's semantics: the container's
//! cgroup is a transient scope that systemd makes when asked over D-Bus, named from
//! linux.cgroupsPath "slice:prefix:name" (runc's docs/systemd.md). Resources go both into
//! the unit's properties and through cgroupfs into the scope's directory, as runc does.
//! Only the unified cgroup v2 hierarchy is supported, and only as root.

mod bus;
mod props;
mod wire;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::CgroupError;
use bus::{Bus, BusError};
use wire::Value;

const MOUNT: &str = "/sys/fs/cgroup";
/// runc waits this long for systemd to finish a unit's start or stop job.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// Set once by `main` for create and run when the global flag is given.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// A transient unit holding a container, as recorded in its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// "prefix-name.scope".
    pub name: String,
    /// The slice it is placed in ("system.slice", "kubepods-burstable.slice"...).
    pub slice: String,
}

/// sd_booted(3): systemd is the running init.
pub fn running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// /sys/fs/cgroup is the unified cgroup v2 hierarchy.
fn unified() -> bool {
    nix::sys::statfs::statfs(MOUNT)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Whether this host can run containers under `--systemd-cgroup` (`features` says so).
pub fn supported() -> bool {
    running() && unified()
}

/// Turns the driver on for this invocation, or says in one line why it cannot be.
pub fn enable() -> Result<(), String> {
    if !running() {
        return Err("--systemd-cgroup: systemd is not running on this host \
            (no /run/systemd/system), so it cannot manage the container's cgroup; \
            drop the flag to let berth manage cgroupfs"
            .into());
    }
    if !unified() {
        return Err(format!(
            "--systemd-cgroup: berth's systemd driver needs the unified cgroup v2 hierarchy \
             and {MOUNT} is not cgroup2; drop the flag to let berth manage cgroupfs"
        ));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "--systemd-cgroup: needs root (berth does not talk to a user's \
            systemd instance)"
                .into(),
        );
    }
    REQUESTED.store(true, Ordering::Relaxed);
    Ok(())
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

fn path_err(cgroups_path: &str, reason: impl std::fmt::Display) -> CgroupError {
    CgroupError::State(format!("linux.cgroupsPath {cgroups_path:?}: {reason}"))
}

/// runc's reading of cgroupsPath under the systemd driver: "slice:prefix:name"; unset is
/// ":berth:<id>" (runc's is ":runc:<id>"); an empty slice is system.slice.
pub fn parse_path(
    cgroups_path: Option<&str>,
    id: &str,
) -> Result<(String, String, String), CgroupError> {
    let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
        None => ("", "berth", id),
        Some(p) => match p.split(':').collect::<Vec<_>>()[..] {
            [s, pre, n] => (s, pre, n),
            _ => {
                return Err(path_err(
                    p,
                    "expected \"slice:prefix:name\" for systemd cgroups",
                ));
            }
        },
    };
    if name.ends_with(".slice") {
        // runc then makes the slice itself the container's unit (no pids in it).
        return Err(path_err(
            cgroups_path.unwrap_or(""),
            "a name ending in .slice (a slice as the container's unit) is not supported; \
             berth makes a scope",
        ));
    }
    if name.is_empty() || name.contains('/') || prefix.contains('/') {
        return Err(path_err(
            cgroups_path.unwrap_or(""),
            "the prefix and name must be non-empty unit name parts without '/'",
        ));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    Ok((slice.to_string(), prefix.to_string(), name.to_string()))
}

/// runc's ExpandSlice: "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" → "/".
pub fn expand_slice(slice: &str) -> Result<String, String> {
    let bad = || format!("invalid slice name {slice:?}");
    let base = slice
        .strip_suffix(".slice")
        .filter(|b| !b.is_empty() && !slice.contains('/'))
        .ok_or_else(bad)?;
    if base == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path.push_str(&format!("/{prefix}{part}.slice"));
        prefix.push_str(&format!("{part}-"));
    }
    Ok(path)
}

/// The unit and its cgroup directory for a container, before anything is made.
pub fn plan(id: &str, cgroups_path: Option<&Path>) -> Result<(Unit, PathBuf), CgroupError> {
    let raw = cgroups_path.map(|p| p.to_string_lossy().into_owned());
    let (slice, prefix, name) = parse_path(raw.as_deref(), id)?;
    let expanded = expand_slice(&slice).map_err(|e| path_err(raw.as_deref().unwrap_or(""), e))?;
    let unit = format!("{prefix}-{name}.scope");
    let dir = Path::new(MOUNT)
        .join(expanded.trim_start_matches('/'))
        .join(&unit);
    Ok((Unit { name: unit, slice }, dir))
}

fn bus_err(unit: &str, step: &str) -> impl FnOnce(BusError) -> CgroupError {
    let (unit, step) = (unit.to_string(), step.to_string());
    move |e| CgroupError::State(format!("systemd: {step} {unit}: {e}"))
}

/// systemd's D-Bus object path of a unit (bus_label_escape: every byte but ASCII letters,
/// and digits after the first byte, becomes _XX).
pub fn unit_object_path(unit: &str) -> String {
    let mut out = String::from("/org/freedesktop/systemd1/unit/");
    for (i, b) in unit.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// Waits for the JobRemoved signal of `job`; its result ("done", "failed", "timeout"…).
fn job_result(bus: &mut Bus, job: &str) -> Result<String, BusError> {
    let m = bus.wait_signal(JOB_TIMEOUT, "systemd's JobRemoved", |m| {
        m.member.as_deref() == Some("JobRemoved")
            && m.body.get(1).and_then(Value::as_str) == Some(job)
    })?;
    Ok(m.body
        .get(3)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string())
}

fn reset_failed(bus: &mut Bus, unit: &str) {
    let _ = bus.manager("ResetFailedUnit", &[Value::str(unit)]);
}

fn manager_version(bus: &mut Bus) -> u32 {
    let body = [Value::str(bus::MANAGER), Value::str("Version")];
    let got = bus.call(
        bus::SYSTEMD,
        bus::SYSTEMD_PATH,
        "org.freedesktop.DBus.Properties",
        "Get",
        &body,
    );
    match got.ok().and_then(|mut b| b.pop()) {
        Some(Value::Variant(v)) => v.as_str().map(props::version_number).unwrap_or(0),
        _ => 0,
    }
}

/// Starts the scope with `pid` in it (runc's Apply), checks systemd put it at `dir`, then
/// applies `res` (runc's Set).
pub fn start(
    unit: &Unit,
    dir: &Path,
    pid: i32,
    res: Option<&LinuxResources>,
) -> Result<(), CgroupError> {
    let name = &unit.name;
    let mut bus = Bus::systemd().map_err(bus_err(name, "connect to start"))?;
    bus.watch_jobs().map_err(bus_err(name, "watch jobs for"))?;
    let desc = format!("berth container {}", name.trim_end_matches(".scope"));
    let mut props = vec![
        Value::prop("Description", Value::Str(desc)),
        Value::prop("Slice", Value::str(&unit.slice)),
        Value::prop("Delegate", Value::Bool(true)),
        Value::prop(
            "PIDs",
            Value::Array("u".into(), vec![Value::U32(pid as u32)]),
        ),
        Value::prop("MemoryAccounting", Value::Bool(true)),
        Value::prop("CPUAccounting", Value::Bool(true)),
        Value::prop("IOAccounting", Value::Bool(true)),
        Value::prop("TasksAccounting", Value::Bool(true)),
        Value::prop("DefaultDependencies", Value::Bool(false)),
    ];
    if let Some(r) = res {
        props.extend(props::properties(r, || manager_version(&mut bus))?);
    }
    let body = [
        Value::str(name),
        Value::str("replace"),
        Value::Array("(sv)".into(), props),
        Value::Array("(sa(sv))".into(), vec![]),
    ];
    let mut reply = bus.manager("StartTransientUnit", &body);
    if reply.as_ref().err().and_then(BusError::name) == Some("org.freedesktop.systemd1.UnitExists")
    {
        // Maybe a failed leftover of an earlier container: reset it and retry once.
        reset_failed(&mut bus, name);
        reply = bus.manager("StartTransientUnit", &body);
    }
    let job = reply
        .map_err(bus_err(name, "start transient unit"))?
        .first()
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let result = job_result(&mut bus, &job);
    if !matches!(result.as_deref(), Ok("done")) {
        reset_failed(&mut bus, name);
        return Err(match result {
            Ok(r) => CgroupError::State(format!("systemd: creating unit {name}: job {r}")),
            Err(e) => bus_err(name, "wait for the start of")(e),
        });
    }
    check_control_group(&mut bus, name, dir)?;
    if let Some(r) = res {
        super::apply(&super::Controllers::of(&[dir.to_path_buf()])?, r, false)?;
    }
    Ok(())
}

/// The scope's ControlGroup property must be the directory berth planned (and recorded).
fn check_control_group(bus: &mut Bus, name: &str, dir: &Path) -> Result<(), CgroupError> {
    let body = [
        Value::str("org.freedesktop.systemd1.Scope"),
        Value::str("ControlGroup"),
    ];
    let got = bus
        .call(
            bus::SYSTEMD,
            &unit_object_path(name),
            "org.freedesktop.DBus.Properties",
            "Get",
            &body,
        )
        .map_err(bus_err(name, "read ControlGroup of"))?;
    let cg = match got.first() {
        Some(Value::Variant(v)) => v.as_str().unwrap_or("").to_string(),
        _ => String::new(),
    };
    let want = Path::new("/").join(dir.strip_prefix(MOUNT).unwrap_or(dir));
    if Path::new(&cg) != want {
        return Err(CgroupError::State(format!(
            "systemd: unit {name} is in cgroup {cg:?}, not {} as planned",
            want.display()
        )));
    }
    Ok(())
}

/// `update`: the properties systemd knows (SetUnitProperties, runtime only), then every
/// resource through cgroupfs.
pub fn update(unit: &Unit, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
    let name = &unit.name;
    let mut bus = Bus::systemd().map_err(bus_err(name, "connect to update"))?;
    let props = props::properties(res, || manager_version(&mut bus))?;
    if !props.is_empty() {
        let body = [
            Value::str(name),
            Value::Bool(true),
            Value::Array("(sv)".into(), props),
        ];
        bus.manager("SetUnitProperties", &body)
            .map_err(bus_err(name, "set properties of"))?;
    }
    super::apply(&super::Controllers::of(&[dir.to_path_buf()])?, res, true)
}

/// Stops the unit and lets systemd forget it; a unit already gone is fine.
pub fn stop(unit: &Unit) -> Result<(), CgroupError> {
    let name = &unit.name;
    let mut bus = Bus::systemd().map_err(bus_err(name, "connect to stop"))?;
    bus.watch_jobs().map_err(bus_err(name, "watch jobs for"))?;
    match bus.manager("StopUnit", &[Value::str(name), Value::str("replace")]) {
        Ok(body) => {
            let job = body
                .first()
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match job_result(&mut bus, &job) {
                Ok(r) if r != "done" => crate::logging::warn(&format!(
                    "systemd: stopping unit {name}: job {r}; continuing"
                )),
                Ok(_) => {}
                Err(e) => return Err(bus_err(name, "wait for the stop of")(e)),
            }
        }
        Err(e) if e.name() == Some("org.freedesktop.systemd1.NoSuchUnit") => {}
        Err(e) => return Err(bus_err(name, "stop")(e)),
    }
    reset_failed(&mut bus, name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_path_forms() {
        let p = |s: Option<&str>| parse_path(s, "c1");
        let t = |a: &str, b: &str, c: &str| Ok((a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(
            p(None).map_err(|e| e.to_string()),
            t("system.slice", "berth", "c1")
        );
        assert_eq!(
            p(Some("")).map_err(|e| e.to_string()),
            t("system.slice", "berth", "c1")
        );
        assert_eq!(
            p(Some("system.slice:cri-containerd:abc")).map_err(|e| e.to_string()),
            t("system.slice", "cri-containerd", "abc")
        );
        assert_eq!(
            p(Some(":libpod:abc")).map_err(|e| e.to_string()),
            t("system.slice", "libpod", "abc")
        );
        for bad in ["/a/b", "a:b", "a:b:c:d", "s.slice:p:", "s.slice:p:x.slice"] {
            let e = p(Some(bad)).unwrap_err().to_string();
            assert!(e.starts_with("linux.cgroupsPath"), "{bad}: {e}");
        }
    }

    #[test]
    fn slices_expand_as_runc() {
        assert_eq!(expand_slice("system.slice").as_deref(), Ok("/system.slice"));
        assert_eq!(expand_slice("-.slice").as_deref(), Ok("/"));
        assert_eq!(
            expand_slice("kubepods-besteffort-pod12.slice").as_deref(),
            Ok("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice")
        );
        for bad in [
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a.scope",
            ".slice",
            "a/b.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plan_names_the_scope_and_its_directory() {
        let (u, dir) = plan("c1", Some(Path::new("machine-x.slice:libpod:abc"))).expect("plan");
        assert_eq!(u.name, "libpod-abc.scope");
        assert_eq!(u.slice, "machine-x.slice");
        assert_eq!(
            dir,
            PathBuf::from("/sys/fs/cgroup/machine.slice/machine-x.slice/libpod-abc.scope")
        );
        let (u, dir) = plan("c1", None).expect("plan");
        assert_eq!(u.name, "berth-c1.scope");
        assert_eq!(
            dir,
            PathBuf::from("/sys/fs/cgroup/system.slice/berth-c1.scope")
        );
        let (_, dir) = plan("c1", Some(Path::new("-.slice:p:n"))).expect("plan");
        assert_eq!(dir, PathBuf::from("/sys/fs/cgroup/p-n.scope"));
    }

    #[test]
    fn object_paths_escape_as_systemd() {
        assert_eq!(
            unit_object_path("berth-t-1.scope"),
            "/org/freedesktop/systemd1/unit/berth_2dt_2d1_2escope"
        );
        assert_eq!(
            unit_object_path("1a_b.scope"),
            "/org/freedesktop/systemd1/unit/_31a_5fb_2escope"
        );
    }
}
