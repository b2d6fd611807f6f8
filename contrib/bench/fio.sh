#!/bin/bash
# fio.sh: the benchmark's fio workload against one file under test, read-only.
#
#   contrib/bench/fio.sh FILE [--runtime S]
#
# Runs sequential 1 MiB reads (1 job) and random 4 KiB reads (4 jobs), each first cold
# (page cache dropped: needs root, otherwise a warning and the row is really "as found")
# and then warm, and prints CSV on stdout:
#
#   workload,cold_or_warm,MBps,IOPS,p99_ms
#
# Cold runs read the file once or until --runtime seconds (default 10) have passed. The
# warm run repeats exactly the I/O the cold run did (same offsets: fio's randrepeat, and
# io_size set to what the cold run transferred) with --invalidate=0, because fio's default
# invalidate=1 drops the file's cache before each job and would make "warm" a cold run.
#
# It never writes to FILE: fio runs with --readonly and read-only workloads, and FILE must
# already exist (fio would otherwise create it).
set -euo pipefail

usage() {
	echo "usage: $0 FILE [--runtime S]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
file=$1
shift
runtime=10
while [ $# -gt 0 ]; do
	case $1 in
	--runtime) [ $# -ge 2 ] || usage; runtime=$2; shift 2 ;;
	--runtime=*) runtime=${1#--runtime=}; shift ;;
	*) usage ;;
	esac
done
if ! [[ $runtime =~ ^[0-9]+$ ]] || [ "$runtime" -eq 0 ]; then
	echo "$0: --runtime wants whole seconds > 0" >&2
	exit 2
fi
if [ ! -f "$file" ] && [ ! -b "$file" ]; then
	echo "$0: $file: not an existing regular file or block device" >&2
	exit 2
fi
[ -r "$file" ] || { echo "$0: $file: not readable" >&2; exit 2; }
for tool in fio python3; do
	command -v $tool >/dev/null || { echo "$0: $tool not found" >&2; exit 2; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

drop_caches() {
	sync
	if ! { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; then
		echo "$0: cannot drop the page cache (not root?): cold rows start from whatever" \
			"is cached" >&2
	fi
}

# fio_run NAME JSON_OUT EXTRA_ARGS...: one fio job group; the common options are here.
fio_run() {
	local name=$1 out=$2
	shift 2
	fio --name="$name" --filename="$file" --readonly --ioengine=psync --direct=0 \
		--randrepeat=1 --group_reporting --runtime="$runtime" \
		--output-format=json --output="$out" "$@" >/dev/null
}

# to_csv WORKLOAD STATE JSON: one CSV row; also prints io_bytes on fd 3 for the warm run.
to_csv() {
	python3 - "$1" "$2" "$3" <<'EOF'
import json, os, sys
workload, state, path = sys.argv[1:4]
with open(path) as f:
    read = json.load(f)["jobs"][0]["read"]
p99 = read["clat_ns"].get("percentile", {}).get("99.000000", 0) / 1e6
print("%s,%s,%.1f,%.0f,%.3f" % (workload, state, read["bw_bytes"] / 1e6, read["iops"], p99))
os.write(3, b"%d\n" % read["io_bytes"])
EOF
}

# workload NAME JOBS fio-args...: cold, then warm over the same I/O.
workload() {
	local name=$1 jobs=$2 bytes per_job
	shift 2
	drop_caches
	fio_run "$name" "$tmp/$name-cold.json" --numjobs="$jobs" --invalidate=1 "$@"
	bytes=$(to_csv "$name" cold "$tmp/$name-cold.json" 3>&1 >&4)
	per_job=$((bytes / jobs))
	if [ "$per_job" -eq 0 ]; then
		echo "$name,warm,0,0,0"
		return
	fi
	fio_run "$name" "$tmp/$name-warm.json" --numjobs="$jobs" --invalidate=0 \
		--io_size="$per_job" "$@"
	to_csv "$name" warm "$tmp/$name-warm.json" 3>/dev/null
}

exec 4>&1
echo "workload,cold_or_warm,MBps,IOPS,p99_ms"
workload seq-1m 1 --rw=read --bs=1M
workload rand-4k 4 --rw=randread --bs=4k
