"""Helpers for the alert delivery tests: a local webhook receiver, the delivery worker as a
subprocess, and outbox rows written with plain SQL."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import psycopg

from tests.support import ModuleProcess, wait_for

LISTENING = "listening on channel alert_events"


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    arrived: float  # time.monotonic()
    status: int
    answered: bool = False  # the response reached the socket

    @property
    def idempotency_key(self) -> str:
        return self.headers["idempotency-key"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 that records every POST. ``status`` and
    ``delay_s`` (a pause before answering) apply to the requests that arrive next;
    ``stop()`` takes it down (connections refused) and ``start()`` brings it back on the
    same port."""

    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    port: int = 0
    requests: list[ReceivedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    status, delay_s = receiver.status, receiver.delay_s
                    request = ReceivedRequest(
                        self.path,
                        {name.lower(): value for name, value in self.headers.items()},
                        body,
                        time.monotonic(),
                        status,
                    )
                    receiver.requests.append(request)
                if delay_s:
                    time.sleep(delay_s)
                try:
                    self.send_response(status)
                    for name, value in receiver.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(receiver.body)))
                    self.end_headers()
                    self.wfile.write(receiver.body)
                    self.wfile.flush()
                    request.answered = True
                except OSError:
                    pass  # the worker went away while we held the request

            def log_message(self, format: str, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def received(self) -> list[ReceivedRequest]:
        with self.lock:
            return list(self.requests)

    def keys_answered_ok(self) -> list[str]:
        return [r.idempotency_key for r in self.received() if r.answered and 200 <= r.status < 300]


class AlertWorker(ModuleProcess):
    """One ``python -m alerts`` process; every AIRWATER_* variable comes from the test."""

    module = "alerts"

    def __init__(
        self,
        database_url: str,
        mqtt_url: str | None,
        log_path: Path,
        args: tuple[str, ...] = (),
        **settings: str,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRWATER_")}
        env["AIRWATER_DATABASE_URL"] = database_url
        if mqtt_url is not None:
            env["AIRWATER_MQTT_URL"] = mqtt_url
        env.update({f"AIRWATER_{k.upper()}": v for k, v in settings.items()})
        super().__init__(env, log_path, args)
        self.log_path: Path = log_path
        self.listening_before = 0

    def start(self) -> Self:
        self.listening_before = self.log().count(LISTENING)
        return super().start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_until_listening(self, timeout: float = 30) -> None:
        """Until this start of the worker has said that it LISTENs."""
        wait_for(
            lambda: self.log().count(LISTENING) > self.listening_before,
            timeout=timeout,
            what=f"the delivery worker to listen; log:\n{self.log()[-3000:]}",
        )


def add_subscription(
    conn: psycopg.Connection,
    name: str,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    *,
    channel: str = "webhook",
    mqtt_topic: str | None = None,
    active: bool = True,
) -> int:
    row = conn.execute(
        "INSERT INTO alert_subscriptions (name, target, parameter, scope, scope_values,"
        " comparator, threshold, channel, webhook_url, webhook_secret, mqtt_topic, active)"
        " VALUES (%s, 'reading', 'pm25', 'all', '{}', '>', 75, %s, %s, %s, %s, %s)"
        " RETURNING subscription_id",
        (name, channel, webhook_url, webhook_secret, mqtt_topic, active),
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def add_event(
    conn: psycopg.Connection,
    subscription_id: int,
    station_id: str = "110000-A001",
    kind: str = "firing",
    value: float = 80.5,
    notify: bool = True,
    observed_at: str = "2026-03-01T08:00:00+08:00",
) -> tuple[int, str]:
    """Append an event the way the evaluation does (NOTIFY in the same transaction);
    returns (event_id, idempotency_key)."""
    row = conn.execute(
        "INSERT INTO alert_events (subscription_id, station_id, kind, target, parameter,"
        " value, threshold, observed_at, channel)"
        " SELECT subscription_id, %s, %s, 'reading', 'pm25', %s, 75, %s::timestamptz,"
        " channel FROM alert_subscriptions WHERE subscription_id = %s"
        " RETURNING event_id, idempotency_key",
        (station_id, kind, value, observed_at, subscription_id),
    ).fetchone()
    if notify:
        conn.execute("SELECT pg_notify('alert_events', '')")
    conn.commit()
    assert row is not None
    return int(row[0]), str(row[1])


def event_rows(database_url: str) -> dict[int, dict[str, Any]]:
    """Every outbox row by event id."""
    with psycopg.connect(database_url) as conn:
        cur = conn.execute(
            "SELECT event_id, idempotency_key::text, delivery_state, attempts, last_error,"
            " delivered_at, next_attempt_at FROM alert_events ORDER BY event_id"
        )
        names = [d.name for d in cur.description or ()]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}
