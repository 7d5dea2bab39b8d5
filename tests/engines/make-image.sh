#!/usr/bin/env bash
# Makes the busybox image the engine tests run, without a registry or an engine:
#   make-image.sh DIR
# DIR/rootfs.tar  the root filesystem (test-bundles/make-bundle.sh's busybox rootfs, plus
#                 /run/seed and /etc/seed for tmpcopyup checks), for `podman import`;
# DIR/image.tar   one image archive that is both an OCI image layout (index.json, for
#                 `ctr images import`) and a docker-archive (manifest.json, for
#                 `docker load` and `podman load`), named localhost/busybox:latest;
# DIR/pause.tar   the same layer as localhost/pause:latest, the CRI sandbox image.
set -euo pipefail
dir=${1:?usage: make-image.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
name=localhost/busybox:latest
rm -rf "$dir/bundle" "$dir/oci"
mkdir -p "$dir"
bash "$here/../../test-bundles/make-bundle.sh" "$dir/bundle" >/dev/null
root=$dir/bundle/rootfs
mkdir -p "$root/var/tmp" "$root/run/sub"
echo seeded > "$root/run/seed"
echo deeper > "$root/run/sub/file"
chmod 0640 "$root/run/seed"
ln -sf ../seed "$root/run/sub/link"
chmod 1777 "$root/var/tmp"
tar --numeric-owner -C "$root" -cf "$dir/rootfs.tar" .

# The CRI plugin's sandbox ("pause") image is the same layer with a process that only waits
# to be killed (containerd stops a sandbox with SIGKILL).
bash "$here/pack-image.sh" "$dir/rootfs.tar" "$name" '["sh"]' "$dir/image.tar"
bash "$here/pack-image.sh" "$dir/rootfs.tar" localhost/pause:latest '["/bin/sleep","2147483647"]' "$dir/pause.tar"
echo "images ready: $dir/image.tar ($name), $dir/pause.tar (localhost/pause:latest)"
