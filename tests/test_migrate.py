"""The migration runner: idempotent, recorded, and the schema it builds."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from storage.migrate import migrate, migration_files
from tests.support import assert_rollups_match_readings


def test_second_migrate_applies_nothing_and_records_every_version(database_url):
    with psycopg.connect(database_url) as conn:
        assert migrate(conn) == []
        recorded = [
            r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        ]
    assert recorded == [version for version, _ in migration_files()]


def test_readings_is_a_hypertable_keyed_by_station_parameter_ts(database_url):
    with psycopg.connect(database_url) as conn:
        hypertables = {
            r[0]
            for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
        }
        unique_columns = conn.execute(
            "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = 'readings'::regclass AND i.indisunique GROUP BY i.indexrelid"
        ).fetchall()
    # 0008: the hours are a view over readings, every other level a plain table
    assert hypertables == {"readings"}
    assert (["station_id", "parameter", "ts"],) in unique_columns


def test_parameter_catalogue_is_synced(database_url):
    with psycopg.connect(database_url) as conn:
        rows = dict(conn.execute("SELECT parameter, daily_min_hours FROM parameters"))
    assert rows["pm25"] == 20 and rows["nh3_n"] == 1


def test_0008_rebuilds_every_derived_level_of_an_existing_database(postgres):
    """A database of 0007 (rollups kept by the writer, hourly values backfilled for a station
    that reports every minute) is brought over by `airwater migrate`: the derived levels are
    rebuilt from `readings` with a progress bar, and the backfilled hours stay valid."""
    name = "migrate_0007"
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    url = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    start = datetime(2025, 3, 1, tzinfo=UTC)
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, sql in migration_files():
            if version < "0008":
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_migrations VALUES (%s)", (version,))
        conn.execute(
            "INSERT INTO stations (station_id, name, kind, city_code, reading_interval_s)"
            " VALUES ('M-1', 'm1', 'air', '110100', 3600), ('M-2', 'm2', 'air', '110100', 60)"
        )
        conn.execute(
            "INSERT INTO readings (station_id, parameter, ts, value)"
            " SELECT 'M-1', 'pm25', %(start)s + h * interval '1 hour', h %% 50"
            " FROM generate_series(0, 24 * 40 - 1) h",
            {"start": start},
        )
        # M-2 reports every minute live; 30 days of backfilled hourly values, which 0007 kept
        # valid in readings_hourly (count 1 × coverage 3600 s)
        conn.execute(
            "INSERT INTO readings (station_id, parameter, ts, value)"
            " SELECT 'M-2', 'pm25', %(start)s + h * interval '1 hour', 30"
            " FROM generate_series(0, 24 * 30 - 1) h",
            {"start": start},
        )
        conn.execute(
            "INSERT INTO readings_hourly (station_id, parameter, bucket, mean, min, max, count,"
            " valid) SELECT station_id, parameter, ts, value, value, value, 1, true"
            " FROM readings"
        )
        conn.commit()
    env = {"AIRWATER_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "airwater"), "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr  # the console writes to stderr
    assert "0008_aggregation" in said
    assert "deriving levels" in said  # the progress bar
    assert "derived levels up to date: 2 queued change(s) reflected" in said
    with psycopg.connect(url) as conn:
        coverage = conn.execute("SELECT count(*) FROM hourly_coverage").fetchone()
        days = conn.execute(
            "SELECT station_id, count(*) FILTER (WHERE valid) FROM readings_daily"
            " WHERE parameter = 'pm25' GROUP BY station_id ORDER BY station_id"
        ).fetchall()
        yearly = conn.execute(
            "SELECT station_id, valid_days FROM station_yearly WHERE parameter = 'pm25'"
            " ORDER BY station_id"
        ).fetchall()
        queued = conn.execute("SELECT count(*) FROM aggregation_queue").fetchone()
    assert coverage == (24 * 30,)
    # local (UTC+8) days: the first starts at 08:00 and has 16 hours, so 39 and 29 valid days
    assert days == [("M-1", 39), ("M-2", 29)]
    assert yearly == [("M-1", 39), ("M-2", 29)]
    assert queued == (0,)
    assert_rollups_match_readings(url, settled=False)
