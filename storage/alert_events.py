"""The outbox of alert events (``alert_events``): appended in the transaction that caused
them, claimed and recorded by the delivery worker, read back by the API and its stream.

The evaluation and the silence timer signal new events on the channel ``alert_events``
(NOTIFY, delivered at commit); the delivery worker LISTENs on it."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row

CHANNEL = "alert_events"  # NOTIFY channel of new events

LISTEN_FOR_NEW_EVENTS = "LISTEN alert_events"
NOTIFY_NEW_EVENTS = "SELECT pg_notify('alert_events', '')"

APPEND_EVENT = """
INSERT INTO alert_events (subscription_id, station_id, kind, target, parameter, value,
                          threshold, observed_at, channel)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

# A silence: what is known is when the station was last heard of and the silence length.
APPEND_NO_DATA_EVENT = """
INSERT INTO alert_events (subscription_id, station_id, kind, target, observed_at, threshold,
                          channel)
VALUES (%s, %s, 'no_data', 'silence', %s, %s, %s)
"""

# The oldest due event that nobody holds, and only if no earlier event of its
# (subscription, station) is still pending: a "resolved" never overtakes its "firing".
# Only columns that cannot fail to load: whatever goes wrong later, the event id is known.
CLAIM_NEXT_DUE_EVENT = """
SELECT e.event_id, e.channel, e.attempts
FROM alert_events e
WHERE e.delivery_state = 'pending'
  AND e.next_attempt_at <= now()
  AND NOT EXISTS (
      SELECT 1 FROM alert_events earlier
      WHERE earlier.subscription_id = e.subscription_id
        AND earlier.station_id = e.station_id
        AND earlier.delivery_state = 'pending'
        AND earlier.event_id < e.event_id)
ORDER BY e.event_id
LIMIT 1
FOR UPDATE SKIP LOCKED
"""

CLAIMED_EVENT = """
SELECT e.event_id, e.idempotency_key, e.subscription_id, s.name AS subscription_name,
       s.active, e.station_id, e.kind, e.target, e.parameter, e.value, e.threshold,
       e.observed_at, e.created_at, e.channel, e.attempts,
       s.webhook_url, s.webhook_secret, s.mqtt_topic
FROM alert_events e
JOIN alert_subscriptions s USING (subscription_id)
WHERE e.event_id = %s
"""

SECONDS_UNTIL_NEXT_RETRY = """
SELECT extract(epoch FROM min(next_attempt_at) - now())
FROM alert_events
WHERE delivery_state = 'pending' AND next_attempt_at > now()
"""

RECORD_DELIVERED = """
UPDATE alert_events
SET delivery_state = 'delivered', attempts = attempts + 1, delivered_at = clock_timestamp()
WHERE event_id = %s
RETURNING attempts, extract(epoch FROM delivered_at - created_at)
"""

RECORD_FAILED = """
UPDATE alert_events
SET delivery_state = %(state)s, attempts = attempts + %(attempted)s, last_error = %(error)s,
    next_attempt_at = clock_timestamp() + make_interval(secs => %(delay_s)s)
WHERE event_id = %(event_id)s
RETURNING attempts
"""

EVENT_COLUMNS = sql.SQL(
    "event_id, idempotency_key, kind, subscription_id, station_id, target, parameter, value,"
    " threshold, observed_at, created_at, delivery_state, attempts, last_error, delivered_at"
)

ALERT_EVENTS_NEWEST_FIRST = sql.SQL(
    "SELECT {columns} FROM alert_events WHERE {conditions} ORDER BY event_id DESC LIMIT %(limit)s"
)

# Every event after a position, with whether the selection wants it: a follower needs the
# unwanted ids too, to tell a gap that may still fill from a filtered-out event.
ALERT_EVENTS_AFTER = sql.SQL(
    "SELECT {columns}, ({conditions}) AS wanted FROM alert_events"
    " WHERE event_id > %(after)s ORDER BY event_id LIMIT %(limit)s"
)

NEWEST_EVENT_ID = "SELECT coalesce(max(event_id), 0) FROM alert_events"

# The last id handed out, committed or not (ids are allocated at INSERT, seen at COMMIT).
LAST_ALLOCATED_EVENT_ID = (
    "SELECT coalesce(pg_sequence_last_value("
    "pg_get_serial_sequence('alert_events', 'event_id')::regclass), 0)"
)

# xmin and xmax of the current snapshot: every transaction below xmin has ended; every
# transaction that holds an xid now has one below xmax.
SNAPSHOT_BOUNDS = (
    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text,"
    " pg_snapshot_xmax(pg_current_snapshot())::text"
)


@dataclass(slots=True)
class PendingEvent:
    """An outbox row claimed for delivery, with what its subscription says about where to."""

    event_id: int
    idempotency_key: uuid.UUID
    subscription_id: int
    subscription_name: str
    active: bool
    station_id: str
    kind: str
    target: str
    parameter: str | None
    value: float | None
    threshold: float | None
    observed_at: datetime | None
    created_at: datetime
    channel: str
    attempts: int
    webhook_url: str | None
    webhook_secret: str | None
    mqtt_topic: str | None


@dataclass(frozen=True)
class EventSelection:
    """Which events: those of the subscriptions of ``owner_key_id`` (None: of every one),
    narrowed by whatever else is given; ``since`` inclusive, ``until`` exclusive, both on
    created_at."""

    owner_key_id: str | None = None
    subscription_id: int | None = None
    station_id: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> tuple[sql.Composable, dict[str, Any]]:
        """The condition on alert_events and its parameters."""
        conditions: list[sql.Composable] = [sql.SQL("true")]
        params: dict[str, Any] = {}
        if self.owner_key_id is not None:
            conditions.append(
                sql.SQL(
                    "subscription_id IN (SELECT subscription_id FROM alert_subscriptions"
                    " WHERE owner_key_id = %(owner)s)"
                )
            )
            params["owner"] = self.owner_key_id
        for condition, name, value in (
            ("subscription_id = %(subscription_id)s", "subscription_id", self.subscription_id),
            ("station_id = %(station_id)s", "station_id", self.station_id),
            ("kind = %(kind)s", "kind", self.kind),
            ("created_at >= %(since)s", "since", self.since),
            ("created_at < %(until)s", "until", self.until),
        ):
            if value is not None:
                conditions.append(sql.SQL(condition))
                params[name] = value
        return sql.SQL(" AND ").join(conditions), params


# --- appended by the evaluation and the silence timer, in the transaction that caused them --


def append_events(cur: psycopg.Cursor[Any], events: Sequence[tuple[Any, ...]]) -> None:
    """Append events, each (subscription_id, station_id, kind, target, parameter, value,
    threshold, observed_at, channel)."""
    cur.executemany(APPEND_EVENT, events)


def append_no_data_event(
    cur: psycopg.Cursor[Any],
    subscription_id: int,
    station_id: str,
    last_heard_at: datetime | None,
    silence_minutes: int,
    channel: str,
) -> None:
    """Append a ``no_data`` event: the station's newest reading arrived at ``last_heard_at``
    (None: never), longer ago than the subscription's ``silence_minutes``."""
    cur.execute(
        APPEND_NO_DATA_EVENT,
        (subscription_id, station_id, last_heard_at, silence_minutes, channel),
    )


def notify_new_events(cur: psycopg.Cursor[Any]) -> None:
    """Wake the delivery workers once the transaction commits."""
    cur.execute(NOTIFY_NEW_EVENTS)


def listen_for_new_events(conn: psycopg.Connection) -> None:
    """Subscribe an autocommit connection to the NOTIFY of new events (``conn.notifies()``)."""
    conn.execute(LISTEN_FOR_NEW_EVENTS)


# --- the delivery worker ---------------------------------------------------------------------


def claim_next_due_event(conn: psycopg.Connection) -> tuple[int, str, int] | None:
    """(event_id, channel, attempts) of the next due event, locked until the transaction
    ends; None when none is due and free."""
    row = conn.execute(CLAIM_NEXT_DUE_EVENT).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def claimed_event(conn: psycopg.Connection, event_id: int) -> PendingEvent | None:
    """The event with its subscription's name, state and delivery fields."""
    with conn.cursor(row_factory=class_row(PendingEvent)) as cur:
        return cur.execute(CLAIMED_EVENT, (event_id,)).fetchone()


def seconds_until_next_retry(conn: psycopg.Connection) -> float:
    """Seconds until the earliest pending event that is not due yet becomes due; infinity
    when there is none."""
    row = conn.execute(SECONDS_UNTIL_NEXT_RETRY).fetchone()
    return float(row[0]) if row and row[0] is not None else math.inf


def record_delivered(conn: psycopg.Connection, event_id: int) -> tuple[int, float]:
    """Mark an event delivered now; returns (attempts, seconds from its creation)."""
    row = conn.execute(RECORD_DELIVERED, (event_id,)).fetchone()
    assert row is not None  # claimed, so locked: it cannot have gone
    return int(row[0]), float(row[1])


def record_failed(
    conn: psycopg.Connection,
    event_id: int,
    *,
    state: str,
    attempted: bool,
    error: str,
    delay_s: float,
) -> None:
    """Record a failed attempt (``attempted`` False: none was made): ``state`` pending again
    after ``delay_s`` seconds, or dead; ``error`` becomes last_error."""
    conn.execute(
        RECORD_FAILED,
        {
            "state": state,
            "attempted": int(attempted),
            "error": error,
            "delay_s": delay_s,
            "event_id": event_id,
        },
    )


# --- read back by the API --------------------------------------------------------------------


def alert_events_newest_first(
    conn: psycopg.Connection, selection: EventSelection, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` selected events, newest first, with ids below ``before`` if given."""
    where, params = selection.where()
    if before is not None:
        where = sql.SQL("{} AND event_id < %(before)s").format(where)
        params["before"] = before
    query = ALERT_EVENTS_NEWEST_FIRST.format(columns=EVENT_COLUMNS, conditions=where)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {**params, "limit": limit}).fetchall()


def alert_events_after(
    conn: psycopg.Connection, selection: EventSelection, after: int, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` events with ids above ``after`` in id order, selected or not, each with
    ``wanted``: whether ``selection`` selects it."""
    conditions, params = selection.where()
    query = ALERT_EVENTS_AFTER.format(columns=EVENT_COLUMNS, conditions=conditions)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {**params, "after": after, "limit": limit}).fetchall()


def newest_event_id(conn: psycopg.Connection) -> int:
    """The highest committed event id (0 when there is none)."""
    return _integer(conn.execute(NEWEST_EVENT_ID).fetchone())


def last_allocated_event_id(conn: psycopg.Connection) -> int:
    """The last event id handed out, committed or not (0 when none)."""
    return _integer(conn.execute(LAST_ALLOCATED_EVENT_ID).fetchone())


def snapshot_bounds(conn: psycopg.Connection) -> tuple[int, int]:
    """(xmin, xmax) of the current snapshot."""
    row = conn.execute(SNAPSHOT_BOUNDS).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _integer(row: tuple[Any, ...] | None) -> int:
    assert row is not None  # an aggregate always returns a row
    return int(row[0])
