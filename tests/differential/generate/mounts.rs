//! Mounts: tmpfs with modes, sizes and flags; bind and rbind, ro/rw, with nosuid, nodev,
//! noexec; propagation on a bind; rootfsPropagation; odd destinations and sources.

use serde_json::{Value, json};

use super::{namespaces, with_userns};
use crate::scenario::{Ctx, Rootfs, Scenario};

pub fn all() -> Vec<Scenario> {
    let mut v = tmpfs();
    v.extend(binds());
    v.extend(propagation());
    v.extend(odd());
    v.extend(options());
    v
}

/// Appends `m` (with `{shared}` and `{rootfs}` in its source replaced) to the config's mounts.
fn mount(s: Scenario, m: Value) -> Scenario {
    s.m(move |c, ctx: &Ctx| {
        let mut m = m.clone();
        if let Some(src) = m["source"].as_str() {
            let shared = ctx.shared.to_string_lossy();
            let rootfs = ctx.rootfs.to_string_lossy();
            m["source"] = json!(
                src.replace("{shared}", &shared)
                    .replace("{rootfs}", &rootfs)
            );
        }
        c["mounts"].as_array_mut().unwrap().push(m);
    })
}

fn looks(path: &str) -> String {
    format!(
        "o target; stat -c '%a %u %g %F' {path} 2>&1; ls {path} 2>&1 | head -3; df -k {path} | tail -1 | awk '{{print $2}}'"
    )
}

fn tmpfs() -> Vec<Scenario> {
    let modes = [
        ("nomode", None),
        ("mode0700", Some("mode=0700")),
        ("mode1777", Some("mode=1777")),
        ("mode0755", Some("mode=755")),
    ];
    let flags: [(&str, &[&str]); 4] = [
        ("plain", &[]),
        ("nosuid", &["nosuid"]),
        ("nodev-noexec", &["nodev", "noexec"]),
        ("ro", &["ro"]),
    ];
    let mut v = Vec::new();
    for (mn, m) in modes {
        for (fname, f) in flags {
            let mut opts: Vec<&str> = f.to_vec();
            opts.extend(m);
            let s = Scenario::new(format!("mount/tmpfs-{mn}-{fname}")).extra(&looks("/mnt/a"));
            v.push(mount(s, json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs", "options": opts})));
        }
    }
    for size in ["size=1m", "size=64k", "size=50%", "nr_inodes=100"] {
        let s = Scenario::new(format!("mount/tmpfs-{size}")).extra(&looks("/mnt/a"));
        v.push(mount(
            s,
            json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs", "options": [size]}),
        ));
    }
    v
}

fn binds() -> Vec<Scenario> {
    let kinds = ["bind", "rbind"];
    let modes = ["rw", "ro"];
    let flags = ["none", "nosuid", "nodev", "noexec"];
    let mut v = Vec::new();
    for k in kinds {
        for m in modes {
            for f in flags {
                let mut opts = vec![k, m];
                if f != "none" {
                    opts.push(f);
                }
                let s = Scenario::new(format!("mount/{k}-dir-{m}-{f}")).extra(&looks("/mnt/b"));
                v.push(mount(s, json!({"destination": "/mnt/b", "type": "bind", "source": "{shared}/dir", "options": opts})));
            }
        }
    }
    for m in modes {
        let s = Scenario::new(format!("mount/bind-file-{m}")).extra("o target; cat /mnt/file");
        v.push(mount(s, json!({"destination": "/mnt/file", "type": "bind", "source": "{shared}/file", "options": ["bind", m]})));
    }
    // A bind given only as options (no type), as engines write it.
    let s = Scenario::new("mount/bind-typeless").extra(&looks("/mnt/b"));
    v.push(mount(
        s,
        json!({"destination": "/mnt/b", "source": "{shared}/dir", "options": ["rbind", "ro"]}),
    ));
    v
}

fn propagation() -> Vec<Scenario> {
    let props = [
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ];
    let mut v = Vec::new();
    for p in props {
        let s = Scenario::new(format!("mount/bind-propagation-{p}"));
        v.push(mount(s, json!({"destination": "/mnt/b", "type": "bind", "source": "{shared}/dir", "options": ["rbind", p]})));
    }
    for p in [
        "private", "rprivate", "slave", "rslave", "shared", "rshared",
    ] {
        v.push(
            Scenario::new(format!("mount/rootfs-propagation-{p}"))
                .set("/linux/rootfsPropagation", json!(p)),
        );
        // What containerd writes for a Kubernetes Bidirectional volume: the volume's bind
        // carries the same propagation as the root.
        let s = Scenario::new(format!("mount/rootfs-propagation-{p}-with-bind"))
            .set("/linux/rootfsPropagation", json!(p));
        v.push(mount(s, json!({"destination": "/mnt/b", "type": "bind", "source": "{shared}/dir", "options": ["rbind", p]})));
    }
    v
}

/// Destinations that do not exist yet (the runtime creates them: private rootfs), nested
/// mounts, a missing source, an unknown type.
fn odd() -> Vec<Scenario> {
    let mut v = Vec::new();
    let s = Scenario::new("mount/destination-created")
        .rootfs(Rootfs::Private("base"))
        .extra(&looks("/new/dir"));
    v.push(mount(
        s,
        json!({"destination": "/new/dir", "type": "tmpfs", "source": "tmpfs"}),
    ));
    let s = Scenario::new("mount/nested-tmpfs").extra(&looks("/mnt/c"));
    let s = mount(
        s,
        json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}),
    );
    v.push(mount(s, json!({"destination": "/mnt/c", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})));
    let s = Scenario::new("mount/bind-missing-source");
    v.push(mount(s, json!({"destination": "/mnt/b", "type": "bind", "source": "{shared}/no-such", "options": ["rbind"]})));
    let s = Scenario::new("mount/unknown-type");
    v.push(mount(
        s,
        json!({"destination": "/mnt/b", "type": "nosuchfs", "source": "x"}),
    ));
    let s = Scenario::new("mount/unknown-option").extra(&looks("/mnt/a"));
    v.push(mount(s, json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs", "options": ["frobnicate"]})));
    let s = Scenario::new("mount/over-proc-sub").extra("o target; cat /proc/uptime 2>&1 | wc -l");
    v.push(mount(
        s,
        json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}),
    ));
    let s = Scenario::new("mount/mqueue-second").extra(&looks("/mnt/d"));
    v.push(mount(
        s,
        json!({"destination": "/mnt/d", "type": "mqueue", "source": "mqueue"}),
    ));
    let s = Scenario::new("mount/recursive-ro").extra(&looks("/mnt/b"));
    v.push(mount(s, json!({"destination": "/mnt/b", "type": "bind", "source": "{shared}/dir", "options": ["rbind", "rro"]})));
    v
}

/// Option and destination forms engines write that runc accepts: filesystem data on a
/// bind (the kernel ignores it), a relative destination, a read-only /dev, a bind whose
/// source lies in an earlier mount of the same config, a destination through a dangling
/// symlink in the image.
fn options() -> Vec<Scenario> {
    let mut v = Vec::new();
    for (name, opts) in [
        ("bind-with-mode", json!(["rbind", "mode=755"])),
        ("bind-with-unknown", json!(["bind", "ro", "frobnicate"])),
    ] {
        let s = Scenario::new(format!("mount/{name}")).extra(&looks("/mnt/b"));
        v.push(mount(
            s,
            json!({"destination": "/mnt/b", "type": "bind", "source": "{shared}/dir", "options": opts}),
        ));
    }
    let s = Scenario::new("mount/relative-destination").extra(&looks("/mnt/a"));
    v.push(mount(
        s,
        json!({"destination": "mnt/a", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    ));
    v.push(
        Scenario::new("mount/dev-ro")
            .m(|c, _| {
                for m in c["mounts"].as_array_mut().unwrap() {
                    if m["destination"] == "/dev" {
                        m["options"].as_array_mut().unwrap().push(json!("ro"));
                    }
                }
            })
            .extra(
                "o target; touch /dev/x 2>&1 | sed 's/.*: //'; echo > /dev/null && echo null-ok",
            ),
    );
    // The second mount's source is the first mount's destination, seen from the host.
    let s = Scenario::new("mount/bind-source-in-earlier-mount").extra(&looks("/mnt/c"));
    let s = mount(
        s,
        json!({"destination": "/mnt/a", "type": "bind", "source": "{shared}/dir", "options": ["rbind"]}),
    );
    v.push(mount(
        s,
        json!({"destination": "/mnt/c", "type": "bind", "source": "{rootfs}/mnt/a/sub", "options": ["rbind"]}),
    ));
    let s = Scenario::new("mount/destination-through-dangling-symlink")
        .rootfs(Rootfs::Private("base"))
        .m(|_, ctx| {
            let link = ctx.rootfs.join("mnt/dangling");
            let _ = std::os::unix::fs::symlink("/mnt/made-by-runtime/inner", link);
        })
        .extra(&format!(
            "{}; ls -d /mnt/made-by-runtime/inner/x 2>&1",
            looks("/mnt/dangling/x")
        ));
    v.push(mount(
        s,
        json!({"destination": "/mnt/dangling/x", "type": "tmpfs", "source": "tmpfs"}),
    ));
    v.extend(locked_flags());
    v
}

/// In a user namespace the flags of the host's mounts (here the sandbox's procfs: nosuid,
/// nodev, noexec) are locked: a bind of one asked to be `ro` keeps them instead of failing.
fn locked_flags() -> Vec<Scenario> {
    let mut v = Vec::new();
    for (name, opts) in [
        ("ro", json!(["rbind", "ro"])),
        ("nosuid-rw", json!(["rbind", "nosuid"])),
        (
            "all-locked-ro",
            json!(["rbind", "nosuid", "nodev", "noexec", "ro"]),
        ),
    ] {
        let s = with_userns(Scenario::new(format!("mount/userns-bind-locked-{name}")))
            .set(
                "/linux/namespaces",
                namespaces(&["user", "pid", "network", "ipc", "uts"]),
            )
            .extra(&looks("/mnt/b"));
        v.push(mount(
            s,
            json!({"destination": "/mnt/b", "type": "bind", "source": "/proc/sys/kernel", "options": opts}),
        ));
    }
    v
}
