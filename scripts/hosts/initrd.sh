#!/usr/bin/env bash
# Makes IMAGE_DIR/initrd.img for the test host: a static busybox and the guest kernel's virtio, ext4 and 9p
# modules (read out of IMAGE_DIR/root.img with debugfs, no mount), whose /init loads them, mounts /dev/vda and
# switches root to systemd. Replaces Debian's initramfs (and its ~20 s of udev under TCG). Seconds to run;
# scripts/hosts/run.js calls it when the image has no initrd made by this version of the file.
set -euo pipefail
dir=${1:?usage: initrd.sh IMAGE_DIR}
img=$dir/root.img
kver=$(cat "$dir/kernel.txt")
mods=/usr/lib/modules/$kver
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
get() { debugfs -R "dump -p $mods/$1 $work/$2" "$img" >/dev/null 2>&1 && [ -s "$work/$2" ] || { echo "initrd: cannot read $mods/$1 from $img" >&2; exit 1; }; }
get modules.dep modules.dep
get modules.builtin modules.builtin

ird=$work/initrd
mkdir -p "$ird"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$(command -v busybox)" "$ird/bin/busybox"
for a in sh mount umount insmod switch_root mkdir cat echo sleep ls; do ln -s busybox "$ird/bin/$a"; done
# Modules in dependency order (modules.dep lists all of a module's dependencies), each once.
declare -A seen=()
order=()
add_mod() {
  local rel=$1 deps d
  [ -n "${seen[$rel]:-}" ] && return
  seen[$rel]=1
  deps=$(awk -F': *' -v m="$rel" '$1 == m { print $2 }' "$work/modules.dep")
  for d in $deps; do add_mod "$d"; done
  order+=("$rel")
}
for name in virtio_pci virtio_blk crc32c_generic ext4 9pnet_virtio 9p; do
  rel=$(awk -F: -v n="$name" '{ f = $1; sub(/.*\//, "", f); sub(/\.ko(\.[a-z]+)?$/, "", f); gsub(/-/, "_", f); if (f == n) { print $1; exit } }' "$work/modules.dep")
  if [ -n "$rel" ]; then add_mod "$rel"
  elif ! grep -qE "/$name\.ko" "$work/modules.builtin"; then echo "initrd: no module $name in $kver" >&2; exit 1; fi
done
: >"$ird/modules"
for rel in "${order[@]}"; do
  base=$(basename "$rel")
  get "$rel" "$base"
  case $base in
    *.ko.xz) xz -dc "$work/$base" >"$ird/lib/modules/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) zstd -qdc "$work/$base" >"$ird/lib/modules/${base%.zst}"; base=${base%.zst} ;;
    *) mv "$work/$base" "$ird/lib/modules/$base" ;;
  esac
  echo "$base" >>"$ird/modules"
done
cat >"$ird/init" <<'SH'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules); do insmod /lib/modules/$m || echo "initrd: insmod $m failed"; done
# the disk shows up once virtio's probe has run (slow under TCG on a busy host)
i=0
while [ ! -b /dev/vda ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -b /dev/vda ] || { echo "initrd: no /dev/vda after 60 s; block devices: $(ls /sys/class/block)"; }
# on failure init exits: the kernel panics, panic=-1 reboots and QEMU (-no-reboot) ends
mount -t ext4 -o rw /dev/vda /newroot || { echo "initrd: cannot mount /dev/vda"; exit 1; }
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
SH
chmod 755 "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$dir/initrd.img.tmp"
mv "$dir/initrd.img.tmp" "$dir/initrd.img"
echo "initrd: $dir/initrd.img ($(wc -l <"$ird/modules") modules from $kver)"
