#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: Python venv + dependencies, Mosquitto,
# PostgreSQL server and the Apache-2 TimescaleDB built from Debian's source package.
# A second run only checks and returns in seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${AIRWATER_VENV:-$ROOT/.venv}
PYTHON=${AIRWATER_PYTHON:-python3}
WORK=${AIRWATER_BUILD_DIR:-$ROOT/data/build}
log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" -eq 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- Mosquitto -----------------------------------------------------------------
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  log "installing mosquitto"
  apt_install mosquitto
fi

# --- Browser for the dashboard test, compose client to validate docker-compose.yml ------
if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium (headless browser test of the dashboard)"
  apt_install chromium
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  log "installing docker-compose (validates docker-compose.yml; no engine needed)"
  apt_install docker-compose
fi

# --- PostgreSQL server ------------------------------------------------------------
pg_config_path() { ls /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_config_path)" ]; then
  log "installing postgresql"
  apt_install postgresql
fi
PG_CONFIG=$(pg_config_path)
PG_MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')

# --- TimescaleDB (Apache-2 edition) ----------------------------------------------
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/timescaledb.control" ] \
   || ! ls "$("$PG_CONFIG" --pkglibdir)"/timescaledb*.so >/dev/null 2>&1; then
  log "TimescaleDB missing for PostgreSQL $PG_MAJOR: building it from Debian's source package"
  # The build needs the server headers; installing them may move postgresql-$PG_MAJOR to the newest minor.
  apt_install "postgresql-server-dev-$PG_MAJOR" cmake build-essential dpkg-dev
  # Debian 13 carries the source; use the machine's own Debian archive URI, in a private apt
  # state so that the system's sources and lists stay untouched.
  export GIT_CEILING_DIRECTORIES="$WORK"  # the build asks git for a version; not ours
  ARCHIVE=$(grep -hE '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n 1 | awk '{print $2}')
  if [ -z "$ARCHIVE" ]; then
    ARCHIVE=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | head -n 1 | awk '{print $2}')
  fi
  [ -n "$ARCHIVE" ] || { log "cannot find the Debian archive URI in the apt sources"; exit 1; }
  APT_DIR="$WORK/apt"
  mkdir -p "$APT_DIR/lists/partial" "$WORK/src"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $ARCHIVE trixie main" > "$APT_DIR/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$APT_DIR/lists" -o "APT::Sandbox::User=root")
  $SUDO apt-get "${APT_OPTS[@]}" update -qq
  (cd "$WORK/src" && $SUDO apt-get "${APT_OPTS[@]}" source --download-only -qq timescaledb)
  ORIG=$(ls "$WORK"/src/timescaledb_*.orig.tar.* | sort -V | tail -n 1)
  rm -rf "$WORK/timescaledb"
  mkdir -p "$WORK/timescaledb"
  tar -xf "$ORIG" -C "$WORK/timescaledb" --strip-components=1
  (cd "$WORK/timescaledb" \
     && ./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
          -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$PG_CONFIG" >/dev/null \
     && make -C build -j"$(nproc)" >/dev/null \
     && $SUDO make -C build install >/dev/null)
  log "TimescaleDB installed: $(ls "$("$PG_CONFIG" --pkglibdir)"/timescaledb-*.so | head -n 1)"
fi

# --- Python virtual environment ------------------------------------------------------
STAMP="$VENV/.airwater-installed"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  log "installing Python dependencies"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
  touch "$STAMP"
fi
log "ready (PostgreSQL $PG_MAJOR with TimescaleDB, Mosquitto, $VENV)"
