#!/bin/sh
# Entry point of the broker in docker-compose.yml (eclipse-mosquitto, BusyBox sh).
#
# Builds the password file and the ACL in the config volume, then runs Mosquitto:
# - service users ingest, alerts and simulators, with the passwords of MQTT_INGEST_PASSWORD,
#   MQTT_ALERTS_PASSWORD and MQTT_SIMULATORS_PASSWORD (.env), set again at every start;
# - user healthcheck, with a random password kept in healthcheck.password (for the probe);
# - stations: the accounts of the registry, from the files `airwater stations credentials`
#   writes into the broker-registry volume (passwd: user name = station id, hashed; acl: each
#   station may publish only under stations/{its id}/). Issue, rotate or revoke with
#     docker compose run --rm migrate airwater stations credentials issue ID
#   A watcher compares the registry files every MOSQUITTO_REGISTRY_POLL_S seconds (default 5)
#   and, when they change, rebuilds the broker's files and sends SIGHUP: Mosquitto re-reads
#   them and drops nobody but revoked or rotated clients.
#
# Usage: mosquitto-entrypoint.sh COMMAND... | prepare | reload
set -eu

AUTH_DIR=${MOSQUITTO_AUTH_DIR:-/mosquitto/config}
ACL_SOURCE=${MOSQUITTO_ACL_SOURCE:-/airwater/mosquitto.acl}
REGISTRY_DIR=${MOSQUITTO_REGISTRY_DIR:-/airwater/registry}
POLL_S=${MOSQUITTO_REGISTRY_POLL_S:-5}
SERVICE_USERS="ingest alerts simulators healthcheck"

fail() {
  echo "mosquitto-entrypoint: $*" >&2
  exit 1
}

password_of() {
  # $1 = variable name. mosquitto_passwd -U splits a line at every ':', and the services
  # put the password into AIRWATER_MQTT_URL: keep to letters, digits and - . _ ~
  eval "value=\${$1:-}"
  [ -n "$value" ] || fail "$1 is not set (copy .env.example to .env)"
  case "$value" in
    *[!A-Za-z0-9._~-]*) fail "$1 may hold only letters, digits and - . _ ~ (it goes into a URL)" ;;
  esac
  printf '%s' "$value"
}

prepare() {
  umask 077
  mkdir -p "$AUTH_DIR"
  plain="" acl=""
  trap 'rm -f ${plain:+"$plain"} ${acl:+"$acl"}' EXIT  # no plain-text leftovers on failure
  [ -s "$AUTH_DIR/healthcheck.password" ] \
    || od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$AUTH_DIR/healthcheck.password"

  # (assignments, so that set -e stops at a missing password)
  ingest=$(password_of MQTT_INGEST_PASSWORD)
  alerts=$(password_of MQTT_ALERTS_PASSWORD)
  simulators=$(password_of MQTT_SIMULATORS_PASSWORD)
  healthcheck=$(cat "$AUTH_DIR/healthcheck.password")
  plain=$(mktemp "$AUTH_DIR/.passwd.XXXXXX")
  printf 'ingest:%s\nalerts:%s\nsimulators:%s\nhealthcheck:%s\n' \
    "$ingest" "$alerts" "$simulators" "$healthcheck" > "$plain"
  # Hash the plain-text lines in place; the station lines are hashed already.
  mosquitto_passwd -U "$plain" || fail "mosquitto_passwd -U failed"
  # A registry line must never redefine a service user (it would get the service's rights).
  if [ -r "$REGISTRY_DIR/passwd" ]; then
    grep -v -E "^($(echo "$SERVICE_USERS" | tr ' ' '|')):" "$REGISTRY_DIR/passwd" \
      | grep -E '^[^:#][^:]*:' >> "$plain" || true
  fi
  mv -f "$plain" "$AUTH_DIR/passwd"

  acl=$(mktemp "$AUTH_DIR/.acl.XXXXXX")
  cat "$ACL_SOURCE" > "$acl"
  if [ -r "$REGISTRY_DIR/acl" ]; then
    # the registry's blocks, without any block of a service user
    awk -v services="$SERVICE_USERS" '
      BEGIN { n = split(services, s, " "); for (i = 1; i <= n; i++) service[s[i]] = 1 }
      /^user / { skip = ($2 in service) }
      /^pattern / { skip = 1 }
      !skip { print }
    ' "$REGISTRY_DIR/acl" >> "$acl"
  fi
  mv -f "$acl" "$AUTH_DIR/acl"
  plain="" acl=""
  trap - EXIT
  echo "mosquitto-entrypoint: $(wc -l < "$AUTH_DIR/passwd") users in $AUTH_DIR/passwd" >&2
}

registry_stamp() {
  cat "$REGISTRY_DIR/passwd" "$REGISTRY_DIR/acl" 2>/dev/null | md5sum
}

# In the background of the broker: rebuild and reload when the registry's files change.
# $$ is this script's pid, which `exec` hands to Mosquitto.
watch_registry() {
  last=$(registry_stamp)
  while sleep "$POLL_S"; do
    now=$(registry_stamp)
    [ "$now" = "$last" ] && continue
    last=$now
    if (prepare); then
      kill -HUP $$ && echo "mosquitto-entrypoint: registry changed, broker reloaded" >&2
    fi
  done
}

case "${1:-}" in
  prepare)
    prepare
    ;;
  reload)
    prepare
    kill -HUP 1
    ;;
  "")
    fail "no command given"
    ;;
  *)
    prepare
    watch_registry &
    exec "$@"
    ;;
esac
