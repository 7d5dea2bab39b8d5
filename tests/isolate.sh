#!/usr/bin/env bash
# Runs a command that starts containers as root where a runtime bug cannot reach the machine:
# its own cgroup in every v1 hierarchy (memory and pids capped, so a runaway fork or leak stops
# there), and new pid, mount (private propagation), uts, ipc and network namespaces (loopback
# only, brought up). A bug that pivots, unmounts, re-propagates or kills by cgroup damages
# only this sandbox; when the command ends, the pid namespace ends and takes every process
# left in it along.
#   tests/isolate.sh NAME -- CMD...
set -euo pipefail
name=${1:?usage: isolate.sh NAME -- CMD...}
shift
[ "${1:-}" = -- ] && shift
made=()
memcg=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
for h in /sys/fs/cgroup/*/; do
    c=$(basename "$h")
    # cgroup2 (unified) keeps the caller's place: only hugetlb is enabled there, and
    # containers' hugetlb limits must stay writable below it.
    [ "$c" = unified ] && continue
    parent=$h
    [ "$c" = memory ] && parent="$h${memcg#/}/"
    d="${parent}$name-$$"
    mkdir -p "$d" 2>/dev/null || continue
    case $c in
    memory) echo $((14 << 30)) >"$d/memory.limit_in_bytes" 2>/dev/null || true ;;
    pids) echo 16384 >"$d/pids.max" ;;
    cpuset)
        cat "${parent}cpuset.cpus" >"$d/cpuset.cpus"
        cat "${parent}cpuset.mems" >"$d/cpuset.mems"
        ;;
    esac
    echo $$ >"$d/cgroup.procs" 2>/dev/null || true
    made+=("$d")
done
set +e
unshare --pid --fork --kill-child --mount-proc --mount --propagation private --uts --ipc --net \
    -- bash -c 'ip link set lo up && exec "$@"' isolate "$@"
rc=$?
set -e
# Leave our cgroups before removing them; an rmdir that fails names what is still inside.
for d in "${made[@]}"; do
    echo $$ >"$(dirname "$d")/cgroup.procs" 2>/dev/null || true
done
for d in "${made[@]}"; do
    find "$d" -depth -mindepth 1 -type d -exec rmdir {} + 2>/dev/null || true
    rmdir "$d" 2>/dev/null || echo "isolate: $d not empty after the run" >&2
done
exit $rc
