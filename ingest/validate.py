"""Turns one MQTT message into reading rows and dead letters, using the station registry."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ingest.rules import (
    WATER_KINDS,
    derived_water_class,
    station_rejection,
    timestamp_rejection,
    value_rejection,
)
from schemas.payloads import (
    PayloadError,
    Reason,
    Record,
    Rejection,
    parse_payload,
    quote,
)
from schemas.stations import STATION_ID_PATTERN
from standards.parameters import CATALOGUE
from storage.stations import list_stations
from storage.writer import DeadLetter, ReadingRow

log = logging.getLogger(__name__)

_STATION_ID = re.compile(STATION_ID_PATTERN)
# Each dead letter keeps the whole payload: without a cap, a 256 KiB batch of 80,000 empty
# readings would write 80,000 copies of it (20 GB). The rest is summed up in the last one.
MAX_DEAD_LETTERS_PER_MESSAGE = 100
# PostgreSQL text holds no NUL and no lone surrogate; a topic is quoted, and cut, in that case.
_MAX_TOPIC_CHARS = 300
_MAX_DETAIL_CHARS = 1000


@dataclass(frozen=True, slots=True)
class StationInfo:
    """What validation needs to know of a station."""

    station_id: str
    timezone: ZoneInfo
    kind: str
    waterbody: str | None
    active: bool


class StationDirectory:
    """Cached station registry; an unknown id reloads it, at most once per ``min_reload_s``,
    and with ``max_age_s`` a lookup also reloads a cache older than that."""

    def __init__(
        self,
        load: Callable[[], dict[str, StationInfo]],
        min_reload_s: float = 1.0,
        max_age_s: float | None = None,
    ) -> None:
        self._load = load
        self._min_reload_s = min_reload_s
        self._max_age_s = max_age_s
        self._stations: dict[str, StationInfo] = {}
        self._loaded_at = float("-inf")

    def get(self, station_id: str) -> StationInfo | None:
        age = time.monotonic() - self._loaded_at
        if self._max_age_s is not None and age > self._max_age_s:
            self.reload()
        station = self._stations.get(station_id)
        if station is None and time.monotonic() - self._loaded_at >= self._min_reload_s:
            self.reload()
            station = self._stations.get(station_id)
        return station

    def reload(self) -> None:
        self._stations = self._load()
        self._loaded_at = time.monotonic()

    def expire(self) -> None:
        """Reload on the next lookup, whatever the interval (the registry changed)."""
        self._loaded_at = float("-inf")
        self._stations = {}

    def add(self, station: StationInfo) -> None:
        self._stations[station.station_id] = station


def stations_of(conn: psycopg.Connection) -> dict[str, StationInfo]:
    """What validation needs of every station in the registry."""
    return {
        s.station_id: StationInfo(s.station_id, ZoneInfo(s.timezone), s.kind, s.waterbody, s.active)
        for s in list_stations(conn)
    }


def load_stations(pool: ConnectionPool) -> dict[str, StationInfo]:
    with pool.connection() as conn:
        return stations_of(conn)


@dataclass(slots=True)
class Outcome:
    """What a batch of messages becomes."""

    readings: list[ReadingRow] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    new_stations: list[tuple[str, str, str]] = field(default_factory=list)


class Validator:
    """Applies the MQTT contract's rules; every reject becomes a dead letter with a reason."""

    def __init__(
        self,
        stations: StationDirectory,
        max_payload_bytes: int = 256 * 1024,
        max_future: timedelta = timedelta(minutes=10),
        auto_register: bool = False,
        source: str = "mqtt",
    ) -> None:
        self.stations = stations
        self.max_payload_bytes = max_payload_bytes
        self.max_future = max_future
        self.auto_register = auto_register
        self.source = source

    def station_of_topic(self, topic: str) -> str | None:
        parts = topic.split("/")
        if len(parts) == 3 and parts[0] == "stations" and parts[2] == "readings":
            station_id = parts[1]
            if _STATION_ID.match(station_id):
                return station_id
        return None

    def add_message(
        self, outcome: Outcome, topic: str, payload: bytes, received_at: datetime
    ) -> None:
        """Validate one message into ``outcome`` (rows to store, dead letters to keep)."""

        first_dead_letter = len(outcome.dead_letters)
        overflow: Counter[str] = Counter()
        stored_topic = _storable_topic(topic)

        def reject(rejection: Rejection, station_id: str | None) -> None:
            if len(outcome.dead_letters) - first_dead_letter >= MAX_DEAD_LETTERS_PER_MESSAGE - 1:
                overflow[rejection.reason] += 1
                return
            outcome.dead_letters.append(
                DeadLetter(
                    stored_topic,
                    station_id,
                    payload,
                    rejection.reason,
                    # a safety net: the parser quotes values short already
                    rejection.detail[:_MAX_DETAIL_CHARS],
                    received_at,
                    self.source,
                )
            )

        marks = len(outcome.readings), len(outcome.new_stations)
        try:
            self._check_message(outcome, reject, topic, payload, received_at)
        except (psycopg.Error, PoolTimeout):
            raise  # the registry could not be read: the caller retries the batch
        except Exception as exc:
            # a bug of ours must not stop ingestion: the message is kept for replay
            log.exception("validating a message on %s failed", stored_topic)
            del outcome.readings[marks[0] :], outcome.new_stations[marks[1] :]
            del outcome.dead_letters[first_dead_letter:]
            overflow.clear()
            reject(
                Rejection(
                    Reason.PROCESSING_FAILED,
                    f"validation failed: {type(exc).__name__}: {str(exc)[:300]!r}",
                ),
                self.station_of_topic(topic),
            )
        if overflow:
            counts = ", ".join(f"{reason} {n}" for reason, n in overflow.most_common())
            reject_station = outcome.dead_letters[-1].station_id
            outcome.dead_letters.append(
                DeadLetter(
                    stored_topic,
                    reject_station,
                    payload,
                    overflow.most_common(1)[0][0],
                    f"{overflow.total()} further rejections of this payload ({counts})",
                    received_at,
                    self.source,
                )
            )

    def _check_message(
        self,
        outcome: Outcome,
        reject: Callable[[Rejection, str | None], None],
        topic: str,
        payload: bytes,
        received_at: datetime,
    ) -> None:
        station_id = self.station_of_topic(topic)
        if station_id is None:
            reject(
                Rejection(
                    Reason.INVALID_SHAPE,
                    f"topic {quote(topic)} is not "
                    "stations/{station_id}/readings with a valid station id",
                ),
                None,
            )
            return
        try:
            parsed = parse_payload(payload, station_id, self.max_payload_bytes)
        except PayloadError as exc:
            reject(exc.rejection, station_id)
            return
        station = self.stations.get(station_id)
        if station is None and self.auto_register:
            station = self._register(outcome, station_id, parsed.records)
        problem = station_rejection(station_id, None if station is None else station.active)
        if problem is not None:
            reject(problem, station_id)
            return
        assert station is not None
        for rejection in parsed.rejections:
            reject(rejection, station_id)
        self.add_records(outcome, station, parsed.records, received_at, reject)

    def add_records(
        self,
        outcome: Outcome,
        station: StationInfo,
        records: list[Record],
        received_at: datetime,
        reject: Callable[[Rejection, str | None], None],
    ) -> None:
        """The readings of ``records`` of a known, active station that pass the rules (time,
        value; a water sample's derived class added), into ``outcome``; the others to
        ``reject``. Every door's parsed records go through here (MQTT, HTTP, HJ 212)."""
        station_id = station.station_id
        for record in records:
            ts = record.ts if record.ts.tzinfo else record.ts.replace(tzinfo=station.timezone)
            late_or_early = timestamp_rejection(ts, received_at, self.max_future)
            if late_or_early is not None:
                reject(late_or_early, station_id)
                continue
            accepted: dict[str, float] = {}
            for parameter, value in record.values.items():
                refused = value_rejection(parameter, value, ts)
                if refused is not None:
                    reject(refused, station_id)
                else:
                    accepted[parameter] = value
            if station.kind in WATER_KINDS:
                derived = derived_water_class(accepted, station.waterbody)
                if derived is not None:
                    accepted["water_class"] = derived
            for parameter, value in accepted.items():
                outcome.readings.append((station_id, parameter, ts, value, received_at))

    def _register(self, outcome: Outcome, station_id: str, records: list[Record]) -> StationInfo:
        media = {CATALOGUE[p].medium for r in records for p in r.values}
        kind = "air" if "air" in media or not media else "surface_water"
        station = StationInfo(station_id, ZoneInfo("Asia/Shanghai"), kind, None, True)
        outcome.new_stations.append((station_id, f"auto-registered {station_id}", kind))
        self.stations.add(station)
        log.warning("auto-registering unknown station %s as %s", station_id, kind)
        return station


def _storable_topic(topic: str) -> str:
    """The topic as given, or quoted and cut when PostgreSQL text could not hold it."""
    if len(topic) <= _MAX_TOPIC_CHARS and "\x00" not in topic and topic.isascii():
        return topic
    if len(topic) <= _MAX_TOPIC_CHARS and "\x00" not in topic:
        try:
            topic.encode("utf-8")  # a lone surrogate cannot be stored
        except UnicodeEncodeError:
            pass
        else:
            return topic
    return quote(topic[:_MAX_TOPIC_CHARS])
