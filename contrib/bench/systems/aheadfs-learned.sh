#!/bin/bash
# systems/aheadfs-learned.sh: aheadfs, mode "learned" (see aheadfs.sh).
set -euo pipefail
AHEADFS_MODE=learned exec "$(dirname "$0")/aheadfs.sh" "$@"
