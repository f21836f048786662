#!/bin/sh
# Entry point of the broker in docker-compose.yml (eclipse-mosquitto, BusyBox sh).
#
# Builds the password file and the ACL in the config volume, then runs Mosquitto:
# - service users ingest, alerts and simulators, with the passwords of MQTT_INGEST_PASSWORD,
#   MQTT_ALERTS_PASSWORD and MQTT_SIMULATORS_PASSWORD (.env), set again at every start;
# - user healthcheck, with a random password kept in healthcheck.password (for the probe);
# - stations: every line of stations.passwd (user name = station id, hashed by
#   mosquitto_passwd), which stays in the volume across restarts. Add or change one with
#     docker compose exec mosquitto mosquitto_passwd -b /mosquitto/config/stations.passwd ID PASSWORD
#     docker compose exec mosquitto sh /airwater/mosquitto-entrypoint.sh reload
#   (reload rebuilds the files and sends SIGHUP: Mosquitto re-reads them, nobody is dropped).
#
# Usage: mosquitto-entrypoint.sh COMMAND... | prepare | reload
set -eu

AUTH_DIR=${MOSQUITTO_AUTH_DIR:-/mosquitto/config}
ACL_SOURCE=${MOSQUITTO_ACL_SOURCE:-/airwater/mosquitto.acl}
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
  [ -e "$AUTH_DIR/stations.passwd" ] || : > "$AUTH_DIR/stations.passwd"

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
  # A station line must never redefine a service user (it would get the service's rights).
  grep -v -E "^($(echo "$SERVICE_USERS" | tr ' ' '|')):" "$AUTH_DIR/stations.passwd" \
    | grep -E '^[^:#][^:]*:' >> "$plain" || true
  mv -f "$plain" "$AUTH_DIR/passwd"

  acl=$(mktemp "$AUTH_DIR/.acl.XXXXXX")
  cat "$ACL_SOURCE" > "$acl"
  mv -f "$acl" "$AUTH_DIR/acl"
  plain="" acl=""
  trap - EXIT
  echo "mosquitto-entrypoint: $(wc -l < "$AUTH_DIR/passwd") users in $AUTH_DIR/passwd" >&2
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
    exec "$@"
    ;;
esac
