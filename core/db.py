"""Connections to the database."""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool


def connect(database_url: str, autocommit: bool = False) -> psycopg.Connection:
    """One plain connection (CLI commands, tests)."""
    return psycopg.connect(database_url, autocommit=autocommit)


def make_pool(
    database_url: str,
    min_size: int = 1,
    max_size: int = 4,
    configure: object = None,
    name: str = "airwater",
) -> ConnectionPool:
    """A pool that checks connections before handing them out, so a restarted server heals."""
    return ConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        configure=configure,  # type: ignore[arg-type]
        check=ConnectionPool.check_connection,
        name=name,
        open=False,
        reconnect_timeout=float("inf"),
    )
