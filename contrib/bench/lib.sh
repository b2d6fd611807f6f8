# Shared helpers for the aheadfs benchmark scripts (contrib/bench/*.sh and
# contrib/bench/systems/*.sh).  Source it; it defines functions and a few
# variables, and runs nothing by itself.
#
#   BENCH_DIR      this directory (the scripts)
#   BENCH_CACHE    where built artefacts live between runs (/var/tmp/aheadfs-bench)
#   BENCH_IMAGE    the cached VM image built by mkimage.sh
#
# Every helper that starts a process puts it under timeout(1) so it stops
# itself even if the caller dies, and records its PID so that only that PID is
# ever killed.
# shellcheck shell=bash disable=SC2034

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_CACHE=${AHEADFS_BENCH_CACHE:-/var/tmp/aheadfs-bench}
BENCH_IMAGE=${AHEADFS_BENCH_IMAGE:-$BENCH_CACHE/debian.raw}
BENCH_TOP=$(cd "$BENCH_DIR/../.." && pwd)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# requires CMD...: fail unless every command exists.
requires() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "missing command: $c"
	done
}

# now: seconds since boot, monotonic (CLOCK_BOOTTIME via /proc/uptime, 10 ms).
now() {
	local up _
	read -r up _ </proc/uptime
	printf '%s\n' "$up"
}

# elapsed T0 [T1]: T1 (default now) minus T0, two decimals.
elapsed() {
	local t1=${2:-$(now)}
	awk -v a="$1" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }'
}

# free_port: an unused TCP port on 127.0.0.1 (racy, but only within this box).
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# image_name URL: the last path segment of URL (what aheadfs calls the file).
image_name() {
	local u=${1%%\?*}
	printf '%s\n' "${u##*/}"
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds; fail after
# SECONDS.
wait_for() {
	local deadline t
	deadline=$(awk -v n="$(now)" -v s="$1" 'BEGIN { print n + s }')
	shift
	while ! "$@" >/dev/null 2>&1; do
		t=$(now)
		if awk -v t="$t" -v d="$deadline" 'BEGIN { exit !(t > d) }'; then
			return 1
		fi
		sleep 0.1
	done
}

# is_mounted DIR: DIR is a mount point right now (also a FUSE mount whose
# daemon died, which mountpoint(1) does not see: ENOTCONN).
is_mounted() {
	local d
	d=$(realpath -sm "$1")
	awk -v d="$d" '$5 == d { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# fuse_unmount DIR: unmount a FUSE mount if it is mounted (lazy as last resort).
fuse_unmount() {
	local d=$1 i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		is_mounted "$d" || return 0
		fusermount3 -u "$d" 2>/dev/null || umount "$d" 2>/dev/null || true
		is_mounted "$d" || return 0
		sleep 0.3
		[ "$i" -lt 10 ] || break
	done
	fusermount3 -uz "$d" 2>/dev/null || umount -l "$d" 2>/dev/null || true
}

# proc_ticks FILE: utime + stime (fields 14 and 15) of a /proc stat file.  The
# name in field 2 may hold spaces, so the fields are counted after its ')'.
proc_ticks() {
	local rest
	rest=$(cat "$1" 2>/dev/null) || return 1
	rest=${rest##*) }
	awk '{ print $12 + $13 }' <<<"$rest"
}

# first_child PID: PID's first child (the program a timeout(1) we started runs).
first_child() {
	local p
	# no newline at the end of this file: read(1) would fail on it
	p=$(cat "/proc/$1/task/$1/children" 2>/dev/null) || return 1
	p=${p%% *}
	[ -n "$p" ] && printf '%s\n' "$p"
}

# kill_pid PID [GRACE]: TERM the process we started, KILL it after GRACE s.
kill_pid() {
	local pid=$1 grace=${2:-5} i
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# kill_pidfile FILE: kill_pid on the PID stored in FILE, then remove FILE.
kill_pidfile() {
	[ -f "$1" ] || return 0
	kill_pid "$(cat "$1")" "${2:-5}"
	rm -f "$1"
}

# tool NAME: path of a built binary (aheadfs, aheadfs-origin, aheadfs-replay),
# empty if none is built.  AHEADFS_BUILDDIR names the build directory;
# otherwise the tree's own build directories (the top, build*/) are searched,
# and only if none has NAME the private ones (/tmp/*-build); within a tier the
# newest NAME wins.
tool() {
	local d f best='' tier
	local -a tiers
	if [ -n "${AHEADFS_BUILDDIR:-}" ]; then
		tiers=("$AHEADFS_BUILDDIR")
	else
		tiers=("$BENCH_TOP $(printf '%s ' "$BENCH_TOP"/build*)" "$(printf '%s ' /tmp/*-build)")
	fi
	for tier in "${tiers[@]}"; do
		for d in $tier; do
			for f in "$d/$1" "$d/contrib/bench/$1"; do
				if [ ! -f "$f" ] || [ ! -x "$f" ]; then continue; fi
				if [ -z "$best" ] || [ "$f" -nt "$best" ]; then
					best=$f
				fi
			done
		done
		[ -z "$best" ] || break
	done
	[ -z "$best" ] || printf '%s\n' "$best"
}

# kernel_for IMAGE / initrd_for IMAGE: the boot files mkimage.sh puts next to it.
kernel_for() { printf '%s\n' "${1%.raw}.vmlinuz"; }
initrd_for() { printf '%s\n' "${1%.raw}.initrd"; }

# --- systems under test (systems/*.sh) ----------------------------------------
# Each systems/NAME.sh defines sys_check, sys_kinds, sys_up, sys_down and
# optionally sys_stats, then ends with `system_main "$@"`:
#
#   NAME.sh check              exit 0 if it can run here; else print why, exit 2
#   NAME.sh kinds              what `up` presents: "file" (a path, fits every
#                              workload) or "drive" (a qemu -drive spec: boot only)
#   NAME.sh up URL STATEDIR    present the image at URL; print the path or spec
#   NAME.sh stats STATEDIR     print aheadfs's stats JSON if there is one
#   NAME.sh alive STATEDIR     exit 0 while every process `up` started still runs
#   NAME.sh down STATEDIR      tear everything down (also after a failed up)
#
# STATEDIR is private to one presentation; `down` must work on whatever `up`
# left in it.  Processes live at most BENCH_MAX_S seconds (default 1200).
BENCH_MAX_S=${BENCH_MAX_S:-1200}
# The origin lives for a whole link setting (all systems, all runs).
BENCH_ORIGIN_MAX_S=${BENCH_ORIGIN_MAX_S:-7200}

sys_stats() { :; }

system_main() {
	local cmd=${1:-}
	shift || true
	case $cmd in
	check) sys_check ;;
	kinds) sys_kinds ;;
	up)
		[ $# -eq 2 ] || die "usage: $0 up URL STATEDIR"
		mkdir -p "$2"
		sys_up "$1" "$2"
		;;
	down)
		[ $# -eq 1 ] || die "usage: $0 down STATEDIR"
		sys_down "$1"
		;;
	stats)
		[ $# -eq 1 ] || die "usage: $0 stats STATEDIR"
		sys_stats "$1"
		;;
	alive)
		[ $# -eq 1 ] || die "usage: $0 alive STATEDIR"
		local f
		for f in "$1"/*.pid; do
			[ -f "$f" ] || continue
			kill -0 "$(cat "$f")" 2>/dev/null || return 1
		done
		;;
	*) die "usage: $0 check|kinds|up URL STATEDIR|stats STATEDIR|alive STATEDIR|down STATEDIR" ;;
	esac
}

# start_bounded STATEDIR NAME CMD...: run CMD in the background under
# timeout(1) (BENCH_MAX_S), output to STATEDIR/NAME.log, PID in
# STATEDIR/NAME.pid.
start_bounded() {
	local dir=$1 name=$2
	shift 2
	timeout --kill-after=5 "$BENCH_MAX_S" "$@" >"$dir/$name.log" 2>&1 </dev/null &
	echo $! >"$dir/$name.pid"
}

# alive STATEDIR NAME: the process started by start_bounded still runs.
alive() {
	[ -f "$1/$2.pid" ] && kill -0 "$(cat "$1/$2.pid")" 2>/dev/null
}

dead() { ! alive "$@"; }

# fail_with_log STATEDIR NAME MESSAGE: report MESSAGE and the log's tail.
fail_with_log() {
	log "$3"
	if [ -f "$1/$2.log" ]; then
		tail -n 5 "$1/$2.log" | sed "s/^/$2: /" >&2
	fi
	return 1
}

# fuse_up STATEDIR NAME FILE CMD...: start a FUSE daemon (in the foreground
# mode of its own, under start_bounded) and wait until FILE appears in it.
fuse_up() {
	local dir=$1 name=$2 file=$3
	shift 3
	start_bounded "$dir" "$name" "$@"
	if ! wait_for 60 test -e "$file"; then
		fail_with_log "$dir" "$name" "$name: $file did not appear within 60 s"
		return 1
	fi
	if ! alive "$dir" "$name"; then
		fail_with_log "$dir" "$name" "$name: exited"
		return 1
	fi
	printf '%s\n' "$file"
}

# fuse_down STATEDIR NAME MOUNTPOINT: unmount, give the daemon 30 s to exit
# by itself (it may be saving state), then stop it.
fuse_down() {
	local dir=$1 name=$2 mnt=$3
	fuse_unmount "$mnt"
	wait_for 30 dead "$dir" "$name" || true
	kill_pidfile "$dir/$name.pid"
	fuse_unmount "$mnt"
	rmdir "$mnt" 2>/dev/null || true
}

# --- the origin ----------------------------------------------------------------
# origin_start STATEDIR ROOT RTT_MS MBIT LOG: serve ROOT on 127.0.0.1 with
# aheadfs-origin (RTT_MS delay before each response, MBIT shared bandwidth;
# 0 and 0 mean unshaped), logging every request to LOG.  Sets ORIGIN_PORT and
# ORIGIN_PID.  With BENCH_ORIGIN=nginx it serves with a private nginx instead
# (unshaped only; for development while aheadfs-origin is not built).
origin_start() {
	local dir=$1 root=$2 rtt=$3 mbit=$4 logf=$5 bin args
	mkdir -p "$dir"
	if [ "${BENCH_ORIGIN:-}" = nginx ]; then
		origin_start_nginx "$@"
		return
	fi
	bin=$(tool aheadfs-origin)
	[ -n "$bin" ] || die "aheadfs-origin is not built (or set BENCH_ORIGIN=nginx)"
	# One origin serves a whole link setting: bounded by BENCH_ORIGIN_MAX_S.
	args=(--root "$root" --port 0 --bind 127.0.0.1 --log "$logf" --max-seconds "$BENCH_ORIGIN_MAX_S")
	[ "$rtt" = 0 ] || args+=(--rtt-ms "$rtt")
	[ "$mbit" = 0 ] || args+=(--bandwidth-mbit "$mbit")
	timeout --kill-after=5 "$((BENCH_ORIGIN_MAX_S + 10))" "$bin" "${args[@]}" \
		>"$dir/origin.out" 2>"$dir/origin.err" </dev/null &
	ORIGIN_PID=$!
	if ! wait_for 10 grep -q '^port=' "$dir/origin.out"; then
		cat "$dir/origin.err" >&2
		kill_pid "$ORIGIN_PID"
		die "aheadfs-origin did not start"
	fi
	ORIGIN_PORT=$(sed -n 's/^port=\([0-9]*\).*/\1/p' "$dir/origin.out" | head -n 1)
}

origin_start_nginx() {
	local dir=$1 root=$2 rtt=$3 mbit=$4 logf=$5
	if [ "$rtt" != 0 ] || [ "$mbit" != 0 ]; then
		die "BENCH_ORIGIN=nginx cannot shape the link"
	fi
	requires nginx
	ORIGIN_PORT=$(free_port)
	mkdir -p "$dir/nginx"
	# The log line mimics aheadfs-origin's, so origin_summarize reads both.
	cat >"$dir/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 256; }
http {
	access_log off;
	log_format origin 'time=\$msec path=\$uri range=\$http_range status=\$status bytes=\$body_bytes_sent';
	client_body_temp_path $dir/nginx;
	proxy_temp_path $dir/nginx;
	fastcgi_temp_path $dir/nginx;
	uwsgi_temp_path $dir/nginx;
	scgi_temp_path $dir/nginx;
	sendfile on;
	server {
		listen 127.0.0.1:$ORIGIN_PORT;
		root $root;
		autoindex on;
		access_log $logf origin;
	}
}
NGINX
	timeout --kill-after=5 "$BENCH_ORIGIN_MAX_S" nginx -c "$dir/nginx/nginx.conf" \
		>"$dir/origin.out" 2>"$dir/origin.err" </dev/null &
	ORIGIN_PID=$!
	wait_for 10 curl -fsI "http://127.0.0.1:$ORIGIN_PORT/" || die "nginx did not start"
}

origin_stop() {
	kill_pid "${ORIGIN_PID:-}"
	ORIGIN_PID=
}

# origin_summarize LOG: `requests=N bytes=N` for the request lines in LOG
# (aheadfs-origin --summarize when built; the same sum in awk otherwise).
origin_summarize() {
	local bin
	bin=$(tool aheadfs-origin)
	if [ -n "$bin" ] && [ "${BENCH_ORIGIN:-}" != nginx ]; then
		"$bin" --summarize "$1"
		return
	fi
	awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^bytes=/) { n++; b += substr($i, 7) } }
		END { printf "requests=%d bytes=%d\n", n, b }' "$1"
}
