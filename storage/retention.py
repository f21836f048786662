"""Dropping old raw data whole chunks at a time (TimescaleDB ``drop_chunks``, any licence).

The derived levels, which the reports read, are plain tables and are never dropped here; a
later registry change of a station recomputes only the days whose readings are still kept."""

from __future__ import annotations

import psycopg

# Chunks of a hypertable whose every row is older than the age (an interval, e.g. '5 years').
OLD_CHUNKS = "SELECT show_chunks(%s::regclass, older_than => now() - %s::interval)"
DROP_OLD_CHUNKS = "SELECT drop_chunks(%s::regclass, older_than => now() - %s::interval)"


def old_chunks(conn: psycopg.Connection, hypertable: str, age: str) -> list[str]:
    """The chunks of ``hypertable`` that ``drop_old_chunks`` would drop now."""
    return [row[0] for row in conn.execute(OLD_CHUNKS, (hypertable, age))]


def drop_old_chunks(conn: psycopg.Connection, hypertable: str, age: str) -> list[str]:
    """Drop the chunks of ``hypertable`` whose every row is older than ``age``; returns them."""
    return [row[0] for row in conn.execute(DROP_OLD_CHUNKS, (hypertable, age))]
