"""What the six-pollutant assessment reads (reports.assessment): the yearly statistics of the
six daily series kept by the aggregation stage, the same statistics of the cities over any
period (a year so far, the same period of the previous year) and the cities' daily AQI
categories. Rows only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from storage.compliance import AnnualStatistics

_MONTHS = ", ".join(f"count(*) FILTER (WHERE c.month = {m})" for m in range(1, 13))

# Each station's (or city's) kept yearly statistics of the given daily series.
STATION_YEARLY_SERIES = """
SELECT station_id, parameter, mean, valid_days, percentile, days_over_limit,
       valid_days_by_month
FROM station_yearly WHERE parameter = ANY(%(series)s) AND year = %(year)s
"""
CITY_YEARLY_SERIES = """
SELECT city_code, parameter, mean, valid_days, percentile, days_over_limit,
       valid_days_by_month, stations
FROM city_yearly WHERE parameter = ANY(%(series)s) AND year = %(year)s
"""

# The same statistics of each city's daily values over days start … end (HJ 663: the mean and
# the percentile of the series, valid days by month), for a period that is not a whole year.
CITY_PERIOD_STATISTICS = f"""
WITH fractions AS (
    SELECT * FROM unnest(%(fraction_series)s::text[], %(fraction)s::float8[])
        AS f(parameter, fraction)
)
SELECT c.city_code, c.parameter, avg(c.mean), count(*),
       CASE WHEN f.fraction IS NOT NULL
            THEN percentile_cont(coalesce(f.fraction, 0.5)) WITHIN GROUP (ORDER BY c.mean) END,
       0, ARRAY[{_MONTHS}], max(c.stations)
FROM (SELECT city_code, parameter, mean, stations, extract(month FROM day)::int AS month
      FROM city_daily
      WHERE parameter = ANY(%(series)s) AND day >= %(start)s AND day <= %(end)s) c
LEFT JOIN fractions f ON f.parameter = c.parameter
GROUP BY c.city_code, c.parameter, f.fraction
"""
# The query sorts every city-day of the period (~700,000 at national scale): in memory.
PERIOD_WORK_MEM = "SET LOCAL work_mem = '128MB'"

# What changes when any kept city-year (section-year) of a year is written or removed: the
# count of its rows and the sum of their row versions (xmin: every write makes a new one). A
# figure of that year computed before is still right while this stays the same.
CITY_YEARS_STAMP = """
SELECT count(*), coalesce(sum(xmin::text::bigint), 0)
FROM city_yearly WHERE parameter = ANY(%(series)s) AND year = %(year)s
"""
WATER_YEARS_STAMP = """
SELECT count(*), coalesce(sum(xmin::text::bigint), 0) FROM water_yearly WHERE year = %(year)s
"""

# Each surface-water section's kept class of the year.
WATER_CLASSES = "SELECT station_id, water_class FROM water_yearly WHERE year = %(year)s"

# Each section's items over January … month: the mean of their monthly means.
WATER_MEANS_TO_MONTH = """
SELECT y.station_id, e.item, avg(v.value::float8), array_agg(v.value::float8 ORDER BY v.month)
FROM water_yearly y
CROSS JOIN LATERAL jsonb_each(y.monthly_means) AS e(item, months)
CROSS JOIN LATERAL jsonb_array_elements_text(e.months) WITH ORDINALITY AS v(value, month)
WHERE y.year = %(year)s AND v.month <= %(month)s AND v.value IS NOT NULL
GROUP BY y.station_id, e.item
"""

# The last month of ``year`` in which any section has a monthly mean.
WATER_LAST_MONTH = """
SELECT max(v.month)
FROM water_yearly y
CROSS JOIN LATERAL jsonb_each(y.monthly_means) AS e(item, months)
CROSS JOIN LATERAL jsonb_array_elements_text(e.months) WITH ORDINALITY AS v(value, month)
WHERE y.year = %(year)s AND v.value IS NOT NULL
"""

# Each city's days with a daily AQI in start … end, the good ones (AQI ≤ good_max), the
# heavily polluted or worse (AQI ≥ heavy_min) and the days whose AQI was not computable.
CITY_AQI_DAYS = """
SELECT city_code, count(aqi), count(*) FILTER (WHERE aqi <= %(good_max)s),
       count(*) FILTER (WHERE aqi >= %(heavy_min)s), count(*) FILTER (WHERE aqi IS NULL)
FROM city_daily_aqi
WHERE day >= %(start)s AND day <= %(end)s
GROUP BY city_code
"""


@dataclass(frozen=True)
class AqiDays:
    """A city's daily AQI days in a period: with an AQI, good, heavily polluted or worse,
    not computable."""

    city_code: str
    days: int
    good: int
    heavy: int
    not_computable: int


Statistics = dict[str, dict[str, AnnualStatistics]]  # key (station/city) -> series -> stats


def _by_key(rows: Sequence[tuple[Any, ...]], with_stations: bool) -> Statistics:
    found: Statistics = {}
    for row in rows:
        key, series = str(row[0]), str(row[1])
        found.setdefault(key, {})[series] = AnnualStatistics(
            key,
            row[2],
            int(row[3]),
            row[4],
            int(row[5]),
            tuple(row[6]),
            stations=int(row[7]) if with_stations else None,
        )
    return found


def station_yearly_series(conn: psycopg.Connection, series: Sequence[str], year: int) -> Statistics:
    """Each air station's kept statistics of ``series`` in ``year`` (so far)."""
    rows = conn.execute(STATION_YEARLY_SERIES, {"series": list(series), "year": year}).fetchall()
    return _by_key(rows, with_stations=False)


def city_yearly_series(conn: psycopg.Connection, series: Sequence[str], year: int) -> Statistics:
    """Each city's kept statistics of ``series`` in ``year`` (so far)."""
    rows = conn.execute(CITY_YEARLY_SERIES, {"series": list(series), "year": year}).fetchall()
    return _by_key(rows, with_stations=True)


def city_period_statistics(
    conn: psycopg.Connection,
    series: Sequence[str],
    fractions: Mapping[str, float],
    start: date,
    end: date,
) -> Statistics:
    """Each city's statistics of ``series`` over the days ``start`` … ``end``; ``fractions``:
    the percentile (0..1) of each series that has one."""
    params = {
        "series": list(series),
        "fraction_series": list(fractions),
        "fraction": list(fractions.values()),
        "start": start,
        "end": end,
    }
    with conn.transaction():
        conn.execute(PERIOD_WORK_MEM)
        rows = conn.execute(CITY_PERIOD_STATISTICS, params).fetchall()
    return _by_key(rows, with_stations=True)


def city_years_stamp(conn: psycopg.Connection, series: Sequence[str], year: int) -> tuple[int, int]:
    """A stamp of the kept city-years of ``year``: it changes when any of them changes."""
    row = conn.execute(CITY_YEARS_STAMP, {"series": list(series), "year": year}).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def water_years_stamp(conn: psycopg.Connection, year: int) -> tuple[int, int]:
    """A stamp of the kept section-years of ``year``: it changes when any of them changes."""
    row = conn.execute(WATER_YEARS_STAMP, {"year": year}).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def city_aqi_days(
    conn: psycopg.Connection, start: date, end: date, good_max: int, heavy_min: int
) -> dict[str, AqiDays]:
    """Each city's daily AQI days in ``start`` … ``end``."""
    params = {"start": start, "end": end, "good_max": good_max, "heavy_min": heavy_min}
    return {row[0]: AqiDays(*row) for row in conn.execute(CITY_AQI_DAYS, params)}


def water_classes(conn: psycopg.Connection, year: int) -> dict[str, int | None]:
    """Each section's kept class of ``year``."""
    return {row[0]: row[1] for row in conn.execute(WATER_CLASSES, {"year": year})}


def water_means_to_month(
    conn: psycopg.Connection, year: int, month: int
) -> dict[str, dict[str, tuple[float, list[float]]]]:
    """Each section's items over January … ``month`` of ``year``: the mean of their monthly
    means and those monthly means (items with no month in the span left out)."""
    found: dict[str, dict[str, tuple[float, list[float]]]] = {}
    for station_id, item, mean, months in conn.execute(
        WATER_MEANS_TO_MONTH, {"year": year, "month": month}
    ):
        found.setdefault(station_id, {})[item] = (mean, months)
    return found


def water_last_month(conn: psycopg.Connection, year: int) -> int | None:
    """The last month of ``year`` with a monthly mean of any section (None: none)."""
    row = conn.execute(WATER_LAST_MONTH, {"year": year}).fetchone()
    return None if row is None or row[0] is None else int(row[0])
