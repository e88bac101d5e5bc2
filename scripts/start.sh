#!/usr/bin/env bash
# Starts the API under gunicorn (settings in gunicorn.conf.py); extra arguments go to gunicorn.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
VENV=${QUOTES_VENV:-$ROOT/.venv}
cd "$ROOT"
exec "$VENV/bin/gunicorn" -c gunicorn.conf.py "$@"
