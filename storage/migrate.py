"""Applies the SQL migrations in ``schemas/migrations`` once each, in order."""

from __future__ import annotations

import logging
from importlib import resources

import psycopg

from standards.parameters import CATALOGUE

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every runner.
_MIGRATION_LOCK = 0x41495257


def migration_files() -> list[tuple[str, str]]:
    """(version, SQL) of every migration, sorted by version."""
    folder = resources.files("schemas") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations and sync the parameter catalogue; returns versions applied."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, sql in migration_files():
            if version in done:
                continue
            log.info("applying migration %s", version)
            conn.execute(sql.encode())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO parameters (parameter, unit, medium, daily_min_hours)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (parameter) DO UPDATE SET"
                " unit = excluded.unit, medium = excluded.medium,"
                " daily_min_hours = excluded.daily_min_hours",
                [(p.name, p.unit, p.medium, p.daily_min_hours) for p in CATALOGUE.values()],
            )
    return applied_now
