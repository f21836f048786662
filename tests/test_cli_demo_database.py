"""With AIRWATER_DATABASE_URL unset, the command line works on the demo's private database
under the data folder: the running demo's server, or one started for the command and stopped
after it; without a demo database it says how to get one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from airwater.embedded import PostgresServer
from core import PROJECT_ROOT
from storage.migrate import migrate

STATIONS_CSV = "station_id,name,kind,city,city_code\n110000-A001,Dongsi,air,Beijing,110000\n"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder whose demo database (migrated, no stations) is made and stopped, as
    `airwater run` leaves it once stopped."""
    data = tmp_path_factory.mktemp("demo") / "data"
    server = PostgresServer(data / "postgres")
    server.start()
    try:
        with psycopg.connect(server.url) as conn:
            migrate(conn)
    finally:
        server.stop()
    return data


def _airwater(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRWATER_")}
    env["AIRWATER_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "airwater.cli", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _running(data_dir: Path) -> bool:
    return (data_dir / "postgres" / "pgdata" / "postmaster.pid").exists()


def test_a_command_without_a_database_url_starts_the_demo_database_and_stops_it(data_dir, tmp_path):
    stations = tmp_path / "stations.csv"
    stations.write_text(STATIONS_CSV, encoding="utf-8")

    imported = _airwater(data_dir, "stations", "import", str(stations))
    assert imported.returncode == 0, imported.stderr
    assert "1 station(s) created" in imported.stderr
    assert not _running(data_dir), "the command stops the server it started"

    listed = _airwater(data_dir, "stations", "list")
    assert listed.returncode == 0, listed.stderr
    assert "110000-A001" in listed.stdout and "Dongsi" in listed.stdout
    used = [line for line in listed.stderr.splitlines() if "database:" in line]
    assert len(used) == 1, listed.stderr
    assert str(data_dir / "postgres" / "pgdata") in used[0]
    assert "started for this command and stopped after it" in used[0]
    assert not _running(data_dir)


def test_a_command_uses_the_running_demo_database_and_leaves_it_running(data_dir):
    demo = PostgresServer(data_dir / "postgres")  # what `airwater run` starts
    demo.start()
    try:
        report = _airwater(data_dir, "report", "air", "--year", "2025", "--format", "json")
        assert report.returncode == 0, report.stderr
        assert json.loads(report.stdout)["reports"][0]["year"] == 2025
        used = [line for line in report.stderr.splitlines() if "database:" in line]
        assert len(used) == 1, report.stderr
        assert f"the running demo's, {demo.url}" in used[0]
        assert "PostgreSQL+TimescaleDB on" not in report.stderr, "no second server"
        # the demo's server still serves
        with psycopg.connect(demo.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        demo.stop()


def test_without_a_demo_database_a_command_says_how_to_get_one(tmp_path):
    report = _airwater(tmp_path / "data", "report", "air", "--year", "2025")
    assert report.returncode == 2
    message = " ".join(report.stderr.split())
    assert "no database" in message
    assert "airwater run" in message and "AIRWATER_DATABASE_URL" in message
    assert not (tmp_path / "data" / "postgres").exists(), "nothing is made"
