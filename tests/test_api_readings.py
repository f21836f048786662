"""/v1/stations/{station_id}/readings: pages, time ranges, CSV, auth, and a CSV of more than
100,000 rows streamed by a real uvicorn process with bounded memory."""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from core import PROJECT_ROOT
from storage.writer import prepare_connection, write_batch
from tests.conftest import ADMIN_KEY
from tests.support import wait_for

RECEIVED = datetime(2026, 11, 28, tzinfo=UTC)
T0 = datetime(2026, 3, 1, tzinfo=UTC)
STATION = "110000-A001"
READINGS = f"/v1/stations/{STATION}/readings"


def store(database_url: str, readings: list[tuple[str, str, datetime, float]]) -> None:
    """Write readings through the batch writer, as the ingest worker does."""
    rows = [(*reading, RECEIVED) for reading in readings]
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        for i in range(0, len(rows), 20_000):
            write_batch(conn, rows[i : i + 20_000])


def hourly(station: str, parameter: str, hours: int, value=lambda h: 10.0 + h):
    return [(station, parameter, T0 + timedelta(hours=h), value(h)) for h in range(hours)]


def test_pages_follow_the_cursor_without_gaps_or_repeats(admin, database_url):
    # two parameters share every timestamp: pages must split ties in (ts, parameter) order
    store(database_url, hourly(STATION, "pm25", 30) + hourly(STATION, "pm10", 30))
    store(database_url, hourly("110000-A002", "pm25", 30))  # another station: never listed
    seen, pages, cursor = [], 0, None
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = admin.get(READINGS, params=params)
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        assert 1 <= len(items) <= 7
        seen += [(item["ts"], item["parameter"]) for item in items]
        pages += 1
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    expected = sorted(
        ((T0 + timedelta(hours=h)).isoformat(), p) for h in range(30) for p in ("pm10", "pm25")
    )
    assert pages == 9
    assert seen == expected
    assert len(set(seen)) == 60


def test_readings_carry_utc_offset_unit_and_flag(admin, database_url):
    store(database_url, [(STATION, "co", T0, 0.8), (STATION, "pm25", T0, 35.2)])
    items = admin.get(READINGS).json()["items"]
    assert items == [
        {
            "station_id": STATION,
            "parameter": "co",
            "ts": "2026-03-01T00:00:00+00:00",
            "value": 0.8,
            "unit": "mg/m3",
            "flag": "valid",
            "flag_reason": None,
            "quality_flags": [],
        },
        {
            "station_id": STATION,
            "parameter": "pm25",
            "ts": "2026-03-01T00:00:00+00:00",
            "value": 35.2,
            "unit": "ug/m3",
            "flag": "valid",
            "flag_reason": None,
            "quality_flags": [],
        },
    ]


def test_time_range_with_offsets_includes_start_and_excludes_end(admin, database_url):
    store(database_url, hourly(STATION, "pm25", 12) + hourly(STATION, "pm10", 12))
    # 10:00 Beijing = 02:00 UTC; 06:00Z ends the range
    params = {"start": "2026-03-01T10:00:00+08:00", "end": "2026-03-01T06:00:00Z"}
    got = admin.get(READINGS, params=params | {"parameter": "pm25"}).json()["items"]
    assert [item["ts"] for item in got] == [
        "2026-03-01T02:00:00+00:00",
        "2026-03-01T03:00:00+00:00",
        "2026-03-01T04:00:00+00:00",
        "2026-03-01T05:00:00+00:00",
    ]
    assert [item["value"] for item in got] == [12.0, 13.0, 14.0, 15.0]
    both = admin.get(READINGS, params=params).json()["items"]
    assert len(both) == 8
    # an alias of the parameter name is understood
    alias = admin.get(READINGS, params=params | {"parameter": "PM2.5"}).json()["items"]
    assert alias == got


def test_naive_datetime_is_rejected_asking_for_an_offset(admin):
    response = admin.get(READINGS, params={"start": "2026-03-01T00:00:00"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert [p["name"] for p in problem["invalid_params"]] == ["query.start"]
    assert "offset" in problem["invalid_params"][0]["reason"]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, 422, "query.end"),
        ({"parameter": "pm3"}, 422, "query.parameter"),
        ({"limit": 1001}, 422, "query.limit"),
        ({"limit": 0}, 422, "query.limit"),
        ({"format": "xml"}, 422, "query.format"),
        ({"start": "yesterday"}, 422, "query.start"),
        ({"cursor": "%%%"}, 400, None),
        ({"cursor": "WyJub3QgYSB0aW1lIiwgInBtMjUiXQ"}, 400, None),  # ["not a time", "pm25"]
    ],
)
def test_bad_input_is_a_problem_never_a_server_error(admin, params, status, field):
    response = admin.get(READINGS, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert [p["name"] for p in response.json()["invalid_params"]] == [field]


@pytest.mark.parametrize("csv_wanted", [False, True])
def test_unknown_station_is_404_problem(admin, csv_wanted):
    params = {"format": "csv"} if csv_wanted else {}
    response = admin.get("/v1/stations/nope/readings", params=params)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/station-not-found"


@pytest.mark.parametrize(
    ("params", "headers"),
    [({"format": "csv"}, {}), ({}, {"Accept": "text/csv"})],
    ids=["format-query", "accept-header"],
)
def test_csv_by_format_query_or_accept_header(admin, database_url, params, headers):
    store(database_url, [*hourly(STATION, "pm25", 3), (STATION, "co", T0, 0.8)])
    response = admin.get(READINGS, params=params | {"limit": 1}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "110000-A001-readings.csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [  # limit does not apply: the whole range
        ["station_id", "parameter", "ts", "value", "unit", "flag", "flag_reason", "quality_flags"],
        [STATION, "co", "2026-03-01T00:00:00+00:00", "0.8", "mg/m3", "valid", "", ""],
        [STATION, "pm25", "2026-03-01T00:00:00+00:00", "10.0", "ug/m3", "valid", "", ""],
        [STATION, "pm25", "2026-03-01T01:00:00+00:00", "11.0", "ug/m3", "valid", "", ""],
        [STATION, "pm25", "2026-03-01T02:00:00+00:00", "12.0", "ug/m3", "valid", "", ""],
    ]
    # ?format=json wins over the Accept header
    as_json = admin.get(READINGS, params={"format": "json"}, headers={"Accept": "text/csv"})
    assert len(as_json.json()["items"]) == 4


@pytest.mark.parametrize(
    "accept",
    ["application/json, text/csv;q=0.1", "text/csv;q=0.1, */*", "*/*", "text/csv;q=0"],
)
def test_json_page_unless_accept_prefers_csv(admin, database_url, accept):
    store(database_url, hourly(STATION, "pm25", 3))
    response = admin.get(READINGS, params={"limit": 2}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert len(response.json()["items"]) == 2


@pytest.mark.parametrize("accept", ["text/csv, application/json;q=0.9", "TEXT/CSV"])
def test_csv_when_accept_prefers_it(admin, database_url, accept):
    store(database_url, hourly(STATION, "pm25", 3))
    response = admin.get(READINGS, params={"limit": 1}, headers={"Accept": accept})
    assert response.headers["content-type"].startswith("text/csv")
    assert len(list(csv.reader(io.StringIO(response.text)))) == 4  # header + 3 readings


@pytest.mark.parametrize("params", [{}, {"format": "csv"}], ids=["json", "csv"])
def test_401_without_key_403_without_read_scope(api, make_key, params):
    assert api.get(READINGS, params=params).status_code == 401
    bad = {"Authorization": "Bearer aw_kbad_x"}
    assert api.get(READINGS, params=params, headers=bad).status_code == 401
    ingest_only = {"Authorization": f"Bearer {make_key('ingest')}"}
    denied = api.get(READINGS, params=params, headers=ingest_only)
    assert denied.status_code == 403
    assert denied.json()["type"] == "/problems/forbidden"
    reader = {"Authorization": f"Bearer {make_key('read')}"}
    assert api.get(READINGS, params=params, headers=reader).status_code == 200


# --- a real server process: streaming and its memory ------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _peak_rss_kib(pid: int) -> int:
    """VmHWM: the most resident memory the process has ever used."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture()
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``python -m api`` under uvicorn on a free port: (base URL, pid)."""
    port = _free_port()
    env = {
        **os.environ,
        "AIRWATER_DATABASE_URL": database_url,
        "AIRWATER_HTTP_PORT": str(port),
        "AIRWATER_ADMIN_KEY": ADMIN_KEY,
        "AIRWATER_MQTT_URL": "mqtt://127.0.0.1:1",
        "AIRWATER_METRICS_PORT": "0",
    }
    with open(tmp_path / "api.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "--log-level", "warning"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, (tmp_path / "api.log").read_text()
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, timeout=30, what="the API process to answer /health")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _minute_readings(count: int) -> list[tuple[str, str, datetime, float]]:
    """``count`` readings: pm10 and pm25 every minute, value = minute index + 0.25."""
    return [
        (STATION, parameter, T0 + timedelta(minutes=i // 2), i // 2 + 0.25)
        for i, parameter in zip(range(count), ["pm10", "pm25"] * (count // 2), strict=True)
    ]


def test_csv_of_120000_rows_streams_in_order_with_bounded_memory(server, database_url):
    base, pid = server
    rows = 120_000
    store(database_url, _minute_readings(rows))
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    url = f"{base}{READINGS}"
    with httpx.Client(headers=auth, timeout=120) as client:
        # warm up every code path (a JSON page, a CSV of one short chunk, a CSV of four
        # full chunks) before taking the baseline
        assert client.get(url, params={"limit": 1000}).status_code == 200
        small = client.get(url, params={"format": "csv", "end": "2026-03-01T01:30:00Z"})
        assert small.status_code == 200 and small.text.count("\n") == 181
        week = client.get(url, params={"format": "csv", "end": "2026-03-08T00:00:00Z"})
        assert week.text.count("\n") == 1 + 7 * 24 * 60 * 2
        before = _peak_rss_kib(pid)

        received = csv_bytes = 0
        last_key: tuple[str, str] | None = None
        with client.stream("GET", url, headers={"Accept": "text/csv"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/csv")
            assert "content-length" not in response.headers  # streamed, not buffered
            lines = response.iter_lines()
            assert (
                next(lines) == "station_id,parameter,ts,value,unit,flag,flag_reason,quality_flags"
            )
            for line in lines:
                if not line:
                    continue
                csv_bytes += len(line) + 2
                station_id, parameter, ts, value, unit, flag, _, _ = line.split(",")
                minute, which = divmod(received, 2)
                assert (parameter, ts) == (
                    ("pm10", "pm25")[which],
                    (T0 + timedelta(minutes=minute)).isoformat(),
                ), f"row {received} out of order: {line}"
                assert float(value) == minute + 0.25
                assert (station_id, unit, flag) == (STATION, "ug/m3", "valid")
                assert last_key is None or (ts, parameter) > last_key
                last_key = (ts, parameter)
                received += 1
        growth_kib = _peak_rss_kib(pid) - before

    assert received == rows
    print(
        f"\nCSV of {received} rows, {csv_bytes / 2**20:.1f} MiB: peak RSS of the API process "
        f"grew by {growth_kib / 1024:.1f} MiB ({before / 1024:.1f} MiB before)"
    )
    # holding the rows (or the text) at once would take several times the CSV's size
    assert growth_kib * 1024 < csv_bytes / 4, (growth_kib, csv_bytes)


def test_abandoned_csv_downloads_give_their_connections_back(server, database_url):
    base, _ = server
    store(database_url, _minute_readings(40_000))
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    url = f"{base}{READINGS}"
    # more abandoned downloads than the API's pool has connections (10)
    for _ in range(12):
        with (
            httpx.Client(headers=auth, timeout=30) as client,
            client.stream("GET", url, params={"format": "csv"}) as response,
        ):
            assert response.status_code == 200
            next(response.iter_bytes())
    started = time.monotonic()
    with httpx.Client(headers=auth, timeout=30) as client:
        page = client.get(url, params={"limit": 5})
        assert page.status_code == 200 and len(page.json()["items"]) == 5
        full = client.get(url, params={"format": "csv"})
        assert full.text.count("\n") == 40_001
    assert time.monotonic() - started < 10  # no wait for a pool connection

    def no_open_transaction() -> bool:
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            ).fetchone()
        return row is not None and row[0] == 0

    wait_for(no_open_transaction, timeout=10, what="the API's connections to be idle")
