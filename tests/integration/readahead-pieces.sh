#!/bin/bash
# A streaming reader's readahead is requested in 2 MiB pieces from a near origin (radosgw
# served 2 MiB range GETs with half the CPU of 8 MiB ones), and in larger pieces where the
# link needs them: six prefetch requests of 2 MiB hold 12 MiB, under half of what a link
# of 200 ms at 1 Gbit/s holds in flight (25 MB), and the link's goodput shows it.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
tap_plan 6
MIB=$((1024 * 1024))
start_nginx
make_image "$T/www/disk.raw" 96

# The longest range request in the slow origin's log, and how many were that long.
origin_longest() { sed -n 's/.* length=\([0-9]*\) status=206 .*/\1/p' "$ORIGIN_LOG" | sort -n | tail -1; }

want=$(sha256sum <"$T/www/disk.raw")
mount_aheadfs_fg "$T/mnt" "$BASE_URL/disk.raw" -o bg_bandwidth=0
check "near origin: a stream reads the origin's bytes" \
	test "$(dd if="$T/mnt/disk.raw" bs=1M status=none | sha256sum)" = "$want"
longest=$(nginx_ranges /disk.raw | awk '{ n = $2 - $1 + 1; if (n > m) m = n } END { print m + 0 }')
pieces=$(nginx_ranges /disk.raw | awk -v p=$((2 * MIB)) '$2 - $1 + 1 == p' | wc -l)
check "near origin: no request over 2 MiB (longest $longest bytes)" test "$longest" -le $((2 * MIB))
check "near origin: the stream came in 2 MiB pieces ($pieces of them for 96 MiB)" test "$pieces" -ge 32
unmount_aheadfs "$T/mnt"

rm -rf "$T/cache"
start_slow_origin 200 1000
mount_aheadfs_fg "$T/mnt" "$ORIGIN_URL/disk.raw" -o bg_bandwidth=0
check "200 ms, 1 Gbit/s: a stream reads the origin's bytes" \
	test "$(dd if="$T/mnt/disk.raw" bs=1M status=none | sha256sum)" = "$want"
longest=$(origin_longest)
check "200 ms, 1 Gbit/s: pieces grew past 2 MiB (longest request $longest bytes)" \
	test "${longest:-0}" -gt $((2 * MIB))
check "200 ms, 1 Gbit/s: and stayed within a quarter of the 32 MiB window" \
	test "${longest:-0}" -le $((8 * MIB))
unmount_aheadfs "$T/mnt"
tap_done
