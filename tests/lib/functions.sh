# Shared helpers for the integration tests (TAP producers, run by bash).
#
# Every test sources this file, calls `tap_plan N`, and gets:
#  - a private work directory $T, removed at exit;
#  - cleanup on every exit path: servers it started are stopped by PID, mounts unmounted;
#  - a watchdog that ends the test after $TEST_TIMEOUT seconds (default 300).
# shellcheck shell=bash

set -u
: "${top_builddir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
AHEADFS="$top_builddir/aheadfs"
T=$(mktemp -d /tmp/aheadfs-test.XXXXXX)
chmod 755 "$T"
TAP_N=0
TAP_FAILED=0
CLEANUP_PIDS=()
CLEANUP_MOUNTS=()

tap_plan() { echo "1..$1"; }
ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=1; echo "not ok $TAP_N - $*"; }
skip() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - # SKIP $*"; }
diag() { echo "# $*"; }
# check DESCRIPTION COMMAND...: one test point from a command's exit status.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
bail() { echo "Bail out! $*"; exit 1; }

requires() {
	command -v "$1" >/dev/null 2>&1 || skip_all "$1 is not installed"
}

cleanup() {
	local m p
	for m in "${CLEANUP_MOUNTS[@]}"; do
		if mountpoint -q "$m" 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		fi
	done
	for p in "${CLEANUP_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	if [ -n "${WATCHDOG_PID:-}" ]; then
		# The watchdog first (so it cannot wake and bail), then its sleep, by PID.
		local sleeper
		sleeper=$(ps -o pid= --ppid "$WATCHDOG_PID")
		kill "$WATCHDOG_PID" 2>/dev/null
		[ -n "$sleeper" ] && kill $sleeper 2>/dev/null
	fi
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The sleep must not hold the TAP pipe open: the test driver waits for its end.
(
	sleep "${TEST_TIMEOUT:-300}" </dev/null >/dev/null 2>&1
	echo "Bail out! timed out after ${TEST_TIMEOUT:-300}s"
	kill -TERM $$
) &
WATCHDOG_PID=$!

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
	local limit=$(($1 * 10))
	shift
	local i
	for ((i = 0; i < limit; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_nginx: serves $T/www on 127.0.0.1:$NGINX_PORT; /noranges/ ignores Range.
# Access log: "$NGINX_LOG", one line per request: METHOD URI STATUS RANGE BODY_BYTES.
start_nginx() {
	requires nginx
	mkdir -p "$T/www/noranges" "$T/nginx/tmp"
	NGINX_PORT=${NGINX_PORT:-$(free_port)}
	NGINX_LOG="$T/nginx/access.log"
	local user=""
	[ "$(id -u)" = 0 ] && user="user root;"
	cat >"$T/nginx/nginx.conf" <<CONF
$user
worker_processes 2;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 512; }
http {
	log_format ranges '\$request_method \$uri \$status "\$http_range" \$body_bytes_sent';
	access_log $NGINX_LOG ranges;
	client_body_temp_path $T/nginx/tmp;
	proxy_temp_path $T/nginx/tmp;
	fastcgi_temp_path $T/nginx/tmp;
	uwsgi_temp_path $T/nginx/tmp;
	scgi_temp_path $T/nginx/tmp;
	sendfile on;
	keepalive_requests 100000;
	keepalive_timeout 120s;
	types { }
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		root $T/www;
		location /noranges/ { max_ranges 0; }
	}
}
CONF
	nginx -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" 2>"$T/nginx/start.err" ||
		bail "nginx did not start: $(cat "$T/nginx/start.err")"
	wait_for 10 test -s "$T/nginx/nginx.pid" || bail "nginx wrote no pid file"
	NGINX_PID=$(cat "$T/nginx/nginx.pid")
	CLEANUP_PIDS+=("$NGINX_PID")
	wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NGINX_PORT" ||
		bail "nginx does not answer on port $NGINX_PORT"
	BASE_URL="http://127.0.0.1:$NGINX_PORT"
}

# start_slow_origin RTT_MS [MBIT [OPTION...]]: the benchmark's origin with an emulated WAN
# link (and any more of its options), serving $T/www; sets ORIGIN_URL, ORIGIN_PID,
# ORIGIN_LOG (one line per request, appended to).
start_slow_origin() {
	local bin="$top_builddir/contrib/bench/aheadfs-origin" rtt=$1 mbit=${2:-0}
	shift $(($# < 2 ? $# : 2))
	[ -x "$bin" ] || bail "$bin is not built"
	mkdir -p "$T/www"
	ORIGIN_LOG="$T/origin.log"
	"$bin" --root "$T/www" --port 0 --rtt-ms "$rtt" --bandwidth-mbit "$mbit" "$@" \
		--log "$ORIGIN_LOG" --max-seconds "${TEST_TIMEOUT:-300}" >"$T/origin.out" &
	ORIGIN_PID=$!
	CLEANUP_PIDS+=("$ORIGIN_PID")
	wait_for 10 grep -q '^port=' "$T/origin.out" || bail "the slow origin did not start"
	ORIGIN_URL="http://127.0.0.1:$(sed -n 's/^port=//p' "$T/origin.out")"
}

# json_get FILE EXPR: evaluate a Python expression over the parsed JSON `s`.
json_get() {
	python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

stop_nginx() {
	kill "$NGINX_PID" 2>/dev/null
	wait_for 10 bash -c "! kill -0 $NGINX_PID" || kill -9 "$NGINX_PID" 2>/dev/null
}

# Requests in the nginx log so far, optionally only those matching a pattern.
nginx_requests() {
	if [ $# -gt 0 ]; then grep -c -- "$1" "$NGINX_LOG" || true; else wc -l <"$NGINX_LOG"; fi
}

# mount_aheadfs MOUNTPOINT URL [OPTIONS]: mount in the background (daemonized).
# An empty URL mounts without one (for -o manifest=).
mount_aheadfs() {
	local mnt=$1 url=$2
	shift 2
	mkdir -p "$mnt"
	CLEANUP_MOUNTS+=("$mnt")
	if [ -n "$url" ]; then
		"$AHEADFS" -o "cache_dir=$T/cache" "$@" "$url" "$mnt"
	else
		"$AHEADFS" -o "cache_dir=$T/cache" "$@" "$mnt"
	fi
}

# mount_aheadfs_fg MOUNTPOINT URL [OPTIONS]: run aheadfs in the foreground, in the
# background of the test, so its PID ($AHEADFS_PID) and its log ($AHEADFS_LOG) are known.
mount_aheadfs_fg() {
	local mnt=$1 url=$2
	shift 2
	mkdir -p "$mnt"
	CLEANUP_MOUNTS+=("$mnt")
	AHEADFS_LOG="$T/aheadfs.$(basename "$mnt").log"
	"$AHEADFS" -f -o "cache_dir=$T/cache" "$@" "$url" "$mnt" 2>"$AHEADFS_LOG" &
	AHEADFS_PID=$!
	CLEANUP_PIDS+=("$AHEADFS_PID")
	wait_for 20 mountpoint -q "$mnt" || { cat "$AHEADFS_LOG" >&2; return 1; }
}

unmount_aheadfs() {
	local lock
	fusermount3 -u "$1"
	# A foreground instance: wait until it has flushed and exited.
	if [ -n "${AHEADFS_PID:-}" ]; then
		wait_for 20 bash -c "! kill -0 $AHEADFS_PID"
		AHEADFS_PID=
	fi
	# A daemon: it has finished (cache flushed, learned state saved) when it lets go of
	# its cache locks.
	for lock in "$T"/cache/*/lock; do
		[ -e "$lock" ] && wait_for 20 flock -n "$lock" true
	done
	return 0
}

# Range GETs nginx answered for URI, as "first last" lines.
nginx_ranges() {
	awk -v uri="$1" '$1 == "GET" && $2 == uri && $3 == 206 {
		r = $4; gsub(/"|bytes=/, "", r); split(r, p, "-"); print p[1], p[2] }' "$NGINX_LOG"
}

# make_image FILE MIB: random, incompressible test bytes (deterministic per name).
make_image() {
	head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$1"
}

tap_done() {
	exit "$TAP_FAILED"
}
