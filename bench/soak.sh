#!/usr/bin/env bash
# Endurance run (issue 8): N sequential `berth run` of /bin/true (default 10000), as root.
#
#   bash bench/soak.sh [N]            # builds the release binary first
#   BERTH=path/to/berth bash bench/soak.sh [N]
#
# Fails on the first run that exits non-zero, on any run that takes over $HANG_S seconds
# (default 10; a watchdog prints the stuck berth's kernel stack, wchan, and a gdb backtrace
# of every thread when gdb is installed, for it and its children, then kills it), and on
# leaks: every $EVERY runs (default 500) it samples the host's MemAvailable, allocated file
# handles (/proc/sys/fs/file-nr), mounts, cgroup directories and processes, and berth's own
# leftovers (state dirs, cgroup dirs, processes and host mounts of soak containers, which
# must be zero).
# System-wide figures are shared with whatever else runs on the machine, so they fail only
# past a margin ($MEM_MARGIN_MB, default 256; $FD_MARGIN, default 2000) between the first
# and the last sample; the per-container leftovers fail at once.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
EVERY=${EVERY:-500}
HANG_S=${HANG_S:-10}
MEM_MARGIN_MB=${MEM_MARGIN_MB:-256}
FD_MARGIN=${FD_MARGIN:-2000}

if [ "$(id -u)" != 0 ]; then
    echo "soak: needs root (it starts real containers)" >&2
    exit 1
fi
if [ -z "${BERTH:-}" ]; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    nice cargo build --release --quiet
    BERTH=$PWD/target/x86_64-unknown-linux-gnu/release/berth
fi

work=$(mktemp -d /tmp/berth-soak.XXXXXX)
root=$work/root
watch=$work/current
bash test-bundles/make-bundle.sh "$work/bundle" true >/dev/null
prefix="soak$$-"

cleanup() {
    [ -n "${dog:-}" ] && kill "$dog" 2>/dev/null || true
    for d in "$root"/*; do
        [ -d "$d" ] && "$BERTH" --root "$root" delete --force "$(basename "$d")" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# Everything about one stuck process: its state, kernel stack, wchan, user-space threads.
dump() {
    local pid=$1
    echo "--- pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    grep -E '^(State|Tgid|PPid|NSpid|SigBlk|SigPnd|ShdPnd)' "/proc/$pid/status" 2>/dev/null || true
    echo "wchan: $(cat "/proc/$pid/wchan" 2>/dev/null)"
    echo "kernel stack:"
    cat "/proc/$pid/stack" 2>/dev/null || echo "(unreadable)"
    if command -v gdb >/dev/null; then
        echo "user stack (gdb):"
        timeout 20 gdb -p "$pid" -batch -ex 'thread apply all bt' 2>/dev/null | grep -E '^(#|Thread)' || true
    fi
    local c
    for c in $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
        dump "$c"
    done
}

# The watchdog: the loop below writes "PID START_EPOCH RUN" before waiting for each run.
main_pid=$$
(
    while sleep 0.5; do
        read -r pid t0 run <"$watch" 2>/dev/null || continue
        # Read while being rewritten: try again at the next tick.
        [[ "$pid $t0 $run" =~ ^[0-9]+\ [0-9]+\ [0-9]+$ ]] || continue
        [ -d "/proc/$pid" ] || continue
        if [ $((EPOCHSECONDS - t0)) -ge "$HANG_S" ]; then
            echo "soak: HANG: run $run (berth pid $pid) still going after ${HANG_S}s" >&2
            dump "$pid" >&2
            kill -KILL "$pid" 2>/dev/null || true
            kill -TERM "$main_pid"
            exit 1
        fi
    done
) &
dog=$!

meminfo() { awk '/^MemAvailable:/ {print int($2/1024)}' /proc/meminfo; }
filenr() { cut -f1 /proc/sys/fs/file-nr; }
mounts() { wc -l </proc/self/mountinfo; }
cgdirs() { find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | wc -l; }
procs() { ls -d /proc/[0-9]* 2>/dev/null | wc -l; }
# berth's own leftovers: state dirs under our root, cgroup dirs and processes of soak ids.
left_state() { find "$root" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
left_cg() { find /sys/fs/cgroup -mindepth 3 -maxdepth 3 -type d -path "*/berth/$prefix*" 2>/dev/null | wc -l; }
left_procs() { grep -l "/berth/$prefix" /proc/[0-9]*/cgroup 2>/dev/null | wc -l; }
left_mounts() { grep -c "$work" /proc/self/mountinfo || true; }

printf '%8s %6s %10s %8s %7s %7s %6s %6s %6s %6s %6s\n' run secs mem_avail_MiB file_nr mounts cgdirs procs state cg_left pr_left mnt_left
sample() {
    local line
    line=$(printf '%8s %6s %10s %8s %7s %7s %6s %6s %6s %6s %6s' "$1" "$SECONDS" "$(meminfo)" "$(filenr)" \
        "$(mounts)" "$(cgdirs)" "$(procs)" "$(left_state)" "$(left_cg)" "$(left_procs)" "$(left_mounts)")
    echo "$line"
    samples+=("$line")
}
samples=()
SECONDS=0
sample 0
start_ns=$(date +%s%N)
for ((i = 1; i <= N; i++)); do
    "$BERTH" --root "$root" run --bundle "$work/bundle" "$prefix$i" </dev/null >/dev/null 2>"$work/err" &
    pid=$!
    printf '%s %s %s\n' "$pid" "$EPOCHSECONDS" "$i" >"$watch"
    if ! wait "$pid"; then
        echo "soak: run $i failed: $(cat "$work/err")" >&2
        exit 1
    fi
    if ((i % EVERY == 0)); then
        sample "$i"
    fi
done
end_ns=$(date +%s%N)
: >"$watch"

first=(${samples[0]})
last=(${samples[-1]})
fail=0
[ "${last[7]}" -eq 0 ] || { echo "soak: LEAK: ${last[7]} state dirs left" >&2; fail=1; }
[ "${last[8]}" -eq 0 ] || { echo "soak: LEAK: ${last[8]} cgroup dirs left" >&2; fail=1; }
[ "${last[9]}" -eq 0 ] || { echo "soak: LEAK: ${last[9]} container processes left" >&2; fail=1; }
[ $((first[2] - last[2])) -le "$MEM_MARGIN_MB" ] ||
    { echo "soak: LEAK? MemAvailable fell by $((first[2] - last[2])) MiB" >&2; fail=1; }
[ $((last[3] - first[3])) -le "$FD_MARGIN" ] ||
    { echo "soak: LEAK? allocated file handles grew by $((last[3] - first[3]))" >&2; fail=1; }
[ "${last[10]}" -eq 0 ] || { echo "soak: LEAK: ${last[10]} mounts of the soak's dirs left" >&2; fail=1; }
ms=$(((end_ns - start_ns) / 1000000))
echo "soak: $N runs in ${ms} ms ($((ms * 1000 / N)) us per run), 0 hangs; MemAvailable ${first[2]} -> ${last[2]} MiB," \
    "file handles ${first[3]} -> ${last[3]}, mounts ${first[4]} -> ${last[4]}, cgroup dirs ${first[5]} -> ${last[5]}"
exit $fail
