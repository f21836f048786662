"""The state of each (subscription, station) alert (``alert_state``): ok, pending or firing,
kept in the database so that it survives restarts; read and written in the ingest
transaction that brings new values, and by the silence timer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

# a key of our own for pg_advisory_xact_lock: "SILE"
_SILENCE_TIMER_LOCK_KEY = 0x53494C45

CREATE_STATES = """
INSERT INTO alert_state (subscription_id, station_id, state)
SELECT s, st, 'ok' FROM unnest(%(subs)s::bigint[], %(stations)s::text[]) AS p(s, st)
ORDER BY s, st
ON CONFLICT DO NOTHING
"""

# In key order, so that concurrent batches lock the same pairs in the same order.
LOCK_STATES = """
WITH pairs AS (SELECT * FROM unnest(%(subs)s::bigint[], %(stations)s::text[]) AS p(s, st))
SELECT a.subscription_id, a.station_id, a.state, a.pending_since, a.pending_count, a.last_ts,
       a.last_value
FROM alert_state a JOIN pairs ON a.subscription_id = pairs.s AND a.station_id = pairs.st
ORDER BY a.subscription_id, a.station_id
FOR UPDATE OF a
"""

SAVE_STATE = """
UPDATE alert_state SET state = %s, pending_since = %s, pending_count = %s, last_ts = %s,
       last_value = %s, updated_at = now()
WHERE subscription_id = %s AND station_id = %s
"""

SET_FIRING = """
INSERT INTO alert_state (subscription_id, station_id, state, updated_at)
VALUES (%s, %s, 'firing', now())
ON CONFLICT (subscription_id, station_id)
DO UPDATE SET state = 'firing', pending_since = NULL, pending_count = 0, updated_at = now()
"""

TAKE_SILENCE_TIMER_LOCK = "SELECT pg_advisory_xact_lock(%s)"


def create_states(
    cur: psycopg.Cursor[Any], subscription_ids: Sequence[int], station_ids: Sequence[str]
) -> None:
    """Make an ``ok`` state for each (subscription_ids[i], station_ids[i]) that has none."""
    cur.execute(CREATE_STATES, {"subs": list(subscription_ids), "stations": list(station_ids)})


def lock_states(
    cur: psycopg.Cursor[Any], subscription_ids: Sequence[int], station_ids: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The states of the pairs (subscription_ids[i], station_ids[i]), locked until the
    transaction ends: (subscription_id, station_id, state, pending_since, pending_count,
    last_ts, last_value)."""
    params = {"subs": list(subscription_ids), "stations": list(station_ids)}
    return cur.execute(LOCK_STATES, params).fetchall()


def save_states(cur: psycopg.Cursor[Any], states: Sequence[tuple[Any, ...]]) -> None:
    """Store states, each (state, pending_since, pending_count, last_ts, last_value,
    subscription_id, station_id)."""
    cur.executemany(SAVE_STATE, states)


def set_firing(cur: psycopg.Cursor[Any], subscription_id: int, station_id: str) -> None:
    """The alert of (subscription, station) is firing from now."""
    cur.execute(SET_FIRING, (subscription_id, station_id))


def take_silence_timer_lock(cur: psycopg.Cursor[Any]) -> None:
    """Wait until no other transaction runs the silence timer; held until this one ends."""
    cur.execute(TAKE_SILENCE_TIMER_LOCK, (_SILENCE_TIMER_LOCK_KEY,))
