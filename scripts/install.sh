#!/usr/bin/env bash
# Installs the service into a venv from the hash-locked requirements, then materialises the
# embedding model (and its int8 ONNX export) and builds the quote store. Idempotent: when the venv
# already holds this exact lock (and pyproject.toml), the pip steps are skipped.
#
#   scripts/install.sh [--dev]
#
# Environment: QUOTES_VENV (venv location, default <repo>/.venv), PYTHON (default python3.11).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
VENV=${QUOTES_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3.11}

log() { printf 'install: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# pip, quietly, on stderr, without the per-package noise of a configured local index that lacks
# most projects ("Location 'file:///...' is ignored: it is neither a file nor a directory").
pip_() {
    local rc=0
    "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2>&1 \
        | { grep -v -e "' is ignored: it is neither a file nor a directory" || true; } >&2 || rc=$?
    return "$rc"
}

kind=run
lock=$ROOT/requirements/lock.txt
case "${1:-}" in
    "") ;;
    --dev) kind=dev; lock=$ROOT/requirements/lock-dev.txt ;;
    *) printf 'usage: %s [--dev]\n' "$0" >&2; exit 2 ;;
esac
[[ -f $lock ]] || die "missing $lock"

start=$SECONDS
cd "$ROOT"

if [[ ! -x $VENV/bin/python ]]; then
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON to a Python 3.11 interpreter)"
    log "creating venv $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "$VENV does not hold Python 3.11; remove it or set QUOTES_VENV"

# The stamp covers the lock and pyproject.toml (entry points, package metadata of the -e install).
digest=$(cat "$lock" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)
stamp=$VENV/.installed-$kind-$digest
if [[ -f $stamp ]]; then
    log "dependencies up to date ($(basename "$lock"))"
else
    log "installing $(basename "$lock") into $VENV"
    # --no-deps: the lock alone decides what is installed. Without it pip still resolves extras
    # (weasel's smart-open[http]) against the index and takes releases newer than the lock.
    pip_ install -q --require-hashes --no-deps -r "$lock"
    # setuptools (the build backend) comes from the lock, so this step needs no network.
    log "installing the service package"
    if ! pip_ install -q --no-index --no-deps --no-build-isolation -e "$ROOT"; then
        log "editable install failed; installing non-editable"
        pip_ install -q --no-index --no-deps --no-build-isolation "$ROOT"
    fi
    # The lock must be complete: every requirement of every installed distribution satisfied.
    if ! problems=$("$VENV/bin/python" -m pip --disable-pip-version-check check 2>&1); then
        die "the installed set is inconsistent (is $(basename "$lock") complete? regenerate it as CONTRIBUTING.md says):
$problems"
    fi
    rm -f "$VENV"/.installed-"$kind"-*
    touch "$stamp"
fi

if [[ $kind == dev ]]; then
    # The page's browser tests drive Debian's chromium (Playwright's own browser download does not
    # work offline); installed here when missing and this user may install packages.
    if ! command -v chromium >/dev/null; then
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
            log "installing Debian's chromium and chromium-driver (browser tests)"
            { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
                && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                    chromium chromium-driver; } >&2 || die "apt-get could not install chromium"
        else
            die "chromium is missing: install Debian's chromium and chromium-driver (the browser tests need them)"
        fi
    fi
    # npm test tools (Spectral, axe-core), exactly as tools/package-lock.json pins them.
    command -v npm >/dev/null || die "npm is missing: install Node.js 20 and npm (the test tools need them)"
    npm_stamp=$ROOT/tools/node_modules/.installed-$(sha256sum "$ROOT/tools/package-lock.json" | cut -d' ' -f1)
    if [[ ! -f $npm_stamp ]]; then
        log "installing the npm test tools (tools/package-lock.json)"
        (cd "$ROOT/tools" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >&2 \
            || die "npm ci in tools/ failed"
        touch "$npm_stamp"
    fi
fi

log "materialising the embedding model"
"$VENV/bin/python" -m service model install >&2 || die "'python -m service model install' failed"
# The int8 ONNX backend (QUOTES_EMBEDDING_BACKEND=onnx-int8), exported from the weights just checked
# for this machine's CPU and kept only if it agrees with torch; skipped when already current. Status 3:
# no int8 export keeps that promise on this CPU. The torch backend (the default) does not need it.
log "exporting the int8 ONNX model"
rc=0
"$VENV/bin/python" -m service model export-onnx >&2 || rc=$?
case $rc in
    0) ;;
    3) log "the int8 ONNX backend is refused on this CPU (above); the server runs with the torch backend" ;;
    *) die "'python -m service model export-onnx' failed" ;;
esac
log "building the quote store"
"$VENV/bin/python" -m service build >&2 || die "'python -m service build' failed"
log "done in $((SECONDS - start))s"
