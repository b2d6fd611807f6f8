#!/bin/bash
# The fstab path: mount(8) -> mount.fuse3 -> aheadfs, with fstab-style options.
#
# mount(8) resets PATH to the system directories before it runs mount.fuse3, which then
# finds `aheadfs` there. So that the test neither needs nor touches an installed copy,
# it runs in a private mount namespace where /usr/local/sbin is a directory holding only
# a link to the freshly built binary.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
requires mount.fuse3
requires unshare
[ "$(id -u)" = 0 ] || skip_all "mount -t fuse.aheadfs needs root"
tap_plan 4
start_nginx
make_image "$T/www/vm.raw" 4
mkdir -p "$T/mnt" "$T/sbin"
ln -s "$AHEADFS" "$T/sbin/aheadfs"
cat >"$T/fstab" <<FSTAB
$BASE_URL/vm.raw $T/mnt fuse.aheadfs ro,_netdev,nofail,noauto,cache_dir=$T/cache,allow_other 0 0
FSTAB

# Runs inside the namespace; prints one TAP line per step.
cat >"$T/inside.sh" <<'INSIDE'
T=$1
mount --bind "$T/sbin" /usr/local/sbin || { echo "not ok - bind mount failed"; exit 1; }
if mount -T "$T/fstab" "$T/mnt" 2>"$T/err"; then
	echo "ok - mount MOUNTPOINT with an fstab line of type fuse.aheadfs"
else
	echo "not ok - mount with an fstab line: $(cat "$T/err")"
fi
grep -q " $T/mnt fuse.aheadfs " /proc/self/mounts && echo "ok - /proc/mounts shows fuse.aheadfs" ||
	echo "not ok - /proc/mounts shows fuse.aheadfs"
cmp "$T/mnt/vm.raw" "$T/www/vm.raw" && echo "ok - the image reads back identical" ||
	echo "not ok - the image reads back identical"
if umount "$T/mnt" && ! mountpoint -q "$T/mnt"; then
	echo "ok - umount unmounts it"
else
	echo "not ok - umount unmounts it"
	fusermount3 -u "$T/mnt" 2>/dev/null
fi
INSIDE
# Into a file, not a pipe: the filesystem daemon must not be able to hold our input open.
timeout 120 unshare -m --propagation private bash "$T/inside.sh" "$T" >"$T/inside.out" 2>&1
while read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	*) not_ok "${line#not ok - }" ;;
	esac
done <"$T/inside.out"
tap_done
