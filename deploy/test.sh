#!/usr/bin/env bash
# The whole check: set-up, lint, format, types, and the test suite against private
# PostgreSQL+TimescaleDB and Mosquitto instances that the tests start themselves.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
./deploy/setup.sh
VENV=${AIRWATER_VENV:-$ROOT/.venv}
echo "[test] ruff" >&2
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "[test] mypy" >&2
"$VENV/bin/mypy" .
echo "[test] pytest" >&2
exec "$VENV/bin/pytest" -p no:cacheprovider --durations=20 "$@"
