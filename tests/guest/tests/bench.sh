#!/usr/bin/env bash
# berth vs runc per-container time in the guest: `run` of /bin/true, N times each, same
# bundle, cgroupfs driver. Prints the figures (the lane's report); fails only if a run fails.
set -euo pipefail
n=${BENCH_RUNS:-10}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
bash "$MANIFEST/test-bundles/make-bundle.sh" "$dir/bundle" /bin/true >/dev/null
berth=/lane/berth
time_runs() { # NAME BIN → ms per run
    local name=$1 bin=$2 start end
    "$bin" --root "$dir/root-$name" run --bundle "$dir/bundle" "warm-$name" >/dev/null
    start=$(date +%s%N)
    for i in $(seq "$n"); do
        "$bin" --root "$dir/root-$name" run --bundle "$dir/bundle" "$name-$i" >/dev/null
    done
    end=$(date +%s%N)
    echo $(((end - start) / n / 1000000))
}
b=$(time_runs berth "$berth")
r=$(time_runs runc /usr/sbin/runc)
echo "bench: run /bin/true x$n in the guest: berth $b ms/run, runc $r ms/run"
echo "LANE: bench berth $b ms/run, runc $r ms/run" >/dev/ttyS0
