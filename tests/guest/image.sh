#!/usr/bin/env bash
# Builds the guest lane's Debian bookworm image (the recipe of ../shared/ENVIRONMENT.md,
# "A cgroup v2 + systemd + AppArmor guest"), unless the cache already holds one made from
# this very recipe:
#   image.sh CACHE_DIR      → prints the image directory: image.raw, vmlinuz, initrd.img
# The cache key is a hash of this script and the files it bakes in (image/): change the
# recipe and the next run rebuilds. No loop device, no mount: mkfs.ext4 -d packs the tree.
set -euo pipefail
cache=${1:?usage: image.sh CACHE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mirror=${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# systemd + D-Bus (the systemd cgroup driver's peer), AppArmor with its parser, the cloud
# kernel (virtio built in), runc (the oracle), a static busybox (the test bundles' rootfs),
# bash/e2fsprogs/util-linux for the lane scripts.
# podman and containerd (engines driving berth) are installed with apt-get after debootstrap: in
# debootstrap's own package set its containers-common fails to configure.
late_packages='podman containerd'
packages=systemd-sysv,dbus,apparmor,apparmor-utils,linux-image-cloud-amd64,initramfs-tools,udev,kmod,procps,iproute2,busybox-static,runc,e2fsprogs,util-linux
key=$( (cat "$0" "$here"/image/*; echo "$packages $late_packages") | sha256sum | cut -c1-16)
dir=$cache/image-$key
if [ -f "$dir/ready" ]; then
    touch "$dir/ready" # last use: see the clean-up below
    echo "$dir"
    exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -m 0755 "$root"
echo "guest image: debootstrap bookworm (recipe $key, cached in $cache)" >&2
if ! debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -30 "$work/debootstrap.log" >&2
    exit 1
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A mount namespace of its own for the chroot's /proc: nothing is mounted on the host.
if ! unshare -m --propagation private sh -c "mount -t proc proc '$root/proc' &&
    DEBIAN_FRONTEND=noninteractive chroot '$root' apt-get install -y -qq --no-install-recommends $late_packages" \
    >"$work/apt.log" 2>&1; then
    tail -30 "$work/apt.log" >&2
    exit 1
fi
install -m 0755 "$here/image/lane-boot" "$root/usr/local/sbin/lane-boot"
install -m 0644 "$here/image/berth-lane.service" "$root/etc/systemd/system/berth-lane.service"
chroot "$root" /bin/sh -ec '
    passwd -d root >/dev/null
    echo berth-guest >/etc/hostname
    systemctl enable berth-lane.service >/dev/null 2>&1
    # Nothing but the lane: no timers, no login prompts, no crash-dump scan.
    systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
        fstrim.timer getty@tty1.service serial-getty@ttyS0.service systemd-pstore.service containerd.service \
        >/dev/null 2>&1
    apt-get clean
'
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
mkdir -p "$work/out"
cp "$(ls "$root"/boot/vmlinuz-* | tail -1)" "$work/out/vmlinuz"
cp "$(ls "$root"/boot/initrd.img-* | tail -1)" "$work/out/initrd.img"
mkfs.ext4 -q -F -L berth-guest -d "$root" "$work/out/image.raw" 2G >&2
rm -rf "$dir"
mv "$work/out" "$dir"
echo "$packages $late_packages" >"$dir/ready"
# Other recipes' images unused for two days are dead weight. Not sooner: worktrees on
# other branches (another recipe) share this cache, and must not rebuild in turns.
find "$cache" -maxdepth 2 -path "$cache/image-*/ready" -mtime +1 -printf '%h\n' |
    while read -r old; do [ "$old" = "$dir" ] || rm -rf "$old"; done
echo "$dir"
