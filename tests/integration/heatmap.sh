#!/bin/bash
# The heat map end to end: a mount publishes MOUNTPOINT/.aheadfs/NAME.heat (checked here
# by an independent parser of the documented format), `aheadfsctl heatmap` draws it, and
# the PNG (decoded with zlib alone) shows read blocks as cached and unread ones as not;
# a 100 GiB sparse image draws with several blocks per cell; bad input gives clear errors.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
tap_plan 13
start_nginx
make_image "$T/www/disk.raw" 64
ctl="$top_builddir/aheadfsctl"
heatfile="$top_srcdir/tests/helpers/heatfile.py"
pixels="$top_srcdir/tests/helpers/png_pixels.py"
heat="$T/mnt/.aheadfs/disk.raw.heat"

mount_aheadfs "$T/mnt" "$BASE_URL/disk.raw" -o "state_dir=$T/state,bg_bandwidth=0"
check "the control folder lists disk.raw.heat" \
	bash -c "ls -a '$T/mnt/.aheadfs' | grep -qx disk.raw.heat"
# A sequential read of the first 8 MiB: the model predicts ahead of it.
dd if="$T/mnt/disk.raw" of=/dev/null bs=64k count=128 status=none
# predicted and cached blocks both in the file
hot_and_cached() {
	python3 "$heatfile" "$heat" >"$T/heat.json" &&
		python3 -c 'import json, sys; h = json.load(open(sys.argv[1]))
sys.exit(not (h["hot"] and h["cached"]))' "$T/heat.json"
}
check "the heat file shows predicted and cached blocks" wait_for 15 hot_and_cached
diag "heat file: $(stat -c %s "$heat") bytes; $(json_get "$T/heat.json" \
	'"%d predicted, max p %.2f; cached %s" % (len(s["hot"]), max(p for b, p in s["hot"]), s["cached"])')"
check "the heat file is as documented (1024 blocks of 64 KiB, block 0 cached, p in (0, 1])" \
	python3 -c 'import json, sys; h = json.load(open(sys.argv[1]))
sys.exit(not (h["nblocks"] == 1024 and h["block_size"] == 65536 and h["cached"][0][0] == 0
	and all(0 < p <= 1 for b, p in h["hot"]) and h["half_life_ms"] > 0))' "$T/heat.json"
cp "$T/mnt/.aheadfs/stats" "$T/stats.json"
diag "stats: $(json_get "$T/stats.json" 's["images"][0]["model"]')"
check "stats tells the heat map's entries and bytes" \
	python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))["images"][0]["model"]
sys.exit(not (m["heat_entries"] > 0 and m["heat_bytes"] > 0))' "$T/stats.json"

"$ctl" heatmap "$T/mnt/disk.raw" -o "$T/map.png" >"$T/summary" 2>"$T/err"
check "aheadfsctl heatmap MOUNTPOINT/NAME -o map.png succeeds" test $? = 0 -a -s "$T/map.png"
diag "$(cat "$T/summary" "$T/err")"
# "FILE: WxH px, grid at X,Y size GWxGH, COLSxROWS cells of S px, B block(s) per cell; ..."
read -r w h gx gy cols s bpc < <(sed -E 's/.*: ([0-9]+)x([0-9]+) px, grid at ([0-9]+),([0-9]+) size [0-9]+x[0-9]+, ([0-9]+)x[0-9]+ cells of ([0-9]+) px, ([0-9]+) block.*/\1 \2 \3 \4 \5 \6 \7/' "$T/summary")
centre() { echo "$((gx + ($1 % cols) * s + s / 2)),$((gy + ($1 / cols) * s + s / 2))"; }
hottest=$(json_get "$T/heat.json" 'max(s["hot"], key=lambda e: e[1])[0]')
python3 "$pixels" "$T/map.png" "$(centre 0)" "$(centre 1000)" "$(centre "$hottest")" >"$T/px"
check "the PNG decodes, at the size aheadfsctl printed (${w}x${h}), one block per cell" \
	test "$(head -1 "$T/px")" = "$w $h" -a "$bpc" = 1
# Cached cells are drawn dark (grey 140 or the full ramp, whose blue is <= 118), cells
# not cached light (grey 236 or the ramp mixed 60% with white: every channel >= 153).
read -r r0 g0 b0 < <(sed -n 2p "$T/px")
read -r r1 g1 b1 < <(sed -n 3p "$T/px")
read -r r2 g2 b2 < <(sed -n 4p "$T/px")
diag "block 0: $r0 $g0 $b0; block 1000: $r1 $g1 $b1; block $hottest (hottest): $r2 $g2 $b2"
check "block 0 (read) is drawn as cached" test "$b0" -lt 150
check "block 1000 (never read nor predicted) is drawn as not cached, no prediction" \
	test "$r1 $g1 $b1" = "236 236 236"
check "block $hottest (the most likely in the heat file) is drawn with a probability colour" \
	test "$r2" != "$b2"

# Copies of the heat file are drawn too; a damaged one is refused.
cp "$heat" "$T/copy.heat"
check "a copied .heat file draws" "$ctl" heatmap "$T/copy.heat" -o "$T/copy.png"
python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[60] ^= 1
open(sys.argv[2], "wb").write(d)' "$T/copy.heat" "$T/bad.heat"
"$ctl" heatmap "$T/bad.heat" -o "$T/bad.png" 2>"$T/err"
st=$?
check "a damaged heat file: exit 1, 'not a valid heat file', no PNG" \
	test $st = 1 -a ! -e "$T/bad.png" -a "$(grep -c 'not a valid heat file' "$T/err")" = 1
"$ctl" heatmap "$T/mnt/disk.raw" 2>"$T/err"
st=$?
"$ctl" heatmap "$T/www/disk.raw" -o "$T/x.png" 2>>"$T/err"
st2=$?
diag "$(cat "$T/err")"
check "no -o: exit 2; not an aheadfs image: exit 1, naming the missing heat file" \
	test $st = 2 -a $st2 = 1 -a "$(grep -c 'no heat map at .*/www/.aheadfs/disk.raw.heat' "$T/err")" = 1
unmount_aheadfs "$T/mnt"

# 100 GiB, sparse: 1,638,400 blocks, several per cell.
truncate -s 100G "$T/www/big.raw"
mount_aheadfs "$T/big" "$BASE_URL/big.raw" -o "state_dir=$T/state,bg_bandwidth=0"
dd if="$T/big/big.raw" of=/dev/null bs=64k count=64 skip=800000 status=none
big_ready() {
	python3 "$heatfile" "$T/big/.aheadfs/big.raw.heat" >"$T/big.json" &&
		python3 -c 'import json, sys; h = json.load(open(sys.argv[1]))
sys.exit(not (h["hot"] and sum(c for f, c in h["cached"]) >= 64))' "$T/big.json"
}
wait_for 15 big_ready
"$ctl" heatmap "$T/big/big.raw" -o "$T/big.png" >"$T/summary" 2>&1
diag "$(cat "$T/summary"); heat file $(stat -c %s "$T/big/.aheadfs/big.raw.heat") bytes"
diag "stats: $(json_get "$T/big/.aheadfs/stats" 's["images"][0]["model"]')"
check "a 100 GiB image draws, several blocks per cell" \
	grep -Eq '[0-9]{2,} block\(s\) per cell; [1-9][0-9]* blocks predicted, [1-9][0-9]+ of 1638400 cached' "$T/summary"
unmount_aheadfs "$T/big"
# HEATMAP_KEEP=DIR keeps the pictures to look at.
[ -n "${HEATMAP_KEEP:-}" ] && cp "$T/map.png" "$T/big.png" "$HEATMAP_KEEP/"
tap_done
