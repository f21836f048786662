"""/v1/alerts: subscriptions to threshold breaches, the ready-made presets, the history of
alert events and their live stream (server-sent events, resumable with Last-Event-ID).

A subscription belongs to the key that made it: a key with scope ``read`` sees and changes
only its own (another key's is a 404, so ids do not leak); an admin key manages all."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

import anyio
import psycopg
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import Gauge
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import AwareDatetime

from alerts.subscriptions import CREATE_DEFAULTS, resolve_rule
from alerts.webhook import webhook_target_allowed
from api.auth import BOOTSTRAP_KEY_ID, Principal
from api.deps import Conn, ReadAccess, SettingsDep
from api.errors import ApiError, problem_responses
from api.pagination import Page, decode_cursor, encode_cursor
from schemas.alerts import (
    AlertEvent,
    AlertPreset,
    EventKind,
    Subscription,
    SubscriptionCreate,
    SubscriptionPatch,
    value_unit,
)
from schemas.stations import STATION_ID_PATTERN
from standards.alert_presets import PRESETS
from storage import alert_events as outbox
from storage import alert_subscriptions as stored_subscriptions
from storage.alert_events import EventSelection
from storage.stations import city_names_by_code, known_provinces, known_station_ids

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

BIGINT_MAX = 2**63 - 1
SubscriptionId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]

STREAMS_OPEN = Gauge("airwater_alert_streams_open", "Open /v1/alerts/stream connections")
STREAM_POLL_S = 0.5  # how often a stream looks for new events
STREAM_BATCH = 500  # events read per poll; a full batch is followed at once by the next
# An id allocated just before a poll may belong to a transaction that had no xid yet; this
# long after the poll it has one, so the snapshot test below covers it.
GAP_GRACE_S = 0.5
STREAM_RETRY_MS = 2000  # what EventSource clients wait before reconnecting

# --- who may do what ------------------------------------------------------------------------


def _keyholder(principal: ReadAccess) -> Principal:
    """Alerts belong to keys: a key with scope read is needed even where reading is public.
    Holds no pool connection, so an hours-long stream may depend on it."""
    if principal is None:
        raise ApiError(
            401,
            "an API key with scope 'read' is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


Keyholder = Annotated[Principal, Depends(_keyholder)]


def _owner(principal: Principal) -> str | None:
    """The key whose subscriptions the caller sees, or None: an admin sees every one."""
    return None if principal.allows("admin") else principal.key_id


def _id_after(cursor: str | None) -> int | None:
    """The id a page continues after (subscription or event id), or None on the first page."""
    key = decode_cursor(cursor, 1)
    if key is None:
        return None
    if type(key[0]) is not int or not 0 <= key[0] <= BIGINT_MAX:
        raise ApiError(400, "cursor is not one this API issued", "invalid-cursor")
    return key[0]


# --- subscriptions --------------------------------------------------------------------------


def _subscription(row: dict[str, Any]) -> Subscription:
    secret = row.pop("webhook_secret")
    return Subscription(
        **row,
        webhook_secret_set=secret is not None,
        unit=value_unit(row["target"], row["parameter"]),
    )


def _existing(
    conn: psycopg.Connection, principal: Principal, subscription_id: int, lock: bool = False
) -> dict[str, Any]:
    row = stored_subscriptions.subscription_of_caller(
        conn, subscription_id, _owner(principal), lock=lock
    )
    if row is None:
        raise ApiError(
            404, f"subscription {subscription_id} does not exist", "subscription-not-found"
        )
    return row


def _webhook_refusal(url: str, allow: list[str]) -> str | None:
    """Why webhooks may not go to ``url``, or None when they may."""
    try:
        allowed, reason = webhook_target_allowed(url, list(allow))
    except ValueError as exc:  # a URL the check cannot even parse
        return f"not a usable webhook URL: {exc}"
    if allowed:
        return None
    return reason or "the webhook target is not allowed (loopback, private or link-local)"


def _unknown_scope_values(conn: psycopg.Connection, scope: str, values: list[str]) -> str | None:
    """Why some scope values name nothing in the station registry, or None."""
    if scope in ("station", "stations"):
        known = known_station_ids(conn, values)
        missing = [v for v in values if v not in known]
        return f"unknown stations: {', '.join(missing[:10])}" if missing else None
    if scope == "city":
        codes = city_names_by_code(conn)
        by_name = {city: code for code, city in codes.items() if city}
        missing = [v for v in values if v not in codes]
        if not missing:
            return None
        hints = [f"{v} (city code {by_name[v]})" if v in by_name else v for v in missing[:10]]
        return f"not the city code of any station: {', '.join(hints)}"
    if scope == "province":
        known = known_provinces(conn, values)
        missing = [v for v in values if v not in known]
        return f"not the province of any station: {', '.join(missing[:10])}" if missing else None
    return None


def _checked_rule(
    conn: psycopg.Connection, base: dict[str, Any], sent: dict[str, Any], allow: list[str]
) -> dict[str, Any]:
    """The rule after ``sent`` is applied to ``base``; a 422 naming every bad field."""
    rule, problems = resolve_rule(base, sent)
    bad_fields = {field for field, _ in problems}
    scope_changed = "scope_values" in sent or "scope" in sent
    if scope_changed and "scope_values" not in bad_fields and rule["scope"] != "all":
        why = _unknown_scope_values(conn, rule["scope"], rule["scope_values"])
        if why:
            problems.append(("scope_values", why))
    url = rule["webhook_url"]
    if url is not None and "webhook_url" in sent and "webhook_url" not in bad_fields:
        why = _webhook_refusal(url, allow)
        if why:
            problems.append(("webhook_url", why))
    if problems:
        raise RequestValidationError(
            [
                {"type": "value_error", "loc": ("body", field), "msg": reason, "input": None}
                for field, reason in problems
            ]
        )
    return rule


@router.get("/presets", response_model=list[AlertPreset], responses=problem_responses(401, 403))
def presets(_: ReadAccess) -> list[AlertPreset]:
    """Ready-made rules from the standards, to be named as ``preset`` in a subscription."""
    return [
        AlertPreset.model_validate({**asdict(p), "unit": value_unit(p.target, p.parameter)})
        for p in PRESETS.values()
    ]


@router.post(
    "/subscriptions",
    response_model=Subscription,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
def create_subscription(
    body: SubscriptionCreate, conn: Conn, principal: Keyholder, settings: SettingsDep
) -> Subscription:
    """Subscribe to breaches: what (target, parameter), where (scope), the condition
    (comparator, threshold, clear_threshold, for_minutes, for_readings) and how (channel) —
    or a ``preset`` with only the fields to override. The subscription belongs to the key."""
    # null in a new subscription means "the default"
    sent = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    with conn.transaction():
        rule = _checked_rule(conn, CREATE_DEFAULTS, sent, settings.webhook_allow)
        owner = None if principal.key_id == BOOTSTRAP_KEY_ID else principal.key_id
        row = stored_subscriptions.insert_subscription(conn, rule, owner)
    return _subscription(row)


@router.get(
    "/subscriptions",
    response_model=Page[Subscription],
    responses=problem_responses(400, 401, 403, 422),
)
def subscriptions(
    conn: Conn,
    principal: Keyholder,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[Subscription]:
    """The caller's subscriptions (an admin's: all of them) in id order; follow
    ``next_cursor`` for the next page."""
    after = _id_after(cursor)
    rows = stored_subscriptions.subscriptions_of_caller(
        conn, _owner(principal), after or 0, limit + 1
    )
    items = [_subscription(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page[Subscription](
        items=items, next_cursor=encode_cursor([items[-1].subscription_id]) if more else None
    )


@router.get(
    "/subscriptions/{subscription_id}",
    response_model=Subscription,
    responses=problem_responses(401, 403, 404, 422),
)
def subscription(subscription_id: SubscriptionId, conn: Conn, principal: Keyholder) -> Subscription:
    return _subscription(_existing(conn, principal, subscription_id))


@router.patch(
    "/subscriptions/{subscription_id}",
    response_model=Subscription,
    responses=problem_responses(401, 403, 404, 422),
)
def update_subscription(
    subscription_id: SubscriptionId,
    body: SubscriptionPatch,
    conn: Conn,
    principal: Keyholder,
    settings: SettingsDep,
) -> Subscription:
    """Change some fields. Fields not sent keep their value, except those that no longer fit
    a changed target, scope or channel, which are cleared; ``webhook_secret`` may be sent to
    rotate it."""
    sent = body.model_dump(exclude_unset=True)
    with conn.transaction():
        stored = _existing(conn, principal, subscription_id, lock=True)
        rule = _checked_rule(conn, stored, sent, settings.webhook_allow)
        row = stored_subscriptions.update_subscription(conn, subscription_id, rule)
    assert row is not None  # locked above, so it exists
    return _subscription(row)


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422),
)
def delete_subscription(
    subscription_id: SubscriptionId, conn: Conn, principal: Keyholder
) -> Response:
    """Delete a subscription with its state and its events (undelivered ones included); to
    pause it instead, PATCH ``active`` to false."""
    with conn.transaction():
        _existing(conn, principal, subscription_id, lock=True)
        stored_subscriptions.delete_subscription(conn, subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """Which events a caller asked for and may see."""

    principal: Principal
    subscription_id: int | None = None
    station_id: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def selection(self) -> EventSelection:
        """The events of the filter that the caller may see: a key without admin scope, those
        of its own subscriptions."""
        return EventSelection(
            owner_key_id=_owner(self.principal),
            subscription_id=self.subscription_id,
            station_id=self.station_id,
            kind=self.kind,
            since=self.since,
            until=self.until,
        )


def _event(row: dict[str, Any]) -> AlertEvent:
    return AlertEvent(**row, unit=value_unit(row["target"], row["parameter"]))


SubscriptionFilter = Annotated[
    int | None, Query(ge=1, le=BIGINT_MAX, description="only events of this subscription")
]
StationFilter = Annotated[
    str | None, Query(pattern=STATION_ID_PATTERN, description="only events of this station")
]
KindFilter = Annotated[EventKind | None, Query(description="only events of this kind")]
SinceFilter = Annotated[
    AwareDatetime | None, Query(description="created at or after (ISO 8601 with offset)")
]
UntilFilter = Annotated[
    AwareDatetime | None, Query(description="created before (ISO 8601 with offset)")
]


@router.get("", response_model=Page[AlertEvent], responses=problem_responses(400, 401, 403, 422))
def alert_events(
    conn: Conn,
    principal: Keyholder,
    subscription_id: SubscriptionFilter = None,
    station_id: StationFilter = None,
    kind: KindFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[AlertEvent]:
    """Alert events, newest first, with their delivery state; a key without admin scope sees
    the events of its own subscriptions. Follow ``next_cursor`` for older ones."""
    after = _id_after(cursor)
    selection = EventFilter(principal, subscription_id, station_id, kind, since, until).selection()
    rows = outbox.alert_events_newest_first(conn, selection, before=after, limit=limit + 1)
    items = [_event(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page[AlertEvent](
        items=items, next_cursor=encode_cursor([items[-1].event_id]) if more else None
    )


@dataclass
class _Horizon:
    last_id: int  # every id up to this one had been allocated when it was taken
    xmax: int  # every transaction that had an xid then has one below this
    taken_at: float  # time.monotonic()


class OutboxFollower:
    """Reads the outbox in event_id order without ever passing over an event that commits
    late: ids are allocated when inserted but become visible at commit, so id 11 may be seen
    before id 10. An id is only skipped once it can no longer appear — every transaction that
    could hold it has ended (then it was rolled back) — so a client that resumes after the
    last id it got misses nothing."""

    def __init__(self, after: int, event_filter: EventFilter) -> None:
        self.after = after  # the last id passed (sent or filtered out)
        self._settled = after  # ids up to here are final: visible now or never
        self._horizons: deque[_Horizon] = deque()
        self._selection = event_filter.selection()

    def poll(self, pool: ConnectionPool) -> tuple[list[AlertEvent], bool]:
        """Events that may be sent now, in order, and whether more are waiting already.
        One short transaction on a pooled connection."""
        with pool.connection(timeout=10) as conn:
            # order matters: ids first, then the snapshot, then the rows
            last_id = outbox.last_allocated_event_id(conn)
            xmin, xmax = outbox.snapshot_bounds(conn)
            rows = outbox.alert_events_after(conn, self._selection, self.after, STREAM_BATCH)
        now = time.monotonic()
        while (
            self._horizons
            and xmin >= self._horizons[0].xmax
            and now - self._horizons[0].taken_at >= GAP_GRACE_S
        ):
            self._settled = max(self._settled, self._horizons.popleft().last_id)
        if last_id > self._settled and (not self._horizons or last_id > self._horizons[-1].last_id):
            self._horizons.append(_Horizon(last_id, xmax, now))
        events: list[AlertEvent] = []
        for row in rows:
            event_id = row["event_id"]
            if event_id != self.after + 1 and event_id > self._settled:
                return events, False  # an id before this one may still commit: wait
            self.after = event_id
            if row.pop("wanted"):
                events.append(_event(row))
        return events, len(rows) == STREAM_BATCH


def _stream_start(
    request: Request,
    principal: Keyholder,
    last_event_id_header: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=BIGINT_MAX,
            description="resume after this event id (sent by EventSource on reconnection)",
        ),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Query(ge=0, le=BIGINT_MAX, description="as the Last-Event-ID header, which wins"),
    ] = None,
    from_start: Annotated[
        bool, Query(description="without a last event id: send every stored event first")
    ] = False,
) -> int:
    """The id the stream starts after, fixed before the response begins so that an event
    committed once the client sees the response is never missed."""
    if last_event_id_header is not None:
        return last_event_id_header
    if last_event_id is not None:
        return last_event_id
    if from_start:
        return 0
    pool: ConnectionPool = request.app.state.pool
    try:
        with pool.connection(timeout=10) as conn:
            return outbox.newest_event_id(conn)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise ApiError(503, f"database unavailable: {type(exc).__name__}") from None


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "server-sent events: `id:` event_id, `event:` kind, `data:` an "
            "AlertEvent as JSON; `: ping` comments when idle"
        },
        **problem_responses(401, 403, 422, 503),
    },
)
async def alert_stream(
    request: Request,
    principal: Keyholder,
    start_after: Annotated[int, Depends(_stream_start)],
    subscription_id: SubscriptionFilter = None,
    station_id: StationFilter = None,
    kind: KindFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    max_events: Annotated[
        int | None,
        Query(ge=1, le=100_000, description="end the stream after this many events"),
    ] = None,
    timeout_s: Annotated[
        float | None,
        Query(gt=0, le=86_400, description="end the stream after this many seconds"),
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Alert events as server-sent events (``text/event-stream``): ``id:`` the event id,
    ``event:`` its kind, ``data:`` the event as JSON (as in ``GET /v1/alerts``).

    With a ``Last-Event-ID`` header (or ``?last_event_id=``) every event after that id is
    sent first, in order, then new ones as they are committed; without one the stream starts
    after the newest event stored when it opens, or before the first stored one with
    ``from_start=true``. No event is skipped or repeated across a reconnection. A ``: ping``
    comment is sent when idle for 15 s. Filters as for ``GET /v1/alerts``; a key without
    admin scope gets the events of its own subscriptions. ``max_events`` and ``timeout_s``
    end the stream (for scripts and tests); otherwise it lasts until the client disconnects."""
    follower = OutboxFollower(
        start_after, EventFilter(principal, subscription_id, station_id, kind, since, until)
    )
    pool: ConnectionPool = request.app.state.pool
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    sent = 0
    STREAMS_OPEN.inc()
    try:
        yield ServerSentEvent(comment=f"alert events after {start_after}", retry=STREAM_RETRY_MS)
        while deadline is None or time.monotonic() < deadline:
            if await request.is_disconnected():
                return
            try:
                events, more = await anyio.to_thread.run_sync(follower.poll, pool)
            except (PoolTimeout, psycopg.OperationalError) as exc:
                # the client reconnects with the last id it got and misses nothing
                log.warning("alert stream ends: database unavailable (%s)", exc)
                yield ServerSentEvent(comment="database unavailable; reconnect")
                return
            for event in events:
                yield ServerSentEvent(data=event, event=event.kind, id=str(event.event_id))
                sent += 1
                if max_events is not None and sent >= max_events:
                    return
            if not more:
                wait = STREAM_POLL_S
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - time.monotonic()))
                await anyio.sleep(wait)
    finally:
        STREAMS_OPEN.dec()
