"""The derived levels and their queue (0008_aggregation.sql): what the aggregation stage
(ingest.aggregation) runs, one statement per level, inside one transaction per batch.

A batch claims queue rows (``FOR UPDATE SKIP LOCKED``, deleted at its commit), expands them
into station-days, takes the advisory locks of the station-years and then of the city-years
it will write (each set in one sorted order: no deadlock between stage instances), and
recomputes each touched key from its source with a statement that starts after the locks:
in READ COMMITTED it sees whatever an earlier holder of the lock committed. Every statement
recomputes from the level below (never adds deltas), so a batch run twice, or killed and run
again, writes the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from standards.limits import days_judged
from standards.review import DUST_EXCLUDED
from standards.validity import O3_8H_MIN_HOURS, O3_DAILY_MAX_8H_MIN_WINDOWS
from storage.aqi_queries import DAILY_AQI_PARAMETERS, STATION_DAY_AQI_INPUTS

# The parameter under which the O3 daily maximum 8-hour mean is kept (readings_daily,
# city_daily, station_yearly, city_yearly): derived by the stage from the 'o3' hours, never a
# reading's parameter.
O3_DAILY_MAX_8H = "o3_8h"

# (measured, dust-excluded) parameter pairs, as SQL VALUES rows.
_DUST_TWINS = ", ".join(f"('{m}', '{x}')" for m, x in DUST_EXCLUDED.items())

# What the aggregation stage keeps (every derived level, the latest values), its queue and the
# loaded hours' coverage: the tables emptied with `readings` (readings_hourly is a view).
STAGE_TABLES = (
    "hourly_coverage",
    "aggregation_queue",
    "readings_daily",
    "latest_readings",
    "city_daily",
    "station_yearly",
    "city_yearly",
    "water_yearly",
    "city_daily_aqi",
)

# The batch's keys, per connection; emptied at commit.
_TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS stage_queue (
    station_id text, parameter text, day date, city_code text, queued_at timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_days (
    station_id text, parameter text, day date, first_ts timestamptz, end_ts timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_city_days (
    city_code text, parameter text, day date
) ON COMMIT DELETE ROWS;
"""

# Whole-station rows (a registry change, a rebuild) expand to every day of the station: a
# few at a time, before the day rows.
CLAIM = """
WITH claimed AS (
    DELETE FROM aggregation_queue q
    WHERE q.id IN (SELECT id FROM aggregation_queue WHERE day IS NULL
                   ORDER BY id LIMIT %(stations)s FOR UPDATE SKIP LOCKED)
       OR q.id IN (SELECT id FROM aggregation_queue WHERE day IS NOT NULL
                   ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
    RETURNING q.station_id, q.parameter, q.day, q.city_code, q.queued_at
)
INSERT INTO stage_queue SELECT * FROM claimed
"""

# The hours of a station-local day {day} in zone {tz}: the UTC hours that start in it, from
# first_ts (the first hour start on or after its local midnight) up to end_ts (exclusive).
DAY_HOURS = """
time_bucket('1 hour', ({day}::timestamp AT TIME ZONE {tz}) - interval '1 microsecond')
    + interval '1 hour' AS first_ts,
time_bucket('1 hour', (({day} + 1)::timestamp AT TIME ZONE {tz}) - interval '1 microsecond')
    + interval '1 hour' AS end_ts"""

# Station-days of the claimed rows; a whole-station row (registry change, rebuild) stands for
# every day the station has readings of (days whose readings retention dropped are kept).
# A day's hours are the UTC hours that start in it; first_ts and end_ts bound their readings.
# Every 'o3' day has its twin of parameter 'o3_8h' (the daily maximum 8-hour mean, derived
# from the same hours by INSERT_O3_8H_DAYS), so that every level above keeps it too.
EXPAND_DAYS = f"""
WITH days AS (
    SELECT DISTINCT station_id, parameter, day FROM stage_queue WHERE day IS NOT NULL
    UNION
    SELECT r.station_id, r.parameter, (time_bucket('1 hour', r.ts) AT TIME ZONE s.timezone)::date
    FROM readings r JOIN stations s ON s.station_id = r.station_id
    WHERE r.station_id IN (SELECT station_id FROM stage_queue WHERE day IS NULL)
), bounds AS (
    SELECT d.station_id, d.parameter, d.day,
           {DAY_HOURS.format(day="d.day", tz="coalesce(s.timezone, 'UTC')")}
    FROM days d LEFT JOIN stations s ON s.station_id = d.station_id
)
INSERT INTO stage_days (station_id, parameter, day, first_ts, end_ts)
SELECT station_id, parameter, day, first_ts, end_ts FROM bounds
UNION ALL
SELECT station_id, '{O3_DAILY_MAX_8H}', day, first_ts, end_ts FROM bounds WHERE parameter = 'o3'
UNION ALL
SELECT b.station_id, t.excluded, b.day, b.first_ts, b.end_ts
FROM bounds b JOIN (VALUES {_DUST_TWINS}) AS t(measured, excluded) ON t.measured = b.parameter
"""

# The batch's days and how many station-days of readings it recomputes (not the 'o3_8h' and
# dust-excluded twins).
_TWIN_PARAMETERS = ", ".join(f"'{x}'" for x in (O3_DAILY_MAX_8H, *DUST_EXCLUDED.values()))
SPAN_OF_DAYS = f"""
SELECT min(day), max(day), count(*) FILTER (WHERE parameter NOT IN ({_TWIN_PARAMETERS}))
FROM stage_days
"""

# Sorted, hashed into LOCK_SLOTS advisory locks per level (classes 16727, 16728): a batch of
# thousands of station-years holds at most 2 × 256 locks (PostgreSQL's lock table is shared
# and small); two stages share a slot only rarely, and then one waits for the other.
LOCK_SLOTS = 256
LOCK_STATION_YEARS = """
SELECT count(pg_advisory_xact_lock(16727, k)) FROM (
    SELECT DISTINCT hashtext(station_id || '/' || extract(year FROM day)::int) & 255 AS k
    FROM stage_days ORDER BY k) keys
"""

# City-days the batch changes: its air stations' days in their (current) cities, and for a
# whole-station row, every daily value of the station in its former and its current city.
EXPAND_CITY_DAYS = f"""
INSERT INTO stage_city_days (city_code, parameter, day)
SELECT s.city_code, k.parameter, k.day
FROM stage_days k JOIN stations s ON s.station_id = k.station_id
WHERE s.kind = 'air' AND s.city_code IS NOT NULL
UNION
SELECT c.city_code, p.parameter, d.day
FROM stage_queue q
JOIN readings_daily d ON d.station_id = q.station_id
CROSS JOIN LATERAL (VALUES (q.city_code), ((SELECT s.city_code FROM stations s
                                            WHERE s.station_id = q.station_id))) c(city_code)
CROSS JOIN LATERAL (
    SELECT d.parameter
    UNION ALL
    SELECT t.excluded FROM (VALUES {_DUST_TWINS}) AS t(measured, excluded)
    WHERE t.measured = d.parameter
) p
WHERE q.day IS NULL AND c.city_code IS NOT NULL
"""

LOCK_CITY_YEARS = """
SELECT count(pg_advisory_xact_lock(16728, k)) FROM (
    SELECT DISTINCT hashtext(city_code || '/' || extract(year FROM day)::int) & 255 AS k
    FROM stage_city_days ORDER BY k) keys
"""

DELETE_STATION_DAYS = """
DELETE FROM readings_daily d USING stage_days k
WHERE d.station_id = k.station_id AND d.parameter = k.parameter AND d.day = k.day
"""

# The hours of the station-days of {days} (columns station_id, parameter, day, first_ts,
# end_ts) of the valid readings of {source} (a value its station flagged, e.g. HJ 212 "M"
# maintenance, is not, unless an 'accept' review overrules the flag for its hour): each UTC
# hour that starts in the day and holds
# readings, its mean, whether an active review took it out (reviewed), and whether it is
# valid: not reviewed and >= 45 minutes of data (readings × interval, or the hour's loaded
# coverage). Each day's readings are one index range scan (LATERAL: a nested loop over the
# keys). Active reviews of a station never share a parameter-hour: one match at most.
# {where}: a further condition on the hour h (the dust-excluded twins drop event hours).
_HOURS_OF_DAYS = """
SELECT k.station_id, k.parameter, {source} AS measured, k.day, h.bucket, h.mean,
       v.review_id IS NULL
       AND h.n * greatest(s.reading_interval_s, coalesce(c.coverage_s, 0)) >= %(hourly_min_s)s
           AS valid,
       v.review_id IS NOT NULL AS reviewed
FROM {days} k
JOIN stations s ON s.station_id = k.station_id
CROSS JOIN LATERAL (
    SELECT time_bucket('1 hour', r.ts) AS bucket, avg(r.value) AS mean, count(*) AS n
    FROM readings r
    WHERE r.station_id = k.station_id AND r.parameter = {source}
      AND r.ts >= k.first_ts AND r.ts < k.end_ts
      AND (r.flag = 'valid'
           OR EXISTS (SELECT 1 FROM reviews a
                      WHERE a.station_id = k.station_id AND a.action = 'accept'
                        AND a.restored_at IS NULL AND {source} = ANY(a.parameters)
                        AND r.ts >= a.from_ts AND r.ts < a.to_ts))
    GROUP BY 1
) h
LEFT JOIN hourly_coverage c
       ON c.station_id = k.station_id AND c.parameter = {source} AND c.bucket = h.bucket
LEFT JOIN reviews v
       ON v.station_id = k.station_id AND v.action = 'invalidate' AND v.restored_at IS NULL
      AND {source} = ANY(v.parameters) AND h.bucket >= v.from_ts AND h.bucket < v.to_ts
WHERE {where}"""

# HJ 663: the station's local day; the day is the mean of its valid hourly means and valid
# with >= the parameter's daily hours; reviewed_hours: hours with data a review took out.
# ('o3_8h' days and the dust-excluded twins find no readings of their own: INSERT_O3_8H_DAYS
# and INSERT_DUSTED_TWINS make them.)
_DAYS_OF_HOURS = """
INSERT INTO readings_daily (station_id, parameter, day, mean, min, max, valid_hours, hours, valid,
                            reviewed_hours)
SELECT h.station_id, h.parameter, h.day,
       avg(h.mean) FILTER (WHERE h.valid), min(h.mean) FILTER (WHERE h.valid),
       max(h.mean) FILTER (WHERE h.valid), count(*) FILTER (WHERE h.valid), count(*),
       count(*) FILTER (WHERE h.valid) >= p.daily_min_hours,
       count(*) FILTER (WHERE h.reviewed)
FROM hours h JOIN parameters p ON p.parameter = h.measured
GROUP BY h.station_id, h.parameter, h.day, p.daily_min_hours"""

INSERT_STATION_DAYS = f"""
WITH hours AS ({_HOURS_OF_DAYS.format(days="stage_days", source="k.parameter", where="true")})
{_DAYS_OF_HOURS}
"""

# The dust-excluded twin of a PM10 or PM2.5 station-day (standards.review) is stored only when
# an active sand-dust event of the station's city overlaps the day: the day recomputed without
# the event's hours. Any other day's twin is the measured day itself, which the levels above
# read in its place (INSERT_CITY_DAYS, INSERT_STATION_YEARS): a copy of every PM day would
# cost a third more rows.
_TWINS = f"""
twins AS MATERIALIZED (
    SELECT k.station_id, k.parameter, k.day, k.first_ts, k.end_ts, t.measured,
           EXISTS (SELECT 1 FROM dust_events e
                   WHERE e.withdrawn_at IS NULL AND s.city_code = ANY(e.city_codes)
                     AND e.from_ts < k.end_ts AND e.to_ts > k.first_ts) AS dusty
    FROM stage_days k
    JOIN (VALUES {_DUST_TWINS}) AS t(measured, excluded) ON t.excluded = k.parameter
    JOIN stations s ON s.station_id = k.station_id
)"""

_NO_DUST_IN_HOUR = """NOT EXISTS (
    SELECT 1 FROM dust_events e
    WHERE e.withdrawn_at IS NULL AND s.city_code = ANY(e.city_codes)
      AND h.bucket >= e.from_ts AND h.bucket < e.to_ts)"""

INSERT_DUSTED_TWINS = f"""
WITH {_TWINS},
dusted AS MATERIALIZED (SELECT * FROM twins WHERE dusty),
hours AS ({_HOURS_OF_DAYS.format(days="dusted", source="k.measured", where=_NO_DUST_IN_HOUR)})
{_DAYS_OF_HOURS}
"""

# A measured day whose every hour an event excluded still has its twin: an empty, invalid
# day (hours 0), so that the levels above do not read the measured day in its place.
INSERT_EMPTY_DUSTED_TWINS = f"""
WITH {_TWINS}
INSERT INTO readings_daily (station_id, parameter, day, mean, min, max, valid_hours, hours, valid,
                            reviewed_hours)
SELECT t.station_id, t.parameter, t.day, NULL, NULL, NULL, 0, 0, false, 0
FROM twins t
WHERE t.dusty
  AND EXISTS (SELECT 1 FROM readings_daily m
              WHERE m.station_id = t.station_id AND m.parameter = t.measured AND m.day = t.day)
  AND NOT EXISTS (SELECT 1 FROM readings_daily x
                  WHERE x.station_id = t.station_id AND x.parameter = t.parameter
                    AND x.day = t.day)
"""

# HJ 663 (STANDARDS.md §3a): the O3 daily maximum 8-hour mean of each station-day of {days}
# (columns station_id, day, first_ts, end_ts) from its hours in {hours} (station_id, day,
# bucket, mean, valid: every hour of the day with readings, as _HOURS_OF_DAYS gives them).
# The 8-hour windows are those lying inside the day: starting at its first hour … 8 hours
# before its end (17 on a 24-hour day: 00:00 … 16:00 local). A window is valid with >=
# %(o3_min_hours)s valid hours; the day's value is its largest valid window (min: the
# smallest), valid with >= %(o3_min_windows)s valid windows, or with fewer when the maximum
# exceeds the Grade II 8-hour limit in force that day (%(o3_limit_*)s, by day). windows:
# the windows holding any data. A day without any data has no row.
O3_DAILY_MAX_8H_OF_HOURS = """
SELECT w.station_id, w.day,
       max(w.mean) FILTER (WHERE w.valid_hours >= %(o3_min_hours)s) AS maximum,
       min(w.mean) FILTER (WHERE w.valid_hours >= %(o3_min_hours)s) AS minimum,
       count(*) FILTER (WHERE w.valid_hours >= %(o3_min_hours)s) AS valid_windows,
       count(*) FILTER (WHERE w.hours > 0) AS windows,
       coalesce(count(*) FILTER (WHERE w.valid_hours >= %(o3_min_hours)s) >= %(o3_min_windows)s
                OR max(w.mean) FILTER (WHERE w.valid_hours >= %(o3_min_hours)s) > (
                    SELECT l.value
                    FROM unnest(%(o3_limit_from)s::date[], %(o3_limit_to)s::date[],
                                %(o3_limit_value)s::float8[]) AS l(d_from, d_to, value)
                    WHERE w.day BETWEEN l.d_from AND l.d_to), false) AS valid
FROM (
    SELECT g.station_id, g.day, g.bucket, g.last_start,
           avg(h.mean) FILTER (WHERE h.valid) OVER next_8h AS mean,
           count(*) FILTER (WHERE h.valid) OVER next_8h AS valid_hours,
           count(h.bucket) OVER next_8h AS hours
    FROM (SELECT k.station_id, k.day, k.end_ts - interval '8 hours' AS last_start, b.bucket
          FROM {days} k
          CROSS JOIN generate_series(k.first_ts, k.end_ts - interval '1 hour',
                                     interval '1 hour') AS b(bucket)) g
    LEFT JOIN {hours} h ON h.station_id = g.station_id AND h.day = g.day AND h.bucket = g.bucket
    WINDOW next_8h AS (PARTITION BY g.station_id, g.day ORDER BY g.bucket
                       ROWS BETWEEN CURRENT ROW AND 7 FOLLOWING)
) w
WHERE w.bucket <= w.last_start
GROUP BY w.station_id, w.day
HAVING count(*) FILTER (WHERE w.hours > 0) > 0"""

# The 'o3_8h' twin of every 'o3' station-day: mean = max = the daily maximum 8-hour mean,
# min = the smallest valid 8-hour mean, valid_hours = valid windows, hours = windows with data.
INSERT_O3_8H_DAYS = f"""
WITH o3_days AS MATERIALIZED (
    SELECT station_id, parameter, day, first_ts, end_ts FROM stage_days WHERE parameter = 'o3'
),
o3_hours AS MATERIALIZED ({_HOURS_OF_DAYS.format(days="o3_days", source="'o3'", where="true")})
INSERT INTO readings_daily (station_id, parameter, day, mean, min, max, valid_hours, hours, valid)
SELECT m.station_id, '{O3_DAILY_MAX_8H}', m.day, m.maximum, m.minimum, m.maximum,
       m.valid_windows, m.windows, m.valid
FROM ({O3_DAILY_MAX_8H_OF_HOURS.format(days="o3_days", hours="o3_hours")}) m
"""

# A late reading never replaces a newer "latest"; the newest reading of a station-parameter
# lies in the latest day the batch touched.
REFRESH_LATEST = """
INSERT INTO latest_readings AS l (station_id, parameter, ts, value, received_at)
SELECT k.station_id, k.parameter, r.ts, r.value, r.received_at
FROM (SELECT DISTINCT ON (station_id, parameter) station_id, parameter, first_ts, end_ts
      FROM stage_days ORDER BY station_id, parameter, day DESC) k
CROSS JOIN LATERAL (
    SELECT r.ts, r.value, r.received_at FROM readings r
    WHERE r.station_id = k.station_id AND r.parameter = k.parameter
      AND r.ts >= k.first_ts AND r.ts < k.end_ts
    ORDER BY r.ts DESC LIMIT 1
) r
ON CONFLICT (station_id, parameter) DO UPDATE SET
    ts = excluded.ts, value = excluded.value, received_at = excluded.received_at
WHERE l.ts < excluded.ts
"""

DELETE_CITY_DAYS = """
DELETE FROM city_daily c USING stage_city_days k
WHERE c.city_code = k.city_code AND c.parameter = k.parameter AND c.day = k.day
"""

# HJ 663: a city's daily value is the mean of its air stations' valid daily values; of a
# dust-excluded series, a station's own row, or without one (no event that day) its measured
# day (the row of the series itself sorts first).
INSERT_CITY_DAYS = f"""
INSERT INTO city_daily (city_code, parameter, day, mean, stations)
SELECT d.city_code, d.parameter, d.day, avg(d.mean), count(*)
FROM (
    SELECT DISTINCT ON (k.city_code, k.parameter, k.day, s.station_id)
           k.city_code, k.parameter, k.day, x.mean, x.valid
    FROM stage_city_days k
    JOIN stations s ON s.city_code = k.city_code AND s.kind = 'air'
    LEFT JOIN (VALUES {_DUST_TWINS}) AS t(measured, excluded) ON t.excluded = k.parameter
    JOIN readings_daily x ON x.station_id = s.station_id AND x.day = k.day
     AND x.parameter IN (k.parameter, coalesce(t.measured, k.parameter))
    ORDER BY k.city_code, k.parameter, k.day, s.station_id, x.parameter = k.parameter DESC
) d
WHERE d.valid
GROUP BY d.city_code, d.parameter, d.day
"""

# The daily AQI inputs of every city-day the batch touched: the mean over the city's air
# stations of each one's valid daily AQI input (storage.aqi_queries, as the API reads them).
CITY_DAY_AQI_INPUTS = f"""
WITH keys AS (SELECT DISTINCT city_code, day FROM stage_city_days)
SELECT k.city_code, k.day, i.input_key, avg(i.value)
FROM keys k
JOIN stations s ON s.city_code = k.city_code AND s.kind = 'air'
CROSS JOIN LATERAL ({
    STATION_DAY_AQI_INPUTS.format(where="d.station_id = s.station_id AND d.day = k.day")
}) i
GROUP BY k.city_code, k.day, i.input_key
ORDER BY k.city_code, k.day, i.input_key
"""

DELETE_CITY_DAY_AQIS = """
DELETE FROM city_daily_aqi a
USING (SELECT DISTINCT city_code, day FROM stage_city_days) k
WHERE a.city_code = k.city_code AND a.day = k.day
"""

COPY_CITY_DAY_AQIS = """
COPY city_daily_aqi (city_code, day, aqi, version, primary_pollutants, beyond_index,
                     not_computable, missing) FROM STDIN
"""

_MONTHS = ", ".join(
    f"count(*) FILTER (WHERE extract(month FROM {{day}}) = {m})" for m in range(1, 13)
)

# The rules of the yearly statistics, as parameters: the HJ 663 percentile of each
# parameter and the Grade II 24-hour limit of every GB 3095 version by date.
_RULES = """
fractions AS (
    SELECT * FROM unnest(%(fraction_parameter)s::text[], %(fraction)s::float8[])
        AS f(parameter, fraction)
),
limits AS (
    SELECT * FROM unnest(%(limit_parameter)s::text[], %(limit_from)s::date[],
                         %(limit_to)s::date[], %(limit_value)s::float8[])
        AS l(parameter, d_from, d_to, value)
)"""

_STATISTICS = """
avg({v}.mean), count(*),
CASE WHEN f.fraction IS NOT NULL
     THEN percentile_cont(coalesce(f.fraction, 0.5)) WITHIN GROUP (ORDER BY {v}.mean) END,
count(*) FILTER (WHERE {v}.mean > l.value),
ARRAY[{months}]"""

_DAY_MONTHS = _MONTHS.format(day="d.day")
_CITY_MONTHS = _MONTHS.format(day="c.day")

DELETE_STATION_YEARS = """
DELETE FROM station_yearly y
USING (SELECT DISTINCT parameter, extract(year FROM day)::int AS year, station_id
       FROM stage_days) k
WHERE y.parameter = k.parameter AND y.year = k.year AND y.station_id = k.station_id
"""

INSERT_STATION_YEARS = f"""
WITH {_RULES},
keys AS (
    SELECT DISTINCT k.parameter, extract(year FROM k.day)::int AS year, k.station_id, t.measured
    FROM stage_days k JOIN stations s ON s.station_id = k.station_id AND s.kind = 'air'
    LEFT JOIN (VALUES {_DUST_TWINS}) AS t(measured, excluded) ON t.excluded = k.parameter
)
INSERT INTO station_yearly (parameter, year, station_id, mean, valid_days, percentile,
                            days_over_limit, valid_days_by_month, reviewed_hours)
SELECT k.parameter, k.year, k.station_id, {_STATISTICS.format(v="d", months=_DAY_MONTHS)},
       (SELECT coalesce(sum(x.reviewed_hours), 0) FROM readings_daily x
        WHERE x.station_id = k.station_id AND x.parameter = coalesce(k.measured, k.parameter)
          AND x.day >= make_date(k.year, 1, 1) AND x.day <= make_date(k.year, 12, 31))
FROM keys k
CROSS JOIN LATERAL (  -- a dust-excluded series' days without an event: the measured days
    SELECT DISTINCT ON (x.day) x.day, x.mean, x.valid FROM readings_daily x
    WHERE x.station_id = k.station_id
      AND x.parameter IN (k.parameter, coalesce(k.measured, k.parameter))
      AND x.day >= make_date(k.year, 1, 1) AND x.day <= make_date(k.year, 12, 31)
    ORDER BY x.day, x.parameter = k.parameter DESC
) d
LEFT JOIN fractions f ON f.parameter = k.parameter
LEFT JOIN limits l ON l.parameter = k.parameter AND d.day BETWEEN l.d_from AND l.d_to
WHERE d.valid
GROUP BY k.parameter, k.year, k.station_id, k.measured, f.fraction
"""

DELETE_CITY_YEARS = """
DELETE FROM city_yearly y
USING (SELECT DISTINCT parameter, extract(year FROM day)::int AS year, city_code
       FROM stage_city_days) k
WHERE y.parameter = k.parameter AND y.year = k.year AND y.city_code = k.city_code
"""

INSERT_CITY_YEARS = f"""
WITH {_RULES},
keys AS (
    SELECT DISTINCT parameter, extract(year FROM day)::int AS year, city_code
    FROM stage_city_days
)
INSERT INTO city_yearly (parameter, year, city_code, mean, valid_days, percentile,
                         days_over_limit, valid_days_by_month, stations)
SELECT k.parameter, k.year, k.city_code, {_STATISTICS.format(v="c", months=_CITY_MONTHS)},
       max(c.stations)
FROM keys k
JOIN city_daily c ON c.city_code = k.city_code AND c.parameter = k.parameter
 AND c.day >= make_date(k.year, 1, 1) AND c.day <= make_date(k.year, 12, 31)
LEFT JOIN fractions f ON f.parameter = k.parameter
LEFT JOIN limits l ON l.parameter = k.parameter AND c.day BETWEEN l.d_from AND l.d_to
GROUP BY k.parameter, k.year, k.city_code, f.fraction
"""

# Surface-water sections' years the batch touched: each item's monthly means (mean of its
# valid daily values) and worst value (largest daily value) of every month.
WATER_MONTHS = """
WITH keys AS (
    SELECT DISTINCT extract(year FROM k.day)::int AS year, k.station_id, s.waterbody
    FROM stage_days k JOIN stations s ON s.station_id = k.station_id
    WHERE s.kind = 'surface_water'
)
SELECT k.year, k.station_id, k.waterbody, d.parameter, extract(month FROM d.day)::int,
       avg(d.mean), max(d.max)
FROM keys k
LEFT JOIN readings_daily d ON d.station_id = k.station_id AND d.valid
 AND d.day >= make_date(k.year, 1, 1) AND d.day <= make_date(k.year, 12, 31)
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5
"""

# Water years of stations that are no longer sections (or no longer exist).
DELETE_STALE_WATER_YEARS = """
DELETE FROM water_yearly y
USING (SELECT DISTINCT extract(year FROM day)::int AS year, station_id FROM stage_days) k
WHERE y.year = k.year AND y.station_id = k.station_id
  AND NOT EXISTS (SELECT 1 FROM stations s
                  WHERE s.station_id = k.station_id AND s.kind = 'surface_water')
"""

UPSERT_WATER_YEAR = """
INSERT INTO water_yearly (year, station_id, water_class, method, deciding, months_with_data,
                          annual_means, monthly_means)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (year, station_id) DO UPDATE SET
    water_class = excluded.water_class, method = excluded.method,
    deciding = excluded.deciding, months_with_data = excluded.months_with_data,
    annual_means = excluded.annual_means, monthly_means = excluded.monthly_means
"""

DELETE_WATER_YEAR = "DELETE FROM water_yearly WHERE year = %s AND station_id = %s"

# The oldest change not yet reflected (None: none pending) and how many are pending.
PENDING = "SELECT min(queued_at), count(*) FROM aggregation_queue"

# Every reading committed before this instant is reflected in every derived level.
AS_OF = "SELECT coalesce(min(queued_at), now()) FROM aggregation_queue"

RULES_OF = "SELECT fingerprint FROM aggregation_rules WHERE level = %s"
SET_RULES = """
INSERT INTO aggregation_rules (level, fingerprint) VALUES (%s, %s)
ON CONFLICT (level) DO UPDATE SET fingerprint = excluded.fingerprint
"""
# Every station, to recompute its levels by new rules; not one whose whole-station row is
# already queued and not yet claimed (a migration's rebuild: the stage that claims it runs by
# these rules).
QUEUE_EVERY_STATION = """
INSERT INTO aggregation_queue (station_id)
SELECT s.station_id FROM stations s
WHERE NOT EXISTS (SELECT 1 FROM aggregation_queue q
                  WHERE q.station_id = s.station_id AND q.day IS NULL
                  FOR UPDATE SKIP LOCKED)
ORDER BY s.station_id
"""


@dataclass(frozen=True)
class YearlyRules:
    """What the yearly statistics are judged by, as the statements take it."""

    fractions: dict[str, float]  # parameter -> percentile fraction (0..1)
    # (parameter, first day, last day, Grade II 24-hour limit or None)
    daily_limits: Sequence[tuple[str, date, date, float | None]]

    def params(self) -> dict[str, Any]:
        return {
            "fraction_parameter": list(self.fractions),
            "fraction": list(self.fractions.values()),
            "limit_parameter": [p for p, _, _, _ in self.daily_limits],
            "limit_from": [f for _, f, _, _ in self.daily_limits],
            "limit_to": [t for _, _, t, _ in self.daily_limits],
            "limit_value": [v for _, _, _, v in self.daily_limits],
        }


@dataclass(frozen=True)
class DailyMax8hRule:
    """What an O3 daily maximum 8-hour mean is judged by (O3_DAILY_MAX_8H_OF_HOURS): valid
    hours a window needs, valid windows a day needs, and the Grade II 8-hour limit (µg/m³)
    by days (first day, last day, both inclusive) above which a day with fewer counts."""

    min_hours: int
    min_windows: int
    limits: Sequence[tuple[date, date, float | None]]

    def params(self) -> dict[str, Any]:
        return {
            "o3_min_hours": self.min_hours,
            "o3_min_windows": self.min_windows,
            "o3_limit_from": [f for f, _, _ in self.limits],
            "o3_limit_to": [t for _, t, _ in self.limits],
            "o3_limit_value": [v for _, _, v in self.limits],
        }


def daily_max_8h_rule() -> DailyMax8hRule:
    """The rule of GB 3095 Table 4 and HJ 663 (STANDARDS.md §3a), with the Grade II 8-hour
    limit of every GB 3095 version by the days it judges."""
    return DailyMax8hRule(
        O3_8H_MIN_HOURS,
        O3_DAILY_MAX_8H_MIN_WINDOWS,
        [(first, last, s.limit("o3", "8h", 2)) for first, last, s in days_judged()],
    )


@dataclass(frozen=True)
class Claimed:
    """A claimed batch: queue rows, station-days, the oldest queued_at among them."""

    rows: int
    days: int
    oldest: datetime | None


@dataclass(frozen=True)
class WaterMonth:
    """An item's monthly mean and worst value of a section-year (item None: no data)."""

    year: int
    station_id: str
    waterbody: str | None
    parameter: str | None
    month: int | None
    mean: float | None
    worst: float | None


def prepare_connection(conn: psycopg.Connection) -> None:
    """Create the stage's per-connection tables."""
    conn.execute(_TEMP_TABLES)
    conn.commit()


def tune(conn: psycopg.Connection) -> None:
    """Settings of a batch's transaction (they end with it): its sorts and hashes of a few
    thousand keys in memory; no JIT compile time."""
    conn.execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")


def claim(conn: psycopg.Connection, limit: int, stations: int) -> Claimed:
    """Claim up to ``limit`` station-day rows and ``stations`` whole-station rows of the
    queue (inside the caller's transaction: they are deleted when it commits, and back in the
    queue if it does not) and expand them to station-days; the transaction is ``tune``d."""
    tune(conn)
    conn.execute(CLAIM, {"limit": limit, "stations": stations})
    row = conn.execute("SELECT count(*), min(queued_at) FROM stage_queue").fetchone()
    assert row is not None
    if not row[0]:
        return Claimed(0, 0, None)
    conn.execute(EXPAND_DAYS)
    conn.execute("ANALYZE stage_days")
    span = conn.execute(SPAN_OF_DAYS).fetchone()
    assert span is not None
    return Claimed(int(row[0]), int(span[2]), row[1])


def claimed_rows(conn: psycopg.Connection) -> list[tuple[str, str | None, date | None]]:
    """(station, parameter, day) of the queue rows the batch claimed."""
    return [
        (row[0], row[1], row[2])
        for row in conn.execute("SELECT station_id, parameter, day FROM stage_queue")
    ]


def refresh_station_days(
    conn: psycopg.Connection, hourly_min_s: int, o3_rule: DailyMax8hRule | None = None
) -> None:
    """Lock the batch's station-years and recompute its station-days (the O3 daily maximum
    8-hour ones by ``o3_rule``, default ``daily_max_8h_rule()``) and latest values."""
    rule = o3_rule or daily_max_8h_rule()
    conn.execute(LOCK_STATION_YEARS)
    conn.execute(DELETE_STATION_DAYS)
    conn.execute(INSERT_STATION_DAYS, {"hourly_min_s": hourly_min_s})
    conn.execute(INSERT_DUSTED_TWINS, {"hourly_min_s": hourly_min_s})
    conn.execute(INSERT_EMPTY_DUSTED_TWINS)
    conn.execute(INSERT_O3_8H_DAYS, {"hourly_min_s": hourly_min_s, **rule.params()})
    conn.execute(REFRESH_LATEST)


def refresh_station_years(conn: psycopg.Connection, rules: YearlyRules) -> None:
    """Recompute the air stations' yearly statistics of the batch's station-years (their
    locks are held since refresh_station_days)."""
    conn.execute(DELETE_STATION_YEARS)
    conn.execute(INSERT_STATION_YEARS, rules.params())


def refresh_cities(conn: psycopg.Connection, rules: YearlyRules) -> None:
    """Lock the batch's city-years, recompute their city-days, then their yearly statistics."""
    conn.execute(EXPAND_CITY_DAYS)
    conn.execute(LOCK_CITY_YEARS)
    conn.execute(DELETE_CITY_DAYS)
    conn.execute(INSERT_CITY_DAYS)
    conn.execute(DELETE_CITY_YEARS)
    conn.execute(INSERT_CITY_YEARS, rules.params())


@dataclass(frozen=True)
class CityDayAqi:
    """A city's daily AQI (HJ 633, ``version`` in force that day); ``aqi`` None: not
    computable, ``not_computable`` says why."""

    city_code: str
    day: date
    aqi: int | None
    version: str
    primary_pollutants: list[str]
    beyond_index: bool
    not_computable: str | None
    missing: list[str]


def city_day_aqi_inputs(conn: psycopg.Connection) -> dict[tuple[str, date], dict[str, float]]:
    """The daily AQI inputs (standards.aqi.daily_aqi keys) of every city-day the batch
    touched that has any; call after ``refresh_cities`` (its city-year locks held)."""
    inputs: dict[tuple[str, date], dict[str, float]] = {}
    for city_code, day, input_key, value in conn.execute(
        CITY_DAY_AQI_INPUTS, {"aqi_parameters": list(DAILY_AQI_PARAMETERS)}
    ):
        inputs.setdefault((city_code, day), {})[input_key] = value
    return inputs


def save_city_day_aqis(conn: psycopg.Connection, rows: Sequence[CityDayAqi]) -> None:
    """Replace the daily AQIs of every city-day the batch touched by ``rows``."""
    conn.execute(DELETE_CITY_DAY_AQIS)
    if not rows:
        return
    with conn.cursor().copy(COPY_CITY_DAY_AQIS) as copy:
        for r in rows:
            copy.write_row(
                (
                    r.city_code,
                    r.day,
                    r.aqi,
                    r.version,
                    r.primary_pollutants,
                    r.beyond_index,
                    r.not_computable,
                    r.missing,
                )
            )


def water_months(conn: psycopg.Connection) -> list[WaterMonth]:
    """The monthly values of every item of the section-years the batch touched."""
    conn.execute(DELETE_STALE_WATER_YEARS)
    return [WaterMonth(*row) for row in conn.execute(WATER_MONTHS)]


@dataclass(frozen=True)
class WaterYearRow:
    year: int
    station_id: str
    water_class: int | None
    method: str
    deciding: list[str]
    months_with_data: int
    annual_means: dict[str, float]
    monthly_means: dict[str, list[float | None]]


def save_water_years(conn: psycopg.Connection, rows: Sequence[WaterYearRow]) -> None:
    """Store section-years; a section-year without data is removed."""
    with conn.cursor() as cur:
        kept = [r for r in rows if r.months_with_data]
        cur.executemany(
            UPSERT_WATER_YEAR,
            [
                (
                    r.year,
                    r.station_id,
                    r.water_class,
                    r.method,
                    r.deciding,
                    r.months_with_data,
                    Jsonb(r.annual_means),
                    Jsonb(r.monthly_means),
                )
                for r in kept
            ],
        )
        cur.executemany(
            DELETE_WATER_YEAR, [(r.year, r.station_id) for r in rows if not r.months_with_data]
        )


def pending(conn: psycopg.Connection) -> tuple[datetime | None, int]:
    """The oldest pending change's queued_at (None: nothing pending) and how many are pending."""
    row = conn.execute(PENDING).fetchone()
    assert row is not None
    return row[0], int(row[1])


def as_of(conn: psycopg.Connection) -> datetime:
    """The instant before which every committed reading is reflected in the derived levels
    (take it before reading them)."""
    row = conn.execute(AS_OF).fetchone()
    assert row is not None
    return row[0]


def rules_fingerprint(conn: psycopg.Connection, level: str) -> str | None:
    row = conn.execute(RULES_OF, (level,)).fetchone()
    return None if row is None else str(row[0])


def record_rules(conn: psycopg.Connection, level: str, fingerprint: str, rebuild: bool) -> None:
    """Record the rules ``fingerprint`` of ``level``; ``rebuild``: also queue every station."""
    with conn.transaction():
        if rebuild:
            conn.execute(QUEUE_EVERY_STATION)
        conn.execute(SET_RULES, (level, fingerprint))
