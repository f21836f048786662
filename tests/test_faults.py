"""The fault matrix: nothing lost, nothing doubled when the worker is killed mid-batch, the
database restarts, goes away or hangs, the broker restarts, one of several workers dies, or
the aggregation stage is killed.

Every test ends with the same check: published = stored + dead-lettered, no duplicates, and
every derived level equal to a recomputation from `readings`.
Each records its figures (RELIABILITY.md; AIRWATER_FAULT_REPORT=<file> keeps them)."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from airwater.embedded import MosquittoServer, PostgresServer, free_port
from storage.aggregation import pending
from storage.writer import ReadingRow, prepare_connection, write_batch
from tests.support import (
    ModuleProcess,
    Publisher,
    TrackingPublisher,
    assert_rollups_match_readings,
    count,
    record_fault_figures,
    rss_mib,
    scrape_metrics,
    wait_for,
    wait_until_consuming,
    wait_until_stable,
    worker_totals,
)

STATIONS = ("110000-A001", "110000-A002", "310000-A001", "650000-A001")
INACTIVE = "999999-OFF"
PER_STATION = 5000  # 4 x 5,000 = 20,000 single-reading messages
BAD_EVERY = 100  # every 100 hours of the stream, three messages that must be dead-lettered
START = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
AUTOSAVE_S = 5  # MosquittoServer's autosave_interval

pytestmark = pytest.mark.slow

Message = tuple[str, Any]


def stream(per_station: int = PER_STATION) -> list[Message]:
    """Distinct readings interleaved across stations like a live network, with 1 % bad
    messages (malformed JSON, a deactivated station, a negative value), each distinct."""
    messages: list[Message] = []
    for i in range(per_station):
        ts = START + 3600 * i
        for n, station in enumerate(STATIONS):
            messages.append((station, {"ts": ts, "pm25": round(10 + (i * 7 + n) % 140 * 0.9, 1)}))
        if i % BAD_EVERY == BAD_EVERY // 2:
            messages += [
                (STATIONS[0], f'{{"ts": {ts}, "pm25": '.encode()),
                (INACTIVE, {"ts": ts, "pm25": 12.0}),
                (STATIONS[1], {"ts": ts + 1800, "pm25": -5.0}),
            ]
    return messages


def is_dead_letter(message: Message) -> bool:
    station_id, payload = message
    return isinstance(payload, bytes) or station_id == INACTIVE or payload["pm25"] < 0


def good(messages: list[Message]) -> list[Message]:
    return [m for m in messages if not is_dead_letter(m)]


def publish_in_background(publisher: Publisher, messages: list) -> threading.Thread:
    thread = threading.Thread(target=publisher.publish_all, args=(messages,), daemon=True)
    thread.start()
    return thread


def stored(database_url: str) -> int:
    return count(database_url, "SELECT count(*) FROM readings")


def queued(database_url: str) -> int:
    """Station-days queued for the aggregation stage (none runs in the worker tests)."""
    return count(database_url, "SELECT count(*) FROM aggregation_queue")


def settled(database_url: str) -> int:
    """Readings stored plus dead letters kept: what the published messages have become."""
    return count(
        database_url,
        "SELECT (SELECT count(*) FROM readings) + (SELECT count(*) FROM dead_letters)",
    )


def wait_settled(database_url: str, messages: list[Message], after: str) -> float:
    """Wait until every published message is stored or dead-lettered; returns the time."""
    wait_for(
        lambda: settled(database_url) == len(messages),
        timeout=120,
        what=f"{len(messages)} messages settled after {after}",
    )
    return time.monotonic()


def tally(database_url: str, messages: list[Message]) -> dict[str, int]:
    """Published, stored, dead-lettered, lost and duplicated, from the database."""
    with psycopg.connect(database_url) as conn:
        dead = {(t, bytes(p)) for t, p in conn.execute("SELECT topic, payload FROM dead_letters")}
        row = conn.execute(
            "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM dead_letters),"
            " (SELECT count(*) FROM (SELECT 1 FROM readings GROUP BY station_id, parameter, ts"
            "  HAVING count(*) > 1) d),"
            " (SELECT count(*) FROM (SELECT 1 FROM dead_letters GROUP BY topic, payload"
            "  HAVING count(*) > 1) d)"
        ).fetchone()
    assert row is not None
    readings, dead_letters, duplicates, duplicate_dead = (int(v) for v in row)
    bad = [m for m in messages if is_dead_letter(m)]
    expected_dead = {(f"stations/{s}/readings", body(p)) for s, p in bad}
    return {
        "published": len(messages),
        "readings_published": len(messages) - len(bad),
        "bad_published": len(bad),
        "stored": readings,
        "dead_lettered": dead_letters,
        "lost": max(0, len(messages) - len(bad) - readings) + len(expected_dead - dead),
        "duplicates": duplicates + duplicate_dead,
        "unexpected_dead_letters": len(dead - expected_dead),
    }


def body(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def assert_exactly_once(database_url: str, messages: list[Message]) -> dict[str, Any]:
    """Every published message is stored once (a reading, with its value) or dead-lettered
    once (a bad message), and once the aggregation stage has drained what the workers
    queued, every derived level (hours, station-days, city-days, years, latest values)
    agrees with the readings. Returns the tally."""
    figures: dict[str, Any] = dict(tally(database_url, messages))
    assert figures["lost"] == 0, figures
    assert figures["duplicates"] == 0, figures
    assert figures["unexpected_dead_letters"] == 0, figures
    assert figures["stored"] == figures["readings_published"], figures
    assert figures["dead_lettered"] == figures["bad_published"], figures
    expected = sum(payload["pm25"] for _, payload in good(messages))
    total = count(database_url, "SELECT round(sum(value)::numeric * 10) FROM readings")
    assert total == round(expected * 10)
    assert_rollups_match_readings(database_url)
    figures["rollups_match"] = True
    return figures


def report(test: str, fault: str, injected: str, figures: dict[str, Any], **extra: Any) -> None:
    record_fault_figures({"test": test, "fault": fault, "injected": injected, **figures, **extra})


def redelivered(tmp_path: Path) -> int:
    """Readings the workers found already stored (redeliveries absorbed), from their logs."""
    return sum(run["duplicates"] for log in tmp_path.glob("*.log") for run in worker_totals(log))


def wait_resumed(read: Any, before: int, timeout: float = 60) -> float:
    """Seconds until ``read()`` exceeds ``before``: the pipeline is moving again."""
    began = time.monotonic()
    wait_for(lambda: read() > before, timeout=timeout, interval=0.05, what="progress")
    return round(time.monotonic() - began, 2)


class PacedStream:
    """Publishes at a steady rate from a thread, like stations do, remembering when each
    message was handed to the client; it goes on while the broker is away."""

    def __init__(self, publisher: TrackingPublisher, messages: list[Message], rate: float):
        self.publisher = publisher
        self.messages = messages
        self.rate = rate
        self.mids: list[int] = []
        self.sent_at: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PacedStream:
        self.thread.start()
        return self

    def _run(self) -> None:
        began = time.monotonic()
        for k, (station_id, payload) in enumerate(self.messages):
            delay = began + k / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.mids.append(self.publisher.publish(station_id, payload).mid)
            self.sent_at.append(time.monotonic())

    def acked_between(self, since: float, until: float) -> int:
        with self.publisher._lock:
            return sum(
                1 for mid in self.mids if since <= self.publisher.acked_at.get(mid, -1) < until
            )

    def wait_all_acked(self, timeout: float = 120) -> None:
        self.thread.join(timeout=timeout)
        assert not self.thread.is_alive(), "the stream did not finish publishing"
        wait_for(
            lambda: self.publisher.acked(self.mids) == len(self.mids),
            timeout=timeout,
            what="a PUBACK for every published message",
        )


# --- 1. worker kill -9 mid-batch ----------------------------------------------------------------

# A backend waiting for the lock on dead_letters whose transaction has inserted into readings
# and aggregation_queue already (the locks of its first statement, granted).
_BLOCKED_WITH_ROWS_WRITTEN = """
SELECT count(*) FROM pg_stat_activity a
WHERE a.wait_event_type = 'Lock' AND a.query LIKE %s
  AND (SELECT count(*) FROM pg_locks l
       WHERE l.pid = a.pid AND l.granted AND l.mode = 'RowExclusiveLock'
         AND l.relation IN ('readings'::regclass, 'aggregation_queue'::regclass)) = 2
"""


@pytest.mark.timeout(240)
def test_kill_9_mid_batch_loses_and_doubles_nothing(make_worker, publisher, database_url, tmp_path):
    """The worker is killed while its transaction holds a batch of 2,000 written but not
    committed (its write waits on a lock the test holds): the batch rolls back, nothing of it
    was acked, the restarted worker gets it again."""
    messages = stream()
    metrics_port = free_port()
    settings = {"ingest_batch_messages": "2000", "ingest_batch_ms": "500"}
    worker = make_worker(metrics_port=str(metrics_port), **settings).start()
    wait_until_consuming(database_url, publisher, batch_window_s=0.5)
    began = time.monotonic()
    sender = publish_in_background(publisher, messages)
    wait_for(lambda: stored(database_url) >= 3000, timeout=60, what="3,000 readings stored")
    with psycopg.connect(database_url) as blocker:
        # one statement inserts the batch's readings and queues their station-days, then the
        # batch's dead letters (every batch of the stream has some) are inserted: a writer
        # blocked on dead_letters has the batch's rows inserted in its open transaction
        blocker.execute("LOCK TABLE dead_letters IN SHARE MODE")
        wait_for(
            lambda: count(database_url, _BLOCKED_WITH_ROWS_WRITTEN, ("%dead_letters%",)),
            timeout=30,
            what="the worker's batch to wait on the lock, its readings written, uncommitted",
        )
        in_flight = int(scrape_metrics(metrics_port)["airwater_ingest_unacked_messages"])
        at_kill = stored(database_url)
        queued_at_kill = queued(database_url)
        worker.kill()
        killed_at = time.monotonic()
        blocker.rollback()
    time.sleep(1)  # the orphaned transaction ends without COMMIT; the stream goes on
    assert stored(database_url) == at_kill, "nothing of the killed batch was committed"
    assert queued(database_url) == queued_at_kill, "nor queued for the aggregation stage"
    assert in_flight > 0
    make_worker(**settings).start()  # same client id: resumes the session
    restarted_at = time.monotonic()
    resume_s = wait_resumed(lambda: stored(database_url), at_kill)
    sender.join(timeout=180)
    assert not sender.is_alive()
    drained_at = wait_settled(database_url, messages, "restart")
    time.sleep(1)  # anything redelivered after this point must not add rows
    assert at_kill < len(good(messages))
    figures = assert_exactly_once(database_url, messages)
    report(
        "test_kill_9_mid_batch_loses_and_doubles_nothing",
        "ingest worker kill -9 mid-batch",
        "SIGKILL while a 2,000-message batch is written but uncommitted (blocked on a lock)",
        figures,
        stored_at_kill=at_kill,
        in_flight_at_kill=in_flight,
        redelivered=redelivered(tmp_path),
        resume_s=resume_s,
        recovery_s=round(drained_at - restarted_at, 1),
        down_s=round(restarted_at - killed_at, 1),
        duration_s=round(time.monotonic() - began, 1),
    )


# --- 2. database restart, database down --------------------------------------------------------


@pytest.mark.timeout(180)
def test_database_restart_mid_stream_loses_nothing(
    make_worker, publisher, database_url, postgres, tmp_path
):
    messages = stream(per_station=2500)
    worker = make_worker().start()
    wait_until_consuming(database_url, publisher)
    began = time.monotonic()
    sender = publish_in_background(publisher, messages)
    wait_for(lambda: stored(database_url) >= 2000, timeout=60, what="2,000 readings stored")
    restart_began = time.monotonic()
    postgres.restart()  # fast shutdown: every connection is closed by the server
    back_at = time.monotonic()
    resume_s = wait_resumed(lambda: settled(database_url), settled(database_url))
    sender.join(timeout=180)
    drained_at = wait_settled(database_url, messages, "the restart")
    assert worker.process is not None and worker.process.poll() is None, "worker survived"
    time.sleep(1)
    figures = assert_exactly_once(database_url, messages)
    report(
        "test_database_restart_mid_stream_loses_nothing",
        "database restart",
        "pg_ctl stop -m fast + start, same port and data",
        figures,
        down_s=round(back_at - restart_began, 1),
        redelivered=redelivered(tmp_path),
        resume_s=resume_s,
        recovery_s=round(drained_at - back_at, 1),
        duration_s=round(time.monotonic() - began, 1),
    )


# Long enough for the worker's 5 s wait for a pool connection to time out (PoolTimeout, then
# a retry) while the pool's own reconnection attempts (1, 3, 7, 15 s after the failure) are
# refused; back before the 7 s attempt, so the test does not wait for the 15 s one as a 10 s
# outage did.
DB_DOWN_S = 4


@pytest.mark.timeout(240)
def test_database_down_4_s_mid_stream_loses_nothing(
    make_worker, publisher, database_url, postgres, tmp_path
):
    messages = stream()
    worker = make_worker().start()
    wait_until_consuming(database_url, publisher)
    began = time.monotonic()
    sender = publish_in_background(publisher, messages)
    wait_for(lambda: stored(database_url) >= 3000, timeout=60, what="3,000 readings stored")
    postgres.stop(mode="immediate")
    time.sleep(DB_DOWN_S)
    postgres.start()
    back_at = time.monotonic()
    resume_s = wait_resumed(lambda: settled(database_url), settled(database_url))
    sender.join(timeout=180)
    drained_at = wait_settled(database_url, messages, "the outage")
    assert worker.process is not None and worker.process.poll() is None, "worker survived"
    time.sleep(1)
    figures = assert_exactly_once(database_url, messages)
    report(
        "test_database_down_4_s_mid_stream_loses_nothing",
        f"database down {DB_DOWN_S} s (connections refused)",
        f"pg_ctl stop -m immediate, {DB_DOWN_S} s, start",
        figures,
        down_s=DB_DOWN_S,
        redelivered=redelivered(tmp_path),
        resume_s=resume_s,
        recovery_s=round(drained_at - back_at, 1),
        duration_s=round(time.monotonic() - began, 1),
    )


def postgres_processes(postgres: PostgresServer) -> tuple[int, list[int]]:
    """The postmaster's pid and its children's (backends and background workers)."""
    postmaster = int((postgres.pgdata / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return postmaster, children


@contextmanager
def unreachable(postgres: PostgresServer) -> Iterator[None]:
    """The database hangs like a partitioned host: every process of the cluster stopped
    (SIGSTOP), so open connections get no answer and new ones are never served — nothing is
    refused, nothing errors."""
    postmaster, _ = postgres_processes(postgres)
    os.kill(postmaster, signal.SIGSTOP)  # first: no backend is forked after the listing
    _, children = postgres_processes(postgres)
    try:
        for pid in children:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in [*children, postmaster]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


class BrokerStats:
    """Mosquitto's $SYS/broker/store/messages/count (messages the broker holds: queued or in
    flight, not yet acknowledged), sampled as the broker publishes it (every 10 s)."""

    def __init__(self, port: int) -> None:
        self.samples: list[tuple[float, int]] = []
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id="test-sys-listener",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("$SYS/broker/store/messages/count")
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.samples.append((time.monotonic(), int(msg.payload)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# The outage outlasts the MQTT keepalive window, as a partition of a minute would outlast the
# worker's own 30 s keepalive (45 s before the broker drops a silent client): the broker makes
# every MQTT v5 client use a 10 s keepalive (max_keepalive, the lowest Mosquitto allows) and
# drops one it hears nothing from for 15 s. A worker hung on the database sends nothing but
# its network thread's PINGREQs, so 20 s prove the session survives the hang. Stations publish
# 300 messages/s: the broker holds about 6,000 messages, as 60 s at 100/s did.
OUTAGE_S = 20
OUTAGE_RATE = 300
BROKER_KEEPALIVE_S = 10
SYS_INTERVAL_S = 1  # the broker's $SYS store count every second (default: every 10 s)


@pytest.mark.timeout(240)
def test_database_unreachable_past_the_keepalive_holds_messages_at_the_broker_in_bounded_memory(
    make_worker, broker, database_url, postgres, tmp_path
):
    """A database that does not answer for longer than the MQTT keepalive window while
    stations go on publishing: the worker acks nothing (the broker keeps every message), keeps
    its broker session, its memory stays bounded by the receive maximum, and after the
    partition heals everything is stored once."""
    broker.extra_config += f"max_keepalive {BROKER_KEEPALIVE_S}\nsys_interval {SYS_INTERVAL_S}\n"
    broker.restart()  # nothing connected yet: the fresh broker of this test, reconfigured
    batch = 500  # receive maximum 1,000: at most that many messages in the worker
    messages = stream(per_station=2000)  # 8,060 messages at 300/s: about 27 s of traffic
    metrics_port = free_port()
    worker = make_worker(
        metrics_port=str(metrics_port), ingest_batch_messages=str(batch), ingest_batch_ms="200"
    ).start()
    publisher = TrackingPublisher(broker.port)
    stats = BrokerStats(broker.port)
    try:
        wait_until_consuming(database_url, publisher)
        began = time.monotonic()
        paced = PacedStream(publisher, messages, rate=OUTAGE_RATE).start()
        wait_for(lambda: stored(database_url) >= 300, timeout=60, what="300 readings stored")
        assert worker.process is not None
        pid = worker.process.pid
        before = settled(database_url)
        rss_start = rss_mib(pid)
        rss_peak = rss_start
        unacked_peak = 0.0
        with unreachable(postgres):
            outage_began = time.monotonic()
            while time.monotonic() - outage_began < OUTAGE_S:
                rss_peak = max(rss_peak, rss_mib(pid))
                metrics = scrape_metrics(metrics_port)
                unacked_peak = max(unacked_peak, metrics["airwater_ingest_unacked_messages"])
                time.sleep(0.5)
            outage_ended = time.monotonic()
        acked_in_outage = paced.acked_between(outage_began, outage_ended)
        late = [(t, n) for t, n in stats.samples if outage_began + 5 < t < outage_ended]
        assert late, "the broker published its store count during the outage"
        sampled_at, held = late[-1]
        # nothing the worker received in the outage was acknowledged: the broker still holds
        # every message published since (and the in-flight ones from before)
        assert held >= paced.acked_between(outage_began, sampled_at - 1), (held, late)
        resume_s = wait_resumed(lambda: settled(database_url), before)
        paced.wait_all_acked()
        drained_at = wait_settled(database_url, messages, "the outage")
        assert worker.process.poll() is None, "the worker survived the outage"
        # its session too: the broker did not drop it for silence (no reconnect, no redelivery)
        log_text = (tmp_path / "test-ingest-1.log").read_text(errors="replace")
        assert "disconnected from the broker" not in log_text
        assert rss_peak - rss_start < 100, f"RSS grew {rss_peak - rss_start:.1f} MiB"
        assert unacked_peak <= 2 * batch
        time.sleep(1)
        figures = assert_exactly_once(database_url, messages)
    finally:
        stats.close()
        publisher.close()
    report(
        "test_database_unreachable_past_the_keepalive_holds_messages_at_the_broker_in_bounded_memory",
        f"database unreachable {OUTAGE_S} s (hangs, no refusal), past the {BROKER_KEEPALIVE_S} s "
        "MQTT keepalive",
        f"SIGSTOP postmaster and every backend for {OUTAGE_S} s, then SIGCONT; "
        f"{OUTAGE_RATE} messages/s published",
        figures,
        down_s=OUTAGE_S,
        published_during_outage=acked_in_outage,
        broker_held_at_end_of_outage=held,
        worker_unacked_peak=int(unacked_peak),
        rss_start_mib=round(rss_start, 1),
        rss_peak_mib=round(rss_peak, 1),
        redelivered=redelivered(tmp_path),
        resume_s=resume_s,
        recovery_s=round(drained_at - outage_ended, 1),
        duration_s=round(time.monotonic() - began, 1),
    )


# --- 4. broker restart with persistence ---------------------------------------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_broker_restart_mid_stream_loses_nothing_published(
    how, make_worker, broker: MosquittoServer, database_url, tmp_path
):
    """The broker stops mid-stream and comes back on the same port and persistence file.
    SIGKILL also loses what the broker acknowledged since its last autosave (5 s); either
    way the messages published around the restart can be dropped (no shared subscription
    until the worker subscribes again), so the stations re-send the last 10 s of messages
    after reconnecting and the idempotent insert absorbs the copies."""
    messages = stream(per_station=2500)
    worker = make_worker().start()
    publisher = TrackingPublisher(broker.port)
    try:
        wait_until_consuming(database_url, publisher)
        subscribed_at = began = time.monotonic()
        paced = PacedStream(publisher, messages, rate=1000).start()
        wait_for(lambda: stored(database_url) >= 2000, timeout=60, what="2,000 readings stored")
        # the worker's session must be in a saved snapshot, or a SIGKILL would forget it
        time.sleep(max(0.0, subscribed_at + AUTOSAVE_S + 1 - time.monotonic()))
        stopped_at = time.monotonic()
        broker.stop(kill=how == "sigkill")
        broker.start()
        back_at = time.monotonic()
        resume_s = wait_resumed(lambda: settled(database_url), settled(database_url))
        paced.wait_all_acked()
        before_replay = wait_until_stable(
            lambda: settled(database_url), quiet_s=3, timeout=120, what="the settled count"
        )
        lost_at_broker = len(messages) - before_replay
        # Mosquitto 2.0.11 restores a persistent session's queue but not its SHARED
        # subscription: what arrives between the restart and the worker's SUBSCRIBE has no
        # subscriber and is dropped, even after a clean SIGTERM. Stations re-send their last
        # two autosave intervals after a reconnect; the idempotent insert absorbs copies.
        window = [
            m
            for m, t in zip(messages, paced.sent_at, strict=True)
            if t >= stopped_at - 2 * AUTOSAVE_S
        ]
        replayed = publisher.publish_all(window)
        drained_at = wait_settled(database_url, messages, "the stations' re-send")
        assert worker.process is not None and worker.process.poll() is None
        time.sleep(1)
        figures = assert_exactly_once(database_url, messages)
    finally:
        publisher.close()
    report(
        f"test_broker_restart_mid_stream_loses_nothing_published[{how}]",
        f"broker restart ({how.upper()})",
        f"Mosquitto {how.upper()} mid-stream, started again on the same port and files",
        figures,
        down_s=round(back_at - stopped_at, 1),
        lost_at_broker_before_resend=lost_at_broker,
        resent_by_stations=replayed,
        redelivered=redelivered(tmp_path),
        resume_s=resume_s,
        recovery_s=round(drained_at - back_at, 1),
        duration_s=round(time.monotonic() - began, 1),
    )


# --- 5. several workers on the shared subscription ---------------------------------------------


@pytest.mark.timeout(180)
def test_two_workers_share_the_stream_exactly_once(make_worker, publisher, database_url, tmp_path):
    messages = stream()
    first = make_worker("test-ingest-1").start()
    second = make_worker("test-ingest-2").start()
    wait_until_consuming(database_url, publisher)
    wait_subscribed(tmp_path, ["test-ingest-1", "test-ingest-2"])
    began = time.monotonic()
    publisher.publish_all(messages)
    wait_for(
        lambda: settled(database_url) == len(messages),
        timeout=120,
        what=f"{len(messages)} messages settled by two workers",
    )
    assert first.terminate() == 0 and second.terminate() == 0
    figures = assert_exactly_once(database_url, messages)
    shares = [
        worker_totals(tmp_path / f"{c}.log")[-1]["stored"]
        for c in ("test-ingest-1", "test-ingest-2")
    ]
    assert all(share > 0 for share in shares), f"both workers took part: {shares}"
    # the probe reading is counted by whichever worker took it
    assert sum(shares) in (figures["stored"], figures["stored"] + 1)
    report(
        "test_two_workers_share_the_stream_exactly_once",
        "two workers, no fault",
        "shared subscription $share/ingest, two client ids",
        figures,
        shares=shares,
        duration_s=round(time.monotonic() - began, 1),
    )


def wait_subscribed(tmp_path: Path, client_ids: list[str]) -> None:
    """Until every worker has logged its subscription (a probe reaches only one of them)."""
    wait_for(
        lambda: all(
            "subscribing to" in (tmp_path / f"{c}.log").read_text(errors="replace")
            for c in client_ids
        ),
        timeout=30,
        what="every worker subscribed",
    )
    time.sleep(0.5)  # the SUBSCRIBE follows the log line


@pytest.mark.timeout(180)
@pytest.mark.parametrize("workers", [2, 3])
def test_one_of_several_workers_killed_mid_stream_loses_nothing(
    workers, make_worker, publisher, database_url, tmp_path
):
    """One worker of the shared group is killed with SIGKILL mid-stream. Mosquitto 2.0 keeps
    the dead worker's persistent session in the round-robin: messages in flight to it and its
    share of later ones wait in that session until a worker with its client id comes back
    (the deployment's restart policy), which the test then does."""
    messages = stream(per_station=2500)
    client_ids = [f"test-ingest-{n}" for n in range(1, workers + 1)]
    running = [make_worker(c).start() for c in client_ids]
    wait_until_consuming(database_url, publisher)
    wait_subscribed(tmp_path, client_ids)
    began = time.monotonic()
    sender = publish_in_background(publisher, messages)
    wait_for(lambda: stored(database_url) >= 2000, timeout=60, what="2,000 readings stored")
    running[-1].kill()
    killed_at = time.monotonic()
    sender.join(timeout=120)
    assert not sender.is_alive()
    survivors_settled = wait_until_stable(
        lambda: settled(database_url), quiet_s=3, timeout=120, what="the survivors' progress"
    )
    held_by_dead_session = len(messages) - survivors_settled
    make_worker(client_ids[-1]).start()  # the restart policy: same client id, same session
    restarted_at = time.monotonic()
    drained_at = wait_settled(database_url, messages, "the killed worker came back")
    for worker in running[:-1]:
        assert worker.terminate() == 0
    time.sleep(1)
    figures = assert_exactly_once(database_url, messages)
    report(
        f"test_one_of_several_workers_killed_mid_stream_loses_nothing[{workers}]",
        f"{workers} workers, one kill -9",
        "SIGKILL one worker of the shared subscription; restarted with its client id "
        "once the survivors were idle",
        figures,
        held_by_dead_session=held_by_dead_session,
        survivors_idle_after_s=round(restarted_at - killed_at, 1),
        redelivered=redelivered(tmp_path),
        recovery_s=round(drained_at - restarted_at, 1),
        duration_s=round(time.monotonic() - began, 1),
    )


@pytest.mark.timeout(180)
def test_sigterm_while_database_is_down_acks_nothing_and_loses_nothing(
    make_worker, publisher, database_url, postgres, tmp_path
):
    messages = stream()[:400]
    worker = make_worker(ingest_stop_grace_s="2").start()  # exits 2 s after SIGTERM, not 10
    wait_until_consuming(database_url, publisher)
    began = time.monotonic()
    postgres.stop(mode="immediate")
    try:
        publisher.publish_all(messages)
        time.sleep(1)  # the worker holds a batch it cannot commit
        assert worker.terminate(timeout=60) == 1, "cannot drain: exits non-zero, no ack"
    finally:
        postgres.start()
    make_worker().start()
    restarted_at = time.monotonic()
    wait_for(
        lambda: settled(database_url) == len(messages),
        timeout=60,
        what="the unacknowledged batch redelivered after restart",
    )
    drained_at = time.monotonic()
    time.sleep(1)
    figures = assert_exactly_once(database_url, messages)
    report(
        "test_sigterm_while_database_is_down_acks_nothing_and_loses_nothing",
        "SIGTERM while the database is down",
        "pg_ctl stop -m immediate, publish, SIGTERM the worker (exits 1), start both",
        figures,
        redelivered=redelivered(tmp_path),
        recovery_s=round(drained_at - restarted_at, 1),
        duration_s=round(time.monotonic() - began, 1),
    )


# --- 6. the aggregation stage killed -----------------------------------------------------------

STAGE_APP = "test-aggregation-stage"  # its connections' application_name (PGAPPNAME) + -n
STAGE_STATIONS = ("110000-A001", "110000-A002", "310000-A001", "650000-A001", "W-YANGTZE-01")
STAGE_START = datetime(2025, 12, 22, tzinfo=UTC)  # station-days on both sides of a new year
STAGE_DAYS = 20
STAGE_KILLS = 6  # the first while the stage waits on a lock, all levels written; then random
DERIVED = (
    "readings_daily",
    "latest_readings",
    "city_daily",
    "station_yearly",
    "city_yearly",
    "water_yearly",
)


class AggregationStage(ModuleProcess):
    """One ``python -m ingest.aggregation`` process."""

    module = "ingest.aggregation"

    def __init__(self, database_url: str, log_path: Path, name: str) -> None:
        super().__init__(
            {**os.environ, "AIRWATER_DATABASE_URL": database_url, "PGAPPNAME": name},
            log_path,
        )
        self.name = name


class BatchWriter:
    """Writes batches of readings through storage.writer.write_batch from a thread, as the
    ingest workers do: each batch a few station-days (any of STAGE_DAYS, so most land in days
    the stage reflected already: late readings), and readings of earlier batches again."""

    def __init__(self, database_url: str, seed: int) -> None:
        self.database_url = database_url
        self.rng = random.Random(seed)
        self.keys: set[tuple[str, str, datetime]] = set()
        self.sent: list[ReadingRow] = []
        self.batches = self.repeated = 0
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> BatchWriter:
        self.thread.start()
        return self

    def batch(self) -> list[ReadingRow]:
        rng = self.rng
        received = datetime.now(UTC)
        rows: list[ReadingRow] = []
        for _ in range(rng.randint(3, 6)):
            station = rng.choice(STAGE_STATIONS)
            day = STAGE_START + timedelta(days=rng.randrange(STAGE_DAYS))
            water = station.startswith("W-")
            # the 5-minute station needs 9 readings an hour: its minute varies more
            minute = rng.randrange(0, 60, 5) if station == "310000-A001" else rng.choice([0, 30])
            for hour in rng.sample(range(24), rng.randint(1, 24)):
                ts = day + timedelta(hours=hour, minutes=minute)
                for parameter, low, high in (
                    (("nh3_n", 0.1, 2.0), ("do", 2.0, 9.0))
                    if water
                    else (("pm25", 5.0, 150.0), ("pm10", 10.0, 250.0))
                ):
                    rows.append(
                        (station, parameter, ts, round(rng.uniform(low, high), 1), received)
                    )
        if self.sent:
            again = rng.sample(self.sent, min(len(self.sent), rng.randint(0, 40)))
            self.repeated += len(again)
            rows += again
        rng.shuffle(rows)
        return rows

    def _run(self) -> None:
        try:
            with psycopg.connect(self.database_url) as conn:
                prepare_connection(conn)
                while not self.stop.is_set():
                    rows = self.batch()
                    write_batch(conn, rows)
                    self.keys.update(row[:3] for row in rows)
                    self.sent += rows[:50]
                    self.batches += 1
                    time.sleep(0.01)
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the writer did not stop"
        assert not self.errors, self.errors


def stage_backends(database_url: str, name: str, where: str = "true") -> int:
    """Backends of the stage run ``name`` (a LIKE pattern) that match ``where``."""
    return count(
        database_url,
        f"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s AND {where}",
        (name,),
    )


def inside_a_batch(conn: psycopg.Connection, name: str, timeout: float) -> bool:
    """Poll until the backend of stage run ``name`` is in a transaction that has written
    (claimed queue rows): True, or False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND backend_xid IS NOT NULL AND state <> 'idle'",
            (name,),
        ).fetchone()
        if row is not None and row[0]:
            return True
    return False


def derived_digest(database_url: str) -> dict[str, str]:
    """Every derived level's rows, as one digest per table (what a commit would change)."""
    with psycopg.connect(database_url) as conn:
        return {
            table: str(
                conn.execute(
                    f"SELECT count(*) || '/' || coalesce(md5(string_agg(t::text, ',' ORDER BY"
                    f" t::text)), '') FROM {table} t"
                ).fetchone()
            )
            for table in DERIVED
        }


@pytest.mark.timeout(240)
def test_aggregation_stage_kill_9_loses_and_doubles_no_derived_value(database_url, tmp_path):
    """The aggregation stage (``python -m ingest.aggregation``) is killed with SIGKILL while
    writers go on: once while its batch waits on a lock with every level written but not
    committed (nothing of it may appear), then at random moments; restarted each time. Once
    writing stops and the restarted stage has drained the queue, every derived level equals a
    recomputation from `readings`: no change lost, none counted twice."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    log_path = tmp_path / "stage.log"
    stages: list[AggregationStage] = []

    def start_stage() -> AggregationStage:
        stage = AggregationStage(database_url, log_path, f"{STAGE_APP}-{len(stages)}").start()
        stages.append(stage)
        wait_for(
            lambda: stage_backends(database_url, stage.name, "state <> 'idle'"),
            timeout=30,
            interval=0.02,
            what="the stage at work",
        )
        return stage

    writer = BatchWriter(database_url, seed).start()
    began = time.monotonic()
    in_batch_at_kill = 0
    try:
        wait_for(lambda: writer.batches >= 20, timeout=30, what="the first batches written")
        stage = start_stage()
        with psycopg.connect(database_url) as blocker:
            # the last statements of a stage batch write water_yearly: a batch waiting here
            # has written the station-days, latest values, city-days and years, uncommitted
            blocker.execute("LOCK TABLE water_yearly IN SHARE MODE")
            wait_for(
                lambda: stage_backends(
                    database_url,
                    stage.name,
                    "wait_event_type = 'Lock' AND backend_xid IS NOT NULL",
                ),
                timeout=30,
                what="a stage batch waiting on water_yearly",
            )
            before = derived_digest(database_url)
            stage.kill()
            blocker.rollback()
        wait_for(
            lambda: stage_backends(database_url, stage.name) == 0,
            timeout=30,
            interval=0.02,
            what="the killed stage's backend to end",
        )
        assert derived_digest(database_url) == before, "nothing of the killed batch committed"
        in_batch_at_kill += 1
        with psycopg.connect(database_url, autocommit=True) as watch:
            for _ in range(STAGE_KILLS - 1):
                stage = start_stage()
                time.sleep(rng.uniform(0.05, 1.0))
                # from there, the first moment the stage is inside a batch (its transaction
                # has claimed rows), at whatever statement of the batch it is
                in_batch_at_kill += inside_a_batch(watch, stage.name, timeout=2.0)
                stage.kill()
        stage = start_stage()
        time.sleep(rng.uniform(0.5, 1.5))
        writer.finish()
        stopped_writing = time.monotonic()
        with psycopg.connect(database_url) as conn:
            queued_at_stop = pending(conn)[1]

            def drained() -> bool:
                conn.commit()  # a fresh snapshot each time
                return pending(conn)[1] == 0

            wait_for(drained, timeout=120, what="the restarted stage to drain the queue")
        drained_s = round(time.monotonic() - stopped_writing, 1)
        assert stage.terminate() == 0
        hours = assert_rollups_match_readings(database_url, settled=False)
    finally:
        writer.stop.set()
        for process in stages:
            process.stop_quietly()
    # the kills fell inside batches (the first by construction), not only between them
    assert in_batch_at_kill >= STAGE_KILLS // 2, in_batch_at_kill
    assert count(database_url, "SELECT count(*) FROM readings") == len(writer.keys)
    levels = {table: count(database_url, f"SELECT count(*) FROM {table}") for table in DERIVED}
    # every level has rows to compare: valid days, cities, both years, the water section
    assert count(database_url, "SELECT count(*) FROM readings_daily WHERE valid") > 0
    assert count(database_url, "SELECT count(DISTINCT year) FROM station_yearly") == 2
    assert count(database_url, "SELECT count(DISTINCT year) FROM city_yearly") == 2
    assert levels["water_yearly"] > 0 and levels["latest_readings"] == 2 * len(STAGE_STATIONS)
    assert "Traceback" not in log_path.read_text(errors="replace")
    report(
        "test_aggregation_stage_kill_9_loses_and_doubles_no_derived_value",
        "aggregation stage kill -9",
        f"SIGKILL the stage {STAGE_KILLS} times while a writer goes on (once blocked on a lock "
        "with every level written, uncommitted; then at random moments); restarted each time",
        {
            "readings": len(writer.keys),
            "batches_written": writer.batches,
            "readings_sent_again": writer.repeated,
            "lost": 0,
            "duplicates": 0,
            "levels_match": True,
        },
        seed=seed,
        kills=STAGE_KILLS,
        kills_inside_a_batch=in_batch_at_kill,
        queued_at_stop=queued_at_stop,
        drained_s=drained_s,
        hours=hours,
        **levels,
        duration_s=round(time.monotonic() - began, 1),
    )
