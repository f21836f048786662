"""/v1/dead-letters: rejected payloads, their reason and how often each came (admin)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.deps import AdminAccess, Conn
from api.errors import ApiError, problem_responses
from api.pagination import Page, decode_cursor, encode_cursor
from schemas.ingest_api import DeadLetterOut
from schemas.payloads import Reason
from schemas.stations import STATION_ID_PATTERN
from storage.dead_letters import dead_letters_newest_first

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])


def _payload_text(payload: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode("ascii"), "base64"


def _after(cursor: str | None) -> tuple[datetime, int] | None:
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    received_at, letter_id = key
    try:
        if not isinstance(received_at, str) or type(letter_id) is not int:
            raise ValueError("not a (received_at, id) key")
        after = datetime.fromisoformat(received_at)
        if after.tzinfo is None:
            raise ValueError("received_at without offset")
    except ValueError:
        raise ApiError(400, "cursor is not one this API issued", "invalid-cursor") from None
    return after, letter_id


@router.get("", response_model=Page[DeadLetterOut], responses=problem_responses(400, 401, 403, 422))
def dead_letters(
    conn: Conn,
    _: AdminAccess,
    reason: Annotated[
        list[Reason] | None,
        Query(description="only these reasons (repeat the parameter for several)"),
    ] = None,
    station_id: Annotated[
        str | None, Query(pattern=STATION_ID_PATTERN, description="only this station")
    ] = None,
    source: Annotated[
        Literal["mqtt", "http"] | None, Query(description="only letters received this way")
    ] = None,
    since: Annotated[
        AwareDatetime | None,
        Query(description="first received at or after (ISO 8601 with offset)"),
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="first received before (ISO 8601 with offset)")
    ] = None,
    min_occurrences: Annotated[
        int, Query(ge=1, le=2**31 - 1, description="only letters received at least this often")
    ] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[DeadLetterOut]:
    """Dead letters by first arrival, newest first: the payload as received (text when it
    is UTF-8, else base64), the machine-readable reason and a sentence, and how many times
    the same rejection came (``occurrences``, ``first_seen``, ``last_seen``); follow
    ``next_cursor`` for older ones."""
    rows = dead_letters_newest_first(
        conn,
        reasons=sorted({r.value for r in reason or ()}),
        station_id=station_id,
        source=source,
        since=since,
        until=until,
        min_occurrences=min_occurrences,
        after=_after(cursor),
        limit=limit + 1,
    )
    items = []
    for row in rows[:limit]:
        raw = bytes(row.payload)
        text, encoding = _payload_text(raw)
        items.append(
            DeadLetterOut(
                id=row.id,
                received_at=row.received_at,
                source=row.source,
                topic=row.topic,
                station_id=row.station_id,
                reason=row.reason,
                detail=row.detail,
                payload=text,
                encoding=encoding,
                payload_bytes=len(raw),
                occurrences=row.occurrences,
                first_seen=row.first_seen,
                last_seen=row.last_seen,
            )
        )
    more = len(rows) > limit
    next_cursor = encode_cursor([items[-1].received_at.isoformat(), items[-1].id]) if more else None
    return Page[DeadLetterOut](items=items, next_cursor=next_cursor)
