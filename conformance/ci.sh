#!/usr/bin/env bash
# CI for the conformance suite: berth must pass (or skip with a reason) every case not in
# known-failures.txt; Debian's runc is run report-only beside it. Writes the side-by-side
# table to conformance/results.md and prints both summary lines.
#
#   conformance/ci.sh BERTH_BINARY
set -euo pipefail
berth=$(realpath "${1:?usage: conformance/ci.sh BERTH_BINARY}")
here=$(cd "$(dirname "$0")" && pwd)
out=$here/target/results
mkdir -p "$out"
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
    "$here/run.sh" --table "$here/results.md" --column "berth=$out/berth.json" --column "runc=$out/runc.json"
else
    echo "conformance: $runc not installed; the table has berth's column only" >&2
    "$here/run.sh" --table "$here/results.md" --column "berth=$out/berth.json"
fi

grep -E '^not ok' "$out/berth.tap" | grep -v '# TODO' || true
echo "berth: $(tail -n 3 "$out/berth.tap" | grep -E '^[0-9]+ passed')"
[ -f "$out/runc.tap" ] && echo "runc:  $(grep -E '^[0-9]+ passed' "$out/runc.tap")"
echo "conformance: table in conformance/results.md, TAP in $out; $(($(date +%s) - start)) s"
exit $berth_rc
