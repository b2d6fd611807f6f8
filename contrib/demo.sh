#!/bin/bash
# aheadfs demo: a local origin with an emulated WAN link (20 ms RTT, 200 Mbit/s), a demo
# disk image (ext4), mounted with aheadfs and used for real: cold, then warm from the
# cache after a remount, then with the data cache emptied but what aheadfs learned kept
# (the learned mount: it fetches ahead of the reads). Prints what aheadfs did, the read
# time prefetching saved among it. Cleans up after itself.
#
#   contrib/demo.sh [--rtt-ms N] [--bandwidth-mbit N]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
rtt=20 bw=200
while [ $# -gt 0 ]; do
	case $1 in
	--rtt-ms) rtt=$2; shift 2 ;;
	--bandwidth-mbit) bw=$2; shift 2 ;;
	*) echo "usage: $0 [--rtt-ms N] [--bandwidth-mbit N]" >&2; exit 2 ;;
	esac
done

packages=(build-essential autoconf automake libtool pkg-config libfuse3-dev fuse3
	libglib2.0-dev libcurl4-openssl-dev libcairo2-dev python3 e2fsprogs curl util-linux)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "== building"
if [ ! -x build/aheadfs ] || [ ! -x build/contrib/bench/aheadfs-origin ]; then
	[ -x configure ] || autoreconf -fi >/dev/null 2>&1
	mkdir -p build
	(cd build && { [ -f Makefile ] || ../configure -q; } && make -j"$(nproc)" >/dev/null)
else
	(cd build && make -j"$(nproc)" >/dev/null)
fi

work=$(mktemp -d /tmp/aheadfs-demo.XXXXXX)
chmod 755 "$work"
origin_pid= loopdev=
cleanup() {
	set +e
	mountpoint -q "$work/fs" 2>/dev/null && umount "$work/fs"
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
	mountpoint -q "$work/mnt" 2>/dev/null && fusermount3 -u "$work/mnt"
	[ -n "$origin_pid" ] && kill "$origin_pid" 2>/dev/null && wait "$origin_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

echo "== making a demo image: ext4, 512 MiB (sparse), with /usr/share/doc, /usr/lib/python3 and 64 MiB of data"
mkdir -p "$work/www" "$work/tree/data" "$work/mnt" "$work/fs"
cp -r /usr/share/doc "$work/tree/" 2>/dev/null || true
cp -r /usr/lib/python3* "$work/tree/" 2>/dev/null || true
head -c 64M /dev/urandom >"$work/tree/data/blob"
truncate -s 512M "$work/www/demo.raw"
mkfs.ext4 -q -F -d "$work/tree" "$work/www/demo.raw"

echo "== starting the origin on 127.0.0.1: ${rtt} ms per request, ${bw} Mbit/s"
build/contrib/bench/aheadfs-origin --root "$work/www" --port 0 --rtt-ms "$rtt" \
	--bandwidth-mbit "$bw" --log "$work/origin.log" --max-seconds 900 >"$work/origin.out" &
origin_pid=$!
for _ in $(seq 50); do grep -q '^port=' "$work/origin.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^port=//p' "$work/origin.out")
url="http://127.0.0.1:$port/demo.raw"

# workload: what a user does with an image: look inside it and read its files.
workload() {
	if [ "$(id -u)" = 0 ]; then
		loopdev=$(losetup -r -f --show "$work/mnt/demo.raw")
		mount -o ro,noload "$loopdev" "$work/fs"
		find "$work/fs" -type f -exec cat {} + | sha256sum | cut -c1-16
		umount "$work/fs"
		losetup -d "$loopdev"
		loopdev=
	else
		sha256sum <"$work/mnt/demo.raw" | cut -c1-16
	fi
}

summary() { # what aheadfs says of itself, in words (MOUNTPOINT/.aheadfs/summary)
	sed 's/^/   /' "$work/mnt/.aheadfs/summary"
}

run() {
	local label=$1 t0 t1 digest
	build/aheadfs -o "cache_dir=$work/cache,state_dir=$work/state" "$url" "$work/mnt"
	t0=$(date +%s.%N)
	digest=$(workload)
	t1=$(date +%s.%N)
	printf '== %s: read every file in the image in %.2f s (content digest %s)\n' "$label" \
		"$(echo "$t1 - $t0" | bc -l 2>/dev/null || python3 -c "print($t1 - $t0)")" "$digest"
	summary
	fusermount3 -u "$work/mnt"
	sleep 0.3
}

echo "== mounting $url on $work/mnt"
run "first mount (cold cache)"
run "second mount (warm cache, same origin)"
rm -rf "$work/cache"
run "third mount (data cache emptied, what was learned kept)"
echo "== cache on disk: $(du -sh "$work/cache" | cut -f1) for a $(du -h --apparent-size "$work/www/demo.raw" | cut -f1) image"
echo "== done; see README for fstab and qemu examples"
