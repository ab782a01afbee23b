#!/usr/bin/env bash
# Static checks, configured in the repo (STYLE.md item 15): `go vet` on the chaincode, ruff on
# services, tests and bench ([tool.ruff] in pyproject.toml), mypy strict on services/synthreg
# ([tool.mypy]). Run first by scripts/test.sh and alone by `make lint`; stops at the first
# tool that reports a problem.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$REPO_ROOT"
log() { printf '\033[1m[lint]\033[0m %s\n' "$*"; }
fail() { printf '\n\033[1m[lint] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }

for tool in go ruff mypy; do
  command -v "$tool" >/dev/null || fail "$tool not found; run scripts/bootstrap.sh (make bootstrap)"
done
# mypy's cache of the stubs (torch, numpy, pandas) lives with the venv, so a fresh clone
# on this machine does not analyse them again (~20 s of CPU)
export MYPY_CACHE_DIR="${MYPY_CACHE_DIR:-$SYNTHREG_CACHE/mypy}"

log "go vet ./... (chaincode)"
(cd chaincode && go vet ./...) || fail "go vet reported problems in chaincode/ (above)"
log "ruff check services tests bench"
ruff check services tests bench \
  || fail "ruff reported problems (above); 'ruff check --fix services tests bench' fixes those marked [*]"
log "mypy (strict, services/synthreg)"
mypy || fail "mypy reported type errors in services/synthreg (above)"
