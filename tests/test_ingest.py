"""End-to-end ingest: MQTT publish → worker → TimescaleDB, against real services."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest

from tests.support import count, settle, wait_for, wait_until_consuming

BEIJING = "110000-A001"


@pytest.fixture()
def worker(make_worker, publisher, database_url):
    w = make_worker().start()
    wait_until_consuming(database_url, publisher)
    return w


def rows(database_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


def stored(database_url: str, station_id: str) -> dict[tuple[str, datetime], float]:
    return {
        (p, ts): v
        for p, ts, v in rows(
            database_url,
            "SELECT parameter, ts, value FROM readings WHERE station_id = %s",
            (station_id,),
        )
    }


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_single_json_reading_is_stored(worker, publisher, database_url):
    publisher.publish_all(
        [(BEIJING, {"ts": "2026-03-01T08:00:00+08:00", "pm25": 35.2, "pm10": 61.0})]
    )
    wait_for(lambda: len(stored(database_url, BEIJING)) == 2, what="2 readings")
    assert stored(database_url, BEIJING) == {
        ("pm25", utc("2026-03-01T00:00:00+00:00")): 35.2,
        ("pm10", utc("2026-03-01T00:00:00+00:00")): 61.0,
    }


def test_batch_with_naive_and_epoch_timestamps(worker, publisher, database_url):
    batch = {
        "readings": [
            {"ts": "2026-03-01T09:00:00", "pm25": 40},  # naive: Beijing time
            {"ts": 1772330400, "pm25": 41},  # epoch seconds
            {"ts": "2026-03-01T11:00:00Z", "pm25": 42.5},
        ]
    }
    publisher.publish_all([(BEIJING, batch)])
    wait_for(lambda: len(stored(database_url, BEIJING)) == 3, what="3 readings")
    assert stored(database_url, BEIJING) == {
        ("pm25", utc("2026-03-01T01:00:00+00:00")): 40.0,
        ("pm25", datetime.fromtimestamp(1772330400, UTC)): 41.0,
        ("pm25", utc("2026-03-01T11:00:00+00:00")): 42.5,
    }


def test_naive_timestamp_is_taken_in_the_station_timezone(worker, publisher, database_url):
    publisher.publish_all([("650000-A001", {"ts": "2026-03-01T08:00:00", "pm25": 20})])
    wait_for(lambda: stored(database_url, "650000-A001"), what="Urumqi reading")
    # Asia/Urumqi is UTC+6
    assert list(stored(database_url, "650000-A001")) == [("pm25", utc("2026-03-01T02:00:00Z"))]


def test_water_class_payload_is_stored_as_number(worker, publisher, database_url):
    publisher.publish_all(
        [
            ("W-YANGTZE-01", {"ts": "2026-03-01T08:00:00+08:00", "water_class": "III"}),
            ("W-YANGTZE-01", {"ts": "2026-03-02T08:00:00+08:00", "water_class": "劣V"}),
        ]
    )
    wait_for(lambda: len(stored(database_url, "W-YANGTZE-01")) == 2, what="2 classes")
    assert sorted(stored(database_url, "W-YANGTZE-01").values()) == [3.0, 6.0]


@pytest.mark.parametrize(
    ("station_id", "values", "expected_class"),
    [
        # DO II, CODMn II, NH3-N II, TP 0.08 river II  -> Class II
        ("W-YANGTZE-01", {"do": 6.1, "codmn": 3.2, "nh3_n": 0.31, "tp": 0.08}, 2.0),
        # same water in a lake: TP 0.08 is Class IV for lakes
        ("W-TAIHU-01", {"do": 6.1, "codmn": 3.2, "nh3_n": 0.31, "tp": 0.08}, 4.0),
        # NH3-N 2.1 is beyond Class V
        ("W-YANGTZE-01", {"do": 8, "nh3_n": 2.1}, 6.0),
    ],
)
def test_water_parameters_derive_the_single_factor_class(
    worker, publisher, database_url, station_id, values, expected_class
):
    publisher.publish_all([(station_id, {"ts": "2026-03-01T08:00:00+08:00", **values})])
    wait_for(
        lambda: len(stored(database_url, station_id)) == len(values) + 1,
        what="parameters and class",
    )
    got = stored(database_url, station_id)
    assert got[("water_class", utc("2026-03-01T00:00:00Z"))] == expected_class
    for parameter, value in values.items():
        assert got[(parameter, utc("2026-03-01T00:00:00Z"))] == value


def test_senml_units_are_converted_to_ug_m3(worker, publisher, database_url):
    pack = [
        {
            "bn": f"urn:dev:station:{BEIJING}:",
            "bt": 1772323200,
            "bu": "ug/m3",
            "n": "pm25",
            "v": 35.2,
        },
        {"n": "pm10", "u": "kg/m3", "v": 6.1e-8, "t": 0},
        {"n": "pm25", "u": "kg/m3", "v": 3.6e-8, "t": 3600},
        {"n": "co", "u": "mg/m3", "v": 0.8, "t": 3600},
    ]
    publisher.publish_all([(BEIJING, pack)])
    wait_for(lambda: len(stored(database_url, BEIJING)) == 4, what="4 SenML readings")
    t0 = datetime.fromtimestamp(1772323200, UTC)
    t1 = datetime.fromtimestamp(1772323200 + 3600, UTC)
    assert stored(database_url, BEIJING) == {
        ("pm25", t0): 35.2,
        ("pm10", t0): 61.0,
        ("pm25", t1): 36.0,
        ("co", t1): 0.8,
    }


BAD_PAYLOADS = [
    (BEIJING, b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": ', "malformed_json"),
    (BEIJING, {"ts": "2026-03-01T08:00:00+08:00", "pm99": 3}, "unknown_parameter"),
    ("330000-X999", {"ts": "2026-03-01T08:00:00+08:00", "pm25": 3}, "unknown_station"),
    ("999999-OFF", {"ts": "2026-03-01T08:00:00+08:00", "pm25": 3}, "inactive_station"),
    (
        BEIJING,
        {"station_id": "110000-A002", "ts": "2026-03-01T08:00:00+08:00", "pm25": 3},
        "station_mismatch",
    ),
    (
        BEIJING,
        [{"bn": "urn:dev:110000-A002:", "n": "pm25", "v": 3, "bt": 1772323200}],
        "station_mismatch",
    ),
    (BEIJING, {"ts": "2026-03-01T08:00:00+08:00", "pm25": "high"}, "non_numeric_value"),
    (BEIJING, {"ts": "2026-03-01T08:00:00+08:00", "pm25": -3.5}, "negative_value"),
    (BEIJING, {"ts": "2026-03-01T08:00:00+08:00", "pm25": -999}, "sentinel_value"),
    (BEIJING, {"ts": "2026-03-01T08:00:00+08:00", "pm25": 1e308}, "out_of_range"),
    (BEIJING, {"ts": "2099-01-01T00:00:00+08:00", "pm25": 3}, "timestamp_future"),
    (BEIJING, {"ts": "yesterday", "pm25": 3}, "timestamp_invalid"),
    (BEIJING, {"pm25": 3}, "timestamp_missing"),
    (
        BEIJING,
        [{"bn": f"{BEIJING}/", "n": "pm25", "u": "Cel", "v": 3, "bt": 1772323200}],
        "unknown_unit",
    ),
    (
        "W-YANGTZE-01",
        {"ts": "2026-03-01T08:00:00+08:00", "water_class": "VII"},
        "invalid_water_class",
    ),
    (BEIJING, b"[1, 2, 3]", "invalid_shape"),
]


def test_every_rejection_reason_reaches_dead_letters(worker, publisher, database_url):
    publisher.publish_all([(station, payload) for station, payload, _ in BAD_PAYLOADS])
    wait_for(
        lambda: count(database_url, "SELECT count(*) FROM dead_letters") >= len(BAD_PAYLOADS),
        what="all dead letters",
    )
    letters = rows(database_url, "SELECT topic, payload, reason, detail FROM dead_letters")
    by_payload = {
        (topic, bytes(payload)): (reason, detail) for topic, payload, reason, detail in letters
    }
    for station, payload, reason in BAD_PAYLOADS:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        got_reason, detail = by_payload[(f"stations/{station}/readings", raw)]
        assert got_reason == reason, f"{payload!r}: {detail}"
        assert detail, "every dead letter carries a human sentence"
    assert count(database_url, "SELECT count(*) FROM readings") == 0


def test_bad_reading_in_a_batch_loses_nothing_else(worker, publisher, database_url):
    batch = {
        "readings": [
            {"ts": "2026-03-01T08:00:00+08:00", "pm25": 30, "pm10": -1},
            {"ts": "2026-03-01T09:00:00+08:00", "pm25": 31},
        ]
    }
    publisher.publish_all([(BEIJING, batch)])
    wait_for(
        lambda: count(database_url, "SELECT count(*) FROM dead_letters") == 1,
        what="the dead letter",
    )
    wait_for(lambda: len(stored(database_url, BEIJING)) == 2, what="the good readings")
    assert sorted(stored(database_url, BEIJING).values()) == [30.0, 31.0]
    assert rows(database_url, "SELECT reason FROM dead_letters") == [("negative_value",)]


def test_repeated_message_is_stored_once_and_first_value_wins(worker, publisher, database_url):
    first = {"ts": "2026-03-01T08:00:00+08:00", "pm25": 35.0}
    again = {"ts": "2026-03-01T08:00:00+08:00", "pm25": 99.0}
    publisher.publish_all([(BEIJING, first), (BEIJING, first), (BEIJING, again)])
    publisher.publish_all([(BEIJING, {"ts": "2026-03-01T09:00:00+08:00", "pm25": 1})])
    wait_for(lambda: len(stored(database_url, BEIJING)) == 2, what="2 readings")
    assert stored(database_url, BEIJING)[("pm25", utc("2026-03-01T00:00:00Z"))] == 35.0
    assert rows(
        database_url,
        "SELECT count FROM readings_hourly WHERE station_id = %s AND "
        "bucket = '2026-03-01T00:00:00Z'",
        (BEIJING,),
    ) == [(1,)]


def test_late_reading_updates_its_buckets_but_not_latest(worker, publisher, database_url):
    def latest() -> list[tuple]:
        return rows(
            database_url,
            "SELECT ts, value FROM latest_readings WHERE station_id = %s AND parameter = 'pm25'",
            (BEIJING,),
        )

    def daily() -> list[tuple]:
        return rows(
            database_url,
            "SELECT day, mean FROM readings_daily WHERE station_id = %s AND parameter = 'pm25'"
            " ORDER BY day",
            (BEIJING,),
        )

    publisher.publish_all([(BEIJING, {"ts": "2026-03-02T08:00:00+08:00", "pm25": 50})])
    wait_for(lambda: len(stored(database_url, BEIJING)) == 1, what="the new reading")
    settle(database_url)  # the aggregation stage reflects the new reading first
    assert latest() == [(utc("2026-03-02T00:00:00Z"), 50.0)]
    assert daily() == [(datetime(2026, 3, 2).date(), 50.0)]
    publisher.publish_all([(BEIJING, {"ts": "2026-03-01T08:00:00+08:00", "pm25": 10})])
    wait_for(lambda: len(stored(database_url, BEIJING)) == 2, what="the late reading")
    settle(database_url)
    assert latest() == [(utc("2026-03-02T00:00:00Z"), 50.0)]
    assert daily() == [(datetime(2026, 3, 1).date(), 10.0), (datetime(2026, 3, 2).date(), 50.0)]


def test_sigterm_drains_commits_and_exits_zero(make_worker, publisher, database_url):
    worker = make_worker(ingest_batch_ms="3000", ingest_batch_messages="5000").start()
    wait_until_consuming(database_url, publisher, batch_window_s=3)
    publisher.publish_all([(BEIJING, {"ts": 1772323200 + 3600 * i, "pm25": i}) for i in range(200)])
    # the worker is waiting for its 3 s batch window to close; SIGTERM must not lose it
    assert worker.terminate() == 0
    assert (
        count(database_url, "SELECT count(*) FROM readings WHERE station_id = %s", (BEIJING,))
        == 200
    )
