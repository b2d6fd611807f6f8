#!/bin/bash
# Learning and prefetch end to end, against an origin with 20 ms of added latency:
# a read sequence replayed after a remount (data cache emptied, learned state kept) is
# served from prefetched blocks; an unlearned random pattern wastes little; background
# fill completes the image, after which the origin is not needed.
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
tap_plan 12
start_slow_origin 20
make_image "$T/www/disk.raw" 64
opts="state_dir=$T/state,bg_bandwidth=0"
replay="$top_srcdir/tests/helpers/replay_reads.py"

mount_aheadfs "$T/mnt" "$ORIGIN_URL/disk.raw" -o "$opts"
t1=$(python3 "$replay" "$T/mnt/disk.raw" 7 150)
unmount_aheadfs "$T/mnt"
check "first pass: the model state was saved" test -s "$(ls "$T"/state/*/model)"
check "first pass: the access log has the reads" \
	test "$(grep -c ',R$' "$(ls "$T"/state/*/access.log)")" -ge 150

rm -rf "$T/cache" # the data cache goes, the learned state stays
mount_aheadfs "$T/mnt" "$ORIGIN_URL/disk.raw" -o "$opts"
t2=$(python3 "$replay" "$T/mnt/disk.raw" 7 150)
cp "$T/mnt/.aheadfs/stats" "$T/stats2.json"
cp "$T/mnt/.aheadfs/summary" "$T/summary2.txt"
unmount_aheadfs "$T/mnt"
diag "first pass ${t1}s, learned pass ${t2}s"
diag "$(json_get "$T/stats2.json" 's["images"][0]["prefetch"]')"
diag "model: $(json_get "$T/stats2.json" 's["images"][0]["model"]')"
diag "helped $(json_get "$T/stats2.json" 's["images"][0]["helped_reads"]') of $(json_get "$T/stats2.json" 's["images"][0]["reads"]') reads, saved $(json_get "$T/stats2.json" 's["images"][0]["latency_saved_s"]') s"
check "learned pass: >= 90% of demanded blocks came from prefetch (coverage)" \
	python3 -c "import sys; sys.exit(not $(json_get "$T/stats2.json" 's["images"][0]["prefetch"]["coverage"]') >= 0.9)"
check "learned pass: faster than the first (${t1}s -> ${t2}s)" \
	python3 -c "import sys; sys.exit(not $t2 < $t1)"
check "learned pass: the state was loaded" \
	test "$(json_get "$T/stats2.json" 's["images"][0]["model"]["state_loaded"]')" = True
# Every miss costs the origin's 20 ms, a read from the cache well under 5: a read that
# prefetching turned into a hit saved at least 15 ms.
check "learned pass: the read time saved is counted (>= 15 ms per helped read, most reads helped)" \
	python3 -c "import json, sys
s = json.load(open(sys.argv[1]))['images'][0]
sys.exit(0 if s['helped_reads'] >= 0.8 * s['reads'] and
         s['latency_saved_s'] >= 0.015 * s['helped_reads'] else 1)" "$T/stats2.json"

summary_ok() {
	grep -q "^disk.raw: .*% local" "$1" && grep -q "learned state loaded at mount" "$1" &&
		grep -Eq '^  prefetch: [1-9][0-9]* reads found their blocks fetched ahead, [0-9.]+ s of read time saved' "$1"
}
check "learned pass: the text summary says what was learned and the read time saved" \
	summary_ok "$T/summary2.txt"
diag "$(cat "$T/summary2.txt")"

# The same sequence with prefetch off: every block is a miss, and nothing is saved.
rm -rf "$T/cache"
mount_aheadfs "$T/mnt" "$ORIGIN_URL/disk.raw" -o "$opts,prefetch=off"
t3=$(python3 "$replay" "$T/mnt/disk.raw" 7 150)
cp "$T/mnt/.aheadfs/stats" "$T/stats-off.json"
unmount_aheadfs "$T/mnt"
check "prefetch off: no read helped, no time saved, slower than the learned pass (${t3}s)" \
	python3 -c "import json, sys
s = json.load(open(sys.argv[1]))['images'][0]
sys.exit(0 if s['helped_reads'] == 0 and s['latency_saved_s'] == 0 and
         float(sys.argv[2]) > float(sys.argv[3]) else 1)" "$T/stats-off.json" "$t3" "$t2"

# An access pattern nothing was learned about: prefetch must not flood the link.
rm -rf "$T/cache" "$T/state"
mount_aheadfs "$T/mnt" "$ORIGIN_URL/disk.raw" -o "$opts"
python3 "$replay" "$T/mnt/disk.raw" 99 150 >/dev/null
cp "$T/mnt/.aheadfs/stats" "$T/stats3.json"
unmount_aheadfs "$T/mnt"
wasted=$(json_get "$T/stats3.json" 's["images"][0]["prefetch"]["wasted_bytes"]')
demanded=$(json_get "$T/stats3.json" 's["images"][0]["fetched_bytes"]')
check "random pattern: wasted bytes ($wasted) stay under half the demanded bytes ($demanded)" \
	test "$wasted" -le "$((demanded / 2))"

# Background fill completes the image; then the origin can go away. (idle_pressure=1:
# the test machine may be busy, and host pressure has its own unit test.)
rm -rf "$T/cache"
mount_aheadfs_fg "$T/mnt" "$ORIGIN_URL/disk.raw" \
	-o "state_dir=$T/state,bg_bandwidth=64M,idle_pressure=1"
t0=$(date +%s.%N)
filled() { test "$(json_get "$T/mnt/.aheadfs/stats" 's["images"][0]["fill"]')" = 1.0; }
wait_for 60 filled
diag "background fill of 64 MiB took $(python3 -c "print(round($(date +%s.%N) - $t0, 2))") s"
cp "$T/mnt/.aheadfs/stats" "$T/stats4.json"
check "the fill is counted in its tier, not as wasted predictions" python3 -c "import json, sys
p = json.load(open(sys.argv[1]))['images'][0]['prefetch']
sys.exit(0 if p['tiers']['background']['blocks'] > 0 and
         p['wasted_bytes'] < p['tiers']['background']['bytes'] else 1)" "$T/stats4.json"
kill "$ORIGIN_PID"
wait "$ORIGIN_PID" 2>/dev/null
check "background fill completed the image; with the origin gone every byte reads" \
	cmp "$T/mnt/disk.raw" "$T/www/disk.raw"
kill -USR1 "$AHEADFS_PID"
summary() { grep -q "disk.raw: .* reads, .* hits, .* misses, .*% local" "$AHEADFS_LOG"; }
check "SIGUSR1 writes a summary to the log" wait_for 5 summary
unmount_aheadfs "$T/mnt"
tap_done
