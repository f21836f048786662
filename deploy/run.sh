#!/usr/bin/env bash
# Set up what is missing, then run airwater (private PostgreSQL+TimescaleDB and Mosquitto
# under ./data unless AIRWATER_DATABASE_URL / AIRWATER_MQTT_URL point elsewhere).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/deploy/setup.sh"
exec "$ROOT/.venv/bin/airwater" run "$@"
