"""The importer's entry point for readings held in memory (the simulators' backfill): the
same row rules, water-class derivation and bulk writer as ``airwater import``, one
transaction per call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import psycopg

from ingest.importer.batches import FileCounts, Rejector, refused_row
from ingest.importer.long import LongRows
from ingest.pipeline import store
from ingest.validate import Outcome, StationDirectory, stations_of
from storage.writer import prepare_connection, readings_on_the_hour, tune_for_bulk

# (station_id, parameter, ts, value): a row of the long layout, values in the stored unit
Reading = tuple[str, str, datetime, float]


@dataclass(frozen=True, slots=True)
class RowsImported:
    inserted: int
    duplicates: int
    rejected: Counter[str]


def import_readings(
    conn: psycopg.Connection,
    readings: Iterable[Reading],
    *,
    name: str = "memory",
    coverage_s: int = 0,
    stations: StationDirectory | None = None,
) -> RowsImported:
    """Store ``readings`` as an import would: each row through the intake rules (rejects are
    dead letters of topic ``import/<name>``), the class of a water sample (rows of one
    section and instant, consecutive) derived when not given, all in one transaction.
    ``coverage_s``: the least time (s) each reading stands for (3600 for hourly values);
    ``stations``: the registry cache to use (read from ``conn`` when None). Commits what
    the caller left open on ``conn`` (the writer's staging tables are made first)."""
    prepare_connection(conn)
    directory = stations or StationDirectory(lambda: stations_of(conn))
    reject = Rejector(f"import/{name}", FileCounts())
    rows = LongRows(directory, reject)
    for row_no, (station_id, parameter, ts, value) in enumerate(readings, start=1):
        raw = f"{station_id},{parameter},{ts.isoformat()},{value!r}".encode()
        rows.add(row_no, station_id, parameter, ts, value, raw)
    rows.end_sample()
    dead, rejected = reject.take()
    if not conn.autocommit:
        conn.commit()  # reading the registry above opened a transaction: the write is its own
    with conn.transaction():
        tune_for_bulk(conn)
        result = store(
            conn,
            Outcome(rows.readings, dead),
            refused=partial(refused_row, reject.topic),
            live=False,
            bulk=True,
            coverage_s=coverage_s,
        )
    rejected.update(r.dead_letter.reason for r in result.refused)
    return RowsImported(result.inserted, result.duplicates, rejected)


def hourly_readings_stored(
    conn: psycopg.Connection, station_ids: Sequence[str], start: datetime, end: datetime
) -> int:
    """How many readings of ``station_ids`` are stored at whole hours in [start, end) (how
    much of a period of hourly values is in already)."""
    with conn.transaction():
        return readings_on_the_hour(conn, station_ids, start.astimezone(UTC), end)
