-- Stations, readings, rollups and dead letters (issue 2).
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE stations (
    station_id      text PRIMARY KEY CHECK (station_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('air', 'surface_water', 'sea', 'groundwater')),
    waterbody       text CHECK (waterbody IN ('river', 'lake')),
    city            text,
    city_code       text,
    province        text,
    latitude        double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude       double precision CHECK (longitude BETWEEN -180 AND 180),
    timezone        text NOT NULL DEFAULT 'Asia/Shanghai',
    -- seconds between readings; an hourly value is valid with >= 45 minutes of data
    reading_interval_s integer NOT NULL DEFAULT 3600 CHECK (reading_interval_s BETWEEN 1 AND 86400),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stations_city_idx ON stations (city_code);

-- Synced from standards.parameters.CATALOGUE by the migration runner.
CREATE TABLE parameters (
    parameter        text PRIMARY KEY,
    unit             text NOT NULL,
    medium           text NOT NULL,
    daily_min_hours  integer NOT NULL
);

CREATE TABLE readings (
    station_id   text NOT NULL,
    parameter    text NOT NULL,
    ts           timestamptz NOT NULL,
    value        double precision NOT NULL,
    flag         text NOT NULL DEFAULT 'valid' CHECK (flag IN ('valid', 'suspect', 'invalid')),
    flag_reason  text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (station_id, parameter, ts)
);
-- 7-day chunks: a year of hourly data for ~1,700 stations is ~290 k rows a week.
-- No time-only index: every query names the station, so the unique (station_id, parameter,
-- ts) index serves them, and a second index on each insert cost ~10 % of the write rate.
SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '7 days',
                         create_default_indexes => false);

CREATE TABLE readings_hourly (
    station_id  text NOT NULL,
    parameter   text NOT NULL,
    bucket      timestamptz NOT NULL,          -- start of the UTC hour
    mean        double precision NOT NULL,
    min         double precision NOT NULL,
    max         double precision NOT NULL,
    count       integer NOT NULL,              -- valid readings in the hour
    valid       boolean NOT NULL,              -- >= 45 minutes of data (GB 3095 Table 4)
    PRIMARY KEY (station_id, parameter, bucket)
);
SELECT create_hypertable('readings_hourly', 'bucket', chunk_time_interval => interval '30 days',
                         create_default_indexes => false);

CREATE TABLE readings_daily (
    station_id   text NOT NULL,
    parameter    text NOT NULL,
    day          date NOT NULL,                -- the station's local calendar day
    mean         double precision,             -- mean of the valid hourly means
    min          double precision,
    max          double precision,
    valid_hours  integer NOT NULL,
    hours        integer NOT NULL,             -- hours with any data
    valid        boolean NOT NULL,             -- >= daily_min_hours valid hours (20 for air)
    PRIMARY KEY (station_id, parameter, day)
);
CREATE INDEX readings_daily_day_idx ON readings_daily (parameter, day);

CREATE TABLE latest_readings (
    station_id   text NOT NULL,
    parameter    text NOT NULL,
    ts           timestamptz NOT NULL,
    value        double precision NOT NULL,
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (station_id, parameter)
);

CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    -- sha256 of topic, payload, reason and detail: a redelivered message adds nothing
    fingerprint  bytea NOT NULL UNIQUE,
    topic        text NOT NULL,
    station_id   text,
    payload      bytea NOT NULL,
    reason       text NOT NULL,
    detail       text NOT NULL,
    source       text NOT NULL DEFAULT 'mqtt',
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason, received_at DESC);
