"""The batch writer, the commit path: one transaction stores a batch of readings (exactly
once, first value wins) and dead letters, runs the caller's alert evaluation, and queues the
station-days the new readings touched for the aggregation stage (ingest.aggregation)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from schemas.payloads import Reason, Rejection
from storage.text import storable_text

log = logging.getLogger(__name__)

# (station_id, parameter, ts, value, received_at)
ReadingRow = tuple[str, str, datetime, float, datetime]
# (flag, flag_reason) of stored readings: 'valid' counts; 'invalid' (e.g. "station:M", a value
# its station flagged) is kept and counts toward no figure.
StoredFlag = tuple[str, str | None]
VALID: StoredFlag = ("valid", None)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected payload, or one rejected reading of it, with its reason."""

    topic: str
    station_id: str | None
    payload: bytes
    reason: str
    detail: str
    received_at: datetime
    source: str = "mqtt"

    @property
    def fingerprint(self) -> bytes:
        digest = hashlib.sha256()
        for part in (self.topic.encode(), self.payload, self.reason.encode(), self.detail.encode()):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.digest()


@dataclass(frozen=True, slots=True)
class Refusal:
    """A part of a batch (an MQTT message, a posted reading, a file row) that could not be
    stored, and the dead letter written in its place."""

    part: int
    dead_letter: DeadLetter


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    duplicates: int
    dead_letters: int
    refused: tuple[Refusal, ...] = ()


_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_readings (
    station_id text, parameter text, ts timestamptz, value float8, received_at timestamptz,
    seq integer
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS new_readings (
    station_id text, parameter text, ts timestamptz, value float8, received_at timestamptz
) ON COMMIT DELETE ROWS;
"""

# A repeated (station, parameter, ts) keeps the FIRST value stored: MQTT may redeliver an old
# copy after a newer one, so "last wins" could silently undo a value; corrections go through
# an explicit path, never through re-publishing.
_INSERT_NEW = """
INSERT INTO readings (station_id, parameter, ts, value, received_at, flag, flag_reason)
SELECT DISTINCT ON (station_id, parameter, ts) station_id, parameter, ts, value, received_at,
       %(flag)s, %(flag_reason)s
FROM staging_readings
ORDER BY station_id, parameter, ts, seq
ON CONFLICT (station_id, parameter, ts) DO NOTHING
RETURNING station_id, parameter, ts, value, received_at
"""

# Bulk loads (airwater import) of mostly new readings: ON CONFLICT's speculative insertion
# costs a hypertable ~40 % of an insert. This statement leaves out rows that exist already
# (an anti-join on the unique key, with constant time bounds for chunk exclusion) and inserts
# the rest plainly. A concurrent writer of the same key between the two makes the insert fail
# on the unique index, and the caller writes the batch again through the ON CONFLICT path:
# never a duplicate either way.
_INSERT_NEW_BULK = """
INSERT INTO readings (station_id, parameter, ts, value, received_at, flag, flag_reason)
SELECT DISTINCT ON (s.station_id, s.parameter, s.ts)
       s.station_id, s.parameter, s.ts, s.value, s.received_at, %(flag)s, %(flag_reason)s
FROM staging_readings s
WHERE NOT EXISTS (
    SELECT 1 FROM readings r
    WHERE r.station_id = s.station_id AND r.parameter = s.parameter AND r.ts = s.ts
      AND r.ts >= %(first)s AND r.ts <= %(last)s)
ORDER BY s.station_id, s.parameter, s.ts, s.seq
RETURNING station_id, parameter, ts, value, received_at
"""

# What the new rows changed, for the aggregation stage: each station-parameter's local days
# (the day of the hour a reading falls in, as the stage groups them).
_QUEUE_CHANGES = """
queued AS (
    INSERT INTO aggregation_queue (station_id, parameter, day)
    SELECT DISTINCT i.station_id, i.parameter,
           (time_bucket('1 hour', i.ts) AT TIME ZONE s.timezone)::date
    FROM inserted i JOIN stations s ON s.station_id = i.station_id
)"""

# The alert evaluation reads the batch's new rows from new_readings.
_KEEP_NEW = """
kept AS (INSERT INTO new_readings SELECT * FROM inserted)"""

# Readings loaded as hourly values each stand for a whole hour (coverage_s) when the hour's
# validity is judged, for stations whose live interval is shorter.
_KEEP_COVERAGE = """
covered AS (
    INSERT INTO hourly_coverage AS c (station_id, parameter, bucket, coverage_s)
    SELECT DISTINCT i.station_id, i.parameter, time_bucket('1 hour', i.ts), %(coverage_s)s
    FROM inserted i JOIN stations s ON s.station_id = i.station_id
    WHERE s.reading_interval_s < %(coverage_s)s
    ON CONFLICT (station_id, parameter, bucket) DO UPDATE
        SET coverage_s = greatest(c.coverage_s, excluded.coverage_s)
)"""


# One statement per need: insert the new rows, queue their station-days, and keep what the
# caller needs (new_readings for the alert evaluation, the coverage of hourly values); it
# returns the number of rows inserted. Keyed by (bulk, keep new rows, keep coverage).
_PLAIN = f"WITH inserted AS ({_INSERT_NEW}),{_QUEUE_CHANGES}"
_BULK = f"WITH inserted AS ({_INSERT_NEW_BULK}),{_QUEUE_CHANGES}"
_KEEP = f",{_KEEP_NEW}"
_COVER = f",{_KEEP_COVERAGE}"
_COUNT = "\nSELECT count(*) FROM inserted"
_INSERT_STATEMENTS = {
    (False, False, False): f"{_PLAIN}{_COUNT}",
    (False, False, True): f"{_PLAIN}{_COVER}{_COUNT}",
    (False, True, False): f"{_PLAIN}{_KEEP}{_COUNT}",
    (False, True, True): f"{_PLAIN}{_KEEP}{_COVER}{_COUNT}",
    (True, False, False): f"{_BULK}{_COUNT}",
    (True, False, True): f"{_BULK}{_COVER}{_COUNT}",
    (True, True, False): f"{_BULK}{_KEEP}{_COUNT}",
    (True, True, True): f"{_BULK}{_KEEP}{_COVER}{_COUNT}",
}


# A repeat of a stored rejection (same fingerprint) counts one more occurrence and moves
# last_seen; received_at and first_seen keep the first arrival. The count is of deliveries
# received: a message redelivered after a crash between commit and acknowledgement counts
# once more here, while its readings stay stored exactly once (ON CONFLICT DO NOTHING above).
# A batch's repeats are summed first (_dead_letter_rows): one upsert per distinct letter.
_UPSERT_DEAD_LETTER = """
INSERT INTO dead_letters AS d
    (id, fingerprint, topic, station_id, payload, reason, detail, source, received_at,
     first_seen, last_seen, occurrences)
VALUES (%(id)s, %(fingerprint)s, %(topic)s, %(station_id)s, %(payload)s, %(reason)s,
        %(detail)s, %(source)s, %(first_seen)s, %(first_seen)s, %(last_seen)s, %(occurrences)s)
ON CONFLICT (fingerprint) DO UPDATE SET
    occurrences = d.occurrences + excluded.occurrences,
    last_seen = greatest(d.last_seen, excluded.last_seen)
"""

# Ids for a batch's new letters, taken in arrival order: the upserts run in fingerprint
# order (concurrent writers then lock the rows they share in one order, never deadlocking
# on them) while ids still follow arrival. An id of a repeat is left unused.
_NEXT_DEAD_LETTER_IDS = """
SELECT nextval(pg_get_serial_sequence('dead_letters', 'id')) FROM generate_series(1, %s)
"""

_AUTO_REGISTER = """
INSERT INTO stations (station_id, name, kind) VALUES (%s, %s, %s)
ON CONFLICT (station_id) DO NOTHING
"""


# ON COMMIT DELETE ROWS empties the staging tables at commit; a write inside a caller's
# transaction (the importer's journal: the isolating writer's savepoints) empties them first.
_CLEAR_STAGING = "DELETE FROM staging_readings; DELETE FROM new_readings"


def prepare_connection(conn: psycopg.Connection) -> None:
    """Create the per-connection staging tables (used as a pool's ``configure``)."""
    conn.execute(_STAGING)
    conn.commit()


def write_batch(
    conn: psycopg.Connection,
    readings: Sequence[ReadingRow],
    dead_letters: Sequence[DeadLetter] = (),
    new_stations: Sequence[tuple[str, str, str]] = (),
    after_write: Callable[[psycopg.Cursor[Any]], object] | None = None,
    bulk: bool = False,
    coverage_s: int = 0,
    flag: StoredFlag = VALID,
) -> WriteResult:
    """Store one batch atomically; a repeated (station, parameter, ts) is a duplicate, not
    an error. ``after_write`` runs in the same transaction once the new rows are in
    ``new_readings`` (alert evaluation). The station-days of the new rows are queued for the
    aggregation stage in the same transaction. The caller acknowledges the batch's messages
    only after this returns.

    ``bulk``: for loads of mostly new readings (imports); faster for a batch within
    BULK_MAX_SPAN, and the same result. If a concurrent writer stores one of the batch's keys
    meanwhile, the batch is written again the usual way (inside a savepoint when the caller
    holds a transaction).

    ``coverage_s``: the least time (s) each reading stands for when its hour's validity is
    judged (kept in hourly_coverage); 0 = the station's reading interval (live data).

    ``flag``: (flag, flag_reason) every new reading of the batch is stored with; a value its
    station flagged (``("invalid", "station:M")``) is kept and counts toward no figure."""
    if bulk and readings and _span(readings) <= BULK_MAX_SPAN:
        try:
            with conn.transaction():
                return _write(
                    conn, readings, dead_letters, new_stations, after_write, True, coverage_s,
                    flag,
                )  # fmt: skip
        except psycopg.errors.UniqueViolation:
            pass
    return _write(conn, readings, dead_letters, new_stations, after_write, False, coverage_s, flag)


# The bulk statements compare the batch with the stored rows of its whole time span (hash
# joins over the span's chunks): right for a dense batch such as a national day file, ruinous
# for a sparse one (a year of monthly water samples would scan a year of readings per batch),
# which keeps the per-row ON CONFLICT path.
BULK_MAX_SPAN = timedelta(hours=48)


def _span(readings: Sequence[ReadingRow]) -> timedelta:
    timestamps = [row[2] for row in readings]
    return max(timestamps) - min(timestamps)


def _write(
    conn: psycopg.Connection,
    readings: Sequence[ReadingRow],
    dead_letters: Sequence[DeadLetter],
    new_stations: Sequence[tuple[str, str, str]],
    after_write: Callable[[psycopg.Cursor[Any]], object] | None,
    bulk: bool,
    coverage_s: int,
    flag: StoredFlag,
) -> WriteResult:
    inserted = stored_dead = 0
    nested = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    with conn.transaction(), conn.cursor() as cur:
        if readings and nested:
            cur.execute(_CLEAR_STAGING)
        if new_stations:
            cur.executemany(_AUTO_REGISTER, new_stations)
        if readings:
            with cur.copy(
                "COPY staging_readings (station_id, parameter, ts, value, received_at, seq)"
                " FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "text", "timestamptz", "float8", "timestamptz", "int4"])
                for seq, row in enumerate(readings):
                    copy.write_row((*row, seq))
            timestamps = [row[2] for row in readings]
            statement = _INSERT_STATEMENTS[bulk, after_write is not None, coverage_s > 0]
            counted = cur.execute(
                statement,
                {
                    "first": min(timestamps),
                    "last": max(timestamps),
                    "coverage_s": coverage_s,
                    "flag": flag[0],
                    "flag_reason": flag[1],
                },
            ).fetchone()
            inserted = int(counted[0]) if counted else 0
            if inserted and after_write is not None:
                after_write(cur)
        if dead_letters:
            letters = _dead_letter_rows(cur, dead_letters)
            cur.executemany(_UPSERT_DEAD_LETTER, letters, returning=False)
            stored_dead = len(dead_letters)
    return WriteResult(inserted, len(readings) - inserted, stored_dead)


def _dead_letter_rows(
    cur: psycopg.Cursor[Any], dead_letters: Sequence[DeadLetter]
) -> list[dict[str, Any]]:
    """One row per fingerprint, in fingerprint order, with an id in order of first arrival:
    the first letter's fields, how many letters have that fingerprint, and their earliest
    and latest receive times."""
    rows: dict[bytes, dict[str, Any]] = {}
    for d in dead_letters:
        fingerprint = d.fingerprint
        row = rows.get(fingerprint)
        if row is None:
            rows[fingerprint] = {
                "fingerprint": fingerprint,
                "topic": d.topic,
                "station_id": d.station_id,
                "payload": d.payload,
                "reason": d.reason,
                "detail": d.detail,
                "source": d.source,
                "first_seen": d.received_at,
                "last_seen": d.received_at,
                "occurrences": 1,
            }
        else:
            row["first_seen"] = min(row["first_seen"], d.received_at)
            row["last_seen"] = max(row["last_seen"], d.received_at)
            row["occurrences"] += 1
    ids = sorted(r[0] for r in cur.execute(_NEXT_DEAD_LETTER_IDS, (len(rows),)))
    for row, letter_id in zip(rows.values(), ids, strict=True):
        row["id"] = letter_id
    return [rows[fingerprint] for fingerprint in sorted(rows)]


# --- poison isolation ----------------------------------------------------------------------
# What a door makes of a part the database refused: the part's index, its rows and why.
RefusedPart = Callable[[int, Sequence[ReadingRow], Rejection], DeadLetter]


def write_isolating(
    conn: psycopg.Connection,
    readings: Sequence[ReadingRow],
    dead_letters: Sequence[DeadLetter],
    new_stations: Sequence[tuple[str, str, str]],
    *,
    part_ends: Sequence[int] | None,
    refused: RefusedPart,
    after_write: Callable[[psycopg.Cursor[Any]], object] | None = None,
    bulk: bool = False,
    coverage_s: int = 0,
    flag: StoredFlag = VALID,
) -> WriteResult:
    """``write_batch``, except that a batch refused for its data (numeric overflow, a
    constraint, an encoding error, an exception of ``after_write``) is not an error: it is
    split in halves until each refused part is found; every such part becomes the dead letter
    ``refused`` makes of it (reason ``storage_rejected`` or ``processing_failed``, the error
    as detail) and everything else is stored.

    ``part_ends``: where each part ends in ``readings`` (ascending; a part is what is stored
    or refused whole: an MQTT message, one posted reading, one file row); None makes every
    reading a part. Errors of the database itself (connection lost, pool exhausted, a
    missing table) are raised as by ``write_batch``: the caller retries the whole batch,
    which is harmless since every write is idempotent."""
    try:
        return write_batch(
            conn, readings, dead_letters, new_stations, after_write, bulk, coverage_s, flag
        )
    except Exception as exc:
        if not is_refusal(exc, conn):
            raise
        log.warning(
            "a batch of %d readings was refused (%s); looking for the part(s) at fault",
            len(readings),
            _describe(exc),
        )
    ends = list(part_ends) if part_ends is not None else list(range(1, len(readings) + 1))
    stored_dead = _write_dead_letters(conn, dead_letters, new_stations)
    bisection = _Bisection(
        conn,
        readings,
        ends,
        lambda rows: write_batch(conn, rows, (), new_stations, after_write, bulk, coverage_s, flag),
        refused,
    )
    if ends:
        bisection.attempt(0, len(ends))
    refusals = tuple(bisection.refusals)
    return WriteResult(
        bisection.inserted, bisection.duplicates, stored_dead + len(refusals), refusals
    )


@dataclass
class _Bisection:
    """Writes the parts of a refused batch, halving each range the database refuses again
    until the refused parts stand alone; they become dead letters."""

    conn: psycopg.Connection
    readings: Sequence[ReadingRow]
    ends: Sequence[int]
    write: Callable[[Sequence[ReadingRow]], WriteResult]
    refused: RefusedPart
    inserted: int = 0
    duplicates: int = 0
    refusals: list[Refusal] = field(default_factory=list)

    def attempt(self, first: int, stop: int) -> None:
        """Write parts [first, stop)."""
        rows = self.readings[self.ends[first - 1] if first else 0 : self.ends[stop - 1]]
        if not rows:
            return
        try:
            result = self.write(rows)
        except Exception as exc:
            if not is_refusal(exc, self.conn):
                raise
            if stop - first > 1:
                middle = (first + stop) // 2
                self.attempt(first, middle)
                self.attempt(middle, stop)
            else:
                self._refuse(first, rows, exc)
            return
        self.inserted += result.inserted
        self.duplicates += result.duplicates

    def _refuse(self, part: int, rows: Sequence[ReadingRow], exc: Exception) -> None:
        rejection = _rejection(exc)
        dead = self.refused(part, rows, rejection)
        log.error(
            "part %d of the batch (%d readings of %s) dead-lettered: %s: %s",
            part,
            len(rows),
            rows[0][0],
            rejection.reason,
            rejection.detail,
        )
        self.refusals.append(Refusal(part, dead))
        _write_dead_letters(self.conn, [dead], ())


def is_refusal(exc: BaseException, conn: psycopg.Connection) -> bool:
    """Whether ``exc`` refuses this data, as opposed to the database being unavailable or
    not set up (lost connection, timeout, deadlock, disk full, a missing table or right),
    after which the same batch must be tried again as it is."""
    if conn.broken or conn.closed:
        return False
    return not isinstance(
        exc,
        psycopg.OperationalError
        | psycopg.ProgrammingError
        | psycopg.NotSupportedError
        | PoolTimeout,
    )


def _write_dead_letters(
    conn: psycopg.Connection,
    dead_letters: Sequence[DeadLetter],
    new_stations: Sequence[tuple[str, str, str]],
) -> int:
    """Store dead letters apart from the readings; one the database cannot hold is logged
    with its payload's start and left out (never expected: their text is cleaned up)."""
    try:
        return write_batch(conn, (), dead_letters, new_stations).dead_letters
    except Exception as exc:
        if not is_refusal(exc, conn):
            raise
        if len(dead_letters) > 1:
            return sum(_write_dead_letters(conn, [dead], new_stations) for dead in dead_letters)
        for dead in dead_letters:
            log.error(
                "a dead letter could not be stored (%s): %s on %r, payload starts %r",
                _describe(exc),
                dead.reason,
                dead.topic[:100],
                dead.payload[:200],
            )
        return 0


def _rejection(exc: BaseException) -> Rejection:
    if isinstance(exc, psycopg.Error | UnicodeError):
        return Rejection(Reason.STORAGE_REJECTED, f"the database refused it: {_describe(exc)}")
    return Rejection(Reason.PROCESSING_FAILED, f"processing failed: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    """The error's type, SQLSTATE and first line, fit for a text column."""
    lines = str(exc).strip().splitlines()
    state = getattr(exc, "sqlstate", None)
    text = f"{type(exc).__name__}{f' ({state})' if state else ''}: {lines[0] if lines else ''}"
    return storable_text(text)


# --- bulk loads ----------------------------------------------------------------------------
# The bulk anti-join and the queue's DISTINCT hash a whole batch: give them the memory.
# JIT only adds compile time here.
_BULK_SESSION = "SET LOCAL work_mem = '128MB'; SET LOCAL jit = off"

# Readings stored at whole hours (where hourly values sit) of some stations in [start, end).
_READINGS_ON_THE_HOUR = """
SELECT count(*) FROM readings
WHERE station_id = ANY(%(station_ids)s) AND ts >= %(start)s AND ts < %(end)s
  AND ts = date_trunc('hour', ts)
"""


def tune_for_bulk(conn: psycopg.Connection) -> None:
    """Settings for a bulk batch's transaction (call inside it; they end with it)."""
    conn.execute(_BULK_SESSION)


def readings_on_the_hour(
    conn: psycopg.Connection, station_ids: Sequence[str], start: datetime, end: datetime
) -> int:
    """How many readings of ``station_ids`` are stored at whole hours in [start, end)."""
    row = conn.execute(
        _READINGS_ON_THE_HOUR, {"station_ids": list(station_ids), "start": start, "end": end}
    ).fetchone()
    return 0 if row is None else int(row[0])
