#!/usr/bin/env bash
# Installs what the guest lane needs on the host: qemu-system-x86 from bookworm-backports
# (the image's qemu-utils already comes from there, so bookworm's own qemu-system-x86
# conflicts with it), debootstrap, e2fsprogs (mkfs.ext4 -d, debugfs) and qemu-img.
# Idempotent; run by tests/run-all.sh's install step and by run.sh when qemu is missing.
set -euo pipefail
have() { command -v "$1" >/dev/null; }
if have qemu-system-x86_64 && have qemu-img && have debootstrap && have debugfs; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
list=/etc/apt/sources.list.d/berth-bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat >"$list" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -qq
apt-get install -y -qq -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
apt-get install -y -qq debootstrap e2fsprogs >/dev/null
have qemu-system-x86_64 && have qemu-img && have debootstrap && have debugfs
