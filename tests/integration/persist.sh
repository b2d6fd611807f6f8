#!/bin/bash
# The cache persists across mounts, survives a crash without claiming absent blocks, and
# is discarded as a whole when the remote changes.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
tap_plan 8
start_nginx
make_image "$T/www/disk.raw" 16
want=$(sha256sum <"$T/www/disk.raw")

mount_aheadfs "$T/mnt" "$BASE_URL/disk.raw"
sha256sum <"$T/mnt/disk.raw" >/dev/null
unmount_aheadfs "$T/mnt"
before=$(nginx_requests "^GET /disk.raw 206")
mount_aheadfs "$T/mnt" "$BASE_URL/disk.raw"
got=$(sha256sum <"$T/mnt/disk.raw")
after=$(nginx_requests "^GET /disk.raw 206")
check "remount: bytes match" test "$got" = "$want"
check "remount: served from the cache with zero range requests ($before -> $after)" \
	test "$before" = "$after"
check "remount: du shows the whole image as local" \
	test "$(du -k "$T/mnt/disk.raw" | cut -f1)" -ge 16384
unmount_aheadfs "$T/mnt"

# Crash: kill -9 in the middle of use, then mount the same cache again.
rm -rf "$T/cache"
mount_aheadfs_fg "$T/mnt" "$BASE_URL/disk.raw"
dd if="$T/mnt/disk.raw" of=/dev/null bs=1M count=6 status=none
sleep 2.5 # let one periodic flush happen
dd if="$T/mnt/disk.raw" of=/dev/null bs=1M skip=8 count=4 status=none
kill -9 "$AHEADFS_PID"
wait "$AHEADFS_PID" 2>/dev/null
fusermount3 -u "$T/mnt" 2>/dev/null || umount -l "$T/mnt"
AHEADFS_PID=
mount_aheadfs "$T/mnt" "$BASE_URL/disk.raw"
check "after kill -9: every byte still matches" \
	test "$(sha256sum <"$T/mnt/disk.raw")" = "$want"
unmount_aheadfs "$T/mnt"

# The remote changes: same size, new bytes.
make_image "$T/www/new.raw" 16
mv "$T/www/new.raw" "$T/www/disk.raw"
touch -d '+1 minute' "$T/www/disk.raw" # a new Last-Modified and ETag even within a second
mount_aheadfs_fg "$T/mnt" "$BASE_URL/disk.raw"
check "changed remote: the new bytes are served" cmp "$T/mnt/disk.raw" "$T/www/disk.raw"
check "changed remote: the mount says the old cache was discarded" \
	grep -q "previous cache discarded: cache is for another validator" "$AHEADFS_LOG"
check "the mount's log has no warning from libfuse about its thread options" \
	bash -c "! grep -q 'Ignoring invalid' '$AHEADFS_LOG'"
unmount_aheadfs "$T/mnt"
check "no file is left open or locked: a new mount of the same cache works" \
	mount_aheadfs "$T/mnt" "$BASE_URL/disk.raw"
unmount_aheadfs "$T/mnt"
tap_done
