"""Series of a station or a city as stored: its readings (a page, or every row in chunks for
an export) and the rows its hourly, daily, monthly and annual values are made of.

Aggregation follows HJ 663: a daily value is the mean of the valid hourly means of the
station's local day, monthly and annual values the mean of the valid daily means; a city's
hourly or daily value is the mean of its stations' valid values, and its monthly and annual
values come from the city's daily values. Rows only; reports.series adds the coverage.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

# A reading as read back, with its flag: (station_id, parameter, ts, value, flag,
# flag_reason). What the writer takes is storage.writer.ReadingRow (with received_at).
StoredReading = tuple[str, str, datetime, float, str, str | None]

# Keyset on (ts, parameter); LIMIT NULL (an export) is no limit. COALESCE of a bound
# parameter folds to a constant at plan time, so TimescaleDB still excludes chunks. A reading
# in the hours of an active review reads as 'invalid' (an 'accept' review: 'valid', when it
# overrules its station's flag), the review and its reason saying why.
READINGS_OF_STATION_IN_RANGE = """
SELECT r.station_id, r.parameter, r.ts, r.value,
       CASE WHEN v.review_id IS NULL THEN r.flag
            WHEN v.action = 'accept' THEN 'valid' ELSE 'invalid' END,
       CASE WHEN v.review_id IS NULL THEN r.flag_reason
            WHEN v.action = 'accept' AND r.flag = 'valid' THEN r.flag_reason
            ELSE 'review ' || v.review_id || ': ' || v.reason
                 || coalesce(' (overrules ' || r.flag_reason || ')', '') END
FROM readings r
LEFT JOIN reviews v
       ON v.station_id = r.station_id AND v.restored_at IS NULL AND r.parameter = ANY(v.parameters)
      AND r.ts >= v.from_ts AND r.ts < v.to_ts
WHERE r.station_id = %(station_id)s
  AND (%(parameter)s::text IS NULL OR r.parameter = %(parameter)s)
  AND r.ts >= COALESCE(%(start)s::timestamptz, '-infinity')
  AND r.ts < COALESCE(%(end)s::timestamptz, 'infinity')
  AND (r.ts, r.parameter) > (COALESCE(%(after_ts)s::timestamptz, '-infinity'),
                             COALESCE(%(after_parameter)s::text, ''))
ORDER BY r.ts, r.parameter
LIMIT %(limit)s
"""

# Hour bounds: datetimes as given, or the local days given as dates (end day included), in
# each station's own timezone.
_HOUR_BOUNDS = """
      AND h.bucket >= COALESCE(%(start_ts)s::timestamptz,
                               %(start_day)s::date::timestamp AT TIME ZONE s.timezone)
      AND h.bucket < COALESCE(%(end_ts)s::timestamptz,
                              (%(end_day)s::date + 1)::timestamp AT TIME ZONE s.timezone)"""

# The stored hours of one station: mean, min and max of its valid readings in the UTC hour.
STATION_HOURLY_MEANS = f"""
SELECT h.bucket, h.mean, h.min, h.max, h.count, h.valid, s.reading_interval_s, h.review_id
FROM readings_hourly h
JOIN stations s ON s.station_id = h.station_id
WHERE h.station_id = %(station_id)s AND h.parameter = %(parameter)s {_HOUR_BOUNDS}
ORDER BY h.bucket
"""

# HJ 663: a city's hourly value is the mean of its stations' valid hourly means. The last
# column counts the city's stations with any hour of the parameter in the range.
CITY_HOURLY_MEANS = f"""
WITH station_hours AS (
    SELECT h.station_id, h.bucket, CASE WHEN h.valid THEN h.mean END AS valid_mean
    FROM readings_hourly h
    JOIN stations s ON s.station_id = h.station_id
    WHERE s.city_code = %(city_code)s AND h.parameter = %(parameter)s {_HOUR_BOUNDS}
)
SELECT bucket, avg(valid_mean), min(valid_mean), max(valid_mean), count(valid_mean),
       (SELECT count(DISTINCT station_id) FROM station_hours)
FROM station_hours
GROUP BY bucket
ORDER BY bucket
"""

# The stored local days of one station with the valid hours the parameter needs.
STATION_DAILY_MEANS = """
SELECT d.day, d.mean, d.min, d.max, d.valid_hours, p.daily_min_hours, d.reviewed_hours
FROM readings_daily d
JOIN parameters p ON p.parameter = d.parameter
WHERE d.station_id = %(station_id)s AND d.parameter = %(parameter)s
  AND d.day BETWEEN %(start_day)s AND %(end_day)s
ORDER BY d.day
"""

# A station's daily means, the valid ones only (>= the parameter's daily_min_hours).
_STATION_DAYS = """
station_days AS (
    SELECT d.station_id, d.day,
           CASE WHEN d.valid_hours >= p.daily_min_hours THEN d.mean END AS valid_mean
    FROM readings_daily d
    JOIN parameters p ON p.parameter = d.parameter
    JOIN stations s ON s.station_id = d.station_id
    WHERE {where} AND d.parameter = %(parameter)s
      AND d.day BETWEEN %(start_day)s AND %(end_day)s
)"""

# HJ 663: a city's daily value is the mean of its stations' valid daily means that day.
CITY_DAILY_MEANS = f"""
WITH {_STATION_DAYS.format(where="s.city_code = %(city_code)s")}
SELECT day, avg(valid_mean), min(valid_mean), max(valid_mean), count(valid_mean),
       (SELECT count(DISTINCT station_id) FROM station_days)
FROM station_days
GROUP BY day
ORDER BY day
"""

# Per month: sum, count, min and max of a station's valid daily means (monthly and annual
# means are sum / count, so a year adds up its months exactly).
STATION_VALID_DAYS_BY_MONTH = f"""
WITH {_STATION_DAYS.format(where="d.station_id = %(station_id)s")}
SELECT date_trunc('month', day::timestamp)::date, sum(valid_mean), count(valid_mean),
       min(valid_mean), max(valid_mean)
FROM station_days
GROUP BY 1
ORDER BY 1
"""

# The same for a city, from its daily values (HJ 663: city monthly and annual values are
# means of the city's daily values).
CITY_VALID_DAYS_BY_MONTH = f"""
WITH {_STATION_DAYS.format(where="s.city_code = %(city_code)s")},
city_days AS (
    SELECT day, avg(valid_mean) AS city_mean FROM station_days GROUP BY day
)
SELECT date_trunc('month', day::timestamp)::date, sum(city_mean), count(city_mean),
       min(city_mean), max(city_mean)
FROM city_days
GROUP BY 1
ORDER BY 1
"""

# Name and timezone of a city (the timezone most of its stations use); count 0 = unknown.
CITY_BY_CODE = """
SELECT min(city), mode() WITHIN GROUP (ORDER BY timezone), count(*)
FROM stations WHERE city_code = %(city_code)s
"""


@dataclass(frozen=True)
class Range:
    """Bounds of an aggregate query: datetimes (hourly, end excluded) or local days (both
    included); the unused pair is None."""

    start_ts: datetime | None = None
    end_ts: datetime | None = None
    start_day: date | None = None
    end_day: date | None = None

    def is_reversed(self) -> bool:
        """True when the end comes before the start."""
        if self.start_ts is not None and self.end_ts is not None:
            return self.start_ts > self.end_ts
        if self.start_day is not None and self.end_day is not None:
            return self.start_day > self.end_day
        return False

    def params(self) -> dict[str, Any]:
        return {
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "start_day": self.start_day,
            "end_day": self.end_day,
        }


@dataclass(frozen=True)
class StationHour:
    """A stored hour of a station: mean, min and max of its valid readings in the UTC hour
    starting at ``bucket``, how many readings it holds, whether it is valid, and the
    station's reading interval (s); an hour an active review took out is not valid."""

    bucket: datetime
    mean: float | None
    min: float | None
    max: float | None
    readings: int
    valid: bool
    reading_interval_s: int
    review_id: int | None = None  # the active review that took the hour out


@dataclass(frozen=True)
class StationDay:
    """A stored local day of a station, with its valid hours and the hours the parameter
    needs for a valid daily mean."""

    day: date
    mean: float | None
    min: float | None
    max: float | None
    valid_hours: int
    daily_min_hours: int
    reviewed_hours: int = 0  # hours with data a review took out


@dataclass(frozen=True)
class CityPeriod:
    """A city's hour (a UTC datetime) or local day (a date): mean, min and max of its
    stations' valid values, how many stations had one, and how many stations of the city
    have any value of the parameter in the range."""

    period: date | datetime
    mean: float | None
    min: float | None
    max: float | None
    valid_stations: int
    stations: int


@dataclass(frozen=True)
class MonthOfDays:
    """A month (its first day) of valid daily values: their sum, count, min and max."""

    month: date
    total: float | None
    valid_days: int
    min: float | None
    max: float | None


def _readings_params(
    station_id: str,
    parameter: str | None,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int | None,
) -> dict[str, Any]:
    return {
        "station_id": station_id,
        "parameter": parameter,
        "start": start,
        "end": end,
        "after_ts": after[0] if after else None,
        "after_parameter": after[1] if after else None,
        "limit": limit,
    }


def readings_of_station(
    conn: psycopg.Connection,
    station_id: str,
    parameter: str | None,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[StoredReading]:
    """Up to ``limit`` readings in [start, end) in (ts, parameter) order after the key
    ``after``; values in the parameter's stored unit."""
    with conn.cursor() as cur:
        cur.execute(
            READINGS_OF_STATION_IN_RANGE,
            _readings_params(station_id, parameter, start, end, after, limit),
        )
        return cur.fetchall()


def reading_chunks(
    conn: psycopg.Connection,
    station_id: str,
    parameter: str | None,
    start: datetime | None,
    end: datetime | None,
    rows_per_chunk: int = 5000,
) -> Generator[list[StoredReading], None, None]:
    """Every reading in [start, end) in (ts, parameter) order, ``rows_per_chunk`` rows at a
    time, through a server-side cursor: memory stays bounded whatever the range. Closing the
    generator closes the cursor."""
    params = _readings_params(station_id, parameter, start, end, None, None)
    with conn.cursor(name="readings_export") as cur:
        cur.execute(READINGS_OF_STATION_IN_RANGE, params)
        while rows := cur.fetchmany(rows_per_chunk):
            yield rows


def city_by_code(conn: psycopg.Connection, city_code: str) -> tuple[str | None, str] | None:
    """(name, timezone) of the city, or None when no station has this city code."""
    row = conn.execute(CITY_BY_CODE, {"city_code": city_code}).fetchone()
    if row is None or row[2] == 0:
        return None
    return row[0], row[1]


def _params(key: str, value: str, parameter: str, span: Range) -> dict[str, Any]:
    return {key: value, "parameter": parameter, **span.params()}


def station_hourly_means(
    conn: psycopg.Connection, station_id: str, parameter: str, span: Range
) -> list[StationHour]:
    """The stored hours of a station's parameter in ``span``, oldest first."""
    rows = conn.execute(STATION_HOURLY_MEANS, _params("station_id", station_id, parameter, span))
    return [StationHour(*row) for row in rows]


def station_daily_means(
    conn: psycopg.Connection, station_id: str, parameter: str, span: Range
) -> list[StationDay]:
    """The stored local days of a station's parameter in ``span`` (days), oldest first."""
    rows = conn.execute(STATION_DAILY_MEANS, _params("station_id", station_id, parameter, span))
    return [StationDay(*row) for row in rows]


def station_valid_days_by_month(
    conn: psycopg.Connection, station_id: str, parameter: str, span: Range
) -> list[MonthOfDays]:
    """A station's valid daily means of ``parameter`` in ``span`` (days), month by month."""
    params = _params("station_id", station_id, parameter, span)
    return [MonthOfDays(*row) for row in conn.execute(STATION_VALID_DAYS_BY_MONTH, params)]


def city_hourly_means(
    conn: psycopg.Connection, city_code: str, parameter: str, span: Range
) -> list[CityPeriod]:
    """A city's hourly values in ``span`` (HJ 663: the mean of its stations' valid hourly
    means), oldest first; ``period`` is the UTC hour."""
    rows = conn.execute(CITY_HOURLY_MEANS, _params("city_code", city_code, parameter, span))
    return [CityPeriod(*row) for row in rows]


def city_daily_means(
    conn: psycopg.Connection, city_code: str, parameter: str, span: Range
) -> list[CityPeriod]:
    """A city's daily values in ``span`` (HJ 663: the mean of its stations' valid daily
    means), oldest first; ``period`` is the local day."""
    rows = conn.execute(CITY_DAILY_MEANS, _params("city_code", city_code, parameter, span))
    return [CityPeriod(*row) for row in rows]


def city_valid_days_by_month(
    conn: psycopg.Connection, city_code: str, parameter: str, span: Range
) -> list[MonthOfDays]:
    """A city's daily values of ``parameter`` in ``span`` (days), month by month."""
    params = _params("city_code", city_code, parameter, span)
    return [MonthOfDays(*row) for row in conn.execute(CITY_VALID_DAYS_BY_MONTH, params)]
