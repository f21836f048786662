"""No message can stop ingestion (#12): what the database refuses becomes a dead letter and
the rest of its batch is stored, at every door (MQTT worker, POST /v1/readings, import),
against the real PostgreSQL+TimescaleDB and Mosquitto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ingest.importer import import_files
from schemas.payloads import Rejection
from storage.writer import (
    DeadLetter,
    ReadingRow,
    is_refusal,
    prepare_connection,
    write_isolating,
)
from tests.support import (
    assert_rollups_match_readings,
    count,
    record_fault_figures,
    settle,
    wait_for,
    wait_until_consuming,
    wait_until_stable,
    worker_totals,
)

BEIJING, TIANTAN, SHANGHAI = "110000-A001", "110000-A002", "310000-A001"
# The test's CHECK constraint makes the database refuse exactly this value: a stand-in for
# any row the database cannot hold once the plausible ranges keep huge numbers out.
POISON = 4242.4242
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture()
def poison(database_url: str) -> Iterator[float]:
    with psycopg.connect(database_url) as conn:
        conn.execute(f"ALTER TABLE readings ADD CONSTRAINT test_poison CHECK (value <> {POISON})")
    yield POISON
    with psycopg.connect(database_url) as conn:
        conn.execute("ALTER TABLE readings DROP CONSTRAINT IF EXISTS test_poison")


# Since 0008 the commit path sums nothing (the hours are a view over `readings`, the other
# levels are the aggregation stage's): this trigger stands for a sum the database takes while
# storing a row, as the hourly rollup table did before: the hour's sum, which overflows float8.
_HOUR_SUM = """
CREATE FUNCTION test_hour_sum() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM coalesce(sum(value), 0) + NEW.value FROM readings
    WHERE station_id = NEW.station_id AND parameter = NEW.parameter
      AND ts >= date_trunc('hour', NEW.ts) AND ts < date_trunc('hour', NEW.ts) + interval '1 hour';
    RETURN NEW;
END $$;
CREATE TRIGGER test_hour_sum BEFORE INSERT ON readings
    FOR EACH ROW EXECUTE FUNCTION test_hour_sum();
"""


@pytest.fixture()
def hour_sum(database_url: str) -> Iterator[None]:
    with psycopg.connect(database_url) as conn:
        conn.execute(_HOUR_SUM)
    yield
    with psycopg.connect(database_url) as conn:
        conn.execute("DROP TRIGGER IF EXISTS test_hour_sum ON readings")
        conn.execute("DROP FUNCTION IF EXISTS test_hour_sum()")


@pytest.fixture()
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as connection:
        prepare_connection(connection)
        yield connection


def _dead_letters(database_url: str) -> list[tuple[str, str, bytes, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT reason, source, payload, detail FROM dead_letters ORDER BY id"
        ).fetchall()
    return [(reason, source, bytes(payload), detail) for reason, source, payload, detail in rows]


def _refused_as(source: str):
    def refused(index: int, rows: list[ReadingRow], rejection: Rejection) -> DeadLetter:
        station_id, parameter, _, value, received_at = rows[0]
        payload = f"part {index}: {parameter}={value!r}".encode()
        return DeadLetter(
            f"test/{source}",
            station_id,
            payload,
            rejection.reason,
            rejection.detail,
            received_at,
            source,
        )

    return refused


# --- the writer -------------------------------------------------------------------------------
def test_hourly_overflow_keeps_the_first_huge_value_and_dead_letters_the_second(
    conn, database_url, hour_sum
):
    now = datetime.now(UTC)
    rows: list[ReadingRow] = [
        (BEIJING, "pm25", T0, 35.0, now),
        (TIANTAN, "pm25", T0, 1e308, now),
        (TIANTAN, "pm25", T0 + timedelta(minutes=1), 1e308, now),
        (SHANGHAI, "pm25", T0, 40.0, now),
    ]
    result = write_isolating(
        conn, rows, (), (), part_ends=[1, 2, 3, 4], refused=_refused_as("mqtt")
    )
    # alone, each huge value fits; their hourly sum does not (the repro, without
    # the plausible ranges that now stop it at the door; the sum is the trigger's)
    assert (result.inserted, result.duplicates, len(result.refused)) == (3, 0, 1)
    assert result.refused[0].part == 2
    (reason, source, payload, detail) = _dead_letters(database_url)[0]
    assert (reason, source, payload) == ("storage_rejected", "mqtt", b"part 2: pm25=1e+308")
    assert "NumericValueOutOfRange (22003)" in detail and "overflow" in detail
    assert count(database_url, "SELECT count(*) FROM readings") == 3
    assert count(database_url, "SELECT count(*) FROM readings_hourly") == 3
    assert_rollups_match_readings(database_url)


def test_an_hour_whose_sum_overflows_does_not_stop_the_aggregation_stage(conn, database_url):
    """Only SQL can store such values (the doors' plausible ranges stop them): the stage sets
    the refused station-day aside as a dead letter and reflects everything else."""
    now = datetime.now(UTC)
    rows: list[ReadingRow] = [
        (BEIJING, "pm25", T0, 35.0, now),
        (TIANTAN, "pm25", T0, 1e308, now),
        (TIANTAN, "pm25", T0 + timedelta(minutes=1), 1e308, now),
    ]
    result = write_isolating(conn, rows, (), (), part_ends=None, refused=_refused_as("mqtt"))
    assert (result.inserted, len(result.refused)) == (3, 0)  # no sum on the commit path
    settle(database_url)
    # the other station-days of the queue are reflected all the same
    assert (
        count(
            database_url,
            "SELECT count(*) FROM readings_daily WHERE station_id = %s AND parameter = 'pm25'",
            (BEIJING,),
        )
        == 1
    )
    assert count(database_url, "SELECT count(*) FROM aggregation_queue") == 0
    letters = conn.execute(
        "SELECT topic, station_id, payload, reason, detail FROM dead_letters"
        " WHERE source = 'aggregation'"
    ).fetchall()
    assert len(letters) == 1
    topic, station, payload, reason, detail = letters[0]
    assert (topic, station, reason) == ("aggregation", TIANTAN, "storage_rejected")
    assert bytes(payload).startswith(f"{TIANTAN},pm25,".encode())
    assert "out of range" in detail


def test_parts_written_inside_a_callers_transaction_are_counted_once(conn, database_url, poison):
    now = datetime.now(UTC)
    values = [10.0, 20.0, poison, 30.0, 40.0, poison, 50.0]
    rows = [(BEIJING, "pm25", T0 + timedelta(minutes=5 * i), v, now) for i, v in enumerate(values)]
    with conn.transaction():  # as the importer does, with its journal
        result = write_isolating(
            conn, rows, (), (), part_ends=None, refused=_refused_as("import"), bulk=True
        )
    assert (result.inserted, [r.part for r in result.refused]) == (5, [2, 5])
    with psycopg.connect(database_url) as check:
        hour = check.execute("SELECT mean, count FROM readings_hourly").fetchall()
    assert hour == [(30.0, 5)]
    assert assert_rollups_match_readings(database_url) == 1


def test_an_exception_of_our_own_code_dead_letters_only_its_part(conn, database_url):
    now = datetime.now(UTC)
    rows = [(station, "pm25", T0, 30.0, now) for station in (BEIJING, TIANTAN, SHANGHAI)]

    def evaluate(cur: psycopg.Cursor) -> None:
        stations = {r[0] for r in cur.execute("SELECT station_id FROM new_readings")}
        if TIANTAN in stations:
            raise ZeroDivisionError("a bug met by Tiantan's reading")

    result = write_isolating(
        conn, rows, (), (), part_ends=None, refused=_refused_as("mqtt"), after_write=evaluate
    )
    assert result.inserted == 2
    (reason, _, _, detail) = _dead_letters(database_url)[0]
    assert reason == "processing_failed"
    assert detail == "processing failed: ZeroDivisionError: a bug met by Tiantan's reading"


def test_only_data_errors_are_refusals(conn):
    assert is_refusal(psycopg.errors.NumericValueOutOfRange("overflow"), conn)
    assert is_refusal(psycopg.errors.CheckViolation("check"), conn)
    assert is_refusal(ValueError("ours"), conn)
    # the database away or not set up: the whole batch is tried again, nothing dead-lettered
    assert not is_refusal(psycopg.OperationalError("connection lost"), conn)
    assert not is_refusal(psycopg.errors.UndefinedTable("no readings table"), conn)
    assert not is_refusal(psycopg.errors.DeadlockDetected("deadlock"), conn)
    conn.close()
    assert not is_refusal(psycopg.errors.CheckViolation("check"), conn)


# --- MQTT ---------------------------------------------------------------------------------------
def test_huge_values_from_a_station_are_dead_letters_and_ingestion_goes_on(
    make_worker, publisher, database_url
):
    """The issue's repro: two 1e308 values used to stop the worker, forever."""
    worker = make_worker().start()
    wait_until_consuming(database_url, publisher)
    publisher.publish_all(
        [
            (BEIJING, b'{"ts":1704067200,"pm25":1e308}'),
            (BEIJING, b'{"ts":1704067260,"pm25":1e308}'),
            (SHANGHAI, {"ts": 1704067200, "pm25": 41.0}),
        ]
    )
    wait_for(
        lambda: count(database_url, "SELECT count(*) FROM readings") == 1,
        what="Shanghai's reading",
    )
    wait_for(lambda: len(_dead_letters(database_url)) == 2, what="two dead letters")
    letters = _dead_letters(database_url)
    assert [reason for reason, *_ in letters] == ["out_of_range", "out_of_range"]
    assert "outside the plausible range 0..10000 ug/m3" in letters[0][3]
    assert worker.process is not None and worker.process.poll() is None


def test_one_poison_message_among_a_thousand_is_dead_lettered_and_the_rest_stored(
    make_worker, publisher, database_url, tmp_path, poison
):
    worker = make_worker(ingest_batch_messages="1000", ingest_batch_ms="3000").start()
    wait_until_consuming(database_url, publisher, batch_window_s=3.0)
    messages = [
        (BEIJING, {"ts": 1772323200 + 60 * i, "pm25": poison if i == 500 else 20.0 + i % 7})
        for i in range(1000)
    ]
    started = time.monotonic()
    publisher.publish_all(messages)
    wait_for(
        lambda: count(database_url, "SELECT count(*) FROM readings") == 999,
        timeout=60,
        what="999 readings",
    )
    settled_s = time.monotonic() - started
    letters = wait_for(lambda: _dead_letters(database_url), what="the dead letter")
    assert len(letters) == 1
    reason, source, payload, detail = letters[0]
    assert (reason, source) == ("storage_rejected", "mqtt")
    assert json.loads(payload) == messages[500][1]
    assert "CheckViolation (23514)" in detail and "test_poison" in detail
    # acked: nothing comes back, nothing more is written, the worker lives and goes on
    time.sleep(2)
    assert (
        wait_until_stable(lambda: count(database_url, "SELECT count(*) FROM readings"), quiet_s=2)
        == 999
    )
    assert len(_dead_letters(database_url)) == 1
    publisher.publish_all([(SHANGHAI, {"ts": 1772323200, "pm25": 12.0})])
    wait_for(
        lambda: count(database_url, "SELECT count(*) FROM readings") == 1000,
        what="a later message",
    )
    assert worker.process is not None and worker.process.poll() is None
    assert worker.terminate() == 0
    totals = worker_totals(tmp_path / "test-ingest-1.log")
    assert len(totals) == 1, "one run: the worker never restarted"
    assert (totals[0]["stored"], totals[0]["duplicates"]) == (1000 + 1, 0)  # + the probe
    assert totals[0]["dead_letters"] == 1
    assert assert_rollups_match_readings(database_url) > 0
    record_fault_figures(
        {
            "fault": "one poison message among 1,000 (CHECK constraint refuses it)",
            "published": 1000,
            "stored": 999,
            "dead_lettered": 1,
            "lost": 0,
            "duplicates": totals[0]["duplicates"],
            "settled_s": round(settled_s, 2),
            "worker_runs": len(totals),
        }
    )


# --- HTTP ---------------------------------------------------------------------------------------
def test_http_batch_with_a_poison_reading_stores_the_others_and_lists_it(
    api, make_key, database_url, poison
):
    api.headers["Authorization"] = f"Bearer {make_key('ingest')}"
    body = {
        "readings": [
            {"ts": "2026-03-01T08:00:00+08:00", "pm25": 30.0},
            {"ts": "2026-03-01T09:00:00+08:00", "pm25": poison},
            {"ts": "2026-03-01T10:00:00+08:00", "pm25": 32.0},
        ]
    }
    response = api.post("/v1/readings", params={"station_id": BEIJING}, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["stored"], answer["duplicates"]) == (2, 0)
    [rejected] = answer["rejected"]
    assert rejected["reason"] == "storage_rejected"
    assert rejected["detail"].startswith("pm25 = 4242.42 at 2026-03-01T09:00:00+08:00: ")
    assert "CheckViolation" in rejected["detail"]
    [(reason, source, payload, _)] = _dead_letters(database_url)
    assert (reason, source, json.loads(payload)) == ("storage_rejected", "http", body)
    # only poison: nothing stored, a 422 that says why
    only = api.post(
        "/v1/readings",
        params={"station_id": BEIJING},
        json={"ts": "2026-03-02T08:00:00+08:00", "pm25": poison},
    )
    assert only.status_code == 422
    assert only.json()["rejected"][0]["reason"] == "storage_rejected"


# --- import -------------------------------------------------------------------------------------
def test_import_dead_letters_the_poison_row_and_goes_on(database_url, tmp_path: Path, poison):
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE imports")
    lines = ["station_id,parameter,ts,value"]
    for hour in range(24):
        value = poison if hour == 7 else 20.0 + hour
        lines.append(f"{BEIJING},pm25,2025-01-01T{hour:02d}:00:00+08:00,{value}")
    path = tmp_path / "day.csv"
    path.write_text("\n".join(lines) + "\n")
    summary = import_files(database_url, [path])
    assert (summary.stored, dict(summary.rejected), summary.files_failed) == (
        23,
        {"storage_rejected": 1},
        [],
    )
    settle(database_url)  # what `airwater import` does at its end
    [(reason, source, payload, detail)] = _dead_letters(database_url)
    assert (reason, source) == ("storage_rejected", "import")
    assert payload == f"{BEIJING},pm25,2025-01-01T07:00:00+08:00,{poison!r}".encode()
    assert detail.startswith(payload.decode() + ": the database refused it: CheckViolation")
    with psycopg.connect(database_url) as conn:
        journal = conn.execute("SELECT finished_at IS NOT NULL, rejected FROM imports").fetchone()
        daily = conn.execute(
            "SELECT valid_hours FROM readings_daily WHERE parameter = 'pm25'"
        ).fetchone()
    assert journal == (True, {"storage_rejected": 1})
    assert daily == (23,)
    again = import_files(database_url, [path])
    assert (again.files_already_imported, again.stored) == (1, 0)
