"""/v1/stations/{station_id}/readings: a station's readings, a page at a time as JSON or the
whole range as a streamed CSV."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from datetime import datetime
from typing import Annotated, Any

import anyio
import psycopg
from fastapi import APIRouter, Header, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from api.deps import Conn, ReadAccess, SettingsDep, Thresholds
from api.errors import ApiError, problem_responses
from api.pagination import Page, decode_cursor, encode_cursor
from reports import (
    CSV_MEDIA_TYPE,
    READINGS_CSV_COLUMNS,
    flagged_readings,
    reading_flags,
    readings_csv_header,
    readings_csv_lines,
    wants_csv,
)
from schemas.series import AwareInstant, ParameterName, Reading, ReadingFormat
from schemas.stations import Station
from standards.quality import FlagsByHour
from storage.series import StoredReading, reading_chunks, readings_of_station
from storage.stations import get_station

router = APIRouter(prefix="/v1/stations", tags=["readings"])

# Rows fetched from the server-side cursor per chunk of the CSV (about 0.3 MB of text).
CSV_ROWS_PER_CHUNK = 5000
ReadingChunks = Generator[list[StoredReading], None, None]
# The quality flags of the hours a chunk of readings lies in.
ChunkFlags = Callable[[list[StoredReading]], FlagsByHour]

_CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A page of readings (JSON), or with `Accept: text/csv` or "
        "`?format=csv` every reading of the range as a streamed CSV",
        "content": {
            CSV_MEDIA_TYPE: {
                "schema": {"type": "string"},
                "example": ",".join(READINGS_CSV_COLUMNS) + "\r\n"
                "110000-A001,pm25,2026-03-01T00:00:00+00:00,35.2,ug/m3,valid,,\r\n",
            }
        },
    }
}


def invalid_query(name: str, reason: str) -> RequestValidationError:
    """A 422 naming the query parameter, like FastAPI's own validation errors."""
    return RequestValidationError(
        [{"loc": ("query", name), "msg": reason, "type": "value_error", "input": None}]
    )


def station_or_404(conn: psycopg.Connection, station_id: str) -> Station:
    """The station, or a 404 problem."""
    station = get_station(conn, station_id)
    if station is None:
        raise ApiError(404, f"station {station_id!r} does not exist", "station-not-found")
    return station


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    try:
        ts = datetime.fromisoformat(key[0])
    except (TypeError, ValueError):
        ts = None
    if ts is None or ts.tzinfo is None or not isinstance(key[1], str):
        raise ApiError(400, "cursor is not one this API issued", "invalid-cursor")
    return ts, key[1]


async def _csv_body(chunks: ReadingChunks, flags_of: ChunkFlags) -> AsyncGenerator[bytes, None]:
    """The CSV, one chunk of the server-side cursor at a time (fetched, and the flags of its
    hours judged, in a worker thread)."""
    try:
        yield readings_csv_header()
        while (rows := await run_in_threadpool(next, chunks, None)) is not None:
            flags = await run_in_threadpool(flags_of, rows)
            yield readings_csv_lines(rows, flags)
    finally:
        # closes the cursor, also when the client went away or the stream was cancelled
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(chunks.close)


class CsvStream(StreamingResponse):
    """A streamed CSV whose body is closed before the response returns, so the cursor is
    gone before the request's connection goes back to the pool."""

    media_type = CSV_MEDIA_TYPE

    def __init__(self, body: AsyncGenerator[bytes, None], filename: str) -> None:
        super().__init__(
            body, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
        )
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._body.aclose()


@router.get(
    "/{station_id}/readings",
    response_model=Page[Reading],
    responses=_CSV_RESPONSE | problem_responses(400, 401, 403, 404, 422),
)
def readings(
    station_id: str,
    conn: Conn,
    settings: SettingsDep,
    _: ReadAccess,
    thresholds: Thresholds,
    parameter: Annotated[
        ParameterName | None, Query(description="one parameter, e.g. pm25; all when absent")
    ] = None,
    start: Annotated[
        AwareInstant | None,
        Query(description="first instant included, ISO 8601 with offset"),
    ] = None,
    end: Annotated[
        AwareInstant | None,
        Query(description="first instant excluded, ISO 8601 with offset"),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, description="readings per page, at most the server's page maximum")
    ] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    fmt: Annotated[
        ReadingFormat | None,
        Query(
            alias="format",
            description="csv: the whole range as CSV (limit and cursor do not apply)",
        ),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Page[Reading] | CsvStream:
    """Readings of a station in [start, end), oldest first (ties in parameter order). JSON
    pages follow ``next_cursor``; CSV (``Accept: text/csv`` or ``?format=csv``) streams the
    whole range. Times are UTC with offset; values in the parameter's ``unit``. Each reading
    carries the automatic quality flags of its hour (``quality_flags``; in the CSV their codes
    joined by ';'), which change no value."""
    if start is not None and end is not None and start > end:
        raise invalid_query("end", "end must not be before start")
    station_or_404(conn, station_id)
    if wants_csv(accept, fmt):
        chunks = reading_chunks(conn, station_id, parameter, start, end, CSV_ROWS_PER_CHUNK)
        body = _csv_body(chunks, lambda rows: reading_flags(conn, station_id, rows, thresholds))
        return CsvStream(body, f"{station_id}-readings.csv")
    if limit > settings.api_page_max:
        raise invalid_query("limit", f"limit must be at most {settings.api_page_max}")
    after = _after(cursor)
    rows = readings_of_station(conn, station_id, parameter, start, end, after, limit + 1)
    more = len(rows) > limit
    items = flagged_readings(conn, station_id, rows[:limit], thresholds)
    next_cursor = encode_cursor([items[-1].ts.isoformat(), items[-1].parameter]) if more else None
    return Page[Reading](items=items, next_cursor=next_cursor)
