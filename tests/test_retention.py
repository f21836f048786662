"""`airwater retention`: old raw chunks listed (dry run) and dropped, daily rollups kept."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psycopg

from core import PROJECT_ROOT
from core.db import connect
from storage.writer import prepare_connection, write_batch
from tests.support import count, settle


def _retention(database_url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airwater.cli", "retention", *args],
        env={**os.environ, "AIRWATER_DATABASE_URL": database_url},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout + result.stderr


def test_old_raw_chunks_are_listed_then_dropped_and_daily_rollups_stay(database_url):
    now = datetime.now(UTC)
    old = now - timedelta(days=400)
    with connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(
            conn,
            [("110000-A001", "pm25", old, 30.0, now), ("110000-A001", "pm25", now, 31.0, now)],
        )
    settle(database_url)  # the aggregation stage makes the daily values of both days
    assert count(database_url, "SELECT count(*) FROM readings_daily WHERE parameter = 'pm25'") == 2
    dry = _retention(database_url, "--older-than", "180 days", "--dry-run")
    assert "readings: would drop 1 chunk(s) older than 180 days" in dry
    assert count(database_url, "SELECT count(*) FROM readings") == 2
    done = _retention(database_url, "--older-than", "180 days")
    assert "readings: dropped 1 chunk(s) older than 180 days" in done
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT value FROM readings").fetchall()
    assert rows == [(31.0,)]
    assert count(database_url, "SELECT count(*) FROM readings_daily WHERE parameter = 'pm25'") == 2
    assert count(database_url, "SELECT count(*) FROM readings_hourly") == 1  # a view: gone
    # a registry change queues the whole station: the stage recomputes the days whose
    # readings are kept and keeps the others as they were
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE stations SET reading_interval_s = 1800 WHERE station_id = '110000-A001'"
        )
    assert settle(database_url) > 0
    with psycopg.connect(database_url) as conn:
        daily = conn.execute(
            "SELECT day, valid_hours, hours FROM readings_daily"
            " WHERE parameter = 'pm25' ORDER BY day"
        ).fetchall()
        latest = conn.execute("SELECT value FROM latest_readings").fetchall()
    # the old day as it was (1 valid hour of 1); today's hour now counts 30 minutes: invalid
    assert [(valid_hours, hours) for _, valid_hours, hours in daily] == [(1, 1), (0, 1)]
    assert latest == [(31.0,)]
