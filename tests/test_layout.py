"""SQL lives in storage/ (DESIGN.md "Layout"): no other package of ours holds a statement.

Statements are found with ``ast``, not by searching file text, so comments, and words such as
"DELETE" in a list of HTTP methods, are not mistaken for SQL: every string literal and
f-string (``{}`` standing for each value put in) is checked for the start of an SQL statement,
and no module outside storage/ may compose SQL with ``psycopg.sql``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from core import PROJECT_ROOT

# Every package of ours but storage/ (schemas/ keeps its migrations as .sql files, which
# migrate.py, in storage/, applies).
CHECKED = ("core", "standards", "schemas", "reports", "ingest", "alerts", "api", "simulators")
CHECKED_FILES = tuple(sorted((PROJECT_ROOT / "airwater").rglob("*.py")))
ALLOWED = {
    # The private server the demo starts: creating its database (CREATE DATABASE, which
    # cannot run inside a transaction, on the maintenance database) is orchestration of the
    # embedded PostgreSQL, like initdb and pg_ctl next to it, not data access of airwater's.
    "airwater/embedded.py",
}

# The start of a statement, keywords in capitals as every statement of ours is written. Each
# keyword needs what follows it in SQL, so that a sentence such as "LISTEN connection failed"
# or a lone "DELETE" (an HTTP method) is not taken for one.
_OBJECT = (
    r"(?:TABLE|INDEX|VIEW|MATERIALIZED\s+VIEW|DATABASE|EXTENSION|ROLE|USER|SCHEMA|FUNCTION"
    r"|PROCEDURE|TRIGGER|SEQUENCE|TYPE|POLICY|PUBLICATION|SUBSCRIPTION)"
)
SQL_STATEMENT = re.compile(
    r"""\A(?:\s|--[^\n]*\n)*(?:
        SELECT\s
      | INSERT\s+INTO\s
      | UPDATE\s+\S+\s+SET\s
      | DELETE\s+FROM\s
      | MERGE\s+INTO\s
      | WITH\s+(?:RECURSIVE\s+)?(?:\w+(?:\s*\([^)]*\))?\s+AS\s|\{\})
      | (?:CREATE|ALTER|DROP)\s+(?:OR\s+REPLACE\s+|TEMP(?:ORARY)?\s+|UNLOGGED\s+|UNIQUE\s+)*"""
    + _OBJECT
    + r"""\b
      | TRUNCATE\s
      | COPY\s+\S+.*\b(?:FROM|TO)\s+(?:STDIN|STDOUT)\b
      | (?:UN)?LISTEN\s+[\w"*]+\s*;?\s*\Z
      | NOTIFY\s+\w+\s*(?:,|;|\Z)
      | (?:GRANT|REVOKE)\s+.*\b(?:ON|TO|FROM)\s
      | VACUUM\b | ANALYZE\s+\w+\s*;?\s*\Z
      | LOCK\s+TABLE\s
      | SET\s+(?:LOCAL\s+|SESSION\s+)?[\w.]+\s*(?:=|TO\s)
      | SHOW\s+[\w.]+\s*;?\s*\Z
      | CALL\s+\w+\s*\(
      | DO\s+\$
    )""",
    re.VERBOSE | re.DOTALL,
)


def _text(node: ast.AST) -> str | None:
    """The text of a string literal; of an f-string, with ``{}`` for each value put in."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(piece.value) if isinstance(piece, ast.Constant) else "{}" for piece in node.values
        )
    return None


def _composes_sql(node: ast.AST) -> bool:
    """``from psycopg import sql``, ``import psycopg.sql`` or ``from psycopg.sql import …``."""
    if isinstance(node, ast.ImportFrom):
        return node.module == "psycopg.sql" or (
            node.module == "psycopg" and any(alias.name == "sql" for alias in node.names)
        )
    if isinstance(node, ast.Import):
        return any(alias.name == "psycopg.sql" for alias in node.names)
    return False


def sql_in(path: Path) -> list[str]:
    """``path:line: text`` of every SQL statement and SQL composition in a module."""
    found: list[tuple[int, str]] = []
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    # the pieces of an f-string are judged with it, as its leading text
    pieces = {
        id(piece)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for piece in node.values
    }
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        text = None if id(node) in pieces else _text(node)
        if text is not None and SQL_STATEMENT.match(text):
            found.append((line, " ".join(text.split())[:70]))
        elif _composes_sql(node):
            found.append((line, "composes SQL with psycopg.sql"))
    where = path.relative_to(PROJECT_ROOT)
    return [f"{where}:{line}: {what}" for line, what in sorted(found)]


def checked_modules() -> list[Path]:
    modules = [
        path
        for package in CHECKED
        if (PROJECT_ROOT / package).is_dir()
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
    ]
    return [
        path
        for path in modules + list(CHECKED_FILES)
        if str(path.relative_to(PROJECT_ROOT)) not in ALLOWED
    ]


def test_sql_is_only_in_storage():
    assert {"api", "alerts", "ingest", "simulators"} <= set(CHECKED)
    assert PROJECT_ROOT / "airwater" / "cli.py" in checked_modules()
    places = [place for path in checked_modules() for place in sql_in(path)]
    assert places == [], "SQL outside storage/:\n" + "\n".join(places)


def test_every_allowance_names_a_module_that_exists():
    for allowed in ALLOWED:
        assert (PROJECT_ROOT / allowed).is_file(), allowed


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 1",
        "\nSELECT station_id FROM stations WHERE station_id = ANY(%s)\n",
        "-- the newest first\nSELECT id FROM dead_letters",
        "INSERT INTO api_keys (key_id) VALUES (%s)",
        "UPDATE alert_events\nSET delivery_state = 'dead' WHERE event_id = %s",
        "DELETE FROM alert_subscriptions WHERE subscription_id = %s",
        "\nWITH in_scope AS (SELECT 1)\nSELECT * FROM in_scope",
        "WITH RECURSIVE walk(n) AS (SELECT 1) SELECT n FROM walk",
        "CREATE TEMP TABLE staging_readings (LIKE readings)",
        "CREATE UNIQUE INDEX ON readings (station_id)",
        "CREATE EXTENSION IF NOT EXISTS timescaledb",
        'CREATE DATABASE "airwater"',
        "ALTER TABLE readings ADD COLUMN flag text",
        "DROP TABLE staging_readings",
        "TRUNCATE alert_subscriptions CASCADE",
        "COPY staging_readings (station_id, ts) FROM STDIN",
        "LISTEN alert_events",
        "NOTIFY alert_events, 'x'",
        "GRANT SELECT ON readings TO reader",
        "SET LOCAL statement_timeout = 5000",
        "SHOW timescaledb.license",
        "LOCK TABLE readings IN SHARE MODE",
        "MERGE INTO stations USING incoming ON true WHEN MATCHED THEN DO NOTHING",
    ],
)
def test_a_statement_is_recognised(statement: str):
    assert SQL_STATEMENT.match(statement)


@pytest.mark.parametrize(
    "text",
    [
        "DELETE",  # an HTTP method of the CORS list
        "LISTEN connection failed (%s); retrying in %.1f s",
        "create or update stations from a CSV",
        "Select the stations of a city",
        "SELECTED",
        "WITH the station's timezone",
        "CREATE",
        "NOTIFY wakes the worker",
        "stations/{station_id}/readings",
    ],
)
def test_other_text_is_not_taken_for_a_statement(text: str):
    assert not SQL_STATEMENT.match(text)


def test_sql_composition_and_f_strings_are_found(tmp_path: Path, monkeypatch):
    module = tmp_path / "module.py"
    module.write_text(
        "from psycopg import sql\n"
        "COLUMNS = 'station_id, name'\n"
        "QUERY = f'SELECT {COLUMNS} FROM stations'\n"
        "SCOPED = f'WITH {COLUMNS} SELECT 1'\n"
        "METHODS = ['GET', 'DELETE']\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(f"{__name__}.PROJECT_ROOT", tmp_path)
    assert sql_in(module) == [
        "module.py:1: composes SQL with psycopg.sql",
        "module.py:3: SELECT {} FROM stations",
        "module.py:4: WITH {} SELECT 1",
    ]
