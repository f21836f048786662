"""What the dashboard's station review page asks that no other module answers: which
parameters a station has readings of, when its latest reading of one was, and which of its
readings the station itself flagged."""

from __future__ import annotations

from dataclasses import dataclass
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

# Readings the station flagged itself (HJ 212 data flags, stored by the writer as flag
# 'invalid' with flag_reason 'station:<letter>') that do not count — not in the hours of an
# active 'accept' review — oldest first, in [start_ts, end_ts).
STATION_FLAGGED_READINGS = """
SELECT r.ts, r.value, r.flag_reason FROM readings r
WHERE r.station_id = %(station_id)s AND r.parameter = %(parameter)s
  AND r.ts >= %(start_ts)s AND r.ts < %(end_ts)s
  AND starts_with(r.flag_reason, 'station:')
  AND NOT EXISTS (SELECT 1 FROM reviews a  -- an 'accept' review made them count
                  WHERE a.station_id = r.station_id AND a.action = 'accept'
                    AND a.restored_at IS NULL AND r.parameter = ANY(a.parameters)
                    AND r.ts >= a.from_ts AND r.ts < a.to_ts)
ORDER BY r.ts
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class StationFlaggedReading:
    """One reading the station flagged: its time, value and the letter of its data flag."""

    ts: datetime
    value: float
    letter: str  # the HJ 212 data flag, e.g. "M" of flag_reason "station:M"


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


def station_flagged_readings(
    conn: psycopg.Connection,
    station_id: str,
    parameter: str,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[StationFlaggedReading]:
    """At most ``limit`` readings of ``parameter`` in [start, end) that the station flagged
    itself (flag_reason ``station:<letter>``), oldest first."""
    rows = conn.execute(
        STATION_FLAGGED_READINGS,
        {
            "station_id": station_id,
            "parameter": parameter,
            "start_ts": start,
            "end_ts": end,
            "limit": limit,
        },
    ).fetchall()
    return [
        StationFlaggedReading(ts=ts, value=float(value), letter=str(reason).partition(":")[2])
        for ts, value, reason in rows
    ]
