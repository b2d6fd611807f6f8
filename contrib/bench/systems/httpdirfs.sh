#!/bin/bash
# systems/httpdirfs.sh: httpdirfs --cache in single-file mode (the image
# appears as MOUNTPOINT/NAME), cache in STATEDIR, fresh each time.
# Interface: see system_main in ../lib.sh.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

sys_check() {
	command -v httpdirfs >/dev/null || { echo "httpdirfs missing: apt-get install httpdirfs"; exit 2; }
}
sys_kinds() { echo file; }
sys_up() {
	local url=$1 dir=$2
	rm -rf "$dir/cache"
	mkdir -p "$dir/mnt" "$dir/cache"
	fuse_up "$dir" httpdirfs "$dir/mnt/$(image_name "$url")" \
		httpdirfs -f --cache --cache-location "$dir/cache" --single-file-mode \
		"$url" "$dir/mnt"
}
sys_down() {
	fuse_down "$1" httpdirfs "$1/mnt"
	rm -rf "$1/cache"
}

system_main "$@"
