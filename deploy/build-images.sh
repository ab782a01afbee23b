#!/usr/bin/env bash
# Builds the container images of one registry, with podman, from Debian packages and PyPI
# only (no image registry is reachable, DESIGN.md §10):
#   1. localhost/synthreg-base:<suite>  debootstrap (minbase + python3, venv, CA certificates,
#      the host's extra CAs trusted) imported with `podman import`; the rootfs tarball is
#      cached in $SYNTHREG_CACHE/images/, keyed by the Debian suite.
#   2. localhost/synthreg:latest        deploy/Dockerfile on top: the pinned Python packages
#      (own layer, keyed by requirements.txt, so code changes do not rebuild the venv), the
#      Fabric binaries and the chaincode servers (built here with Go), then the code.
# Usage: deploy/build-images.sh [--suite bookworm] [--tag localhost/synthreg:latest] [--rebuild-base]
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
log() { printf '\033[1m[images]\033[0m %s\n' "$*"; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

SUITE=bookworm
TAG=localhost/synthreg:latest
REBUILD_BASE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) SUITE="$2"; shift 2 ;;
    --tag) TAG="$2"; shift 2 ;;
    --rebuild-base) REBUILD_BASE=1; shift ;;
    *) die "unknown argument $1" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "run as root (podman here runs rootful with runc, DESIGN.md §10)"
for t in podman debootstrap go; do command -v "$t" >/dev/null || die "$t not found (apt-get install podman debootstrap; Go for the chaincode)"; done
grep -qs 'runtime *= *"runc"' /etc/containers/containers.conf \
  || die "/etc/containers/containers.conf must set runtime = \"runc\" and default_ulimits (deploy/README.md)"

IMAGES="$SYNTHREG_CACHE/images"
BASE_TAR="$IMAGES/debian-base-$SUITE.tar"
BASE_IMG="localhost/synthreg-base:$SUITE"
mkdir -p "$IMAGES"
t0=$(date +%s)

# --- 1. base image -------------------------------------------------------------
if [ "$REBUILD_BASE" = 1 ] || [ ! -s "$BASE_TAR" ]; then
  log "debootstrap $SUITE (minbase) -> $BASE_TAR"
  root="$(mktemp -d "$IMAGES/rootfs.XXXXXX")"
  trap 'rm -rf "$root"' EXIT
  nice -n 10 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$root" >"$IMAGES/debootstrap-$SUITE.log" 2>&1 \
    || die "debootstrap failed (log: $IMAGES/debootstrap-$SUITE.log)"
  # HTTPS to the package registries goes through a CA the host trusts: the image must too
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  fi
  chroot "$root" update-ca-certificates >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$BASE_TAR.tmp" .
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$root"; trap - EXIT
  podman rmi -f "$BASE_IMG" >/dev/null 2>&1 || true
fi
if ! podman image exists "$BASE_IMG"; then
  log "podman import $BASE_TAR -> $BASE_IMG"
  podman import --quiet "$BASE_TAR" "$BASE_IMG" >/dev/null
fi

# --- 2. build context (outside the repo; stable files keep their mtimes) ---------
"$REPO_ROOT/scripts/fabric-binaries.sh"
CTX="$IMAGES/context"
mkdir -p "$CTX/fabric" "$CTX/chaincode-bin" "$CTX/src"
# requirements.txt: [project].dependencies only (no dev/bench extras); rewritten only when
# they change, so the venv layer stays cached
python3 - "$REPO_ROOT/pyproject.toml" >"$CTX/requirements.txt.new" <<'PYEOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PYEOF
cmp -s "$CTX/requirements.txt.new" "$CTX/requirements.txt" && rm "$CTX/requirements.txt.new" \
  || mv "$CTX/requirements.txt.new" "$CTX/requirements.txt"
rsync_dir() {  # copy $1 to $2 keeping mtimes (cp -a); remove what is gone
  rm -rf "$2.new"; cp -a "$1" "$2.new"; rm -rf "$2"; mv "$2.new" "$2"
}
rsync_dir "$FABRIC_BIN" "$CTX/fabric/bin"
rsync_dir "$FABRIC_BIN/../config" "$CTX/fabric/config"
for cc in ganledger keyvault; do
  (cd "$REPO_ROOT/chaincode" && CGO_ENABLED=0 nice -n 10 go build -trimpath -o "$CTX/chaincode-bin/$cc" "./cmd/$cc") \
    || die "go build of chaincode $cc failed"
done
rm -rf "$CTX/src"; mkdir -p "$CTX/src"
(cd "$REPO_ROOT" && tar --exclude='__pycache__' --exclude='*.pyc' -cf - pyproject.toml services network/builders) \
  | tar -C "$CTX/src" -xf -
cp "$REPO_ROOT/deploy/Dockerfile" "$REPO_ROOT/deploy/synthreg-entry.sh" "$CTX/"

# --- 3. the synthreg image -----------------------------------------------------
log "podman build $TAG (first build downloads torch and its CUDA wheels, ~3 GB)"
old_id=$(podman image inspect "$TAG" --format '{{.Id}}' 2>/dev/null || true)
nice -n 10 podman build --network=host --layers --build-arg "BASE=$BASE_IMG" -t "$TAG" -f "$CTX/Dockerfile" "$CTX"
# the image this tag named before is now untagged: remove it unless a container uses it
# (its layers shared with the new image stay)
if [ -n "$old_id" ] && [ "$old_id" != "$(podman image inspect "$TAG" --format '{{.Id}}')" ]; then
  podman rmi "$old_id" >/dev/null 2>&1 || log "kept the previous image ${old_id:0:12} (a container uses it)"
fi
size=$(podman image inspect "$TAG" --format '{{.Size}}')
log "$TAG built in $(( $(date +%s) - t0 ))s, $(( size / 1000000 )) MB"
