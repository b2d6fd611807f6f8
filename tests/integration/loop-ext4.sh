#!/bin/bash
# Real programs on the mounted image: qemu-img, and an ext4 filesystem inside it
# loop-mounted read-only, its files read back and compared.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
requires mkfs.ext4
[ "$(id -u)" = 0 ] || skip_all "loop devices need root"
tap_plan 4
start_nginx
mkdir -p "$T/tree/etc" "$T/tree/data"
cp -r "$top_srcdir/src" "$T/tree/"
head -c 3000000 /dev/urandom >"$T/tree/data/blob"
seq 1 200000 >"$T/tree/data/numbers"
echo hello >"$T/tree/etc/motd"
truncate -s 128M "$T/www/fs.raw"
mkfs.ext4 -q -F -d "$T/tree" "$T/www/fs.raw"

mount_aheadfs "$T/mnt" "$BASE_URL/fs.raw"
if command -v qemu-img >/dev/null; then
	check "qemu-img info sees a raw image of the right size" \
		bash -c "qemu-img info -f raw '$T/mnt/fs.raw' | grep -q '134217728 bytes'"
else
	skip "qemu-img is not installed"
fi
loopdev=$(losetup -r -f --show "$T/mnt/fs.raw") || bail "losetup failed"
mkdir -p "$T/ext4"
if mount -o ro,noload "$loopdev" "$T/ext4"; then
	CLEANUP_MOUNTS=("$T/ext4" "${CLEANUP_MOUNTS[@]}")
	ok "ext4 inside the image mounts read-only through a loop device"
	check "its files read back identical" diff -r "$T/tree" "$T/ext4" -x lost+found
	umount "$T/ext4"
else
	not_ok "ext4 inside the image mounts read-only through a loop device"
	not_ok "its files read back identical"
fi
losetup -d "$loopdev"
check "e2fsck finds the filesystem clean (read through aheadfs)" \
	e2fsck -n -f "$T/mnt/fs.raw"
unmount_aheadfs "$T/mnt"
tap_done
