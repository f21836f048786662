"""The station registry in the database: every statement that reads or writes ``stations``
for the registry itself (the readers of readings join it where they need it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from schemas.stations import FIELDS, Station

_COLUMNS = ", ".join(FIELDS)
_PLACEHOLDERS = ", ".join(f"%({f})s" for f in FIELDS)
_UPDATES = ", ".join(f"{f} = excluded.{f}" for f in FIELDS if f != "station_id")

# Create, or replace every field of, a station: a registry file and the API say all of it.
UPSERT_STATION = (
    f"INSERT INTO stations ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"
    f" ON CONFLICT (station_id) DO UPDATE SET {_UPDATES}, updated_at = now()"
    " RETURNING (xmax = 0) AS created"
)

INSERT_STATION = f"INSERT INTO stations ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"

STATION = f"SELECT {_COLUMNS} FROM stations WHERE station_id = %s"

STATION_EXISTS = "SELECT 1 FROM stations WHERE station_id = %s"

# Each filter applies only when given; ``after`` is the keyset cursor.
STATIONS = f"""
SELECT {_COLUMNS} FROM stations
WHERE (%(kind)s::text IS NULL OR kind = %(kind)s)
  AND (%(city_code)s::text IS NULL OR city_code = %(city_code)s)
  AND (%(city)s::text IS NULL OR city = %(city)s)
  AND (%(province)s::text IS NULL OR province = %(province)s)
  AND (%(active)s::boolean IS NULL OR active = %(active)s)
  AND (%(after)s::text IS NULL OR station_id > %(after)s)
ORDER BY station_id LIMIT %(limit)s
"""

KNOWN_STATION_IDS = "SELECT station_id FROM stations WHERE station_id = ANY(%s)"

# every city code with a city name its stations give (a code may appear with several)
CITY_NAMES_BY_CODE = "SELECT DISTINCT city_code, city FROM stations WHERE city_code IS NOT NULL"

KNOWN_PROVINCES = "SELECT DISTINCT province FROM stations WHERE province = ANY(%s)"


def upsert_stations(conn: psycopg.Connection, stations: Iterable[Station]) -> tuple[int, int]:
    """Create or update stations by id, every field as given; returns (created, updated)."""
    created = updated = 0
    with conn.transaction(), conn.cursor() as cur:
        for station in stations:
            cur.execute(UPSERT_STATION, station.model_dump())
            row = cur.fetchone()
            if row is not None and row[0]:
                created += 1
            else:
                updated += 1
    return created, updated


def create_station(conn: psycopg.Connection, station: Station) -> None:
    """Insert a new station; psycopg.errors.UniqueViolation if the id exists."""
    with conn.transaction():
        conn.execute(INSERT_STATION, station.model_dump())


def get_station(conn: psycopg.Connection, station_id: str) -> Station | None:
    """The station ``station_id``, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(STATION, (station_id,))
        row = cur.fetchone()
    return None if row is None else Station.model_validate(row)


def station_exists(conn: psycopg.Connection, station_id: str) -> bool:
    return conn.execute(STATION_EXISTS, (station_id,)).fetchone() is not None


def list_stations(
    conn: psycopg.Connection,
    kind: str | None = None,
    city_code: str | None = None,
    active: bool | None = None,
    province: str | None = None,
    city: str | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> list[Station]:
    """Stations in id order, filtered by whatever is given; ``after`` = keyset cursor."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            STATIONS,
            {
                "kind": kind,
                "city_code": city_code,
                "active": active,
                "province": province,
                "city": city,
                "after": after,
                "limit": limit,
            },
        )
        return [Station.model_validate(row) for row in cur.fetchall()]


def update_station(conn: psycopg.Connection, station_id: str, **changes: Any) -> Station | None:
    """Change some fields of a station (validated as a whole); None if it does not exist."""
    current = get_station(conn, station_id)
    if current is None:
        return None
    merged = Station.model_validate({**current.model_dump(), **changes, "station_id": station_id})
    upsert_stations(conn, [merged])
    return merged


def known_station_ids(conn: psycopg.Connection, station_ids: list[str]) -> set[str]:
    """Those of ``station_ids`` that are registered."""
    return {row[0] for row in conn.execute(KNOWN_STATION_IDS, (station_ids,))}


def city_names_by_code(conn: psycopg.Connection) -> dict[str, str | None]:
    """City code → a city name its stations give (None when none gives one)."""
    return {code: city for code, city in conn.execute(CITY_NAMES_BY_CODE)}


def known_provinces(conn: psycopg.Connection, provinces: list[str]) -> set[str]:
    """Those of ``provinces`` that some station lies in."""
    return {row[0] for row in conn.execute(KNOWN_PROVINCES, (provinces,))}


# Create, or update what a station list knows; keeps what it does not say (timezone,
# interval, active, province when absent), and never turns a water station into air.
_MERGE_LISTED_AIR_STATION = """
INSERT INTO stations (station_id, name, kind, city, city_code, province, latitude, longitude)
VALUES (%(station_id)s, %(name)s, 'air', %(city)s, %(city_code)s, %(province)s,
        %(latitude)s, %(longitude)s)
ON CONFLICT (station_id) DO UPDATE SET
    name = excluded.name, city = coalesce(excluded.city, stations.city),
    city_code = coalesce(excluded.city_code, stations.city_code),
    province = coalesce(excluded.province, stations.province),
    latitude = coalesce(excluded.latitude, stations.latitude),
    longitude = coalesce(excluded.longitude, stations.longitude),
    updated_at = now()
WHERE stations.kind = 'air'
RETURNING (xmax = 0) AS created
"""


def merge_listed_air_stations(
    conn: psycopg.Connection, stations: Iterable[Station]
) -> tuple[int, int]:
    """Create air stations of a station list, or update the fields the list gives (name,
    city, city code, province, position) of registered air stations, keeping the others;
    a registered water station of the same id is left alone. Returns (created, updated)."""
    created = updated = 0
    with conn.transaction(), conn.cursor() as cur:
        for station in stations:
            cur.execute(_MERGE_LISTED_AIR_STATION, station.model_dump())
            row = cur.fetchone()
            if row is None:
                continue
            if row[0]:
                created += 1
            else:
                updated += 1
    return created, updated
