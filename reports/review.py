"""Data review actions: invalidate and restore a station's hours, record and withdraw
sand-dust events — each checked, stored, queued for the aggregation stage and appended to the
audit log in one transaction. The API and the command line both call these.

A refused action changes nothing and says why (reports.refusal.Refused)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from reports.refusal import Refused
from schemas.review import AuditEntry, AuditPage, DustEvent, Review
from standards.parameters import CATALOGUE
from standards.review import (
    DUST_PARAMETERS,
    MAX_RANGE,
    REASONS_NEEDING_COMMENT,
    REVIEW_ACTIONS,
    REVIEW_REASONS,
    whole_hours,
)
from storage import review as stored
from storage.stations import get_station


def _check_range(start: datetime, end: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The range as whole UTC hours, or why it is refused."""
    if start.tzinfo is None or end.tzinfo is None:
        raise Refused("invalid", "from and to need a UTC offset (ISO 8601, e.g. +08:00)")
    if end <= start:
        raise Refused("invalid", f"the range is reversed or empty: from {start} to {end}")
    if end > now:
        raise Refused("invalid", f"the range ends in the future ({end} > now {now})")
    if end - start > MAX_RANGE:
        raise Refused("invalid", f"the range spans more than {MAX_RANGE.days} days")
    return whole_hours(start, end)


def _review_out(row: dict[str, Any]) -> Review:
    return Review(
        **{k: v for k, v in row.items() if k not in ("from_ts", "to_ts")},
        from_=row["from_ts"],
        to=row["to_ts"],
        reason_text=REVIEW_REASONS[row["reason"]],
        active=row["restored_at"] is None,
    )


def _event_out(row: dict[str, Any]) -> DustEvent:
    return DustEvent(
        **{k: v for k, v in row.items() if k not in ("from_ts", "to_ts")},
        from_=row["from_ts"],
        to=row["to_ts"],
        active=row["withdrawn_at"] is None,
    )


def _audit_out(row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        **{k: v for k, v in row.items() if k not in ("from_ts", "to_ts")},
        from_=row["from_ts"],
        to=row["to_ts"],
    )


def actor_of_key(conn: psycopg.Connection, key_id: str | None) -> str:
    """Who acts, as the audit log names them: the key's name (its id when it has none)."""
    if key_id is None:
        return "anonymous"
    return stored.key_name(conn, key_id) or key_id


def invalidate(
    conn: psycopg.Connection,
    station_id: str,
    parameters: Sequence[str],
    start: datetime,
    end: datetime,
    reason: str | None,
    comment: str,
    actor: str,
    now: datetime | None = None,
    action: str = "invalidate",
) -> Review:
    """Take ``parameters`` of the station out of every figure over the whole hours of
    [start, end) — or, ``action`` 'accept', make the values their station flagged there count
    (overruling its HJ 212 data flags; reason 'verified' by default); the stage recomputes the
    days it touches."""
    now = now or datetime.now(UTC)
    if action not in REVIEW_ACTIONS:
        raise Refused("invalid", f"unknown action {action!r}: one of {list(REVIEW_ACTIONS)}")
    accepting = action == "accept"
    if reason is None:
        if not accepting:
            raise Refused("invalid", f"a reason is needed: one of {list(REVIEW_REASONS)}")
        reason = "verified"
    wanted = sorted(set(parameters))
    if not wanted:
        raise Refused("invalid", "name at least one parameter")
    unknown = [p for p in wanted if p not in CATALOGUE]
    if unknown:
        raise Refused("invalid", f"unknown parameter(s): {', '.join(unknown)}")
    if reason not in REVIEW_REASONS:
        raise Refused("invalid", f"unknown reason {reason!r}: one of {list(REVIEW_REASONS)}")
    if reason in REASONS_NEEDING_COMMENT and not comment.strip():
        raise Refused("invalid", f"reason {reason!r} needs a comment saying what happened")
    from_ts, to_ts = _check_range(start, end, now)
    with conn.transaction():
        if get_station(conn, station_id) is None:
            raise Refused("not_found", f"no station {station_id!r}")
        stored.lock_station(conn, station_id)
        hours = stored.hours_with_data(conn, station_id, wanted, from_ts, to_ts, accepting)
        without = [p for p in wanted if not hours.get(p)]
        if without:
            what = "values flagged by the station" if accepting else "readings"
            raise Refused(
                "invalid",
                f"no {what} of {', '.join(without)} at {station_id} in [{from_ts}, {to_ts})",
            )
        overlapping = stored.overlapping_reviews(conn, station_id, wanted, from_ts, to_ts)
        if overlapping:
            ids = ", ".join(str(r["review_id"]) for r in overlapping)
            raise Refused(
                "conflict",
                f"overlaps active review(s) {ids} of the same parameters; restore them first",
            )
        total = sum(hours.values())
        row = stored.insert_review(
            conn,
            station_id=station_id,
            action=action,
            parameters=wanted,
            from_ts=from_ts,
            to_ts=to_ts,
            reason=reason,
            comment=comment,
            hours=total,
            actor=actor,
        )
        stored.queue_station_days(conn, station_id, wanted, from_ts, to_ts)
        stored.append_audit(
            conn,
            {
                "actor": actor,
                "action": action,
                "station_id": station_id,
                "parameters": wanted,
                "from_ts": from_ts,
                "to_ts": to_ts,
                "reason": reason,
                "comment": comment,
                "hours": total,
                "review_id": row["review_id"],
                "detail": {"hours_by_parameter": hours},
            },
        )
    return _review_out(row)


def restore(conn: psycopg.Connection, review_id: int, actor: str, comment: str = "") -> Review:
    """Put the hours of an active review back into every figure."""
    with conn.transaction():
        found = stored.review_by_id(conn, review_id)
        if found is None:
            raise Refused(
                "not_found",
                f"no review {review_id}: it was never made, there is nothing to restore",
            )
        stored.lock_station(conn, found["station_id"])
        row = stored.restore_review(conn, review_id, actor, comment)
        if row is None:
            raise Refused(
                "conflict", f"review {review_id} was already restored at {found['restored_at']}"
            )
        hours = stored.hours_with_data(
            conn, row["station_id"], row["parameters"], row["from_ts"], row["to_ts"]
        )
        stored.queue_station_days(
            conn, row["station_id"], row["parameters"], row["from_ts"], row["to_ts"]
        )
        stored.append_audit(
            conn,
            {
                "actor": actor,
                "action": "restore",
                "station_id": row["station_id"],
                "parameters": row["parameters"],
                "from_ts": row["from_ts"],
                "to_ts": row["to_ts"],
                "reason": row["reason"],
                "comment": comment,
                "hours": sum(hours.values()),
                "review_id": review_id,
            },
        )
    return _review_out(row)


def reviews_of_station(
    conn: psycopg.Connection, station_id: str, active: bool = False, limit: int = 500
) -> list[Review]:
    """The station's reviews, latest range first (only active ones when ``active``)."""
    if get_station(conn, station_id) is None:
        raise Refused("not_found", f"no station {station_id!r}")
    return [_review_out(r) for r in stored.reviews_of_station(conn, station_id, active, limit)]


def record_dust_event(
    conn: psycopg.Connection,
    areas: Sequence[str],
    start: datetime,
    end: datetime,
    evidence: str,
    actor: str,
    now: datetime | None = None,
) -> DustEvent:
    """Record a sand-dust event over cities or provinces: their air stations' PM10 and PM2.5
    hours in the range leave the dust-excluded statistics."""
    now = now or datetime.now(UTC)
    codes = sorted(set(areas))
    if not codes:
        raise Refused("invalid", "name at least one city or province code")
    if not evidence.strip():
        raise Refused("invalid", "say what shows the event (evidence)")
    from_ts, to_ts = _check_range(start, end, now)
    with conn.transaction():
        cities = stored.cities_of_areas(conn, codes)
        unknown = [code for code in codes if not cities.get(code)]
        if unknown:
            raise Refused(
                "not_found",
                f"no air station in city or province {', '.join(unknown)}",
            )
        city_codes = sorted({c for code in codes for c in cities[code]})
        row = stored.insert_dust_event(
            conn,
            areas=codes,
            city_codes=city_codes,
            from_ts=from_ts,
            to_ts=to_ts,
            evidence=evidence,
            actor=actor,
        )
        queued = stored.queue_city_days(conn, city_codes, DUST_PARAMETERS, from_ts, to_ts)
        stored.append_audit(
            conn,
            {
                "actor": actor,
                "action": "dust_event",
                "areas": codes,
                "parameters": list(DUST_PARAMETERS),
                "from_ts": from_ts,
                "to_ts": to_ts,
                "comment": evidence,
                "event_id": row["event_id"],
                "detail": {"city_codes": city_codes, "station_days_queued": queued},
            },
        )
    return _event_out(row)


def withdraw_dust_event(
    conn: psycopg.Connection, event_id: int, actor: str, comment: str = ""
) -> DustEvent:
    """Withdraw an event recorded in error: its hours count again."""
    with conn.transaction():
        found = stored.dust_event_by_id(conn, event_id)
        if found is None:
            raise Refused("not_found", f"no dust event {event_id}")
        row = stored.withdraw_dust_event(conn, event_id, actor)
        if row is None:
            raise Refused(
                "conflict",
                f"dust event {event_id} was already withdrawn at {found['withdrawn_at']}",
            )
        stored.queue_city_days(
            conn, row["city_codes"], DUST_PARAMETERS, row["from_ts"], row["to_ts"]
        )
        stored.append_audit(
            conn,
            {
                "actor": actor,
                "action": "dust_withdrawn",
                "areas": row["areas"],
                "parameters": list(DUST_PARAMETERS),
                "from_ts": row["from_ts"],
                "to_ts": row["to_ts"],
                "comment": comment,
                "event_id": event_id,
            },
        )
    return _event_out(row)


def dust_events(
    conn: psycopg.Connection, active: bool = False, city_code: str | None = None, limit: int = 500
) -> list[DustEvent]:
    """Recorded events, latest first (only active ones when ``active``)."""
    return [_event_out(r) for r in stored.dust_events_newest_first(conn, active, city_code, limit)]


def audit_page(
    conn: psycopg.Connection,
    station_id: str | None = None,
    action: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> AuditPage:
    """Audit entries after ``after``, oldest first; a station's include its city's dust events."""
    rows = stored.audit_entries(conn, station_id, action, after, limit + 1)
    items = [_audit_out(r) for r in rows[:limit]]
    more = len(rows) > limit
    return AuditPage(items=items, next_after=items[-1].audit_id if more and items else None)
