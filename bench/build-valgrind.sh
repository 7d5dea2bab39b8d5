#!/usr/bin/env bash
# Builds Debian trixie's valgrind into a cache outside the checkout (bookworm's 3.19 has no
# openat2, which berth needs), once; prints the valgrind binary's path. Used by bench/run.sh.
set -euo pipefail
cache=${BERTH_VALGRIND_CACHE:-/var/cache/berth-tests/valgrind}
if [ -x "$cache/bin/valgrind" ]; then echo "$cache/bin/valgrind"; exit 0; fi
work=$(mktemp -d /tmp/valgrind-build.XXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/etc"
echo "deb-src http://deb.debian.org/debian trixie main" > "$work/etc/sources.list"
apt_opts=(-o Dir::Etc::sourcelist="$work/etc/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$work/lists" -o APT::Get::List-Cleanup=0)
apt-get "${apt_opts[@]}" update -qq
cd "$work"
apt-get "${apt_opts[@]}" source --download-only -qq valgrind >/dev/null
dpkg-source -x --no-check valgrind_*.dsc src >/dev/null
cd src
./configure --prefix="$cache" -q >/dev/null
nice make -j2 -s >/dev/null 2>&1
make -s install >/dev/null 2>&1
echo "$cache/bin/valgrind"
