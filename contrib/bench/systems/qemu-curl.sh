#!/bin/bash
# systems/qemu-curl.sh: qemu's own curl block driver (file.driver=http) with
# its default 256 KiB readahead.  Presents a qemu drive spec, so it runs the
# boot workload only.  Needs qemu-block-extra (block-curl.so).
# Interface: see system_main in ../lib.sh.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

READAHEAD=${QEMU_CURL_READAHEAD:-}

sys_check() {
	if ! ls /usr/lib/x86_64-linux-gnu/qemu/block-curl.so >/dev/null 2>&1; then
		echo "qemu curl driver missing: apt-get install qemu-block-extra"
		exit 2
	fi
}
sys_kinds() { echo drive; }
sys_up() {
	local spec="file.driver=http,file.url=$1,file.timeout=60"
	[ -z "$READAHEAD" ] || spec="$spec,file.readahead=$READAHEAD"
	printf '%s\n' "$spec"
}
sys_down() { :; }

system_main "$@"
