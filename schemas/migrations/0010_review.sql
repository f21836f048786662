-- Data review (issue 16): operators take bad periods out with a reason, sand-dust events are
-- recorded, and every such action is kept forever in an append-only audit log.

-- The `review` scope: invalidate and restore data, record and withdraw sand-dust events
-- (admin implies it).
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check
    CHECK (scopes <@ ARRAY['read', 'ingest', 'review', 'admin']::text[]);

-- A review takes the hours [from_ts, to_ts) of some parameters of a station out of every
-- figure (whole UTC hours: the range is widened to them). Active until restored; two active
-- reviews of a station never share a parameter-hour (reports.review checks it under a lock
-- of the station). The rows stay after a restore: the audit log names them.
CREATE TABLE reviews (
    review_id        bigserial PRIMARY KEY,
    station_id       text NOT NULL,
    -- invalidate: the hours leave every figure; accept: the values their station flagged
    -- (HJ 212 data flags, 0014) count
    action           text NOT NULL DEFAULT 'invalidate' CHECK (action IN ('invalidate', 'accept')),
    parameters       text[] NOT NULL CHECK (cardinality(parameters) > 0),
    from_ts          timestamptz NOT NULL,
    to_ts            timestamptz NOT NULL,
    reason           text NOT NULL CHECK (reason IN ('calibration', 'maintenance',
                         'instrument_fault', 'power_or_communication_loss', 'outlier', 'other',
                         'verified')),
    comment          text NOT NULL DEFAULT '',
    hours            integer NOT NULL,          -- parameter-hours with data when invalidated
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    restored_by      text,
    restored_at      timestamptz,
    restore_comment  text,
    CHECK (from_ts < to_ts)
);
CREATE INDEX reviews_active_idx ON reviews (station_id, action) WHERE restored_at IS NULL;

-- A sand-dust event: the PM10 and PM2.5 hours [from_ts, to_ts) of the air stations of its
-- cities are excluded from the "dust excluded" statistics (MEE supplementary rule of 2016, in
-- force from 2017). areas: the codes as recorded (cities or provinces); city_codes: the
-- cities they stood for then.
CREATE TABLE dust_events (
    event_id      bigserial PRIMARY KEY,
    areas         text[] NOT NULL,
    city_codes    text[] NOT NULL CHECK (cardinality(city_codes) > 0),
    from_ts       timestamptz NOT NULL,
    to_ts         timestamptz NOT NULL,
    evidence      text NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    withdrawn_by  text,
    withdrawn_at  timestamptz,
    CHECK (from_ts < to_ts)
);

-- Every review action and dust event, appended; never updated or deleted (a trigger refuses
-- both). actor: the API key's name, or the command line's user.
CREATE TABLE audit_log (
    audit_id    bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,
    action      text NOT NULL CHECK (action IN ('invalidate', 'accept', 'restore', 'dust_event',
                    'dust_withdrawn', 'publish', 'revision')),
    station_id  text,
    areas       text[],
    parameters  text[],
    from_ts     timestamptz,
    to_ts       timestamptz,
    reason      text,
    comment     text,
    hours       integer,                        -- parameter-hours with data it touched
    review_id   bigint,
    event_id    bigint,
    detail      jsonb
);
CREATE INDEX audit_log_station_idx ON audit_log (station_id, audit_id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

-- Hours of a station-day taken out by review (the day's mean, validity and every level above
-- are computed without them).
ALTER TABLE readings_daily ADD COLUMN reviewed_hours integer NOT NULL DEFAULT 0;
ALTER TABLE station_yearly ADD COLUMN reviewed_hours integer NOT NULL DEFAULT 0;

-- Hours read from `readings` (the readings_hourly view) leave out reviewed hours too: the
-- view is redefined once, with the station's own data flags, in 0014.
