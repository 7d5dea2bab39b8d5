#!/usr/bin/env bash
# The part of tests/run-all.sh that starts containers; run by tests/isolate.sh as pid 1 of
# its own pid namespace. Writes NAME=RC lines to target/run-isolated.status for run-all.
set -uo pipefail
cd "$(dirname "$0")/.."
status=target/run-isolated.status
: >"$status"

echo "run-all: benchmark and step profile, quick mode (proves bench/ works; its figures mean nothing)"
{ bash bench/run.sh --quick >/dev/null && bash bench/run.sh --steps -n 2 >/dev/null; }
echo "bench=$?" >>"$status"

echo "run-all: unit and integration tests (sandboxed: $(readlink /proc/self/ns/mnt), pid $$)"
# Failures are counted by run-all from the cargo output.
cargo test --features failpoints --no-fail-fast 2>&1 | tee target/test-output.txt

echo "run-all: OCI runtime-spec conformance suite (berth must pass; runc beside it, report only)"
# Results go under conformance/target; `conformance/ci.sh BIN --update` refreshes the tracked table.
bash conformance/ci.sh target/x86_64-unknown-linux-gnu/release/berth
echo "conformance=$?" >>"$status"

# Anything still alive in this pid namespace but this shell (pid 1) was left by a test.
bash tests/leak-check.sh target/run-isolated.ps
echo "leaks=$?" >>"$status"
