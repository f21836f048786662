"""Data review as stored: reviews (hours taken out of every figure), sand-dust events, and
the append-only audit log of both. The rules of an action are in reports.review; the stage
applies active reviews and events when it recomputes (storage.aggregation)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

# Actions on a station wait for each other (class 16729): the overlap check and the insert
# of a review are one step.
LOCK_STATION = "SELECT pg_advisory_xact_lock(16729, hashtext(%s))"

# Parameter-hours with readings of a station in [from_ts, to_ts), per parameter (only those
# with a value its station flagged, for an 'accept' review).
HOURS_WITH_DATA = """
SELECT r.parameter, count(DISTINCT time_bucket('1 hour', r.ts))
FROM readings r
WHERE r.station_id = %(station_id)s AND r.parameter = ANY(%(parameters)s)
  AND r.ts >= %(from_ts)s AND r.ts < %(to_ts)s
  AND (NOT %(station_flagged)s OR r.flag <> 'valid')
GROUP BY r.parameter
"""

_REVIEW_COLUMNS = """review_id, station_id, action, parameters, from_ts, to_ts, reason, comment,
hours, created_by, created_at, restored_by, restored_at, restore_comment"""

# Active reviews of a station that share a parameter-hour with [from_ts, to_ts).
OVERLAPPING_REVIEWS = f"""
SELECT {_REVIEW_COLUMNS} FROM reviews
WHERE station_id = %(station_id)s AND restored_at IS NULL AND parameters && %(parameters)s
  AND from_ts < %(to_ts)s AND to_ts > %(from_ts)s
ORDER BY review_id
"""

INSERT_REVIEW = f"""
INSERT INTO reviews (station_id, action, parameters, from_ts, to_ts, reason, comment, hours,
                     created_by)
VALUES (%(station_id)s, %(action)s, %(parameters)s, %(from_ts)s, %(to_ts)s, %(reason)s,
        %(comment)s, %(hours)s, %(actor)s)
RETURNING {_REVIEW_COLUMNS}
"""

REVIEW_BY_ID = f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE review_id = %s"

RESTORE_REVIEW = f"""
UPDATE reviews SET restored_by = %(actor)s, restored_at = now(), restore_comment = %(comment)s
WHERE review_id = %(review_id)s AND restored_at IS NULL
RETURNING {_REVIEW_COLUMNS}
"""

REVIEWS_OF_STATION = f"""
SELECT {_REVIEW_COLUMNS} FROM reviews
WHERE station_id = %(station_id)s AND (NOT %(active)s OR restored_at IS NULL)
ORDER BY from_ts DESC, review_id DESC
LIMIT %(limit)s
"""

# Every local day touched by [from_ts, to_ts), for each parameter, queued for the aggregation
# stage (a day's hours start in it: the last hour starts before to_ts), of one station or of
# every air station of some cities.
QUEUE_DAYS = """
INSERT INTO aggregation_queue (station_id, parameter, day)
SELECT s.station_id, p.parameter, d.day::date
FROM stations s
CROSS JOIN unnest(%(parameters)s::text[]) AS p(parameter)
CROSS JOIN generate_series((%(from_ts)s AT TIME ZONE s.timezone)::date,
                           ((%(to_ts)s - interval '1 hour') AT TIME ZONE s.timezone)::date,
                           interval '1 day') AS d(day)
WHERE (%(station_id)s::text IS NULL OR s.station_id = %(station_id)s)
  AND (%(city_codes)s::text[] IS NULL OR (s.kind = 'air' AND s.city_code = ANY(%(city_codes)s)))
ORDER BY s.station_id, p.parameter, d.day
"""

# The cities of the air network an area code stands for: a city code itself, or every city
# of a province (GB/T 2260: the province's code is its first two digits and four zeros).
CITIES_OF_AREAS = """
SELECT a.code, array_agg(DISTINCT s.city_code ORDER BY s.city_code)
       FILTER (WHERE s.city_code IS NOT NULL)
FROM unnest(%(areas)s::text[]) AS a(code)
LEFT JOIN stations s ON s.kind = 'air'
 AND (s.city_code = a.code
      OR (a.code ~ '^[0-9]{2}0000$' AND left(s.city_code, 2) = left(a.code, 2)))
GROUP BY a.code
"""

_EVENT_COLUMNS = """event_id, areas, city_codes, from_ts, to_ts, evidence, created_by,
created_at, withdrawn_by, withdrawn_at"""

INSERT_DUST_EVENT = f"""
INSERT INTO dust_events (areas, city_codes, from_ts, to_ts, evidence, created_by)
VALUES (%(areas)s, %(city_codes)s, %(from_ts)s, %(to_ts)s, %(evidence)s, %(actor)s)
RETURNING {_EVENT_COLUMNS}
"""

EVENT_BY_ID = f"SELECT {_EVENT_COLUMNS} FROM dust_events WHERE event_id = %s"

WITHDRAW_DUST_EVENT = f"""
UPDATE dust_events SET withdrawn_by = %(actor)s, withdrawn_at = now()
WHERE event_id = %(event_id)s AND withdrawn_at IS NULL
RETURNING {_EVENT_COLUMNS}
"""

DUST_EVENTS_NEWEST_FIRST = f"""
SELECT {_EVENT_COLUMNS} FROM dust_events
WHERE (NOT %(active)s OR withdrawn_at IS NULL)
  AND (%(city_code)s::text IS NULL OR %(city_code)s = ANY(city_codes))
ORDER BY from_ts DESC, event_id DESC
LIMIT %(limit)s
"""

_AUDIT_COLUMNS = """audit_id, at, actor, action, station_id, areas, parameters, from_ts, to_ts,
reason, comment, hours, review_id, event_id, detail"""

INSERT_AUDIT = f"""
INSERT INTO audit_log (actor, action, station_id, areas, parameters, from_ts, to_ts, reason,
                       comment, hours, review_id, event_id, detail)
VALUES (%(actor)s, %(action)s, %(station_id)s, %(areas)s, %(parameters)s, %(from_ts)s,
        %(to_ts)s, %(reason)s, %(comment)s, %(hours)s, %(review_id)s, %(event_id)s, %(detail)s)
RETURNING {_AUDIT_COLUMNS}
"""

# Oldest first after the keyset (audit_id); a station's entries include the dust events of
# its city.
AUDIT_ENTRIES = f"""
SELECT {_AUDIT_COLUMNS} FROM audit_log a
WHERE a.audit_id > %(after)s
  AND (%(station_id)s::text IS NULL OR a.station_id = %(station_id)s
       OR (a.event_id IS NOT NULL AND EXISTS (
           SELECT 1 FROM dust_events e JOIN stations s ON s.city_code = ANY(e.city_codes)
           WHERE e.event_id = a.event_id AND s.station_id = %(station_id)s)))
  AND (%(action)s::text IS NULL OR a.action = %(action)s)
ORDER BY a.audit_id
LIMIT %(limit)s
"""

KEY_NAME = "SELECT name FROM api_keys WHERE key_id = %s"


def lock_station(conn: psycopg.Connection, station_id: str) -> None:
    """Wait for other review actions on the station (until the transaction ends)."""
    conn.execute(LOCK_STATION, (station_id,))


def hours_with_data(
    conn: psycopg.Connection,
    station_id: str,
    parameters: Sequence[str],
    from_ts: datetime,
    to_ts: datetime,
    station_flagged: bool = False,
) -> dict[str, int]:
    """Hours with readings in [from_ts, to_ts) (only values their station flagged, with
    ``station_flagged``), per parameter that has any."""
    rows = conn.execute(
        HOURS_WITH_DATA,
        {
            "station_id": station_id,
            "parameters": list(parameters),
            "from_ts": from_ts,
            "to_ts": to_ts,
            "station_flagged": station_flagged,
        },
    ).fetchall()
    return {parameter: int(hours) for parameter, hours in rows}


def _dicts(conn: psycopg.Connection, query: str, params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def _one(conn: psycopg.Connection, query: str, params: Any) -> dict[str, Any] | None:
    rows = _dicts(conn, query, params)
    return rows[0] if rows else None


def overlapping_reviews(
    conn: psycopg.Connection,
    station_id: str,
    parameters: Sequence[str],
    from_ts: datetime,
    to_ts: datetime,
) -> list[dict[str, Any]]:
    """Active reviews of the station sharing a parameter-hour with the range."""
    return _dicts(
        conn,
        OVERLAPPING_REVIEWS,
        {
            "station_id": station_id,
            "parameters": list(parameters),
            "from_ts": from_ts,
            "to_ts": to_ts,
        },
    )


def insert_review(conn: psycopg.Connection, **fields: Any) -> dict[str, Any]:
    """Store a review (station_id, parameters, from_ts, to_ts, reason, comment, hours, actor)."""
    row = _one(conn, INSERT_REVIEW, fields)
    assert row is not None  # INSERT … RETURNING returns its row
    return row


def review_by_id(conn: psycopg.Connection, review_id: int) -> dict[str, Any] | None:
    return _one(conn, REVIEW_BY_ID, (review_id,))


def restore_review(
    conn: psycopg.Connection, review_id: int, actor: str, comment: str
) -> dict[str, Any] | None:
    """Mark an active review restored; None when it is not active."""
    return _one(conn, RESTORE_REVIEW, {"review_id": review_id, "actor": actor, "comment": comment})


def reviews_of_station(
    conn: psycopg.Connection, station_id: str, active: bool, limit: int
) -> list[dict[str, Any]]:
    """The station's reviews (only active ones when ``active``), latest range first."""
    return _dicts(
        conn, REVIEWS_OF_STATION, {"station_id": station_id, "active": active, "limit": limit}
    )


def _queue_days(conn: psycopg.Connection, **where: Any) -> int:
    cur = conn.execute(QUEUE_DAYS, {"station_id": None, "city_codes": None, **where})
    return cur.rowcount


def queue_station_days(
    conn: psycopg.Connection,
    station_id: str,
    parameters: Sequence[str],
    from_ts: datetime,
    to_ts: datetime,
) -> int:
    """Queue the station's local days of the range for the aggregation stage; returns rows."""
    return _queue_days(
        conn, station_id=station_id, parameters=list(parameters), from_ts=from_ts, to_ts=to_ts
    )


def queue_city_days(
    conn: psycopg.Connection,
    city_codes: Sequence[str],
    parameters: Sequence[str],
    from_ts: datetime,
    to_ts: datetime,
) -> int:
    """Queue the local days of the range of every air station of the cities."""
    return _queue_days(
        conn,
        city_codes=list(city_codes),
        parameters=list(parameters),
        from_ts=from_ts,
        to_ts=to_ts,
    )


def cities_of_areas(conn: psycopg.Connection, areas: Sequence[str]) -> dict[str, list[str]]:
    """The air network's city codes each area code stands for (empty: none known)."""
    rows = conn.execute(CITIES_OF_AREAS, {"areas": list(areas)}).fetchall()
    return {code: list(cities or []) for code, cities in rows}


def insert_dust_event(conn: psycopg.Connection, **fields: Any) -> dict[str, Any]:
    """Store a sand-dust event (areas, city_codes, from_ts, to_ts, evidence, actor)."""
    row = _one(conn, INSERT_DUST_EVENT, fields)
    assert row is not None
    return row


def dust_event_by_id(conn: psycopg.Connection, event_id: int) -> dict[str, Any] | None:
    return _one(conn, EVENT_BY_ID, (event_id,))


def withdraw_dust_event(
    conn: psycopg.Connection, event_id: int, actor: str
) -> dict[str, Any] | None:
    """Mark an active event withdrawn; None when it is not active."""
    return _one(conn, WITHDRAW_DUST_EVENT, {"event_id": event_id, "actor": actor})


def dust_events_newest_first(
    conn: psycopg.Connection, active: bool, city_code: str | None, limit: int
) -> list[dict[str, Any]]:
    return _dicts(
        conn,
        DUST_EVENTS_NEWEST_FIRST,
        {"active": active, "city_code": city_code, "limit": limit},
    )


def append_audit(conn: psycopg.Connection, entry: dict[str, Any]) -> dict[str, Any]:
    """Append one entry to the audit log (keys of INSERT_AUDIT; absent ones are NULL)."""
    fields: dict[str, Any] = {
        key: None
        for key in (
            "station_id",
            "areas",
            "parameters",
            "from_ts",
            "to_ts",
            "reason",
            "comment",
            "hours",
            "review_id",
            "event_id",
        )
    }
    fields.update(entry)
    fields["detail"] = None if fields.get("detail") is None else Jsonb(fields["detail"])
    row = _one(conn, INSERT_AUDIT, fields)
    assert row is not None
    return row


def audit_entries(
    conn: psycopg.Connection,
    station_id: str | None,
    action: str | None,
    after: int,
    limit: int,
) -> list[dict[str, Any]]:
    """Audit entries after ``after`` (audit_id), oldest first."""
    return _dicts(
        conn,
        AUDIT_ENTRIES,
        {"station_id": station_id, "action": action, "after": after, "limit": limit},
    )


def key_name(conn: psycopg.Connection, key_id: str) -> str | None:
    """The name given to an API key."""
    row = conn.execute(KEY_NAME, (key_id,)).fetchone()
    return None if row is None else str(row[0])
