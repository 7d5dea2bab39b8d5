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
mkdir -p "$dir/oci/blobs/sha256"
bash "$here/../../test-bundles/make-bundle.sh" "$dir/bundle" >/dev/null
root=$dir/bundle/rootfs
mkdir -p "$root/var/tmp" "$root/run/sub"
echo seeded > "$root/run/seed"
echo deeper > "$root/run/sub/file"
chmod 0640 "$root/run/seed"
ln -sf ../seed "$root/run/sub/link"
chmod 1777 "$root/var/tmp"
tar --numeric-owner -C "$root" -cf "$dir/rootfs.tar" .

blobs=$dir/oci/blobs/sha256
# Writes stdin as a blob; prints "DIGEST SIZE".
blob() {
    local tmp=$blobs/.tmp d s
    cat > "$tmp"
    d=$(sha256sum "$tmp" | cut -d' ' -f1)
    s=$(stat -c %s "$tmp")
    mv "$tmp" "$blobs/$d"
    echo "$d $s"
}
read -r ldig lsize < <(blob < "$dir/rootfs.tar")

# Writes one image archive: archive NAME CMD-JSON OUT.
archive() {
    local name=$1 cmd=$2 out=$3 cdig csize mdig msize
    rm -f "$dir/oci/index.json" "$dir/oci/manifest.json" "$dir/oci/oci-layout"
    read -r cdig csize < <(printf '%s' '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":'"$cmd"'},"rootfs":{"type":"layers","diff_ids":["sha256:'"$ldig"'"]},"history":[{"created_by":"berth tests/engines/make-image.sh"}]}' | blob)
    read -r mdig msize < <(printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$cdig"'","size":'"$csize"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'"$ldig"'","size":'"$lsize"'}]}' | blob)
    printf '%s' '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$mdig"'","size":'"$msize"',"annotations":{"io.containerd.image.name":"'"$name"'","org.opencontainers.image.ref.name":"latest"}}]}' > "$dir/oci/index.json"
    printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci/oci-layout"
    printf '%s' '[{"Config":"blobs/sha256/'"$cdig"'","RepoTags":["'"$name"'"],"Layers":["blobs/sha256/'"$ldig"'"]}]' > "$dir/oci/manifest.json"
    tar -C "$dir/oci" -cf "$out" oci-layout index.json manifest.json \
        "blobs/sha256/$ldig" "blobs/sha256/$cdig" "blobs/sha256/$mdig"
}
archive "$name" '["sh"]' "$dir/image.tar"
# The CRI plugin's sandbox ("pause") image: the same layer, a process that only waits to be
# killed (containerd stops a sandbox with SIGKILL).
archive localhost/pause:latest '["/bin/sleep","2147483647"]' "$dir/pause.tar"
rm -rf "$dir/oci"
echo "images ready: $dir/image.tar ($name), $dir/pause.tar (localhost/pause:latest)"
