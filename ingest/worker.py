"""The ingest worker: MQTT v5 persistent session, shared subscription, manual acks after
commit, batches by count or time, retries while the database is away."""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from types import FrameType

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from psycopg_pool import ConnectionPool, PoolTimeout

from core.db import make_pool
from core.mqtt import mqtt_client
from core.settings import Settings
from ingest import metrics
from ingest.pipeline import store
from ingest.validate import Outcome, StationDirectory, Validator, load_stations
from schemas.payloads import Rejection
from storage.writer import DeadLetter, ReadingRow, WriteResult, prepare_connection

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # connection the message came on; acks never cross a reconnect
    received_at: float


class IngestWorker:
    """Consumes ``$share/<group>/stations/+/readings`` into TimescaleDB."""

    def __init__(self, settings: Settings, pool: ConnectionPool | None = None) -> None:
        if settings.database_url is None:
            raise RuntimeError("AIRWATER_DATABASE_URL is not set")
        self.settings = settings
        self.pool = pool or make_pool(
            settings.database_url, max_size=2, configure=prepare_connection, name="ingest"
        )
        # a registry change (a station deactivated) reaches the worker within 30 s
        self.stations = StationDirectory(lambda: load_stations(self.pool), max_age_s=30)
        self.validator = Validator(
            self.stations,
            max_payload_bytes=settings.max_payload_bytes,
            max_future=timedelta(seconds=settings.max_future_s),
            auto_register=settings.auto_register_stations,
        )
        self.topic = f"$share/{settings.ingest_share_group}/stations/+/readings"
        self.inbox: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.stop_requested_at = float("inf")
        self.generation = 0
        self.unacked = 0
        self.totals = {"stored": 0, "duplicates": 0, "dead_letters": 0, "batches": 0}
        self.client = mqtt_client(settings, settings.ingest_client_id, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)

    # --- MQTT callbacks (network thread) ----------------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: object,
        properties: object,
    ) -> None:
        if getattr(reason_code, "is_failure", False):
            log.error("broker refused the connection: %s", reason_code)
            return
        self.generation += 1
        log.info(
            "connected to the broker (session present: %s); subscribing to %s",
            flags.session_present,
            self.topic,
        )
        client.subscribe(self.topic, qos=1)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason_code: object,
        properties: object,
    ) -> None:
        # Messages of the lost connection are not acked: the session redelivers them.
        self.generation += 1
        if not self.stopping.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.inbox.put(
            Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self.generation, time.time())
        )

    # --- main loop ------------------------------------------------------------------
    def run(self) -> int:
        """Consume until SIGTERM/SIGINT; returns the process exit code."""
        receive_maximum = min(65535, 2 * self.settings.ingest_batch_messages)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.mqtt_session_expiry_s
        # Without it Mosquitto sends only max_inflight_messages (20) unacked messages.
        props.ReceiveMaximum = receive_maximum
        target = self.settings.mqtt
        self.pool.open()
        self.client.connect_async(
            target.host, target.port, keepalive=30, clean_start=False, properties=props
        )
        self.client.loop_start()
        log.info(
            "ingest worker %s started: batches of %d messages or %d ms, receive maximum %d",
            self.settings.ingest_client_id,
            self.settings.ingest_batch_messages,
            self.settings.ingest_batch_ms,
            receive_maximum,
        )
        exit_code = 0
        try:
            last_report = time.monotonic()
            while not self.stopping.is_set():
                batch = self._collect()
                if batch and not self._process(batch):
                    exit_code = 1
                    break
                if time.monotonic() - last_report >= 10:
                    self._report()
                    last_report = time.monotonic()
            # drain: what has arrived is committed and acked before leaving; at most the
            # receive maximum can be waiting, anything later is redelivered next start
            for _ in range(3):
                rest = self._collect(wait=False) if exit_code == 0 else []
                if not rest:
                    break
                if not self._process(rest):
                    exit_code = 1
        finally:
            self._report()
            self.client.disconnect()
            self.client.loop_stop()
            self.pool.close()
        return exit_code

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        if not self.stopping.is_set():
            log.info("stopping: draining the current batch")
            self.stop_requested_at = time.monotonic()
        self.stopping.set()

    def _collect(self, wait: bool = True) -> list[Message]:
        """Up to ingest_batch_messages messages, waiting at most ingest_batch_ms after the
        first one (and at most 0.5 s for the first, to notice a stop)."""
        limit = self.settings.ingest_batch_messages
        batch: list[Message] = []
        try:
            batch.append(self.inbox.get(timeout=0.5) if wait else self.inbox.get_nowait())
        except queue.Empty:
            return batch
        deadline = time.monotonic() + self.settings.ingest_batch_ms / 1000
        while len(batch) < limit:
            try:
                batch.append(self.inbox.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if not wait or remaining <= 0:
                break
            try:
                batch.append(self.inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _process(self, batch: list[Message]) -> bool:
        """Validate, write and commit the batch, then ack it; False if it could not commit
        before a stop was asked (the messages stay unacked and will be redelivered). A message
        the database refuses becomes a dead letter; the rest of the batch is stored."""
        metrics.MESSAGES_RECEIVED.inc(len(batch))
        metrics.UNACKED.set(len(batch))
        delay = 0.5
        while True:
            try:
                outcome = Outcome()
                message_ends: list[int] = []
                for message in batch:
                    self.validator.add_message(
                        outcome,
                        message.topic,
                        message.payload,
                        datetime.fromtimestamp(message.received_at, tz=UTC),
                    )
                    message_ends.append(len(outcome.readings))
                started = time.perf_counter()
                with self.pool.connection(timeout=5) as conn:
                    result = store(
                        conn,
                        outcome,
                        part_ends=message_ends,
                        refused=partial(_refused_message, batch),
                    )
                metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
                break
            except (psycopg.Error, PoolTimeout) as exc:
                # the database is away or not set up (data errors are isolated by the writer)
                metrics.DATABASE_ERRORS.inc()
                grace = self.settings.ingest_stop_grace_s
                if self.stopping.is_set() and time.monotonic() - self.stop_requested_at > grace:
                    log.error(
                        "database still unreachable at shutdown; %d messages left "
                        "unacknowledged for redelivery",
                        len(batch),
                    )
                    return False
                log.log(
                    logging.WARNING if isinstance(exc, psycopg.OperationalError) else logging.ERROR,
                    "database write failed (%s); retrying in %.1f s, %d messages "
                    "held unacknowledged (mids %s)",
                    _first_line(exc),
                    delay,
                    len(batch),
                    _mids(batch),
                )
                time.sleep(delay)
                delay = min(delay * 2, self.settings.db_retry_max_s)
        self._ack(batch)
        self._count(result, len(batch))
        return True

    def _ack(self, batch: list[Message]) -> None:
        generation = self.generation
        for message in batch:
            if message.generation == generation and message.qos > 0:
                self.client.ack(message.mid, message.qos)
        metrics.UNACKED.set(0)

    def _count(self, result: WriteResult, messages: int) -> None:
        metrics.BATCH_MESSAGES.observe(messages)
        self.totals["stored"] += result.inserted
        self.totals["duplicates"] += result.duplicates
        self.totals["dead_letters"] += result.dead_letters
        self.totals["batches"] += 1

    def _report(self) -> None:
        log.info(
            "totals: %(stored)d readings stored, %(duplicates)d duplicates, "
            "%(dead_letters)d dead letters in %(batches)d batches",
            self.totals,
        )


def _refused_message(
    batch: Sequence[Message], index: int, rows: Sequence[ReadingRow], rejection: Rejection
) -> DeadLetter:
    """The dead letter of a message whose readings the database refused (the whole message:
    it is what a station sent and what an operator replays)."""
    message = batch[index]
    log.error(
        "message mid %d on %s: %s: %s",
        message.mid,
        message.topic,
        rejection.reason,
        rejection.detail,
    )
    return DeadLetter(
        message.topic,
        rows[0][0],
        message.payload,
        rejection.reason,
        rejection.detail,
        datetime.fromtimestamp(message.received_at, tz=UTC),
    )


def _mids(batch: Sequence[Message]) -> str:
    mids = [message.mid for message in batch]
    return ", ".join(map(str, mids)) if len(mids) <= 10 else f"{mids[0]}..{mids[-1]}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def install_signal_handlers(worker: IngestWorker) -> None:
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
