#!/usr/bin/env bash
# The whole berth test suite, from a fresh clone, as root: installs what the tests need,
# checks formatting and lints, then runs the unit tests and the real-container
# integration tests. `.ci/run` calls exactly this; README gives it as the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

if [ "$(id -u)" != 0 ]; then
    echo "run-all: the integration tests start real containers and need root" >&2
    exit 1
fi

need=()
# A static busybox makes the test rootfs; runc is the reference the tests compare with.
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
[ -x /usr/sbin/runc ] || need+=(runc)
# podman's real seccomp profile, and static libc for the seccomp probe the tests build.
[ -f /usr/share/containers/seccomp.json ] || need+=(golang-github-containers-common)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
# protoc: the CRI test's gRPC client (k8s-cri) generates its code from .proto at build time.
command -v protoc >/dev/null || need+=(protobuf-compiler)
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

echo "run-all: cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path conformance/Cargo.toml -- --check
echo "run-all: cargo clippy -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy --all-targets --features failpoints --quiet -- -D warnings
(cd conformance && cargo clippy --all-targets --quiet -- -D warnings)
echo "run-all: benchmark, quick mode (proves bench/ works; its figures mean nothing)"
bash bench/run.sh --quick >/dev/null
echo "run-all: unit and integration tests"
# Failures are counted below, so the summary line is printed either way.
cargo test --features failpoints --no-fail-fast 2>&1 | tee target/test-output.txt || true
echo "run-all: OCI runtime-spec conformance suite (berth must pass; runc beside it, report only)"
conformance=0
bash conformance/ci.sh target/x86_64-unknown-linux-gnu/release/berth || conformance=1
# One closing line over all test binaries.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, i; exit (f > 0 || p == 0) }' target/test-output.txt
[ $conformance = 0 ] || { echo "run-all: the conformance suite failed for berth"; exit 1; }
