"""Station lists (English or the national list's Chinese headers): read into air stations
and merged into the registry."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import psycopg
from pydantic import ValidationError

from schemas.stations import Station, first_error, station_rows
from standards.divisions import city_code
from storage.stations import list_stations, merge_listed_air_stations, upsert_stations

log = logging.getLogger(__name__)


def derived_city_code(city: str) -> str:
    """A stable code for a city known only by name: ``CN-`` and 8 hex digits of the SHA-256
    of the name. Never a GB/T 2260 code (those are six digits), the same on every machine."""
    return "CN-" + hashlib.sha256(city.strip().encode()).hexdigest()[:8]


def read_station_list(path: Path) -> tuple[list[Station], list[str]]:
    """Air stations of a national station list and the problems of rows that could not be
    read; columns that are not Station fields are ignored, a city without a code gets its
    GB/T 2260 code (or a derived one)."""
    rows, _ = station_rows(path)
    stations: list[Station] = []
    problems: list[str] = []
    for line, row in rows:
        city = row.get("city")
        if city and "city_code" not in row:
            row["city_code"] = city_code(city) or derived_city_code(city)
        try:
            stations.append(Station.model_validate({**row, "kind": "air"}))
        except ValidationError as exc:
            problems.append(f"row {line}: {first_error(exc)}")
    return stations, problems


def import_station_list(conn: psycopg.Connection, path: Path) -> tuple[int, int, int]:
    """Merge the air stations of a list file into the registry; returns (created, updated,
    rows rejected)."""
    stations, problems = read_station_list(path)
    for problem in problems[:20]:
        log.warning("%s: %s", path, problem)
    created, updated = merge_listed_air_stations(conn, stations)
    log.info(
        "%s: station list: %d created, %d updated, %d rows rejected",
        path,
        created,
        updated,
        len(problems),
    )
    return created, updated, len(problems)


def register_stations(
    conn: psycopg.Connection, stations: Sequence[Station], only_missing: bool = False
) -> tuple[int, int]:
    """Create or update ``stations`` in the registry (all their fields, as given); with
    ``only_missing``, leave the ones already registered alone. (created, updated)."""
    if only_missing:
        existing = {s.station_id for s in list_stations(conn)}
        stations = [s for s in stations if s.station_id not in existing]
    return upsert_stations(conn, stations)
