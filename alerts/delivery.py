"""The delivery worker: takes due events from the outbox (``alert_events``) and delivers each
on its subscription's channel — webhook, MQTT or the live stream — at least once.

Each delivery runs inside the transaction that claimed the event (``FOR UPDATE SKIP LOCKED``):
a worker that dies mid-delivery leaves the event pending, and it is sent again, with the same
idempotency key, once the lock is gone. Events of one (subscription, station) go out in order;
events of different ones go out concurrently, so one slow subscriber holds up nobody else. An
event whose handling fails unexpectedly is recorded as a failed attempt like any other, so it
can neither stop the worker nor be claimed again at once, forever.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import Counter, Gauge, Histogram
from psycopg_pool import ConnectionPool, PoolTimeout

from alerts.silence import check_silence
from alerts.subscriptions import DEFAULT_MQTT_TOPIC
from alerts.webhook import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Allowance,
    WebhookFailed,
    make_http_client,
    post_webhook,
    resolve_target,
    sign,
    verify_signature,
    webhook_target_allowed,
)
from core.db import make_pool
from core.mqtt import mqtt_client
from core.settings import Settings
from storage.alert_events import (
    CHANNEL,
    PendingEvent,
    claim_next_due_event,
    claimed_event,
    listen_for_new_events,
    record_delivered,
    record_failed,
    seconds_until_next_retry,
)
from storage.text import storable_text

__all__ = [
    "CHANNEL",
    "DeliveryFailed",
    "DeliveryWorker",
    "PendingEvent",
    "event_body",
    "install_signal_handlers",
    "retry_delay",
    "verify_signature",
    "webhook_headers",
    "webhook_target_allowed",
]

log = logging.getLogger(__name__)

DELIVERED = Counter("airwater_alerts_delivered", "Alert events delivered", ["channel"])
FAILED_ATTEMPTS = Counter(
    "airwater_alerts_delivery_failures", "Failed delivery attempts", ["channel"]
)
DEAD = Counter("airwater_alerts_dead", "Alert events given up on (dead)", ["channel"])
LATENCY = Histogram(
    "airwater_alerts_delivery_latency_seconds",
    "From the event's creation to its delivery",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
IN_FLIGHT = Gauge("airwater_alerts_deliveries_in_flight", "Deliveries being attempted now")


class DeliveryFailed(Exception):
    """One attempt failed; the message is what ``last_error`` records."""


def internal_error(exc: BaseException) -> str:
    """The ``last_error`` of an attempt that failed on a bug rather than on the channel."""
    return f"internal error: {type(exc).__name__}: {_first_line(exc)}"


def describe(event: PendingEvent) -> str:
    return (
        f"event {event.event_id} ({event.kind}, station {event.station_id}, subscription "
        f"{event.subscription_id} {event.subscription_name!r}) by {event.channel}"
    )


def retry_delay(attempts: int, backoff_s: float, backoff_max_s: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: backoff_s·2^(attempts−1),
    capped at backoff_max_s."""
    exponent = min(max(attempts - 1, 0), 62)  # 2**62 s is already beyond any cap
    return float(min(backoff_s * 2.0**exponent, backoff_max_s))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def event_body(event: PendingEvent) -> bytes:
    """The JSON document sent by webhook and MQTT (UTF-8, compact)."""
    document = {
        "event_id": event.event_id,
        "idempotency_key": str(event.idempotency_key),
        "kind": event.kind,
        "subscription_id": event.subscription_id,
        "subscription_name": event.subscription_name,
        "station_id": event.station_id,
        "target": event.target,
        "parameter": event.parameter,
        "value": _finite(event.value),
        "threshold": _finite(event.threshold),
        "observed_at": _iso(event.observed_at),
        "created_at": _iso(event.created_at),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def webhook_headers(
    event: PendingEvent, body: bytes, secret: str, timestamp: int
) -> dict[str, str]:
    """Headers of a webhook POST; ``timestamp`` in Unix seconds."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "airwater-alerts",
        "Idempotency-Key": str(event.idempotency_key),
        EVENT_HEADER: str(event.event_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def mqtt_topic(event: PendingEvent) -> str:
    """The subscription's topic, or by default ``alerts/{kind}/{station_id}``."""
    return event.mqtt_topic or DEFAULT_MQTT_TOPIC.format(
        kind=event.kind, station_id=event.station_id
    )


class MqttPublisher:
    """One long-lived MQTT v5 connection; a publish counts once its PUBACK arrives."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        target = settings.mqtt
        self.host, self.port = target.host, target.port
        self.client = mqtt_client(settings, client_id)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._reasons: dict[int, mqtt.ReasonCode] = {}
        self._reasons_lock = threading.Lock()
        self.client_id = client_id
        self._stopping = False

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason_code: mqtt.ReasonCode,
        properties: object,
    ) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker refused the connection: %s", reason_code)
        else:
            log.info(
                "connected to the MQTT broker %s:%d as %s", self.host, self.port, self.client_id
            )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason_code: object,
        properties: object,
    ) -> None:
        if self._stopping:
            log.info("disconnected from the MQTT broker")
        else:
            log.warning("disconnected from the MQTT broker (%s); reconnecting", reason_code)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: mqtt.ReasonCode,
        properties: object,
    ) -> None:
        # Called before the message is marked published, so the waiter finds the reason.
        with self._reasons_lock:
            self._reasons[mid] = reason_code

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=True)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, idempotency_key: str, timeout_s: float) -> None:
        """Publish at QoS 1 and wait for the PUBACK; raises DeliveryFailed."""
        if not self.client.is_connected():
            raise DeliveryFailed(f"not connected to the MQTT broker {self.host}:{self.port}")
        properties = Properties(PacketTypes.PUBLISH)
        properties.ContentType = "application/json"
        properties.UserProperty = [("idempotency-key", idempotency_key)]
        try:
            info = self.client.publish(topic, payload, qos=1, properties=properties)
            info.wait_for_publish(timeout=timeout_s)
        except (ValueError, RuntimeError) as exc:
            raise DeliveryFailed(f"MQTT publish to {topic!r} failed: {exc}") from None
        with self._reasons_lock:
            reason = self._reasons.pop(info.mid, None)
        if not info.is_published():
            raise DeliveryFailed(f"no PUBACK from the MQTT broker within {timeout_s:g} s")
        if reason is not None and reason.is_failure:
            raise DeliveryFailed(f"MQTT broker refused the publish to {topic!r}: {reason}")


class Wakeup:
    """A generation counter that idle delivery threads wait on; bumped by every NOTIFY."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        with self._condition:
            self.generation += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout_s: float) -> None:
        """Return once the generation differs from ``seen`` or after ``timeout_s``."""
        with self._condition:
            self._condition.wait_for(lambda: self.generation != seen, timeout=timeout_s)


@dataclass(slots=True)
class Attempt:
    """What one attempt came to: ``error`` None means delivered."""

    error: str | None = None
    give_up: bool = False  # dead now, whatever the attempts left
    attempted: bool = True  # counts as an attempt


@dataclass(slots=True)
class Outcome:
    """What was recorded for a claimed event: delivered, retry (pending again) or dead."""

    state: str
    attempts: int
    took_s: float
    error: str | None = None
    retry_in_s: float = 0.0
    latency_s: float = 0.0


class DeliveryWorker:
    """Delivers due outbox events with ``delivery_concurrency`` threads until stopped."""

    def __init__(
        self,
        settings: Settings,
        client_id: str,
        poll_s: float = 1.0,
        pool: ConnectionPool | None = None,
    ) -> None:
        if settings.database_url is None:
            raise RuntimeError("AIRWATER_DATABASE_URL is not set")
        self.settings = settings
        self.database_url = settings.database_url
        self.poll_s = poll_s
        self.pool = pool or make_pool(
            settings.database_url, max_size=settings.delivery_concurrency + 1, name="alerts"
        )
        self.allowance = Allowance.parse(settings.webhook_allow)
        self.http = make_http_client(settings.webhook_timeout_s)
        self.mqtt = MqttPublisher(settings, client_id) if settings.mqtt_url else None
        self.wakeup = Wakeup()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.totals = {"delivered": 0, "failed": 0, "dead": 0}
        self._totals_lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------------
    def run(self) -> int:
        """Deliver until SIGTERM/SIGINT, finishing the deliveries in flight; returns 0."""
        self.pool.open()
        if self.mqtt is not None:
            self.mqtt.start()
        else:
            log.warning("AIRWATER_MQTT_URL is not set: events of MQTT subscriptions will fail")
        for index in range(self.settings.delivery_concurrency):
            thread = threading.Thread(
                target=self._delivery_loop, name=f"delivery-{index + 1}", daemon=False
            )
            thread.start()
            self.threads.append(thread)
        log.info(
            "alert delivery started: %d concurrent deliveries, up to %d attempts, backoff "
            "%g s doubling to %g s, webhook timeout %g s",
            self.settings.delivery_concurrency,
            self.settings.delivery_max_attempts,
            self.settings.delivery_backoff_s,
            self.settings.delivery_backoff_max_s,
            self.settings.webhook_timeout_s,
        )
        try:
            self._listen()
        finally:
            self.stopping.set()
            self.wakeup.notify()
            for thread in self.threads:
                thread.join()
            if self.mqtt is not None:
                self.mqtt.stop()
            self.http.close()
            self.pool.close()
            log.info(
                "alert delivery stopped: %(delivered)d delivered, %(failed)d failed attempts, "
                "%(dead)d dead",
                self.totals,
            )
        return 0

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        if not self.stopping.is_set():
            log.info("stopping: finishing the deliveries in flight")
        self.stopping.set()
        self.wakeup.notify()

    # --- main thread: LISTEN, and the silence timer --------------------------------------------
    def _listen(self) -> None:
        connection: psycopg.Connection | None = None
        retry_s = 0.5
        next_silence_check = time.monotonic() + self.settings.silence_check_s
        try:
            while not self.stopping.is_set():
                try:
                    if connection is None:
                        # keepalives: a connection lost without a reset is noticed
                        connection = psycopg.connect(
                            self.database_url,
                            autocommit=True,
                            connect_timeout=5,
                            keepalives=1,
                            keepalives_idle=30,
                            keepalives_interval=10,
                            keepalives_count=3,
                        )
                        listen_for_new_events(connection)
                        log.info("listening on channel %s", CHANNEL)
                        self.wakeup.notify()  # catch up on what arrived while not listening
                        retry_s = 0.5
                    for _ in connection.notifies(timeout=0.5):
                        self.wakeup.notify()
                except psycopg.Error as exc:
                    log.warning(
                        "LISTEN connection failed (%s); retrying in %.1f s",
                        _first_line(exc),
                        retry_s,
                    )
                    if connection is not None:
                        connection.close()
                        connection = None
                    self.stopping.wait(retry_s)
                    retry_s = min(retry_s * 2, 10.0)
                if time.monotonic() >= next_silence_check and not self.stopping.is_set():
                    self._check_silence()
                    next_silence_check = time.monotonic() + self.settings.silence_check_s
        finally:
            if connection is not None:
                connection.close()

    def _check_silence(self) -> None:
        """Let the silence timer add no_data events, and wake the deliveries if it did."""
        try:
            with self.pool.connection(timeout=5) as conn:
                check_silence(conn)
        except Exception:
            log.exception("silence check failed")
            return
        self.wakeup.notify()

    # --- delivery threads ----------------------------------------------------------------------
    def _delivery_loop(self) -> None:
        while not self.stopping.is_set():
            seen = self.wakeup.generation
            try:
                claimed, next_retry_s = self._deliver_next()
            except (psycopg.OperationalError, PoolTimeout) as exc:
                log.warning("database unavailable (%s); retrying in 1 s", _first_line(exc))
                self.stopping.wait(1.0)
                continue
            except Exception:
                log.exception("delivery loop error; retrying in 1 s")
                self.stopping.wait(1.0)
                continue
            if not claimed:
                self.wakeup.wait(seen, max(0.01, min(self.poll_s, next_retry_s)))

    def _deliver_next(self) -> tuple[bool, float]:
        """Claim, attempt and record one due event; (False, seconds until the next retry is
        due) when there is none."""
        with self.pool.connection(timeout=5) as conn, conn.transaction():
            claimed = claim_next_due_event(conn)
            if claimed is None:
                return False, seconds_until_next_retry(conn)
            event_id, channel, attempts = claimed
            try:
                with conn.transaction():  # a savepoint: whatever fails in here, the claim holds
                    event = claimed_event(conn, event_id)
                    assert event is not None  # claimed, so locked: it cannot have gone
                    outcome = self._deliver(conn, event)
                what = describe(event)
            except psycopg.OperationalError:
                raise  # the database, not this event: the event stays pending
            except Exception as exc:
                # Recorded like a failed attempt (not delivered, whatever was sent), so the
                # event backs off and ends up dead instead of being claimed again at once.
                log.exception(
                    "internal error handling event %d; recording a failed attempt", event_id
                )
                what = f"event {event_id} by {channel}"
                failed = Attempt(internal_error(exc))
                outcome = self._record_failure(conn, event_id, attempts, failed)
        self._report(what, channel, outcome)  # committed: only now does it count
        return True, 0.0

    def _deliver(self, conn: psycopg.Connection, event: PendingEvent) -> Outcome:
        """Attempt a claimed event and record what came of it."""
        IN_FLIGHT.inc()
        started = time.perf_counter()
        try:
            attempt = self._attempt(event)
        finally:
            IN_FLIGHT.dec()
        took_s = time.perf_counter() - started
        if attempt.error is not None:
            return self._record_failure(conn, event.event_id, event.attempts, attempt, took_s)
        attempts, latency_s = record_delivered(conn, event.event_id)
        return Outcome("delivered", attempts, took_s, latency_s=latency_s)

    def _record_failure(
        self,
        conn: psycopg.Connection,
        event_id: int,
        attempts_before: int,
        attempt: Attempt,
        took_s: float = 0.0,
    ) -> Outcome:
        """Record a failed attempt: pending again after the backoff, or dead once the attempts
        are used up."""
        attempts = attempts_before + attempt.attempted
        dead = attempt.give_up or attempts >= self.settings.delivery_max_attempts
        delay_s = (
            0.0
            if dead
            else retry_delay(
                attempts, self.settings.delivery_backoff_s, self.settings.delivery_backoff_max_s
            )
        )
        error = storable_text(attempt.error or "")
        record_failed(
            conn,
            event_id,
            state="dead" if dead else "pending",
            attempted=attempt.attempted,
            error=error,
            delay_s=delay_s,
        )
        return Outcome("dead" if dead else "retry", attempts, took_s, error, delay_s)

    def _report(self, what: str, channel: str, outcome: Outcome) -> None:
        with self._totals_lock:
            if outcome.state == "delivered":
                self.totals["delivered"] += 1
            else:
                self.totals["failed"] += 1
                self.totals["dead"] += outcome.state == "dead"
        if outcome.state == "delivered":
            DELIVERED.labels(channel).inc()
            LATENCY.labels(channel).observe(outcome.latency_s)
            log.info(
                "%s delivered at attempt %d in %.0f ms, %.3f s after it was created",
                what,
                outcome.attempts,
                outcome.took_s * 1000,
                outcome.latency_s,
            )
            return
        FAILED_ATTEMPTS.labels(channel).inc()
        if outcome.state == "dead":
            DEAD.labels(channel).inc()
            log.error("%s is dead after %d attempts: %s", what, outcome.attempts, outcome.error)
        else:
            log.warning(
                "%s failed at attempt %d (%s); next attempt in %g s",
                what,
                outcome.attempts,
                outcome.error,
                outcome.retry_in_s,
            )

    def _attempt(self, event: PendingEvent) -> Attempt:
        if not event.active:
            return Attempt("subscription is inactive", give_up=True, attempted=False)
        try:
            if event.channel == "webhook":
                self._send_webhook(event)
            elif event.channel == "mqtt":
                self._publish_mqtt(event)
            elif event.channel != "stream":  # stream: the SSE endpoint reads the table
                return Attempt(f"unknown channel {event.channel!r}", give_up=True)
        except (WebhookFailed, DeliveryFailed) as exc:
            return Attempt(str(exc))
        return Attempt()

    def _send_webhook(self, event: PendingEvent) -> None:
        if not event.webhook_url or not event.webhook_secret:
            raise DeliveryFailed("subscription has no webhook_url or webhook_secret")
        target = resolve_target(event.webhook_url, self.allowance)
        body = event_body(event)
        headers = webhook_headers(event, body, event.webhook_secret, int(time.time()))
        post_webhook(
            self.http,
            target,
            body,
            headers,
            self.settings.webhook_timeout_s,
            self.settings.webhook_max_response_bytes,
        )

    def _publish_mqtt(self, event: PendingEvent) -> None:
        if self.mqtt is None:
            raise DeliveryFailed("AIRWATER_MQTT_URL is not set")
        self.mqtt.publish(
            mqtt_topic(event),
            event_body(event),
            str(event.idempotency_key),
            self.settings.webhook_timeout_s,
        )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def install_signal_handlers(worker: DeliveryWorker) -> None:
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
