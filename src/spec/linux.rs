//! The `linux` section: namespaces, id maps, devices and sysctls, planned.

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxDeviceType, LinuxNamespaceType, Spec};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{
    DevicePlan, Host, IdMap, Namespaces, NetDevicePlan, SpecError, container_path, invalid, shown,
};

/// `linux.netDevices` → interfaces to move, checked as the kernel would check the names
/// (so a bad one fails here with its field rather than as a bare EINVAL mid-create).
pub(super) fn net_devices(linux: &Linux, ns: &Namespaces) -> Result<Vec<NetDevicePlan>, SpecError> {
    let Some(map) = linux.net_devices().as_ref().filter(|m| !m.is_empty()) else {
        return Ok(Vec::new());
    };
    // Moving an interface into a namespace that outlives the container (or the host's own)
    // would hand it to whoever else uses that namespace: only a private, new one is safe.
    if !ns.new.contains(CloneFlags::CLONE_NEWNET) {
        return Err(invalid("linux.netDevices", "needs a new network namespace"));
    }
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (host, dev) in map {
        let field = format!("linux.netDevices.{host}");
        check_ifname(&field, host)?;
        let name = match dev.name() {
            Some(n) => {
                check_ifname(&format!("{field}.name"), n)?;
                n.clone()
            }
            None => host.clone(),
        };
        if !names.insert(name.clone()) {
            return Err(invalid(
                field,
                format!("{name:?}: another device has this name in the container"),
            ));
        }
        out.push(NetDevicePlan {
            host: host.clone(),
            name,
        });
    }
    out.sort_by(|a, b| a.host.cmp(&b.host));
    Ok(out)
}

/// An interface name the kernel accepts (dev_valid_name): 1 to 15 bytes (IFNAMSIZ less the
/// NUL), no '/', ':' or whitespace, not "." or "..".
fn check_ifname(field: &str, name: &str) -> Result<(), SpecError> {
    let bad = if name.is_empty() || name.len() > 15 {
        Some(format!("{name:?}: must be 1 to 15 bytes"))
    } else if name == "." || name == ".." {
        Some(format!("{name:?} is not an interface name"))
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some(format!("{name:?}: must not contain '/', ':' or whitespace"))
    } else {
        None
    };
    bad.map_or(Ok(()), |reason| Err(invalid(field, reason)))
}

/// `linux.devices` → device nodes to make; each must sit under /dev.
pub(super) fn devices(linux: &Linux) -> Result<Vec<DevicePlan>, SpecError> {
    let mut devices = Vec::new();
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        let field = format!("linux.devices[{i}]");
        let path = container_path(&format!("{field}.path"), d.path())?;
        // Device nodes belong in /dev: anywhere else one would replace a rootfs file (or
        // /dev itself) with a node.
        if !path.starts_with("/dev") || path.components().count() < 3 {
            return Err(invalid(
                format!("{field}.path"),
                format!("{}: must be a path under /dev", path.display()),
            ));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(invalid(format!("{field}.type"), "must be c, b, u or p"));
            }
        };
        let (major, minor) = (d.major(), d.minor());
        if kind != libc::S_IFIFO && !(0..=0xfff).contains(&major) {
            return Err(invalid(
                format!("{field}.major"),
                format!("{major} out of range 0..4095"),
            ));
        }
        if kind != libc::S_IFIFO && !(0..=0xfffff).contains(&minor) {
            return Err(invalid(
                format!("{field}.minor"),
                format!("{minor} out of range"),
            ));
        }
        devices.push(DevicePlan {
            path,
            kind,
            major: major as u64,
            minor: minor as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(devices)
}

/// config-linux.md makes `major` and `minor` REQUIRED for c, b and u devices, but oci-spec
/// fills a missing one with 0, so a typo would make a 0:0 node. Only presence matters, and
/// it is only known from the bytes: they are read again (skipping every value) just when a
/// device needs the numbers, so configs without devices pay nothing.
pub(super) fn check_device_numbers(data: &[u8], spec: &Spec) -> Result<(), SpecError> {
    let Some(devices) = spec.linux().as_ref().and_then(|l| l.devices().as_ref()) else {
        return Ok(());
    };
    let needs = |t: LinuxDeviceType| {
        matches!(
            t,
            LinuxDeviceType::C | LinuxDeviceType::B | LinuxDeviceType::U
        )
    };
    if !devices.iter().any(|d| needs(d.typ())) {
        return Ok(());
    }
    #[derive(Deserialize)]
    struct Doc {
        linux: Option<DocLinux>,
    }
    #[derive(Deserialize)]
    struct DocLinux {
        devices: Option<Vec<DocDevice>>,
    }
    #[derive(Deserialize)]
    struct DocDevice {
        major: Option<IgnoredAny>,
        minor: Option<IgnoredAny>,
    }
    // The same bytes just parsed as a Spec, so this cannot fail on their shape; were it to,
    // the spec's own numbers are all there is to go on.
    let Ok(doc) = serde_json::from_slice::<Doc>(data) else {
        return Ok(());
    };
    let raw = doc.linux.and_then(|l| l.devices).unwrap_or_default();
    for (i, (d, r)) in devices.iter().zip(&raw).enumerate() {
        if !needs(d.typ()) {
            continue;
        }
        for (name, present) in [("major", r.major.is_some()), ("minor", r.minor.is_some())] {
            if !present {
                return Err(invalid(
                    format!("linux.devices[{i}].{name}"),
                    format!("required for a {} device", d.typ().as_str()),
                ));
            }
        }
    }
    Ok(())
}

/// `linux.sysctl`, sorted by key; each key must be well formed and namespaced.
pub(super) fn sysctl(
    linux: &Linux,
    namespaces: &Namespaces,
) -> Result<Vec<(String, String)>, SpecError> {
    let mut sysctl: Vec<(String, String)> = linux
        .sysctl()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sysctl.sort();
    for (k, _) in &sysctl {
        if k.is_empty() || k.split(['.', '/']).any(|c| c.is_empty() || c == "..") {
            return Err(invalid(format!("linux.sysctl.{k}"), "malformed key"));
        }
        check_sysctl(k, namespaces)?;
    }
    Ok(sysctl)
}

/// Only sysctls that live in one of the container's namespaces may be set: any other is
/// host-wide, and writing it from the container would change the host.
pub(super) fn check_sysctl(key: &str, ns: &Namespaces) -> Result<(), SpecError> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let dotted = key.replace('/', ".");
    let needs = if IPC.contains(&dotted.as_str()) || dotted.starts_with("fs.mqueue.") {
        (CloneFlags::CLONE_NEWIPC, "ipc")
    } else if dotted.starts_with("net.") {
        (CloneFlags::CLONE_NEWNET, "network")
    } else if dotted == "kernel.hostname" || dotted == "kernel.domainname" {
        (CloneFlags::CLONE_NEWUTS, "uts")
    } else {
        return Err(invalid(
            format!("linux.sysctl.{key}"),
            "not in any namespace the container can have: setting it would change the host",
        ));
    };
    if !ns.has(needs.0) {
        return Err(invalid(
            format!("linux.sysctl.{key}"),
            format!("needs a private {} namespace", needs.1),
        ));
    }
    Ok(())
}

/// Id mappings must each fit in 32 bits, and no two may overlap on either side: the
/// kernel refuses such a map with a bare EINVAL long after planning.
fn check_id_maps(field: &str, maps: &[IdMap]) -> Result<(), SpecError> {
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    for (i, m) in maps.iter().enumerate() {
        for (side, start) in [("containerID", m.container_id), ("hostID", m.host_id)] {
            if end(start, m.size) > 1 << 32 {
                return Err(invalid(
                    format!("{field}[{i}]"),
                    format!("{side} {start} + size {} goes past 2^32", m.size),
                ));
            }
        }
        for (j, o) in maps[..i].iter().enumerate() {
            let overlap =
                |a: u32, b: u32| u64::from(a) < end(b, o.size) && u64::from(b) < end(a, m.size);
            if overlap(m.container_id, o.container_id) || overlap(m.host_id, o.host_id) {
                return Err(invalid(
                    format!("{field}[{i}]"),
                    format!("overlaps {field}[{j}]"),
                ));
            }
        }
    }
    Ok(())
}

fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

pub(super) fn namespaces(host: &dyn Host, linux: &Linux) -> Result<Namespaces, SpecError> {
    let mut ns = Namespaces::default();
    let mut seen = HashSet::new();
    for (i, n) in linux.namespaces().iter().flatten().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        let flag = ns_flag(n.typ());
        if !seen.insert(flag.bits()) {
            return Err(invalid(
                field,
                format!("duplicate namespace type {}", n.typ()),
            ));
        }
        match n.path() {
            None => ns.new |= flag,
            Some(p) if p.as_os_str().is_empty() => ns.new |= flag,
            Some(p) if !p.is_absolute() => {
                return Err(invalid(
                    format!("{field}.path"),
                    format!("{}: must be an absolute path", shown(p)),
                ));
            }
            Some(p) => {
                if let Some(fd) = host.namespace(&format!("{field}.path"), p, flag, n.typ())? {
                    ns.join.push((flag, fd, p.clone()));
                }
            }
        }
    }
    let map = |list: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMap> {
        list.iter()
            .flatten()
            .map(|m| IdMap {
                container_id: m.container_id(),
                host_id: m.host_id(),
                size: m.size(),
            })
            .collect()
    };
    ns.uid_mappings = map(linux.uid_mappings());
    ns.gid_mappings = map(linux.gid_mappings());
    let newuser = ns.new.contains(CloneFlags::CLONE_NEWUSER);
    let joined = ns
        .join
        .iter()
        .find(|(f, _, _)| *f == CloneFlags::CLONE_NEWUSER);
    if let Some((_, fd, path)) = joined {
        // runc 1.2+: the maps come from the namespace joined; given ones must agree.
        let (u, g) = crate::namespaces::user_maps_of(fd)
            .map_err(|e| invalid("linux.namespaces", format!("{}: {e}", path.display())))?;
        if ns.uid_mappings.is_empty() && ns.gid_mappings.is_empty() {
            (ns.uid_mappings, ns.gid_mappings) = (u, g);
        } else if (&ns.uid_mappings, &ns.gid_mappings) != (&u, &g) {
            let why = format!(
                "differ from the maps of the user namespace joined ({})",
                path.display()
            );
            return Err(invalid("linux.uidMappings", why));
        }
    } else if !newuser && (!ns.uid_mappings.is_empty() || !ns.gid_mappings.is_empty()) {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings need a new user namespace in linux.namespaces",
        ));
    }
    if newuser && (ns.uid_mappings.is_empty() || ns.gid_mappings.is_empty()) {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs both uidMappings and gidMappings",
        ));
    }
    for (field, list) in [
        ("linux.uidMappings", &ns.uid_mappings),
        ("linux.gidMappings", &ns.gid_mappings),
    ] {
        if let Some(i) = list.iter().position(|m| m.size == 0) {
            return Err(invalid(
                format!("{field}[{i}].size"),
                "must be greater than zero",
            ));
        }
        check_id_maps(field, list)?;
    }
    let timens = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    for (clock, off) in linux.time_offsets().iter().flatten() {
        if clock != "monotonic" && clock != "boottime" {
            return Err(invalid(
                format!("linux.timeOffsets.{clock}"),
                "only monotonic and boottime clocks can be offset",
            ));
        }
        if !ns.new.contains(timens) {
            return Err(invalid(
                format!("linux.timeOffsets.{clock}"),
                "needs a new time namespace in linux.namespaces",
            ));
        }
        ns.time_offsets.push((
            clock.clone(),
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0),
        ));
    }
    ns.time_offsets.sort();
    Ok(ns)
}

/// Opens a namespace file and checks with NS_GET_NSTYPE that it is one of the wanted type.
pub(super) fn open_namespace(
    field: &str,
    path: &Path,
    flag: CloneFlags,
    typ: LinuxNamespaceType,
) -> Result<OwnedFd, SpecError> {
    let file = File::open(path).map_err(|e| invalid(field, format!("{}: {e}", path.display())))?;
    // NS_GET_NSTYPE = _IO(0xb7, 0x3)
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: ioctl on an fd we own, no pointer argument.
    let got = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
    if got < 0 {
        return Err(invalid(
            field,
            format!("{}: not a namespace file", path.display()),
        ));
    }
    if got != flag.bits() {
        return Err(invalid(
            field,
            format!("{}: not a {} namespace", path.display(), spec_name(typ)),
        ));
    }
    Ok(file.into())
}

/// The namespace type as config.json spells it ("network", "mount", …).
fn spec_name(t: LinuxNamespaceType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(devices: &str) -> Result<(), SpecError> {
        let data = format!(r#"{{"ociVersion":"1.0.2","linux":{{"devices":{devices}}}}}"#);
        let spec = crate::spec::parse(data.as_bytes(), Path::new("c.json"))?;
        check_device_numbers(data.as_bytes(), &spec)
    }

    #[test]
    fn device_numbers_required_unless_fifo() {
        assert!(numbers(r#"[{"path":"/dev/x","type":"c","major":1,"minor":3}]"#).is_ok());
        assert!(numbers(r#"[{"path":"/dev/x","type":"p"}]"#).is_ok());
        assert!(numbers("[]").is_ok());
        let e = numbers(r#"[{"path":"/dev/p","type":"p"},{"path":"/dev/x","type":"b","minor":3}]"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.devices[1].major: required for a b device"),
            "{e}"
        );
        let e = numbers(r#"[{"path":"/dev/x","type":"u","major":1}]"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.devices[0].minor: required for a u device"),
            "{e}"
        );
    }

    fn netdevs(devs: &str, new: CloneFlags) -> Result<Vec<NetDevicePlan>, String> {
        let data = format!(r#"{{"ociVersion":"1.0.2","linux":{{"netDevices":{devs}}}}}"#);
        let spec = crate::spec::parse(data.as_bytes(), Path::new("c.json")).unwrap();
        let ns = Namespaces {
            new,
            ..Namespaces::default()
        };
        net_devices(&spec.linux().clone().unwrap(), &ns).map_err(|e| e.to_string())
    }

    #[test]
    fn net_devices_named_and_checked() {
        let net = CloneFlags::CLONE_NEWNET;
        let p = netdevs(r#"{"veth1": {"name": "eth7"}, "eth2": {}}"#, net).unwrap();
        let pair = |h: &str, n: &str| NetDevicePlan {
            host: h.into(),
            name: n.into(),
        };
        assert_eq!(p, vec![pair("eth2", "eth2"), pair("veth1", "eth7")]);
        assert!(netdevs("{}", CloneFlags::empty()).unwrap().is_empty());
        let e = netdevs(r#"{"eth1": {}}"#, CloneFlags::empty()).unwrap_err();
        assert!(
            e.contains("linux.netDevices: needs a new network namespace"),
            "{e}"
        );
        for (devs, needle) in [
            (r#"{"eth9": {"name": ""}}"#, "linux.netDevices.eth9.name"),
            (
                r#"{"eth9": {"name": "a23456789012345x"}}"#,
                "linux.netDevices.eth9.name",
            ),
            (r#"{"eth9": {"name": "a/b"}}"#, "linux.netDevices.eth9.name"),
            (r#"{"eth9": {"name": "a b"}}"#, "linux.netDevices.eth9.name"),
            (r#"{"eth9": {"name": ".."}}"#, "linux.netDevices.eth9.name"),
            (r#"{".": {}}"#, "linux.netDevices..:"),
            (
                r#"{"a": {"name": "x"}, "b": {"name": "x"}}"#,
                "another device",
            ),
        ] {
            let e = netdevs(devs, net).unwrap_err();
            assert!(e.contains(needle), "{devs}: {e}");
        }
        assert!(netdevs(r#"{"eth9": {"name": "a23456789012345"}}"#, net).is_ok());
    }

    #[test]
    fn id_maps_must_not_overlap_or_wrap() {
        let m = |c, h, size| IdMap {
            container_id: c,
            host_id: h,
            size,
        };
        assert!(check_id_maps("u", &[m(0, 1000, 10), m(10, 2000, 10)]).is_ok());
        assert!(check_id_maps("u", &[m(0, 1000, 10), m(9, 2000, 10)]).is_err());
        assert!(check_id_maps("u", &[m(0, 1000, 10), m(10, 1009, 10)]).is_err());
        assert!(check_id_maps("u", &[m(0, u32::MAX, 1)]).is_ok());
        assert!(check_id_maps("u", &[m(0, u32::MAX, 2)]).is_err());
    }

    #[test]
    fn only_namespaced_sysctls() {
        let ns = Namespaces {
            new: CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNET,
            ..Namespaces::default()
        };
        for ok in [
            "kernel.msgmax",
            "fs.mqueue.queues_max",
            "net.ipv4.ip_forward",
            "net/core/somaxconn",
        ] {
            assert!(check_sysctl(ok, &ns).is_ok(), "{ok}");
        }
        for bad in [
            "vm.swappiness",
            "kernel.hostname",
            "kernel.pid_max",
            "fs.file-max",
        ] {
            assert!(check_sysctl(bad, &ns).is_err(), "{bad}");
        }
    }
}
