#!/usr/bin/env bash
# CI for the conformance suite: berth must pass (or skip with a reason) every case not in
# known-failures.txt; Debian's runc is run report-only beside it. Writes the side-by-side
# table to conformance/target/results/results.md and prints both summary lines; with
# --update it also refreshes the tracked conformance/results.md (on purpose, not every run).
#
#   conformance/ci.sh BERTH_BINARY [--update]
set -euo pipefail
berth=$(realpath "${1:?usage: conformance/ci.sh BERTH_BINARY}")
here=$(cd "$(dirname "$0")" && pwd)
out=$here/target/results
mkdir -p "$out"
table=$out/results.md
runc=/usr/sbin/runc
start=$(date +%s)

set +e
"$here/run.sh" --runtime "$berth" --name berth --json "$out/berth.json" \
    --known-failures "$here/known-failures.txt" > "$out/berth.tap"
berth_rc=$?
set -e
if [ -x "$runc" ]; then
    # Report only: runc's failures never fail CI.
    "$here/run.sh" --runtime "$runc" --name runc --json "$out/runc.json" > "$out/runc.tap" || true
    "$here/run.sh" --table "$table" --column "berth=$out/berth.json" --column "runc=$out/runc.json"
else
    echo "conformance: $runc not installed; the table has berth's column only" >&2
    "$here/run.sh" --table "$table" --column "berth=$out/berth.json"
fi
[ "${2:-}" = --update ] && cp "$table" "$here/results.md"

grep -E '^not ok' "$out/berth.tap" | grep -v '# TODO' || true
echo "berth: $(tail -n 3 "$out/berth.tap" | grep -E '^[0-9]+ passed')"
[ -f "$out/runc.tap" ] && echo "runc:  $(grep -E '^[0-9]+ passed' "$out/runc.tap")"
echo "conformance: table in $table, TAP in $out; $(($(date +%s) - start)) s"
exit $berth_rc
