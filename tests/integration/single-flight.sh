#!/bin/bash
# A block is fetched at most once: concurrent readers of the same cold region wait for
# one fetch, and the missing blocks of one read go out as one range request.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
tap_plan 4
start_nginx
make_image "$T/www/disk.raw" 64
# No background fill: it walks the image from block 0 at up to 12.5 MB/s whenever the host
# looks idle, and can reach the cold region of the last check first (a read of blocks
# already cached or in flight is not one request of 16): it failed once in CI, and every
# time with a 5 s pause before the check.
mount_aheadfs "$T/mnt" "$BASE_URL/disk.raw" -o bg_bandwidth=0

for i in 1 2 3 4 5 6 7 8; do
	dd if="$T/mnt/disk.raw" of="$T/out.$i" bs=1M skip=4 count=8 status=none &
done
wait_ok=0
for job in $(jobs -p); do
	[ "$job" = "$WATCHDOG_PID" ] && continue
	wait "$job" || wait_ok=1
done
check "8 concurrent readers all succeed" test "$wait_ok" = 0
same=0
for i in 1 2 3 4 5 6 7 8; do
	cmp -s "$T/out.$i" <(dd if="$T/www/disk.raw" bs=1M skip=4 count=8 status=none) || same=1
done
check "8 concurrent readers got the origin's bytes" test "$same" = 0
# nginx writes a request's log line after it has sent the body: a reader can be done
# first, and on a loaded host (CI runs two builds' tests side by side) the check read the
# log before the last line was there. Every check of the log waits for it (bounded).
region_fetched_once() {
	python3 -c '
import sys
blocks = {}
for line in sys.stdin:
    a, b = map(int, line.split())
    for blk in range(a // 65536, b // 65536 + 1):
        blocks[blk] = blocks.get(blk, 0) + 1
region = range(4 * 16, 12 * 16)
missing = [b for b in region if b not in blocks]
twice = [b for b, n in blocks.items() if n > 1]
print("# blocks fetched:", len(blocks), "missing:", missing[:5], "twice:", twice[:5])
sys.exit(1 if missing or twice else 0)' < <(nginx_ranges /disk.raw)
}
wait_for 10 region_fetched_once >/dev/null
check "every block of the region was requested exactly once" region_fetched_once

# One direct 1 MiB read of a cold region (beyond any readahead): one range request.
dd if="$T/mnt/disk.raw" of=/dev/null bs=1M skip=50 count=1 iflag=direct status=none
logged_range() { nginx_ranges /disk.raw | grep -q "^$1 $2$"; }
if wait_for 10 logged_range 52428800 53477375; then
	ok "one 1 MiB read of 16 missing blocks is one range request"
else
	not_ok "one 1 MiB read of 16 missing blocks is one range request"
	nginx_ranges /disk.raw | awk '$2 >= 52428800 && $1 < 53477376 { print "# range:", $0 }'
fi
unmount_aheadfs "$T/mnt"
tap_done
