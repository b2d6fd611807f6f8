#!/bin/bash
# boot.sh [--timeout S] [--log FILE] [--image IMG] [--wait-exit]
#         [--stall-s S] TARGET
#
# Workload 1, the VM boot: boot the benchmark image (mkimage.sh) under
# qemu-system-x86_64 with TCG from TARGET, and time, from qemu's start on the
# monotonic clock, the guest's two serial-console markers:
#   ready_s  AHEADFS-MARK-READY, multi-user.target reached
#   app_s    AHEADFS-MARK-APP, the small python3/sqlite3 application done
#   exit_s   qemu exited (the guest powers itself off), with --wait-exit;
#            otherwise qemu is stopped as soon as the app marker is seen
# and print them on one line: `ready_s=19.71 app_s=21.02 exit_s=22.40
# start_epoch=1795645171.01 qemu_cpu_s=25.10 qemu_runq_s=0.84` (the wall clock
# at qemu's start, to match the origin's request log against the markers; and
# when the boot ended, qemu's CPU seconds and the seconds its threads waited for
# a CPU while runnable, summed over its threads from /proc/PID/task/*/schedstat:
# what other work on the host took from the guest).
#
# TARGET is either a file (the image itself, or the image inside a mount) or a
# qemu -drive spec for a block driver (e.g.
# `file.driver=http,file.url=http://127.0.0.1:8080/debian.raw` or
# `file.driver=nbd,file.server.type=unix,file.server.path=/tmp/nbd.sock`).
# Either way the disk is attached read-only (readonly=on): the image is never
# written.  The kernel and initrd are passed with -kernel/-initrd from the
# local files next to IMG (default /var/tmp/aheadfs-bench/debian.raw); only
# the root filesystem is read from TARGET.
#
# Exit status: 0 when both markers were seen, 1 on a timeout (default 300 s)
# or when qemu exits before them; the printed line then says `fail`.
#
# --stall-s S (run.sh passes 45): a guest whose disk is stuck is stopped
# early.  When no byte has crossed the loopback interface (/proc/net/dev: the
# benchmark's origin is on 127.0.0.1) and qemu has used under 10% of a core in
# each second for S seconds before the app marker, the boot is stalled:
# nothing reaches the disk and the guest waits.  qemu's curl driver hangs like
# that at 0 ms; a slow link (bytes flow), or a boot served from a cache (no
# traffic, but a busy vCPU), never looks so.  0 (the default) turns it off.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

TIMEOUT=300
LOGFILE=
IMAGE=$BENCH_IMAGE
WAIT_EXIT=0
STALL_S=0
while [ $# -gt 1 ]; do
	case $1 in
	--wait-exit) WAIT_EXIT=1; shift ;;
	--stall-s) STALL_S=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--log) LOGFILE=$2; shift 2 ;;
	--image) IMAGE=$2; shift 2 ;;
	*) die "usage: $0 [--timeout S] [--log FILE] [--image IMG] [--wait-exit] FILE|DRIVESPEC" ;;
	esac
done
[ $# -eq 1 ] || die "usage: $0 [--timeout S] [--log FILE] [--image IMG] [--wait-exit] FILE|DRIVESPEC"
TARGET=$1
QEMU=${QEMU:-qemu-system-x86_64}
requires "$QEMU" timeout

KERNEL=$(kernel_for "$IMAGE")
INITRD=$(initrd_for "$IMAGE")
if [ ! -f "$KERNEL" ] || [ ! -f "$INITRD" ]; then
	die "no $KERNEL / $INITRD: run mkimage.sh first"
fi

if [ -e "$TARGET" ]; then
	# A path: qemu reads it as a plain raw file (through the host page cache,
	# i.e. as any application would read the file under test).
	DRIVE="file=$TARGET,format=raw"
else
	case $TARGET in
	*=*) DRIVE=$TARGET ;;
	*) die "not a file and not a drive spec: $TARGET" ;;
	esac
	case ,$DRIVE, in
	*,format=*) ;;
	*) DRIVE="$DRIVE,format=raw" ;;
	esac
fi
DRIVE="$DRIVE,if=virtio,readonly=on"

TMPD=$(mktemp -d /tmp/aheadfs-boot.XXXXXX)
SERIAL=$TMPD/serial.log
QPID=
# stop_qemu: TERM to timeout(1), which passes it on to qemu. A qemu stuck in a disk read
# (the curl driver against an origin that stopped answering) does not act on it, and
# once timeout(1) is KILLed qemu would live on, orphaned: found after a full run, still
# running an hour later. So qemu itself is stopped too.
stop_qemu() {
	local q
	[ -n "$QPID" ] || return 0
	q=$(first_child "$QPID") || q=
	kill_pid "$QPID" 3
	if [ -n "$q" ] && [ "$(cat "/proc/$q/comm" 2>/dev/null)" = qemu-system-x86 ]; then
		kill_pid "$q" 1
	fi
}
cleanup() {
	stop_qemu
	if [ -n "$LOGFILE" ] && [ -f "$SERIAL" ]; then
		cp "$SERIAL" "$LOGFILE" || true
	fi
	rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

APPEND="root=/dev/vda ro rootfstype=ext4 console=ttyS0 quiet loglevel=3 panic=-1"
APPEND="$APPEND systemd.show_status=false ${BOOT_APPEND_EXTRA:-}"

# Extra qemu arguments and kernel parameters, for experiments.
read -ra QEXTRA <<<"${BOOT_QEMU_EXTRA:-}"

: >"$SERIAL"
T0=$(now)
START_EPOCH=$(date +%s.%N)
timeout --kill-after=5 "$TIMEOUT" "$QEMU" -accel tcg -m 1024 -smp 1 \
	-nodefaults -no-user-config -display none -monitor none -no-reboot \
	-serial "file:$SERIAL" \
	-kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" \
	-drive "$DRIVE" "${QEXTRA[@]}" 2>"$TMPD/qemu.err" &
QPID=$!

READY=fail
APP=fail
EXIT=fail
STALLED=0
STALL_TICKS=$(($(getconf CLK_TCK) / 10)) # 10% of a core for a second
last_size=-1 last_ticks=0 quiet_since=$T0 polls=0
# qemu_ticks: utime + stime of qemu, the child of the timeout(1) in QPID.
qemu_ticks() {
	local q
	q=$(first_child "$QPID") || return 1
	proc_ticks "/proc/$q/stat"
}
# qemu_sched: "CPU_S RUNQ_S" of qemu's threads so far (schedstat: ns on a CPU, ns
# runnable but waiting for one); "- -" when qemu is gone or schedstats are off.
qemu_sched() {
	local q
	q=$(first_child "$QPID") || { echo "- -"; return 0; }
	cat /proc/"$q"/task/*/schedstat 2>/dev/null |
		awk '{ c += $1; w += $2 } END { if (NR) printf "%.2f %.2f\n", c / 1e9, w / 1e9; else print "- -" }'
}
# lo_bytes: bytes received on the loopback interface so far.
lo_bytes() { awk -F'[: ]+' '$2 == "lo" { print $3 }' /proc/net/dev; }
# stalled: once a second, whether loopback traffic and qemu have both been
# still for STALL_S seconds (see --stall-s).
stalled() {
	local size ticks t
	[ "$STALL_S" != 0 ] || return 1
	polls=$((polls + 1))
	[ $((polls % 20)) = 0 ] || return 1
	size=$(lo_bytes)
	ticks=$(qemu_ticks) || return 1
	t=$(now)
	if [ "$size" != "$last_size" ] || [ $((ticks - last_ticks)) -gt "$STALL_TICKS" ]; then
		quiet_since=$t
	fi
	last_size=$size
	last_ticks=$ticks
	awk -v a="$quiet_since" -v b="$t" -v s="$STALL_S" 'BEGIN { exit !(b - a >= s) }'
}
while :; do
	if [ "$READY" = fail ] && grep -q AHEADFS-MARK-READY "$SERIAL"; then
		READY=$(elapsed "$T0")
	fi
	if [ "$APP" = fail ] && grep -q AHEADFS-MARK-APP "$SERIAL"; then
		APP=$(elapsed "$T0")
		if [ "$WAIT_EXIT" = 0 ]; then
			EXIT=-
			break
		fi
	fi
	if [ "$APP" = fail ] && stalled; then
		STALLED=1
		break
	fi
	if ! kill -0 "$QPID" 2>/dev/null; then
		EXIT=$(elapsed "$T0")
		# A marker written just before the exit.
		[ "$READY" != fail ] || ! grep -q AHEADFS-MARK-READY "$SERIAL" || READY=$EXIT
		[ "$APP" != fail ] || ! grep -q AHEADFS-MARK-APP "$SERIAL" || APP=$EXIT
		break
	fi
	sleep 0.05
done
read -r QCPU QRUNQ < <(qemu_sched)
stop_qemu
wait "$QPID" 2>/dev/null || true
QPID=

# qemu's own errors, not the note that we stopped it.
if grep -q -v 'terminating on signal' "$TMPD/qemu.err"; then
	grep -v 'terminating on signal' "$TMPD/qemu.err" | sed 's/^/qemu: /' >&2
fi
if [ "$STALLED" = 1 ]; then
	echo "boot.sh: stalled at $(elapsed "$T0") s: no disk traffic and qemu idle for ${STALL_S} s" >&2
fi
echo "ready_s=$READY app_s=$APP exit_s=$EXIT start_epoch=${START_EPOCH%??????}" \
	"qemu_cpu_s=$QCPU qemu_runq_s=$QRUNQ"
[ "$READY" != fail ] && [ "$APP" != fail ]
