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

_MONTHS = ", ".join(
    f"count(*) FILTER (WHERE extract(month FROM c.day) = {m})" for m in range(1, 13)
)

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
FROM city_daily c
LEFT JOIN fractions f ON f.parameter = c.parameter
WHERE c.parameter = ANY(%(series)s) AND c.day >= %(start)s AND c.day <= %(end)s
GROUP BY c.city_code, c.parameter, f.fraction
"""

# Each surface-water section's kept class of the year and its items' monthly means.
WATER_MONTHLY_MEANS = """
SELECT station_id, water_class, monthly_means FROM water_yearly WHERE year = %(year)s
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
    return _by_key(conn.execute(CITY_PERIOD_STATISTICS, params).fetchall(), with_stations=True)


def city_aqi_days(
    conn: psycopg.Connection, start: date, end: date, good_max: int, heavy_min: int
) -> dict[str, AqiDays]:
    """Each city's daily AQI days in ``start`` … ``end``."""
    params = {"start": start, "end": end, "good_max": good_max, "heavy_min": heavy_min}
    return {row[0]: AqiDays(*row) for row in conn.execute(CITY_AQI_DAYS, params)}


def water_monthly_means(
    conn: psycopg.Connection, year: int
) -> dict[str, tuple[int | None, dict[str, list[float | None]]]]:
    """Each section's kept class of ``year`` and its items' monthly means (January first)."""
    return {row[0]: (row[1], row[2]) for row in conn.execute(WATER_MONTHLY_MEANS, {"year": year})}
