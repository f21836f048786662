"""What the alert rules judge: the values a batch's new readings (in the temporary table
``new_readings`` of the ingest transaction) give each active subscription in whose scope
their station lies, and the stations that have gone silent.

A station is in a subscription's scope when the scope is ``all``, names the station, its
city code or its province.

The hourly and daily means are computed here from raw ``readings``, inside the ingest
transaction, so they see the batch's own uncommitted rows and everything committed. The
derived tables (``readings_daily``, ``latest_readings``) are maintained later by the
aggregation stage (ingest.aggregation) and are stale here: no judgement reads them. Each
mean is computed once per touched key (station, parameter, UTC hour or station-local day)
by a LATERAL query on the readings index (station_id, parameter, ts), within constant time
bounds (chunk exclusion when planning) and the key's own bounds (TimescaleDB's exclusion at
run time), and only for the keys a subscription of that target watches: the cost follows
the batch, never the history. A statement holds the parts of the targets of the active
subscriptions only (``values_statement``), so a batch judged by reading rules alone never
plans a query on ``readings``."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import psycopg

from storage.aggregation import DAY_HOURS, O3_DAILY_MAX_8H_OF_HOURS, DailyMax8hRule

# (subscription, station) pairs whose station is in the subscription's scope and has new rows
_IN_SCOPE = """
in_scope AS (
    SELECT s.subscription_id, s.target, s.parameter, st.station_id, st.timezone,
           st.reading_interval_s
    FROM alert_subscriptions s
    JOIN stations st ON st.station_id IN (SELECT DISTINCT station_id FROM new_readings)
    WHERE s.active AND (
        s.scope = 'all'
        OR (s.scope IN ('station', 'stations') AND st.station_id = ANY (s.scope_values))
        OR (s.scope = 'city' AND st.city_code = ANY (s.scope_values))
        OR (s.scope = 'province' AND st.province = ANY (s.scope_values)))
)"""

# The station-local day of a reading: the day the start of its UTC hour falls in, as
# readings_daily and the aggregation stage (and the writer's queue) count them.
_LOCAL_DAY = "(time_bucket('1 hour', {ts}) AT TIME ZONE {tz})::date"

# The instants between which the readings of the hours of local day ``day`` lie, an hour
# wider on each side (zones with a fractional offset, days that do not start at midnight):
# the bounds of the index scan, the day filter keeps exactly the day's hours.
_DAY_BOUNDS = """
(day::timestamp AT TIME ZONE timezone) - interval '1 hour' AS lo,
((day + 1)::timestamp AT TIME ZONE timezone) + interval '1 hour' AS hi"""

# The hourly mean of the UTC hour k.bucket of (k.station_id, k.parameter), exactly as the
# view readings_hourly (0008) gives it: valid with count × greatest(the station's interval,
# the hour's coverage) >= 2700 s (45 minutes of data, GB 3095-2026 Table 4). %(lo)s and
# %(hi)s: constant bounds of every key of the statement (``lock_days``).
_HOUR_OF_KEY = """
LATERAL (
    SELECT g.mean,
           g.count * greatest(k.reading_interval_s, coalesce(c.coverage_s, 0)) >= 2700 AS valid
    FROM (SELECT avg(r.value) AS mean, count(*)::integer AS count
          FROM readings r
          WHERE r.station_id = k.station_id AND r.parameter = k.parameter
            AND r.ts >= k.bucket AND r.ts < k.bucket + interval '1 hour'
            AND r.ts >= %(lo)s AND r.ts < %(hi)s) g
    LEFT JOIN hourly_coverage c
           ON c.station_id = k.station_id AND c.parameter = k.parameter AND c.bucket = k.bucket
)"""

# The hours of the station-local day k.day of (k.station_id, {parameter}) that hold readings:
# each hourly mean and whether it is valid, exactly as the view readings_hourly (0008) and
# the aggregation stage give them. k has the columns of _DAY_BOUNDS, kept by a MATERIALIZED
# CTE: plain values, which TimescaleDB's ChunkAppend excludes chunks by at run time. The
# rows are fetched in a subquery of their own (OFFSET 0): grouped directly by their hour,
# the planner would merge the chunks in ts order instead (a MergeAppend, which scans every
# chunk in the constant bounds for each key).
_HOURS_OF_DAY_KEY = """(
    SELECT g.bucket, g.mean,
           g.count * greatest(k.reading_interval_s, coalesce(c.coverage_s, 0)) >= 2700 AS valid
    FROM (SELECT time_bucket('1 hour', r.ts) AS bucket, avg(r.value) AS mean,
                 count(*)::integer AS count
          FROM (SELECT r.ts, r.value FROM readings r
                WHERE r.station_id = k.station_id AND r.parameter = {parameter}
                  AND r.ts >= k.lo AND r.ts < k.hi
                  AND r.ts >= %(lo)s AND r.ts < %(hi)s
                OFFSET 0) r
          WHERE (time_bucket('1 hour', r.ts) AT TIME ZONE k.timezone)::date = k.day
          GROUP BY time_bucket('1 hour', r.ts)) g
    LEFT JOIN hourly_coverage c
           ON c.station_id = k.station_id AND c.parameter = {parameter} AND c.bucket = g.bucket
)"""

# The daily mean of the station-local day k.day of (k.station_id, {parameter}): the mean of
# the day's valid hourly means (HJ 663), valid with >= parameters.daily_min_hours valid
# hours, exactly as readings_daily holds it; max: its largest valid hourly mean.
_DAY_OF_KEY = f"""
LATERAL (
    SELECT avg(h.mean) FILTER (WHERE h.valid) AS mean, max(h.mean) FILTER (WHERE h.valid) AS max,
           count(*) FILTER (WHERE h.valid) >= p.daily_min_hours AS valid
    FROM {_HOURS_OF_DAY_KEY} h
    JOIN parameters p ON p.parameter = {{parameter}}
    GROUP BY p.daily_min_hours
)"""

# Per target of VALUES_OF_NEW_ROWS: the CTEs it needs (after in_scope) and its part of the
# result (subscription, station, observed_at, value, day). Each hour and day is computed
# once per touched key, whatever the number of subscriptions that watch it.
_VALUE_PARTS: dict[str, tuple[str, str]] = {
    "reading": (
        "",
        """
SELECT i.subscription_id, i.station_id, n.ts, n.value, NULL::date
FROM in_scope i JOIN new_readings n ON n.station_id = i.station_id AND n.parameter = i.parameter
WHERE i.target IN ('reading', 'water_class')""",
    ),
    "hourly_mean": (
        f""",
hour_keys AS (
    SELECT DISTINCT n.station_id, n.parameter, time_bucket('1 hour', n.ts) AS bucket,
           i.reading_interval_s
    FROM new_readings n
    JOIN in_scope i ON i.station_id = n.station_id AND i.parameter = n.parameter
                   AND i.target = 'hourly_mean'
),
hours AS (
    SELECT k.station_id, k.parameter, k.bucket, h.mean
    FROM hour_keys k CROSS JOIN {_HOUR_OF_KEY} h
    WHERE h.valid
)""",
        """
SELECT i.subscription_id, i.station_id, h.bucket, h.mean, NULL::date
FROM in_scope i JOIN hours h ON h.station_id = i.station_id AND h.parameter = i.parameter
WHERE i.target = 'hourly_mean'""",
    ),
    "daily_mean": (
        f""",
day_keys AS MATERIALIZED (
    SELECT t.*, {_DAY_BOUNDS}
    FROM (SELECT DISTINCT n.station_id, n.parameter,
                 {_LOCAL_DAY.format(ts="n.ts", tz="i.timezone")} AS day,
                 i.timezone, i.reading_interval_s
          FROM new_readings n
          JOIN in_scope i ON i.station_id = n.station_id AND i.parameter = n.parameter
                         AND i.target = 'daily_mean') t
),
days AS (
    SELECT k.station_id, k.parameter, k.day, d.mean
    FROM day_keys k CROSS JOIN {_DAY_OF_KEY.format(parameter="k.parameter")} d
    WHERE d.valid
)""",
        """
SELECT i.subscription_id, i.station_id, d.day::timestamp AT TIME ZONE i.timezone, d.mean, d.day
FROM in_scope i JOIN days d ON d.station_id = i.station_id AND d.parameter = i.parameter
WHERE i.target = 'daily_mean'""",
    ),
    "silence": (
        "",
        """
SELECT i.subscription_id, i.station_id, max(n.ts), NULL, NULL::date
FROM in_scope i JOIN new_readings n ON n.station_id = i.station_id
WHERE i.target = 'silence'
GROUP BY i.subscription_id, i.station_id""",
    ),
}
_VALUE_PARTS["water_class"] = _VALUE_PARTS["reading"]


@cache
def values_statement(targets: frozenset[str]) -> str:
    """The statement of the values the new rows give the subscriptions of ``targets`` (those
    without a part here, daily_aqi, are left out; see ``daily_aqi_inputs``)."""
    parts = [_VALUE_PARTS[t] for t in sorted(targets) if t in _VALUE_PARTS]
    parts = list(dict.fromkeys(parts))  # reading and water_class share one part
    if not parts:
        return ""
    ctes = "".join(cte for cte, _ in parts)
    return f"WITH {_IN_SCOPE}{ctes}" + "\nUNION ALL".join(select for _, select in parts)


# Values to judge: (subscription, station, observed_at, value, day), for every target
VALUES_OF_NEW_ROWS = values_statement(frozenset(_VALUE_PARTS))

# The daily AQI inputs (standards.aqi.daily_aqi keys, as storage.aqi_queries reads them
# from readings_daily) of the station-local days the batch's pollutant rows touched, at the
# stations in scope of a daily_aqi subscription: the valid daily means of the pollutants
# but O3; 'o3_1h', the largest valid hourly mean of a valid O3 day; 'o3_8h', the valid O3
# daily maximum 8-hour mean, by the aggregation stage's own rule (O3_DAILY_MAX_8H_OF_HOURS).
DAILY_AQI_INPUTS = f"""
WITH {_IN_SCOPE},
day_keys AS MATERIALIZED (
    SELECT t.*, {_DAY_BOUNDS}, {DAY_HOURS.format(day="t.day", tz="t.timezone")}
    FROM (SELECT DISTINCT n.station_id,
                 {_LOCAL_DAY.format(ts="n.ts", tz="i.timezone")} AS day,
                 i.timezone, i.reading_interval_s
          FROM new_readings n
          JOIN in_scope i ON i.station_id = n.station_id AND i.target = 'daily_aqi'
          WHERE n.parameter = ANY (%(pollutants)s)) t
),
days AS (
    SELECT k.station_id, k.day,
           CASE pollutant.parameter WHEN 'o3' THEN 'o3_1h' ELSE pollutant.parameter END
               AS input_key,
           CASE pollutant.parameter WHEN 'o3' THEN d.max ELSE d.mean END AS value
    FROM day_keys k
    CROSS JOIN unnest(%(pollutants)s::text[]) AS pollutant(parameter)
    CROSS JOIN {_DAY_OF_KEY.format(parameter="pollutant.parameter")} d
    WHERE d.valid
),
o3_hours AS MATERIALIZED (
    SELECT k.station_id, k.day, h.bucket, h.mean, h.valid
    FROM day_keys k CROSS JOIN LATERAL {_HOURS_OF_DAY_KEY.format(parameter="'o3'")} h
),
o3_days AS (
    SELECT m.station_id, m.day, 'o3_8h' AS input_key, m.maximum AS value
    FROM ({O3_DAILY_MAX_8H_OF_HOURS.format(days="day_keys", hours="o3_hours")}) m
    WHERE m.valid
),
inputs AS (SELECT * FROM days UNION ALL SELECT * FROM o3_days)
SELECT i.subscription_id, i.station_id, d.day, d.day::timestamp AT TIME ZONE i.timezone,
       d.input_key, d.value
FROM in_scope i JOIN inputs d ON d.station_id = i.station_id
WHERE i.target = 'daily_aqi'
"""

# Targets judged by means over the hours or days of the touched keys, which need the day
# locks: two writers committing different readings of one hour or day at once would each
# see only their own.
MEAN_TARGETS = frozenset({"hourly_mean", "daily_mean", "daily_aqi"})

# Concurrent writers (ingest workers sharing the subscription, import jobs) may add different
# readings of one station-day at once, and a statement sees only what was committed when it
# started. So before the statements that read the means, a transaction takes the locks of
# the (station, parameter, local day) keys its rows touch that a mean subscription in scope
# watches (for daily_aqi the key is (station, 'daily_aqi', day): the AQI reads every
# pollutant of the day), in one sorted order (no deadlock); the statements that follow take a
# fresh snapshot (READ COMMITTED) that includes what the lock's previous holder committed.
# The keys are hashed into DAY_LOCK_SLOTS locks, so a batch of 100,000 water samples (each
# its own day) holds at most that many (PostgreSQL's lock table is shared and small);
# writers of different days rarely share a slot, and a shared slot only makes them judge one
# after the other. The statement also returns the first and last instant of the readings of
# those days, the constant bounds of the statements that read the means (chunk exclusion).
DAY_LOCK_SLOTS = 256  # lock ids 1096220672 (0x41570000) + slot
LOCK_DAYS = f"""
WITH {_IN_SCOPE},
keys AS (
    SELECT t.*, {_DAY_BOUNDS}
    FROM (SELECT DISTINCT n.station_id,
                 CASE WHEN i.target = 'daily_aqi' THEN 'daily_aqi' ELSE n.parameter END AS what,
                 {_LOCAL_DAY.format(ts="n.ts", tz="i.timezone")} AS day, i.timezone
          FROM new_readings n JOIN in_scope i ON i.station_id = n.station_id
          WHERE (i.target IN ('hourly_mean', 'daily_mean') AND n.parameter = i.parameter)
             OR (i.target = 'daily_aqi' AND n.parameter = ANY (%(pollutants)s))) t
),
slots AS (
    SELECT DISTINCT abs(hashtextextended(
        station_id || '/' || what || '/' || day, 7) %% {DAY_LOCK_SLOTS}) AS slot
    FROM keys
    ORDER BY slot
)
SELECT (SELECT count(pg_advisory_xact_lock(1096220672 + slot)) FROM slots), min(lo), max(hi)
FROM keys
"""

# Stations in scope whose newest reading arrived longer ago than the subscription allows
# (or never), and whose silence alert is not already firing.
SILENT_STATIONS = """
SELECT s.subscription_id, st.station_id, s.channel, s.for_minutes, last.received_at
FROM alert_subscriptions s
JOIN stations st ON st.active AND (
        s.scope = 'all'
        OR (s.scope IN ('station', 'stations') AND st.station_id = ANY (s.scope_values))
        OR (s.scope = 'city' AND st.city_code = ANY (s.scope_values))
        OR (s.scope = 'province' AND st.province = ANY (s.scope_values)))
LEFT JOIN LATERAL (SELECT max(received_at) AS received_at FROM latest_readings l
                   WHERE l.station_id = st.station_id) last ON true
LEFT JOIN alert_state a ON a.subscription_id = s.subscription_id
                       AND a.station_id = st.station_id
WHERE s.active AND s.target = 'silence'
  AND coalesce(last.received_at, s.created_at) < now() - make_interval(mins => s.for_minutes)
  AND coalesce(a.state, 'ok') <> 'firing'
ORDER BY s.subscription_id, st.station_id
"""

# [first, last) instant of the readings the means of a batch may read (None: no such key)
Span = tuple[datetime | None, datetime | None]


def lock_days(cur: psycopg.Cursor[Any], pollutants: Sequence[str]) -> Span:
    """Take, until the transaction ends, the day locks of the keys the new rows touch for the
    mean subscriptions in scope (LOCK_DAYS); returns the span of the readings of those days,
    for ``values_of_new_rows`` and ``daily_aqi_inputs``. Call it before them, and only
    when a subscription of MEAN_TARGETS is active: judging without one takes no lock."""
    row = cur.execute(LOCK_DAYS, {"pollutants": list(pollutants)}).fetchone()
    return (None, None) if row is None else (row[1], row[2])


def values_of_new_rows(
    cur: psycopg.Cursor[Any], targets: Collection[str], span: Span = (None, None)
) -> list[tuple[Any, ...]]:
    """(subscription_id, station_id, observed_at, value, day) of every value the new rows
    give a subscription of one of ``targets``: the rows themselves (reading, water_class),
    the valid hourly means of their hours (hourly_mean), the valid daily means of their
    station-local days (daily_mean, with the day), and the newest row of each station
    (silence, value None). The means are computed from ``readings`` within ``span`` (from
    ``lock_days``, taken first)."""
    statement = values_statement(frozenset(targets))
    if not statement:
        return []
    params = {"lo": span[0], "hi": span[1]} if "%(lo)s" in statement else None
    return cur.execute(statement, params).fetchall()


def daily_aqi_inputs(
    cur: psycopg.Cursor[Any], pollutants: Sequence[str], span: Span, o3_rule: DailyMax8hRule
) -> list[tuple[Any, ...]]:
    """(subscription_id, station_id, day, start of the day, input key, value) of the daily AQI
    inputs (standards.aqi.daily_aqi keys) of every station-local day the new rows of one of
    ``pollutants`` touched, for each daily_aqi subscription whose scope holds the station;
    computed from ``readings`` within ``span`` (from ``lock_days``, taken first), the O3 daily
    maximum 8-hour mean by ``o3_rule``."""
    params = {"pollutants": list(pollutants), "lo": span[0], "hi": span[1], **o3_rule.params()}
    return cur.execute(DAILY_AQI_INPUTS, params).fetchall()


def silent_stations(cur: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
    """(subscription_id, station_id, channel, for_minutes, last received_at or None) of every
    active station newly silent for an active silence subscription."""
    return cur.execute(SILENT_STATIONS).fetchall()
