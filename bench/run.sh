#!/usr/bin/env bash
# berth's benchmark (issue 7): builds berth in release mode and measures it against runc,
# crun and the syscall floor. `--quick` runs a few iterations only (CI uses it to prove the
# benchmark works; its figures mean nothing) and writes to target/bench-quick/.
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
if [ "${1:-}" = "--quick" ]; then
    out=target/bench-quick
    mkdir -p "$out"
fi
python3 bench/bench.py --out "$out" "$@"
