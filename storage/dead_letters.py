"""Reading the dead letters back: rejected payloads with their reason (storage.writer stores
them, in the transaction of the batch they came with)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

# Newest first; (received_at, id) is the keyset, so letters received in the same
# microsecond are still paged without gaps or repeats.
DEAD_LETTERS_NEWEST_FIRST = sql.SQL("""
SELECT id, received_at, source, topic, station_id, reason, detail, payload
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
    after: tuple[datetime, int] | None = None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """Up to ``limit`` letters (id, received_at, source, topic, station_id, reason, detail,
    payload), newest first, of any of ``reasons`` (all when empty), received in
    [``since``, ``until``) and before the keyset ``after`` = (received_at, id)."""
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
    if after is not None:
        conditions.append(sql.SQL("(received_at, id) < (%(after_received_at)s, %(after_id)s)"))
        params["after_received_at"], params["after_id"] = after
    query = DEAD_LETTERS_NEWEST_FIRST.format(conditions=sql.SQL(" AND ").join(conditions))
    return conn.execute(query, params).fetchall()
