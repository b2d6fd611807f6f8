#!/bin/bash
# Smoke test for the benchmark's origin (aheadfs-origin) and replayer (aheadfs-replay), run
# by `make check` (TAP). A few seconds: ranges, validators, keep-alive, the emulated
# delay and bandwidth within 20%, --no-ranges, error injection, the request log, and one
# tiny trace replay. Every origin started here is killed by PID on exit and also stops
# itself (--max-seconds).
set -u

top_builddir=${top_builddir:-$(pwd)}
origin=$top_builddir/contrib/bench/aheadfs-origin
replay=$top_builddir/contrib/bench/aheadfs-replay

for tool in curl python3 stat dd cmp; do
	if ! command -v $tool >/dev/null; then
		echo "1..0 # SKIP $tool not installed"
		exit 0
	fi
done
if [ ! -x "$origin" ] || [ ! -x "$replay" ]; then
	echo "Bail out! $origin or $replay not built"
	exit 1
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

n=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	echo "not ok $n - $1"
	shift
	[ $# -gt 0 ] && printf '# %s\n' "$@"
}
# check DESCRIPTION COMMAND...: one TAP line from a command's status.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# start_origin NAME ARGS...: start an origin on a free port; sets $port and $pid.
start_origin() {
	local name=$1 i
	shift
	"$origin" --root "$tmp/root" --port 0 --max-seconds 60 "$@" >"$tmp/$name.out" \
		2>"$tmp/$name.err" &
	pid=$!
	pids+=("$pid")
	port=
	for i in $(seq 100); do
		port=$(sed -n 's/^port=//p' "$tmp/$name.out")
		[ -n "$port" ] && return 0
		sleep 0.05
	done
	echo "Bail out! origin $name did not start: $(cat "$tmp/$name.err")"
	exit 1
}

# forget PID: a reaped PID may be reused; never kill it again.
forget() {
	local p keep=()
	for p in "${pids[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	pids=("${keep[@]}")
}

# in_range VALUE LOW HIGH: LOW <= VALUE <= HIGH, decimals allowed.
in_range() {
	awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'
}

echo "1..21"

mkdir -p "$tmp/root/dir"
head -c 8388608 /dev/urandom >"$tmp/root/image.raw"
file=$tmp/root/image.raw
size=$(stat -c %s "$file")
etag=$(printf '"%x-%x-%x"' "$(stat -c %i "$file")" "$size" "$(stat -c %Y "$file")")
log=$tmp/origin.log

start_origin main --log "$log"
url=http://127.0.0.1:$port/image.raw
requests=0
c() {
	requests=$((requests + 1))
	curl -sS --max-time 10 "$@"
}

# 1-2: HEAD
c -I "$url" >"$tmp/head" 2>&1
check "HEAD 200 with Content-Length $size" \
	grep -qiE "^content-length: $size"$'\r'"?$" "$tmp/head"
check "HEAD strong ETag from inode, size and mtime, Accept-Ranges, Last-Modified" \
	eval "grep -qiF 'etag: $etag' '$tmp/head' && grep -qi '^accept-ranges: bytes' '$tmp/head' &&
	      grep -qi '^last-modified: ' '$tmp/head'"

# 3-4: ranges return exactly the right bytes
c -r 1000-99999 -o "$tmp/range" -D "$tmp/range.h" "$url"
dd if="$file" of="$tmp/range.ref" bs=1000 skip=1 count=99 status=none
check "bytes=1000-99999: 206, Content-Range, same bytes as dd" \
	eval "grep -q '^HTTP/1.1 206' '$tmp/range.h' &&
	      grep -qi 'content-range: bytes 1000-99999/$size' '$tmp/range.h' &&
	      cmp -s '$tmp/range' '$tmp/range.ref'"
c -r -4096 -o "$tmp/suffix" "$url"
tail -c 4096 "$file" >"$tmp/suffix.ref"
check "bytes=-4096 returns the file's last 4096 bytes" cmp -s "$tmp/suffix" "$tmp/suffix.ref"

# 5: past EOF
c -r "$((size + 10))-" -o /dev/null -D "$tmp/416.h" "$url"
check "range past EOF: 416 with Content-Range: bytes */$size" \
	eval "grep -q '^HTTP/1.1 416' '$tmp/416.h' &&
	      grep -qi 'content-range: bytes \*/$size' '$tmp/416.h'"

# 6: If-Range
c -r 0-9 -H "If-Range: $etag" -o /dev/null -w '%{http_code}\n' "$url" >"$tmp/ifr"
c -r 0-9 -H 'If-Range: "stale"' -o /dev/null -w '%{http_code} %{size_download}\n' \
	"$url" >>"$tmp/ifr"
check "If-Range: matching ETag 206, stale ETag 200 with the whole file" \
	test "$(tr '\n' ' ' <"$tmp/ifr")" = "206 200 $size "

# 7: keep-alive
requests=$((requests + 1))
c -w '%{num_connects}\n' -r 0-99 -o /dev/null "$url" -r 100-199 -o /dev/null "$url" >"$tmp/ka"
check "keep-alive: the second request reuses the connection" \
	test "$(tr '\n' ' ' <"$tmp/ka")" = "1 0 "

# 8: no way out of the root
code=$(c --path-as-is -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/../etc/passwd")
code2=$(c -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/%2e%2e/etc/passwd")
code3=$(c -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$port/dir")
requests=$((requests + 3)) # c ran in subshells
check "'..' rejected (400, also percent-encoded), a directory without '/' is 301 to DIR/" \
	test "$code $code2 $code3" = "400 400 301 http://127.0.0.1:$port/dir/"

# 9: 64 concurrent connections
for i in $(seq 0 63); do
	curl -sS --max-time 10 -r "$((i * 65536))-$((i * 65536 + 65535))" -o "$tmp/par.$i" \
		-w '%{http_code}\n' "$url" >"$tmp/par.$i.code" &
done
wait_ok=1
for job in $(jobs -p); do
	case " ${pids[*]} " in *" $job "*) continue ;; esac
	wait "$job" || wait_ok=0
done
requests=$((requests + 64))
cat "$tmp"/par.*.code | sort | uniq -c >"$tmp/par.codes"
for i in $(seq 0 63); do
	cat "$tmp/par.$i"
done >"$tmp/par.all"
check "64 concurrent range requests all 206 with the right bytes" \
	eval "[ $wait_ok = 1 ] && grep -q '64 206' '$tmp/par.codes' &&
	      head -c 4194304 '$file' | cmp -s - '$tmp/par.all'"

# 10-11: the log, and its summary
sleep 0.1
lines=$(wc -l <"$log")
check "the log has one line per request ($requests)" test "$lines" -eq "$requests"
"$origin" --summarize "$log" >"$tmp/summary"
bytes=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^bytes=/) s += substr($i, 7) } END { print s }' "$log")
check "--summarize prints requests=$requests bytes=$bytes" \
	test "$(cat "$tmp/summary")" = "requests=$requests bytes=$bytes"

# 12-13: a directory's index, in nginx autoindex's form (what rclone's http remote reads)
touch "$tmp/root/.hidden"
curl -sS --max-time 10 -D "$tmp/index.h" -o "$tmp/index.html" "http://127.0.0.1:$port/"
check "GET /: 200 text/html index, links to image.raw with its size and to dir/, no dot files" \
	eval "grep -q '^HTTP/1.1 200' '$tmp/index.h' && grep -qi '^content-type: text/html' '$tmp/index.h' &&
	      grep -qE '^<a href=\"image.raw\">image.raw</a> .* $size'$'\\r''\$' '$tmp/index.html' &&
	      grep -q '<a href=\"dir/\">dir/</a>' '$tmp/index.html' && ! grep -q hidden '$tmp/index.html'"
if command -v rclone >/dev/null; then
	RCLONE_CONFIG=/dev/null timeout 20 rclone lsf --format sp :http: \
		--http-url "http://127.0.0.1:$port/" >"$tmp/rclone.ls" 2>"$tmp/rclone.err"
	check "rclone's http remote lists image.raw with its size" \
		grep -qx "$size;image.raw" "$tmp/rclone.ls"
else
	ok "rclone's http remote lists the index # SKIP rclone not installed"
fi

# 14: SIGTERM stops it cleanly
kill -TERM "$pid"
wait "$pid"
rc=$?
forget "$pid"
check "SIGTERM: exits with status 0" test $rc -eq 0

# 15: delay. Three requests on one connection; the first one also pays the connect,
# which on loopback is noise next to 100 ms.
start_origin rtt --rtt-ms 100
url=http://127.0.0.1:$port/image.raw
c -r 0-511 -o /dev/null -w '%{time_starttransfer} %{time_pretransfer}\n' "$url" \
	-r 0-511 -o /dev/null -w '%{time_starttransfer} %{time_pretransfer}\n' "$url" \
	-r 0-511 -o /dev/null -w '%{time_starttransfer} %{time_pretransfer}\n' "$url" \
	>"$tmp/rtt"
ms=$(awk '{ s += $1 - $2 } END { printf "%.1f", s / NR * 1000 }' "$tmp/rtt")
if in_range "$ms" 80 120; then
	ok "--rtt-ms 100: first byte after $ms ms"
else
	not_ok "--rtt-ms 100: first byte after $ms ms, expected 80-120" "$(cat "$tmp/rtt")"
fi

# 16: bandwidth: 80 Mbit/s is 10 MB/s; 4 MB should take 0.4 s.
start_origin bw --bandwidth-mbit 80
url=http://127.0.0.1:$port/image.raw
c -r 0-3999999 -o "$tmp/bw" -w '%{speed_download} %{size_download}\n' "$url" >"$tmp/bw.out"
read -r speed got <"$tmp/bw.out"
mbs=$(awk -v s="$speed" 'BEGIN { printf "%.2f", s / 1e6 }')
if [ "$got" = 4000000 ] && in_range "$mbs" 8 12; then
	ok "--bandwidth-mbit 80: 4 MB at $mbs MB/s"
else
	not_ok "--bandwidth-mbit 80: 4 MB at $mbs MB/s ($got bytes), expected 8-12 MB/s"
fi

# 17: no range support
start_origin noranges --no-ranges
c -r 0-99 -o /dev/null -D "$tmp/nr.h" -w '%{size_download}\n' \
	"http://127.0.0.1:$port/image.raw" >"$tmp/nr"
check "--no-ranges: Range ignored, 200 with the whole file" \
	eval "grep -q '^HTTP/1.1 200' '$tmp/nr.h' && [ \"\$(cat '$tmp/nr')\" = $size ]"

# 18: error injection
start_origin errors --error-rate 1
code=$(c -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/image.raw")
check "--error-rate 1: 503" test "$code" = 503

# 19: --max-seconds stops it by itself
"$origin" --root "$tmp/root" --max-seconds 0.3 >/dev/null &
pid=$!
pids+=("$pid")
sleep 1
if kill -0 "$pid" 2>/dev/null; then
	not_ok "--max-seconds 0.3: still running after 1 s"
else
	wait "$pid"
	rc=$?
	forget "$pid"
	check "--max-seconds 0.3: exited by itself with status 0" test $rc -eq 0
fi

# 20: replay a tiny trace against the local file
cat >"$tmp/trace.csv" <<EOF
time_s,offset,length,op
0,0,4096,R
0.01,4096,8192,R
0.02,65536,4096,W
0.03,$((size + 4096)),4096,R
0.04,1048576,65536,R
EOF
"$replay" --scale 1 "$tmp/trace.csv" "$file" >"$tmp/replay.json" 2>"$tmp/replay.err"
rc=$?
if [ $rc = 0 ] && python3 - "$tmp/replay.json" <<'EOF'; then
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ops"] == 3 and d["bytes"] == 4096 + 8192 + 65536, d
assert d["writes_skipped"] == 1 and d["skipped_beyond_eof"] == 1, d
assert 0.035 <= d["elapsed_s"] < 1.0, d
for k in ("io_s", "p50_ms", "p90_ms", "p99_ms", "max_ms"):
    assert d[k] >= 0, k
EOF
	ok "aheadfs-replay: tiny trace replayed, JSON parses and adds up"
else
	not_ok "aheadfs-replay: rc $rc" "$(cat "$tmp/replay.json" "$tmp/replay.err")"
fi

# 21: --max-seconds: no read starts after the bound; the JSON says how far it got
cat >"$tmp/slow.csv" <<EOF2
0,0,4096,R
0.1,4096,4096,R
5,8192,4096,R
10,12288,4096,R
EOF2
"$replay" --scale 1 --max-seconds 1 "$tmp/slow.csv" "$file" >"$tmp/slow.json" 2>"$tmp/slow.err"
rc=$?
if [ $rc = 0 ] && python3 - "$tmp/slow.json" <<'EOF'; then
import json, sys
d = json.load(open(sys.argv[1]))
assert d["truncated"] is True and d["ops"] == 2 and d["ops_planned"] == 4, d
assert d["elapsed_s"] < 1.0, d
EOF
	ok "aheadfs-replay --max-seconds 1: 2 of 4 reads, truncated, no waiting for the rest"
else
	not_ok "aheadfs-replay --max-seconds: rc $rc" "$(cat "$tmp/slow.json" "$tmp/slow.err")"
fi
