"""The concentrations an HJ 633 AQI needs, read from the hourly and daily rollups.

A station's values come from its own valid hourly means (readings_hourly) and valid daily
means (readings_daily). A city's value of each statistic is the mean of its stations' valid
values of that statistic (HJ 663), so every query takes a list of stations: one for a station,
all of a city's air stations for a city. The AQI arithmetic itself is standards.aqi's.
Concentrations are in µg/m³, CO in mg/m³.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import psycopg

from standards.validity import DAILY_MIN_HOURS, O3_8H_MIN_HOURS

# The pollutants of HJ 633, as stored parameters.
AQI_PARAMETERS = ("pm25", "pm10", "so2", "no2", "co", "o3")
# 24-hour moving means the real-time AQI needs: PM (HJ 633-2012 real-time AQI) and SO2 (its
# SO2 1-hour > 800 rule). Each gives the input key "<parameter>_24h".
MOVING_24H_PARAMETERS = ("pm25", "pm10", "so2")
# 8-hour moving means: O3 (input key "o3_8h").
MOVING_8H_PARAMETERS = ("o3",)
# Daily means: the 24-hour pollutants; O3 enters a day as its daily maximum 8-hour and 1-hour.
DAILY_MEAN_PARAMETERS = ("pm25", "pm10", "so2", "no2", "co")
# A 24-hour moving mean needs as many valid hours of its 24 as a daily mean of its day
# (GB 3095 Table 4 by analogy; the standard sets no number for the moving mean).
MOVING_24H_MIN_HOURS = DAILY_MIN_HOURS


@dataclass(frozen=True)
class AqiConcentration:
    """One concentration an AQI is computed from, with what stands behind it.

    ``stations``: stations whose valid values were averaged (1 for a station);
    ``valid_hours``: valid hourly values behind it, summed over those stations;
    ``valid_windows``: for a daily maximum 8-hour mean, the 8-hour windows of the day with
    enough valid hours (of 17), summed over the stations; otherwise None.
    """

    value: float
    stations: int
    valid_hours: int
    valid_windows: int | None = None


AIR_STATIONS_OF_CITY = """
SELECT station_id, city, timezone
FROM stations
WHERE city_code = %(city_code)s AND kind = 'air'
ORDER BY station_id
"""

LATEST_HOUR_WITH_AQI_DATA = """
SELECT max(bucket)
FROM readings_hourly
WHERE station_id = ANY(%(station_ids)s) AND parameter = ANY(%(parameters)s) AND valid
"""

LATEST_DAY_WITH_AQI_DATA = """
SELECT max(day)
FROM readings_daily
WHERE station_id = ANY(%(station_ids)s) AND parameter = ANY(%(parameters)s) AND valid
"""

# For each hour in [start, end] (UTC hour buckets): each station's valid 1-hour mean, its
# 24-hour moving mean (>= min_24h valid hours of the 24 ending with the hour) and its 8-hour
# moving mean (>= min_8h of the 8); then the mean over the stations of each statistic. The
# grid of every hour lets a moving mean exist at an hour whose own value is missing.
HOURLY_AQI_CONCENTRATIONS = """
WITH hourly AS MATERIALIZED (
    SELECT station_id, parameter, bucket, mean
    FROM readings_hourly
    WHERE station_id = ANY(%(station_ids)s) AND parameter = ANY(%(parameters)s) AND valid
      AND bucket >= %(start)s::timestamptz - interval '23 hours' AND bucket <= %(end)s
),
grid AS (
    SELECT s.station_id, p.parameter, g.bucket, h.mean
    FROM unnest(%(station_ids)s::text[]) AS s(station_id)
    CROSS JOIN unnest(%(parameters)s::text[]) AS p(parameter)
    CROSS JOIN generate_series(%(start)s::timestamptz - interval '23 hours',
                               %(end)s::timestamptz, interval '1 hour') AS g(bucket)
    LEFT JOIN hourly h USING (station_id, parameter, bucket)
),
moving AS (
    SELECT station_id, parameter, bucket, mean,
           avg(mean) OVER last_24h AS mean_24h, count(mean) OVER last_24h AS hours_24h,
           avg(mean) OVER last_8h AS mean_8h, count(mean) OVER last_8h AS hours_8h
    FROM grid
    WINDOW last_24h AS (PARTITION BY station_id, parameter ORDER BY bucket
                        ROWS BETWEEN 23 PRECEDING AND CURRENT ROW),
           last_8h AS (PARTITION BY station_id, parameter ORDER BY bucket
                       ROWS BETWEEN 7 PRECEDING AND CURRENT ROW)
),
station_values AS (
    SELECT bucket, parameter AS input_key, mean AS value, 1::bigint AS hours
    FROM moving
    WHERE bucket >= %(start)s AND mean IS NOT NULL
    UNION ALL
    SELECT bucket, parameter || '_24h', mean_24h, hours_24h
    FROM moving
    WHERE bucket >= %(start)s AND parameter = ANY(%(moving_24h)s) AND hours_24h >= %(min_24h)s
    UNION ALL
    SELECT bucket, parameter || '_8h', mean_8h, hours_8h
    FROM moving
    WHERE bucket >= %(start)s AND parameter = ANY(%(moving_8h)s) AND hours_8h >= %(min_8h)s
)
SELECT bucket, input_key, avg(value), count(*), sum(hours)::int
FROM station_values
GROUP BY bucket, input_key
ORDER BY bucket, input_key
"""

# For each station-local day in [start, end]: each station's valid daily means, its O3 daily
# maximum 1-hour (from a valid O3 day) and its O3 daily maximum 8-hour mean: the largest
# 8-hour moving mean of the windows that lie inside the day (ending 08:00 … 24:00, HJ 663),
# each window with >= min_8h valid hours; then the mean over the stations of each statistic.
DAILY_AQI_CONCENTRATIONS = """
WITH members AS (
    SELECT station_id, timezone FROM stations WHERE station_id = ANY(%(station_ids)s)
),
station_means AS (
    SELECT d.station_id, d.day, d.parameter AS input_key, d.mean AS value,
           d.valid_hours::bigint AS hours, NULL::bigint AS windows
    FROM readings_daily d
    WHERE d.station_id = ANY(%(station_ids)s) AND d.parameter = ANY(%(mean_parameters)s)
      AND d.valid AND d.day BETWEEN %(start)s AND %(end)s
),
o3_max_1h AS (
    SELECT d.station_id, d.day, 'o3_1h' AS input_key, d.max AS value,
           d.valid_hours::bigint AS hours, NULL::bigint AS windows
    FROM readings_daily d
    WHERE d.station_id = ANY(%(station_ids)s) AND d.parameter = 'o3'
      AND d.valid AND d.day BETWEEN %(start)s AND %(end)s
),
o3_hourly AS MATERIALIZED (
    SELECT station_id, bucket, mean
    FROM readings_hourly
    WHERE station_id = ANY(%(station_ids)s) AND parameter = 'o3' AND valid
      AND bucket >= %(lo)s AND bucket < %(hi)s
),
o3_grid AS (
    SELECT m.station_id, m.timezone, g.bucket, h.mean
    FROM members m
    CROSS JOIN LATERAL generate_series(
        (%(start)s::date::timestamp AT TIME ZONE m.timezone),
        ((%(end)s::date + 1)::timestamp AT TIME ZONE m.timezone) - interval '1 hour',
        interval '1 hour') AS g(bucket)
    LEFT JOIN o3_hourly h ON h.station_id = m.station_id AND h.bucket = g.bucket
),
o3_windows AS (
    SELECT station_id, timezone, bucket,
           avg(mean) OVER next_8h AS mean_8h, count(mean) OVER next_8h AS hours_8h
    FROM o3_grid
    WINDOW next_8h AS (PARTITION BY station_id ORDER BY bucket
                       ROWS BETWEEN CURRENT ROW AND 7 FOLLOWING)
),
o3_max_8h AS (
    SELECT station_id, (bucket AT TIME ZONE timezone)::date AS day, 'o3_8h' AS input_key,
           max(mean_8h) AS value, (array_agg(hours_8h ORDER BY mean_8h DESC))[1] AS hours,
           count(*) AS windows
    FROM o3_windows
    WHERE hours_8h >= %(min_8h)s
      AND ((bucket + interval '7 hours') AT TIME ZONE timezone)::date
          = (bucket AT TIME ZONE timezone)::date
    GROUP BY station_id, (bucket AT TIME ZONE timezone)::date
),
station_values AS (
    SELECT * FROM station_means
    UNION ALL SELECT * FROM o3_max_1h
    UNION ALL SELECT * FROM o3_max_8h
)
SELECT day, input_key, avg(value), count(*), sum(hours)::int, sum(windows)::int
FROM station_values
GROUP BY day, input_key
ORDER BY day, input_key
"""


@dataclass(frozen=True)
class CityStations:
    """A city's air stations (active or not: history counts) and its name and timezone."""

    city_code: str
    name: str
    timezone: str
    station_ids: tuple[str, ...]


def air_stations_of_city(conn: psycopg.Connection, city_code: str) -> CityStations | None:
    """The air stations registered with ``city_code``; None when there is none."""
    rows = conn.execute(AIR_STATIONS_OF_CITY, {"city_code": city_code}).fetchall()
    if not rows:
        return None
    names = sorted({city for _, city, _ in rows if city})
    timezones = [tz for _, _, tz in rows]
    # stations of one city share a timezone; if not, the most common one names its days
    timezone = max(sorted(set(timezones)), key=timezones.count)
    return CityStations(
        city_code=city_code,
        name=names[0] if names else city_code,
        timezone=timezone,
        station_ids=tuple(station_id for station_id, _, _ in rows),
    )


def latest_hour_with_aqi_data(
    conn: psycopg.Connection, station_ids: Sequence[str]
) -> datetime | None:
    """Start of the latest hour in which any of the stations has a valid hourly value of an
    AQI pollutant."""
    row = conn.execute(
        LATEST_HOUR_WITH_AQI_DATA,
        {"station_ids": list(station_ids), "parameters": list(AQI_PARAMETERS)},
    ).fetchone()
    return None if row is None else row[0]


def latest_day_with_aqi_data(conn: psycopg.Connection, station_ids: Sequence[str]) -> date | None:
    """The latest station-local day on which any of the stations has a valid daily value of
    an AQI pollutant."""
    row = conn.execute(
        LATEST_DAY_WITH_AQI_DATA,
        {"station_ids": list(station_ids), "parameters": list(AQI_PARAMETERS)},
    ).fetchone()
    return None if row is None else row[0]


def hourly_aqi_concentrations(
    conn: psycopg.Connection, station_ids: Sequence[str], start: datetime, end: datetime
) -> dict[datetime, dict[str, AqiConcentration]]:
    """For each hour from ``start`` to ``end`` (hour starts, inclusive) with data: the real-time
    AQI inputs by standards.aqi.hourly_aqi key ("pm25", …, "pm25_24h", "so2_24h", "o3_8h")."""
    params = {
        "station_ids": list(station_ids),
        "parameters": list(AQI_PARAMETERS),
        "moving_24h": list(MOVING_24H_PARAMETERS),
        "moving_8h": list(MOVING_8H_PARAMETERS),
        "min_24h": MOVING_24H_MIN_HOURS,
        "min_8h": O3_8H_MIN_HOURS,
        "start": start,
        "end": end,
    }
    by_hour: dict[datetime, dict[str, AqiConcentration]] = {}
    for bucket, input_key, value, stations, hours in conn.execute(
        HOURLY_AQI_CONCENTRATIONS, params
    ):
        by_hour.setdefault(bucket, {})[input_key] = AqiConcentration(value, stations, hours)
    return by_hour


def daily_aqi_concentrations(
    conn: psycopg.Connection, station_ids: Sequence[str], start: date, end: date
) -> dict[date, dict[str, AqiConcentration]]:
    """For each station-local day from ``start`` to ``end`` (inclusive) with data: the daily
    AQI inputs by standards.aqi.daily_aqi key ("pm25", …, "co", "o3_8h", "o3_1h")."""
    params = {
        "station_ids": list(station_ids),
        "mean_parameters": list(DAILY_MEAN_PARAMETERS),
        "min_8h": O3_8H_MIN_HOURS,
        "start": start,
        "end": end,
        # bounds as constants for chunk exclusion; a local day lies within a day of UTC's
        "lo": datetime.combine(start - timedelta(days=1), time(), UTC),
        "hi": datetime.combine(end + timedelta(days=2), time(), UTC),
    }
    by_day: dict[date, dict[str, AqiConcentration]] = {}
    for day, input_key, value, stations, hours, windows in conn.execute(
        DAILY_AQI_CONCENTRATIONS, params
    ):
        by_day.setdefault(day, {})[input_key] = AqiConcentration(value, stations, hours, windows)
    return by_day
