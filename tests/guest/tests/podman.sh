#!/usr/bin/env bash
# podman 4.3 driving berth (--runtime) on the guest's cgroup v2 host: a busybox image
# imported from the test rootfs, `run --rm` with a memory limit, checked from inside.
# With the cgroupfs manager and with podman's systemd manager (which passes --systemd-cgroup
# and cgroupsPath machine.slice:libpod:ID: berth starts the transient scope libpod-ID.scope).
set -euo pipefail
dir=$(mktemp -d /var/tmp/podman.XXXXXX)
trap 'podman "${common[@]}" rm -af >/dev/null 2>&1; rm -rf "$dir"' EXIT
bash "$MANIFEST/test-bundles/make-bundle.sh" "$dir/b" >/dev/null
tar -C "$dir/b/rootfs" -cf "$dir/bb.tar" .
export CONTAINERS_CONF=$dir/containers.conf
printf '[containers]\ndefault_ulimits = []\n' >"$CONTAINERS_CONF"
common=(--root "$dir/storage" --runroot "$dir/run" --storage-driver vfs --runtime /lane/berth)
podman "${common[@]}" import -q "$dir/bb.tar" localhost/bb:latest >/dev/null
probe='echo hi; cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max'
out=$(timeout 120 podman "${common[@]}" --cgroup-manager cgroupfs run --rm --network none \
    --memory 64m localhost/bb:latest sh -c "$probe")
echo "podman (cgroupfs) with berth: $(echo "$out" | tr '\n' ' ')"
[ "$(echo "$out" | sed -n 1p)" = hi ]
[ "$(echo "$out" | sed -n 2p)" = "0::/" ] # cgroup namespace: its own root
[ "$(echo "$out" | sed -n 3p)" = 67108864 ]
# systemd manager: a detached container in its scope, MemoryMax on the unit, the same view
# from inside through exec, and no unit once podman removed it.
id=$(timeout 120 podman "${common[@]}" --cgroup-manager systemd run -d --network none \
    --memory 64m localhost/bb:latest sleep 1000)
unit="libpod-$id.scope"
show=$(systemctl show -p ActiveState -p MemoryMax -p Slice "$unit")
echo "podman (systemd cgroup manager) with berth: $unit: $(echo "$show" | tr '\n' ' ')"
echo "$show" | grep -qx ActiveState=active
echo "$show" | grep -qx MemoryMax=67108864
echo "$show" | grep -qx Slice=machine.slice
out=$(timeout 120 podman "${common[@]}" --cgroup-manager systemd exec "$id" sh -c "$probe")
[ "$(echo "$out" | sed -n 1p)" = hi ]
[ "$(echo "$out" | sed -n 2p)" = "0::/" ]
[ "$(echo "$out" | sed -n 3p)" = 67108864 ]
timeout 120 podman "${common[@]}" --cgroup-manager systemd rm -f "$id" >/dev/null
if systemctl list-units --all --no-legend "$unit" | grep -q .; then
    echo "unit $unit left after podman rm"
    exit 1
fi
