#!/bin/bash
# systems/local.sh: the local image file itself, the limit every other system
# is measured against.  The URL is ignored: `up` prints the cached image path
# (AHEADFS_BENCH_IMAGE, default /var/tmp/aheadfs-bench/debian.raw).
# Interface: see system_main in ../lib.sh.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

sys_check() {
	[ -f "$BENCH_IMAGE" ] || { echo "no image: run mkimage.sh"; exit 2; }
}
sys_kinds() { echo file; }
sys_up() { printf '%s\n' "$BENCH_IMAGE"; }
sys_down() { :; }

system_main "$@"
