"""Annual reports kept once computed (report_cache, 0007_scale.sql), served only while exact."""

from __future__ import annotations

import psycopg

# A cached report is served only while no transaction that changed its year's daily rollups,
# or the station registry, has committed outside the snapshot the report was computed from
# (triggers in 0007_scale.sql stamp each writer's transaction id in report_changes).
CACHED_REPORT = """
SELECT c.body FROM report_cache c
WHERE c.kind = %(kind)s AND c.year = %(year)s AND c.rules = %(rules)s
  AND NOT EXISTS (
      SELECT 1 FROM report_changes ch
      WHERE ch.year IN (c.year, 0) AND NOT pg_visible_in_snapshot(ch.xid, c.snapshot))
"""

CURRENT_SNAPSHOT = "SELECT pg_current_snapshot()::text"

STORE_REPORT = """
INSERT INTO report_cache (kind, year, rules, snapshot, body)
VALUES (%(kind)s, %(year)s, %(rules)s, %(snapshot)s::pg_snapshot, %(body)s)
ON CONFLICT (kind, year) DO UPDATE SET
    rules = excluded.rules, snapshot = excluded.snapshot, body = excluded.body,
    computed_at = now()
"""


def cached_report(conn: psycopg.Connection, kind: str, year: int, rules: str) -> str | None:
    """The stored body (JSON) of the report of ``kind`` and ``year`` made by ``rules``, while
    no change to its data has committed since; None otherwise."""
    row = conn.execute(CACHED_REPORT, {"kind": kind, "year": year, "rules": rules}).fetchone()
    return None if row is None else str(row[0])


def current_snapshot(conn: psycopg.Connection) -> str | None:
    """The snapshot a report computed next would see (take it before computing)."""
    row = conn.execute(CURRENT_SNAPSHOT).fetchone()
    return None if row is None else str(row[0])


def store_report(
    conn: psycopg.Connection, kind: str, year: int, rules: str, snapshot: str | None, body: str
) -> bool:
    """Keeps ``body`` as the report of ``kind`` and ``year`` computed from ``snapshot``; False
    when the connection may not write (a read-only transaction, a replica)."""
    params = {"kind": kind, "year": year, "rules": rules, "snapshot": snapshot, "body": body}
    try:
        with conn.transaction():
            conn.execute(STORE_REPORT, params)
    except psycopg.errors.ReadOnlySqlTransaction:
        return False
    return True
