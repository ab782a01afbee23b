#!/usr/bin/env bash
# Builds peer, orderer, configtxgen, configtxlator, osnadmin and cryptogen from source with the Go
# toolchain (CGO_ENABLED=0) into $FABRIC_BIN. Idempotent: skips when the binaries
# for the pinned commit and patches are already there.
#
# The pin lives in network/fabric-build/go.mod (with go.sum for integrity). See
# network/README.md for why it is not Fabric v3.1.5. The patches in
# network/fabric-build/patches/ are applied (git apply) to a copy of the pinned source
# before the build; network/README.md says why each exists.
set -euo pipefail
source "$(dirname "$0")/env.sh"
log() { printf '\033[1m[fabric]\033[0m %s\n' "$*"; }
die() { printf '[fabric] error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "Go is not installed (need Go >= 1.21 on PATH)"
mod="$REPO_ROOT/network/fabric-build"
pin="$(awk '{for (i = 1; i < NF; i++) if ($i == "github.com/hyperledger/fabric") print $(i+1)}' "$mod/go.mod")"
stamp="$FABRIC_BIN/.pin"
patches=("$mod"/patches/*.patch)
[ -e "${patches[0]}" ] || patches=()
want="$pin${patches:+ patches $(cat "${patches[@]}" | sha256sum | cut -c1-16)}"
tools=(peer orderer configtxgen configtxlator osnadmin cryptogen)
ok=1
for t in "${tools[@]}"; do [ -x "$FABRIC_BIN/$t" ] || ok=0; done
[ -f "$FABRIC_BIN/../config/core.yaml" ] || ok=0
if [ "$ok" = 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  log "binaries for fabric@$want already in $FABRIC_BIN"
  exit 0
fi
mkdir -p "$FABRIC_BIN"
log "building ${tools[*]} from github.com/hyperledger/fabric@$pin, ${#patches[@]} patch(es) (CGO_ENABLED=0; first build takes ~2-5 min)"
start=$(date +%s)
pkgs=()
for t in "${tools[@]}"; do pkgs+=("github.com/hyperledger/fabric/cmd/$t"); done
( cd "$mod" && go mod download github.com/hyperledger/fabric ) \
  || die "the Go module proxy did not serve github.com/hyperledger/fabric@$pin (see the error above)"
src="$(cd "$mod" && go mod download -json github.com/hyperledger/fabric | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -f "$src/sampleconfig/core.yaml" ] || die "sampleconfig not found in the module cache ($src)"
# The patched copy of the source and a copy of the build module that points at it; the
# module cache and network/fabric-build stay untouched.
work="$SYNTHREG_CACHE/fabric/build"
rm -rf "$work" && mkdir -p "$work"
cp -r "$src" "$work/fabric" && chmod -R u+w "$work/fabric"
for p in "${patches[@]}"; do
  ( cd "$work/fabric" && git apply -p1 "$p" ) || die "patch $(basename "$p") does not apply to fabric@$pin"
  log "applied $(basename "$p")"
done
cp "$mod/go.mod" "$mod/go.sum" "$mod/tools.go" "$work/"
( cd "$work" && go mod edit -replace "github.com/hyperledger/fabric=$work/fabric" ) \
  || die "go mod edit -replace failed"
( cd "$work" && CGO_ENABLED=0 go build -trimpath -o "$FABRIC_BIN/" "${pkgs[@]}" ) \
  || die "go build of the Fabric binaries failed"
# the sample core.yaml / orderer.yaml of the same commit: the launcher patches copies
mkdir -p "$FABRIC_BIN/../config"
cp "$src/sampleconfig/core.yaml" "$src/sampleconfig/orderer.yaml" "$FABRIC_BIN/../config/"
chmod u+w "$FABRIC_BIN/../config/"*.yaml
rm -rf "$work"
echo "$want" > "$stamp"
log "built in $(( $(date +%s) - start ))s into $FABRIC_BIN"
