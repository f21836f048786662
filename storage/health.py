"""Whether the database answers, for readiness checks."""

from __future__ import annotations

import psycopg

# the cheapest statement the server must parse, plan and execute
DATABASE_ANSWERS = "SELECT 1"


def database_answers(conn: psycopg.Connection) -> bool:
    """True once the server has executed a statement; raises psycopg.Error when it cannot."""
    return conn.execute(DATABASE_ANSWERS).fetchone() == (1,)
