#!/usr/bin/env bash
# The service's main job on its embedded defaults. Until the HTTP API lands (issue 3) that is the
# store built from the corpus plus a CLI query of it; then this becomes `exec gunicorn …`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
VENV=${QUOTES_VENV:-$ROOT/.venv}
cd "$ROOT"
"$VENV/bin/python" -m service speakers
exec "$VENV/bin/python" -m service quotes "$@"
