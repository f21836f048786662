"""Data review: invalidate and restore a station's hours, sand-dust events, the audit log.
Acting needs the `review` scope (admin implies it); reading needs `read`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Conn, ReadAccess, ReviewAccess
from api.errors import problem_responses
from reports.review import (
    actor_of_key,
    audit_page,
    dust_events,
    invalidate,
    record_dust_event,
    restore,
    reviews_of_station,
    withdraw_dust_event,
)
from schemas.review import (
    AuditAction,
    AuditPage,
    DustEvent,
    DustEventIn,
    RestoreIn,
    Review,
    ReviewIn,
)
from schemas.stations import STATION_ID_PATTERN

router = APIRouter(prefix="/v1", tags=["review"])

StationId = Annotated[str, Path(pattern=STATION_ID_PATTERN)]
_ACTING = problem_responses(401, 403, 404, 409, 422)


@router.post(
    "/stations/{station_id}/reviews", response_model=Review, status_code=201, responses=_ACTING
)
def invalidate_hours(
    conn: Conn, principal: ReviewAccess, station_id: StationId, body: ReviewIn
) -> Review:
    """Invalidate parameters of a station over a time range (widened to whole hours) with a
    reason code and a comment — or, with ``action: accept``, make the values the station
    itself flagged there (HJ 212 data flags) count, overruling its flag. Invalidated hours
    leave every figure (daily, annual, assessment) once the aggregation stage has run, and
    the coverage says how many hours review removed. A range without readings (to accept:
    without station-flagged values), in the future, reversed, or overlapping an active review
    of the same parameters is refused and nothing changes."""
    actor = actor_of_key(conn, principal.key_id if principal else None)
    return invalidate(
        conn,
        station_id,
        body.parameters,
        body.from_,
        body.to,
        body.reason,
        body.comment,
        actor,
        action=body.action,
    )


@router.get(
    "/stations/{station_id}/reviews",
    response_model=list[Review],
    responses=problem_responses(401, 403, 404, 422),
)
def station_reviews(
    conn: Conn,
    _: ReadAccess,
    station_id: StationId,
    active: Annotated[bool, Query(description="only reviews not restored")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[Review]:
    """The station's reviews, latest range first, restored ones included unless ``active``."""
    return reviews_of_station(conn, station_id, active, limit)


@router.post("/reviews/{review_id}/restore", response_model=Review, responses=_ACTING)
def restore_hours(
    conn: Conn,
    principal: ReviewAccess,
    review_id: Annotated[int, Path(ge=1, le=2**62)],
    body: RestoreIn | None = None,
) -> Review:
    """Put the hours of an active review back into every figure. A review that does not
    exist is a 404; one already restored a 409."""
    actor = actor_of_key(conn, principal.key_id if principal else None)
    return restore(conn, review_id, actor, body.comment if body else "")


@router.post("/dust-events", response_model=DustEvent, status_code=201, responses=_ACTING)
def record_event(conn: Conn, principal: ReviewAccess, body: DustEventIn) -> DustEvent:
    """Record a sand-dust event for cities or provinces over a time range with its evidence:
    the PM10 and PM2.5 hours of their air stations in the range leave the dust-excluded
    statistics, which targets, attainment and ranking use (the measured ones are kept)."""
    actor = actor_of_key(conn, principal.key_id if principal else None)
    return record_dust_event(conn, body.areas, body.from_, body.to, body.evidence, actor)


@router.get("/dust-events", response_model=list[DustEvent], responses=problem_responses(401, 403))
def list_events(
    conn: Conn,
    _: ReadAccess,
    active: Annotated[bool, Query(description="only events not withdrawn")] = False,
    city_code: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z-]{1,16}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[DustEvent]:
    """Recorded sand-dust events, latest first."""
    return dust_events(conn, active, city_code, limit)


@router.post("/dust-events/{event_id}/withdraw", response_model=DustEvent, responses=_ACTING)
def withdraw_event(
    conn: Conn,
    principal: ReviewAccess,
    event_id: Annotated[int, Path(ge=1, le=2**62)],
    body: RestoreIn | None = None,
) -> DustEvent:
    """Withdraw an event recorded in error: its hours count again (the audit log keeps both)."""
    actor = actor_of_key(conn, principal.key_id if principal else None)
    return withdraw_dust_event(conn, event_id, actor, body.comment if body else "")


@router.get("/audit", response_model=AuditPage, responses=problem_responses(401, 403, 422))
def audit(
    conn: Conn,
    _: ReadAccess,
    station_id: Annotated[
        str | None,
        Query(pattern=STATION_ID_PATTERN, description="a station's entries and its city's events"),
    ] = None,
    action: Annotated[AuditAction | None, Query()] = None,
    after: Annotated[int, Query(ge=0, le=2**62, description="audit_id to continue after")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """The append-only audit log of review actions and dust events, oldest first: who (the
    key's name), when, what, why, how many hours it touched. Nothing in it can be changed."""
    return audit_page(conn, station_id, action, after, limit)
