"""What the dashboard's station review page asks that no other module answers: which
parameters a station has readings of, and when its latest reading of one was."""

from __future__ import annotations

from datetime import datetime

import psycopg

# The distinct parameters of a station's readings, one index probe per parameter (a loose
# index scan on the (station_id, parameter, ts) key) rather than a scan of every reading.
PARAMETERS_OF_STATION = """
WITH RECURSIVE found(parameter) AS (
    SELECT min(r.parameter) FROM readings r WHERE r.station_id = %(station_id)s
    UNION ALL
    SELECT (SELECT min(r.parameter) FROM readings r
            WHERE r.station_id = %(station_id)s AND r.parameter > found.parameter)
    FROM found WHERE found.parameter IS NOT NULL
)
SELECT parameter FROM found WHERE parameter IS NOT NULL ORDER BY parameter
"""

LATEST_READING_OF_PARAMETER = """
SELECT max(r.ts) FROM readings r
WHERE r.station_id = %(station_id)s AND r.parameter = %(parameter)s
"""


def parameters_of_station(conn: psycopg.Connection, station_id: str) -> list[str]:
    """The parameters the station has any reading of, alphabetically."""
    rows = conn.execute(PARAMETERS_OF_STATION, {"station_id": station_id}).fetchall()
    return [str(row[0]) for row in rows]


def latest_reading_of_parameter(
    conn: psycopg.Connection, station_id: str, parameter: str
) -> datetime | None:
    """When the station's latest reading of ``parameter`` was taken; None without one."""
    row = conn.execute(
        LATEST_READING_OF_PARAMETER, {"station_id": station_id, "parameter": parameter}
    ).fetchone()
    return None if row is None else row[0]
