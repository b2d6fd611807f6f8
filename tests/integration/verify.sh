#!/bin/bash
# Every answer is verified before a byte of it is served or cached. An origin that
# answers a range with other bytes, another total size, too few bytes or another version
# (tests/helpers/badorigin.py, switched between modes while the mount is up) gets EIO and
# a log line saying why, never wrong bytes; nothing of it stays in the cache, so the
# same blocks read right once the origin answers properly.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
requires python3
tap_plan 13
mkdir -p "$T/www"
make_image "$T/www/disk.raw" 8
echo good >"$T/mode"
python3 "$top_srcdir/tests/helpers/badorigin.py" "$T/www/disk.raw" "$T/mode" \
	--max-seconds "${TEST_TIMEOUT:-300}" >"$T/bad.out" 2>"$T/bad.err" &
CLEANUP_PIDS+=($!)
wait_for 10 grep -q '^port=' "$T/bad.out" || bail "badorigin.py did not start: $(cat "$T/bad.err")"
URL="http://127.0.0.1:$(sed -n 's/^port=//p' "$T/bad.out")/disk.raw"

# block N (64 KiB) of the mounted image, read past the page cache, into FILE
read_block() { dd if="$T/mnt/disk.raw" of="$2" bs=64k skip="$1" count=1 iflag=direct 2>"$T/dd.err"; }
same_block() { cmp "$2" <(dd if="$T/www/disk.raw" bs=64k skip="$1" count=1 status=none); }

# A server that does not implement HEAD (501) is probed with a one-byte GET instead,
# at once: 501 is not a "later".
echo nohead >"$T/mode"
mount_aheadfs_fg "$T/mnt" "$URL" -o prefetch=off
check "HEAD answered 501: the mount probes with a GET, without retrying the HEAD" \
	test "$(stat -c %s "$T/mnt/disk.raw")" = 8388608 -a "$(grep -c 'asking again' "$AHEADFS_LOG")" = 0
unmount_aheadfs "$T/mnt"
echo good >"$T/mode"

# prefetch=off: only the block asked for is fetched, one request per read.
mount_aheadfs_fg "$T/mnt" "$URL" -o prefetch=off,retries=1
read_block 0 "$T/b0"
check "good answers read right" same_block 0 "$T/b0"

# mode block reason-in-the-log
bad_answer() {
	local mode=$1 block=$2 why=$3
	echo "$mode" >"$T/mode"
	if read_block "$block" "$T/got"; then
		not_ok "$mode: the read succeeded"
	else
		check "$mode: the read fails with EIO" grep -q "Input/output error" "$T/dd.err"
	fi
	check "$mode: the log says why ($why)" grep -q -- "$why" "$AHEADFS_LOG"
}
bad_answer shift 16 'unexpected Content-Range "bytes 1114112-1179647/8388608"'
bad_answer total 32 'unexpected Content-Range "bytes 2097152-2162687/8454144"'
bad_answer short 48 'offset 3145728 failed: transfer closed with 32768 bytes remaining'

echo good >"$T/mode"
ok_after=0
for b in 16 32 48; do
	read_block "$b" "$T/got" && same_block "$b" "$T/got" && ok_after=$((ok_after + 1))
done
check "nothing of the bad answers was kept: the same blocks read right now ($ok_after of 3)" \
	test "$ok_after" = 3
check "the stats count the three failed reads" \
	test "$(json_get "$T/mnt/.aheadfs/stats" 's["origin"]["failures"]')" = 3

# Another version under the same URL, If-Range ignored: the mount stops fetching.
bad_answer etag 64 'remote image changed (ETag "v2", expected "v1")'
read_block 0 "$T/b0"
check "after the change, cached blocks still read right" same_block 0 "$T/b0"
unmount_aheadfs "$T/mnt"
tap_done
