"""Live mode: every station publishes its current reading every interval, staggered over the
interval, with faults injected on demand."""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.settings import Settings
from schemas.stations import Station
from simulators.connections import StationConnections
from simulators.model import DEFAULT_SEED
from simulators.payloads import Malformation, malformed_payload, reading_payload, readings_topic

log = logging.getLogger(__name__)

_HISTORY = 20  # messages a station remembers for re-sending as duplicates
_STATUS_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults to inject. Rates are chances per regular publish (0..1); counts are stations."""

    malformed: float = 0.0  # an extra broken message (dead-lettered)
    duplicates: float = 0.0  # re-send one of the station's recent messages
    late: float = 0.0  # an extra reading from ``late_hours`` ago (stored, out of order)
    late_hours: tuple[float, float] = (1.0, 12.0)
    silent: int = 0  # stations that drop their link without DISCONNECT (last will)
    silent_after_s: float | None = None  # None: three intervals after the start
    silent_for_s: float | None = None  # None: they stay silent
    skewed: int = 0  # stations whose clock is off by ``skew_minutes``
    skew_minutes: float = 15.0  # beyond +10 their readings are dead-lettered timestamp_future

    def __post_init__(self) -> None:
        for name in ("malformed", "duplicates", "late"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a rate per publish, 0..1")
        if self.silent < 0 or self.skewed < 0:
            raise ValueError("silent and skewed are numbers of stations, >= 0")
        if not 0 < self.late_hours[0] <= self.late_hours[1]:
            raise ValueError("late_hours must be (low, high) with 0 < low <= high")


@dataclass(frozen=True, slots=True)
class Sent:
    """One message a station sent (kept when the runner is given a journal)."""

    station_id: str
    kind: str  # reading | skewed | late | duplicate | malformed:<reason>
    topic: str
    payload: bytes


@dataclass
class LiveStats:
    """What the runner did, by kind of message."""

    sent: Counter[str] = field(default_factory=Counter)
    skipped: int = 0  # regular publishes missed while a station was not connected
    silenced: list[str] = field(default_factory=list)


class LiveRunner:
    """Publishes the readings of ``stations`` every ``interval_s`` until stopped."""

    def __init__(
        self,
        settings: Settings,
        stations: Sequence[Station],
        interval_s: float = 60.0,
        faults: Faults | None = None,
        seed: int = DEFAULT_SEED,
        credentials: Mapping[str, str] | None = None,
        journal: list[Sent] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval must be > 0 seconds")
        self.stations = {s.station_id: s for s in stations}
        self.interval_s = interval_s
        self.faults = faults or Faults()
        self.seed = seed
        self.journal = journal
        self.clock = clock
        self.stats = LiveStats()
        self.connections = StationConnections(settings, stations, credentials)
        self._random = random.Random(seed)
        shuffled = sorted(self.stations)
        random.Random(seed + 1).shuffle(shuffled)
        self.silent_ids = shuffled[: self.faults.silent]
        self.skewed_ids = shuffled[self.faults.silent : self.faults.silent + self.faults.skewed]
        if len(self.skewed_ids) < self.faults.skewed:  # fewer stations than asked for
            self.skewed_ids = shuffled[: self.faults.skewed]
        self._history: dict[str, deque[bytes]] = {
            station_id: deque(maxlen=_HISTORY) for station_id in self.stations
        }
        self.ready = threading.Event()  # set once the first connections are made

    def _send(self, station_id: str, kind: str, payload: bytes) -> bool:
        topic = readings_topic(station_id)
        if self.connections.publish(station_id, topic, payload) is None:
            return False
        self.stats.sent[kind.split(":")[0]] += 1
        if self.journal is not None:
            self.journal.append(Sent(station_id, kind, topic, payload))
        return True

    def _publish_station(self, station_id: str) -> None:
        station = self.stations[station_id]
        now = datetime.fromtimestamp(int(self.clock()), tz=UTC)
        skewed = station_id in self.skewed_ids
        ts = now + timedelta(minutes=self.faults.skew_minutes) if skewed else now
        payload = reading_payload(station, ts, self.seed)
        if not self._send(station_id, "skewed" if skewed else "reading", payload):
            self.stats.skipped += 1
            return
        history = self._history[station_id]
        draw = self._random.random
        if self.faults.duplicates and history and draw() < self.faults.duplicates:
            self._send(station_id, "duplicate", self._random.choice(history))
        history.append(payload)
        if self.faults.malformed and draw() < self.faults.malformed:
            kind = self._random.choice(list(Malformation))
            self._send(station_id, f"malformed:{kind}", malformed_payload(station, now, kind))
        if self.faults.late and draw() < self.faults.late:
            low, high = self.faults.late_hours
            age = timedelta(hours=self._random.uniform(low, high))
            late_ts = (now - age).replace(microsecond=0)
            self._send(station_id, "late", reading_payload(station, late_ts, self.seed))

    def run(self, stop: threading.Event | None = None, duration_s: float | None = None) -> None:
        """Connect every station, then publish until ``stop`` is set or ``duration_s`` has
        passed; closes cleanly (``offline`` announced, no last will)."""
        stop = stop or threading.Event()
        connected = self.connections.open(timeout_s=min(30.0, 5.0 + 0.05 * len(self.stations)))
        log.info("%d of %d stations connected", connected, len(self.stations))
        self.ready.set()
        start = time.monotonic()
        end = None if duration_s is None else start + duration_s
        # Staggered: station k publishes at k/N of the interval, so the broker and the
        # ingest see a steady trickle rather than a burst every interval.
        count = max(len(self.stations), 1)
        schedule = [
            (start + self.interval_s * k / count, station_id)
            for k, station_id in enumerate(sorted(self.stations))
        ]
        heapq.heapify(schedule)
        silent_after = self.faults.silent_after_s
        silence_at: float | None = None
        if self.silent_ids:
            silence_at = start + (3 * self.interval_s if silent_after is None else silent_after)
        restore_at: float | None = None
        quiet: set[str] = set()
        next_status = start + _STATUS_EVERY_S
        try:
            while not stop.is_set():
                now = time.monotonic()
                if end is not None and now >= end:
                    break
                while schedule and schedule[0][0] <= now:
                    due, station_id = heapq.heappop(schedule)
                    if station_id not in quiet:
                        self._publish_station(station_id)
                    due += self.interval_s
                    if due < now:  # fell behind (a stall): skip, do not burst
                        due += self.interval_s * ((now - due) // self.interval_s + 1)
                    heapq.heappush(schedule, (due, station_id))
                if silence_at is not None and now >= silence_at:
                    silence_at = None
                    for station_id in self.silent_ids:
                        self.connections.drop(station_id)
                    quiet.update(self.silent_ids)
                    self.stats.silenced.extend(self.silent_ids)
                    log.info("silenced %s (last will)", ", ".join(self.silent_ids))
                    if self.faults.silent_for_s is not None:
                        restore_at = now + self.faults.silent_for_s
                if restore_at is not None and now >= restore_at:
                    restore_at = None
                    for station_id in sorted(quiet):
                        self.connections.restore(station_id)
                    log.info("restored %s", ", ".join(sorted(quiet)))
                    quiet.clear()
                if now >= next_status:
                    next_status = now + _STATUS_EVERY_S
                    log.info(
                        "%d/%d stations connected; sent %s",
                        self.connections.connected_count(),
                        len(self.stations),
                        dict(self.stats.sent),
                    )
                wake = min(schedule[0][0] if schedule else now + 1.0, now + 0.5)
                if end is not None:
                    wake = min(wake, end)
                self.connections.poll(max(wake - time.monotonic(), 0.0))
        finally:
            self.connections.close()
