#!/usr/bin/env bash
# The guest lane: berth's tests on a host of the kind users run (Debian bookworm guest,
# pure cgroup v2, systemd 252 as PID 1 on D-Bus, AppArmor enforcing), booted under qemu.
#
#   tests/guest/run.sh [--filter 'F1 F2'] [--scripts REGEX] [--no-tests] [--keep DIR]
#
# 1. Builds (or reuses from BERTH_GUEST_CACHE, default /var/cache/berth-tests/guest) the
#    guest image: image.sh, keyed by a hash of its recipe.
# 2. Packs a payload disk: the static berth (release and the test build), the integration
#    test binary, the guest driver guest.sh and the payload tests tests/*.sh.
# 3. Boots a copy-on-write overlay of the image (the cached image stays clean) with qemu
#    (TCG unless the CPU offers vmx/svm), with timeouts: no boot, a hung guest or a guest
#    that never reports back fails the lane with the tail of its serial log.
# 4. Reads the results back from the payload disk with debugfs and prints them, ending with
#    one line `N passed, N failed`; exit status 0 only when nothing failed.
#
# --filter: name filters for the integration binary's #[ignore]d guest tests (default
#   "guest_"; "" runs none). --scripts: only payload scripts whose name matches. --keep DIR:
#   keep the serial log, payload and results there. Env: BERTH_GUEST_TIMEOUT (whole guest
#   run, s, default 1500), BERTH_GUEST_BOOT_TIMEOUT (until the payload runs, default 300),
#   BERTH_GUEST_THREADS (test threads, default 2), BERTH_GUEST_TEST_TIMEOUT (per script).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
filters=guest_ scripts="" keep="" tests=1
while [ $# -gt 0 ]; do
    case $1 in
    --filter) filters=$2; shift 2 ;;
    --scripts) scripts=$2; shift 2 ;;
    --no-tests) tests=0; shift ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "usage: $0 [--filter 'F1 F2'] [--scripts REGEX] [--no-tests] [--keep DIR]" >&2; exit 2 ;;
    esac
done
cache=${BERTH_GUEST_CACHE:-/var/cache/berth-tests/guest}
total_limit=${BERTH_GUEST_TIMEOUT:-1500}
boot_limit=${BERTH_GUEST_BOOT_TIMEOUT:-300}
start=$(date +%s)
lane_fail() { # MESSAGE: an infrastructure failure, counted as one failed check
    echo "guest lane: FAILED: $1" >&2
    echo "0 passed, 1 failed"
    exit 1
}

command -v qemu-system-x86_64 >/dev/null && command -v debugfs >/dev/null || bash "$here/install.sh" ||
    lane_fail "could not install qemu (tests/guest/install.sh)"
mkdir -p "$cache"
# One guest at a time on this machine (each takes both CPUs under TCG).
exec 9>"$cache/lane.lock"
flock -w 3600 9 || lane_fail "another guest lane held $cache/lane.lock for an hour"

img=$(nice -n 5 bash "$here/image.sh" "$cache") || lane_fail "the guest image could not be built"
echo "guest lane: image $img ($(($(date +%s) - start)) s so far)"

# The freshly built binaries: cargo is a no-op when run-all has built them already.
nice -n 10 cargo build --release --quiet
berth=target/x86_64-unknown-linux-gnu/release/berth
itest=$(nice -n 10 cargo test --features failpoints --no-run --message-format=json 2>/dev/null |
    grep '"name":"integration"' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -1)
[ -x "$itest" ] || lane_fail "no integration test binary from cargo test --no-run"
testberth=target/x86_64-unknown-linux-gnu/debug/berth

work=$(mktemp -d /var/tmp/berth-guest.XXXXXX)
cleanup() {
    [ -n "${qpid:-}" ] && kill "$qpid" 2>/dev/null
    if [ -n "$keep" ]; then mkdir -p "$keep" && cp -r "$work"/. "$keep"/ 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT
p=$work/payload
mkdir -p "$p/out" "$p/tests" "$p/tree/test-bundles" "$p/tree/tests/engines" \
    "$p/tree/target/x86_64-unknown-linux-gnu/debug" \
    "$p/tree/target/x86_64-unknown-linux-gnu/tmp"
cp "$here/guest.sh" "$p/"
cp "$here"/tests/*.sh "$p/tests/" 2>/dev/null || true
cp "$berth" "$p/berth"
# Without debug info the test builds are a fifth of their size: a smaller disk to pack.
strip --strip-debug -o "$p/integration" "$itest"
cp test-bundles/make-bundle.sh "$p/tree/test-bundles/"
# The engine tests' image archives are made from those (make-image.sh, pack-image.sh).
cp tests/engines/make-image.sh tests/engines/pack-image.sh "$p/tree/tests/engines/"
strip --strip-debug -o "$p/tree/target/x86_64-unknown-linux-gnu/debug/berth" "$testberth"
[ "$tests" = 1 ] || filters=""
cat >"$p/env" <<ENV
export MANIFEST='$repo'
export FILTERS='$filters'
export SCRIPTS='$scripts'
export THREADS='${BERTH_GUEST_THREADS:-2}'
export TEST_TIMEOUT='${BERTH_GUEST_TEST_TIMEOUT:-300}'
export SUITE_TIMEOUT='$((total_limit - boot_limit))'
ENV
# Room for the bundles the tests make; no journal, so what the guest synced is on the disk
# even if it is killed before unmounting.
size=$(($(du -sm "$p" | cut -f1) + 768))
mkfs.ext4 -q -F -O ^has_journal -L berth-lane -d "$p" "$work/lane.img" "${size}M" >"$work/mkfs.log" 2>&1 ||
    lane_fail "mkfs.ext4 of the payload disk: $(tail -3 "$work/mkfs.log")"
qemu-img create -q -f qcow2 -b "$img/image.raw" -F raw "$work/root.qcow2"

if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
    accel=(-accel kvm -cpu host)
else
    accel=(-accel tcg -cpu max)
fi
echo "guest lane: booting (${accel[1]}), payload ${size} MB, filters '${filters}'"
serial=$work/serial.log
: >"$serial"
nice -n 5 qemu-system-x86_64 -nodefaults -display none -no-reboot "${accel[@]}" -smp 2 -m 2048 \
    -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 apparmor=1 security=apparmor systemd.unified_cgroup_hierarchy=1 panic=-1" \
    -drive file="$work/root.qcow2",format=qcow2,if=virtio -drive file="$work/lane.img",format=raw,if=virtio \
    -serial file:"$serial" &
qpid=$!
boot=$(date +%s) why=""
while kill -0 "$qpid" 2>/dev/null; do
    now=$(date +%s)
    if ! grep -q '^LANE: payload mounted' "$serial" && [ $((now - boot)) -gt "$boot_limit" ]; then
        why="the guest did not start the payload within ${boot_limit} s"
    elif [ $((now - boot)) -gt "$total_limit" ]; then
        why="the guest did not finish within ${total_limit} s"
    fi
    if [ -n "$why" ]; then
        kill "$qpid"
        sleep 2
        kill -9 "$qpid" 2>/dev/null
        break
    fi
    sleep 2
done
wait "$qpid" 2>/dev/null
qpid=""
echo "guest lane: guest ran $(($(date +%s) - boot)) s"
grep -a '^LANE: payload mounted\|^LANE: guest.sh exit' "$serial" | sed 's/^LANE: /guest lane: /' || true

out=$work/out
mkdir -p "$out"
for f in results log finished integration.txt; do
    debugfs -R "dump /out/$f $out/$f" "$work/lane.img" >/dev/null 2>&1 || true
done
if [ -s "$out/log" ]; then
    echo "----- guest log"
    cat "$out/log"
    echo "----- end of guest log"
fi
failed_infra=0
if [ -n "$why" ] || [ ! -f "$out/finished" ]; then
    echo "guest lane: FAILED: ${why:-the guest stopped before the payload finished}; serial log tail:"
    tail -40 "$serial" | sed 's/^/  | /'
    failed_infra=1
fi
passed=$(grep -c '^ok ' "$out/results" 2>/dev/null || true)
failed=$(grep -c '^FAILED ' "$out/results" 2>/dev/null || true)
echo "----- guest results"
cat "$out/results" 2>/dev/null || true
failed=$((${failed:-0} + failed_infra))
echo "guest lane: $(($(date +%s) - start)) s in all"
echo "${passed:-0} passed, $failed failed"
[ "$failed" = 0 ] && [ "${passed:-0}" -gt 0 ]
