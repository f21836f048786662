"""Reading the dead letters back: rejected payloads with their reason (storage.writer stores
them, in the transaction of the batch they came with)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """A dead letter as stored: one row per distinct rejection (topic, payload, reason and
    detail), with how many times it was received and when first and last."""

    id: int
    received_at: datetime  # the first arrival; the keyset of the newest-first order
    source: str
    topic: str
    station_id: str | None
    reason: str
    detail: str
    payload: bytes
    occurrences: int
    first_seen: datetime
    last_seen: datetime


# Newest (first arrival) first; (received_at, id) is the keyset, so letters received in the
# same microsecond are still paged without gaps or repeats. A repeat moves last_seen only,
# so a letter keeps its place while pages are followed.
DEAD_LETTERS_NEWEST_FIRST = sql.SQL("""
SELECT id, received_at, source, topic, station_id, reason, detail, payload,
       occurrences, first_seen, last_seen
FROM dead_letters
WHERE {conditions}
ORDER BY received_at DESC, id DESC
LIMIT %(limit)s
""")


def dead_letters_newest_first(
    conn: psycopg.Connection,
    *,
    reasons: Sequence[str] = (),
    station_id: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    min_occurrences: int = 1,
    after: tuple[datetime, int] | None = None,
    limit: int,
) -> list[StoredDeadLetter]:
    """Up to ``limit`` letters, newest first, of any of ``reasons`` (all when empty), first
    received in [``since``, ``until``), received at least ``min_occurrences`` times, and
    before the keyset ``after`` = (received_at, id)."""
    conditions = [sql.SQL("true")]
    params: dict[str, Any] = {"limit": limit}
    if reasons:
        conditions.append(sql.SQL("reason = ANY(%(reasons)s)"))
        params["reasons"] = list(reasons)
    if station_id is not None:
        conditions.append(sql.SQL("station_id = %(station_id)s"))
        params["station_id"] = station_id
    if source is not None:
        conditions.append(sql.SQL("source = %(source)s"))
        params["source"] = source
    if since is not None:
        conditions.append(sql.SQL("received_at >= %(since)s"))
        params["since"] = since
    if until is not None:
        conditions.append(sql.SQL("received_at < %(until)s"))
        params["until"] = until
    if min_occurrences > 1:
        conditions.append(sql.SQL("occurrences >= %(min_occurrences)s"))
        params["min_occurrences"] = min_occurrences
    if after is not None:
        conditions.append(sql.SQL("(received_at, id) < (%(after_received_at)s, %(after_id)s)"))
        params["after_received_at"], params["after_id"] = after
    query = DEAD_LETTERS_NEWEST_FIRST.format(conditions=sql.SQL(" AND ").join(conditions))
    with conn.cursor(row_factory=class_row(StoredDeadLetter)) as cur:
        return cur.execute(query, params).fetchall()
