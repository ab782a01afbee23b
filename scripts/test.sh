#!/usr/bin/env bash
# The README's test command (after bootstrap): static checks (scripts/lint.sh: go vet,
# ruff, mypy), chaincode unit tests, the container engine and images
# (scripts/containers.sh), then a real local Fabric network, then every
# Python test (unit and integration) against it, then the network is torn down
# whatever happened.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$REPO_ROOT"
log() { printf '\033[1m[test]\033[0m %s\n' "$*"; }
# Wall time of each phase, printed as it ends (the README's test-time line comes from these).
phase_start=$SECONDS
took() { log "$1 took $((SECONDS - phase_start)) s"; phase_start=$SECONDS; }

export SYNTHREG_NETWORK_HOME="${SYNTHREG_NETWORK_HOME:-$REPO_ROOT/.synthreg/test-network}"
export SYNTHREG_REQUIRE_NETWORK=1

"$REPO_ROOT/scripts/lint.sh"
took "lint"

log "go test ./... (chaincode)"
(cd chaincode && go test -count=1 ./...)
took "go test"

# Podman, docker-compose and the images for tests/integration/test_compose.py (before the
# network starts: a cold image build is minutes of CPU)
log "container engine and images (scripts/containers.sh)"
"$REPO_ROOT/scripts/containers.sh" \
  || { echo "[test] error: scripts/containers.sh failed (the compose test needs podman, docker-compose and the images)" >&2; exit 1; }
took "container engine and images"

cleanup() {
  log "tearing the network down"
  synthreg network down --home "$SYNTHREG_NETWORK_HOME" --wipe || true
}
trap cleanup EXIT
log "starting the local Fabric network in $SYNTHREG_NETWORK_HOME"
synthreg network up --home "$SYNTHREG_NETWORK_HOME"
took "network up"

log "pytest (unit + integration)"
set +e
python -m pytest tests --durations=20 "$@"
rc=$?
set -e
took "pytest"
log "total (after bootstrap) $SECONDS s"
if [ "$rc" = 5 ]; then
  echo "[test] error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
