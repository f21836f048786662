"""The annual statistics a compliance report is made of, read from the daily rollups: HJ 663
aggregation in the database (station → city), the station and section registry, and the
monthly values of each water section. Rows only; reports/ turns them into reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import psycopg

_MONTH_COUNTS = ", ".join(
    f"count(*) FILTER (WHERE extract(month FROM {{day}}) = {m})" for m in range(1, 13)
)
_LIMITS = """
limits AS (
    SELECT * FROM unnest(%(limit_from)s::date[], %(limit_to)s::date[], %(limit_value)s::float8[])
        AS l(d_from, d_to, value)
)"""

# HJ 663: a station's annual value is the mean of its valid daily means.
STATION_ANNUAL_STATISTICS = f"""
WITH {_LIMITS}
SELECT d.station_id, avg(d.mean), count(*),
       percentile_cont(%(fraction)s) WITHIN GROUP (ORDER BY d.mean),
       count(*) FILTER (WHERE d.mean > l.value),
       {_MONTH_COUNTS.format(day="d.day")}
FROM readings_daily d
JOIN stations s ON s.station_id = d.station_id AND s.kind = 'air'
JOIN limits l ON d.day BETWEEN l.d_from AND l.d_to
WHERE d.parameter = %(parameter)s AND d.valid AND d.day BETWEEN %(start)s AND %(end)s
GROUP BY d.station_id
"""

# HJ 663: a city's daily value is the mean of its stations' valid daily values; its annual
# value the mean of those daily values.
CITY_ANNUAL_STATISTICS = f"""
WITH {_LIMITS},
city_days AS (
    SELECT s.city_code, d.day, avg(d.mean) AS mean, count(*) AS stations
    FROM readings_daily d
    JOIN stations s ON s.station_id = d.station_id AND s.kind = 'air'
                   AND s.city_code IS NOT NULL
    WHERE d.parameter = %(parameter)s AND d.valid AND d.day BETWEEN %(start)s AND %(end)s
    GROUP BY s.city_code, d.day
)
SELECT c.city_code, avg(c.mean), count(*),
       percentile_cont(%(fraction)s) WITHIN GROUP (ORDER BY c.mean),
       count(*) FILTER (WHERE c.mean > l.value),
       {_MONTH_COUNTS.format(day="c.day")},
       max(c.stations)
FROM city_days c
JOIN limits l ON c.day BETWEEN l.d_from AND l.d_to
GROUP BY c.city_code
"""

AIR_STATIONS = """
SELECT station_id, name, city_code, city, province FROM stations WHERE kind = 'air'
ORDER BY station_id
"""

# Monthly value of an item: mean of its daily values; the class reported for a month: the
# worst one reported in it. One row per (section, item) with its months as arrays: a
# national year is ~80 k rows instead of ~900 k, and the annual means are still taken in
# Python (fmean) from exactly these monthly means.
WATER_ITEM_MONTHS = """
WITH months AS (
    SELECT d.station_id, d.parameter, date_trunc('month', d.day)::date AS month,
           avg(d.mean) AS mean, max(d.max) AS worst
    FROM readings_daily d
    JOIN stations s ON s.station_id = d.station_id AND s.kind = 'surface_water'
    WHERE d.valid AND d.day BETWEEN %(start)s AND %(end)s
    GROUP BY 1, 2, 3
)
SELECT station_id, parameter, array_agg(month), array_agg(mean), array_agg(worst)
FROM months
GROUP BY 1, 2
"""

WATER_SECTIONS = """
SELECT station_id, name, basin, waterbody FROM stations WHERE kind = 'surface_water'
ORDER BY station_id
"""


@dataclass(frozen=True)
class DailyLimitPeriod:
    """A stretch of days judged by one 24-hour limit (both days included; no limit: no day
    is over)."""

    first_day: date
    last_day: date
    limit: float | None


@dataclass(frozen=True)
class AnnualStatistics:
    """A station's or a city's statistics of its valid daily values in a period.

    ``key``: station id or city code; ``mean`` and ``percentile`` in the parameter's unit;
    ``days_over_limit``: valid days above the 24-hour limit of their day;
    ``valid_days_by_month``: valid days of January … December; ``stations``: for a city, the
    most stations behind one of its daily values (None for a station).
    """

    key: str
    mean: float | None
    valid_days: int
    percentile: float | None
    days_over_limit: int
    valid_days_by_month: tuple[int, ...]
    stations: int | None = None


@dataclass(frozen=True)
class AirStation:
    """An air station of the registry as an annual report lists it."""

    station_id: str
    name: str
    city_code: str | None
    city: str | None
    province: str | None


@dataclass(frozen=True)
class WaterItemMonths:
    """The monthly values of one item of a section: ``months`` (first days), the item's
    monthly ``means`` and the ``worst`` (largest) daily value of each month, in one order."""

    station_id: str
    parameter: str
    months: list[date]
    means: list[float]
    worst: list[float]


@dataclass(frozen=True)
class WaterSectionRow:
    """A surface-water section of the registry."""

    station_id: str
    name: str
    basin: str | None
    waterbody: str | None


def annual_statistics_params(
    parameter: str,
    start: date,
    end: date,
    fraction: float,
    daily_limits: Sequence[DailyLimitPeriod],
) -> dict[str, object]:
    """The parameters of STATION_ANNUAL_STATISTICS and CITY_ANNUAL_STATISTICS."""
    return {
        "parameter": parameter,
        "start": start,
        "end": end,
        "fraction": fraction,
        "limit_from": [p.first_day for p in daily_limits],
        "limit_to": [p.last_day for p in daily_limits],
        "limit_value": [p.limit for p in daily_limits],
    }


def station_annual_statistics(
    conn: psycopg.Connection,
    parameter: str,
    start: date,
    end: date,
    fraction: float,
    daily_limits: Sequence[DailyLimitPeriod],
) -> dict[str, AnnualStatistics]:
    """Each air station's mean, count, ``fraction`` percentile (0..1) and days over the limit
    of its valid daily values of ``parameter`` in [start, end], by station id."""
    params = annual_statistics_params(parameter, start, end, fraction, daily_limits)
    return {
        row[0]: AnnualStatistics(row[0], row[1], row[2], row[3], row[4], tuple(row[5:17]))
        for row in conn.execute(STATION_ANNUAL_STATISTICS, params)
    }


def city_annual_statistics(
    conn: psycopg.Connection,
    parameter: str,
    start: date,
    end: date,
    fraction: float,
    daily_limits: Sequence[DailyLimitPeriod],
) -> dict[str, AnnualStatistics]:
    """The same statistics of each city's daily values (HJ 663: the mean of its stations'
    valid daily values), by city code."""
    params = annual_statistics_params(parameter, start, end, fraction, daily_limits)
    return {
        row[0]: AnnualStatistics(
            row[0], row[1], row[2], row[3], row[4], tuple(row[5:17]), stations=row[17]
        )
        for row in conn.execute(CITY_ANNUAL_STATISTICS, params)
    }


def air_stations(conn: psycopg.Connection) -> list[AirStation]:
    """Every air station of the registry, by station id."""
    return [AirStation(*row) for row in conn.execute(AIR_STATIONS)]


def water_item_months(conn: psycopg.Connection, start: date, end: date) -> list[WaterItemMonths]:
    """The monthly values of every item of every surface-water section in [start, end]."""
    return [
        WaterItemMonths(*row)
        for row in conn.execute(WATER_ITEM_MONTHS, {"start": start, "end": end})
    ]


def water_sections(conn: psycopg.Connection) -> list[WaterSectionRow]:
    """Every surface-water section of the registry, by station id."""
    return [WaterSectionRow(*row) for row in conn.execute(WATER_SECTIONS)]
