"""An ``airwater import`` run: station lists first, then reading files (resumed from the
journal, skipped when finished), up to ``jobs`` files at once, each written in batches of
about ``batch_rows`` readings through the intake pipeline; each batch's transaction also
advances the file's journal row."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psycopg
from rich.progress import Progress, TaskID

from ingest.importer.batches import Batch, FileCounts, Rejector, refused_row
from ingest.importer.files import (
    Format,
    ImportFileError,
    count_values,
    detect_format,
    file_identity,
)
from ingest.importer.long import read_long_csv, read_parquet
from ingest.importer.progress import advancer, import_progress
from ingest.importer.station_list import import_station_list
from ingest.importer.wide import read_wide
from ingest.pipeline import store
from ingest.validate import Outcome, StationDirectory, StationInfo, stations_of
from storage.import_journal import Progress as JournalProgress
from storage.import_journal import advance_import, open_import
from storage.writer import WriteResult, prepare_connection, tune_for_bulk

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 100_000

Reader = Callable[[Path, StationDirectory, FileCounts, Rejector, int], Iterator[Batch]]
READERS: dict[Format, Reader] = {"long": read_long_csv, "parquet": read_parquet, "wide": read_wide}
_FILE_ERRORS = (OSError, ImportFileError, UnicodeDecodeError, ValueError)


@dataclass
class ImportSummary:
    """What one ``airwater import`` run did (counts of this run, not of earlier runs)."""

    files: int = 0
    files_imported: int = 0
    files_already_imported: int = 0
    files_failed: list[str] = field(default_factory=list)
    stations_created: int = 0
    stations_updated: int = 0
    stations_rejected: int = 0
    values: int = 0  # cells / rows read
    stored: int = 0
    duplicates: int = 0
    empty: int = 0
    derived_skipped: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    jobs: int = 1
    # files are imported by up to ``jobs`` threads at once
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def readings_per_s(self) -> float:
        return (self.stored + self.duplicates) / self.seconds if self.seconds else 0.0

    def failed(self, path: Path, exc: BaseException) -> None:
        log.error("cannot import %s: %s", path, exc)
        with self.lock:
            self.files_failed.append(str(path))


@dataclass(frozen=True, slots=True)
class _ReadingsFile:
    path: Path
    format: Format
    sha256: bytes
    counts: FileCounts
    values: int


def import_files(
    database_url: str,
    paths: Sequence[Path],
    fmt: Format | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    show_progress: bool = False,
    on_batch: Callable[[ImportSummary], object] | None = None,
    jobs: int = 1,
) -> ImportSummary:
    """Import ``paths`` (station lists first, then readings), resuming files the journal
    shows unfinished and skipping finished ones. With ``jobs`` > 1, that many files are
    written at once, each over its own connection (the database does most of the work, and
    it can use another core)."""
    summary = ImportSummary(files=len(paths), jobs=max(1, jobs))
    started = time.perf_counter()
    planned: list[tuple[Path, Format]] = []
    for path in paths:
        try:
            planned.append((path, fmt or detect_format(path)))
        except (OSError, ImportFileError) as exc:
            summary.failed(path, exc)
    planned.sort(key=lambda p: p[1] != "stations")  # stable: registry before readings
    directory = StationDirectory(_loader(database_url), min_reload_s=30.0)
    with psycopg.connect(database_url) as conn, import_progress(show_progress) as progress:
        prepare_connection(conn)
        files = _open_files(conn, planned, directory, summary)
        overall = progress.add_task("all files", total=sum(f.values for f in files), note="")
        run = _FileRun(
            database_url, conn, directory, batch_rows, summary, progress, overall, on_batch
        )
        if summary.jobs == 1:
            for item in files:
                run.import_one(item)
        else:
            with ThreadPoolExecutor(summary.jobs, thread_name_prefix="import") as pool:
                for done in [pool.submit(run.import_one, item) for item in files]:
                    done.result()
    summary.seconds = time.perf_counter() - started
    return summary


def _loader(database_url: str) -> Callable[[], dict[str, StationInfo]]:
    def load() -> dict[str, StationInfo]:
        with psycopg.connect(database_url) as conn:
            return stations_of(conn)

    return load


def _open_files(
    conn: psycopg.Connection,
    planned: list[tuple[Path, Format]],
    directory: StationDirectory,
    summary: ImportSummary,
) -> list[_ReadingsFile]:
    """Import the station lists; open the journal of the reading files still to do."""
    files: list[_ReadingsFile] = []
    for path, file_format in planned:
        try:
            if file_format == "stations":
                created, updated, rejected = import_station_list(conn, path)
                summary.stations_created += created
                summary.stations_updated += updated
                summary.stations_rejected += rejected
                summary.files_imported += 1
                directory.expire()
                continue
            sha256, size = file_identity(path)
            entry = open_import(conn, sha256, size, path.name, file_format)
            counts = FileCounts(
                entry.rows_done,
                entry.bytes_done,
                entry.readings_stored,
                entry.duplicates,
                entry.empty_cells,
                entry.derived_skipped,
                Counter(entry.rejected),
            )
            if entry.finished_at is not None:
                log.info(
                    "%s: already imported (%s, %d readings stored then); skipped",
                    path,
                    entry.finished_at.isoformat(timespec="seconds"),
                    counts.stored,
                )
                summary.files_already_imported += 1
                continue
            total = count_values(path, file_format)
        except _FILE_ERRORS as exc:
            summary.failed(path, exc)
            continue
        files.append(_ReadingsFile(path, file_format, sha256, counts, total))
    return files


@dataclass
class _FileRun:
    """Imports reading files one by one, or one per thread."""

    database_url: str
    conn: psycopg.Connection
    directory: StationDirectory
    batch_rows: int
    summary: ImportSummary
    progress: Progress
    overall: TaskID
    on_batch: Callable[[ImportSummary], object] | None

    def import_one(self, item: _ReadingsFile) -> None:
        if item.counts.rows:
            log.info("%s: resuming after row %d", item.path, item.counts.rows)
        task = self.progress.add_task(item.path.name[-40:], total=item.values, note="")
        own = self.summary.jobs > 1
        conn = psycopg.connect(self.database_url) if own else self.conn
        try:
            if own:
                prepare_connection(conn)
            self._import_readings(conn, item, advancer(self.progress, task, self.overall))
        except _FILE_ERRORS as exc:
            conn.rollback()
            self.summary.failed(item.path, exc)
            return
        finally:
            if own:
                conn.close()
        with self.summary.lock:
            self.summary.files_imported += 1
        self.progress.update(task, completed=item.values, visible=not own)

    def _import_readings(
        self, conn: psycopg.Connection, item: _ReadingsFile, advance: Callable[[int, str], object]
    ) -> None:
        counts = item.counts
        reject = Rejector(f"import/{item.path.name}", counts)
        if counts.rows:
            advance(counts.rows if item.format != "wide" else 0, "resumed")
        batches = READERS[item.format](item.path, self.directory, counts, reject, self.batch_rows)
        stored = duplicates = 0
        # The next batch is parsed (in Python) while the database writes this one.
        with ThreadPoolExecutor(1, thread_name_prefix="import-read") as reader:

            def fetch() -> Future[Batch | None]:
                return reader.submit(next, batches, None)

            upcoming: Future[Batch | None] | None = fetch()
            while upcoming is not None and (batch := upcoming.result()) is not None:
                upcoming = fetch() if not batch.last else None
                result, refused = _write_with_journal(conn, item, reject.topic, batch)
                counts.rejected = counts.rejected + batch.rejected + refused
                stored += result.inserted
                duplicates += result.duplicates
                self._add(batch, result, refused)
                advance(
                    batch.values,
                    f"new {stored:,} · dup {duplicates:,} · rejected {counts.rejected.total():,}",
                )
                if self.on_batch is not None:
                    self.on_batch(self.summary)
                if batch.last:
                    break
        log.info(
            "%s: %d readings stored, %d already stored, %d rejected",
            item.path,
            stored,
            duplicates,
            counts.rejected.total(),
        )

    def _add(self, batch: Batch, result: WriteResult, refused: Counter[str]) -> None:
        summary = self.summary
        with summary.lock:
            summary.values += batch.values
            summary.stored += result.inserted
            summary.duplicates += result.duplicates
            summary.empty += batch.empty
            summary.derived_skipped += batch.derived_skipped
            summary.rejected.update(batch.rejected + refused)


def _write_with_journal(
    conn: psycopg.Connection, item: _ReadingsFile, topic: str, batch: Batch
) -> tuple[WriteResult, Counter[str]]:
    """Write a batch and advance the file's journal row in one transaction; a collision
    with another job (deadlock) rolls it back whole and it is written again."""
    outcome = Outcome(batch.readings, batch.dead_letters)
    for attempt in range(1, 6):
        try:
            with conn.transaction():
                tune_for_bulk(conn)
                result = store(
                    conn,
                    outcome,
                    refused=partial(refused_row, topic),
                    live=False,
                    bulk=True,
                )
                refused = Counter(r.dead_letter.reason for r in result.refused)
                advance_import(
                    conn,
                    item.sha256,
                    JournalProgress(
                        batch.rows_end,
                        batch.offset_end,
                        result.inserted,
                        result.duplicates,
                        batch.empty,
                        batch.derived_skipped,
                        item.counts.rejected + batch.rejected + refused,
                        batch.last,
                    ),
                )
            return result, refused
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
            if attempt == 5:
                raise
            log.info("%s: batch collided with another job; writing it again", item.path)
            time.sleep(0.1 * attempt)
    raise AssertionError("unreachable")
