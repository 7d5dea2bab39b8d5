#!/usr/bin/env bash
# The one command of the conformance suite: builds the driver and the static checker, makes
# the busybox template bundle, and runs every case against one runtime binary.
#
#   conformance/run.sh --runtime PATH [--json OUT] [--name NAME] [--known-failures FILE]
#                      [--filter SUBSTR]… [--timeout SECS] [-- GLOBAL FLAGS…]
#   conformance/run.sh --table OUT.md --column NAME=results.json [--column …]
#   conformance/run.sh --list
#
# Prints TAP and the summary line `N passed, N failed, N skipped`; exits non-zero when a case
# fails that is not in the known-failures file given.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
target=x86_64-unknown-linux-gnu
# crt-static with the gnu target: the checker runs inside a busybox rootfs with no libc, and
# the musl target is not installed here. --target keeps build scripts out of the static flags.
(cd "$here" && RUSTFLAGS="-Ctarget-feature=+crt-static" nice cargo build --release --quiet --target "$target")
bin=$here/target/$target/release
for a in "$@"; do
    case $a in
    --table | --list) exec "$bin/conformance" "$@" ;;
    --) break ;;
    esac
done
template=$here/target/bundle-template
bash "$repo/test-bundles/make-bundle.sh" "$template" >/dev/null
exec "$bin/conformance" --template "$template" --checker "$bin/checker" "$@"
