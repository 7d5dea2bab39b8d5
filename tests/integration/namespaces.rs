//! config-linux.md namespaces: new ones, joined ones by path, user-namespace id maps,
//! time-namespace offsets — checked from inside the container.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::*;

const KINDS: &[&str] = &["pid", "net", "ipc", "uts", "mnt", "cgroup"];

fn ns_script() -> String {
    KINDS
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k};"))
        .collect()
}

#[test]
fn default_namespaces_are_all_new() {
    let env = Env::new(&[
        "sh",
        "-c",
        &format!("echo $$; {} cat /proc/self/cgroup", ns_script()),
    ]);
    let out = env.run();
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1", "the process is pid 1 of a new pid namespace");
    for (i, k) in KINDS.iter().enumerate() {
        assert!(lines[i + 1].starts_with(&format!("{k}:[")), "{lines:?}");
        assert_ne!(lines[i + 1], host_ns(k), "{k} namespace is the host's");
    }
    // In a new cgroup namespace the container's own cgroup is the root.
    for l in &lines[KINDS.len() + 1..] {
        assert!(l.ends_with(":/"), "cgroup line {l:?} is not namespaced");
    }
}

#[test]
fn without_a_namespace_the_host_one_is_kept() {
    let mut env = Env::new(&[
        "sh",
        "-c",
        "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc",
    ]);
    env.set(
        "/linux/namespaces",
        json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]),
    );
    // sysfs needs a private network namespace; mqueue a private ipc one.
    let mounts: Vec<_> = env.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["type"] != "sysfs" && m["type"] != "mqueue" && m["destination"] != "/sys/fs/cgroup"
        })
        .cloned()
        .collect();
    env.set("/mounts", json!(mounts));
    let out = env.run();
    out.ok();
    assert_eq!(
        out.stdout,
        format!("{}\n{}\n", host_ns("net"), host_ns("ipc"))
    );
}

/// A process holding namespaces for a test to join. It leads its own process group, and
/// dropping it kills the whole group, so a shell's children (a `sleep` holding the test
/// runner's output pipe) never outlive the test.
struct Holder(Child);

impl Holder {
    fn ns(&self, kind: &str) -> String {
        // The holder is unshare → sh; unshare execs, so the pid is the shell's.
        format!("/proc/{}/ns/{kind}", self.0.id())
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: a plain syscall on the group this test created.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn spawn_holder(args: &[&str]) -> Holder {
    let c = Command::new("unshare")
        .args(args)
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("unshare");
    std::thread::sleep(Duration::from_millis(200));
    Holder(c)
}

#[test]
fn join_existing_namespaces_by_path() {
    let holder = spawn_holder(&[
        "--uts",
        "--net",
        "sh",
        "-c",
        "hostname joined-uts; sleep 100",
    ]);
    let uts = holder.ns("uts");
    let net = holder.ns("net");
    let want_net = std::fs::read_link(&net)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut env = Env::new(&["sh", "-c", "hostname; readlink /proc/self/ns/net"]);
    env.config.as_object_mut().unwrap().remove("hostname");
    env.set(
        "/linux/namespaces",
        json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "cgroup"},
            {"type": "uts", "path": uts}, {"type": "network", "path": net}
        ]),
    );
    let out = env.run();
    drop(holder);
    out.ok();
    assert_eq!(out.stdout, format!("joined-uts\n{want_net}\n"));
}

#[test]
fn join_the_pid_namespace_of_another_container() {
    let a = Env::new(&["sleep", "100"]);
    let ida = a.id();
    a.create(&ida).ok();
    a.berth(&["start", &ida]).ok();
    let st: serde_json::Value = serde_json::from_str(&a.berth(&["state", &ida]).stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let mut b = Env::new(&["sh", "-c", "cat /proc/1/comm; echo $$"]);
    b.set("/linux/namespaces", json!([
        {"type": "pid", "path": format!("/proc/{pid}/ns/pid")}, {"type": "mount"}, {"type": "ipc"},
        {"type": "uts"}, {"type": "network"}, {"type": "cgroup"}
    ]));
    let out = b.run();
    a.berth(&["delete", "--force", &ida]).ok();
    a.assert_clean(&ida);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0], "sleep",
        "pid 1 of the joined namespace is container A's init"
    );
    assert_ne!(lines[1], "1");
}

#[test]
fn user_namespace_with_id_maps() {
    let mut env = Env::new(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; readlink /proc/self/ns/user; ls -ln /dev/null",
    ]);
    env.with_userns(100000, 200000);
    let out = env.run();
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let norm = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(norm(lines[0]), "0 100000 65536");
    assert_eq!(norm(lines[1]), "0 200000 65536");
    assert_eq!(lines[2], "0");
    assert_eq!(lines[3], "0");
    assert_ne!(lines[4], host_ns("user"));
    // Device nodes cannot be made in a user namespace: the host's are bind-mounted.
    assert!(lines[5].starts_with("crw-rw-rw-"), "{}", lines[5]);
}

#[test]
fn time_namespace_offsets() {
    let mut env = Env::new(&["cat", "/proc/uptime"]);
    env.push("/linux/namespaces", json!({"type": "time"}));
    env.set(
        "/linux/timeOffsets",
        json!({"boottime": {"secs": 864000, "nanosecs": 0}, "monotonic": {"secs": 3600}}),
    );
    let out = env.run();
    out.ok();
    let up: f64 = out
        .stdout
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        up >= 864000.0 && up - host >= 863990.0,
        "uptime {up} (host {host}) lacks the boottime offset"
    );
}

#[test]
fn joining_a_namespace_of_the_wrong_type_fails_cleanly() {
    let mut env = Env::new(&["true"]);
    env.set("/linux/namespaces", json!([{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/proc/self/ns/uts"}]));
    env.write_config();
    let id = env.id();
    env.create(&id)
        .fails_with(&["linux.namespaces[2].path", "not a network namespace"]);
    env.assert_clean(&id);
}

#[test]
fn files_written_in_a_user_namespace_belong_to_the_mapped_ids() {
    let mut env = Env::new(&[
        "sh",
        "-c",
        "touch /out/by-root; ls -ln /out/by-root | tr -s ' ' | cut -d' ' -f3,4",
    ]);
    env.with_userns(100000, 200000);
    // The host scratch dir must be writable by the mapped root.
    std::fs::set_permissions(
        &env.out,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = env.run();
    out.ok();
    assert_eq!(out.stdout, "0 0\n", "inside, the file is root's");
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(env.out.join("by-root")).unwrap();
    assert_eq!(
        (md.uid(), md.gid()),
        (100000, 200000),
        "on the host, it belongs to the mapped ids"
    );
}

fn owned_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("root-file"), "r").unwrap();
    std::fs::write(d.path().join("user-file"), "u").unwrap();
    std::os::unix::fs::chown(d.path().join("user-file"), Some(1000), Some(1000)).unwrap();
    d
}

#[test]
fn idmapped_bind_mount_shows_remapped_owners() {
    let src = owned_dir();
    let mut env = Env::new(&[
        "sh",
        "-c",
        "ls -ln /idm | tr -s ' ' | cut -d' ' -f3,4,9 | grep file; ls -ln /plain/root-file | tr -s ' ' | cut -d' ' -f3,4",
    ]);
    env.push("/mounts", json!({"destination": "/idm", "type": "bind", "source": src.path(), "options": ["rbind"],
        "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 1}, {"containerID": 1000, "hostID": 2000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 4321, "size": 1}, {"containerID": 1000, "hostID": 3000, "size": 1}]}));
    env.push("/mounts", json!({"destination": "/plain", "type": "bind", "source": src.path(), "options": ["rbind", "ro"]}));
    let out = env.run();
    out.ok();
    assert_eq!(
        out.stdout, "1234 4321 root-file\n2000 3000 user-file\n0 0\n",
        "on-disk ids appear through the mount's mapping"
    );
}

#[test]
fn idmap_option_uses_the_containers_user_namespace_mappings() {
    let src = owned_dir();
    // /home exists in the rootfs: the mapped root may not create directories in it.
    let mut env = Env::new(&[
        "sh",
        "-c",
        "ls -ln /home/root-file | tr -s ' ' | cut -d' ' -f3,4; echo hi > /home/new && echo wrote",
    ]);
    env.with_userns(100000, 100000);
    env.push("/mounts", json!({"destination": "/home", "type": "bind", "source": src.path(), "options": ["rbind", "idmap"]}));
    let out = env.run();
    out.ok();
    // Host root's file is the container root's, and what the container writes is host root's.
    assert_eq!(out.stdout, "0 0\nwrote\n");
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(src.path().join("new")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
}

#[test]
fn idmapped_mount_must_be_a_bind_and_needs_mappings() {
    let mut env = Env::new(&["true"]);
    env.push(
        "/mounts",
        json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
    );
    let id = env.id();
    env.create(&id).fails_with(&["options", "bind mounts"]);
    env.assert_clean(&id);
    let mut env = Env::new(&["true"]);
    env.push("/mounts", json!({"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}));
    env.create(&id)
        .fails_with(&["uidMappings", "needs uid and gid mappings"]);
    env.assert_clean(&id);
}

/// A pod's shape (podman with --userns, a sandbox holding the namespaces): container B
/// joins container A's user, network and time namespaces and makes its own pid, mount,
/// ipc and uts ones. Its new pid namespace belongs to the joined user namespace, so /proc
/// mounts; the id maps come from the joined namespace (runc 1.2+; runc 1.1.5 refuses a
/// joined user namespace without maps and knows no time namespaces). Maps that disagree
/// with the joined namespace's are refused, naming the field.
#[test]
fn join_another_containers_user_network_and_time_namespaces() {
    let mut a = Env::new(&["sleep", "100"]);
    a.with_userns(100000, 200000);
    a.push("/linux/namespaces", json!({"type": "time"}));
    a.set(
        "/linux/timeOffsets",
        json!({"boottime": {"secs": 100000, "nanosecs": 0}}),
    );
    let ida = a.start_detached();
    let st: serde_json::Value = serde_json::from_str(&a.berth(&["state", &ida]).stdout).unwrap();
    let ns = |t: &str| format!("/proc/{}/ns/{t}", st["pid"]);
    let inode = |t: &str| std::fs::read_link(ns(t)).unwrap().display().to_string();
    let script = "cat /proc/self/uid_map /proc/self/gid_map; id -u; echo $$; \
                  for n in user net time; do readlink /proc/self/ns/$n; done; \
                  cut -d. -f1 /proc/uptime; ip -o -4 addr show lo | awk '{print $4}'";
    let mut b = Env::new(&["sh", "-c", script]);
    b.set(
        "/linux/namespaces",
        json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "user", "path": ns("user")}, {"type": "network", "path": ns("net")},
            {"type": "time", "path": ns("time")}
        ]),
    );
    let out = b.run();
    out.ok();
    let norm = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let lines: Vec<String> = out.stdout.lines().map(norm).collect();
    assert_eq!(lines[..4], ["0 100000 65536", "0 200000 65536", "0", "1"]);
    assert_eq!(lines[4..7], [inode("user"), inode("net"), inode("time")]);
    let uptime: u64 = lines[7].parse().unwrap();
    assert!(
        uptime >= 100000,
        "the joined boottime offset applies: {uptime}"
    );
    assert_eq!(lines[8], "127.0.0.1/8", "A's loopback, up");

    b.set("/process/args", json!(["true"]));
    // Maps given beside the joined user namespace must be its own.
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 300000, "size": 65536}]),
    );
    b.run()
        .fails_with(&["linux.uidMappings: differ from the maps of the user namespace joined"]);
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}]),
    );
    b.run().ok();
    a.berth(&["delete", "--force", &ida]).ok();
    a.assert_clean(&ida);
}
