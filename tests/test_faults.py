"""Nothing lost, nothing doubled: worker kill -9, database outage, two workers."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime

import pytest

from tests.support import (
    Publisher,
    assert_rollups_match_readings,
    count,
    wait_for,
    wait_until_consuming,
)

STATIONS = ("110000-A001", "110000-A002", "310000-A001", "650000-A001")
PER_STATION = 5000  # 4 x 5,000 = 20,000 single-reading messages
START = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())

pytestmark = pytest.mark.slow


def stream() -> list[tuple[str, dict]]:
    """20,000 distinct readings, interleaved across stations like a live network."""
    return [
        (station, {"ts": START + 3600 * i, "pm25": round(10 + (i * 7 + n) % 140 * 0.9, 1)})
        for i in range(PER_STATION)
        for n, station in enumerate(STATIONS)
    ]


def publish_in_background(publisher: Publisher, messages: list) -> threading.Thread:
    thread = threading.Thread(target=publisher.publish_all, args=(messages,), daemon=True)
    thread.start()
    return thread


def stored(database_url: str) -> int:
    return count(database_url, "SELECT count(*) FROM readings")


def assert_exactly_once(database_url: str, messages: list) -> None:
    """Every published reading is stored once, with its value; rollups agree."""
    assert stored(database_url) == len(messages)
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    assert (
        count(
            database_url,
            "SELECT count(*) FROM (SELECT station_id, parameter, ts FROM readings "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1) d",
        )
        == 0
    )
    expected = sum(payload["pm25"] for _, payload in messages)
    total = count(database_url, "SELECT round(sum(value)::numeric * 10) FROM readings")
    assert total == round(expected * 10)
    assert_rollups_match_readings(database_url)


def test_kill_9_mid_stream_loses_and_doubles_nothing(make_worker, publisher, database_url):
    messages = stream()
    worker = make_worker().start()
    wait_until_consuming(database_url, publisher)
    sender = publish_in_background(publisher, messages)
    wait_for(lambda: stored(database_url) >= 3000, timeout=60, what="3,000 readings stored")
    worker.kill()
    at_kill = stored(database_url)
    time.sleep(1)  # the stream goes on into the worker's persistent session
    assert stored(database_url) == at_kill
    make_worker().start()  # same client id: resumes the session
    sender.join(timeout=180)
    assert not sender.is_alive()
    wait_for(
        lambda: stored(database_url) == len(messages),
        timeout=120,
        what=f"{len(messages)} readings after restart",
    )
    time.sleep(1)  # anything redelivered after this point must not add rows
    assert at_kill < len(messages)
    assert_exactly_once(database_url, messages)


def test_database_down_10_s_mid_stream_loses_nothing(
    make_worker, publisher, database_url, postgres
):
    messages = stream()
    worker = make_worker().start()
    wait_until_consuming(database_url, publisher)
    sender = publish_in_background(publisher, messages)
    wait_for(lambda: stored(database_url) >= 3000, timeout=60, what="3,000 readings stored")
    postgres.stop(mode="immediate")
    time.sleep(10)
    postgres.start()
    sender.join(timeout=180)
    wait_for(
        lambda: stored(database_url) == len(messages),
        timeout=120,
        what=f"{len(messages)} readings after the outage",
    )
    assert worker.process is not None and worker.process.poll() is None, "worker survived"
    time.sleep(1)
    assert_exactly_once(database_url, messages)


def test_two_workers_share_the_stream_exactly_once(make_worker, publisher, database_url, tmp_path):
    messages = stream()
    first = make_worker("test-ingest-1").start()
    second = make_worker("test-ingest-2").start()
    wait_until_consuming(database_url, publisher)
    # a probe reaches one worker; make sure the other is subscribed too
    time.sleep(2)
    publisher.publish_all(messages)
    wait_for(
        lambda: stored(database_url) == len(messages),
        timeout=120,
        what=f"{len(messages)} readings by two workers",
    )
    assert first.terminate() == 0 and second.terminate() == 0
    assert_exactly_once(database_url, messages)
    shares = []
    for client_id in ("test-ingest-1", "test-ingest-2"):
        log = (tmp_path / f"{client_id}.log").read_text()
        totals = re.findall(r"totals: (\d+) readings stored", log)
        shares.append(int(totals[-1]))
    assert all(share > 0 for share in shares), f"both workers took part: {shares}"
    # the probe reading is counted by whichever worker took it
    assert sum(shares) in (len(messages), len(messages) + 1)


def test_sigterm_while_database_is_down_acks_nothing_and_loses_nothing(
    make_worker, publisher, database_url, postgres
):
    messages = stream()[:400]
    worker = make_worker().start()
    wait_until_consuming(database_url, publisher)
    postgres.stop(mode="immediate")
    try:
        publisher.publish_all(messages)
        time.sleep(1)  # the worker holds a batch it cannot commit
        assert worker.terminate(timeout=60) == 1, "cannot drain: exits non-zero, no ack"
    finally:
        postgres.start()
    make_worker().start()
    wait_for(
        lambda: stored(database_url) == len(messages),
        timeout=60,
        what="the unacknowledged batch redelivered after restart",
    )
    time.sleep(1)
    assert_exactly_once(database_url, messages)
