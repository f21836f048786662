"""/v1/stations: the station registry."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Path, Query, Request, status

from api.deps import AdminAccess, Conn, ReadAccess, SettingsDep
from api.errors import ApiError, problem_responses
from api.pagination import Page, decode_cursor, encode_cursor
from schemas.api import StationPatch
from schemas.stations import STATION_ID_PATTERN, Station, StationKind
from storage.stations import create_station, get_station, list_stations, update_station

router = APIRouter(prefix="/v1/stations", tags=["stations"])
# a NUL or other junk in the path is a 422, never a database error
StationId = Annotated[str, Path(pattern=STATION_ID_PATTERN)]


def _registry_changed(request: Request) -> None:
    """HTTP ingest caches the registry; a change here is seen by the next request."""
    directory = getattr(request.app.state, "station_directory", None)
    if directory is not None:
        directory.expire()


def _existing(conn: psycopg.Connection, station_id: str) -> Station:
    station = get_station(conn, station_id)
    if station is None:
        raise ApiError(404, f"station {station_id!r} does not exist", "station-not-found")
    return station


@router.get("", response_model=Page[Station], responses=problem_responses(400, 401, 403, 422))
def stations(
    conn: Conn,
    settings: SettingsDep,
    _: ReadAccess,
    kind: StationKind | None = None,
    city: Annotated[str | None, Query(max_length=100)] = None,
    city_code: Annotated[str | None, Query(max_length=20)] = None,
    province: Annotated[str | None, Query(max_length=100)] = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[Station]:
    """Stations in id order, filtered; follow ``next_cursor`` for the next page."""
    after = decode_cursor(cursor, 1)
    rows = list_stations(
        conn,
        kind=kind,
        city_code=city_code,
        active=active,
        province=province,
        city=city,
        after=after[0] if after else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    items = rows[:limit]
    return Page[Station](
        items=items, next_cursor=encode_cursor([items[-1].station_id]) if more else None
    )


@router.get(
    "/{station_id}", response_model=Station, responses=problem_responses(401, 403, 404, 422)
)
def station(station_id: StationId, conn: Conn, _: ReadAccess) -> Station:
    return _existing(conn, station_id)


@router.post(
    "",
    response_model=Station,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
)
def create(body: Station, conn: Conn, _: AdminAccess, request: Request) -> Station:
    """Register a station (admin)."""
    try:
        create_station(conn, body)
    except psycopg.errors.UniqueViolation:
        raise ApiError(
            409, f"station {body.station_id!r} exists already", "station-exists"
        ) from None
    _registry_changed(request)
    return body


@router.patch(
    "/{station_id}", response_model=Station, responses=problem_responses(401, 403, 404, 422)
)
def update(
    station_id: StationId, body: StationPatch, conn: Conn, _: AdminAccess, request: Request
) -> Station:
    """Change some fields of a station (admin)."""
    _existing(conn, station_id)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    try:
        updated = update_station(conn, station_id, **changes)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    assert updated is not None
    _registry_changed(request)
    return updated


@router.delete("/{station_id}", response_model=Station, responses=problem_responses(401, 403, 404))
def deactivate(station_id: StationId, conn: Conn, _: AdminAccess, request: Request) -> Station:
    """Deactivate a station (admin): its data stays, new readings are dead-lettered."""
    _existing(conn, station_id)
    updated = update_station(conn, station_id, active=False)
    assert updated is not None
    _registry_changed(request)
    return updated
