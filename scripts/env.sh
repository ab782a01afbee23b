# Sourced by the scripts: where synthreg keeps what it installs (outside the repo,
# reused by later runs on the same machine).
SYNTHREG_CACHE="${SYNTHREG_CACHE:-$HOME/.cache/synthreg}"
SYNTHREG_VENV="${SYNTHREG_VENV:-$SYNTHREG_CACHE/venv}"
FABRIC_BIN="${FABRIC_BIN:-$SYNTHREG_CACHE/fabric/bin}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SYNTHREG_CACHE SYNTHREG_VENV FABRIC_BIN REPO_ROOT
export PATH="$FABRIC_BIN:$SYNTHREG_VENV/bin:$PATH"
