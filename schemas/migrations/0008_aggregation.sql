-- Derived data off the commit path (issue 14).
--
-- An ingest or import transaction stores raw readings, dead letters and alert events, and
-- queues what it touched (station × parameter × local day) in aggregation_queue. One stage
-- (`airwater aggregate`, ingest/aggregation.py, SQL in storage/aggregation.py) consumes the
-- queue and maintains every derived level: station-day, city-day, station-year, city-year,
-- section-year and the latest values. Readers answer from those levels and say `as_of`.

-- The snapshot report cache (0007) is replaced by the maintained yearly levels.
DROP TRIGGER readings_daily_inserted ON readings_daily;
DROP TRIGGER readings_daily_updated ON readings_daily;
DROP TRIGGER readings_daily_deleted ON readings_daily;
DROP TRIGGER readings_daily_truncated ON readings_daily;
DROP TRIGGER stations_changed ON stations;
DROP FUNCTION report_changes_of_days();
DROP FUNCTION report_changes_of_everything();
DROP TABLE report_cache;
DROP TABLE report_changes;

-- Hours whose readings were loaded as hourly values (a backfill of hourly means for a
-- station that reports every few minutes live): each reading of such an hour stands for
-- coverage_s seconds when the hour's validity is judged. Only such loads write here.
CREATE TABLE hourly_coverage (
    station_id  text NOT NULL,
    parameter   text NOT NULL,
    bucket      timestamptz NOT NULL,          -- start of the UTC hour
    coverage_s  integer NOT NULL CHECK (coverage_s > 0),
    PRIMARY KEY (station_id, parameter, bucket)
);
INSERT INTO hourly_coverage (station_id, parameter, bucket, coverage_s)
SELECT h.station_id, h.parameter, h.bucket, 3600
FROM readings_hourly h JOIN stations s ON s.station_id = h.station_id
WHERE h.valid AND h.count * s.reading_interval_s < 2700;

-- The hourly level is no longer stored: the national network reports hourly, so a stored
-- hour repeated every raw row at more bytes than the row itself. Hours are grouped from
-- `readings` when read; every reader names its stations and hours, which this view's
-- grouping columns pass down to the readings index (and TimescaleDB turns the bucket bounds
-- into ts bounds for chunk exclusion). An hour is valid with >= 45 minutes of data
-- (GB 3095-2026 Table 4): readings × max(the station's interval, the hour's coverage) >= 2700 s.
DROP TABLE readings_hourly;
CREATE VIEW readings_hourly AS
SELECT g.station_id, g.parameter, g.bucket, g.mean, g.min, g.max, g.count,
       g.count * greatest(g.reading_interval_s, coalesce(c.coverage_s, 0)) >= 2700 AS valid
FROM (
    SELECT r.station_id, r.parameter, time_bucket('1 hour', r.ts) AS bucket,
           avg(r.value) AS mean, min(r.value) AS min, max(r.value) AS max,
           count(*)::integer AS count, s.reading_interval_s
    FROM readings r JOIN stations s ON s.station_id = r.station_id
    GROUP BY r.station_id, r.parameter, time_bucket('1 hour', r.ts), s.reading_interval_s
) g
LEFT JOIN hourly_coverage c
       ON c.station_id = g.station_id AND c.parameter = g.parameter AND c.bucket = g.bucket;

-- What the commit path changed and the stage has not yet reflected. parameter and day NULL:
-- everything of the station (a registry change; city_code is its city before the change).
-- queued_at is the writing transaction's start: a reading committed before the oldest
-- pending queued_at is reflected everywhere (the `as_of` of every report).
CREATE TABLE aggregation_queue (
    id          bigserial PRIMARY KEY,
    station_id  text NOT NULL,
    parameter   text,
    day         date,
    city_code   text,
    queued_at   timestamptz NOT NULL DEFAULT now()
);

-- HJ 663: a city's daily value is the mean of its air stations' valid daily means.
CREATE TABLE city_daily (
    city_code   text NOT NULL,
    parameter   text NOT NULL,
    day         date NOT NULL,
    mean        double precision NOT NULL,
    stations    integer NOT NULL,
    PRIMARY KEY (city_code, parameter, day)
);

-- The annual statistics of an air station's (or a city's) valid daily values of a calendar
-- year: mean, count, the HJ 663 percentile of the parameter, days above the GB 3095 Grade II
-- 24-hour limit in force that day, valid days of January … December. A year in progress
-- holds the days so far.
CREATE TABLE station_yearly (
    parameter            text NOT NULL,
    year                 integer NOT NULL,
    station_id           text NOT NULL,
    mean                 double precision NOT NULL,
    valid_days           integer NOT NULL,
    percentile           double precision,
    days_over_limit      integer NOT NULL,
    valid_days_by_month  integer[] NOT NULL,
    PRIMARY KEY (parameter, year, station_id)
);
CREATE TABLE city_yearly (
    parameter            text NOT NULL,
    year                 integer NOT NULL,
    city_code            text NOT NULL,
    mean                 double precision NOT NULL,
    valid_days           integer NOT NULL,
    percentile           double precision,
    days_over_limit      integer NOT NULL,
    valid_days_by_month  integer[] NOT NULL,
    stations             integer NOT NULL,     -- most stations behind one daily value
    PRIMARY KEY (parameter, year, city_code)
);

-- A surface-water section's year: the monthly means of each item, their annual means and the
-- GB 3838-2002 class they give (reports.water.section_year).
CREATE TABLE water_yearly (
    year                 integer NOT NULL,
    station_id           text NOT NULL,
    water_class          integer,
    method               text NOT NULL,
    deciding             text[] NOT NULL,
    months_with_data     integer NOT NULL,
    annual_means         jsonb NOT NULL,
    monthly_means        jsonb NOT NULL,       -- {item: [12 monthly means or null]}
    PRIMARY KEY (year, station_id)
);

-- The fingerprint of the rules the yearly levels were computed by (limits, percentiles,
-- class rules): the stage rebuilds them when it starts with other rules.
CREATE TABLE aggregation_rules (
    level        text PRIMARY KEY,
    fingerprint  text NOT NULL
);

-- A registry change that moves a station's days (timezone), its hours' validity (interval),
-- its city, its kind or its waterbody queues the whole station.
CREATE FUNCTION queue_station_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO aggregation_queue (station_id, city_code) VALUES (OLD.station_id, OLD.city_code);
    RETURN NULL;
END
$$;
CREATE TRIGGER stations_moved AFTER UPDATE ON stations FOR EACH ROW
    WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone
          OR OLD.reading_interval_s IS DISTINCT FROM NEW.reading_interval_s
          OR OLD.city_code IS DISTINCT FROM NEW.city_code
          OR OLD.kind IS DISTINCT FROM NEW.kind
          OR OLD.waterbody IS DISTINCT FROM NEW.waterbody)
    EXECUTE FUNCTION queue_station_change();
CREATE TRIGGER stations_removed AFTER DELETE ON stations FOR EACH ROW
    EXECUTE FUNCTION queue_station_change();

-- Rebuild every derived level of an existing database from `readings`: `airwater migrate`
-- runs the stage until this queue is empty, with a progress bar.
INSERT INTO aggregation_queue (station_id) SELECT station_id FROM stations ORDER BY station_id;
