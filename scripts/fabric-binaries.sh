#!/usr/bin/env bash
# Builds peer, orderer, configtxgen, configtxlator, osnadmin and cryptogen from source with the Go
# toolchain (CGO_ENABLED=0) into $FABRIC_BIN. Idempotent: skips when the binaries
# for the pinned commit are already there.
#
# The pin lives in network/fabric-build/go.mod (with go.sum for integrity). See
# network/README.md for why it is not Fabric v3.1.5.
set -euo pipefail
source "$(dirname "$0")/env.sh"
log() { printf '\033[1m[fabric]\033[0m %s\n' "$*"; }
die() { printf '[fabric] error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "Go is not installed (need Go >= 1.21 on PATH)"
mod="$REPO_ROOT/network/fabric-build"
pin="$(awk '{for (i = 1; i < NF; i++) if ($i == "github.com/hyperledger/fabric") print $(i+1)}' "$mod/go.mod")"
stamp="$FABRIC_BIN/.pin"
tools=(peer orderer configtxgen configtxlator osnadmin cryptogen)
ok=1
for t in "${tools[@]}"; do [ -x "$FABRIC_BIN/$t" ] || ok=0; done
[ -f "$FABRIC_BIN/../config/core.yaml" ] || ok=0
if [ "$ok" = 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pin" ]; then
  log "binaries for fabric@$pin already in $FABRIC_BIN"
  exit 0
fi
mkdir -p "$FABRIC_BIN"
log "building ${tools[*]} from github.com/hyperledger/fabric@$pin (CGO_ENABLED=0; first build takes ~2-5 min)"
start=$(date +%s)
pkgs=()
for t in "${tools[@]}"; do pkgs+=("github.com/hyperledger/fabric/cmd/$t"); done
( cd "$mod" && go mod download github.com/hyperledger/fabric ) \
  || die "the Go module proxy did not serve github.com/hyperledger/fabric@$pin (see the error above)"
( cd "$mod" && CGO_ENABLED=0 go build -trimpath -o "$FABRIC_BIN/" "${pkgs[@]}" ) \
  || die "go build of the Fabric binaries failed"
# the sample core.yaml / orderer.yaml of the same commit: the launcher patches copies
src="$(cd "$mod" && go mod download -json github.com/hyperledger/fabric | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -f "$src/sampleconfig/core.yaml" ] || die "sampleconfig not found in the module cache ($src)"
mkdir -p "$FABRIC_BIN/../config"
cp "$src/sampleconfig/core.yaml" "$src/sampleconfig/orderer.yaml" "$FABRIC_BIN/../config/"
chmod u+w "$FABRIC_BIN/../config/"*.yaml
echo "$pin" > "$stamp"
log "built in $(( $(date +%s) - start ))s into $FABRIC_BIN"
