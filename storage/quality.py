"""The hours automatic quality flags are judged on: a station's hourly means of several
parameters at once (storage.series gives one parameter's hours with their coverage)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import psycopg

# Every stored hour of the station in [start, end): the mean of its readings in the UTC
# hour, as readings_hourly gives it (the view passes station and bucket bounds down to the
# readings index). NULL parameters = every parameter.
STATION_HOURS_OF_PARAMETERS = """
SELECT h.parameter, h.bucket, h.mean
FROM readings_hourly h
WHERE h.station_id = %(station_id)s
  AND (%(parameters)s::text[] IS NULL OR h.parameter = ANY(%(parameters)s::text[]))
  AND h.bucket >= %(start)s AND h.bucket < %(end)s
ORDER BY h.parameter, h.bucket
"""


def station_hours(
    conn: psycopg.Connection,
    station_id: str,
    parameters: Collection[str] | None,
    start: datetime,
    end: datetime,
) -> list[tuple[str, datetime, float]]:
    """(parameter, UTC hour start, hourly mean in the stored unit) of every stored hour of
    the station in [start, end), of ``parameters`` (None: all), by parameter then hour."""
    params = {
        "station_id": station_id,
        "parameters": None if parameters is None else sorted(parameters),
        "start": start,
        "end": end,
    }
    with conn.cursor() as cur:
        cur.execute(STATION_HOURS_OF_PARAMETERS, params)
        return cur.fetchall()
