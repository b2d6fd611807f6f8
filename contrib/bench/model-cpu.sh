#!/bin/bash
# model-cpu.sh [--rtt MS] [--mbit N] [--timeout S] [--seq] [--out FILE]
#
# Issue 5's figure: the model thread's CPU share during the VM boot.  Serves the
# benchmark image (mkimage.sh) with aheadfs-origin at 20 ms / 200 Mbit (default),
# mounts it with the build's aheadfs, and boots it with boot.sh twice:
#
#   cold     fresh cache_dir, fresh state_dir
#   learned  fresh cache_dir, the state_dir the cold mount saved on unmount
#
# For each boot it samples, right before qemu starts and right after boot.sh
# returns, utime + stime of the aheadfs process (/proc/PID/stat) and of its
# learner thread, the one named "aheadfs-learn" (/proc/PID/task/TID/stat), and
# prints one line:
#
#   boot=cold wall_s=W learn_cpu_s=L learn_share=L/W proc_cpu_s=P proc_share=P/W load=A,B,C ready_s=.. app_s=.. exit_s=-
#
# --seq reads the whole image once with dd (1 MiB reads) from a fresh mount
# instead of booting it: the densest stream of reads the learner sees, where
# model_cpu (10% of a core by default) is the cap that binds (boot=seq, the
# result words are dd's MB/s).
#
# share = CPU seconds / boot wall seconds (1.0 = one core busy).  The thread's
# times are read at 1/CLK_TCK resolution (10 ms).  Everything it starts (origin,
# aheadfs; qemu is boot.sh's) is stopped by PID and unmounted on every exit path.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

RTT=20
MBIT=200
TIMEOUT=600
OUTFILE=
SEQ=0
while [ $# -gt 0 ]; do
	case $1 in
	--rtt) RTT=$2; shift 2 ;;
	--mbit) MBIT=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--out) OUTFILE=$2; shift 2 ;;
	--seq) SEQ=1; shift ;;
	*) die "usage: $0 [--rtt MS] [--mbit N] [--timeout S] [--seq] [--out FILE]" ;;
	esac
done
requires fusermount3 timeout qemu-system-x86_64 getconf
[ -f "$BENCH_IMAGE" ] || die "no $BENCH_IMAGE: run mkimage.sh first"
AHEADFS=$(tool aheadfs)
[ -n "$AHEADFS" ] || die "aheadfs is not built"
HZ=$(getconf CLK_TCK)
# Both boots together, and the saves between them, stay well inside this.
BENCH_MAX_S=$((2 * TIMEOUT + 300))

WORK=$(mktemp -d /var/tmp/aheadfs-modelcpu.XXXXXX)
MNT=$WORK/fs/mnt
ORIGIN_PID=
cleanup() {
	local rc=$?
	fuse_down "$WORK/fs" aheadfs "$MNT" 2>/dev/null || true
	origin_stop
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private document root (a hard link, same file system) so that run.sh's is
# left alone.
mkdir -p "$WORK/www" "$WORK/fs" "$WORK/state"
ln "$BENCH_IMAGE" "$WORK/www/debian.raw" 2>/dev/null || cp --reflink=auto "$BENCH_IMAGE" "$WORK/www/debian.raw"
origin_start "$WORK/origin" "$WORK/www" "$RTT" "$MBIT" "$WORK/origin/requests.log"
URL=http://127.0.0.1:$ORIGIN_PORT/debian.raw
log "origin on port $ORIGIN_PORT ($RTT ms, $MBIT Mbit), aheadfs $AHEADFS"

# daemon_pid: aheadfs's PID, the child of the timeout(1) that start_bounded ran.
daemon_pid() {
	first_child "$(cat "$WORK/fs/aheadfs.pid")"
}

# learn_tid PID: the TID of PID's thread named aheadfs-learn.
learn_tid() {
	local f
	for f in /proc/"$1"/task/*/comm; do
		if [ "$(cat "$f" 2>/dev/null)" = aheadfs-learn ]; then
			f=${f%/comm}
			printf '%s\n' "${f##*/}"
			return 0
		fi
	done
	return 1
}

# one_boot NAME: mount (cache emptied, state_dir kept), boot, sample, unmount.
one_boot() {
	local name=$1 pid tid l0 l1 p0 p1 t0 t1 wall result load
	rm -rf "$WORK/fs/cache"
	mkdir -p "$WORK/fs/cache" "$MNT"
	fuse_up "$WORK/fs" aheadfs "$MNT/debian.raw" "$AHEADFS" -f \
		-o "cache_dir=$WORK/fs/cache,state_dir=$WORK/state" "$URL" "$MNT" >/dev/null ||
		die "$name: mount failed"
	pid=$(daemon_pid) || die "$name: no aheadfs process"
	wait_for 10 learn_tid "$pid" || die "$name: no aheadfs-learn thread in $pid"
	tid=$(learn_tid "$pid")
	l0=$(proc_ticks "/proc/$pid/task/$tid/stat")
	p0=$(proc_ticks "/proc/$pid/stat")
	t0=$(now)
	if [ "$name" = seq ]; then
		result=$(timeout "$TIMEOUT" dd if="$MNT/debian.raw" of=/dev/null bs=1M 2>&1 |
			awk '/copied/ { printf "dd_MBps=%.0f\n", $(NF-1) * ($NF == "GB/s" ? 1000 : 1) }') ||
			result=fail
	else
		result=$("$BENCH_DIR/boot.sh" --timeout "$TIMEOUT" "$MNT/debian.raw") || true
	fi
	t1=$(now)
	l1=$(proc_ticks "/proc/$pid/task/$tid/stat") || die "$name: learner thread gone"
	p1=$(proc_ticks "/proc/$pid/stat") || die "$name: aheadfs gone"
	load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)
	wall=$(elapsed "$t0" "$t1")
	fuse_down "$WORK/fs" aheadfs "$MNT"
	case $result in *fail*) die "$name: boot failed: $result" ;; esac
	awk -v n="$name" -v w="$wall" -v l0="$l0" -v l1="$l1" -v p0="$p0" -v p1="$p1" \
		-v hz="$HZ" -v load="$load" -v r="$result" 'BEGIN {
		l = (l1 - l0) / hz; p = (p1 - p0) / hz
		printf "boot=%s wall_s=%.2f learn_cpu_s=%.2f learn_share=%.4f proc_cpu_s=%.2f proc_share=%.4f load=%s %s\n",
			n, w, l, l / w, p, p / w, load, r }'
}

if [ "$SEQ" = 1 ]; then
	one_boot seq | tee ${OUTFILE:+"$OUTFILE"}
	exit 0
fi
{
	one_boot cold
	[ -n "$(ls -A "$WORK/state")" ] || die "the cold mount saved no state in $WORK/state"
	one_boot learned
} | tee ${OUTFILE:+"$OUTFILE"}
