-- Broker accounts (issue 7). Mosquitto's password and ACL files are generated from this table
-- (airwater/broker_auth.py): a station logs in with its station id as user name and may
-- publish only under stations/{its id}/; the services have one account per role. Only the
-- Mosquitto-format PBKDF2-SHA512 hash is kept; the password is shown once, when issued.
CREATE TABLE mqtt_credentials (
    username      text PRIMARY KEY,
    role          text NOT NULL CHECK (role IN ('station', 'ingest', 'alerts', 'simulators')),
    station_id    text REFERENCES stations (station_id) ON DELETE CASCADE,
    password_hash text NOT NULL,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    rotated_at    timestamptz,
    revoked_at    timestamptz,
    CHECK ((role = 'station') = (station_id IS NOT NULL)),
    CHECK (role <> 'station' OR username = station_id)
);
