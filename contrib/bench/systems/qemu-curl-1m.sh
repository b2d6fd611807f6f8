#!/bin/bash
# systems/qemu-curl-1m.sh: qemu's curl block driver with a 1 MiB readahead
# (file.readahead=1048576) instead of its 256 KiB default.  Boot workload only.
set -euo pipefail
QEMU_CURL_READAHEAD=1048576 exec "$(dirname "$0")/qemu-curl.sh" "$@"
