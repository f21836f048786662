"""`airwater import`: formats, rejections, idempotence, resume after kill -9, memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core import PROJECT_ROOT
from ingest.importer import derived_city_code, detect_format, import_files
from tests.support import assert_rollups_match_readings, count, settle

WIDE_TYPES = [
    "PM2.5",
    "PM2.5_24h",
    "PM10",
    "PM10_24h",
    "SO2",
    "SO2_24h",
    "NO2",
    "NO2_24h",
    "O3",
    "O3_24h",
    "O3_8h",
    "O3_8h_24h",
    "CO",
    "CO_24h",
    "AQI",
]

CLI = [sys.executable, "-m", "airwater.cli", "import", "--no-progress"]


@pytest.fixture()
def db(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE imports")
    return database_url


def _write(path: Path, text: str, bom: bool = False) -> Path:
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    return path


def _reasons(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT reason, count(*) FROM dead_letters WHERE source = 'import' GROUP BY reason"
        ).fetchall()
    return dict(rows)


def _wide_file(path: Path, day: str, codes: list[str], hours: range = range(24)) -> Path:
    lines = ["date,hour,type," + ",".join(codes)]
    for hour in hours:
        for kind in WIDE_TYPES:
            cells = []
            for i, _ in enumerate(codes):
                if kind == "PM2.5" and hour == 3 and i == 0:
                    cells.append("")  # no reading
                else:
                    cells.append("0.8" if kind.startswith("CO") else str(10 + hour + i))
            lines.append(f"{day},{hour},{kind}," + ",".join(cells))
    return _write(path, "\n".join(lines) + "\n")


def _import_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env={**os.environ, "AIRWATER_DATABASE_URL": url},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_long_csv_stores_good_rows_and_dead_letters_the_rest_by_reason(db, tmp_path):
    csv_file = _write(
        tmp_path / "long.csv",
        "station_id,parameter,ts,value\n"
        "110000-A001,PM2.5,2025-01-01T08:00:00,35.5\n"  # naive = Asia/Shanghai
        "110000-A001,pm10,2025-01-01T00:00:00+00:00,60\n"
        "110000-A001,co,2025-01-01T09:00:00+08:00,\n"  # empty: no reading
        "NOPE-1,pm25,2025-01-01T08:00:00+08:00,10\n"
        "999999-OFF,pm25,2025-01-01T08:00:00+08:00,10\n"
        "110000-A001,benzene,2025-01-01T08:00:00+08:00,1\n"
        "110000-A001,so2,2025-01-01T10:00:00+08:00,-3\n"
        "110000-A001,so2,2025-01-01T11:00:00+08:00,-999\n"
        "110000-A001,pm25,2025-01-01T13:00:00+08:00,1e308\n"
        "110000-A001,so2,2099-01-01T11:00:00+08:00,5\n"
        "110000-A001,so2,2025-01-01T12:00:00+08:00,abc\n"
        "110000-A001,no2,yesterday,5\n",
    )
    assert detect_format(csv_file) == "long"
    summary = import_files(db, [csv_file])
    assert (summary.stored, summary.empty, summary.files_failed) == (2, 1, [])
    expected = {
        "unknown_station": 1,
        "inactive_station": 1,
        "unknown_parameter": 1,
        "negative_value": 1,
        "sentinel_value": 1,
        "out_of_range": 1,
        "timestamp_future": 1,
        "non_numeric_value": 1,
        "timestamp_invalid": 1,
    }
    assert dict(summary.rejected) == expected
    assert _reasons(db) == expected
    with psycopg.connect(db) as conn:
        ts = conn.execute(
            "SELECT ts FROM readings WHERE parameter = 'pm25' AND station_id = '110000-A001'"
        ).fetchone()
    assert ts is not None and ts[0] == datetime(2025, 1, 1, 0, tzinfo=UTC)


def test_parquet_is_imported_like_long_csv(db, tmp_path):
    path = tmp_path / "readings.parquet"
    table = pa.table(
        {
            "station": ["110000-A001"] * 3 + ["W-TAIHU-01"] * 2,
            "parameter": ["pm25", "pm10", "o3", "nh3_n", "tp"],
            "ts": ["2025-02-01T01:00:00+08:00"] * 3 + ["2025-02-01T10:00:00+08:00"] * 2,
            "value": [20.0, 40.0, None, 0.4, 0.03],
        }
    )
    pq.write_table(table, path)
    assert detect_format(path) == "parquet"
    summary = import_files(db, [path])
    # the lake section's class is derived from its items, as ingest does
    assert (summary.stored, summary.empty) == (5, 1)
    assert count(db, "SELECT count(*) FROM readings WHERE parameter = 'water_class'") == 1


def test_station_lists_with_chinese_and_english_headers_group_stations_by_city(db, tmp_path):
    chinese = _write(
        tmp_path / "站点列表.csv",
        "监测点编码,监测点名称,城市,经度,纬度\n1001A,万寿西宫,北京,116.366,39.8673\n"
        "1002A,定陵,北京,116.17,40.2865\n1003A,东四,北京,116.434,39.9522\n",
        bom=True,
    )
    english = _write(
        tmp_path / "stations_en.csv",
        "code,name,city,longitude,latitude\n2001A,Nanjing East,Nanjing,118.8,32.0\n"
        "2002A,Urumqi North,Urumqi,87.6,43.8\n",
    )
    summary = import_files(db, [chinese, english])
    assert (summary.stations_created, summary.stations_rejected) == (5, 0)
    with psycopg.connect(db) as conn:
        rows = dict(
            conn.execute(
                "SELECT station_id, city_code FROM stations WHERE station_id LIKE '%A'"
                " AND kind = 'air' AND timezone = 'Asia/Shanghai'"
            ).fetchall()
        )
    assert rows["1001A"] == rows["1002A"] == rows["1003A"] == derived_city_code("北京")
    assert rows["2002A"] == "650100"  # a city the project knows keeps its GB/T 2260 code
    again = import_files(db, [chinese])
    assert (again.stations_created, again.stations_updated) == (0, 3)


def test_wide_layout_stores_hourly_rows_and_skips_derived_ones(db, tmp_path):
    stations = _write(
        tmp_path / "stations.csv",
        "监测点编码,监测点名称,城市,经度,纬度\n1001A,万寿西宫,北京,116.366,39.8673\n"
        "1002A,定陵,北京,116.17,40.2865\n",
    )
    day = _wide_file(tmp_path / "china_sites_20250101.csv", "20250101", ["1001A", "1002A", "9999Z"])
    assert detect_format(day) == "wide"
    summary = import_files(db, [day, stations])  # the list is imported first
    cells_per_type = 24 * 3
    assert summary.empty == 1
    assert summary.derived_skipped == 9 * cells_per_type
    assert summary.stored == 6 * 24 * 2 - 1
    assert dict(summary.rejected) == {"unknown_station": 6 * 24}
    # import_files stores and queues; the station-days come from the aggregation stage
    assert settle(db) > 0
    with psycopg.connect(db) as conn:
        first = conn.execute(
            "SELECT min(ts), max(ts) FROM readings WHERE station_id = '1001A'"
        ).fetchone()
        co = conn.execute("SELECT value FROM readings WHERE parameter = 'co' LIMIT 1").fetchone()
        daily = conn.execute(
            "SELECT valid_hours, valid FROM readings_daily"
            " WHERE station_id = '1002A' AND parameter = 'pm25' AND day = '2025-01-01'"
        ).fetchone()
    # hour 0 of 1 January in Beijing = 16:00 UTC on 31 December
    assert first == (datetime(2024, 12, 31, 16, tzinfo=UTC), datetime(2025, 1, 1, 15, tzinfo=UTC))
    assert co == (0.8,)
    assert daily == (24, True)
    assert_rollups_match_readings(db)


def test_reimport_changes_nothing_and_reports_duplicates(db, tmp_path):
    csv_file = _write(
        tmp_path / "long.csv",
        "station,parameter,ts,value\n"
        + "".join(f"110000-A002,pm25,2025-03-01T{h:02d}:00:00+08:00,{h + 5}\n" for h in range(24))
        + "NOPE-1,pm25,2025-03-01T08:00:00+08:00,10\n",
    )
    first = _import_cli(db, str(csv_file))
    assert first.returncode == 0, first.stderr
    before = (count(db, "SELECT count(*) FROM readings"), _reasons(db))
    second = _import_cli(db, str(csv_file))
    assert second.returncode == 0 and "already imported" in second.stderr
    with psycopg.connect(db) as conn:
        conn.execute("TRUNCATE imports")  # forget the journal: every row is read again
    third = import_files(db, [csv_file])
    assert (third.stored, third.duplicates) == (0, 24)
    assert (count(db, "SELECT count(*) FROM readings"), _reasons(db)) == before
    assert_rollups_match_readings(db)


def test_unreadable_file_exits_non_zero_and_others_are_imported(db, tmp_path):
    good = _write(
        tmp_path / "ok.csv", "station,parameter,ts,value\n110000-A001,pm25,2025-01-01,1\n"
    )
    bad = _write(tmp_path / "bad.csv", "foo,bar\n1,2\n")
    result = _import_cli(db, str(bad), str(tmp_path / "missing.csv"), str(good))
    assert result.returncode == 1
    assert "unknown layout" in result.stderr and "readings stored" in result.stderr
    assert count(db, "SELECT count(*) FROM readings") == 1


def _long_rows(path: Path, hours: int) -> int:
    stations = ["110000-A001", "110000-A002"]
    parameters = ["pm25", "pm10", "so2", "no2", "o3", "co"]
    start = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    with path.open("w") as f:
        f.write("station,parameter,ts,value\n")
        for hour in range(hours):
            ts = datetime.fromtimestamp(start + hour * 3600, UTC).isoformat()
            for station in stations:
                for parameter in parameters:
                    f.write(f"{station},{parameter},{ts},{hour % 97 + 1}\n")
    return hours * len(stations) * len(parameters)


def test_resume_after_kill_stores_every_reading_once(db, tmp_path):
    path = tmp_path / "big.csv"
    # 48,000 readings in 12 batches of 4,000: killed after the first commit, 11 batches are
    # left for the resume (the same shape as 240,000 in batches of 20,000, a fifth the time)
    rows = _long_rows(path, 4_000)
    process = subprocess.Popen(
        [*CLI, "--batch-rows", "4000", str(path)],
        env={**os.environ, "AIRWATER_DATABASE_URL": db},
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    done = 0
    while done == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        done = count(db, "SELECT coalesce(max(rows_done), 0) FROM imports")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    committed = count(db, "SELECT rows_done FROM imports")
    assert 0 < committed < rows, "kill the import mid-way"
    assert count(db, "SELECT count(*) FROM readings") == committed
    result = _import_cli(db, str(path))
    assert result.returncode == 0, result.stderr
    assert f"resuming after row {committed}" in result.stderr
    assert count(db, "SELECT count(*) FROM readings") == rows
    resumed = count(db, "SELECT readings_stored FROM imports WHERE finished_at IS NOT NULL")
    assert resumed == rows
    assert count(db, "SELECT duplicates FROM imports") == 0  # the rerun skipped the done part
    assert_rollups_match_readings(db)


def test_peak_memory_of_a_million_value_import_is_bounded(db, tmp_path):
    codes = [f"{1001 + i}A" for i in range(400)]
    _write(
        tmp_path / "stations.csv",
        "code,name,city,longitude,latitude\n"
        + "".join(f"{c},S{c},City{i // 4},116.0,39.0\n" for i, c in enumerate(codes)),
    )
    files = [tmp_path / "stations.csv"]
    for day in range(1, 8):  # 7 x 24 x 15 x 400 = 1,008,000 values, 403,200 readings
        files.append(
            _wide_file(tmp_path / f"china_sites_202501{day:02d}.csv", f"202501{day:02d}", codes)
        )
    # VmHWM: the peak RSS of this process image. (ru_maxrss would not do: Linux carries the
    # forked pytest parent's RSS across exec into it, ~500 MiB late in the suite.)
    script = (
        "import re, sys\n"
        "from airwater.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "status = open('/proc/self/status').read()\n"
        "print('maxrss_kib', re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "import", "--no-progress", *map(str, files)],
        env={**os.environ, "AIRWATER_DATABASE_URL": db},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    peak_kib = int(result.stdout.split("maxrss_kib")[1])
    assert count(db, "SELECT count(*) FROM readings") == 7 * 24 * 6 * 400 - 7
    assert peak_kib < 400 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"


def test_parallel_jobs_store_overlapping_files_exactly_once(db, tmp_path):
    """Three jobs at once, on day files and long files that overlap them (same station-days
    in another order): every reading once, rollups right, the summary adds up."""
    stations = _write(
        tmp_path / "stations.csv",
        "code,name,city,longitude,latitude\n1001A,A,Beijing,116.3,39.8\n"
        "1002A,B,Beijing,116.1,40.2\n",
    )
    days = [
        _wide_file(
            tmp_path / f"china_sites_202502{d:02d}.csv", f"202502{d:02d}", ["1001A", "1002A"]
        )
        for d in range(1, 7)
    ]
    # long files holding the same PM2.5 hours of 2 and 3 February, newest first
    overlap = _write(
        tmp_path / "overlap.csv",
        "station,parameter,ts,value\n"
        + "".join(
            f"{code},pm25,2025-02-{d:02d}T{h:02d}:00:00+08:00,{10 + h + i}\n"
            for d in (3, 2)
            for h in reversed(range(24))
            for i, code in enumerate(("1001A", "1002A"))
            if not (h == 3 and i == 0)
        ),
    )
    summary = import_files(db, [stations, *days, overlap], jobs=3)
    assert summary.jobs == 3 and summary.files_failed == []
    expected = 6 * (6 * 24 * 2 - 1)
    assert count(db, "SELECT count(*) FROM readings") == expected
    assert summary.stored == expected
    assert summary.duplicates == 2 * (24 * 2 - 1)  # the overlap, whichever job came second
    duplicates = count(
        db,
        "SELECT count(*) FROM (SELECT 1 FROM readings GROUP BY station_id, parameter, ts"
        " HAVING count(*) > 1) d",
    )
    assert duplicates == 0
    assert_rollups_match_readings(db)
