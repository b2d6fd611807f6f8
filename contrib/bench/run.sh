#!/bin/bash
# run.sh [--quick] [--systems a,b] [--settings RTT/MBIT,...] [--workloads w,...]
#        [--runs N] [--loop-runs N] [--out DIR] [--timeout S] [--fio-runtime S]
#        [--replay-seconds S] [--repeat-max-x X] [--aux-settings RTT/MBIT,...|all]
#        [--stall-s S]
#
# The benchmark runner: every system under test (systems/*.sh) against every
# workload (boot.sh, loopapp.sh, fio.sh, replay.sh) behind the same origin
# (aheadfs-origin with an emulated link), for each link setting.  Workloads:
# boot, loop, fio, replay (= replay-boot,replay-cloudphysics,replay-p3; also
# replay-p6, replay-oltp).  Writes into
# --out (default /var/tmp/aheadfs-bench/results/DATE):
#   runs.jsonl        one line per run: metrics, origin requests/bytes, stats
#   results.md        markdown tables (medians, ratio to local), results.csv
#   ready.png         time-to-ready per system and link setting (gnuplot)
#   meta.txt          commit, machine, load, versions
#   logs/             serial consoles, system logs, per-run origin log slices
#
# Settings are RTT_MS/MBIT, 0/0 meaning unshaped.
#   full (default):  0/0,20/200,50/50; boot 3 runs, loop, fio and replay 1 run
#                    (medians); a boot that fails or takes over --repeat-max-x
#                    (2) times the local file's first boot is not repeated
#   --quick:         20/200; boot and loop (unless --workloads), 1 run
#                    each, the local file twice (first and last)
# fio's four phases run --fio-runtime seconds each at most (default 4); a
# replay stops after --replay-seconds (default 8).  fio and the replays run
# at the --aux-settings only (full: 20/200; "all": every setting), which
# keeps the full run within its hour (README.md, "Time budget").  A boot
# whose disk is stuck (no loopback traffic and an idle qemu for --stall-s
# seconds, default 45; 0: off; see boot.sh) is stopped before --timeout.
# Each setting gets one origin, started here and killed by PID on every exit
# path; every system is brought up fresh for every run and torn down after it.
# aheadfs-learned learns from aheadfs-cold's first run of each workload and
# setting (that first mount's state_dir is kept, the data cache emptied before
# each learned run); when that run failed or aheadfs-cold is not in --systems,
# from one untimed training run of its own.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

ALL_SYSTEMS=local,aheadfs-noprefetch,aheadfs-cold,aheadfs-learned,qemu-curl,qemu-curl-1m,nbdkit,httpdirfs,rclone
SYSTEMS=$ALL_SYSTEMS
SETTINGS=0/0,20/200,50/50
WORKLOADS=
RUNS=3
LOOP_RUNS=1
OUT=
TIMEOUT=300
STALL_S=45
QUICK=0
FIO_RUNTIME=4
REPLAY_MAX_S=8
REPEAT_MAX_X=2
AUX_SETTINGS=20/200

usage() {
	sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick)
		QUICK=1
		SETTINGS=20/200
		RUNS=1
		LOOP_RUNS=1
		shift
		;;
	--systems) SYSTEMS=$2; shift 2 ;;
	--settings) SETTINGS=$2; shift 2 ;;
	--workloads) WORKLOADS=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--loop-runs) LOOP_RUNS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--stall-s) STALL_S=$2; shift 2 ;;
	--fio-runtime) FIO_RUNTIME=$2; shift 2 ;;
	--replay-seconds) REPLAY_MAX_S=$2; shift 2 ;;
	--repeat-max-x) REPEAT_MAX_X=$2; shift 2 ;;
	--aux-settings) AUX_SETTINGS=$2; shift 2 ;;
	*) usage ;;
	esac
done
# --quick keeps to boot and loop (its 10 minutes); name fio and replay to add them.
if [ -z "$WORKLOADS" ]; then
	WORKLOADS=boot,loop,fio,replay
	[ "$QUICK" = 0 ] || WORKLOADS=boot,loop
fi
[ "$(id -u)" = 0 ] || die "must run as root (loop mounts, FUSE, chroot)"
requires qemu-system-x86_64 python3 timeout fusermount3 losetup
# The machines are shared and TCG is CPU-bound: run everything (qemu, the
# systems, the origin) at a slightly higher priority than other work, which
# takes some of the noise out of the timings.
renice -n "${BENCH_NICE:--5}" -p $$ >/dev/null 2>&1 || true
OUT=${OUT:-$BENCH_CACHE/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
RECORD=$OUT/runs.jsonl
: >"$RECORD"
T_START=$(now)

"$BENCH_DIR/mkimage.sh" "$BENCH_IMAGE"

# Snapshot the binaries: other people rebuild while a run is going on, and
# one run must measure one build.
mkdir -p "$OUT/bin"
declare -A BIN_SRC
for b in aheadfs aheadfs-origin aheadfs-replay; do
	BIN_SRC[$b]=$(tool "$b")
	[ -z "${BIN_SRC[$b]}" ] || cp -p "${BIN_SRC[$b]}" "$OUT/bin/$b"
done
export AHEADFS_BUILDDIR=$OUT/bin

# The origin serves a directory holding only the image (a hard link).
WWW=$BENCH_CACHE/www
mkdir -p "$WWW"
ln -f "$BENCH_IMAGE" "$WWW/debian.raw"
NAME=debian.raw

ORIGIN_PID=
STATE=
STATE_SYS=
WPID=
cleanup() {
	local rc=$?
	kill_pid "$WPID" 10
	if [ -n "$STATE_SYS" ]; then
		"$BENCH_DIR/systems/$STATE_SYS.sh" down "$STATE" >/dev/null 2>&1 || true
	fi
	origin_stop
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- metadata --------------------------------------------------------------------
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit: $(git -C "$BENCH_TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$BENCH_TOP" diff --quiet HEAD -- 2>/dev/null || echo ' (tree has uncommitted changes)')"
	echo "machine: $(nproc) vCPU $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
	echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "mode: $([ "$QUICK" = 1 ] && echo quick || echo full); settings $SETTINGS; workloads $WORKLOADS; boot runs $RUNS; loop runs $LOOP_RUNS"
	echo "qemu: $(qemu-system-x86_64 --version | head -n 1) (TCG, 1 vCPU, 1 GiB)"
	echo "nbdkit: $(nbdkit --version 2>/dev/null || echo missing)"
	echo "httpdirfs: $({ httpdirfs --version 2>&1 || true; } | grep -i -m1 version || echo missing)"
	echo "rclone: $(rclone version 2>/dev/null | head -n 1 || echo missing)"
	for b in aheadfs aheadfs-origin aheadfs-replay; do
		if [ -f "$OUT/bin/$b" ]; then
			echo "$b: copy of ${BIN_SRC[$b]}, built $(date -u -r "$OUT/bin/$b" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$OUT/bin/$b" | cut -c1-12)"
		else
			echo "$b: not built"
		fi
	done
	[ -z "${BENCH_ORIGIN:-}" ] || echo "origin override: $BENCH_ORIGIN"
	echo "image: $BENCH_IMAGE ($(du -h "$BENCH_IMAGE" | cut -f1) allocated)"
} >"$OUT/meta.txt"
cat "$OUT/meta.txt" >&2

# last_words FILE...: the last meaningful line of some logs (backtraces and
# blank lines skipped), for a failure's reason; never fails.
last_words() {
	cat "$@" 2>/dev/null | grep -v -E '^\s*$|^/lib|^[^ ]+\(\+?[A-Za-z0-9_+]*\)\[0x|backtrace|^qemu: *$|Oops|^==>' |
		tail -n 1 | sed -E 's/^[0-9:\/ ]{8,20} //' | cut -c1-200 || true
}

# guest_words SERIAL: why a boot produced no marker, from its console.
guest_words() {
	local w
	if [ ! -s "$1" ]; then
		# The guest console is quiet (loglevel 3): no errors, no markers.
		echo "no marker and no guest error within ${TIMEOUT}s (the guest hung)"
		return
	fi
	# The first I/O or mount error says more than the panic that follows.
	w=$(grep -a -m 1 -E 'I/O error|EXT4-fs error|Failed to mount|Kernel panic|Unable to mount' "$1" ||
		grep -a -i -E 'error|fail|panic|timed out' "$1" | tail -n 1 || true)
	echo "guest: $(printf '%s' "$w" | sed 's/^\[ *[0-9.]*\] //' | cut -c1-120)"
}

record() { python3 "$BENCH_DIR/report.py" record "$RECORD" "$@"; }

# fio_kv CSV: fio.sh's rows as key=value words (seq_cold_MBps=.. rand_warm_IOPS=..).
fio_kv() {
	awk -F, 'NR > 1 && NF == 5 {
		w = $1; sub(/-.*/, "", w)
		printf "%s_%s_MBps=%s %s_%s_IOPS=%s %s_%s_p99_ms=%s ", w, $2, $3, w, $2, $4, w, $2, $5
	}' "$1"
}

# record_boot_trace: keep the first mount of aheadfs-learned's boot state
# (aheadfs-cold's first boot, or its own untimed training boot) as the boot trace
# the replay-boot workload replays, in BENCH_CACHE for later runs and in OUT.
BOOT_TRACE_RECORDED=0
record_boot_trace() {
	local log tmp
	[ "$BOOT_TRACE_RECORDED" = 0 ] || return 0
	log=$(find "$AHEADFS_LEARNED_STATE" -name access.log 2>/dev/null | head -n 1 || true)
	[ -n "$log" ] || return 0
	mkdir -p "$BENCH_CACHE/traces" "$OUT/traces"
	tmp=$BENCH_CACHE/traces/boot.access.log.tmp
	# The header, then the records up to the second mount's "# mount at" line.
	awk 'NR == 1 { print; next } /^# mount at/ { if (m++) exit } { print }' "$log" >"$tmp"
	if [ "$(grep -vc '^#' "$tmp")" -lt 100 ]; then
		rm -f "$tmp"
		return 0
	fi
	mv "$tmp" "$BENCH_CACHE/traces/boot.access.log"
	cp "$BENCH_CACHE/traces/boot.access.log" "$OUT/traces/boot.access.log"
	BOOT_TRACE_RECORDED=1
	log "boot trace: $(grep -vc '^#' "$OUT/traces/boot.access.log") reads recorded from $log"
}

# bytes_before_app SLICE RESULT: app_bytes=N, the bytes of the range requests
# the origin got before the guest's app marker (a request's start is its log
# time less its duration), from boot.sh's start_epoch and app_s; nothing when
# the boot failed.  Issue 4 holds a learned boot to <= 1.3x what it read by then.
bytes_before_app() {
	local start app
	start=$(sed -n 's/.*start_epoch=\([0-9.]*\).*/\1/p' <<<"$2")
	app=$(sed -n 's/.*app_s=\([0-9.]*\).*/\1/p' <<<"$2")
	[ -n "$start" ] && [ -n "$app" ] || return 0
	awk -v until="$start" -v app="$app" '
		{ t = d = b = 0
		  for (i = 1; i <= NF; i++) {
			if ($i ~ /^time=/) t = substr($i, 6)
			else if ($i ~ /^dur_ms=/) d = substr($i, 8)
			else if ($i ~ /^bytes=/) b = substr($i, 7) }
		  if (t - d / 1000 < until + app) n += b }
		END { printf "app_bytes=%d\n", n }' "$1"
}

# --- one run ---------------------------------------------------------------------
# run_one SETTING SYSTEM WORKLOAD RUN: present, run, collect, tear down.
# RUN is a number, or "train" for aheadfs-learned's untimed first run.
run_one() {
	local setting=$1 sys=$2 wl=$3 run=$4 script target off tag res rc reason stats slice sum f
	script=$BENCH_DIR/systems/$sys.sh
	tag=${setting//\//-}.$sys.$wl.$run
	STATE=$(mktemp -d "/tmp/aheadfs-bench.$sys.XXXXXX")
	STATE_SYS=$sys
	off=$(stat -c %s "$ORIGIN_LOG")
	reason=
	res=
	log "[$setting] $sys $wl run $run"
	if ! target=$("$script" up "$URL" "$STATE" 2>"$STATE/up.err"); then
		reason="up failed: $(last_words "$STATE/up.err")"
	else
		case $wl in
		boot) set -- "$BENCH_DIR/boot.sh" --timeout "$TIMEOUT" --log "$OUT/logs/$tag.serial" \
			--stall-s "$STALL_S" "$target" ;;
		loop) set -- "$BENCH_DIR/loopapp.sh" --timeout "$TIMEOUT" "$target" ;;
		# fio's four phases stop by themselves (--runtime); the timeout
		# is for a read that never returns.
		fio) set -- timeout --kill-after=5 "$((4 * FIO_RUNTIME + 120))" \
			"$BENCH_DIR/fio.sh" "$target" --runtime "$FIO_RUNTIME" ;;
		replay-*) set -- "$BENCH_DIR/replay.sh" --max-seconds "$REPLAY_MAX_S" \
			"${wl#replay-}" "$target" ;;
		esac
		"$@" >"$STATE/wl.out" 2>"$STATE/wl.err" &
		WPID=$!
		# Stop early when the system under test dies under the workload.
		while kill -0 "$WPID" 2>/dev/null; do
			if ! "$script" alive "$STATE"; then
				sleep 2
				if kill -0 "$WPID" 2>/dev/null; then
					reason="$sys exited during the run: $(last_words "$STATE"/*.log)"
					kill_pid "$WPID" 10
				fi
				break
			fi
			sleep 1
		done
		rc=0
		wait "$WPID" || rc=$?
		WPID=
		if [ "$wl" = fio ]; then
			res=$(fio_kv "$STATE/wl.out")
		else
			res=$(tail -n 1 "$STATE/wl.out" | tr ',' ' ')
		fi
		if [ "$rc" != 0 ] && [ -z "$reason" ]; then
			reason="$wl failed: $(last_words "$STATE/wl.err")"
			if [ "$wl" = boot ] && grep -q 'stalled' "$STATE/wl.err"; then
				reason="no marker: $(grep -m 1 'stalled' "$STATE/wl.err" | sed 's/^boot.sh: //')"
			elif [ "$wl" = boot ]; then
				reason="no marker: $(guest_words "$OUT/logs/$tag.serial")"
			fi
			if ! "$script" alive "$STATE"; then
				reason="$reason; $sys exited: $(last_words "$STATE"/*.log)"
			fi
		fi
		stats=$("$script" stats "$STATE" 2>/dev/null | tr -d '\n' || true)
		[ -z "$stats" ] || printf '%s\n' "$stats" >"$OUT/logs/$tag.stats.json"
	fi
	"$script" down "$STATE" >/dev/null 2>>"$STATE/down.err" || true
	STATE_SYS=
	cp "$STATE/wl.err" "$OUT/logs/$tag.err" 2>/dev/null || true
	for f in "$STATE"/*.log; do
		[ -f "$f" ] && cp "$f" "$OUT/logs/$tag.$(basename "$f")"
	done
	rm -rf "$STATE"
	LAST_REASON=$reason
	sleep 0.5 # the last log lines of the closed connections
	slice=$OUT/logs/$tag.origin.log
	tail -c +"$((off + 1))" "$ORIGIN_LOG" >"$slice"
	sum=$(origin_summarize "$slice")
	[ "$wl" != boot ] || sum="$sum $(bytes_before_app "$slice" "$res")"
	if [ -n "$reason" ] && grep -q ' status=416 ' "$slice"; then
		reason="$reason (the origin answered 416 to $(grep -c ' status=416 ' "$slice") range request(s) past the end)"
	fi
	# shellcheck disable=SC2086 # $res and $sum are key=value words
	record workload="$wl" setting="$setting" system="$sys" run="$run" \
		ok="$([ -z "$reason" ] && echo 1 || echo 0)" reason="$reason" \
		stats_file="$([ -f "$OUT/logs/$tag.stats.json" ] && echo "logs/$tag.stats.json")" \
		load="$(cut -d' ' -f1 /proc/loadavg)" $sum $res
	log "[$setting] $sys $wl run $run: ${reason:-$res} ($sum)"
}

# no_repeat_check WORKLOAD SETTING SYSTEM: after run 1, mark a system whose run
# failed, or took over REPEAT_MAX_X times the local file's run 1, as not to be
# repeated (NO_REPEAT), with a note in the report.  Two more runs of a boot that
# takes minutes cost more of the time budget than everything else, and cannot
# change a ranking decided by a factor of 2.
declare -A NO_REPEAT
no_repeat_check() {
	local wl=$1 setting=$2 sys=$3 why
	[ "$REPEAT_MAX_X" != 0 ] && [ "$sys" != local ] || return 0
	why=$(python3 "$BENCH_DIR/report.py" repeat "$RECORD" "$wl" "$setting" "$sys" "$REPEAT_MAX_X")
	if [ -n "$why" ]; then
		NO_REPEAT[$sys]=1
		record workload="$wl" setting="$setting" system="$sys" run=note ok=1 reason="$why"
		log "[$setting] $sys $wl: $why"
	fi
}

# --- the matrix ------------------------------------------------------------------
IFS=, read -ra SYS_LIST <<<"$SYSTEMS"
IFS=, read -ra SET_LIST <<<"$SETTINGS"
IFS=, read -ra WL_LIST <<<"$WORKLOADS"
IFS=, read -ra WL_LIST <<<"$(printf '%s\n' "${WL_LIST[@]}" |
	sed 's/^replay$/replay-boot,replay-cloudphysics,replay-p3/' | paste -sd,)"
declare -A NOTE SKIP KINDS
for sys in "${SYS_LIST[@]}"; do
	[ -x "$BENCH_DIR/systems/$sys.sh" ] || die "no such system: $sys"
	rc=0
	note=$("$BENCH_DIR/systems/$sys.sh" check 2>&1) || rc=$?
	if [ "$rc" != 0 ]; then
		SKIP[$sys]=${note:-cannot run}
	fi
	NOTE[$sys]=$note
	KINDS[$sys]=$("$BENCH_DIR/systems/$sys.sh" kinds)
done

for setting in "${SET_LIST[@]}"; do
	rtt=${setting%/*}
	mbit=${setting#*/}
	ORIGIN_LOG=$OUT/logs/origin.${setting//\//-}.log
	: >"$ORIGIN_LOG"
	origin_start "$OUT/origin.${setting//\//-}" "$WWW" "$rtt" "$mbit" "$ORIGIN_LOG"
	URL=http://127.0.0.1:$ORIGIN_PORT/$NAME
	log "setting $setting: origin pid $ORIGIN_PID at $URL"
	for wl in "${WL_LIST[@]}"; do
		case $wl in
		boot) n=$RUNS ;;
		loop) n=$LOOP_RUNS ;;
		fio)
			n=1
			command -v fio >/dev/null || die "fio is not installed"
			;;
		replay-boot | replay-cloudphysics | replay-p3 | replay-p6 | replay-oltp) n=1 ;;
		*) die "unknown workload: $wl" ;;
		esac
		# fio and the replays: only at the aux settings (the time budget).
		if [ "$wl" != boot ] && [ "$wl" != loop ] && [ "$AUX_SETTINGS" != all ] &&
			[ "$QUICK" = 0 ] && [[ ",$AUX_SETTINGS," != *",$setting,"* ]]; then
			continue
		fi
		# replay-boot needs a boot trace: this run's (boot comes first), the
		# one an earlier run left in BENCH_CACHE, or the committed fixture.
		if [ "$wl" = replay-boot ] && [ ! -f "$BENCH_CACHE/traces/boot.access.log" ] &&
			[ ! -f "$BENCH_DIR/traces/debian-boot-1.csv" ]; then
			for sys in "${SYS_LIST[@]}"; do
				record workload="$wl" setting="$setting" system="$sys" run=0 ok=0 \
					reason="no boot trace yet: run the boot workload with aheadfs-learned once"
			done
			continue
		fi
		# Runs are interleaved (run 1 of every system, then run 2, ...) so
		# that a change in the machine's load hits every system alike.
		RUNNABLE=()
		for sys in "${SYS_LIST[@]}"; do
			if [ -n "${SKIP[$sys]:-}" ]; then
				record workload="$wl" setting="$setting" system="$sys" run=0 ok=0 \
					reason="${SKIP[$sys]}"
			elif [ "$wl" != boot ] && [ "${KINDS[$sys]}" = drive ]; then
				record workload="$wl" setting="$setting" system="$sys" run=0 ok=0 \
					reason="n/a: presents a qemu block device, not a file"
			else
				[ -z "${NOTE[$sys]}" ] || record workload="$wl" setting="$setting" \
					system="$sys" run=note ok=1 reason="${NOTE[$sys]}"
				RUNNABLE+=("$sys")
			fi
		done
		export AHEADFS_LEARNED_STATE=$OUT/learned/${setting//\//-}.$wl
		rm -rf "$AHEADFS_LEARNED_STATE"
		NO_REPEAT=()
		TRAINED=0
		for ((r = 1; r <= n; r++)); do
			for sys in "${RUNNABLE[@]}"; do
				[ -z "${NO_REPEAT[$sys]:-}" ] || continue
				if [ "$sys" = aheadfs-cold ] && [ "$r" = 1 ] &&
					[[ " ${RUNNABLE[*]} " == *" aheadfs-learned "* ]]; then
					# The first mount is aheadfs-learned's training run.
					export AHEADFS_KEEP_STATE=$AHEADFS_LEARNED_STATE
					run_one "$setting" "$sys" "$wl" "$r"
					unset AHEADFS_KEEP_STATE
					[ -n "$LAST_REASON" ] || [ ! -d "$AHEADFS_LEARNED_STATE" ] || TRAINED=1
				else
					if [ "$sys" = aheadfs-learned ] && [ "$r" = 1 ] && [ "$TRAINED" = 0 ]; then
						rm -rf "$AHEADFS_LEARNED_STATE"
						run_one "$setting" "$sys" "$wl" train
					fi
					run_one "$setting" "$sys" "$wl" "$r"
				fi
				if [ "$r" = 1 ] && [ "$n" -gt 1 ]; then
					no_repeat_check "$wl" "$setting" "$sys"
				fi
			done
		done
		[ "$wl" != boot ] || record_boot_trace
		# With one run per system, the load can change between the local
		# run and the others: measure the limit again at the end (quick).
		if [ "$QUICK" = 1 ] && [[ " ${RUNNABLE[*]} " == *" local "* ]]; then
			run_one "$setting" local "$wl" "$((n + 1))"
		fi
	done
	origin_stop
done

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg); wall time $(elapsed "$T_START") s" >>"$OUT/meta.txt"
python3 "$BENCH_DIR/report.py" report "$OUT"
log "done in $(elapsed "$T_START") s: $OUT/results.md"
