"""One intake behind three doors: the same corpus of good and hostile readings sent over MQTT,
POSTed to /v1/readings and imported from a file stores the same rows and the same dead
letters, with the same reason and sentence (the door's own prefix, "row N: ", aside)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from ingest.importer import import_files
from storage.aggregation import STAGE_TABLES
from tests.support import count, wait_for, wait_until_consuming

# (station, ts, {parameter: value as sent}, the reason it dies of, or None when stored)
CORPUS: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("110000-A001", "2026-03-01T08:00:00+08:00", {"pm25": 35.2}, None),
    ("110000-A001", "2026-03-01T08:00:00+08:00", {"pm10": 61.0}, None),
    ("650000-A001", "2026-03-01T08:00:00", {"pm25": 12.0}, None),  # naive: Urumqi time
    (
        "W-YANGTZE-01",
        "2026-03-01T10:00:00+08:00",
        {"do": 6.1, "codmn": 3.2, "nh3_n": 0.31, "tp": 0.08},  # class derived from these
        None,
    ),
    ("110000-A001", "2026-03-01T09:00:00+08:00", {"pm25": -5}, "negative_value"),
    ("110000-A001", "2026-03-01T10:00:00+08:00", {"pm25": -999}, "sentinel_value"),
    ("110000-A001", "2026-03-01T11:00:00+08:00", {"pm25": 50000}, "out_of_range"),
    ("110000-A001", "2099-01-01T00:00:00+08:00", {"pm25": 10}, "timestamp_future"),
    ("110000-A001", "1985-01-01T00:00:00+08:00", {"pm25": 10}, "timestamp_invalid"),
    ("123456-NOPE", "2026-03-01T08:00:00+08:00", {"pm25": 10}, "unknown_station"),
    ("999999-OFF", "2026-03-01T08:00:00+08:00", {"pm25": 10}, "inactive_station"),
    ("110000-A001", "2026-03-01T12:00:00+08:00", {"xyz": 10}, "unknown_parameter"),
    ("110000-A001", "2026-03-01T13:00:00+08:00", {"pm25": "abc"}, "non_numeric_value"),
]
GOOD_READINGS = sum(len(values) for _, _, values, reason in CORPUS if reason is None) + 1
BAD_READINGS = sum(1 for *_, reason in CORPUS if reason is not None)
# readings_hourly is a view over readings (0008): emptied with them
DATA_TABLES = ", ".join(
    ("readings", *STAGE_TABLES, "dead_letters", "imports", "alert_state", "alert_events")
)
# What a door puts before a rule's sentence, and the receive time (each door's own clock).
_DOOR_PREFIX = re.compile(r"^(row \d+|reading|readings\[\d+\]): ")
_RECEIVE_TIME = re.compile(r"the receive time \S+")

Stored = list[tuple[str, str, Any, float]]
DeadLetters = list[tuple[str | None, str, str]]


def _fresh(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(f"TRUNCATE {DATA_TABLES}")


def _outcome(database_url: str) -> tuple[Stored, DeadLetters]:
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT station_id, parameter, ts, value FROM readings ORDER BY 1, 2, 3"
        ).fetchall()
        letters = conn.execute("SELECT station_id, reason, detail FROM dead_letters").fetchall()
    unified = [
        (station, reason, _RECEIVE_TIME.sub("the receive time T", _DOOR_PREFIX.sub("", detail)))
        for station, reason, detail in letters
    ]
    return [tuple(row) for row in stored], sorted(unified)


def _through(database_url: str, door: Callable[[], None]) -> tuple[Stored, DeadLetters]:
    _fresh(database_url)
    door()
    return _outcome(database_url)


def _wait_for_everything(database_url: str) -> None:
    wait_for(
        lambda: (
            count(database_url, "SELECT count(*) FROM dead_letters") >= BAD_READINGS
            and count(database_url, "SELECT count(*) FROM readings") >= GOOD_READINGS
        ),
        timeout=30,
        what=f"{GOOD_READINGS} readings and {BAD_READINGS} dead letters",
    )


def test_the_three_doors_store_and_refuse_the_same_corpus_the_same_way(
    make_worker, publisher, database_url, api, make_key, tmp_path: Path
):
    def mqtt() -> None:
        for station, ts, values, _ in CORPUS:
            publisher.publish(station, {"ts": ts, **values}).wait_for_publish(10)
        _wait_for_everything(database_url)

    def http() -> None:
        api.headers["Authorization"] = f"Bearer {make_key('ingest')}"
        for station, ts, values, reason in CORPUS:
            response = api.post(
                "/v1/readings",
                params={"station_id": station},
                content=json.dumps({"ts": ts, **values}),
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == (200 if reason is None else 422), response.text

    def import_file() -> None:
        path = tmp_path / "corpus.csv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["station", "parameter", "ts", "value"])
            for station, ts, values, _ in CORPUS:
                writer.writerows([station, p, ts, v] for p, v in values.items())
        summary = import_files(database_url, [path])
        assert summary.files_imported == 1 and not summary.files_failed

    make_worker().start()
    wait_until_consuming(database_url, publisher)
    by_mqtt = _through(database_url, mqtt)
    by_http = _through(database_url, http)
    by_import = _through(database_url, import_file)

    stored, dead_letters = by_mqtt
    assert len(stored) == GOOD_READINGS
    assert ("W-YANGTZE-01", "water_class") in {(s, p) for s, p, *_ in stored}
    expected_reasons = sorted(reason for *_, reason in CORPUS if reason is not None)
    assert sorted(reason for _, reason, _ in dead_letters) == expected_reasons
    assert by_http == by_mqtt
    assert by_import == by_mqtt
