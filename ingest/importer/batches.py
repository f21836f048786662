"""What the readers hand to the writer: batches that end on a row boundary, with the
rejections of their rows collected as dead letters (counted always, stored one by one up to
a cap per reason and file)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.payloads import Rejection
from storage.writer import DeadLetter, ReadingRow

SOURCE = "import"
# Rejections stored one by one per file and reason; the rest are counted in one summary
# dead letter at the end of the file (an unknown station column would otherwise write
# hundreds of thousands of rows).
MAX_DEAD_LETTERS_PER_REASON = 1000
MAX_FUTURE = timedelta(minutes=10)
_MAX_DETAIL_CHARS = 1000


@dataclass
class FileCounts:
    """What one file became; cumulative over runs when read back from the journal."""

    rows: int = 0  # data rows done (header excluded)
    offset: int = 0  # bytes done (text formats)
    stored: int = 0
    duplicates: int = 0
    empty: int = 0
    derived_skipped: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


@dataclass
class Batch:
    """Readings and dead letters of consecutive rows of a file, and where they end."""

    readings: list[ReadingRow]
    dead_letters: list[DeadLetter]
    rows_end: int
    offset_end: int
    values: int  # cells / rows of the file this batch covers
    empty: int = 0
    derived_skipped: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    last: bool = False


class Rejector:
    """Collects rejections: counted always, stored one by one up to a cap per reason."""

    def __init__(self, topic: str, counts: FileCounts) -> None:
        self.topic = topic
        # cumulative over earlier runs (journal), so the cap falls on the same rows
        self.seen = Counter(counts.rejected)
        self.batch_rejected: Counter[str] = Counter()
        self.dead_letters: list[DeadLetter] = []

    def __call__(
        self,
        rejection: Rejection,
        where: str,
        station_id: str | None,
        payload: bytes,
        received_at: datetime,
    ) -> None:
        """Reject a row: ``where`` (e.g. ``row 12``) prefixes the rule's sentence."""
        reason = rejection.reason
        self.seen[reason] += 1
        self.batch_rejected[reason] += 1
        if self.seen[reason] <= MAX_DEAD_LETTERS_PER_REASON:
            detail = f"{where}: {rejection.detail}"[:_MAX_DETAIL_CHARS]
            self.dead_letters.append(
                DeadLetter(self.topic, station_id, payload, reason, detail, received_at, SOURCE)
            )

    def take(self) -> tuple[list[DeadLetter], Counter[str]]:
        taken = self.dead_letters, self.batch_rejected
        self.dead_letters, self.batch_rejected = [], Counter()
        return taken

    def summaries(self, received_at: datetime) -> list[DeadLetter]:
        """One dead letter per reason for the rejections over the cap (end of file)."""
        return [
            DeadLetter(
                self.topic,
                None,
                b"",
                reason,
                f"{n - MAX_DEAD_LETTERS_PER_REASON} further {reason} rejections in this file "
                f"(the first {MAX_DEAD_LETTERS_PER_REASON} are stored one by one)",
                received_at,
                SOURCE,
            )
            for reason, n in sorted(self.seen.items())
            if n > MAX_DEAD_LETTERS_PER_REASON
        ]


def refused_row(
    topic: str, index: int, rows: Sequence[ReadingRow], rejection: Rejection
) -> DeadLetter:
    """The dead letter of a reading the database refused, as a long-CSV row of its own
    (the wide layout's source line holds a whole station column)."""
    station_id, parameter, ts, value, received_at = rows[0]
    row = f"{station_id},{parameter},{ts.isoformat()},{value!r}"
    return DeadLetter(
        topic,
        station_id,
        row.encode(),
        rejection.reason,
        f"{row}: {rejection.detail}",
        received_at,
        SOURCE,
    )
