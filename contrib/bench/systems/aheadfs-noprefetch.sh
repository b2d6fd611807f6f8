#!/bin/bash
# systems/aheadfs-noprefetch.sh: aheadfs, mode "noprefetch" (see aheadfs.sh).
set -euo pipefail
AHEADFS_MODE=noprefetch exec "$(dirname "$0")/aheadfs.sh" "$@"
