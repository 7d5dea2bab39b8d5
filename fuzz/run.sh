#!/usr/bin/env bash
# Fuzzes both targets for SECONDS each (default 600), one after the other:
#
#   fuzz/run.sh [SECONDS]
#
# Installs cargo-fuzz from crates.io if it is missing (a few minutes of compiling). cargo
# fuzz passes nightly -Z flags (sanitizer, coverage); on the stable toolchain that needs
# RUSTC_BOOTSTRAP=1, which this script sets for the fuzz build only. Each target starts from
# the committed seeds (fuzz/seeds/, see seed.sh) plus what earlier runs left in
# fuzz/corpus/<target>/; crashes land in fuzz/artifacts/<target>/. The lines of each
# run's libFuzzer output that matter (executions, coverage, corpus size, any crash) are
# kept in fuzz/last-<target>.log.
set -euo pipefail
secs=${1:-600}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
status=0
for target in config state; do
    mkdir -p "corpus/$target" "artifacts/$target"
    cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
    # -rss_limit_mb: the podman seccomp seed alone compiles to sizeable filters.
    # -max_len: the largest seed (a real-world seccomp profile) must fit whole.
    if ! nice cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$secs" -max_len=131072 -rss_limit_mb=4096 \
        -print_final_stats=1 2>&1 | tee "last-$target.log.full" | grep -E '^(#|INFO|==|stat::|SUMMARY|Done)' | tail -n 20; then
        status=1
    fi
    # `tee` hides cargo fuzz's status: a crash leaves an artifact, which is what counts.
    if compgen -G "artifacts/$target/crash-*" >/dev/null || compgen -G "artifacts/$target/leak-*" >/dev/null \
        || compgen -G "artifacts/$target/timeout-*" >/dev/null || compgen -G "artifacts/$target/oom-*" >/dev/null; then
        echo "run.sh: $target: artifacts in fuzz/artifacts/$target/" >&2
        status=1
    fi
    # The figures docs/reliability.md records, and any crash report.
    grep -E '^(INFO: seed corpus|#[0-9]+[[:space:]]+(INITED|DONE)|Done |stat::|==[0-9]+==|SUMMARY|thread .* panicked|artifact_prefix|Test unit written)' \
        "last-$target.log.full" > "last-$target.log" || true
    rm -f "last-$target.log.full"
    echo "corpus/$target: $(ls "corpus/$target" | wc -l) files"
done
exit $status
