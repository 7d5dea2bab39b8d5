#!/usr/bin/env bash
# podman 4.3 driving berth (--runtime) on the guest's cgroup v2 host: a busybox image
# imported from the test rootfs, `run --rm` with a memory limit, checked from inside.
# cgroupfs manager: the check. systemd manager: reported only (it passes --systemd-cgroup,
# which needs berth's systemd cgroup driver).
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
set +e
sd=$(timeout 120 podman "${common[@]}" --cgroup-manager systemd run --rm --network none \
    --memory 64m localhost/bb:latest sh -c "$probe" 2>&1)
echo "podman (systemd cgroup manager) with berth: exit $?: $(echo "$sd" | tr '\n' ' ' | cut -c1-300)"
exit 0
