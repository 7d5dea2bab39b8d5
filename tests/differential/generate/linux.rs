//! config-linux: namespaces, sysctls, hostname and domainname, masked and readonly paths,
//! the read-only root.

use serde_json::json;

use super::{namespaces as ns_list, with_userns};
use crate::scenario::{Rootfs, Scenario};

const OPTIONAL: [&str; 5] = ["pid", "network", "ipc", "uts", "cgroup"];

/// Every subset of the optional namespaces, with and without a user namespace.
pub fn namespaces() -> Vec<Scenario> {
    let mut v = Vec::new();
    for mask in 0..(1u32 << OPTIONAL.len()) {
        let chosen: Vec<&str> = (0..OPTIONAL.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| OPTIONAL[i])
            .collect();
        for user in [false, true] {
            let mut all = chosen.clone();
            if user {
                all.push("user");
            }
            let name = if all.is_empty() {
                "none".to_string()
            } else {
                all.iter().map(|n| short(n)).collect::<Vec<_>>().join("+")
            };
            let mut s = Scenario::new(format!("ns/{name}")).set("/linux/namespaces", ns_list(&all));
            if !chosen.contains(&"uts") {
                s = s.unset("/hostname");
            }
            if user {
                s = userns_mounts(with_userns(s), &chosen);
            }
            v.push(s);
        }
    }
    v
}

/// In a user namespace the kernel allows mounting proc, sysfs and mqueue only with the
/// pid, network and ipc namespaces they belong to; without them the scenario binds the
/// sandbox's /proc and /sys instead (as `runc spec --rootless` does for /sys) and leaves
/// /dev/mqueue out, so the container runs
/// and its observations compare, rather than both runtimes failing alike.
fn userns_mounts(s: Scenario, chosen: &[&str]) -> Scenario {
    let bind = |src: &str| json!({"type": "bind", "source": src, "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
    let swaps = [
        ("pid", "/proc"),
        ("network", "/sys"),
        ("ipc", "/dev/mqueue"),
    ];
    let swaps: Vec<&str> = swaps
        .iter()
        .filter(|(ns, _)| !chosen.contains(ns))
        .map(|(_, dest)| *dest)
        .collect();
    s.m(move |c, _| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        // The sandbox has no /dev/mqueue to bind: without an ipc namespace, no mqueue.
        if swaps.contains(&"/dev/mqueue") {
            mounts.retain(|m| m["destination"] != "/dev/mqueue");
        }
        for m in mounts.iter_mut() {
            let dest = m["destination"].as_str().unwrap_or_default().to_string();
            if swaps.contains(&dest.as_str()) {
                let mut b = bind(&dest);
                b["destination"] = json!(dest);
                *m = b;
            }
        }
    })
}

fn short(n: &str) -> &str {
    if n == "network" { "net" } else { n }
}

/// (name, key, value): the value is read back from /proc/sys/KEY-AS-PATH.
const SYSCTLS: [(&str, &str, &str); 8] = [
    ("ip-forward", "net.ipv4.ip_forward", "1"),
    ("somaxconn", "net.core.somaxconn", "1234"),
    ("ping-range", "net.ipv4.ping_group_range", "0 2147483647"),
    ("shmmax", "kernel.shmmax", "123456789"),
    ("msgmax", "kernel.msgmax", "4096"),
    ("mqueue", "fs.mqueue.msg_max", "20"),
    ("domainname", "kernel.domainname", "sysctl.example"),
    ("unknown", "kernel.no_such_knob", "1"),
];

pub fn sysctls() -> Vec<Scenario> {
    let mut v = Vec::new();
    for (name, key, val) in SYSCTLS {
        let extra = format!("o sysctl; cat /proc/sys/{} 2>&1", key.replace('.', "/"));
        v.push(
            Scenario::new(format!("sysctl/{name}"))
                .set("/linux/sysctl", json!({ key: val }))
                .extra(&extra),
        );
    }
    // Namespaced sysctls without their namespace: the runtime must refuse them.
    for (name, key, drop) in [
        ("net-without-netns", "net.ipv4.ip_forward", "network"),
        ("ipc-without-ipcns", "kernel.shmmax", "ipc"),
        ("uts-without-utsns", "kernel.domainname", "uts"),
    ] {
        let keep: Vec<&str> = OPTIONAL.into_iter().filter(|n| *n != drop).collect();
        let mut s = Scenario::new(format!("sysctl/{name}"))
            .set("/linux/sysctl", json!({ key: "1" }))
            .set("/linux/namespaces", ns_list(&keep));
        if drop == "uts" {
            s = s.unset("/hostname");
        }
        v.push(s);
    }
    v
}

pub fn hostnames() -> Vec<Scenario> {
    let mut v = Vec::new();
    let names = [
        ("absent", None),
        ("empty", Some("")),
        ("set", Some("box-1")),
    ];
    let domains = [("nodomain", None), ("domain", Some("example.org"))];
    for (hn, h) in names {
        for (dn, d) in domains {
            let mut s = Scenario::new(format!("host/{hn}-{dn}"));
            s = match h {
                None => s.unset("/hostname"),
                Some(h) => s.set("/hostname", json!(h)),
            };
            if let Some(d) = d {
                s = s.set("/domainname", json!(d));
            }
            v.push(s);
        }
    }
    let no_uts = ns_list(&["pid", "network", "ipc", "cgroup"]);
    v.push(Scenario::new("host/hostname-without-uts").set("/linux/namespaces", no_uts.clone()));
    v.push(
        Scenario::new("host/domainname-without-uts")
            .unset("/hostname")
            .set("/domainname", json!("example.org"))
            .set("/linux/namespaces", no_uts),
    );
    v
}

/// maskedPaths, readonlyPaths and root.readonly.
pub fn paths() -> Vec<Scenario> {
    let masked = [
        ("default", None),
        ("none", Some(json!([]))),
        ("file", Some(json!(["/proc/cpuinfo"]))),
        ("dir", Some(json!(["/sys/kernel", "/proc/sys/kernel"]))),
        ("missing", Some(json!(["/no/such/path"]))),
    ];
    let readonly = [
        ("default", None),
        ("none", Some(json!([]))),
        ("tmp", Some(json!(["/tmp", "/proc/sys"]))),
        ("missing", Some(json!(["/no/such/path"]))),
    ];
    let mut v = Vec::new();
    for (mn, m) in &masked {
        for (rn, r) in &readonly {
            let mut s = Scenario::new(format!("paths/masked-{mn}-readonly-{rn}"))
                .extra("o masked; cat /proc/cpuinfo 2>&1 | head -1; ls /sys/kernel 2>&1 | head -1");
            if let Some(m) = m {
                s = s.set("/linux/maskedPaths", m.clone());
            }
            if let Some(r) = r {
                s = s.set("/linux/readonlyPaths", r.clone());
            }
            v.push(s);
        }
    }
    for ro in [false, true] {
        v.push(
            Scenario::new(format!("paths/root-readonly-{ro}"))
                .set("/root/readonly", json!(ro))
                .rootfs(Rootfs::Private("base"))
                .extra("o write; touch /tmp/x && echo tmp ok; touch /etc/x 2>&1; rm -f /etc/x"),
        );
    }
    v
}
