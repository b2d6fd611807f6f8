#!/bin/bash
# systems/aheadfs-cold.sh: aheadfs, mode "cold" (see aheadfs.sh).
set -euo pipefail
AHEADFS_MODE=cold exec "$(dirname "$0")/aheadfs.sh" "$@"
