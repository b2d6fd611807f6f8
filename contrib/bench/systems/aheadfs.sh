#!/bin/bash
# systems/aheadfs.sh: aheadfs (the newest <builddir>/aheadfs, see tool() in
# ../lib.sh) in one of three modes, chosen by AHEADFS_MODE; the wrappers
# aheadfs-noprefetch.sh, aheadfs-cold.sh and aheadfs-learned.sh set it:
#
#   noprefetch  -o prefetch=off, fresh cache_dir
#   cold        first mount: fresh cache_dir and fresh state_dir
#   learned     second mount: fresh cache_dir, state_dir kept across mounts in
#               AHEADFS_LEARNED_STATE (run.sh trains it with aheadfs-cold's first
#               run, see AHEADFS_KEEP_STATE, or else with one untimed run)
#
# AHEADFS_KEEP_STATE, when set, makes a cold mount leave its state_dir there
# when it goes down: the first mount's learned state, for a learned mount.
#
# AHEADFS_EXTRA_OPTS, when set, is appended to the -o option list of every
# mode: e.g. `region=us-east-1,endpoint=http://127.0.0.1:PORT,path_style,
# credentials_file=FILE` to mount an s3://BUCKET/KEY URL (see ../s3.sh).  It
# goes on aheadfs's command line, so it must never hold a secret: name a
# credentials file instead.
#
# Options the binary does not have yet are detected from `aheadfs --help`:
# `check` then says "not yet: ..." (exit 2) or, where the run is still
# meaningful, prints a note (exit 0) that the report shows next to the row.
# Interface: see system_main in ../lib.sh.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

MODE=${AHEADFS_MODE:-}
case $MODE in
noprefetch | cold | learned) ;;
*) die "AHEADFS_MODE must be noprefetch, cold or learned (use the aheadfs-MODE.sh wrappers)" ;;
esac
LEARNED=${AHEADFS_LEARNED_STATE:-$BENCH_CACHE/learned-state}

AHEADFS=$(tool aheadfs)
HELP=
[ -z "$AHEADFS" ] || HELP=$("$AHEADFS" --help 2>&1 || true)
has_opt() { grep -q -- "$1" <<<"$HELP"; }

sys_check() {
	[ -n "$AHEADFS" ] || { echo "not yet: no aheadfs binary built"; exit 2; }
	has_opt cache_dir || { echo "not yet: aheadfs has no cache_dir option"; exit 2; }
	case $MODE in
	noprefetch)
		has_opt prefetch || echo "aheadfs has no prefetch option yet: ran as built (no prefetcher)"
		;;
	cold)
		has_opt prefetch || echo "aheadfs has no prefetcher yet: ran as built"
		;;
	learned)
		has_opt state_dir || { echo "not yet: aheadfs has no state_dir option"; exit 2; }
		;;
	esac
}
sys_kinds() { echo file; }
sys_up() {
	local url=$1 dir=$2 opts
	rm -rf "$dir/cache"
	mkdir -p "$dir/mnt" "$dir/cache"
	opts="cache_dir=$dir/cache"
	case $MODE in
	noprefetch)
		! has_opt prefetch || opts="$opts,prefetch=off"
		! has_opt state_dir || { rm -rf "$dir/state" && mkdir -p "$dir/state" && opts="$opts,state_dir=$dir/state"; }
		;;
	cold)
		! has_opt state_dir || { rm -rf "$dir/state" && mkdir -p "$dir/state" && opts="$opts,state_dir=$dir/state"; }
		;;
	learned)
		mkdir -p "$LEARNED"
		opts="$opts,state_dir=$LEARNED"
		;;
	esac
	[ -z "${AHEADFS_EXTRA_OPTS:-}" ] || opts="$opts,$AHEADFS_EXTRA_OPTS"
	fuse_up "$dir" aheadfs "$dir/mnt/$(image_name "$url")" \
		"$AHEADFS" -f -o "$opts" "$url" "$dir/mnt"
}
sys_stats() {
	if [ -f "$1/mnt/.aheadfs/stats" ]; then
		cat "$1/mnt/.aheadfs/stats"
	fi
}
sys_down() {
	fuse_down "$1" aheadfs "$1/mnt"
	# aheadfs saves what it learned as it exits: the state is whole once it is down.
	if [ "$MODE" = cold ] && [ -n "${AHEADFS_KEEP_STATE:-}" ] && [ -d "$1/state" ]; then
		rm -rf "$AHEADFS_KEEP_STATE"
		mkdir -p "$(dirname "$AHEADFS_KEEP_STATE")"
		cp -a "$1/state" "$AHEADFS_KEEP_STATE"
	fi
	rm -rf "$1/cache" "$1/state"
}

system_main "$@"
