"""The station registry in the database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from schemas.stations import FIELDS, Station

_COLUMNS = ", ".join(FIELDS)
_PLACEHOLDERS = ", ".join(f"%({f})s" for f in FIELDS)
_UPDATES = ", ".join(f"{f} = excluded.{f}" for f in FIELDS if f != "station_id")


def upsert_stations(conn: psycopg.Connection, stations: Iterable[Station]) -> tuple[int, int]:
    """Create or update stations by id; returns (created, updated)."""
    created = updated = 0
    with conn.transaction(), conn.cursor() as cur:
        for station in stations:
            cur.execute(
                f"INSERT INTO stations ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"
                f" ON CONFLICT (station_id) DO UPDATE SET {_UPDATES}, updated_at = now()"
                " RETURNING (xmax = 0) AS created",
                station.model_dump(),
            )
            row = cur.fetchone()
            if row is not None and row[0]:
                created += 1
            else:
                updated += 1
    return created, updated


def create_station(conn: psycopg.Connection, station: Station) -> None:
    """Insert a new station; psycopg.errors.UniqueViolation if the id exists."""
    with conn.transaction():
        conn.execute(
            f"INSERT INTO stations ({_COLUMNS}) VALUES ({_PLACEHOLDERS})", station.model_dump()
        )


def get_station(conn: psycopg.Connection, station_id: str) -> Station | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM stations WHERE station_id = %s", (station_id,))
        row = cur.fetchone()
    return None if row is None else Station.model_validate(row)


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
            f"SELECT {_COLUMNS} FROM stations"
            " WHERE (%(kind)s::text IS NULL OR kind = %(kind)s)"
            " AND (%(city_code)s::text IS NULL OR city_code = %(city_code)s)"
            " AND (%(city)s::text IS NULL OR city = %(city)s)"
            " AND (%(province)s::text IS NULL OR province = %(province)s)"
            " AND (%(active)s::boolean IS NULL OR active = %(active)s)"
            " AND (%(after)s::text IS NULL OR station_id > %(after)s)"
            " ORDER BY station_id LIMIT %(limit)s",
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
