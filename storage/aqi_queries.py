"""The concentrations an HJ 633 AQI needs, read from the hourly and daily rollups.

A station's values come from its own valid hourly means (readings_hourly) and valid daily
values (readings_daily, where the aggregation stage also keeps the O3 daily maximum 8-hour
mean as parameter 'o3_8h'). A city's value of each statistic is the mean of its stations'
valid values of that statistic (HJ 663), so every query takes a list of stations: one for a
station, all of a city's air stations for a city. The AQI arithmetic itself is
standards.aqi's. Concentrations are in µg/m³, CO in mg/m³.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

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
# The readings_daily parameters a daily AQI reads: the daily means, 'o3' (its day's largest
# valid hourly mean is the daily maximum 1-hour) and 'o3_8h' (the daily maximum 8-hour mean).
DAILY_AQI_PARAMETERS = (*DAILY_MEAN_PARAMETERS, "o3", "o3_8h")
# A 24-hour moving mean needs as many valid hours of its 24 as a daily mean of its day
# (GB 3095 Table 4 by analogy; the standard sets no number for the moving mean).
MOVING_24H_MIN_HOURS = DAILY_MIN_HOURS


@dataclass(frozen=True)
class AqiConcentration:
    """One concentration an AQI is computed from, with what stands behind it.

    ``stations``: stations whose valid values were averaged (1 for a station);
    ``valid_hours``: valid hourly values behind it, summed over those stations (a daily
    maximum 8-hour mean: the valid O3 hours of its days);
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

# The daily AQI inputs of the valid station-days of readings_daily that {where} selects
# (readings_daily d): (station_id, day, input key of standards.aqi.daily_aqi, value, valid
# hours of the row): a daily mean of pm25 … co; 'o3_1h', the largest valid hourly mean of a
# valid O3 day; 'o3_8h', the daily maximum 8-hour mean (valid_hours: its valid windows).
# Shared by the API's daily AQI and the aggregation stage's city_daily_aqi.
STATION_DAY_AQI_INPUTS = """
SELECT d.station_id, d.day,
       CASE d.parameter WHEN 'o3' THEN 'o3_1h' ELSE d.parameter END AS input_key,
       CASE d.parameter WHEN 'o3' THEN d.max ELSE d.mean END AS value,
       d.valid_hours
FROM readings_daily d
WHERE d.valid AND d.parameter = ANY(%(aqi_parameters)s) AND {where}"""

# For each station-local day in [start, end]: each station's daily AQI inputs, then the mean
# over the stations of each (HJ 663); an O3 daily maximum 8-hour mean is backed by the valid
# hours of its O3 day and by its valid 8-hour windows.
DAILY_AQI_CONCENTRATIONS = f"""
WITH station_values AS (
    SELECT i.day, i.input_key, i.value,
           CASE WHEN i.input_key = 'o3_8h' THEN coalesce(o.valid_hours, 0)
                ELSE i.valid_hours END AS hours,
           CASE WHEN i.input_key = 'o3_8h' THEN i.valid_hours END AS windows
    FROM ({
    STATION_DAY_AQI_INPUTS.format(
        where="d.station_id = ANY(%(station_ids)s) AND d.day BETWEEN %(start)s AND %(end)s"
    )
}) i
    LEFT JOIN readings_daily o ON i.input_key = 'o3_8h' AND o.station_id = i.station_id
                              AND o.parameter = 'o3' AND o.day = i.day
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
        {"station_ids": list(station_ids), "parameters": list(DAILY_AQI_PARAMETERS)},
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
        "aqi_parameters": list(DAILY_AQI_PARAMETERS),
        "start": start,
        "end": end,
    }
    by_day: dict[date, dict[str, AqiConcentration]] = {}
    for day, input_key, value, stations, hours, windows in conn.execute(
        DAILY_AQI_CONCENTRATIONS, params
    ):
        by_day.setdefault(day, {})[input_key] = AqiConcentration(value, stations, hours, windows)
    return by_day
