"""Which calendar years have daily values: the years an annual report can say something
about (the dashboard's year choice and trend)."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from standards.parameters import CATALOGUE

WATER_PARAMETERS = tuple(p.name for p in CATALOGUE.values() if p.medium == "water")

# One index probe per parameter and year on readings_daily (parameter, day): the first day
# of each parameter, then the first day on or after the next 1 January, and so on — a loose
# index scan, so the cost grows with years, not with rows.
YEARS_WITH_DAILY_VALUES = """
WITH RECURSIVE firsts(parameter, day) AS (
    SELECT p, (SELECT min(d.day) FROM readings_daily d WHERE d.parameter = p)
    FROM unnest(%(parameters)s::text[]) AS p
    UNION ALL
    SELECT f.parameter,
           (SELECT min(d.day) FROM readings_daily d
            WHERE d.parameter = f.parameter
              AND d.day >= make_date(extract(year FROM f.day)::int + 1, 1, 1))
    FROM firsts f
    WHERE f.day IS NOT NULL
)
SELECT DISTINCT extract(year FROM day)::int AS year
FROM firsts
WHERE day IS NOT NULL
ORDER BY year
"""


def years_with_daily_values(conn: psycopg.Connection, parameters: Sequence[str]) -> list[int]:
    """Calendar years, oldest first, in which any station has a daily value (valid or not)
    of any of ``parameters``."""
    rows = conn.execute(YEARS_WITH_DAILY_VALUES, {"parameters": list(parameters)}).fetchall()
    return [int(row[0]) for row in rows]
