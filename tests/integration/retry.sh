#!/bin/bash
# An origin that answers "later" (503, as S3's SlowDown, or a proxy whose backend
# restarts) is asked again with backoff, at mount time and on reads: the mount comes up,
# every byte reads right, the retries are counted and the connections are kept. One that
# keeps answering 503 fails the mount with one clear line, after retries + 1 attempts.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
requires python3
tap_plan 12
mkdir -p "$T/www"
make_image "$T/www/disk.raw" 16

# next_origin ARGS...: stop the previous origin, start one with ARGS on an empty log.
next_origin() {
	if [ -n "${ORIGIN_PID:-}" ]; then
		kill "$ORIGIN_PID" 2>/dev/null
		wait "$ORIGIN_PID" 2>/dev/null
	fi
	rm -f "$T/origin.log"
	start_slow_origin 0 0 "$@"
}
requests() { wc -l <"$ORIGIN_LOG"; }

# 1-3: the first two requests are answered 503; the probe asks again and the mount is up.
next_origin --error-first 2
mount_aheadfs_fg "$T/mnt" "$ORIGIN_URL/disk.raw" -o retries=3
check "mount rides out two 503s at its probe" mountpoint -q "$T/mnt"
check "each retry of the probe is logged, with its wait" \
	test "$(grep -c 'HTTP 503 to HEAD; asking again in [0-9]* ms (retry [12] of 3)' "$AHEADFS_LOG")" = 2
check "every byte reads right" cmp "$T/mnt/disk.raw" "$T/www/disk.raw"
unmount_aheadfs "$T/mnt"

# 4-5: the same through a presigned-style URL, which is probed with a one-byte GET (a
# GET-presigned URL refuses HEAD); this origin ignores the query.
rm -rf "$T/cache"
next_origin --error-first 2
mount_aheadfs_fg "$T/mnt" "$ORIGIN_URL/disk.raw?X-Amz-Expires=3600&X-Amz-Signature=00" -o retries=3
check "presigned: the one-byte GET probe rides out two 503s, no HEAD sent" \
	test "$(grep -c 'HTTP 503 to a one-byte GET; asking again' "$AHEADFS_LOG")" = 2 -a \
	"$(grep -c "method=HEAD" "$ORIGIN_LOG")" = 0
check "presigned: every byte reads right" cmp "$T/mnt/disk.raw" "$T/www/disk.raw"
unmount_aheadfs "$T/mnt"

# 6-7: every request answered 503: the mount fails after 1 + retries HEADs, saying so.
rm -rf "$T/cache"
next_origin --error-rate 1
mkdir -p "$T/m"
if "$AHEADFS" -o "cache_dir=$T/cache,retries=2" "$ORIGIN_URL/disk.raw" "$T/m" 2>"$T/err"; then
	fusermount3 -u "$T/m"
	not_ok "a server that keeps answering 503: the mount fails"
else
	check "a server that keeps answering 503: the mount fails with one clear line ($(tail -1 "$T/err"))" \
		grep -q "disk.raw: HTTP 503 (3 attempts)$" "$T/err"
fi
check "... after exactly three requests, all HEAD ($(requests) made)" \
	test "$(requests)" = 3 -a "$(grep -c "method=HEAD" "$ORIGIN_LOG")" = 3

# 8-12: a fifth of all requests answered 503 while reading: retried, never a wrong byte.
rm -rf "$T/cache"
next_origin --error-rate 0.2
mount_aheadfs_fg "$T/mnt" "$ORIGIN_URL/disk.raw" -o retries=30,prefetch=off
check "300 random reads match while a fifth of the requests fail" \
	python3 "$top_srcdir/tests/helpers/randread.py" "$T/mnt/disk.raw" "$T/www/disk.raw" 300
check "then every byte reads right" cmp "$T/mnt/disk.raw" "$T/www/disk.raw"
cp "$T/mnt/.aheadfs/stats" "$T/stats.json"
retries=$(json_get "$T/stats.json" 's["origin"]["retries"]')
failures=$(json_get "$T/stats.json" 's["origin"]["failures"]')
check "the retries are counted ($retries) and no request failed for good ($failures)" \
	test "$retries" -gt 0 -a "$failures" = 0
check "the origin answered 503 as many times as the mount retried, give or take the probe" \
	test "$(grep -c "status=503" "$ORIGIN_LOG")" -ge "$retries"
# Connections: the server saw one for the probe and those the stats count, no more.
conns=$(json_get "$T/stats.json" 's["origin"]["connects"]')
peers=$(sed -n 's/.* client=\([^ ]*\) .*/\1/p' "$ORIGIN_LOG" | sort -u | wc -l)
check "connections are reused through the 503s: $(requests) requests from $peers client ports, the probe's and $conns counted" \
	test "$conns" -ge 1 -a "$conns" -le 8 -a "$peers" = $((conns + 1))
unmount_aheadfs "$T/mnt"
tap_done
