"""The alert delivery worker (``python -m alerts``) against the private PostgreSQL, a local
webhook receiver and a fresh Mosquitto: signed webhooks, retries, dead events, at-least-once
across a kill, the allow-list, concurrency, MQTT and the live stream."""

from __future__ import annotations

import itertools
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient

from airwater.embedded import MosquittoServer, PostgresServer, free_port
from alerts.delivery import retry_delay
from alerts.webhook import (
    Allowance,
    WebhookFailed,
    make_http_client,
    post_webhook,
    resolve_target,
    sign,
    verify_signature,
    webhook_target_allowed,
)
from storage.text import MAX_TEXT_CHARS as LAST_ERROR_MAX_CHARS
from storage.text import storable_text
from tests.alert_support import (
    AlertWorker,
    WebhookReceiver,
    add_event,
    add_subscription,
    event_rows,
)
from tests.support import record_fault_figures, wait_for

SECRET = "whsec-dongsi-duty-officer-0123"
LOOPBACK = '["127.0.0.0/8"]'


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture()
def outbox(database_url: str) -> str:
    """The test database with no subscriptions and an empty outbox."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "TRUNCATE alert_events, alert_state, alert_subscriptions RESTART IDENTITY CASCADE"
        )
    return database_url


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().start()
    yield hook
    hook.stop()


@pytest.fixture()
def make_alert_worker(outbox: str, tmp_path: Path) -> Iterator[Callable[..., AlertWorker]]:
    """Factory of delivery worker processes (small backoff, loopback allowed unless told
    otherwise); every one is killed at the end of the test."""
    workers: list[AlertWorker] = []

    def make(
        *args: str, mqtt_url: str | None = None, log_name: str = "alerts", **settings: str
    ) -> AlertWorker:
        chosen = {
            "webhook_allow": LOOPBACK,
            "webhook_timeout_s": "10",
            "delivery_backoff_s": "0.2",
            "delivery_backoff_max_s": "1",
            "delivery_max_attempts": "20",
            "delivery_concurrency": "4",
            **settings,
        }
        worker = AlertWorker(outbox, mqtt_url, tmp_path / f"{log_name}.log", args, **chosen)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop_quietly()


@pytest.fixture()
def refuse_delivered(outbox: str) -> Iterator[str]:
    """A trigger that refuses to mark a firing of one station delivered, the way a failure in
    recording the outcome would: its webhook goes out, then handling the event fails. Yields
    the station id."""
    with psycopg.connect(outbox) as conn:
        conn.execute(
            """
            CREATE FUNCTION refuse_delivered_firing() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.delivery_state = 'delivered' AND NEW.kind = 'firing'
                   AND NEW.station_id = '990000-X001' THEN
                    RAISE EXCEPTION 'event % may not be marked delivered', NEW.event_id;
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_delivered_firing BEFORE UPDATE ON alert_events
                FOR EACH ROW EXECUTE FUNCTION refuse_delivered_firing();
            """
        )
    yield "990000-X001"
    with psycopg.connect(outbox) as conn:
        conn.execute(
            "DROP TRIGGER refuse_delivered_firing ON alert_events;"
            " DROP FUNCTION refuse_delivered_firing()"
        )


def state_of(database_url: str, event_id: int) -> str:
    return str(event_rows(database_url)[event_id]["delivery_state"])


def wait_state(database_url: str, event_id: int, state: str, timeout: float = 30) -> None:
    wait_for(
        lambda: state_of(database_url, event_id) == state,
        timeout=timeout,
        what=f"event {event_id} to be {state}",
    )


# --- signature, allow-list, backoff (no services) -----------------------------------------------


def test_signature_verifies_the_exact_body_with_the_secret() -> None:
    body = b'{"event_id":1,"kind":"firing"}'
    now = int(time.time())
    header = sign(SECRET, now, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature(SECRET, str(now), body, header)
    assert not verify_signature("another secret", str(now), body, header)
    assert not verify_signature(SECRET, str(now), body + b" ", header)
    assert not verify_signature(SECRET, str(now + 1), body, header)
    assert not verify_signature(SECRET, str(now), body, header.replace("sha256=", "sha1="))
    assert not verify_signature(SECRET, "not a number", body, header)


def test_signature_older_than_the_tolerance_is_refused() -> None:
    body = b"{}"
    old = int(time.time()) - 301
    assert not verify_signature(SECRET, old, body, sign(SECRET, old, body))
    assert verify_signature(SECRET, old, body, sign(SECRET, old, body), tolerance_s=600)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://240.0.0.1/hook", "reserved"),
        ("http://100.64.0.1/hook", "not globally routable"),
        ("http://[::ffff:10.0.0.1]/hook", "private"),
    ],
)
def test_webhook_target_on_a_non_public_address_is_refused(url: str, why: str) -> None:
    allowed, reason = webhook_target_allowed(url, [])
    assert not allowed
    assert f"a {why} address" in reason and "AIRWATER_WEBHOOK_ALLOW" in reason


def test_webhook_target_allow_list_admits_networks_and_host_names() -> None:
    assert webhook_target_allowed("http://127.0.0.1:9/hook", ["127.0.0.0/8"]) == (True, "")
    assert webhook_target_allowed("http://10.1.2.3/hook", ["10.0.0.0/8"]) == (True, "")
    assert webhook_target_allowed("http://localhost:9/hook", ["LOCALHOST"]) == (True, "")
    assert not webhook_target_allowed("http://10.1.2.3/hook", ["10.9.0.0/16"])[0]
    assert webhook_target_allowed("https://8.8.8.8/hook", []) == (True, "")


@pytest.mark.parametrize(
    "url", ["ftp://8.8.8.8/hook", "file:///etc/passwd", "gopher://8.8.8.8/", "http:///nohost"]
)
def test_webhook_target_other_than_http_is_refused(url: str) -> None:
    allowed, reason = webhook_target_allowed(url, ["0.0.0.0/0"])
    assert not allowed and reason


def test_webhook_target_that_does_not_resolve_is_refused() -> None:
    allowed, reason = webhook_target_allowed("http://no-such-host.invalid/hook", [])
    assert not allowed and "cannot resolve" in reason


def test_retry_delay_doubles_from_the_first_delay_up_to_the_cap() -> None:
    assert [retry_delay(n, 1.0, 300.0) for n in (1, 2, 3, 4, 9, 10, 100)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        256.0,
        300.0,
        300.0,
    ]
    assert retry_delay(1, 0.2, 1.0) == 0.2 and retry_delay(4, 0.2, 1.0) == 1.0


def test_storable_text_has_no_nul_and_is_cut_to_the_limit() -> None:
    assert storable_text("HTTP 500: \x00stack\x00 trace") == "HTTP 500: stack trace"
    assert storable_text("bad \udcff byte") == "bad ? byte"
    cut = storable_text("x" * 5000)
    assert len(cut) == LAST_ERROR_MAX_CHARS and cut == "x" * (LAST_ERROR_MAX_CHARS - 1) + "…"
    assert storable_text("y" * LAST_ERROR_MAX_CHARS) == "y" * LAST_ERROR_MAX_CHARS


# --- one POST, in process -----------------------------------------------------------------------


class EndlessBody(BaseHTTPRequestHandler):
    """Answers 200 and then writes a body that never ends."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"x" * 65536)
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_response_is_read_only_up_to_the_size_limit() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EndlessBody)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = resolve_target(
            f"http://127.0.0.1:{server.server_port}/hook", Allowance.parse(["127.0.0.0/8"])
        )
        started = time.monotonic()
        with make_http_client(5.0) as client:
            status = post_webhook(client, target, b"{}", {}, 5.0, 4096)
        assert status == 200
        assert time.monotonic() - started < 2.0
    finally:
        server.shutdown()
        server.server_close()


def test_slow_answer_is_a_timeout(receiver: WebhookReceiver) -> None:
    receiver.delay_s = 3
    target = resolve_target(receiver.url, Allowance.parse(["127.0.0.0/8"]))
    started = time.monotonic()
    with make_http_client(0.5) as client, pytest.raises(WebhookFailed, match="timeout"):
        post_webhook(client, target, b"{}", {}, 0.5, 65536)
    assert time.monotonic() - started < 2.0


def test_redirect_is_not_followed(receiver: WebhookReceiver) -> None:
    receiver.status = 307
    receiver.headers = {"Location": "http://127.0.0.1:1/elsewhere"}
    target = resolve_target(receiver.url, Allowance.parse(["127.0.0.0/8"]))
    with make_http_client(5.0) as client, pytest.raises(WebhookFailed, match="not followed"):
        post_webhook(client, target, b"{}", {}, 5.0, 65536)
    assert len(receiver.received()) == 1


def test_request_goes_to_the_checked_address_with_the_original_host(
    receiver: WebhookReceiver,
) -> None:
    url = f"http://localhost:{receiver.port}/hook"
    if "127.0.0.1" not in {info[4][0] for info in socket.getaddrinfo("localhost", None)}:
        pytest.skip("localhost does not resolve to 127.0.0.1 here")
    target = resolve_target(url, Allowance.parse(["localhost"]))
    with make_http_client(5.0) as client:
        assert post_webhook(client, target, b"{}", {}, 5.0, 65536) == 200
    [request] = receiver.received()
    assert request.headers["host"] == f"localhost:{receiver.port}"


# --- the worker ---------------------------------------------------------------------------------


def test_event_is_delivered_once_with_a_valid_signature(
    outbox: str, receiver: WebhookReceiver, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    metrics_port = free_port()
    make_alert_worker("--metrics-port", str(metrics_port)).start()
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "Dongsi PM2.5 > 75", receiver.url, SECRET)
        event_id, key = add_event(conn, sub, station_id="110000-A001", value=80.5)
    wait_state(outbox, event_id, "delivered")
    time.sleep(1.5)  # a second delivery (poll every 1 s) would have arrived by now

    [request] = receiver.received()
    headers = request.headers
    assert verify_signature(
        SECRET, headers["x-airwater-timestamp"], request.body, headers["x-airwater-signature"]
    )
    assert abs(int(headers["x-airwater-timestamp"]) - time.time()) < 60
    assert headers["idempotency-key"] == key
    assert headers["x-airwater-event"] == str(event_id)
    assert headers["content-type"] == "application/json"
    body = request.json()
    created_at = datetime.fromisoformat(body.pop("created_at"))
    assert created_at.utcoffset() is not None
    assert body == {
        "event_id": event_id,
        "idempotency_key": key,
        "kind": "firing",
        "subscription_id": sub,
        "subscription_name": "Dongsi PM2.5 > 75",
        "station_id": "110000-A001",
        "target": "reading",
        "parameter": "pm25",
        "value": 80.5,
        "threshold": 75.0,
        "observed_at": "2026-03-01T00:00:00+00:00",
    }
    row = event_rows(outbox)[event_id]
    assert (row["attempts"], row["last_error"]) == (1, None)
    assert row["delivered_at"] is not None

    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert 'airwater_alerts_delivered_total{channel="webhook"} 1.0' in metrics
    assert 'airwater_alerts_delivery_latency_seconds_count{channel="webhook"} 1.0' in metrics


def test_notify_wakes_the_worker_without_waiting_for_the_poll(
    outbox: str, receiver: WebhookReceiver, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    worker = make_alert_worker("--poll-s", "60").start()
    worker.wait_until_listening()
    time.sleep(0.5)  # the catch-up pass after LISTEN is over; threads sleep on the 60 s poll
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "prompt", receiver.url, SECRET)
        committed = time.monotonic()
        add_event(conn, sub, notify=True)
    [request] = wait_for(receiver.received, timeout=20, what="the webhook")
    assert request.arrived - committed < 2.0


def test_event_without_notify_is_found_by_the_poll(
    outbox: str, receiver: WebhookReceiver, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    worker = make_alert_worker("--poll-s", "1").start()
    worker.wait_until_listening()
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "polled", receiver.url, SECRET)
        event_id, key = add_event(conn, sub, notify=False)
    wait_state(outbox, event_id, "delivered", timeout=20)
    assert receiver.keys_answered_ok() == [key]


@pytest.mark.parametrize("outage", ["http_500", "connection_refused"])
def test_endpoint_failing_for_a_while_gets_the_event_when_it_returns(
    outage: str,
    outbox: str,
    receiver: WebhookReceiver,
    make_alert_worker: Callable[..., AlertWorker],
) -> None:
    if outage == "http_500":
        receiver.status = 500
        receiver.body = b"database is down"
    else:
        receiver.stop()
    make_alert_worker().start()
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "flaky", receiver.url, SECRET)
        event_id, key = add_event(conn, sub)
    wait_for(
        lambda: event_rows(outbox)[event_id]["attempts"] >= 3,
        timeout=30,
        what="three failed attempts",
    )
    failing = event_rows(outbox)[event_id]
    assert failing["delivery_state"] == "pending"
    expected_error = (
        "HTTP 500 Internal Server Error: database is down"
        if outage == "http_500"
        else "cannot connect: 127.0.0.1: ConnectError"
    )
    assert failing["last_error"].startswith(expected_error)

    if outage == "http_500":
        receiver.status = 200
    else:
        receiver.start()
    wait_state(outbox, event_id, "delivered")
    row = event_rows(outbox)[event_id]
    assert row["attempts"] >= 4
    assert row["last_error"].startswith(expected_error)  # why it was late stays visible
    assert receiver.keys_answered_ok() == [key]
    assert {r.idempotency_key for r in receiver.received()} == {key}
    if outage == "http_500":
        assert len(receiver.received()) == row["attempts"]


def test_event_is_dead_after_the_last_attempt_with_the_last_error(
    outbox: str, receiver: WebhookReceiver, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    receiver.status = 503
    make_alert_worker(delivery_max_attempts="3", delivery_backoff_s="0.1").start()
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "gone", receiver.url, SECRET)
        event_id, key = add_event(conn, sub)
    wait_state(outbox, event_id, "dead")
    time.sleep(1.5)  # nothing more is attempted
    row = event_rows(outbox)[event_id]
    assert row["attempts"] == 3
    assert row["last_error"] == "HTTP 503 Service Unavailable: ok"
    assert row["delivered_at"] is None
    requests = receiver.received()
    assert [r.idempotency_key for r in requests] == [key] * 3
    # the backoff between attempts: 0.1 s, then 0.2 s
    gaps = [b.arrived - a.arrived for a, b in itertools.pairwise(requests)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2


def handling_failures(worker: AlertWorker, event_id: int) -> int:
    """How often the worker logged an internal error while handling the event."""
    return worker.log().count(
        f"ERROR alerts.delivery: internal error handling event {event_id}; recording a failed"
    )


def is_running(worker: AlertWorker) -> bool:
    return worker.process is not None and worker.process.poll() is None


def test_answer_with_a_nul_byte_is_recorded_without_it_and_holds_up_nobody(
    outbox: str, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    # PostgreSQL text cannot hold NUL: the excerpt of this answer in last_error used to roll
    # the claim back, so the same event was sent again every second, for ever.
    poison = WebhookReceiver(status=500, body=b"\x00stack\x00 trace").start()
    healthy = WebhookReceiver().start()
    try:
        worker = make_alert_worker(delivery_max_attempts="3", delivery_backoff_s="0.1").start()
        with psycopg.connect(outbox) as conn:
            poison_sub = add_subscription(conn, "answers NUL", poison.url, SECRET)
            healthy_sub = add_subscription(conn, "healthy", healthy.url, SECRET)
            firing, firing_key = add_event(conn, poison_sub, kind="firing")
            resolved, resolved_key = add_event(conn, poison_sub, kind="resolved")
            other, other_key = add_event(conn, healthy_sub)
        wait_state(outbox, other, "delivered")
        wait_state(outbox, resolved, "dead")  # its firing, before it, no longer holds it up
        time.sleep(1.5)  # a loop on one event would show as more requests
        rows = event_rows(outbox)
        for event_id in (firing, resolved):
            assert rows[event_id]["delivery_state"] == "dead"
            assert rows[event_id]["attempts"] == 3
            assert rows[event_id]["last_error"] == "HTTP 500 Internal Server Error: stack trace"
        sent = [r.idempotency_key for r in poison.received()]
        assert sent == [firing_key] * 3 + [resolved_key] * 3
        assert healthy.keys_answered_ok() == [other_key]
        assert is_running(worker)
        assert "delivery loop error" not in worker.log()
    finally:
        poison.stop()
        healthy.stop()


def test_event_that_cannot_be_marked_delivered_is_retried_then_dead_holding_up_nobody(
    outbox: str,
    receiver: WebhookReceiver,
    refuse_delivered: str,
    make_alert_worker: Callable[..., AlertWorker],
) -> None:
    worker = make_alert_worker(delivery_max_attempts="3", delivery_backoff_s="0.1").start()
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "refused", receiver.url, SECRET)
        other_sub = add_subscription(conn, "healthy", receiver.url, SECRET)
        firing, firing_key = add_event(conn, sub, station_id=refuse_delivered, kind="firing")
        resolved, resolved_key = add_event(conn, sub, station_id=refuse_delivered, kind="resolved")
        other, other_key = add_event(conn, other_sub)
    wait_state(outbox, resolved, "delivered")  # only once its firing is dead
    time.sleep(1.5)  # a loop on one event would show as more requests
    rows = event_rows(outbox)
    assert rows[firing]["delivery_state"] == "dead"
    assert (rows[firing]["attempts"], rows[firing]["delivered_at"]) == (3, None)
    assert rows[firing]["last_error"] == (
        f"internal error: RaiseException: event {firing} may not be marked delivered"
    )
    assert rows[other]["delivery_state"] == "delivered"
    # Every attempt went out, but none was recorded, so none counts as delivered: at least once.
    sent = [r.idempotency_key for r in receiver.received()]
    assert sent.count(firing_key) == 3
    assert sorted(receiver.keys_answered_ok()) == sorted(
        [firing_key] * 3 + [resolved_key, other_key]
    )
    assert handling_failures(worker, firing) == 3
    log = worker.log()
    assert "Traceback (most recent call last)" in log
    assert (
        f"event {firing} by webhook is dead after 3 attempts: internal error: RaiseException" in log
    )
    assert is_running(worker)


def test_event_that_cannot_be_loaded_is_dead_after_its_attempts_holding_up_nobody(
    outbox: str, receiver: WebhookReceiver, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "from the far future", receiver.url, SECRET)
        firing, _ = add_event(conn, sub, kind="firing", observed_at="infinity")  # no datetime
        resolved, resolved_key = add_event(conn, sub, kind="resolved")
    worker = make_alert_worker(delivery_max_attempts="3", delivery_backoff_s="0.1").start()
    wait_state(outbox, resolved, "delivered")  # only once its firing is dead
    time.sleep(1.5)  # a loop on one event would show as more log lines
    row = event_rows(outbox)[firing]
    assert (row["delivery_state"], row["attempts"], row["last_error"]) == (
        "dead",
        3,
        "internal error: DataError: timestamp too large (after year 10K): 'infinity'",
    )
    assert receiver.keys_answered_ok() == [resolved_key]  # the unloadable one never went out
    assert handling_failures(worker, firing) == 3
    assert is_running(worker)


def test_worker_killed_mid_delivery_delivers_every_event_at_least_once(
    outbox: str, receiver: WebhookReceiver, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    receiver.delay_s = 3  # every request is held while the worker is killed
    first = make_alert_worker(log_name="first").start()
    keys: list[str] = []
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "Beijing", receiver.url, SECRET)
        for station_id in ("110000-A001", "110000-A002", "310000-A001"):
            for kind in ("firing", "resolved"):
                keys.append(add_event(conn, sub, station_id=station_id, kind=kind)[1])
    wait_for(lambda: len(receiver.received()) >= 3, timeout=30, what="three held requests")
    time.sleep(0.3)
    first.kill()
    held = {r.idempotency_key for r in receiver.received()}
    rows = event_rows(outbox).values()
    assert all(row["delivery_state"] == "pending" for row in rows), rows

    receiver.delay_s = 0
    make_alert_worker(log_name="second").start()
    wait_for(
        lambda: all(row["delivery_state"] == "delivered" for row in event_rows(outbox).values()),
        timeout=60,
        what="every event delivered after the restart",
    )
    answered = receiver.keys_answered_ok()
    assert set(answered) == set(keys)  # none missing, each recognisable by its key
    for key in held:  # what was in flight at the kill went out again, with the same key
        assert len([r for r in receiver.received() if r.idempotency_key == key]) >= 2
    record_fault_figures(
        {
            "test": "test_worker_killed_mid_delivery_delivers_every_event_at_least_once",
            "fault": "alert delivery worker kill -9 mid-delivery",
            "injected": "SIGKILL while 3 webhook requests are held open by the receiver",
            "events": len(keys),
            "delivered": len(set(answered)),
            "lost": len(set(keys) - set(answered)),
            "in_flight_at_kill": len(held),
            "requests": len(receiver.received()),
            "sent_again_same_key": len(receiver.received()) - len(keys),
        }
    )


def test_loopback_target_without_the_allow_list_is_refused_and_dead(
    outbox: str, receiver: WebhookReceiver, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    make_alert_worker(webhook_allow="[]", delivery_max_attempts="2").start()
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "sneaky", receiver.url, SECRET)
        event_id, _ = add_event(conn, sub)
    wait_state(outbox, event_id, "dead")
    row = event_rows(outbox)[event_id]
    assert row["attempts"] == 2
    assert "127.0.0.1 is a loopback address not in AIRWATER_WEBHOOK_ALLOW" in row["last_error"]
    assert receiver.received() == []


def test_slow_subscriber_does_not_delay_another_subscription(
    outbox: str, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    slow, fast = WebhookReceiver(delay_s=3).start(), WebhookReceiver().start()
    try:
        worker = make_alert_worker().start()
        worker.wait_until_listening()
        with psycopg.connect(outbox) as conn:
            slow_sub = add_subscription(conn, "slow", slow.url, SECRET)
            fast_sub = add_subscription(conn, "fast", fast.url, SECRET)
            slow_event, _ = add_event(conn, slow_sub)
            wait_for(slow.received, timeout=20, what="the slow subscriber to be held")
            inserted = time.monotonic()
            fast_event, _ = add_event(conn, fast_sub)
        [fast_request] = wait_for(fast.received, timeout=20, what="the fast subscriber")
        assert fast_request.arrived - inserted < 1.5
        assert state_of(outbox, slow_event) == "pending"  # still held by the slow one
        wait_state(outbox, fast_event, "delivered")
        wait_state(outbox, slow_event, "delivered")
    finally:
        slow.stop()
        fast.stop()


def test_events_of_one_station_are_delivered_in_order(
    outbox: str, receiver: WebhookReceiver, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    receiver.status = 500
    make_alert_worker().start()
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "ordered", receiver.url, SECRET)
        firing, firing_key = add_event(conn, sub, kind="firing")
        resolved, resolved_key = add_event(conn, sub, kind="resolved")
    wait_for(lambda: event_rows(outbox)[firing]["attempts"] >= 2, what="two failed attempts")
    assert event_rows(outbox)[resolved]["attempts"] == 0  # waits behind its firing
    receiver.status = 200
    wait_state(outbox, resolved, "delivered")
    assert receiver.keys_answered_ok() == [firing_key, resolved_key]


def test_event_of_an_inactive_subscription_is_dead_without_an_attempt(
    outbox: str, receiver: WebhookReceiver, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    make_alert_worker().start()
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "paused", receiver.url, SECRET, active=False)
        event_id, _ = add_event(conn, sub)
    wait_state(outbox, event_id, "dead")
    row = event_rows(outbox)[event_id]
    assert (row["attempts"], row["last_error"]) == (0, "subscription is inactive")
    assert receiver.received() == []


def test_stream_event_is_marked_delivered_at_once(
    outbox: str, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    make_alert_worker().start()
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "dashboard", channel="stream")
        event_id, _ = add_event(conn, sub)
    wait_state(outbox, event_id, "delivered")
    assert event_rows(outbox)[event_id]["attempts"] == 1


def test_sigterm_finishes_the_delivery_in_flight_and_exits_0(
    outbox: str, receiver: WebhookReceiver, make_alert_worker: Callable[..., AlertWorker]
) -> None:
    receiver.delay_s = 2
    worker = make_alert_worker().start()
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "graceful", receiver.url, SECRET)
        event_id, key = add_event(conn, sub)
    wait_for(receiver.received, timeout=20, what="the held request")
    assert worker.terminate(timeout=30) == 0
    assert state_of(outbox, event_id) == "delivered"
    assert receiver.keys_answered_ok() == [key]
    assert "alert delivery stopped: 1 delivered" in worker.log()


def test_mqtt_subscription_publishes_to_alerts_kind_station(
    outbox: str,
    broker: MosquittoServer,
    make_alert_worker: Callable[..., AlertWorker],
    admin: TestClient,
) -> None:
    messages: queue.SimpleQueue[mqtt.MQTTMessage] = queue.SimpleQueue()
    subscribed = threading.Event()
    listener = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id="test-alert-listener",
        protocol=mqtt.MQTTv5,
    )
    listener.on_message = lambda client, userdata, message: messages.put(message)
    listener.on_subscribe = lambda *args: subscribed.set()
    listener.connect("127.0.0.1", broker.port)
    listener.loop_start()
    try:
        listener.subscribe("alerts/#", qos=1)
        assert subscribed.wait(10)
        make_alert_worker(mqtt_url=broker.url).start()
        # made through the API without mqtt_topic: the default topic, alerts/{kind}/{station}
        made = admin.post(
            "/v1/alerts/subscriptions",
            json={
                "name": "to alerts/…",
                "target": "reading",
                "parameter": "pm25",
                "scope": "all",
                "threshold": 75,
                "channel": "mqtt",
            },
        )
        assert made.status_code == 201, made.text
        assert made.json()["mqtt_topic"] is None
        default_sub = made.json()["subscription_id"]
        with psycopg.connect(outbox) as conn:
            custom_sub = add_subscription(
                conn, "own topic", channel="mqtt", mqtt_topic="alerts/custom/dongsi"
            )
            firing, firing_key = add_event(conn, default_sub, station_id="110000-A001")
            resolved, _ = add_event(conn, custom_sub, station_id="110000-A001", kind="resolved")
        wait_state(outbox, firing, "delivered")
        wait_state(outbox, resolved, "delivered")
        received: dict[str, mqtt.MQTTMessage] = {}
        while len(received) < 2:
            message = messages.get(timeout=10)
            received[message.topic] = message
        assert set(received) == {"alerts/firing/110000-A001", "alerts/custom/dongsi"}
        message = received["alerts/firing/110000-A001"]
        document = json.loads(message.payload)
        assert document["event_id"] == firing and document["idempotency_key"] == firing_key
        assert document["kind"] == "firing" and document["station_id"] == "110000-A001"
        user_properties = getattr(message.properties, "UserProperty", [])
        assert ("idempotency-key", firing_key) in user_properties
        assert received["alerts/custom/dongsi"].qos == 1
    finally:
        listener.disconnect()
        listener.loop_stop()


@pytest.mark.slow
def test_worker_survives_a_database_restart(
    outbox: str,
    postgres: PostgresServer,
    receiver: WebhookReceiver,
    make_alert_worker: Callable[..., AlertWorker],
) -> None:
    worker = make_alert_worker("--poll-s", "60").start()
    worker.wait_until_listening()
    postgres.stop(mode="immediate")
    try:
        time.sleep(2)
    finally:
        postgres.start()
    wait_for(
        lambda: worker.log().count("listening on channel alert_events") >= 2,
        timeout=30,
        what=f"LISTEN again after the restart; log:\n{worker.log()[-3000:]}",
    )
    with psycopg.connect(outbox) as conn:
        sub = add_subscription(conn, "after restart", receiver.url, SECRET)
        committed = time.monotonic()
        event_id, key = add_event(conn, sub)
    wait_state(outbox, event_id, "delivered")
    [request] = receiver.received()
    assert request.idempotency_key == key
    assert request.arrived - committed < 2.0  # woken by NOTIFY, not by the 60 s poll
