#!/usr/bin/env bash
# The README's demo command (after bootstrap): runs the most complete real pipeline.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$REPO_ROOT"
exec synthreg demo --out "${SYNTHREG_DEMO_OUT:-$REPO_ROOT/.synthreg/demo}" "$@"
