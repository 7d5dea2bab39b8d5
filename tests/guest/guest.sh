#!/usr/bin/env bash
# Runs inside the guest (by the image's lane-boot, from the payload disk mounted at /lane).
# Every check appends one line to /lane/out/results: `ok NAME` or `FAILED NAME`; the host
# counts those. Details go to stdout (/lane/out/log). /lane/env (written by run.sh) holds
# MANIFEST (the checkout path the test binary was built in), FILTERS, THREADS, TEST_TIMEOUT.
set -uo pipefail
. /lane/env
results=/lane/out/results
: >"$results"
pass() { echo "ok $1" >>"$results"; echo "LANE: ok $1" >/dev/ttyS0; }
fail() { echo "FAILED $1" >>"$results"; echo "LANE: FAILED $1" >/dev/ttyS0; }
check() { # NAME CMD… : one result from a command's exit status
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
    sync
}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export BERTH_GUEST=1
echo "guest: $(uname -r), $(nproc) cpus, $(systemctl --version | head -1)"
echo "guest: /sys/fs/cgroup: $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "guest: LSMs: $(cat /sys/kernel/security/lsm 2>/dev/null), apparmor: $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)"
echo "guest: runc: $(runc --version | head -1)"

# The host the lane promises: a pure cgroup2 hierarchy with the controllers the tests use,
# systemd as PID 1 on the system bus, AppArmor enabled.
check "guest is a pure cgroup v2 host (cgroup2 at /sys/fs/cgroup, memory cpu io pids cpuset)" \
    bash -c '[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] &&
        for c in memory cpu io pids cpuset; do grep -qw $c /sys/fs/cgroup/cgroup.controllers || exit 1; done'
check "guest runs systemd as PID 1 with the system bus" \
    bash -c '[ "$(cat /proc/1/comm)" = systemd ] && [ -S /run/dbus/system_bus_socket ]'
check "guest has AppArmor enabled" \
    bash -c '[ "$(cat /sys/module/apparmor/parameters/enabled)" = Y ]'

# The integration test binary expects the checkout where it was built: berth at
# CARGO_BIN_EXE_berth, test-bundles/ under CARGO_MANIFEST_DIR, a CARGO_TARGET_TMPDIR. The
# payload's tree/ has that layout; bind it (not a symlink: runc refuses a symlinked rootfs).
mkdir -p "$MANIFEST"
mount --bind /lane/tree "$MANIFEST"

# Payload tests: every tests/guest/tests/*.sh, each a check of its own (exit 0 = ok).
for t in /lane/tests/*.sh; do
    [ -e "$t" ] || continue
    name="script $(basename "$t" .sh)"
    if [ -n "${SCRIPTS:-}" ] && ! [[ "$(basename "$t" .sh)" =~ $SCRIPTS ]]; then
        continue
    fi
    echo "=== $name"
    check "$name" timeout -k 5 "$TEST_TIMEOUT" bash "$t"
done

# The integration tests marked for this host: #[ignore]d on every other host, selected by
# name (FILTERS) and run with --ignored.
if [ -n "$FILTERS" ]; then
    echo "=== cargo integration tests: --ignored $FILTERS"
    read -r -a filters <<<"$FILTERS"
    (cd /tmp && timeout -k 10 "$SUITE_TIMEOUT" /lane/integration --ignored --test-threads "$THREADS" "${filters[@]}") \
        >/lane/out/integration.txt 2>&1
    rc=$?
    cat /lane/out/integration.txt
    sed -n 's/^test \(.*\) \.\.\. ok$/ok \1/p; s/^test \(.*\) \.\.\. FAILED$/FAILED \1/p' \
        /lane/out/integration.txt >>"$results"
    # A hang or a crash of the binary is a failure of its own, beside the per-test lines.
    grep -q '^test result: ' /lane/out/integration.txt || fail "integration binary finished (exit $rc)"
fi
umount "$MANIFEST"
echo "guest: done"
echo "done" >/lane/out/finished
sync
