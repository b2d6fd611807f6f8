#!/bin/bash
# replay.sh: the benchmark's trace replay workload (workload 4) against one file.
#
#   contrib/bench/replay.sh [--max-seconds S] TRACE FILE
#
# TRACE names one of the traces below; aheadfs-replay (replay.c) issues its reads
# against FILE with pread(2), one at a time, with the recorded think times scaled, and
# this prints one line of key=value for run.sh:
#
#   replay_s=ELAPSED mean_ms=M p99_ms=P ops=N ops_planned=N truncated=0|1 replay_mib=MIB
#
#   boot          aheadfs's own access log of a VM boot's first mount: BENCH_BOOT_TRACE,
#                 else the one run.sh recorded from aheadfs-learned's training boot
#                 ($BENCH_CACHE/traces/boot.access.log), else the committed fixture
#                 traces/debian-boot-1.csv (a first mount at 20/200): every read, the think times
#                 scaled to add up to BOOT_THINK_S (default 4) seconds.  A TCG boot
#                 takes 25 s on a quiet machine and 100+ s on a loaded one; scaling
#                 to a fixed total keeps the replay the same whatever load the
#                 recording was made at.
#   cloudphysics  ../shared/traces/cloudPhysicsIO.csv: the first 1000 reads, think time
#                 x 0.005 (its time unit is undocumented: ~765 units span these reads)
#   p3 p6 oltp    the ARC traces (no timestamps): the first 1000 reads back to back
#
# Public traces are read in place (BENCH_TRACES, default /work/shared/traces). Their
# offsets reach 4-32 GiB while the image is 2 GiB: offsets past the end of FILE are
# wrapped modulo its size (--wrap), which keeps each read's length and alignment and the
# trace's pattern within the image (two far-apart regions may land on each other).
#
# Every replay is bounded twice: by its number of reads, and by --max-seconds (default
# 8): no read starts after that, and the line says truncated=1 (replay_s is then a
# lower bound; mean_ms and p99_ms still describe the reads done).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
	echo "usage: $0 [--max-seconds S] boot|cloudphysics|p3|p6|oltp FILE" >&2
	exit 2
}

MAX_S=8
while [ $# -gt 0 ]; do
	case $1 in
	--max-seconds) [ $# -ge 2 ] || usage; MAX_S=$2; shift 2 ;;
	-*) usage ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || usage
name=$1
file=$2
TRACES=${BENCH_TRACES:-/work/shared/traces}

case $name in
boot)
	trace=${BENCH_BOOT_TRACE:-$BENCH_CACHE/traces/boot.access.log}
	if [ -z "${BENCH_BOOT_TRACE:-}" ] && [ ! -r "$trace" ]; then
		trace=$BENCH_DIR/traces/debian-boot-1.csv
	fi
	[ -r "$trace" ] || die "no boot trace $trace"
	# The records' time span (column 1, seconds since the mount).
	scale=$(awk -F, -v think="${BOOT_THINK_S:-4}" '$1 ~ /^[0-9.]+$/ {
			if (!n++) first = $1
			last = $1
		} END { printf "%.6f\n", (last > first) ? think / (last - first) : 0 }' "$trace")
	# auto: the access log (with its header) or the fixture's plain CSV.
	args=(--format auto --scale "$scale")
	;;
cloudphysics)
	trace=$TRACES/cloudPhysicsIO.csv
	args=(--format cloudphysics --reads-only --max-ops 1000 --scale 0.005 --wrap)
	;;
p3 | p6 | oltp)
	trace=$TRACES/$(tr a-z A-Z <<<"$name").lis.zst
	args=(--format arc --max-ops 1000 --wrap)
	;;
*) usage ;;
esac
[ -r "$trace" ] || die "no trace $trace${name:+ (for $name)}"
bin=$(tool aheadfs-replay)
[ -n "$bin" ] || die "aheadfs-replay is not built"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# The replay stops itself at MAX_S; the timeout is for a read that never returns.
rc=0
timeout --kill-after=5 "$((${MAX_S%.*} + 60))" "$bin" "${args[@]}" --max-seconds "$MAX_S" \
	"$trace" "$file" >"$out" || rc=$?
[ -s "$out" ] || die "aheadfs-replay printed nothing (exit status $rc)"
python3 - "$out" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print("replay_s=%.3f mean_ms=%.3f p99_ms=%.3f ops=%d ops_planned=%d truncated=%d "
      "replay_mib=%.1f errors=%d" % (
          d["elapsed_s"], d["mean_ms"], d["p99_ms"], d["ops"], d["ops_planned"],
          1 if d["truncated"] else 0, d["bytes"] / 2**20, d["errors"]))
EOF
exit "$rc"
