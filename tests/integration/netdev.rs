//! config-linux.md "Network Devices": a host interface moved into the container's network
//! namespace under a new name, with its MTU, MAC, addresses and up state kept.

use std::process::{Command, Stdio};

use serde_json::json;

use crate::common::*;

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A veth pair that is deleted when the test ends, whichever way it ends (once one end
/// has moved, the container's namespace takes both with it and this finds nothing).
struct Veth(String);

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.0]);
        let _ = ip(&["link", "del", &format!("{}p", self.0)]);
    }
}

#[test]
fn net_device_moves_with_its_attributes() {
    moves_with_attributes('a', false);
}

/// The network namespace then belongs to the container's user namespace; the runtime,
/// root on the host, still moves the device in and configures it there.
#[test]
fn net_device_moves_into_a_user_namespace_container() {
    moves_with_attributes('u', true);
}

fn moves_with_attributes(tag: char, userns: bool) {
    let name = format!("bn{}{tag}", std::process::id());
    let peer = format!("{name}p");
    let _veth = Veth(name.clone());
    assert!(ip(&[
        "link", "add", &name, "type", "veth", "peer", "name", &peer
    ]));
    for args in [
        vec!["addr", "add", "169.254.77.1/32", "dev", &name],
        vec!["addr", "add", "fd00:77::1/128", "dev", &name, "nodad"],
        vec!["link", "set", &name, "mtu", "1400", "up"],
        vec!["link", "set", &peer, "up"],
    ] {
        assert!(ip(&args), "ip {args:?}");
    }
    // Through ip, not /sys/class/net: the test's network namespace need not be the one
    // its /sys was mounted in.
    let link = Command::new("ip")
        .args(["-o", "link", "show", &name])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout).into_owned();
    let mac = link
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {link:?}"))
        .to_string()
        + "\n";
    let mut env = Env::new(&[
        "sh",
        "-c",
        "cd /sys/class/net/eth7 && cat mtu address operstate; ip addr show eth7",
    ]);
    env.set(
        "/linux/netDevices",
        json!({ name.clone(): {"name": "eth7"} }),
    );
    if userns {
        env.with_userns(100000, 100000);
    }
    let out = env.run();
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1400", "{}", out.stdout);
    assert_eq!(lines[1], mac.trim(), "{}", out.stdout);
    assert_eq!(lines[2], "up", "{}", out.stdout);
    for want in ["inet 169.254.77.1/32", "inet6 fd00:77::1/128", ",UP"] {
        assert!(out.stdout.contains(want), "no {want:?} in {}", out.stdout);
    }
    assert!(!ip(&["link", "show", &name]), "{name} is still on the host");
}

#[test]
fn missing_net_device_fails_create_cleanly() {
    let name = format!("bn{}x", std::process::id());
    let mut env = Env::new(&["true"]);
    env.set("/linux/netDevices", json!({ name.clone(): {} }));
    let id = env.id();
    env.create(&id)
        .fails_with(&[&format!("linux.netDevices.{name}"), "no network interface"]);
    env.assert_clean(&id);
}
