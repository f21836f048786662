"""The station registry from Python and from files (`airwater stations import FILE`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from core import PROJECT_ROOT
from schemas.stations import Station, StationFileError, read_station_file
from storage.stations import create_station, get_station, list_stations, update_station


def airwater(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIRWATER_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "airwater.cli", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_create_get_list_update_from_python(database_url):
    with psycopg.connect(database_url) as conn:
        create_station(
            conn,
            Station(
                station_id="440100-A001",
                name="Guangya",
                city="Guangzhou",
                city_code="440100",
                province="Guangdong",
            ),
        )
        assert get_station(conn, "440100-A001") == Station(
            station_id="440100-A001",
            name="Guangya",
            city="Guangzhou",
            city_code="440100",
            province="Guangdong",
        )
        assert [s.station_id for s in list_stations(conn, city_code="440100")] == ["440100-A001"]
        changed = update_station(conn, "440100-A001", active=False, name="Guangya (closed)")
        assert changed is not None and not changed.active
        stored = get_station(conn, "440100-A001")
        assert stored is not None and stored.name == "Guangya (closed)" and not stored.active
        assert update_station(conn, "does-not-exist", active=False) is None
        with pytest.raises(psycopg.errors.UniqueViolation):
            create_station(conn, Station(station_id="440100-A001", name="again"))


def test_cli_imports_csv_and_reimport_updates(database_url, tmp_path):
    csv_file = tmp_path / "stations.csv"
    csv_file.write_text(
        "station_id,name,kind,waterbody,city,city_code,province,latitude,longitude\n"
        "440100-A001,Guangya,air,,Guangzhou,440100,Guangdong,23.14,113.26\n"
        "W-PEARL-01,Pearl River at Guangzhou,surface_water,river,Guangzhou,440100,"
        "Guangdong,23.1,113.3\n",
        encoding="utf-8",
    )
    first = airwater(database_url, "stations", "import", str(csv_file))
    assert first.returncode == 0, first.stderr
    assert "2 station(s) created, 0 updated" in first.stderr
    second = airwater(database_url, "stations", "import", str(csv_file))
    assert "0 station(s) created, 2 updated" in second.stderr
    with psycopg.connect(database_url) as conn:
        river = get_station(conn, "W-PEARL-01")
    assert river is not None
    assert (river.kind, river.waterbody, river.latitude) == ("surface_water", "river", 23.1)
    listed = airwater(database_url, "stations", "list", "--city-code", "440100")
    assert listed.returncode == 0 and "W-PEARL-01" in listed.stdout


def test_cli_imports_json(database_url, tmp_path):
    json_file = tmp_path / "stations.json"
    json_file.write_text(
        json.dumps([{"station_id": "530100-A001", "name": "Kunming", "timezone": "Asia/Shanghai"}]),
        encoding="utf-8",
    )
    result = airwater(database_url, "stations", "import", str(json_file))
    assert result.returncode == 0, result.stderr
    with psycopg.connect(database_url) as conn:
        assert get_station(conn, "530100-A001") is not None


def test_bad_station_file_names_the_row_and_imports_nothing(database_url, tmp_path):
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(
        "station_id,name,latitude\nOK-1,fine,30\nOK-2,broken,95\n", encoding="utf-8"
    )
    with pytest.raises(StationFileError, match="row 3: latitude"):
        read_station_file(csv_file)
    result = airwater(database_url, "stations", "import", str(csv_file))
    assert result.returncode == 1
    assert "row 3: latitude" in result.stderr
    with psycopg.connect(database_url) as conn:
        assert get_station(conn, "OK-1") is None


def test_unknown_timezone_is_refused():
    with pytest.raises(ValueError, match="unknown IANA timezone"):
        Station(station_id="X-1", name="x", timezone="Mars/Olympus")


def test_registry_file_reads_the_national_list_headers_and_refuses_unknown_columns(tmp_path):
    national = tmp_path / "list.csv"
    national.write_text(
        "\ufeff监测点编码,监测点名称,城市,城市代码,经度,纬度,kind\n"
        "1001A,万寿西宫,Beijing,110000, 116.366 ,39.878,air\n",
        encoding="utf-8",
    )
    [station] = read_station_file(national)
    assert (station.station_id, station.name, station.city_code) == ("1001A", "万寿西宫", "110000")
    assert (station.longitude, station.latitude) == (116.366, 39.878)
    odd = tmp_path / "odd.csv"
    odd.write_text("station_id,name,colour\nX-1,x,blue\n")
    with pytest.raises(StationFileError, match=r"unknown columns \['colour'\]"):
        read_station_file(odd)
