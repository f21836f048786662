"""Series of a station or a city: its readings (a page, or every row in chunks for an
export) and its hourly, daily, monthly and annual values with their coverage.

Aggregation follows HJ 663: a daily value is the mean of the valid hourly means of the
station's local day, monthly and annual values the mean of the valid daily means; a city's
hourly or daily value is the mean of its stations' valid values, and its monthly and annual
values come from the city's daily values. Validity is GB 3095 Table 4 (standards.validity).
"""

from __future__ import annotations

import calendar
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from schemas.reports import CoverageOut
from schemas.series import AggregateValue, Period, Reading
from standards.parameters import CATALOGUE
from standards.validity import (
    HOURLY_MIN_MINUTES,
    Coverage,
    annual_coverage,
    monthly_coverage,
)

# (station_id, parameter, ts, value, flag, flag_reason)
ReadingRow = tuple[str, str, datetime, float, str, str | None]

# Keyset on (ts, parameter); LIMIT NULL (an export) is no limit. COALESCE of a bound
# parameter folds to a constant at plan time, so TimescaleDB still excludes chunks.
READINGS_OF_STATION_IN_RANGE = """
SELECT r.station_id, r.parameter, r.ts, r.value, r.flag, r.flag_reason
FROM readings r
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
SELECT h.bucket, h.mean, h.min, h.max, h.count, h.valid, s.reading_interval_s
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
SELECT d.day, d.mean, d.min, d.max, d.valid_hours, p.daily_min_hours
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

RULES: dict[tuple[str, Period], str] = {
    ("station", "hourly"): "mean of the station's valid readings in the UTC hour; valid with "
    f"at least {HOURLY_MIN_MINUTES} minutes of data (GB 3095 Table 4)",
    ("station", "daily"): "mean of the valid hourly means of the station's local day; valid "
    "with at least the parameter's minimum of valid hours (20 for air pollutants)",
    ("station", "monthly"): "mean of the valid daily means of the month; valid with at least "
    "27 valid days (25 in February)",
    ("station", "annual"): "mean of the valid daily means of the year; valid with at least "
    "324 valid days and every month valid",
    ("city", "hourly"): "mean of the valid hourly means of the city's stations (HJ 663); "
    "valid when at least one station has a valid hour",
    ("city", "daily"): "mean of the valid daily means of the city's stations that day "
    "(HJ 663); valid when at least one station has a valid daily mean",
    ("city", "monthly"): "mean of the city's daily values in the month (HJ 663); valid with "
    "at least 27 days with a city value (25 in February)",
    ("city", "annual"): "mean of the city's daily values in the year (HJ 663); valid with at "
    "least 324 days with a city value and every month valid",
}


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


def unit_of(parameter: str) -> str:
    """The stored unit of a parameter ("" for one outside the catalogue)."""
    known = CATALOGUE.get(parameter)
    return known.unit if known else ""


def _reading(row: ReadingRow) -> Reading:
    station_id, parameter, ts, value, flag, flag_reason = row
    return Reading(
        station_id=station_id,
        parameter=parameter,
        ts=ts.astimezone(UTC),
        value=value,
        unit=unit_of(parameter),
        flag=flag,  # type: ignore[arg-type]
        flag_reason=flag_reason,
    )


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
) -> list[Reading]:
    """Up to ``limit`` readings in [start, end) in (ts, parameter) order after the key
    ``after``; values in the parameter's stored unit."""
    with conn.cursor() as cur:
        cur.execute(
            READINGS_OF_STATION_IN_RANGE,
            _readings_params(station_id, parameter, start, end, after, limit),
        )
        return [_reading(row) for row in cur.fetchall()]


def reading_chunks(
    conn: psycopg.Connection,
    station_id: str,
    parameter: str | None,
    start: datetime | None,
    end: datetime | None,
    rows_per_chunk: int = 5000,
) -> Generator[list[ReadingRow], None, None]:
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


def _coverage_out(coverage: Coverage) -> CoverageOut:
    return CoverageOut(
        expected=coverage.expected,
        observed=coverage.observed,
        percent_complete=round(coverage.percent_complete, 2),
        valid=coverage.valid,
        reasons=list(coverage.reasons),
    )


def _coverage(expected: int, observed: int, reasons: Sequence[str]) -> CoverageOut:
    return CoverageOut(
        expected=expected,
        observed=observed,
        percent_complete=round(100 * observed / expected, 2) if expected else 0.0,
        valid=not reasons,
        reasons=list(reasons),
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone))


def _station_hourly(rows: Sequence[Sequence[Any]]) -> list[AggregateValue]:
    values = []
    for bucket, mean, low, high, count, valid, interval_s in rows:
        # minutes of data: readings x the station's interval, at most the hour
        minutes = min(60, count * interval_s // 60)
        reasons = (
            []
            if valid
            else [f"{_plural(minutes, 'minute')} of data in the hour ({HOURLY_MIN_MINUTES} needed)"]
        )
        values.append(
            AggregateValue(
                period_start=bucket.astimezone(UTC),
                mean=mean,
                min=low,
                max=high,
                coverage=CoverageOut(
                    expected=60,
                    observed=minutes,
                    percent_complete=round(100 * minutes / 60, 2),
                    valid=valid,
                    reasons=reasons,
                ),
            )
        )
    return values


def _station_daily(rows: Sequence[Sequence[Any]], timezone: str) -> list[AggregateValue]:
    values = []
    for day, mean, low, high, valid_hours, min_hours in rows:
        reasons = (
            []
            if valid_hours >= min_hours
            else [f"{_plural(valid_hours, 'valid hour')} ({min_hours} needed)"]
        )
        values.append(
            AggregateValue(
                period_start=_local_midnight(day, timezone),
                mean=mean,
                min=low,
                max=high,
                coverage=_coverage(24, valid_hours, reasons),
            )
        )
    return values


def _city_values(rows: Sequence[Sequence[Any]], start_of: Any, what: str) -> list[AggregateValue]:
    """City hourly or daily values: expected = the city's stations with data in the range,
    observed = stations with a valid value in the period."""
    return [
        AggregateValue(
            period_start=start_of(period),
            mean=mean,
            min=low,
            max=high,
            coverage=_coverage(
                stations, valid_stations, [] if valid_stations else [f"no station has {what}"]
            ),
        )
        for period, mean, low, high, valid_stations, stations in rows
    ]


def _monthly(rows: Sequence[Sequence[Any]], timezone: str) -> list[AggregateValue]:
    return [
        AggregateValue(
            period_start=_local_midnight(month, timezone),
            mean=total / valid_days if valid_days else None,
            min=low,
            max=high,
            coverage=_coverage_out(monthly_coverage(valid_days, month.year, month.month)),
        )
        for month, total, valid_days, low, high in rows
    ]


def _annual(rows: Sequence[Sequence[Any]], timezone: str) -> list[AggregateValue]:
    values = []
    for year, months in groupby(rows, key=lambda row: row[0].year):
        month_rows = list(months)
        valid_days = sum(row[2] for row in month_rows)
        total = sum(row[1] for row in month_rows if row[1] is not None)
        lows = [row[3] for row in month_rows if row[3] is not None]
        highs = [row[4] for row in month_rows if row[4] is not None]
        coverage = annual_coverage({row[0].month: row[2] for row in month_rows}, year)
        values.append(
            AggregateValue(
                period_start=_local_midnight(date(year, 1, 1), timezone),
                mean=total / valid_days if valid_days else None,
                min=min(lows, default=None),
                max=max(highs, default=None),
                coverage=_coverage_out(coverage),
            )
        )
    return values


def _whole_periods(period: Period, span: Range) -> Range:
    """Monthly and annual values cover every whole month or year the range touches."""
    assert span.start_day is not None and span.end_day is not None
    start, end = span.start_day, span.end_day
    if period == "monthly":
        start = start.replace(day=1)
        end = end.replace(day=calendar.monthrange(end.year, end.month)[1])
    elif period == "annual":
        start, end = start.replace(month=1, day=1), end.replace(month=12, day=31)
    return Range(start_day=start, end_day=end)


def station_aggregates(
    conn: psycopg.Connection,
    station_id: str,
    timezone: str,
    parameter: str,
    period: Period,
    span: Range,
) -> list[AggregateValue]:
    """Values of one station's parameter per period in ``span``, oldest first; only periods
    with data appear."""
    params = {"station_id": station_id, "parameter": parameter}
    with conn.cursor() as cur:
        if period == "hourly":
            rows = cur.execute(STATION_HOURLY_MEANS, params | span.params()).fetchall()
            return _station_hourly(rows)
        if period == "daily":
            rows = cur.execute(STATION_DAILY_MEANS, params | span.params()).fetchall()
            return _station_daily(rows, timezone)
        whole = _whole_periods(period, span)
        rows = cur.execute(STATION_VALID_DAYS_BY_MONTH, params | whole.params()).fetchall()
    return _monthly(rows, timezone) if period == "monthly" else _annual(rows, timezone)


def city_aggregates(
    conn: psycopg.Connection,
    city_code: str,
    timezone: str,
    parameter: str,
    period: Period,
    span: Range,
) -> list[AggregateValue]:
    """Values of a city's parameter per period in ``span`` by HJ 663, oldest first."""
    params = {"city_code": city_code, "parameter": parameter}
    with conn.cursor() as cur:
        if period == "hourly":
            rows = cur.execute(CITY_HOURLY_MEANS, params | span.params()).fetchall()
            return _city_values(rows, lambda bucket: bucket.astimezone(UTC), "a valid hour")
        if period == "daily":
            rows = cur.execute(CITY_DAILY_MEANS, params | span.params()).fetchall()
            return _city_values(
                rows, lambda day: _local_midnight(day, timezone), "a valid daily mean"
            )
        whole = _whole_periods(period, span)
        rows = cur.execute(CITY_VALID_DAYS_BY_MONTH, params | whole.params()).fetchall()
    return _monthly(rows, timezone) if period == "monthly" else _annual(rows, timezone)
