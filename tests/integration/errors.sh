#!/bin/bash
# Bad input gets one clear line and a non-zero exit at mount time; runtime failures turn
# into EIO (never wrong bytes) and the mount recovers when the origin does.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
tap_plan 16
start_nginx
make_image "$T/www/disk.raw" 8
cp "$T/www/disk.raw" "$T/www/noranges/disk.raw"
mkdir -p "$T/m"

# expect_mount_error DESCRIPTION PATTERN ARGS...: mounting fails, stderr matches.
expect_mount_error() {
	local what=$1 pattern=$2
	shift 2
	if "$AHEADFS" -o "cache_dir=$T/cache" "$@" 2>"$T/err" >/dev/null; then
		fusermount3 -u "$T/m" 2>/dev/null
		not_ok "$what: mount succeeded"
	elif grep -q -- "$pattern" "$T/err" && ! mountpoint -q "$T/m"; then
		ok "$what ($(head -1 "$T/err"))"
	else
		not_ok "$what: stderr was: $(cat "$T/err")"
	fi
}

expect_mount_error "server without range support" "does not support range requests" \
	"$BASE_URL/noranges/disk.raw" "$T/m"
expect_mount_error "404" "HTTP 404 Not Found" "$BASE_URL/missing.raw" "$T/m"
dead_port=$(free_port)
expect_mount_error "unreachable host" "127.0.0.1:$dead_port/disk.raw: .*onnect" \
	-o timeout=2 "http://127.0.0.1:$dead_port/disk.raw" "$T/m"
expect_mount_error "block_size not a power of two" "block_size: 3000 is not a power of two" \
	-o block_size=3000 "$BASE_URL/disk.raw" "$T/m"
expect_mount_error "block_size with a bad suffix" "block_size: \"64Q\" is not a size" \
	-o block_size=64Q "$BASE_URL/disk.raw" "$T/m"
expect_mount_error "connections not a number" "connections: \"lots\" is not a whole number" \
	-o connections=lots "$BASE_URL/disk.raw" "$T/m"
expect_mount_error "unsupported URL scheme" "unsupported URL" "ftp://127.0.0.1/x" "$T/m"
expect_mount_error "missing mountpoint" "missing URL or mountpoint" "$BASE_URL/disk.raw"
expect_mount_error "malformed header option" "header: \"nocolon\" is not NAME:VALUE" \
	-o header=nocolon "$BASE_URL/disk.raw" "$T/m"
expect_mount_error "unknown option" "unknown option" -o frobnicate=1 "$BASE_URL/disk.raw" "$T/m"

# The origin goes away in the middle of use, then comes back.
# prefetch=off: only what is read is fetched, so "uncached" below is certain.
mount_aheadfs_fg "$T/mnt" "$BASE_URL/disk.raw" -o retries=1,timeout=2,prefetch=off
dd if="$T/mnt/disk.raw" of=/dev/null bs=1M count=4 status=none
stop_nginx
if dd if="$T/mnt/disk.raw" of=/dev/null bs=1M skip=5 count=1 iflag=direct 2>"$T/dd.err"; then
	not_ok "origin down: read of an uncached block fails"
else
	check "origin down: read of an uncached block fails with EIO" grep -q "Input/output error" "$T/dd.err"
fi
check "origin down: cached blocks still read" \
	cmp <(dd if="$T/mnt/disk.raw" bs=1M count=4 status=none) <(head -c 4M "$T/www/disk.raw")
check "origin down: the failure is logged with URL, offset and reason" \
	grep -q "disk.raw: read of .* bytes at offset 5242880 failed: .*onnect" "$AHEADFS_LOG"
start_nginx # same port
check "origin back: every byte reads and matches" cmp "$T/mnt/disk.raw" "$T/www/disk.raw"
unmount_aheadfs "$T/mnt"

# The remote changes under a mount: no mixing, one clear line.
rm -rf "$T/cache"
mount_aheadfs_fg "$T/mnt" "$BASE_URL/disk.raw" -o prefetch=off
dd if="$T/mnt/disk.raw" of=/dev/null bs=1M count=2 status=none
make_image "$T/www/disk.raw" 8
touch -d '+1 minute' "$T/www/disk.raw"
fails=0
for skip in 3 4 5; do
	dd if="$T/mnt/disk.raw" of=/dev/null bs=1M skip=$skip count=1 iflag=direct status=none 2>/dev/null || fails=$((fails + 1))
done
check "remote changed: uncached reads fail ($fails of 3) and the change is logged once" \
	test "$fails" = 3 -a "$(grep -c "remote image changed" "$AHEADFS_LOG")" = 1
unmount_aheadfs "$T/mnt"

# The cache disk is full: reads are served anyway, from the fetched bytes.
if [ "$(id -u)" = 0 ] && mkdir -p "$T/tiny" && mount -t tmpfs -o size=1M tmpfs "$T/tiny"; then
	CLEANUP_MOUNTS+=("$T/tiny")
	make_image "$T/www/full.raw" 4
	mount_aheadfs_fg "$T/mnt" "$BASE_URL/full.raw" -o "cache_dir=$T/tiny/cache"
	check "cache disk full: every byte still reads correctly and the log says why" \
		bash -c "cmp '$T/mnt/full.raw' '$T/www/full.raw' && grep -q 'cannot write to the cache (No space left on device)' '$AHEADFS_LOG'"
	unmount_aheadfs "$T/mnt"
	umount "$T/tiny"
else
	skip "cache disk full: needs root to mount a small tmpfs"
fi
tap_done
