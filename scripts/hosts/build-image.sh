#!/usr/bin/env bash
# Builds the systemd test host (see README "Test hosts") into DIR: a Debian 12 root file system as a raw
# ext4 image (root.img, made with mkfs.ext4 -d: no loop mount) and the guest's kernel (vmlinuz, its version in
# kernel.txt); initrd.sh then makes the initrd from that image. Needs root, debootstrap, e2fsprogs and
# Debian's mirror. scripts/hosts/run.js calls it when its cache has no image for this file's hash; everything
# that changes per run (the project, the commands) comes in through the 9p share, not through this image.
set -euo pipefail
out=${1:?usage: build-image.sh DIR}
mirror=${TSRUN_HOSTS_MIRROR:-http://deb.debian.org/debian}
node_bin=$(readlink -f "$(command -v node)")
mkdir -p "$out"
work=$(mktemp -d "$out/work.XXXXXX")
# debootstrap mounts /proc and /sys inside the tree while it runs; take them down whatever happens.
cleanup() {
  for m in proc sys dev/pts dev; do umount -l "$work/root/$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
root=$work/root

# systemd + udev + dbus for a real init, AppArmor, the engines (issue 13, 14) and what the tests run: Docker
# (docker.io), and for rootless podman the user session (libpam-systemd, dbus-user-session: user@UID.service
# and its bus), newuidmap/newgidmap (uidmap) and slirp4netns.
pkgs=(systemd systemd-sysv udev dbus kmod linux-image-amd64 apparmor libstdc++6 procps iproute2 util-linux
  ca-certificates python3 runc crun containerd podman conmon netavark umoci skopeo docker.io iptables
  libpam-systemd dbus-user-session uidmap slirp4netns)
echo "build-image: debootstrap bookworm ($mirror)"
# INITRD=No: the kernel's postinst skips Debian's initramfs (minutes here; the guest boots from its own initrd).
INITRD=No debootstrap --variant=minbase --include="$(IFS=,; echo "${pkgs[*]}")" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -30 "$work/debootstrap.log"; tail -30 "$root/debootstrap/debootstrap.log" 2>/dev/null; exit 1; }
for m in proc sys dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done

echo "build-image: configure"
echo tsrun-guest >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 tsrun-guest\n' >"$root/etc/hosts"
: >"$root/etc/fstab"
chroot "$root" passwd -d root >/dev/null
# Timers and services a throwaway test host has no use for; containerd is started by the tests that want it.
chroot "$root" systemctl disable -q containerd.service docker.service docker.socket apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
  fstrim.timer dpkg-db-backup.timer 2>/dev/null || true
chroot "$root" systemctl mask -q getty@tty1.service serial-getty@ttyS0.service systemd-timesyncd.service \
  e2scrub_reap.service man-db.timer 2>/dev/null || true
# The project's node: the host's binary, with its mtime (bin/tsrun's snapshot stamp compares mtime and size).
cp -p "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/mnt/host"
cat >"$root/usr/local/sbin/tsrun-guest" <<'SH'
#!/bin/sh
# Mounts the host's 9p share and runs the script scripts/hosts/run.js put there for this boot.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=none host /mnt/host || exit 1
exec /bin/sh /mnt/host/guest.sh
SH
chmod 755 "$root/usr/local/sbin/tsrun-guest"
cat >"$root/etc/systemd/system/tsrun-guest.service" <<'UNIT'
[Unit]
Description=tsrun guest runner (scripts/hosts/run.js)
After=basic.target dbus.service apparmor.service systemd-logind.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/tsrun-guest
StandardInput=null
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable -q tsrun-guest.service
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*

kver=$(ls "$root/lib/modules" | sort -V | tail -1)
cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
echo "build-image: root.img"
used=$(du -sm "$root" | cut -f1)
rm -f "$work/root.img"
truncate -s "$((used + 3072))M" "$work/root.img"
mkfs.ext4 -q -F -L tsrun-guest -E root_owner=0:0 -d "$root" "$work/root.img"
echo "$kver" >"$work/kernel.txt"
mv "$work/vmlinuz" "$work/root.img" "$work/kernel.txt" "$out/"
echo "build-image: done ($kver, $((used + 3072)) MiB image)"
