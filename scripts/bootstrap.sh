#!/usr/bin/env bash
# Installs everything synthreg needs on a fresh machine, idempotently:
#   1. a Python 3.11 virtualenv with the pinned packages and the dev tools (pytest, ruff,
#      mypy and stubs), cached, keyed by what pip installs from pyproject.toml
#   2. the Fabric binaries built from source with `go build` (cached, keyed by the pin)
#   3. the Go modules of the chaincode
set -euo pipefail
source "$(dirname "$0")/env.sh"
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

# --- 1. Python ---------------------------------------------------------------
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "Python 3.11 is required (found $("$PY" --version 2>&1))"
stamp="$SYNTHREG_VENV/.synthreg-stamp"
# Keyed by the install inputs only ([build-system], [project], [tool.setuptools]): editing
# the ruff/mypy/pytest settings does not reinstall anything.
want="$("$PY" - "$REPO_ROOT/pyproject.toml" <<'PYEOF'
import hashlib, json, sys, tomllib
with open(sys.argv[1], "rb") as f:
    doc = tomllib.load(f)
key = [doc.get("build-system"), doc.get("project"), doc.get("tool", {}).get("setuptools")]
print(hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16])
PYEOF
)" || die "cannot read $REPO_ROOT/pyproject.toml"
if [ ! -x "$SYNTHREG_VENV/bin/python" ]; then
  log "creating virtualenv $SYNTHREG_VENV"
  "$PY" -m venv "$SYNTHREG_VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # Into the existing venv: pip keeps every package already at its pin (torch is not
  # downloaded again when only, say, the dev extra changed) and installs the difference.
  if [ -f "$stamp" ]; then
    log "pyproject.toml's dependencies changed: installing the difference into $SYNTHREG_VENV"
  else
    log "installing pinned Python packages (first run: torch with its CUDA wheels, ~7 GB, a few minutes)"
  fi
  start=$(date +%s)
  "$SYNTHREG_VENV/bin/pip" install --quiet --upgrade pip
  "$SYNTHREG_VENV/bin/pip" install --quiet -e "$REPO_ROOT[dev,bench]"
  echo "$want" > "$stamp"
  log "Python packages installed in $(( $(date +%s) - start ))s ($(du -sh "$SYNTHREG_VENV" | cut -f1))"
else
  # the editable install must point at *this* checkout (CI clones elsewhere)
  "$SYNTHREG_VENV/bin/python" - "$REPO_ROOT" <<'PYEOF' || "$SYNTHREG_VENV/bin/pip" install --quiet --no-deps -e "$REPO_ROOT[dev,bench]"
import sys, pathlib, synthreg
sys.exit(0 if pathlib.Path(synthreg.__file__).resolve().is_relative_to(pathlib.Path(sys.argv[1]).resolve()) else 1)
PYEOF
  log "Python packages up to date ($SYNTHREG_VENV)"
fi

# --- 2. Fabric binaries -----------------------------------------------------
"$REPO_ROOT/scripts/fabric-binaries.sh"

# --- 3. chaincode Go modules ------------------------------------------------
if [ -f "$REPO_ROOT/chaincode/go.mod" ]; then
  log "downloading chaincode Go modules"
  (cd "$REPO_ROOT/chaincode" && go mod download) || die "go mod download failed for chaincode/"
fi
log "done"
