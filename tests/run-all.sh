#!/usr/bin/env bash
# The whole berth test suite, from a fresh clone, as root. `.ci/run` calls exactly this;
# README gives it as the test command.
#
# 1. On the host: install what the tests need, check formatting and lints, and build every
#    binary (the only steps that need the package registries).
# 2. In a sandbox (tests/isolate.sh: own pid, mount, uts, ipc and network namespaces and
#    own cgroups): the quick benchmark, unit and real-container integration tests, the
#    conformance suite, then a check that no test left a process behind.
# 3. On the host: the guest lane (tests/guest/run.sh: a cgroup v2 + systemd + AppArmor
#    guest under qemu; its tests join the total), then the checkout must be as clean as
#    before the run.
# The last line is the total: `N passed, N failed, N skipped`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

if [ "$(id -u)" != 0 ]; then
    echo "run-all: the integration tests start real containers and need root" >&2
    exit 1
fi
start=$(date +%s)
dirty_before=$(git status --porcelain 2>/dev/null || true)

need=()
# A static busybox makes the test rootfs; runc is the reference the tests compare with,
# crun the benchmark's other reference.
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
[ -x /usr/sbin/runc ] || need+=(runc)
command -v crun >/dev/null || need+=(crun)
# podman's real seccomp profile, and static libc for the seccomp probe the tests build.
[ -f /usr/share/containers/seccomp.json ] || need+=(golang-github-containers-common)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
# protoc: the CRI test's gRPC client (k8s-cri) generates its code from .proto at build time.
command -v protoc >/dev/null || need+=(protobuf-compiler)
# ip: the sandbox brings its loopback up.
command -v ip >/dev/null || need+=(iproute2)
# debootstrap: the Debian image with real services the engine tests run.
command -v debootstrap >/dev/null || need+=(debootstrap)
# newuidmap/newgidmap: rootless berth's multi-range id maps (tests/integration/rootless.rs
# makes its user, berth-rootless, and the user's /etc/subuid and /etc/subgid ranges itself).
command -v newuidmap >/dev/null || need+=(uidmap)
# The engines the end-to-end tests (tests/integration/engines.rs) drive berth with. Best
# effort: where they cannot be installed those tests skip and say why.
engines=()
{ command -v podman && command -v conmon; } >/dev/null || engines+=(podman)
{ command -v containerd && command -v ctr && command -v containerd-shim-runc-v2; } >/dev/null || engines+=(containerd)
command -v dockerd >/dev/null || engines+=(docker.io)
if [ ${#need[@]} -gt 0 ] || [ ${#engines[@]} -gt 0 ]; then
    echo "run-all: installing ${need[*]} ${engines[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    [ ${#need[@]} -eq 0 ] || apt-get install -y -qq "${need[@]}" >/dev/null
    [ ${#engines[@]} -eq 0 ] || apt-get install -y -qq "${engines[@]}" >/dev/null 2>&1 ||
        echo "run-all: could not install ${engines[*]}; their end-to-end tests will skip"
fi

# The guest lane's qemu (bookworm-backports), debootstrap and e2fsprogs: tests/guest/install.sh.
bash tests/guest/install.sh || echo "run-all: could not install qemu; the guest lane will fail"

echo "run-all: cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path conformance/Cargo.toml -- --check
echo "run-all: cargo clippy -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy --all-targets --features failpoints --quiet -- -D warnings
(cd conformance && cargo clippy --all-targets --quiet -- -D warnings)
echo "run-all: building (the sandbox has no network: everything is fetched and built here)"
cargo build --release --quiet
cargo test --features failpoints --no-run --quiet
(cd conformance && RUSTFLAGS="-Ctarget-feature=+crt-static" cargo build --release --quiet --target x86_64-unknown-linux-gnu)
# The engines' real-service image (redis, postgres, nginx) comes from Debian's archive with
# debootstrap, cached in /var/cache/berth-tests (rebuilt only when missing).
bash tests/engines/make-debian-image.sh target/x86_64-unknown-linux-gnu/tmp/debian-image
# CRIU for the checkpoint/restore tests: Debian trixie's 4.1.1 built on bookworm (whose own
# 3.17.1 fails on kernel 6.18), cached in /var/cache/berth-tests; tests/criu/build-criu.sh.
if BERTH_TEST_CRIU=$(bash tests/criu/build-criu.sh); then
    export BERTH_TEST_CRIU
else
    echo "run-all: building CRIU failed; the checkpoint tests will fail and say so"
fi

# The sandboxed tests prove they are sandboxed against these (tests/integration/sandbox.rs).
BERTH_TEST_HOST_MNTNS=$(readlink /proc/self/ns/mnt)
BERTH_TEST_HOST_PIDNS=$(readlink /proc/self/ns/pid)
export BERTH_TEST_HOST_MNTNS BERTH_TEST_HOST_PIDNS CARGO_NET_OFFLINE=true
mkdir -p target
rm -f target/test-output.txt target/run-isolated.status
touch target/test-output.txt
set +e
bash tests/isolate.sh berth-tests -- bash tests/run-isolated.sh
isolated=$?
# The leak check must catch a leak: a sandbox whose "test" leaves a daemonised sleep.
bash tests/isolate.sh berth-leak-selftest -- bash -c \
    'setsid sleep 60 </dev/null >/dev/null 2>&1 & bash tests/leak-check.sh target/leak-selftest.ps' \
    >target/leak-selftest.out 2>&1
leak_selftest=$?
# On the host: qemu is the isolation (tests/guest/README.md). Ends with `N passed, N failed`.
echo "run-all: guest lane (cgroup v2 + systemd + AppArmor guest under qemu: tests/guest/run.sh)"
bash tests/guest/run.sh 2>&1 | tee target/guest-lane.txt
guest=${PIPESTATUS[0]}
read -r guest_passed guest_failed < <(tail -1 target/guest-lane.txt | awk '{ print $1 + 0, $3 + 0 }')
set -e

checks_passed=0 checks_failed=0
check() { # NAME OK(0|1)
    if [ "$2" = 0 ]; then
        checks_passed=$((checks_passed + 1))
    else
        checks_failed=$((checks_failed + 1))
        echo "run-all: FAILED: $1"
    fi
}
status() { grep -q "^$1=0$" target/run-isolated.status 2>/dev/null && echo 0 || echo 1; }
check "the sandboxed run ended normally (exit $isolated)" "$([ "$isolated" = 0 ] && echo 0 || echo 1)"
check "conformance suite (berth)" "$(status conformance)"
check "no process left behind by a test" "$(status leaks)"
check "the leak check catches a leaked process" "$([ "$leak_selftest" != 0 ] && grep -q 'sleep 60' target/leak-selftest.out && echo 0 || echo 1)"
check "quick benchmark" "$(status bench)"
check "guest lane (exit $guest)" "$([ "$guest" = 0 ] && echo 0 || echo 1)"
dirty_after=$(git status --porcelain 2>/dev/null || true)
if [ "$dirty_after" != "$dirty_before" ]; then
    echo "run-all: the run changed the checkout:"
    diff <(echo "$dirty_before") <(echo "$dirty_after") || true
    check "the checkout is left as it was" 1
else
    check "the checkout is left as it was" 0
fi
echo "run-all: $(($(date +%s) - start)) s; suite checks: $checks_passed passed, $checks_failed failed"
# One closing line over all test binaries and the suite checks above.
awk -v cp="$checks_passed" -v cf="$checks_failed" -v gp="$guest_passed" -v gf="$guest_failed" '
    /^test result:/ { p += $4; f += $6; i += $8 }
    END { p += cp + gp; f += cf + gf; printf "%d passed, %d failed, %d skipped\n", p, f, i; exit (f > 0 || p == cp) }
' target/test-output.txt
