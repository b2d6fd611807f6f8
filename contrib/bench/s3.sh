#!/bin/bash
# s3.sh: issue 6's numbers, all in one run on this machine, both origins unshaped on
# 127.0.0.1: a private Ceph radosgw (tests/lib/radosgw.sh) and a private nginx
# (tests/lib/functions.sh) serve the same benchmark image (mkimage.sh), and
#  1. cold sequential throughput: 256 MiB and the whole image read with dd (1 MiB reads)
#     through a fresh aheadfs mount, against curl of the same bytes (`curl --aws-sigv4`
#     with `x-amz-content-sha256: UNSIGNED-PAYLOAD` from radosgw, plain curl from nginx);
#  2. the VM boot (boot.sh) from the local file and from aheadfs mounts of both origins:
#     first mount (fresh cache and state) and learned (state kept from an untimed
#     training boot and the earlier runs, data cache emptied).
# Every measurement is repeated --runs times (default 3), interleaved across
# configurations; the report gives medians.
#
#   contrib/bench/s3.sh [--runs N] [--out DIR] [--timeout S] [--no-boot] [--no-seq]
#                       [--configs local,nginx-first,s3-first,nginx-learned,s3-learned]
#                       [--mount-opts OPTS] [--cpus shared|split]
# --mount-opts adds aheadfs -o options to every mount of both origins (e.g. direct_io).
# --cpus split runs the origins (radosgw, its OSD and monitor, nginx) on CPU 0 and
# everything that reads from them (curl, aheadfs, dd, qemu) on the other CPUs, as with an
# object store on hosts of its own; shared (the default) lets both use every CPU, so a
# client's CPU time is taken from the origin's (RESULTS-S3.md, session 9).
#
# Writes OUT (default /var/tmp/aheadfs-bench/results/s3-DATE): s3.md, s3.csv (one row per
# run), runs.jsonl, meta.txt and logs/ (serial consoles, aheadfs logs and stats JSON).
# Needs root, the image (mkimage.sh), a built aheadfs (see tool() in lib.sh), nginx,
# qemu, and Debian's ceph-mon ceph-osd radosgw ceph-common (installed by radosgw.sh when
# missing). radosgw keeps the object in RAM (memstore): ceph-osd grew to 4.1 GiB RSS with
# the 2 GiB image.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)

RUNS=3 OUT='' TIMEOUT=300 DO_BOOT=1 DO_SEQ=1 MOUNT_OPTS='' CPUS=shared
CONFIGS_ARG=local,nginx-first,s3-first,nginx-learned,s3-learned
usage() {
	echo "usage: $0 [--runs N] [--out DIR] [--timeout S] [--no-boot] [--no-seq] [--configs LIST] [--mount-opts OPTS] [--cpus shared|split]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--runs) RUNS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--no-boot) DO_BOOT=0; shift ;;
	--no-seq) DO_SEQ=0; shift ;;
	--configs) CONFIGS_ARG=$2; shift 2 ;;
	--mount-opts) MOUNT_OPTS=$2; shift 2 ;;
	--cpus) CPUS=$2; shift 2 ;;
	*) usage ;;
	esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || usage
case $CPUS in shared | split) ;; *) usage ;; esac
[ "$(id -u)" = 0 ] || { echo "$0: needs root (FUSE mounts, package install)" >&2; exit 1; }

# The test library gives the private work directory $T, start_nginx and the cleanup of
# what it started; its watchdog TERMs this script after TEST_TIMEOUT seconds, which
# bounds radosgw and nginx too (the EXIT trap stops them by PID).
TEST_TIMEOUT=${S3_BENCH_MAX_S:-7200} # read by functions.sh
# shellcheck disable=SC2034 # read by functions.sh
top_srcdir=$TOP top_builddir=$TOP
# shellcheck source=SCRIPTDIR/../../tests/lib/functions.sh
. "$TOP/tests/lib/functions.sh"
# shellcheck source=SCRIPTDIR/../../tests/lib/radosgw.sh
. "$TOP/tests/lib/radosgw.sh"
# lib.sh last: its wait_for/free_port/requires are the ones used from here on.
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"
# The tests' ways out (TAP skip/bail) are failures here.
skip_all() { die "$*"; }
bail() { die "$*"; }

requires nginx curl python3 "${QEMU:-qemu-system-x86_64}"
CLIENT_CPUS=
if [ "$CPUS" = split ]; then
	requires taskset
	[ "$(nproc)" -ge 2 ] || die "--cpus split needs two CPUs or more"
	CLIENT_CPUS=1-$(($(nproc) - 1))
fi
# pin_self CPULIST: this script's CPUs, and those of everything it starts from now on.
pin_self() { [ -z "$CLIENT_CPUS" ] || taskset -p -c "$1" $$ >/dev/null; }
[ -f "$BENCH_IMAGE" ] || die "no $BENCH_IMAGE: run contrib/bench/mkimage.sh first"
AHEADFS_BIN=$(tool aheadfs)
[ -n "$AHEADFS_BIN" ] || die "aheadfs is not built"
# Not `| grep -q`: it exits at the first match, aheadfs then dies of SIGPIPE writing the
# rest of its help, and pipefail turns that into "no S3 options" (seen once in three).
grep -q credentials_file <<<"$("$AHEADFS_BIN" --help 2>&1 || true)" ||
	die "$AHEADFS_BIN has no S3 options"

OUT=${OUT:-$BENCH_CACHE/results/s3-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/logs" "$OUT/bin" "$OUT/learned"
RECORD=$OUT/runs.jsonl
: >"$RECORD"
# One run measures one build.
cp "$AHEADFS_BIN" "$OUT/bin/aheadfs"
export AHEADFS_BUILDDIR=$OUT/bin

CUR_STATE='' CUR_SYS='' CUR_EXTRA='' CUR_LEARNED='' CUR_TARGET=''
bench_cleanup() {
	set +e
	[ -z "$CUR_STATE" ] || { sys_cmd down "$CUR_STATE" >/dev/null 2>&1; rm -rf "$CUR_STATE"; }
	stop_radosgw
	[ -z "${NGINX_PID:-}" ] || stop_nginx
	cleanup # functions.sh: its PIDs, mounts, watchdog, then $T
}
trap bench_cleanup EXIT

# sys_cmd ARGS...: the current system's script with the current configuration's
# environment (extra aheadfs options, learned state directory).
sys_cmd() {
	local extra=$CUR_EXTRA
	[ -z "$MOUNT_OPTS" ] || extra=${extra:+$extra,}$MOUNT_OPTS
	AHEADFS_EXTRA_OPTS=$extra AHEADFS_LEARNED_STATE=$CUR_LEARNED \
		"$BENCH_DIR/systems/$CUR_SYS.sh" "$@"
}
record() { python3 "$BENCH_DIR/s3report.py" record "$RECORD" "$@"; }
load1() { cut -d' ' -f1 /proc/loadavg; }
clock() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(clock)" 'BEGIN { printf "%.3f", e - s }'; }
stat_of() { # stat_of STATS.json KEY: origin.KEY from aheadfs's stats JSON, empty if none
	python3 -c 'import json, sys
try:
    print(json.load(open(sys.argv[1]))["origin"][sys.argv[2]])
except Exception:
    pass' "$1" "$2"
}

{
	echo "commit: $(git -C "$TOP" rev-parse HEAD 2>/dev/null || echo unknown)"
	echo "aheadfs: $AHEADFS_BIN"
	echo "machine: $(uname -srm), $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM"
	echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "radosgw: $(radosgw --version 2>/dev/null | head -n 1)"
	echo "nginx: $(nginx -v 2>&1)"
	echo "curl: $(curl --version | head -n 1)"
	echo "qemu: $("${QEMU:-qemu-system-x86_64}" --version | head -n 1)"
	echo "runs: $RUNS, image: $BENCH_IMAGE ($(stat -c %s "$BENCH_IMAGE") bytes)"
	echo "extra mount options: ${MOUNT_OPTS:-none}"
	if [ -n "$CLIENT_CPUS" ]; then
		echo "cpus: split: the origins on CPU 0, curl, aheadfs, dd and qemu on CPUs $CLIENT_CPUS"
	else
		echo "cpus: shared: origins and clients on all $(nproc) CPUs"
	fi
} >"$OUT/meta.txt"
T_START=$(now)

# --- the origins ---------------------------------------------------------------------
log "starting radosgw"
pin_self 0 # the origins (and the upload) inherit it
start_radosgw
# Made up per run, never exported (ps e would show it), never on a command line.
S3_AK="AKBENCH$(python3 -c 'import secrets; print(secrets.token_hex(6).upper())')"
S3_SK="$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')"
radosgw_user bench
s3_mb bench || die "cannot create the bucket"
IMG_NAME=$(basename "$BENCH_IMAGE")
IMG_BYTES=$(stat -c %s "$BENCH_IMAGE")
log "uploading $IMG_NAME ($IMG_BYTES bytes) to radosgw"
t0=$(clock)
s3_put "bench/$IMG_NAME" "$BENCH_IMAGE" || die "cannot upload $IMG_NAME"
echo "upload to radosgw: $(since "$t0") s" >>"$OUT/meta.txt"
umask 077
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$S3_AK" "$S3_SK" >"$T/creds"
umask 022
S3_URL=s3://bench/$IMG_NAME
S3_OPTS="region=us-east-1,endpoint=$RGW_URL,path_style,credentials_file=$T/creds"

start_nginx
# The same file: a hard link (a symbolic one across file systems).
ln "$BENCH_IMAGE" "$T/www/$IMG_NAME" 2>/dev/null || ln -s "$BENCH_IMAGE" "$T/www/$IMG_NAME"
NGINX_URL=$BASE_URL/$IMG_NAME
[ "$(curl -sfI "$NGINX_URL" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Ll]ength: //p')" = "$IMG_BYTES" ] ||
	die "nginx does not serve $NGINX_URL"
echo "origins: radosgw $RGW_URL, nginx $BASE_URL" >>"$OUT/meta.txt"
pin_self "$CLIENT_CPUS"
log "radosgw at $RGW_URL, nginx at $BASE_URL"

# use_config NAME: set the system and environment of a configuration; URL for it.
use_config() {
	CUR_EXTRA='' CUR_LEARNED=''
	case $1 in
	local) CUR_SYS=local URL=$NGINX_URL ;;
	nginx-first) CUR_SYS=aheadfs-cold URL=$NGINX_URL ;;
	nginx-learned) CUR_SYS=aheadfs-learned URL=$NGINX_URL CUR_LEARNED=$OUT/learned/nginx ;;
	s3-first) CUR_SYS=aheadfs-cold URL=$S3_URL CUR_EXTRA=$S3_OPTS ;;
	s3-learned) CUR_SYS=aheadfs-learned URL=$S3_URL CUR_EXTRA=$S3_OPTS CUR_LEARNED=$OUT/learned/s3 ;;
	*) die "unknown configuration $1" ;;
	esac
}

# present CONFIG: bring the configuration up in a fresh CUR_STATE; the path (or drive)
# in CUR_TARGET. Not in a subshell: the EXIT trap must know CUR_STATE.
present() {
	use_config "$1"
	CUR_STATE=$(mktemp -d /tmp/aheadfs-s3bench.XXXXXX)
	CUR_TARGET=
	sys_cmd up "$URL" "$CUR_STATE" >"$CUR_STATE/up.out" 2>"$CUR_STATE/up.err" || return 1
	CUR_TARGET=$(tail -n 1 "$CUR_STATE/up.out")
}

# withdraw TAG: save the stats and logs of CUR_STATE under TAG, tear it down.
withdraw() {
	local f
	sys_cmd stats "$CUR_STATE" >"$OUT/logs/$1.stats.json" 2>/dev/null || true
	[ -s "$OUT/logs/$1.stats.json" ] || rm -f "$OUT/logs/$1.stats.json"
	sys_cmd down "$CUR_STATE" >/dev/null 2>>"$CUR_STATE/down.err" || true
	for f in "$CUR_STATE"/*.log "$CUR_STATE"/*.err; do
		[ -s "$f" ] && cp "$f" "$OUT/logs/$1.$(basename "$f")"
	done
	rm -rf "$CUR_STATE"
	CUR_STATE=
}

# origin_of TAG: `requests=N bytes=N retries=N failures=N` from the saved stats JSON.
origin_of() {
	local f=$OUT/logs/$1.stats.json k
	[ -f "$f" ] || return 0
	for k in requests bytes retries failures; do
		printf '%s=%s ' "$k" "$(stat_of "$f" "$k")"
	done
}

# --- 1. cold sequential throughput ------------------------------------------------------
# seq_curl ORIGIN BYTES RUN / seq_mount ORIGIN BYTES RUN
seq_curl() {
	local origin=$1 bytes=$2 run=$3 t0 s rc=0 range=()
	[ "$bytes" = "$IMG_BYTES" ] || range=(-r "0-$((bytes - 1))")
	t0=$(clock)
	if [ "$origin" = s3 ]; then
		s3_curl GET "/bench/$IMG_NAME" -f -o /dev/null "${range[@]}" || rc=$?
	else
		curl -sSf -o /dev/null "${range[@]}" "$NGINX_URL" || rc=$?
	fi
	s=$(since "$t0")
	record kind=seq origin="$origin" reader=curl size="$bytes" run="$run" \
		ok="$([ "$rc" = 0 ] && echo 1 || echo 0)" seconds="$s" load="$(load1)"
	log "seq $origin curl $bytes run $run: $s s (rc $rc)"
}
seq_mount() {
	local origin=$1 bytes=$2 run=$3 tag t0 s rc=0 count=()
	tag=seq.$origin.$bytes.$run
	[ "$bytes" = "$IMG_BYTES" ] || count=(count=$((bytes / 1048576)))
	if ! present "$origin-first"; then
		record kind=seq origin="$origin" reader=mount size="$bytes" run="$run" ok=0 \
			reason="up failed: $(tail -n 1 "$CUR_STATE/up.err")"
		withdraw "$tag"
		return
	fi
	t0=$(clock)
	dd if="$CUR_TARGET" of=/dev/null bs=1M "${count[@]}" status=none || rc=$?
	s=$(since "$t0")
	withdraw "$tag"
	# shellcheck disable=SC2046 # key=value words
	record kind=seq origin="$origin" reader=mount size="$bytes" run="$run" \
		ok="$([ "$rc" = 0 ] && echo 1 || echo 0)" seconds="$s" load="$(load1)" $(origin_of "$tag")
	log "seq $origin mount $bytes run $run: $s s (rc $rc)"
}

if [ "$DO_SEQ" = 1 ]; then
	for ((r = 1; r <= RUNS; r++)); do
		for bytes in 268435456 "$IMG_BYTES"; do
			for origin in s3 nginx; do
				seq_curl "$origin" "$bytes" "$r"
				seq_mount "$origin" "$bytes" "$r"
			done
		done
	done
fi

# --- 2. the VM boot ---------------------------------------------------------------------
# boot_one CONFIG RUN (RUN "train": the learned configuration's untimed first boot)
boot_one() {
	local config=$1 run=$2 tag rc=0 res='' reason=''
	tag=boot.$config.$run
	log "boot $config run $run"
	if ! present "$config"; then
		reason="up failed: $(tail -n 1 "$CUR_STATE/up.err")"
	else
		"$BENCH_DIR/boot.sh" --timeout "$TIMEOUT" --log "$OUT/logs/$tag.serial" "$CUR_TARGET" \
			>"$CUR_STATE/boot.out" 2>"$CUR_STATE/boot.err" || rc=$?
		res=$(tail -n 1 "$CUR_STATE/boot.out")
		[ "$rc" = 0 ] || reason="boot failed: $(tail -n 1 "$CUR_STATE/boot.err")"
		sys_cmd alive "$CUR_STATE" || reason="${reason:+$reason; }aheadfs exited"
	fi
	withdraw "$tag"
	# shellcheck disable=SC2046,SC2086 # key=value words
	record kind=boot config="$config" run="$run" ok="$([ -z "$reason" ] && echo 1 || echo 0)" \
		reason="$reason" load="$(load1)" $res $(origin_of "$tag")
	log "boot $config run $run: ${reason:-$res} ($(origin_of "$tag"))"
}

if [ "$DO_BOOT" = 1 ]; then
	IFS=, read -ra CONFIGS <<<"$CONFIGS_ARG"
	for ((r = 1; r <= RUNS; r++)); do
		for c in "${CONFIGS[@]}"; do
			[ "$r" != 1 ] || [[ $c != *-learned ]] || boot_one "$c" train
			boot_one "$c" "$r"
		done
	done
fi

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg); wall time $(elapsed "$T_START") s" >>"$OUT/meta.txt"
cp "$RGW_CONF" "$OUT/logs/ceph.conf" 2>/dev/null || true
python3 "$BENCH_DIR/s3report.py" report "$OUT"
log "done in $(elapsed "$T_START") s: $OUT/s3.md"
