"""Backfill: whole past periods of the network's readings, hourly for air, weekly (items) or
monthly (classes) for water, with realistic gaps, stored in large batches through the
importer's in-memory entry point (``ingest.importer.import_readings``: the intake rules and
the bulk writer), or published through the broker for small networks.

Idempotent and resumable: the readings are the same on every run (same seed), the unique key
makes a repeated reading a duplicate, and a batch whose readings are all stored already is
skipped without generating it again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import psycopg

from core.settings import Settings
from ingest.importer import Reading, hourly_readings_stored, import_progress, import_readings
from schemas.stations import Station
from simulators.connections import StationConnections
from simulators.model import (
    AIR_PARAMETERS,
    DEFAULT_SEED,
    WATER_ITEMS,
    air_values,
    reports_class_only,
    water_values,
)
from simulators.noise import key_of, uniform
from simulators.payloads import batch_payload, readings_topic

log = logging.getLogger(__name__)

NETWORK_TZ = ZoneInfo("Asia/Shanghai")  # days and periods are Beijing-time days
DEFAULT_BATCH_ROWS = 50_000
# Gaps: ~2 % of hours lost at random, the odd whole day (~1.5 a year), and now and then a
# station-year with a multi-day outage (which may cost it a valid month, hence its year).
HOUR_GAP_RATE = 0.02
DAY_GAP_RATE = 0.004
OUTAGE_RATE = 0.08
OUTAGE_DAYS = (4, 9)
WATER_SAMPLE_HOUR = 10  # local time of a water sample
MONTHLY_SAMPLE_DAY = 10
HOURLY_COVERAGE_S = 3600


# --- what a station reports in the past --------------------------------------------------
def _day_index(epoch_hour: int) -> int:
    return (epoch_hour + 8) // 24  # Beijing day since 1970-01-01


@lru_cache(maxsize=65536)
def _outage(seed: int, station_key: int, year: int) -> tuple[int, int] | None:
    """[first day, last day + 1) (Beijing day indexes) of a station-year's outage, if any."""
    if uniform(seed, 506, station_key, year) >= OUTAGE_RATE:
        return None
    first = (date(year, 1, 1) - date(1970, 1, 1)).days
    start = first + int(uniform(seed, 507, station_key, year) * 360)
    low, high = OUTAGE_DAYS
    return start, start + low + int(uniform(seed, 508, station_key, year) * (high - low + 1))


@lru_cache(maxsize=65536)
def _year_of_day(day: int) -> int:
    return (date(1970, 1, 1) + timedelta(days=day)).year


def air_hour_reported(station_id: str, hour_start: datetime, seed: int = DEFAULT_SEED) -> bool:
    """Whether an air station has its hourly value for the hour starting at ``hour_start``."""
    return _hour_reported(seed, key_of(station_id), int(hour_start.timestamp()) // 3600)


def _hour_reported(seed: int, station_key: int, epoch_hour: int) -> bool:
    day = _day_index(epoch_hour)
    if uniform(seed, 505, station_key, day) < DAY_GAP_RATE:
        return False
    outage = _outage(seed, station_key, _year_of_day(day))
    if outage is not None and outage[0] <= day < outage[1]:
        return False
    return uniform(seed, 504, station_key, epoch_hour) >= HOUR_GAP_RATE


def water_sample_times(section: Station, start: datetime, end: datetime) -> list[datetime]:
    """Sampling instants of a section in [start, end): weekly (on the section's own weekday)
    for sections that report items, monthly (on the 10th) for those that report a class."""
    tz = ZoneInfo(section.timezone)
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    class_only = reports_class_only(section)
    weekday = int(uniform(key_of(section.station_id), 509) * 7)
    times = []
    while day <= last:
        if (day.day == MONTHLY_SAMPLE_DAY) if class_only else (day.weekday() == weekday):
            ts = datetime(day.year, day.month, day.day, WATER_SAMPLE_HOUR, tzinfo=tz)
            if start <= ts < end:
                times.append(ts.astimezone(UTC))
        day += timedelta(days=1)
    return times


def _hours(start: datetime, end: datetime) -> Iterator[int]:
    """Epoch hours of the hours starting in [start, end)."""
    first = math.ceil(start.timestamp() / 3600)
    return iter(range(first, math.ceil(end.timestamp() / 3600)))


def _water_rows_per_sample(section: Station) -> int:
    return 1 if reports_class_only(section) else len(WATER_ITEMS) + 1  # + the derived class


def expected_rows(
    stations: Sequence[Station], start: datetime, end: datetime, seed: int = DEFAULT_SEED
) -> int:
    """How many readings the backfill stores for [start, end)."""
    total = 0
    for station in stations:
        if station.kind == "air":
            key = key_of(station.station_id)
            reported = sum(1 for h in _hours(start, end) if _hour_reported(seed, key, h))
            total += reported * len(AIR_PARAMETERS)
        else:
            samples = len(water_sample_times(station, start, end))
            total += samples * _water_rows_per_sample(station)
    return total


def generate_rows(
    stations: Sequence[Station],
    start: datetime,
    end: datetime,
    seed: int = DEFAULT_SEED,
) -> list[Reading]:
    """The readings of [start, end) as rows of the long layout (the values a station
    reports; the importer derives the class of water items, GB 3838-2002 single factor)."""
    rows: list[Reading] = []
    for station in stations:
        station_id = station.station_id
        if station.kind == "air":
            key = key_of(station_id)
            for epoch_hour in _hours(start, end):
                if not _hour_reported(seed, key, epoch_hour):
                    continue
                ts = datetime.fromtimestamp(epoch_hour * 3600, tz=UTC)
                for parameter, value in air_values(station, ts, seed).items():
                    rows.append((station_id, parameter, ts, value))
            continue
        for ts in water_sample_times(station, start, end):
            for parameter, value in water_values(station, ts, seed).items():
                rows.append((station_id, parameter, ts, value))
    return rows


# --- the period --------------------------------------------------------------------------
def backfill_period(
    year: int | None = None,
    start: date | None = None,
    to: date | Literal["now"] | None = None,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """[start, end) in Beijing time: from 1 January of ``year`` (or ``start``) to ``to``
    (exclusive; default the next 1 January; ``"now"``: the start of the current hour, where
    live readings carry on), never beyond the start of the current hour."""
    if start is None:
        if year is None:
            raise ValueError("give a year or a start date")
        start = date(year, 1, 1)
    if to is None:
        to = date((year if year is not None else start.year) + 1, 1, 1)
    lo = datetime(start.year, start.month, start.day, tzinfo=NETWORK_TZ)
    current_hour = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    hi = current_hour.astimezone(NETWORK_TZ)
    if isinstance(to, date):
        hi = min(hi, datetime(to.year, to.month, to.day, tzinfo=NETWORK_TZ))
    if hi <= lo:
        raise ValueError(f"empty period: {lo.isoformat()} to {hi.isoformat()}")
    return lo.astimezone(UTC), hi.astimezone(UTC)


def plan_chunks(
    stations: Sequence[Station], start: datetime, end: datetime, batch_rows: int
) -> list[tuple[datetime, datetime]]:
    """Whole Beijing days per batch, as many as fit in about ``batch_rows`` readings."""
    air = sum(1 for s in stations if s.kind == "air")
    water = len(stations) - air
    rows_per_day = max(air * 24 * len(AIR_PARAMETERS) + water, 1)
    days = max(1, batch_rows // rows_per_day)
    chunks = []
    lo = start
    while lo < end:
        local = lo.astimezone(NETWORK_TZ)
        midnight = datetime(local.year, local.month, local.day, tzinfo=NETWORK_TZ)
        hi = min(midnight + timedelta(days=days), end).astimezone(UTC)
        chunks.append((lo, hi))
        lo = hi
    return chunks


# --- the bulk path -----------------------------------------------------------------------
@dataclass
class BackfillResult:
    planned: int = 0  # readings in the period
    inserted: int = 0
    published: int = 0  # readings sent through the broker (--via-mqtt)
    duplicates: int = 0
    skipped: int = 0  # readings of batches found complete (resume)
    batches: int = 0
    batches_skipped: int = 0
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        done = self.inserted + self.duplicates + self.published
        return done / self.seconds if self.seconds else 0.0


def backfill(
    conn: psycopg.Connection,
    stations: Sequence[Station],
    start: datetime,
    end: datetime,
    seed: int = DEFAULT_SEED,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    resume: bool = True,
    show_progress: bool = False,
    on_batch: Callable[[BackfillResult], object] | None = None,
) -> BackfillResult:
    """Store the readings of [start, end) through the importer, in batches of about
    ``batch_rows`` readings, one transaction each. With ``resume``, a batch whose readings
    are all stored already is skipped. The stations must be registered."""
    station_ids = sorted(s.station_id for s in stations)
    chunks = plan_chunks(stations, start, end, batch_rows)
    planned = [expected_rows(stations, lo, hi, seed) for lo, hi in chunks]
    result = BackfillResult(planned=sum(planned))
    started = time.perf_counter()
    todo = []
    for (lo, hi), expected in zip(chunks, planned, strict=True):
        if resume and expected and hourly_readings_stored(conn, station_ids, lo, hi) >= expected:
            result.batches_skipped += 1
            result.skipped += expected
        elif expected:
            todo.append((lo, hi))
    with (
        import_progress(show_progress, "rows") as progress,
        ThreadPoolExecutor(1, thread_name_prefix="backfill-generate") as generator,
    ):
        task = progress.add_task("backfill", total=result.planned - result.skipped, note="")

        def generate(chunk: tuple[datetime, datetime]) -> Future[list[Reading]]:
            return generator.submit(generate_rows, stations, *chunk, seed)

        # The next batch is generated (in Python) while the database writes this one.
        upcoming = generate(todo[0]) if todo else None
        for position, (_, hi) in enumerate(todo):
            assert upcoming is not None
            rows = upcoming.result()
            upcoming = generate(todo[position + 1]) if position + 1 < len(todo) else None
            # an hourly value covers its hour, whatever the station's live interval
            imported = import_readings(conn, rows, name="backfill", coverage_s=HOURLY_COVERAGE_S)
            result.inserted += imported.inserted
            result.duplicates += imported.duplicates
            result.batches += 1
            progress.update(
                task,
                advance=len(rows),
                note=f"new {result.inserted:,} · dup {result.duplicates:,}"
                f" · to {hi.astimezone(NETWORK_TZ):%Y-%m-%d}",
            )
            if on_batch is not None:
                on_batch(result)
    result.seconds = time.perf_counter() - started
    return result


# --- through the broker ------------------------------------------------------------------
def backfill_via_mqtt(
    settings: Settings,
    stations: Sequence[Station],
    start: datetime,
    end: datetime,
    seed: int = DEFAULT_SEED,
    credentials: dict[str, str] | None = None,
    show_progress: bool = False,
) -> BackfillResult:
    """Publish the readings of [start, end) as each station, one batch message of 24 hours
    per station and day, QoS 1, waiting for the broker's acknowledgements day by day.

    For small networks: the ingest worker stores them like live data, so the hours count as
    valid only for stations registered with a reading interval of at least 45 minutes."""
    result = BackfillResult(planned=expected_rows(stations, start, end, seed))
    connections = StationConnections(settings, stations, credentials)
    started = time.perf_counter()
    if connections.open() < len(stations):
        connections.close()
        raise ConnectionError(
            f"only {connections.connected_count()} of {len(stations)} stations could connect"
        )
    try:
        with import_progress(show_progress, "rows") as progress:
            task = progress.add_task("publish", total=result.planned, note="")
            for lo, hi in plan_chunks(stations, start, end, batch_rows=1):  # day by day
                infos = []
                for station in stations:
                    if station.kind == "air":
                        key = key_of(station.station_id)
                        times = [
                            datetime.fromtimestamp(h * 3600, tz=UTC)
                            for h in _hours(lo, hi)
                            if _hour_reported(seed, key, h)
                        ]
                        rows = len(times) * len(AIR_PARAMETERS)
                    else:
                        times = water_sample_times(station, lo, hi)
                        rows = len(times) * _water_rows_per_sample(station)
                    if not times:
                        continue
                    info = connections.publish(
                        station.station_id,
                        readings_topic(station.station_id),
                        batch_payload(station, times, seed),
                    )
                    if info is None:
                        raise ConnectionError(f"{station.station_id} lost its connection")
                    infos.append(info)
                    result.published += rows
                if not connections.wait_published(infos, timeout_s=120):
                    raise TimeoutError("the broker did not acknowledge a day's messages")
                result.batches += 1
                progress.update(
                    task, completed=result.published, note=f"to {hi.astimezone(NETWORK_TZ):%F}"
                )
    finally:
        connections.close()
    result.seconds = time.perf_counter() - started
    return result
