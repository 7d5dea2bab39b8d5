#!/usr/bin/env bash
# Packs a root filesystem tarball as one single-layer image archive that is both an OCI
# image layout (index.json, for `ctr images import`) and a docker-archive (manifest.json,
# for `docker load` and `podman load`), without a registry or an engine:
#   pack-image.sh ROOTFS_TAR NAME CMD_JSON OUT_TAR
set -euo pipefail
layer=${1:?usage: pack-image.sh ROOTFS_TAR NAME CMD_JSON OUT_TAR}
name=${2:?} cmd=${3:?} out=${4:?}
work=$(mktemp -d "$(dirname "$out")/.pack.XXXXXX")
trap 'rm -rf "$work"' EXIT
blobs=$work/blobs/sha256
mkdir -p "$blobs"
# Writes stdin as a blob; prints "DIGEST SIZE".
blob() {
    local tmp=$blobs/.tmp d s
    cat >"$tmp"
    d=$(sha256sum "$tmp" | cut -d' ' -f1)
    s=$(stat -c %s "$tmp")
    mv "$tmp" "$blobs/$d"
    echo "$d $s"
}
read -r ldig lsize < <(blob <"$layer")
read -r cdig csize < <(printf '%s' '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":'"$cmd"'},"rootfs":{"type":"layers","diff_ids":["sha256:'"$ldig"'"]},"history":[{"created_by":"berth tests/engines/pack-image.sh"}]}' | blob)
read -r mdig msize < <(printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$cdig"'","size":'"$csize"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'"$ldig"'","size":'"$lsize"'}]}' | blob)
printf '%s' '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$mdig"'","size":'"$msize"',"annotations":{"io.containerd.image.name":"'"$name"'","org.opencontainers.image.ref.name":"latest"}}]}' >"$work/index.json"
printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
printf '%s' '[{"Config":"blobs/sha256/'"$cdig"'","RepoTags":["'"$name"'"],"Layers":["blobs/sha256/'"$ldig"'"]}]' >"$work/manifest.json"
tar -C "$work" -cf "$out.tmp" oci-layout index.json manifest.json \
    "blobs/sha256/$ldig" "blobs/sha256/$cdig" "blobs/sha256/$mdig"
mv "$out.tmp" "$out"
