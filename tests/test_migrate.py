"""The migration runner: idempotent, recorded, and the schema it builds."""

from __future__ import annotations

import psycopg

from storage.migrate import migrate, migration_files


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
    assert {"readings", "readings_hourly"} <= hypertables
    assert (["station_id", "parameter", "ts"],) in unique_columns


def test_parameter_catalogue_is_synced(database_url):
    with psycopg.connect(database_url) as conn:
        rows = dict(conn.execute("SELECT parameter, daily_min_hours FROM parameters"))
    assert rows["pm25"] == 20 and rows["nh3_n"] == 1
