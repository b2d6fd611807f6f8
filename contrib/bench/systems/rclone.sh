#!/bin/bash
# systems/rclone.sh: rclone mount of an on-the-fly http remote (the URL's
# directory) with --vfs-cache-mode full and --vfs-read-ahead, read-only, cache
# in STATEDIR, fresh each time.  rclone lists the directory to find the file,
# so the origin must answer GET DIR/ with an HTML index.
# Interface: see system_main in ../lib.sh.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

READ_AHEAD=${RCLONE_READ_AHEAD:-16M}
# rclone's default first range is 128 MiB (doubling without limit): a boot's scattered
# reads then each open a 128 MiB stream and abandon it, 1.2 GB per boot. RCLONE_CHUNK
# and RCLONE_CHUNK_LIMIT set --vfs-read-chunk-size and --vfs-read-chunk-size-limit
# (empty: rclone's defaults).
CHUNK=${RCLONE_CHUNK-}
CHUNK_LIMIT=${RCLONE_CHUNK_LIMIT-}

sys_check() {
	command -v rclone >/dev/null || { echo "rclone missing: apt-get install rclone"; exit 2; }
}
sys_kinds() { echo file; }
sys_up() {
	local url=$1 dir=$2
	rm -rf "$dir/cache"
	mkdir -p "$dir/mnt" "$dir/cache"
	if ! curl -fs -o /dev/null "${url%/*}/"; then
		log "rclone: the origin has no directory index at ${url%/*}/ (rclone's http remote lists the directory to find the file)"
		return 1
	fi
	RCLONE_CONFIG=/dev/null fuse_up "$dir" rclone "$dir/mnt/$(image_name "$url")" \
		rclone mount ":http:" "$dir/mnt" --http-url "${url%/*}/" \
		--read-only --vfs-cache-mode full --vfs-read-ahead "$READ_AHEAD" \
		--cache-dir "$dir/cache" --dir-cache-time 1h --no-modtime \
		${CHUNK:+--vfs-read-chunk-size "$CHUNK"} \
		${CHUNK_LIMIT:+--vfs-read-chunk-size-limit "$CHUNK_LIMIT"}
}
sys_down() {
	fuse_down "$1" rclone "$1/mnt"
	rm -rf "$1/cache"
}

system_main "$@"
