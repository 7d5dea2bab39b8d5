#!/usr/bin/env bash
# Makes the Debian image the real-service engine tests run (redis, postgres and nginx on
# localhost), from Debian's archive with debootstrap, and packs it for the engines:
#   make-debian-image.sh OUT_DIR
# OUT_DIR/debian.tar  image archive localhost/debian-services:latest (OCI layout and
#                     docker-archive in one, see pack-image.sh).
# The root filesystem tarball is cached outside the checkout (BERTH_TEST_CACHE, default
# /var/cache/berth-tests) and rebuilt only when missing or when the package list changes:
# a cold build takes a few minutes and needs Debian's archive; a cached one, seconds.
set -euo pipefail
out=${1:?usage: make-debian-image.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
cache=${BERTH_TEST_CACHE:-/var/cache/berth-tests}
packages=redis-server,postgresql,nginx-light,python3,procps,iproute2
mirror=${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
stamp="bookworm minbase $packages initdb v2"
tarball=$cache/debian-services-rootfs.tar
mkdir -p "$cache" "$out"
if [ ! -f "$tarball" ] || [ "$(cat "$tarball.stamp" 2>/dev/null)" != "$stamp" ]; then
    command -v debootstrap >/dev/null || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    root=$(mktemp -d "$cache/rootfs.XXXXXX")
    chmod 0755 "$root" # mktemp makes it 0700: the image's / must be searchable by every user
    trap 'rm -rf "$root"' EXIT
    echo "make-debian-image: debootstrap bookworm with $packages (cached in $cache)"
    debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
        tail -20 "$cache/debootstrap.log" >&2
        exit 1
    }
    # A database cluster of its own (debootstrap runs no pg_createcluster), trusting local
    # connections, over TCP too, so the tests' psql needs no password.
    chroot "$root" /bin/sh -c 'set -e; d=/var/lib/postgresql/data; mkdir -p $d; chown postgres:postgres $d
        su postgres -s /bin/sh -c "$(ls -d /usr/lib/postgresql/*/bin)/initdb -D $d -A trust -U postgres" >/dev/null'
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    echo "$stamp" >"$tarball.stamp"
fi
if [ ! -f "$out/debian.tar" ] || [ "$tarball" -nt "$out/debian.tar" ]; then
    bash "$here/pack-image.sh" "$tarball" localhost/debian-services:latest '["/bin/bash"]' "$out/debian.tar"
fi
echo "image ready: $out/debian.tar (localhost/debian-services:latest)"
