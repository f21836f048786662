"""The ``imports`` journal: one row per file (by content hash) saying how far its import got
and what it became, advanced in the transaction of each batch, so that an interrupted import
resumes after the last committed batch and a finished file is skipped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

_OPEN = """
INSERT INTO imports (sha256, size, name, format) VALUES (%s, %s, %s, %s)
ON CONFLICT (sha256) DO UPDATE SET updated_at = now()
RETURNING rows_done, bytes_done, readings_stored, duplicates, empty_cells, derived_skipped,
          rejected, finished_at
"""
_ADVANCE = """
UPDATE imports SET rows_done = %(rows)s, bytes_done = %(offset)s,
    readings_stored = readings_stored + %(stored)s, duplicates = duplicates + %(duplicates)s,
    empty_cells = empty_cells + %(empty)s, derived_skipped = derived_skipped + %(skipped)s,
    rejected = %(rejected)s, updated_at = now(),
    finished_at = CASE WHEN %(last)s THEN now() END
WHERE sha256 = %(sha256)s
"""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """How far a file's import got, cumulative over runs."""

    rows_done: int
    bytes_done: int
    readings_stored: int
    duplicates: int
    empty_cells: int
    derived_skipped: int
    rejected: Counter[str] = field(default_factory=Counter)
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """What one committed batch adds to a file's row."""

    rows_done: int
    bytes_done: int
    stored: int
    duplicates: int
    empty_cells: int
    derived_skipped: int
    rejected: Counter[str]  # cumulative, by reason
    finished: bool


def open_import(
    conn: psycopg.Connection, sha256: bytes, size: int, name: str, file_format: str
) -> JournalEntry:
    """The journal row of a file (created at nothing done when new), committed."""
    with conn.transaction():
        row = conn.execute(_OPEN, (sha256, size, name, file_format)).fetchone()
    assert row is not None
    return JournalEntry(row[0], row[1], row[2], row[3], row[4], row[5], Counter(row[6]), row[7])


def advance_import(conn: psycopg.Connection, sha256: bytes, progress: Progress) -> None:
    """Record a batch of the file (call in the batch's transaction)."""
    conn.execute(
        _ADVANCE,
        {
            "rows": progress.rows_done,
            "offset": progress.bytes_done,
            "stored": progress.stored,
            "duplicates": progress.duplicates,
            "empty": progress.empty_cells,
            "skipped": progress.derived_skipped,
            "rejected": Jsonb(dict(progress.rejected)),
            "last": progress.finished,
            "sha256": sha256,
        },
    )
