#!/usr/bin/env bash
# What the compose test (tests/integration/test_compose.py) needs, idempotently; called
# by scripts/test.sh before the network starts. Needs root (apt-get, rootful podman).
#   1. Debian packages, when missing: podman runc debootstrap catatonit, and docker-compose
#      (1.29.2) without its recommends (they would pull docker.io)
#   2. /etc/containers/containers.conf when absent: runc (crun refuses hybrid cgroups) and
#      ulimits within this host's hard limits (deploy/README.md)
#   3. the images (deploy/build-images.sh): cached in $SYNTHREG_CACHE/images (the base
#      rootfs tarball) and in podman's layers; ~3 s when nothing changed, ~6-7 min and
#      ~8 GB of disk on a fresh machine
set -euo pipefail
source "$(dirname "$0")/env.sh"
log() { printf '\033[1m[containers]\033[0m %s\n' "$*"; }
die() { printf '[containers] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, rootful podman with runc; the compose test needs root too)"
t0=$(date +%s)

# --- 1. packages ----------------------------------------------------------------
want() {  # the packages of "$@" that are not installed
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || printf '%s ' "$pkg"
  done
}
engine=$(want podman runc debootstrap catatonit)
compose=$(want docker-compose)
if [ -n "$engine$compose" ]; then
  command -v apt-get >/dev/null || die "apt-get not found: install $engine$compose by hand (Debian 12 was tested)"
  export DEBIAN_FRONTEND=noninteractive
  log "apt-get install $engine$compose"
  apt-get update -qq || die "apt-get update failed"
  # podman with its recommends (conmon's helpers, network plugins, fuse-overlayfs, uidmap)
  if [ -n "$engine" ]; then
    # shellcheck disable=SC2086
    apt-get install -y -qq $engine >/dev/null || die "apt-get install $engine failed"
  fi
  # docker-compose without: its recommends pull docker.io (a second engine)
  if [ -n "$compose" ]; then
    apt-get install -y -qq --no-install-recommends docker-compose >/dev/null \
      || die "apt-get install docker-compose failed"
  fi
fi

# --- 2. containers.conf -------------------------------------------------------
conf=/etc/containers/containers.conf
if [ ! -e "$conf" ]; then
  hard=$(ulimit -Hn)
  log "writing $conf (runtime runc, nofile=$hard:$hard)"
  mkdir -p /etc/containers
  cat >"$conf" <<EOF
[containers]
default_ulimits = ["nofile=$hard:$hard", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
fi
grep -qs 'runtime *= *"runc"' "$conf" \
  || die "$conf exists but does not set runtime = \"runc\" under [engine] (deploy/README.md)"

# --- 3. images ------------------------------------------------------------------
"$REPO_ROOT/deploy/build-images.sh" || die "deploy/build-images.sh failed"
log "ready in $(( $(date +%s) - t0 ))s"
