#!/bin/bash
# systems/nbdkit.sh: nbdkit's curl plugin under the readahead and cache
# filters (cache-on-read, cache in STATEDIR), served over NBD on a Unix socket
# to qemu's nbd block driver.  Presents a qemu drive spec, so it runs the boot
# workload only (this kernel has no nbd module for a /dev/nbdX).
# Interface: see system_main in ../lib.sh.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

sys_check() {
	if ! command -v nbdkit >/dev/null ||
		! nbdkit curl --version >/dev/null 2>&1; then
		echo "nbdkit curl plugin missing: apt-get install nbdkit"
		exit 2
	fi
}
sys_kinds() { echo drive; }
sys_up() {
	local url=$1 dir=$2
	mkdir -p "$dir/cache"
	TMPDIR=$dir/cache start_bounded "$dir" nbdkit nbdkit -f -U "$dir/nbd.sock" \
		--filter=readahead --filter=cache curl "url=$url" cache-on-read=true
	if ! wait_for 30 test -S "$dir/nbd.sock"; then
		fail_with_log "$dir" nbdkit "nbdkit: no socket within 30 s"
		return 1
	fi
	printf '%s\n' "file.driver=nbd,file.server.type=unix,file.server.path=$dir/nbd.sock"
}
sys_down() {
	kill_pidfile "$1/nbdkit.pid"
	rm -rf "$1/cache" "$1/nbd.sock"
}

system_main "$@"
