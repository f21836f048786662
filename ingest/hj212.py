"""The HJ 212-2017 door: a TCP gateway for stations and data loggers that speak China's data
transmission standard for online monitoring systems (``airwater hj212``,
``python -m ingest.hj212``).

Each connection's bytes go through an incremental frame reader (standards.hj212): a bad frame
(header, length, CRC, size) is dropped and counted, never stored, and never disturbs another
connection. A good frame names its station by ``MN`` and proves it by ``PW`` (the per-station
password, storage.hj212); an unknown MN or a wrong PW is refused and logged, never stored. An
upload's values become records of the one intake (ingest.validate: time and value rules,
dead letters) and are written by the intake pipeline in one transaction, each value with its
station's data flag (``N``/``S`` count; ``F``, ``M``, ``D``, ``C``, ``T``, ``B`` are kept as
flag 'invalid', reason ``station:<letter>``, and count toward no figure). Only after the
commit does an upload that asked for it (Flag bit A) get its 9014 data response: a logger
that re-sends after a timeout stores nothing twice (the first value of a reading is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import psycopg
from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge
from psycopg_pool import ConnectionPool, PoolTimeout

from core.db import make_pool
from core.settings import Settings
from ingest.pipeline import store
from ingest.validate import Outcome, StationDirectory, StationInfo, Validator, load_stations
from schemas.payloads import Reason, Record, Rejection
from standards import hj212
from storage import hj212 as identities
from storage.writer import VALID, DeadLetter, ReadingRow, StoredFlag, prepare_connection

log = logging.getLogger(__name__)

FRAMES = MetricCounter(
    "airwater_hj212_frames", "HJ 212 frames by outcome (stored, refused reason)", ["outcome"]
)
CONNECTIONS = Gauge("airwater_hj212_connections", "Open HJ 212 connections")

SOURCE = "hj212"
# Errors of a database that is away: the upload is left unanswered, the logger sends again.
DATABASE_AWAY = (psycopg.Error, PoolTimeout)
# Which system (ST) a station kind may send as.
SYSTEM_OF_KIND = {"air": hj212.AMBIENT_AIR, "surface_water": hj212.SURFACE_WATER}
# An identity looked up is trusted this long (a rotated or revoked password takes effect
# within it).
IDENTITY_TTL_S = 30.0


@dataclass
class Upload:
    """What one authenticated upload becomes: readings by the flag they are stored with, the
    dead letters of refused values, and what was left out on purpose (counted)."""

    outcomes: dict[StoredFlag, Outcome] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)

    def outcome(self, flag: StoredFlag) -> Outcome:
        return self.outcomes.setdefault(flag, Outcome())


def stored_flag(letter: str | None) -> StoredFlag:
    """How a value with the station's data flag ``letter`` is stored (None or unknown: as
    the standard's N, normal, when absent; an unknown letter is not valid)."""
    if letter is None:
        return VALID
    flag = hj212.DATA_FLAGS.get(letter)
    if flag is not None and flag.valid:
        return VALID
    return ("invalid", f"station:{letter[:8]}")


def records_by_flag(
    segment: hj212.Segment, skipped: Counter[str]
) -> dict[StoredFlag, list[Record]]:
    """The readings of an upload (its command's primary value kind: Rtd or Avg) as records at
    the upload's DataTime (station local time), grouped by the flag they are stored with;
    factor codes we do not keep, other value kinds and non-numbers are counted in
    ``skipped``."""
    command = hj212.COMMANDS[segment.cn]
    assert segment.data_time is not None
    values: dict[StoredFlag, dict[str, float]] = defaultdict(dict)
    for item in segment.values:
        if item.kind != command.primary:
            continue
        if item.value is None:
            skipped["not_a_number"] += 1
            continue
        converted = hj212.stored_value(item.code, item.value)
        if converted is None:
            skipped["unknown_code"] += 1
            continue
        parameter, value = converted
        values[stored_flag(item.flag)][parameter] = value
    return {flag: [Record(segment.data_time, found)] for flag, found in values.items() if found}


class Gateway:
    """The TCP server and what each frame becomes."""

    def __init__(self, settings: Settings, pool: ConnectionPool | None = None) -> None:
        if settings.database_url is None:
            raise RuntimeError("AIRWATER_DATABASE_URL is not set")
        self.settings = settings
        self.pool = pool or make_pool(
            settings.database_url, max_size=4, configure=prepare_connection, name="hj212"
        )
        self.stations = StationDirectory(lambda: load_stations(self.pool), max_age_s=30)
        self.validator = Validator(
            self.stations, max_future=timedelta(seconds=settings.max_future_s), source=SOURCE
        )
        self.stored_commands = frozenset(settings.hj212_commands)
        self._identities: dict[str, tuple[identities.MnIdentity | None, float]] = {}
        self.counts: Counter[str] = Counter()
        self.server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # --- the server -----------------------------------------------------------------------

    async def start(self) -> int:
        """Listen; returns the port (settings.hj212_port, or a free one for 0)."""
        self.pool.open()
        self.server = await asyncio.start_server(
            self._serve_connection,
            self.settings.hj212_host,
            self.settings.hj212_port,
            limit=hj212.MAX_SEGMENT_LENGTH + 64,
        )
        port = int(self.server.sockets[0].getsockname()[1])
        log.info(
            "HJ 212 gateway listening on %s:%d (stores commands %s)",
            self.settings.hj212_host,
            port,
            ", ".join(sorted(self.stored_commands)),
        )
        return port

    async def stop(self) -> None:
        """Stop listening, close every connection (a logger re-sends what was unanswered),
        then the pool."""
        if self.server is not None:
            self.server.close()
            for writer in list(self._writers):
                writer.close()
            await self.server.wait_closed()
            while self._writers:  # each connection's task ends on its closed stream
                await asyncio.sleep(0.01)
        await asyncio.to_thread(self.pool.close)

    def _count(self, outcome: str, n: int = 1) -> None:
        self.counts[outcome] += n
        FRAMES.labels(outcome).inc(n)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        frames = hj212.FrameReader()
        CONNECTIONS.inc()
        self._writers.add(writer)
        try:
            while True:
                try:
                    data = await asyncio.wait_for(
                        reader.read(65536), timeout=self.settings.hj212_idle_s
                    )
                except TimeoutError:
                    self._count("idle_closed")
                    break
                if not data:
                    for result in frames.close():
                        self._count(f"frame_{result.reason}")
                    break
                for result in frames.feed(data):
                    if result.segment is None:
                        self._count(f"frame_{result.reason}")
                        continue
                    reply = await asyncio.to_thread(
                        self.handle_segment, result.segment, datetime.now(UTC)
                    )
                    if reply is not None:
                        writer.write(reply)
                        await writer.drain()
        except (ConnectionError, OSError) as exc:
            log.debug("HJ 212 connection %s ended: %s", peer, exc)
        except DATABASE_AWAY as exc:
            self._count("database_away")
            log.warning("HJ 212 upload from %s left unanswered: database away (%s)", peer, exc)
        finally:
            CONNECTIONS.dec()
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    # --- one frame ------------------------------------------------------------------------

    def identity(self, mn: str) -> identities.MnIdentity | None:
        """The station an MN names (cached IDENTITY_TTL_S; unknown MNs too)."""
        cached = self._identities.get(mn)
        if cached is not None and time.monotonic() - cached[1] < IDENTITY_TTL_S:
            return cached[0]
        with self.pool.connection(timeout=5) as conn:
            found = identities.station_of_mn(conn, mn)
        if len(self._identities) > 100_000:  # a flood of made-up MNs must not grow memory
            self._identities.clear()
        self._identities[mn] = (found, time.monotonic())
        return found

    def handle_segment(self, text: str, received_at: datetime) -> bytes | None:
        """Authenticate, convert and store one good frame's data segment; the reply frame to
        send (after the commit), if the upload asked for one. Raises only for a database that
        is away (the connection is then closed unanswered and the logger sends again)."""
        try:
            segment = hj212.parse_segment(text)
        except hj212.SegmentError as exc:
            # who sent it is unknown: nothing is stored; a known station's is a dead letter
            sender = hj212.sender_of(text)
            found = self.identity(sender[0]) if sender else None
            if sender is not None and found is not None and found.accepts(sender[1]):
                self._dead_letter(
                    found.station_id, sender[0], text, exc.reason, exc.detail, received_at
                )
                self._count("dead_letter")
            else:
                self._count(f"segment_{exc.reason}")
            return None
        found = self.identity(segment.mn)
        if found is None or not found.accepts(segment.pw):
            why = "unknown_mn" if found is None else "refused_pw"
            self._count(why)
            log.warning("HJ 212 upload refused (%s): MN %r", why, segment.mn[:24])
            return None
        if segment.cn not in hj212.UPLOAD_COMMANDS:
            self._count("unknown_command")
            if hj212.needs_response(segment.flag):
                return hj212.encode_frame(
                    hj212.request_response(segment.qn, segment.st, segment.mn, segment.pw, 8)
                )
            return None
        station = self.stations.get(found.station_id)
        if station is None:
            self._count("unknown_station")
            return None
        if SYSTEM_OF_KIND.get(station.kind) != segment.st:
            self._dead_letter(
                station.station_id,
                segment.mn,
                text,
                Reason.INVALID_SHAPE,
                f"ST={segment.st} is not the system of a {station.kind} station "
                f"(ST={SYSTEM_OF_KIND.get(station.kind, '?')})",
                received_at,
            )
            self._count("dead_letter")
            return self._reply(segment)
        if segment.cn not in self.stored_commands:
            self._count(f"not_stored_{segment.cn}")
            return self._reply(segment)
        if segment.data_time is None:
            self._dead_letter(
                station.station_id,
                segment.mn,
                text,
                Reason.TIMESTAMP_MISSING,
                "the upload has no DataTime",
                received_at,
            )
            self._count("dead_letter")
            return self._reply(segment)
        self._store(station, segment, text, received_at)
        self._count("stored")
        return self._reply(segment)

    def _reply(self, segment: hj212.Segment) -> bytes | None:
        if not hj212.needs_response(segment.flag):
            return None
        return hj212.encode_frame(
            hj212.data_response(segment.qn, segment.st, segment.mn, segment.pw)
        )

    def _store(
        self, station: StationInfo, segment: hj212.Segment, text: str, received_at: datetime
    ) -> None:
        upload = Upload()
        topic = f"hj212/{segment.mn}/{segment.cn}"
        payload = text.encode(hj212.SEGMENT_ENCODING, errors="replace")

        def reject(rejection: Rejection, station_id: str | None) -> None:
            upload.outcome(VALID).dead_letters.append(
                DeadLetter(
                    topic,
                    station_id,
                    payload,
                    rejection.reason,
                    rejection.detail[:1000],
                    received_at,
                    SOURCE,
                )
            )

        for flag, records in records_by_flag(segment, upload.skipped).items():
            self.validator.add_records(upload.outcome(flag), station, records, received_at, reject)
        # an hourly value stands for its whole hour whatever the station's live interval
        coverage_s = 3600 if segment.cn == hj212.HOURLY_DATA else 0
        with self.pool.connection(timeout=5) as conn, conn.transaction():
            for flag, outcome in upload.outcomes.items():
                store(
                    conn,
                    outcome,
                    refused=partial(_refused_value, topic, payload, received_at),
                    live=flag == VALID,
                    coverage_s=coverage_s,
                    flag=flag,
                )
        for reason, n in upload.skipped.items():
            self._count(f"skipped_{reason}", n)

    def _dead_letter(
        self,
        station_id: str,
        mn: str,
        text: str,
        reason: str,
        detail: str,
        received_at: datetime,
    ) -> None:
        letter = DeadLetter(
            f"hj212/{mn[:24]}",
            station_id,
            text.encode(hj212.SEGMENT_ENCODING, errors="replace"),
            reason,
            detail[:1000],
            received_at,
            SOURCE,
        )
        with self.pool.connection(timeout=5) as conn, conn.transaction():
            store(conn, Outcome(dead_letters=[letter]), refused=_never_refused, live=False)


def _refused_value(
    topic: str,
    payload: bytes,
    received_at: datetime,
    part: int,
    rows: object,
    rejection: Rejection,
) -> DeadLetter:
    """The dead letter of a value the database refused."""
    return DeadLetter(topic, None, payload, rejection.reason, rejection.detail, received_at, SOURCE)


def _never_refused(part: int, rows: Sequence[ReadingRow], rejection: Rejection) -> DeadLetter:
    raise AssertionError("a batch without readings has no part to refuse")


async def serve(settings: Settings, stop: asyncio.Event) -> int:
    """Run the gateway until ``stop`` is set; returns 0."""
    gateway = Gateway(settings)
    try:
        await gateway.start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.hj212_host, settings.hj212_port, exc)
        return 1
    await stop.wait()
    await gateway.stop()
    log.info("HJ 212 gateway stopped; frames: %s", dict(gateway.counts))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airwater hj212",
        description="HJ 212-2017 gateway: stations and data loggers upload over TCP "
        "(AIRWATER_HJ212_HOST, AIRWATER_HJ212_PORT, default 0.0.0.0:9212); each station is "
        "known by its MN and password (`airwater stations hj212 assign|issue`). Uploads of "
        "the commands in AIRWATER_HJ212_COMMANDS (default 2061, hourly data) are stored "
        "through the one intake; a data response (9014) is sent after the commit.",
    )
    parser.add_argument("--port", type=int, help="overrides AIRWATER_HJ212_PORT (0: a free one)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings(**({"hj212_port": args.port} if args.port is not None else {}))
    if settings.database_url is None:
        parser.error("AIRWATER_DATABASE_URL must be set (or use `airwater run`)")

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        return await serve(settings, stop)

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
