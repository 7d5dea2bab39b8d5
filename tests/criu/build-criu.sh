#!/usr/bin/env bash
# Builds the CRIU that checkpoint/restore tests use, and prints its path:
#   build-criu.sh            -> /var/cache/berth-tests/criu-4.1.1/sbin/criu
# Bookworm's criu 3.17.1 refuses kernel 6.18 (`vdso: Unexpected rt vDSO area bounds`), so this
# builds Debian trixie's source package criu 4.1.1 against bookworm's libraries, with the
# patches in tests/criu/patches (each says why; 4.1.1 predates kernel 6.16's socket change). The source comes
# through a private apt configuration (its own sources list, lists and cache directories), so
# the host's apt state is untouched; the upstream tarball is checked against the SHA-256 in
# trixie's signed Sources index. The result is cached outside the checkout (BERTH_TEST_CACHE,
# default /var/cache/berth-tests) and rebuilt only when missing; a cold build takes minutes.
set -euo pipefail
version=4.1.1
cache=${BERTH_TEST_CACHE:-/var/cache/berth-tests}/criu-$version
mirror=${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
criu=$cache/sbin/criu
here=$(cd "$(dirname "$0")" && pwd)
# The build is redone when the version or a patch changes.
stamp="$version $(cat "$here"/patches/*.patch | sha256sum | cut -c1-16)"
log() { echo "build-criu: $*" >&2; }

usable() {
    [ -x "$criu" ] && [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ] &&
        "$criu" --version 2>/dev/null | grep -q "^Version: $version$"
}

build() {
    local deps=(build-essential pkg-config libbsd-dev libcap-dev libgnutls28-dev libnet1-dev
        libnftables-dev libnl-3-dev libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler
        protobuf-compiler uuid-dev python3-protobuf xz-utils patch)
    local missing=()
    for p in "${deps[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing build dependencies from bookworm: ${missing[*]}"
        apt-get update -qq -o DPkg::Lock::Timeout=900
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 "${missing[@]}" >/dev/null
    fi

    mkdir -p "$(dirname "$cache")"
    work=$(mktemp -d "$(dirname "$cache")/criu-build.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-trixie-stable.gpg] $mirror trixie main" \
        >"$work/apt/sources.list"
    # _apt cannot read a 0700 mktemp directory; the download then runs as root, which is fine.
    chmod 0755 "$work"
    local apt=(-o "Dir::Etc::sourcelist=$work/apt/sources.list" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
        -o APT::Sandbox::User=root -qq)
    log "fetching trixie's criu $version source (private apt state in $work/apt)"
    apt-get "${apt[@]}" update
    local want
    want=$(apt-cache "${apt[@]}" showsrc criu | awk -v v="$version-1" -v f="criu_$version.orig.tar.xz" '
        /^$/ {ok = 0} /^Version:/ {ok = ($2 == v)}
        /^Checksums-Sha256:/ {s = 1; next} /^[^ ]/ {s = 0}
        ok && s && $3 == f {print $1; exit}')
    [ -n "$want" ] || { log "trixie's Sources index has no criu $version"; exit 1; }
    # The mirror may serve only the upstream tarball (the .dsc and debian/ tarball have given
    # 404 here); the upstream tarball is all the build needs, so only its download must succeed.
    (cd "$work" && apt-get "${apt[@]}" source --download-only "criu=$version-1" >/dev/null 2>&1) || true
    [ -f "$work/criu_$version.orig.tar.xz" ] || { log "could not download criu_$version.orig.tar.xz"; exit 1; }
    echo "$want  $work/criu_$version.orig.tar.xz" | sha256sum -c --quiet - ||
        { log "criu_$version.orig.tar.xz does not match trixie's Sources index"; exit 1; }
    tar -C "$work" -xJf "$work/criu_$version.orig.tar.xz"
    for p in "$here"/patches/*.patch; do
        patch -s -d "$work/criu-$version" -p1 <"$p" || { log "patch $p does not apply"; exit 1; }
    done

    log "building criu $version (nice make -j2, no docs, no plugins)"
    local start=$SECONDS
    (cd "$work/criu-$version" && nice -n 10 make -j2 criu >"$work/build.log" 2>&1) ||
        { tail -30 "$work/build.log" >&2; log "make failed"; exit 1; }
    local staged=$work/out
    mkdir -p "$staged/sbin"
    install -m 0755 "$work/criu-$version/criu/criu" "$staged/sbin/criu"
    cp "$work/build.log" "$staged/build.log"
    echo "$((SECONDS - start))" >"$staged/build-seconds"
    echo "$stamp" >"$staged/stamp"
    rm -rf "$cache"
    mv "$staged" "$cache"
    log "built in $(cat "$cache/build-seconds") s: $criu"
}

usable || build
# The kernel must offer what CRIU needs; a failing check is the error the tests would hit later.
if ! out=$("$criu" check 2>&1); then
    echo "$out" >&2
    log "$criu check failed"
    exit 1
fi
echo "$criu"
