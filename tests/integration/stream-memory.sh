#!/bin/bash
# A cold sequential read holds little memory: what readahead fetched is kept in memory
# until the stream has read it, then its buffer is reused for the next fetch. Peak RSS
# of the daemon over a cold 256 MiB read, with -o direct_io and without. And the stream's
# blocks are readahead's: the learner, which sees the same reads, leaves the blocks ahead
# of a stream to it (before, it fetched 18-97 of them in its own smaller requests).
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
tap_plan 6
start_nginx
make_image "$T/www/disk.raw" 256

# kib_of PID FIELD: a /proc/PID/status field (VmHWM, VmRSS) in KiB.
kib_of() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# In use at once: readahead's window (32 MiB and a request) ahead of the reader, and
# behind it what the writer has not written yet (32 MiB at most); a buffer the stream has
# read through and the writer has written goes back to the pool for the next fetch. When
# every fetch was kept until 64 MiB more had come, the daemon grew by 96-99 MiB here (56-64
# MiB since).
LIMIT_KIB=$((88 * 1024))
# Under AddressSanitizer freed memory waits in its quarantine and the heap has a shadow:
# the daemon's RSS says nothing about aheadfs then.
ASAN=
ldd "$AHEADFS" 2>/dev/null | grep -q libasan && ASAN=1
for opts in direct_io ""; do
	rm -rf "$T/cache"
	# No background fill: on loopback it would have the image before dd starts.
	mount_aheadfs_fg "$T/mnt" "$BASE_URL/disk.raw" -o "bg_bandwidth=0${opts:+,$opts}"
	wait_for 20 test -f "$T/mnt/disk.raw"
	before=$(kib_of "$AHEADFS_PID" VmRSS)
	sum=$(dd if="$T/mnt/disk.raw" bs=1M status=none | sha256sum)
	peak=$(kib_of "$AHEADFS_PID" VmHWM)
	what="cold 256 MiB read${opts:+ with -o $opts}"
	check "$what: the origin's bytes" test "$sum" = "$(sha256sum <"$T/www/disk.raw")"
	model=$(json_get "$T/mnt/.aheadfs/stats" \
		'sum(s["images"][0]["prefetch"]["tiers"][t]["blocks"] for t in ("critical", "predictive"))')
	check "$what: the model's tiers fetched $model blocks of the stream (at most the first read's 16)" \
		test "$model" -le 16
	if [ -n "$ASAN" ]; then
		skip "$what: memory not measured under AddressSanitizer (its quarantine keeps freed memory)"
	else
		check "$what: the daemon grew by $(((peak - before) / 1024)) MiB (limit $((LIMIT_KIB / 1024)))" \
			test $((peak - before)) -le "$LIMIT_KIB"
	fi
	unmount_aheadfs "$T/mnt"
done
tap_done
