#!/usr/bin/env bash
# berth's benchmark (issues 7 and 18): builds berth in release mode and measures it against
# runc, crun and the syscall floor. `--quick` runs a few iterations only (CI uses it to prove
# the benchmark works; its figures mean nothing) and writes to target/bench-quick/. `--steps`
# prints the per-step profile of berth's verbs instead (bench/steps.py).
#
# Fair by construction: every runtime runs inside ONE private mount namespace whose cgroup2
# mount (/sys/fs/cgroup/unified) is hidden, because crun refuses this host's hybrid layout;
# no runtime pays a per-call wrapper. A full run also counts berth's instructions with
# callgrind (perf stat has no counters on this VM) and measures how cost grows.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
need=()
command -v runc >/dev/null || need+=(runc)
command -v crun >/dev/null || need+=(crun)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet
out=bench
args=()
if [ "${1:-}" = "--steps" ]; then
    # The per-step profile (bench/steps.py), under the benchmark's conditions.
    shift
    exec unshare --mount --propagation private -- bash -c '
        if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
        exec python3 bench/steps.py "$@"' steps "$@"
elif [ "${1:-}" = "--quick" ]; then
    out=target/bench-quick
    mkdir -p "$out"
    args+=(--quick)
else
    # The deterministic figure needs a valgrind that knows openat2 (bookworm's 3.19 does not).
    if valgrind=$(bash bench/build-valgrind.sh); then
        args+=(--valgrind "$valgrind")
    else
        echo "bench: no usable valgrind; the instruction count is left out" >&2
    fi
fi
exec unshare --mount --propagation private -- bash -c '
    if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
    exec python3 bench/bench.py --out "$0" "$@"' "$out" "${args[@]}"
