-- Identity of stations that speak HJ 212-2017 over TCP (the HJ 212 gateway). Each frame names
-- its station by MN (the data logger's device number) and carries PW (an access password).
-- MN is kept on the station; the password, like the broker accounts' (0005), only as a hash,
-- shown once when issued or rotated (core/hj212_secret.py has the hash and why it is SHA-256).
ALTER TABLE stations
    ADD COLUMN hj212_mn text UNIQUE CHECK (hj212_mn ~ '^[A-Za-z0-9_-]{1,24}$');

CREATE TABLE hj212_credentials (
    station_id   text PRIMARY KEY REFERENCES stations (station_id) ON DELETE CASCADE,
    secret_hash  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    rotated_at   timestamptz,
    revoked_at   timestamptz
);
