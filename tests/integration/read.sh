#!/bin/bash
# Reads through a real mount against a real nginx: whole-image checksum, random reads,
# edge offsets, several images from a manifest, the stats file.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
tap_plan 14
start_nginx
make_image "$T/www/disk.raw" 48
head -c 100001 /dev/urandom >"$T/www/odd name.bin"
: >"$T/www/empty.raw"

mount_aheadfs "$T/mnt" "$BASE_URL/disk.raw"
check "mounted image has the origin's size" test "$(stat -c %s "$T/mnt/disk.raw")" = 50331648
check "sha256 of the whole image matches" \
	test "$(sha256sum <"$T/mnt/disk.raw")" = "$(sha256sum <"$T/www/disk.raw")"
check "1,000 random reads match (unaligned, across blocks, at and past EOF)" \
	python3 "$top_srcdir/tests/helpers/randread.py" "$T/mnt/disk.raw" "$T/www/disk.raw" 1000
check "stats file is valid JSON and counts the reads" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
img = s["images"][0]
assert img["name"] == "disk.raw" and img["reads"] > 0 and img["fill"] == 1.0, img
assert s["origin"]["bytes"] == 50331648, s["origin"]' "$T/mnt/.aheadfs/stats"
check "the image is read-only" bash -c "! echo x 2>/dev/null >>'$T/mnt/disk.raw'"
unmount_aheadfs "$T/mnt"

# -o direct_io: cold and warm reads right, and every read reaches aheadfs (no page cache).
rm -rf "$T/cache"
mount_aheadfs_fg "$T/mnt" "$BASE_URL/disk.raw" -o direct_io
check "direct_io: sha256 of the whole image matches, read cold" \
	test "$(sha256sum <"$T/mnt/disk.raw")" = "$(sha256sum <"$T/www/disk.raw")"
# Cached 1 MiB reads are too large for an unprivileged splice pipe (1 MiB with the header):
# they are answered from a buffer of the thread's, not from one allocated (and faulted in,
# 256 pages) for every read, as libfuse's fallback did: 12,300 faults per pass here. The
# limit leaves room for every FUSE thread (libfuse starts up to 10) to fault in its
# buffer during the measured pass.
minflt() { awk '{ print $10 }' "/proc/$AHEADFS_PID/stat"; }
warm1m() { dd if="$T/mnt/disk.raw" bs=1M status=none | sha256sum; }
warm1m >/dev/null
f0=$(minflt)
sum=$(warm1m)
f1=$(minflt)
check "direct_io: warm 1 MiB reads match, and the daemon faulted in $((f1 - f0)) pages for 48 of them (limit 4096)" \
	test "$sum" = "$(sha256sum <"$T/www/disk.raw")" -a $((f1 - f0)) -le 4096
check "direct_io: 1,000 random reads match" \
	python3 "$top_srcdir/tests/helpers/randread.py" "$T/mnt/disk.raw" "$T/www/disk.raw" 1000
reads() { json_get "$T/mnt/.aheadfs/stats" 's["images"][0]["reads"]'; }
r0=$(reads)
dd if="$T/mnt/disk.raw" of=/dev/null bs=64K count=16 status=none
r1=$(reads)
dd if="$T/mnt/disk.raw" of=/dev/null bs=64K count=16 status=none
r2=$(reads)
check "direct_io: reading the same 1 MiB again reaches aheadfs again ($r0 -> $r1 -> $r2 reads)" \
	test "$((r2 - r1))" -ge 1 -a "$((r2 - r1))" = "$((r1 - r0))"
check "direct_io: a private mmap reads the image, a shared one is refused (as the man page says)" \
	python3 -c "
import errno, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
want = open(sys.argv[2], 'rb').read(65536)
assert mmap.mmap(fd, 65536, mmap.MAP_PRIVATE, mmap.PROT_READ)[:] == want
try:
    mmap.mmap(fd, 65536, mmap.MAP_SHARED, mmap.PROT_READ)
    sys.exit(1)
except OSError as e:
    sys.exit(0 if e.errno == errno.ENODEV else 1)" "$T/mnt/disk.raw" "$T/www/disk.raw"
unmount_aheadfs "$T/mnt"

cat >"$T/manifest" <<MAN
# name url
disk.raw $BASE_URL/disk.raw
odd.bin $BASE_URL/odd%20name.bin
empty.raw	$BASE_URL/empty.raw
MAN
mount_aheadfs "$T/mnt2" "" -o "manifest=$T/manifest" -o block_size=4K
check "manifest: three images listed" \
	test "$(ls "$T/mnt2" | tr '\n' ' ')" = "disk.raw empty.raw odd.bin "
check "manifest: odd-sized image matches byte for byte" cmp "$T/mnt2/odd.bin" "$T/www/odd name.bin"
check "manifest: random reads with 4K blocks match" \
	python3 "$top_srcdir/tests/helpers/randread.py" "$T/mnt2/odd.bin" "$T/www/odd name.bin" 300
check "manifest: empty image reads as empty" test "$(wc -c <"$T/mnt2/empty.raw")" = 0
unmount_aheadfs "$T/mnt2"
tap_done
