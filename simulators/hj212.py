"""Simulated stations that speak HJ 212-2017 to the gateway (ingest.hj212) instead of MQTT.

Each station is a data logger: one TCP connection to the gateway (re-opened with a growing
back-off when it drops), at the top of every hour one hourly upload (CN=2061, Flag=5: 2017,
answer asked) of the hour just ended, then a wait for the gateway's 9014 data response; an
upload left unanswered for ``reply_timeout_s`` is sent again (``resends`` times, as a logger's
OverTime/ReCount settings say), and one still unanswered stays in the station's backlog and
goes out again, oldest first, once the link is back — nothing is dropped while the gateway is
away, and the gateway stores a repeated upload once.

The hourly value of an item is the mean of the values the station would have published over
MQTT in that hour (simulators.model, every ``interval_s`` from the top of the hour), so an
hour received over HJ 212 equals the hourly mean of the same station over MQTT.

Between hourly uploads the logger sends its real-time values (CN=2011, Flag=4: no answer)
every KEEPALIVE_S, as loggers do: the gateway closes a connection silent for
AIRWATER_HJ212_IDLE_S (600 s), and stores only hourly uploads unless told otherwise.

All stations run on one asyncio loop (a task each); ``Hj212Runner.run`` runs that loop on the
calling thread until a ``threading.Event`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from core.hj212_secret import valid_mn
from schemas.stations import Station
from simulators.model import DEFAULT_SEED, reports_class_only, station_values
from standards import hj212

log = logging.getLogger(__name__)

# HJ 212 factor code of each parameter we simulate (the inverse of the gateway's table).
CODE_OF_PARAMETER: Mapping[str, str] = {
    entry.parameter: code for code, entry in hj212.PARAMETER_CODES.items()
}
SYSTEM_OF_KIND = {"air": hj212.AMBIENT_AIR, "surface_water": hj212.SURFACE_WATER}
FLAG_ASK_RESPONSE = hj212.FLAG_2017_NO_ACK | hj212.FLAG_A  # Flag=5
KEEPALIVE_S = 300.0  # real-time data between hourly uploads (the gateway's idle limit: 600 s)
REPLY_TIMEOUT_S = 10.0  # a logger's OverTime
RESENDS = 3  # a logger's ReCount
BACKLOG_HOURS = 72  # unanswered hourly uploads a logger keeps for later
_BACKOFF_MAX_S = 30.0
_DECIMALS = 4  # of an hourly mean


class Hj212CredentialsError(ValueError):
    """A credentials file that cannot be read."""


@dataclass(frozen=True, slots=True)
class Hj212Identity:
    """What a data logger is configured with: its device number and password."""

    mn: str
    password: str


def load_hj212_credentials(path: Path) -> dict[str, Hj212Identity]:
    """Station id → MN and password, from JSON ``{station_id: {"mn": …, "password": …}}``
    (what ``airwater run`` writes; the CLI's ``stations hj212 assign|issue`` give the same)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise Hj212CredentialsError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise Hj212CredentialsError(f"{path}: expected an object of station id → {{mn, password}}")
    found: dict[str, Hj212Identity] = {}
    for station_id, entry in document.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("mn"), str)
            and isinstance(entry.get("password"), str)
        ):
            raise Hj212CredentialsError(f"{path}: {station_id!r}: expected {{mn, password}}")
        if not valid_mn(entry["mn"]):
            raise Hj212CredentialsError(f"{path}: {station_id!r}: {entry['mn']!r} is not an MN")
        found[station_id] = Hj212Identity(entry["mn"], entry["password"])
    return found


def can_speak_hj212(station: Station) -> bool:
    """Air stations and sections that report their items; a section that reports only its
    class has no factor code for it."""
    return station.kind in SYSTEM_OF_KIND and not (
        station.kind == "surface_water" and reports_class_only(station)
    )


# --- what a logger sends ----------------------------------------------------------------------


def sample_times(hour_start: datetime, interval_s: float) -> list[datetime]:
    """The instants of an hour at which the station publishes over MQTT: every ``interval_s``
    from the top of the hour (once for an interval of an hour or more)."""
    count = max(1, math.ceil(3600 / interval_s))
    return [hour_start + timedelta(seconds=k * interval_s) for k in range(count)]


def hourly_values(
    station: Station, hour_start: datetime, interval_s: float, seed: int = DEFAULT_SEED
) -> dict[str, float]:
    """The hourly means of the station's values over the hour from ``hour_start`` (aware): the
    mean of what it publishes live in that hour, rounded to _DECIMALS."""
    sums: dict[str, float] = {}
    times = sample_times(hour_start, interval_s)
    for ts in times:
        for parameter, value in station_values(station, ts, seed).items():
            sums[parameter] = sums.get(parameter, 0.0) + value
    return {p: round(total / len(times), _DECIMALS) for p, total in sums.items()}


def _local(station: Station, ts: datetime) -> datetime:
    return ts.astimezone(ZoneInfo(station.timezone))


def upload_segment(
    station: Station,
    identity: Hj212Identity,
    cn: str,
    data_time: datetime,
    values: Mapping[str, float],
    qn: str,
    flag: int,
) -> str:
    """A data segment of an upload: values by factor code, DataTime in the station's local
    time; parameters without a factor code are left out."""
    kind = hj212.COMMANDS[cn].primary
    items = ";".join(
        f"{CODE_OF_PARAMETER[p]}-{kind}={v!r},{CODE_OF_PARAMETER[p]}-Flag=N"
        for p, v in values.items()
        if p in CODE_OF_PARAMETER
    )
    return (
        f"QN={qn};ST={SYSTEM_OF_KIND[station.kind]};CN={cn};PW={identity.password};"
        f"MN={identity.mn};Flag={flag};CP=&&DataTime={_local(station, data_time):%Y%m%d%H%M%S};"
        f"{items}&&"
    )


def _qn(station: Station, now: datetime) -> str:
    """QN: the request's time to the millisecond, YYYYMMDDhhmmsszzz (station local time)."""
    local = _local(station, now)
    return f"{local:%Y%m%d%H%M%S}{local.microsecond // 1000:03d}"


@dataclass(frozen=True, slots=True)
class Upload:
    """An hourly upload waiting for its data response."""

    hour_start: datetime
    qn: str
    frame: bytes


@dataclass
class Hj212Stats:
    """What the loggers did."""

    sent: Counter[str] = field(default_factory=Counter)  # hourly | resent | realtime
    answered: int = 0
    connects: int = 0
    backlog: int = 0  # hourly uploads still unanswered (at the last look)


# --- one logger -------------------------------------------------------------------------------


class DataLogger:
    """One station's connection to the gateway and its backlog of unanswered uploads."""

    def __init__(self, runner: Hj212Runner, station: Station, identity: Hj212Identity) -> None:
        self.runner = runner
        self.station = station
        self.identity = identity
        self.backlog: deque[Upload] = deque(maxlen=BACKLOG_HOURS)
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._replies: dict[str, asyncio.Future[None]] = {}
        self._backoff_s = 1.0
        self._lock = asyncio.Lock()  # one upload in flight at a time
        self._connecting = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> bool:
        """Open the connection if it is not open; False (and a longer back-off next time) if
        the gateway cannot be reached."""
        async with self._connecting:
            if self.connected:
                return True
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.runner.host, self.runner.port), timeout=10
                )
            except (OSError, TimeoutError) as exc:
                log.debug("%s cannot reach the gateway: %s", self.station.station_id, exc)
                return False
            self._writer, self._backoff_s = writer, 1.0
            self._reading = asyncio.create_task(self._read(reader, writer))
            self.runner.stats.connects += 1
            return True

    async def connect_with_backoff(self, stop: Callable[[], bool]) -> bool:
        while not stop():
            if await self.connect():
                return True
            await asyncio.sleep(self._backoff_s)
            self._backoff_s = min(self._backoff_s * 2.0, _BACKOFF_MAX_S)
        return False

    async def keep_connected(self, stop: Callable[[], bool]) -> None:
        """Hold the connection open: opened again, with back-off, whenever it drops."""
        while not stop():
            if not await self.connect_with_backoff(stop) or self._reading is None:
                return
            while not stop() and not self._reading.done():
                await asyncio.wait({self._reading}, timeout=1.0)
            if not stop():
                log.info("%s: link to the gateway dropped, reconnecting", self.station.station_id)

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = hj212.FrameReader()
        try:
            while data := await reader.read(4096):
                for result in frames.feed(data):
                    if result.segment is None:
                        continue
                    with contextlib.suppress(hj212.SegmentError):
                        reply = hj212.parse_segment(result.segment)
                        waiting = self._replies.get(reply.qn)
                        if reply.cn == hj212.DATA_RESPONSE and waiting and not waiting.done():
                            waiting.set_result(None)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()  # the gateway closed it (idle, restart): reconnect when needed

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        if self._reading is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        self._writer = None

    async def _send(self, frame: bytes) -> bool:
        if not self.connected:
            return False
        assert self._writer is not None
        try:
            self._writer.write(frame)
            await self._writer.drain()
        except (ConnectionError, OSError):
            self._writer.close()
            return False
        return True

    async def deliver(self, upload: Upload, stop: Callable[[], bool]) -> bool:
        """Send an upload and wait for its data response; sent again when unanswered within
        the reply timeout, up to RESENDS times (reconnecting in between when the link is
        gone). True once answered."""
        async with self._lock:
            for attempt in range(1 + self.runner.resends):
                if stop() or not await self.connect_with_backoff(stop):
                    return False
                answered = asyncio.get_running_loop().create_future()
                self._replies[upload.qn] = answered
                try:
                    if await self._send(upload.frame):
                        self.runner.stats.sent["resent" if attempt else "hourly"] += 1
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(answered, self.runner.reply_timeout_s)
                            self.runner.stats.answered += 1
                            return True
                finally:
                    self._replies.pop(upload.qn, None)
            return False

    async def flush(self, stop: Callable[[], bool]) -> None:
        """Send the backlog, oldest first, until it is empty or an upload stays unanswered."""
        while self.backlog and not stop():
            upload = self.backlog[0]
            if not await self.deliver(upload, stop):
                return
            if self.backlog and self.backlog[0] is upload:  # not pushed out meanwhile
                self.backlog.popleft()

    async def send_realtime(self, now: datetime) -> None:
        """The current values as real-time data, no answer asked (keeps the link in use)."""
        if self._lock.locked():
            return  # an upload is in flight: the link is in use anyway
        segment = upload_segment(
            self.station,
            self.identity,
            hj212.REALTIME_DATA,
            now,
            station_values(self.station, now, self.runner.seed),
            _qn(self.station, now),
            hj212.FLAG_2017_NO_ACK,
        )
        if await self._send(hj212.encode_frame(segment)):
            self.runner.stats.sent["realtime"] += 1


# --- the loggers of a network -----------------------------------------------------------------


class Hj212Runner:
    """The data loggers of ``stations`` (those with an identity), sending to host:port."""

    def __init__(
        self,
        stations: Iterable[Station],
        identities: Mapping[str, Hj212Identity],
        host: str,
        port: int,
        interval_s: float = 60.0,
        seed: int = DEFAULT_SEED,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
        resends: int = RESENDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host, self.port = host, port
        self.interval_s = interval_s
        self.seed = seed
        self.reply_timeout_s = reply_timeout_s
        self.resends = resends
        self.clock = clock
        self.stats = Hj212Stats()
        self.loggers = {
            s.station_id: DataLogger(self, s, identities[s.station_id])
            for s in stations
            if s.station_id in identities and can_speak_hj212(s)
        }

    def upload(self, logger: DataLogger, hour_start: datetime) -> Upload:
        """The hourly upload of the hour from ``hour_start`` (aware, top of an hour)."""
        qn = _qn(logger.station, datetime.fromtimestamp(self.clock(), tz=UTC))
        values = hourly_values(logger.station, hour_start, self.interval_s, self.seed)
        segment = upload_segment(
            logger.station,
            logger.identity,
            hj212.HOURLY_DATA,
            hour_start,
            values,
            qn,
            FLAG_ASK_RESPONSE,
        )
        return Upload(hour_start, qn, hj212.encode_frame(segment))

    async def send_hour(
        self, hour_start: datetime, stop: Callable[[], bool] = lambda: False
    ) -> int:
        """Every logger queues the upload of the hour from ``hour_start`` and sends its
        backlog; returns how many hourly uploads are still unanswered."""
        for logger in self.loggers.values():
            logger.backlog.append(self.upload(logger, hour_start))
        await asyncio.gather(*(logger.flush(stop) for logger in self.loggers.values()))
        self.stats.backlog = sum(len(logger.backlog) for logger in self.loggers.values())
        return self.stats.backlog

    async def close(self) -> None:
        await asyncio.gather(*(logger.close() for logger in self.loggers.values()))

    async def serve(self, stop: threading.Event, duration_s: float | None = None) -> None:
        """Connect every logger, then send each hour at its end and real-time data in
        between, until ``stop`` is set or ``duration_s`` has passed."""
        started = time.monotonic()

        def stopping() -> bool:
            over = duration_s is not None and time.monotonic() - started >= duration_s
            return stop.is_set() or over

        await asyncio.gather(*(logger.connect() for logger in self.loggers.values()))
        links = [
            asyncio.create_task(logger.keep_connected(stopping)) for logger in self.loggers.values()
        ]
        connected = sum(logger.connected for logger in self.loggers.values())
        log.info(
            "HJ 212: %d of %d loggers connected to %s:%d",
            connected,
            len(self.loggers),
            self.host,
            self.port,
        )
        next_hour = math.floor(self.clock() / 3600) * 3600 + 3600
        next_keepalive = self.clock() + KEEPALIVE_S
        hourly: asyncio.Task[int] | None = None
        try:
            while not stopping():
                now = self.clock()
                if now >= next_hour:
                    hour_start = datetime.fromtimestamp(next_hour - 3600, tz=UTC)
                    next_hour += 3600
                    if hourly is None or hourly.done():
                        hourly = asyncio.create_task(self.send_hour(hour_start, stopping))
                    else:  # the last hour still being delivered: queue this one behind it
                        for logger in self.loggers.values():
                            logger.backlog.append(self.upload(logger, hour_start))
                if now >= next_keepalive:
                    next_keepalive = now + KEEPALIVE_S
                    at = datetime.fromtimestamp(int(now), tz=UTC)
                    for logger in self.loggers.values():
                        await logger.send_realtime(at)
                await asyncio.sleep(min(0.5, max(0.0, min(next_hour, next_keepalive) - now)))
        finally:
            for task in [*links, hourly]:
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await self.close()

    def run(self, stop: threading.Event, duration_s: float | None = None) -> None:
        """``serve`` on a new event loop on this thread."""
        asyncio.run(self.serve(stop, duration_s))
