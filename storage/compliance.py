"""The annual statistics a compliance report is made of, as the aggregation stage keeps them
(station_yearly, city_yearly, water_yearly), and the station and section registry. Rows
only; reports/ turns them into reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

# The yearly statistics the aggregation stage keeps (storage.aggregation).
STATION_YEARLY = """
SELECT station_id, mean, valid_days, percentile, days_over_limit, valid_days_by_month,
       reviewed_hours
FROM station_yearly WHERE parameter = %(parameter)s AND year = %(year)s
"""

# A city's hours removed by review: those of its air stations.
CITY_YEARLY = """
SELECT c.city_code, c.mean, c.valid_days, c.percentile, c.days_over_limit,
       c.valid_days_by_month, c.stations,
       coalesce((SELECT sum(y.reviewed_hours) FROM station_yearly y
                 JOIN stations s ON s.station_id = y.station_id
                 WHERE s.city_code = c.city_code AND s.kind = 'air'
                   AND y.parameter = c.parameter AND y.year = c.year), 0)
FROM city_yearly c WHERE c.parameter = %(parameter)s AND c.year = %(year)s
"""

AIR_STATIONS = """
SELECT station_id, name, city_code, city, province FROM stations WHERE kind = 'air'
ORDER BY station_id
"""

WATER_YEARLY = """
SELECT station_id, water_class, method, deciding, months_with_data, annual_means
FROM water_yearly WHERE year = %(year)s
"""

WATER_SECTIONS = """
SELECT station_id, name, basin, waterbody FROM stations WHERE kind = 'surface_water'
ORDER BY station_id
"""


@dataclass(frozen=True)
class AnnualStatistics:
    """A station's or a city's statistics of its valid daily values in a period.

    ``key``: station id or city code; ``mean`` and ``percentile`` in the parameter's unit;
    ``days_over_limit``: valid days above the 24-hour limit of their day;
    ``valid_days_by_month``: valid days of January … December; ``stations``: for a city, the
    most stations behind one of its daily values (None for a station); ``reviewed_hours``:
    hours with data review took out (a city: its stations').
    """

    key: str
    mean: float | None
    valid_days: int
    percentile: float | None
    days_over_limit: int
    valid_days_by_month: tuple[int, ...]
    stations: int | None = None
    reviewed_hours: int = 0  # hours with data a review took out


@dataclass(frozen=True)
class AirStation:
    """An air station of the registry as an annual report lists it."""

    station_id: str
    name: str
    city_code: str | None
    city: str | None
    province: str | None


@dataclass(frozen=True)
class WaterYear:
    """A section's year as the aggregation stage keeps it."""

    station_id: str
    water_class: int | None
    method: str
    deciding: list[str]
    months_with_data: int
    annual_means: dict[str, float]


@dataclass(frozen=True)
class WaterSectionRow:
    """A surface-water section of the registry."""

    station_id: str
    name: str
    basin: str | None
    waterbody: str | None


def station_annual_statistics(
    conn: psycopg.Connection, parameter: str, year: int
) -> dict[str, AnnualStatistics]:
    """Each air station's statistics of its valid daily values of ``parameter`` in ``year``
    (so far, for a year in progress), by station id."""
    return {
        row[0]: AnnualStatistics(
            row[0], row[1], row[2], row[3], row[4], tuple(row[5]), reviewed_hours=row[6]
        )
        for row in conn.execute(STATION_YEARLY, {"parameter": parameter, "year": year})
    }


def city_annual_statistics(
    conn: psycopg.Connection, parameter: str, year: int
) -> dict[str, AnnualStatistics]:
    """The same statistics of each city's daily values (HJ 663: the mean of its stations'
    valid daily values), by city code."""
    return {
        row[0]: AnnualStatistics(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            tuple(row[5]),
            stations=row[6],
            reviewed_hours=int(row[7]),
        )
        for row in conn.execute(CITY_YEARLY, {"parameter": parameter, "year": year})
    }


def air_stations(conn: psycopg.Connection) -> list[AirStation]:
    """Every air station of the registry, by station id."""
    return [AirStation(*row) for row in conn.execute(AIR_STATIONS)]


def water_years(conn: psycopg.Connection, year: int) -> list[WaterYear]:
    """Every surface-water section's kept year."""
    return [WaterYear(*row) for row in conn.execute(WATER_YEARLY, {"year": year})]


def water_sections(conn: psycopg.Connection) -> list[WaterSectionRow]:
    """Every surface-water section of the registry, by station id."""
    return [WaterSectionRow(*row) for row in conn.execute(WATER_SECTIONS)]
