#!/bin/bash
# The read path's numbers (issue 2), all measured in one run on this machine:
#  1. cold sequential read of an image (default 2 GiB) from loopback nginx, 1 MiB reads,
#     against `curl -o /dev/null` of the same file;
#  2. warm sequential read (every block cached) against libfuse's passthrough_ll example
#     (as shipped, and with splice enabled) reading the cache data file from the same disk;
#  3. warm random 4 KiB reads (fio, 4 jobs) through the mount and on the cache file itself;
#  4. RSS of aheadfs for a 100 GiB sparse image after 1,000 random reads.
#
#   contrib/bench/readpath.sh [--size-gib N] [--fio-seconds S] [--builddir DIR]
#                             [--mount-opts OPTS] [--cold-only [--runs N] [--perf FILE]]
# --mount-opts adds aheadfs -o options to every mount (e.g. direct_io).
# --cold-only measures only 1., N times in a row (fresh cache each time), one line a run;
# --perf FILE also records the whole machine (perf record -a -g) for the first 4 s of each
# cold read (`perf report -i FILE --no-children --sort comm,sym -g none`).
# Prints a markdown table. Needs root (drop_caches), nginx, fio, curl, gcc.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
size_gib=2 fio_s=30 builddir="$top/build" cold_only=0 runs=1 perf_out= mount_opts=
while [ $# -gt 0 ]; do
	case $1 in
	--size-gib) size_gib=$2; shift 2 ;;
	--fio-seconds) fio_s=$2; shift 2 ;;
	--builddir) builddir=$2; shift 2 ;;
	--cold-only) cold_only=1; shift ;;
	--runs) runs=$2; shift 2 ;;
	--perf) perf_out=$2; shift 2 ;;
	--mount-opts) mount_opts=,$2; shift 2 ;;
	*) echo "usage: $0 [--size-gib N] [--fio-seconds S] [--builddir DIR] [--mount-opts OPTS] [--cold-only [--runs N] [--perf FILE]]" >&2
	   exit 2 ;;
	esac
done
aheadfs="$builddir/aheadfs"
[ -x "$aheadfs" ] || { echo "build aheadfs first ($aheadfs)" >&2; exit 1; }
for t in nginx fio curl gcc python3; do
	command -v $t >/dev/null || { echo "$t is needed" >&2; exit 1; }
done
[ -z "$perf_out" ] || command -v perf >/dev/null || { echo "perf is needed for --perf" >&2; exit 1; }

w=$(mktemp -d /var/tmp/aheadfs-readpath.XXXXXX)
chmod 755 "$w"
nginx_pid= ah_pid= pt_pid=
cleanup() {
	set +e
	for m in "$w/mnt" "$w/pt"; do mountpoint -q "$m" && fusermount3 -u "$m"; done
	for p in $ah_pid $pt_pid $nginx_pid; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$w"
}
trap cleanup EXIT
mkdir -p "$w/www" "$w/mnt" "$w/pt" "$w/nginx"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$w/nginx/nginx.conf" <<CONF
user root;
worker_processes 2;
pid $w/nginx/nginx.pid;
error_log $w/nginx/error.log;
events { worker_connections 512; }
http {
	access_log off;
	sendfile on;
	keepalive_requests 1000000;
	client_body_temp_path $w/nginx; proxy_temp_path $w/nginx; fastcgi_temp_path $w/nginx;
	uwsgi_temp_path $w/nginx; scgi_temp_path $w/nginx;
	server { listen 127.0.0.1:$port; root $w/www; }
}
CONF
nginx -c "$w/nginx/nginx.conf" -e "$w/nginx/error.log"
for _ in $(seq 50); do [ -s "$w/nginx/nginx.pid" ] && break; sleep 0.1; done
nginx_pid=$(cat "$w/nginx/nginx.pid")
url="http://127.0.0.1:$port"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# mbps BYTES SECONDS
mbps() { python3 -c "print(f'{$1 / $2 / 1e6:.0f}')"; }
# timed COMMAND...: seconds the command took
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s.%N)
	python3 -c "print($t1 - $t0)"
}
mount_fg() { # mount_fg URL [opts]: foreground aheadfs in the background, PID in ah_pid
	"$aheadfs" -f -o "cache_dir=$w/cache$mount_opts" "$@" "$w/mnt" 2>>"$w/aheadfs.log" &
	ah_pid=$!
	for _ in $(seq 100); do mountpoint -q "$w/mnt" && return 0; sleep 0.1; done
	echo "mount failed: $(cat "$w/aheadfs.log")" >&2
	exit 1
}
unmount_fg() {
	fusermount3 -u "$w/mnt"
	wait "$ah_pid" 2>/dev/null || true
	ah_pid=
}

bytes=$((size_gib * 1024 * 1024 * 1024))
echo "# making a ${size_gib} GiB image" >&2
head -c "$bytes" /dev/urandom >"$w/www/img.raw"
cat "$w/www/img.raw" >/dev/null # the origin serves from the page cache, as in MEASURED.md

cold_run() { # one cold sequential read and the curl it is compared with; sets t_curl t_cold reqs
	rm -rf "$w/cache"
	t_curl=$(timed curl -s -o /dev/null "$url/img.raw")
	mount_fg "$url/img.raw"
	local perf_pid=
	if [ -n "$perf_out" ]; then
		perf record -a -g -o "$perf_out" -- sleep 4 >/dev/null 2>&1 &
		perf_pid=$!
	fi
	t_cold=$(timed dd if="$w/mnt/img.raw" of=/dev/null bs=1M)
	[ -z "$perf_pid" ] || wait "$perf_pid" || true
	reqs=$(python3 -c "import json; print(json.load(open('$w/mnt/.aheadfs/stats'))['origin']['requests'])")
	unmount_fg
}

echo "# 1. cold sequential" >&2
if [ "$cold_only" = 1 ]; then
	echo "## Cold sequential ${size_gib} GiB, 1 MiB reads ($(date -u +%H:%M), commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)${mount_opts:+, -o ${mount_opts#,}})"
	for i in $(seq "$runs"); do
		cold_run
		echo "run $i: aheadfs $(mbps $bytes $t_cold) MB/s ($reqs requests), curl $(mbps $bytes $t_curl) MB/s, $(python3 -c "print(f'{$t_curl / $t_cold:.2f}x')"), load $(cut -d' ' -f1-3 /proc/loadavg)"
	done
	exit 0
fi
cold_run

echo "# 2. warm sequential" >&2
mount_fg "$url/img.raw"
cachefile=$(ls "$w"/cache/*/data)
drop_caches
t_warm_disk=$(timed dd if="$w/mnt/img.raw" of=/dev/null bs=1M)
t_warm=$(timed dd if="$w/mnt/img.raw" of=/dev/null bs=1M)
unmount_fg

cc_pt() { # cc_pt OUT [sed-expression]: build passthrough_ll, optionally patched
	local src=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
	sed "${2:-s/^//}" "$src" >"$w/pt.c"
	gcc -O2 -D_GNU_SOURCE -I/usr/share/doc/libfuse3-dev/examples "$w/pt.c" -o "$1" \
		$(pkg-config --cflags --libs fuse3) 2>/dev/null
}
cc_pt "$w/pt_shipped"
cc_pt "$w/pt_splice" 's/^static void lo_init(void \*userdata,$/&/; /^static void lo_init/,/^}/ s/^{$/{ conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;/'
pt_run() { # pt_run BINARY: passthrough of the cache directory, dd of the data file
	"$1" -f -o "source=$(dirname "$cachefile"),cache=always" "$w/pt" 2>/dev/null &
	pt_pid=$!
	for _ in $(seq 100); do mountpoint -q "$w/pt" && break; sleep 0.1; done
	drop_caches
	local cold warm
	cold=$(timed dd if="$w/pt/data" of=/dev/null bs=1M)
	warm=$(timed dd if="$w/pt/data" of=/dev/null bs=1M)
	fusermount3 -u "$w/pt"
	wait "$pt_pid" 2>/dev/null || true
	pt_pid=
	echo "$cold $warm"
}
read -r t_pt_disk t_pt_warm < <(pt_run "$w/pt_shipped")
read -r t_pts_disk t_pts_warm < <(pt_run "$w/pt_splice")

echo "# 3. warm random 4 KiB" >&2
fio_rand() { # fio_rand FILE -> "IOPS p99_ms"
	fio --name=rand --filename="$1" --readonly --rw=randread --bs=4k --numjobs=4 \
		--ioengine=psync --time_based --runtime="$fio_s" --invalidate=0 --group_reporting \
		--output-format=json 2>/dev/null |
		python3 -c 'import json, sys
j = json.load(sys.stdin)["jobs"][0]["read"]
print("%.0f %.3f" % (j["iops"], j["clat_ns"]["percentile"]["99.000000"] / 1e6))'
}
mount_fg "$url/img.raw"
cat "$w/mnt/img.raw" >/dev/null
read -r iops_mnt p99_mnt < <(fio_rand "$w/mnt/img.raw")
unmount_fg
cat "$cachefile" >/dev/null
read -r iops_file p99_file < <(fio_rand "$cachefile")

echo "# 4. RSS, 100 GiB sparse image, 1,000 random reads" >&2
truncate -s 100G "$w/www/big.raw"
mount_fg "$url/big.raw"
python3 - "$w/mnt/big.raw" <<'PY'
import os, random, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
rng = random.Random(1)
for _ in range(1000):
    os.pread(fd, 4096, rng.randrange(0, size - 4096))
PY
rss_kib=$(awk '/^VmRSS/ {print $2}' /proc/"$ah_pid"/status)
hwm_kib=$(awk '/^VmHWM/ {print $2}' /proc/"$ah_pid"/status)
unmount_fg

load=$(cut -d' ' -f1-3 /proc/loadavg)
cat <<TABLE
## Read path ($(date -u +%Y-%m-%d), commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPUs, load $load)

| measurement | aheadfs | reference | ratio |
|---|---|---|---|
| cold sequential ${size_gib} GiB, 1 MiB reads (MB/s) | $(mbps $bytes $t_cold) ($reqs requests) | curl -o /dev/null: $(mbps $bytes $t_curl) | $(python3 -c "print(f'{$t_curl / $t_cold:.2f}x')") |
| warm sequential, first read from disk (MB/s) | $(mbps $bytes $t_warm_disk) | passthrough_ll: $(mbps $bytes $t_pt_disk), with splice: $(mbps $bytes $t_pts_disk) | $(python3 -c "print(f'{$t_pt_disk / $t_warm_disk:.2f}x / {$t_pts_disk / $t_warm_disk:.2f}x')") |
| warm sequential, repeat read (MB/s) | $(mbps $bytes $t_warm) | passthrough_ll: $(mbps $bytes $t_pt_warm), with splice: $(mbps $bytes $t_pts_warm) | $(python3 -c "print(f'{$t_pt_warm / $t_warm:.2f}x / {$t_pts_warm / $t_warm:.2f}x')") |
| warm random 4 KiB, fio 4 jobs ${fio_s} s (IOPS, p99 ms) | $iops_mnt, $p99_mnt | cache file directly: $iops_file, $p99_file | $(python3 -c "print(f'{$iops_mnt / $iops_file:.2f}x')") |
| RSS, 100 GiB sparse image after 1,000 random reads | $((rss_kib / 1024)) MiB (peak $((hwm_kib / 1024)) MiB) | limit 64 MiB | |
TABLE
