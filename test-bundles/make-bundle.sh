#!/usr/bin/env bash
# Makes an OCI bundle from Debian's busybox-static: DIR/rootfs (busybox and its applets)
# and DIR/config.json equal in spirit to `runc spec` (same namespaces, mounts, masked and
# read-only paths, capabilities), but running a command that shows where it runs.
#
#   make-bundle.sh DIR [ARG...]     ARGs replace the default process.args
#
# BERTH_HOSTNAME overrides the hostname (default "berth").
set -euo pipefail
dir=${1:?usage: make-bundle.sh DIR [ARG...]}
shift
busybox=/bin/busybox
# The rootfs has no libraries: busybox must be the static build (ldd fails on it).
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
    echo "make-bundle: a static /bin/busybox is needed (apt-get install busybox-static)" >&2
    exit 1
fi

mkdir -p "$dir/rootfs"
root="$dir/rootfs"
if [ ! -x "$root/bin/busybox" ]; then
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,var,run,home}
    cp "$busybox" "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    chmod 1777 "$root/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
fi

if [ $# -eq 0 ]; then
    set -- sh -c 'echo "hello from a berth container: pid $$, hostname $(hostname), user $(id -u)"'
fi
args=""
for a in "$@"; do
    esc=${a//\\/\\\\}
    esc=${esc//\"/\\\"}
    args+="${args:+, }\"$esc\""
done
caps='"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"'
cat > "$dir/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": [ $args ],
    "env": [ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm" ],
    "cwd": "/",
    "capabilities": {
      "bounding": [ $caps ], "effective": [ $caps ], "permitted": [ $caps ], "ambient": [ $caps ]
    },
    "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "${BERTH_HOSTNAME:-berth}",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
    { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": [ "nosuid", "noexec", "nodev" ] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [ "nosuid", "noexec", "nodev", "ro" ] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": [ "nosuid", "noexec", "nodev", "relatime", "ro" ] },
    { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "nodev", "mode=1777" ] }
  ],
  "linux": {
    "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
    "namespaces": [ { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" } ],
    "maskedPaths": [ "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
      "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi" ],
    "readonlyPaths": [ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" ]
  }
}
JSON
echo "bundle ready: $dir"
