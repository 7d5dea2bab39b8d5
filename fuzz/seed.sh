#!/usr/bin/env bash
# Regenerates the committed seed corpora fuzz/seeds/{config,state}/ from the test-bundles
# default config and variants of it that reach every part of planning (user namespace and
# id maps, devices, seccomp, hooks, idmapped and bind mounts, scheduler, rlimits, …), plus
# state.json files in the shape `create` writes. Needs busybox-static (make-bundle.sh) and
# python3. The seeds are small on purpose; the fuzzer grows its own corpus under corpus/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$here/../test-bundles/make-bundle.sh" "$tmp/bundle" >/dev/null
rm -rf "$here/seeds"
mkdir -p "$here/seeds/config" "$here/seeds/state"
python3 - "$tmp/bundle/config.json" "$here/seeds" <<'PY'
import copy, json, os, sys

base = json.load(open(sys.argv[1]))
out = sys.argv[2]

def put(kind, name, doc):
    with open(os.path.join(out, kind, name + ".json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")

def variant(name, edit):
    c = copy.deepcopy(base)
    edit(c)
    put("config", name, c)

variant("default", lambda c: None)
variant("minimal", lambda c: c.clear() or c.update(
    {"ociVersion": "1.0.0", "root": {"path": "rootfs"}, "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}}}))

def userns(c):
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["mounts"].append({"destination": "/data", "type": "bind", "source": "/tmp",
                        "options": ["rbind", "idmap"]})
variant("userns", userns)

def devices(c):
    c["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
        {"path": "/dev/loop9", "type": "b", "major": 7, "minor": 9},
        {"path": "/dev/fifo", "type": "p"}]
    c["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"})
variant("devices", devices)

def resources(c):
    c["linux"]["cgroupsPath"] = "/berth/seed"
    c["linux"]["resources"].update({
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 64},
        "blockIO": {"weight": 500},
        "unified": {"memory.high": "max"}})
variant("resources", resources)

def process(c):
    p = c["process"]
    p["rlimits"] += [{"type": "RLIMIT_CORE", "hard": 0, "soft": 0}]
    p["oomScoreAdj"] = 100
    p["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
    p["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    p["execCPUAffinity"] = {"initial": "0", "final": "0-1"}
    p["user"] = {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6]}
    p["terminal"] = True
    p["consoleSize"] = {"height": 24, "width": 80}
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
    c["linux"]["personality"] = {"domain": "LINUX32"}
    c["linux"]["rootfsPropagation"] = "rslave"
    c["domainname"] = "example.org"
variant("process", process)

def hooks(c):
    h = {"path": "/bin/true", "args": ["true"], "env": ["A=b"], "timeout": 5}
    c["hooks"] = {k: [h] for k in ("prestart", "createRuntime", "createContainer",
                                   "startContainer", "poststart", "poststop")}
    c["annotations"] = {"org.example.key": "value"}
variant("hooks", hooks)

def seccomp(c):
    c["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}]},
            {"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}],
        "listenerPath": "/run/agent.sock", "listenerMetadata": "seed"}
variant("seccomp", seccomp)

podman = "/usr/share/containers/seccomp.json"
if os.path.exists(podman):
    def real_profile(c):
        c["linux"]["seccomp"] = json.load(open(podman))
    variant("seccomp-podman", real_profile)

def time_ns(c):
    c["linux"]["namespaces"].append({"type": "time"})
    c["linux"]["timeOffsets"] = {"monotonic": {"secs": 3600, "nanosecs": 0}, "boottime": {"secs": -5}}
    c["linux"]["namespaces"][1] = {"type": "network", "path": "/proc/1/ns/net"}
variant("timens-join", time_ns)

def mounts(c):
    c["mounts"] += [
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "size=1m"]},
        {"destination": "/ro", "type": "bind", "source": "ro", "options": ["rbind", "rro", "nosuid", "private"]},
        {"destination": "/ov", "type": "overlay", "source": "overlay",
         "options": ["lowerdir=/a", "upperdir=/b", "workdir=/c"]}]
    c["linux"]["maskedPaths"].append("/proc/kmsg")
variant("mounts", mounts)

state = {"ociVersion": "1.0.2", "id": "seed-1", "pid": 4242, "start_time": 123456,
         "bundle": "/work/bundle", "rootfs": "/work/bundle/rootfs",
         "created": "2026-12-01T21:00:00.123456789Z",
         "annotations": {"org.example.key": "value"},
         "cgroup_paths": ["/sys/fs/cgroup/memory/berth/seed-1"],
         "cgroup_joined": ["/sys/fs/cgroup/memory/berth/seed-1", "/sys/fs/cgroup/unified/berth/seed-1"],
         "poststart": [{"path": "/bin/true", "args": ["true"], "timeout": 3}],
         "poststop": [{"path": "/bin/true"}]}
put("state", "full", state)
put("state", "minimal", {k: state[k] for k in ("ociVersion", "id", "pid", "start_time", "bundle", "rootfs", "created")})
put("state", "odd", dict(state, id="a/../b", pid=-1, start_time=18446744073709551615, annotations={"": "\u0000"}))
PY
ls "$here/seeds/config" "$here/seeds/state"
