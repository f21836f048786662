"""Published years as stored: every revision of a published (kind, year) with its figures and
difference (append-only), and the stamp of the kept levels each was last compared at. The
rules (what may be published, when a revision is due) are in reports.publications."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

# Publishing and checking one (kind, year) wait for each other (class 16730), so that two
# checks never both add revision n + 1.
LOCK_PUBLICATION = "SELECT pg_advisory_xact_lock(16730, hashtext(%s))"

_REVISION_COLUMNS = "kind, year, revision, created_at, created_by, cause, as_of, difference"

LATEST_REVISION = f"""
SELECT {_REVISION_COLUMNS}, figures FROM publications
WHERE kind = %(kind)s AND year = %(year)s
ORDER BY revision DESC
LIMIT 1
"""

REVISION = f"""
SELECT {_REVISION_COLUMNS}, figures FROM publications
WHERE kind = %(kind)s AND year = %(year)s AND revision = %(revision)s
"""

REVISIONS_OF_YEAR = f"""
SELECT {_REVISION_COLUMNS} FROM publications
WHERE kind = %(kind)s AND year = %(year)s
ORDER BY revision
"""

# One line per published (kind, year): who published it and when, and its latest revision.
PUBLISHED_YEARS = """
SELECT kind, year, max(revision) AS latest_revision,
       min(created_at) AS published_at,
       (array_agg(created_by ORDER BY revision))[1] AS published_by,
       max(created_at) AS revised_at
FROM publications
GROUP BY kind, year
ORDER BY year, kind
"""

INSERT_REVISION = f"""
INSERT INTO publications (kind, year, revision, created_by, cause, as_of, figures, difference)
VALUES (%(kind)s, %(year)s, %(revision)s, %(created_by)s, %(cause)s, %(as_of)s, %(figures)s,
        %(difference)s)
RETURNING {_REVISION_COLUMNS}
"""

CHECKED_STAMP = "SELECT stamp FROM publication_checks WHERE kind = %(kind)s AND year = %(year)s"

SAVE_STAMP = """
INSERT INTO publication_checks (kind, year, stamp) VALUES (%(kind)s, %(year)s, %(stamp)s)
ON CONFLICT (kind, year) DO UPDATE SET stamp = excluded.stamp, checked_at = clock_timestamp()
"""

# A stamp of everything an annual air report of the year is made of: the kept station- and
# city-years (of every series: a report reads measured and dust-excluded ones) and the air
# stations of the registry (count and sum of xmin: it changes when a row is written, added or
# removed).
AIR_YEAR_STAMP = """
SELECT concat_ws('|',
    (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM station_yearly
     WHERE year = %(year)s),
    (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM city_yearly
     WHERE year = %(year)s),
    (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM stations
     WHERE kind = 'air'))
"""

# The same for a water report: the kept section-years and the surface-water sections.
WATER_YEAR_STAMP = """
SELECT concat_ws('|',
    (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM water_yearly
     WHERE year = %(year)s),
    (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM stations
     WHERE kind = 'surface_water'))
"""

# Whether the aggregation stage has yet to reflect a change to the year's days of stations of
# a kind (a whole-station change, day NULL, touches every year).
QUEUED_CHANGES_IN_YEAR = """
SELECT EXISTS (
    SELECT 1 FROM aggregation_queue q
    LEFT JOIN stations s ON s.station_id = q.station_id
    WHERE (q.day IS NULL OR (q.day >= %(first)s AND q.day <= %(last)s))
      AND (s.kind IS NULL OR s.kind = %(station_kind)s)
)
"""


def _dicts(conn: psycopg.Connection, query: str, params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def _one(conn: psycopg.Connection, query: str, params: Any) -> dict[str, Any] | None:
    rows = _dicts(conn, query, params)
    return rows[0] if rows else None


def lock_publication(conn: psycopg.Connection, kind: str, year: int) -> None:
    """Wait for other publishing or checking of (kind, year), until the transaction ends."""
    conn.execute(LOCK_PUBLICATION, (f"{kind}:{year}",))


def latest_revision(conn: psycopg.Connection, kind: str, year: int) -> dict[str, Any] | None:
    """The latest revision of a published year, with its figures; None if not published."""
    return _one(conn, LATEST_REVISION, {"kind": kind, "year": year})


def revision(conn: psycopg.Connection, kind: str, year: int, number: int) -> dict[str, Any] | None:
    """Revision ``number`` of a published year, with its figures."""
    return _one(conn, REVISION, {"kind": kind, "year": year, "revision": number})


def revisions_of_year(conn: psycopg.Connection, kind: str, year: int) -> list[dict[str, Any]]:
    """Every revision of a published year, first first, without figures."""
    return _dicts(conn, REVISIONS_OF_YEAR, {"kind": kind, "year": year})


def published_years(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every published (kind, year), by year."""
    return _dicts(conn, PUBLISHED_YEARS, None)


def insert_revision(
    conn: psycopg.Connection,
    kind: str,
    year: int,
    number: int,
    created_by: str,
    cause: str,
    as_of: datetime,
    figures: dict[str, Any],
    difference: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """Append a revision (figures and difference as JSON); returns it without figures."""
    row = _one(
        conn,
        INSERT_REVISION,
        {
            "kind": kind,
            "year": year,
            "revision": number,
            "created_by": created_by,
            "cause": cause,
            "as_of": as_of,
            "figures": Jsonb(figures),
            "difference": None if difference is None else Jsonb(difference),
        },
    )
    assert row is not None  # INSERT … RETURNING returns its row
    return row


def checked_stamp(conn: psycopg.Connection, kind: str, year: int) -> str | None:
    """The stamp the year was last compared at."""
    row = conn.execute(CHECKED_STAMP, {"kind": kind, "year": year}).fetchone()
    return None if row is None else str(row[0])


def save_stamp(conn: psycopg.Connection, kind: str, year: int, stamp: str) -> None:
    conn.execute(SAVE_STAMP, {"kind": kind, "year": year, "stamp": stamp})


def air_year_stamp(conn: psycopg.Connection, year: int) -> str:
    """The stamp of the kept levels an air report of ``year`` reads (see AIR_YEAR_STAMP)."""
    row = conn.execute(AIR_YEAR_STAMP, {"year": year}).fetchone()
    assert row is not None
    return str(row[0])


def water_year_stamp(conn: psycopg.Connection, year: int) -> str:
    """The stamp of the kept levels a water report of ``year`` reads."""
    row = conn.execute(WATER_YEAR_STAMP, {"year": year}).fetchone()
    assert row is not None
    return str(row[0])


def queued_changes_in_year(conn: psycopg.Connection, station_kind: str, year: int) -> bool:
    """Whether changes to the year of stations of ``station_kind`` wait for the stage."""
    params = {
        "station_kind": station_kind,
        "first": date(year, 1, 1),
        "last": date(year, 12, 31),
    }
    row = conn.execute(QUEUED_CHANGES_IN_YEAR, params).fetchone()
    assert row is not None
    return bool(row[0])
