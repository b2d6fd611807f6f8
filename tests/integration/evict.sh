#!/bin/bash
# cache_size bounds the cache: blocks are evicted (holes punched) while readers keep
# getting the right bytes, and blocks in use are kept over cold ones.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
tap_plan 5
start_nginx
make_image "$T/www/disk.raw" 48

mount_aheadfs "$T/mnt" "$BASE_URL/disk.raw" -o cache_size=8M,bg_bandwidth=0
# Several passes by concurrent readers over 6x the cache size.
bad=0
for pass in 1 2; do
	for r in 1 2 3; do
		cmp "$T/mnt/disk.raw" "$T/www/disk.raw" || bad=1 &
	done
	wait_ok=0
	for job in $(jobs -p); do [ "$job" = "$WATCHDOG_PID" ] || wait "$job"; done
done
check "readers racing with eviction always get the origin's bytes" test "$bad" = 0
sleep 0.5 # one learner tick to finish its eviction
data=$(ls "$T"/cache/*/data)
kib=$(du -k "$data" | cut -f1)
check "the cache file holds about cache_size (${kib} KiB on disk for 8 MiB)" test "$kib" -le 10240
check "stats count evicted blocks" \
	test "$(json_get "$T/mnt/.aheadfs/stats" 's["total"]["evicted_blocks"]')" -gt 0

# A hot region read again and again survives a scan of cold data.
for i in 1 2 3 4 5 6; do
	dd if="$T/mnt/disk.raw" of=/dev/null bs=64k skip=0 count=16 iflag=direct status=none
	dd if="$T/mnt/disk.raw" of=/dev/null bs=1M skip=$((8 + i * 4)) count=4 iflag=direct status=none
	sleep 0.1
done
before=$(nginx_requests "^GET /disk.raw 206 \"bytes=[0-9]*-[0-9]*\" .*" )
hot_fetches_before=$(awk '$3 == 206 && $4 ~ /"bytes=[0-9]-|"bytes=[0-9]{1,6}-/' "$NGINX_LOG" | wc -l)
dd if="$T/mnt/disk.raw" of=/dev/null bs=64k skip=0 count=16 iflag=direct status=none
hot_fetches_after=$(awk '$3 == 206 && $4 ~ /"bytes=[0-9]-|"bytes=[0-9]{1,6}-/' "$NGINX_LOG" | wc -l)
check "the hot first MiB stayed cached ($hot_fetches_before -> $hot_fetches_after fetches of it)" \
	test "$hot_fetches_before" = "$hot_fetches_after"
check "after eviction the bytes still match" cmp "$T/mnt/disk.raw" "$T/www/disk.raw"
unmount_aheadfs "$T/mnt"
tap_done
