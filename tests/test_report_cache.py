"""Cached annual reports (0007_scale.sql): served only while exact — any committed change of
the year's daily rollups or of the registry, even one that was in flight while the cached
report was computed, makes the next call compute again."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from reports import air_report, water_report
from schemas.reports import AirAnnual, AirReport
from storage.writer import prepare_connection, write_batch

BEIJING = ZoneInfo("Asia/Shanghai")
STATION = "110000-A001"
YEAR = 2024


def _day(conn: psycopg.Connection, day: date, value: float) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    received = datetime(2025, 1, 1, tzinfo=UTC)
    write_batch(
        conn,
        [(STATION, "pm25", start + timedelta(hours=h), value, received) for h in range(24)],
    )


def _station(report: AirReport, station_id: str = STATION) -> AirAnnual:
    return next(s for s in report.stations if s.id == station_id)


def _cached_kinds(conn: psycopg.Connection) -> set[tuple[str, int]]:
    return {(k, y) for k, y in conn.execute("SELECT kind, year FROM report_cache")}


def test_cached_report_equals_computed_and_follows_every_committed_change(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        prepare_connection(conn)
        _day(conn, date(YEAR, 3, 1), 40.0)
        first = air_report(conn, YEAR)
        assert ("air:pm25", YEAR) in _cached_kinds(conn)
        assert air_report(conn, YEAR) == first  # from the cache, identical
        assert _station(first).valid_days == 1

        _day(conn, date(YEAR, 3, 2), 20.0)
        second = air_report(conn, YEAR)
        assert _station(second).valid_days == 2
        assert _station(second).annual_mean == 30.0

        # another year's change leaves this year's entry valid; the registry invalidates all
        _day(conn, date(YEAR + 1, 3, 2), 20.0)
        assert air_report(conn, YEAR) == second
        conn.execute("UPDATE stations SET name = 'Renamed' WHERE station_id = %s", (STATION,))
        assert _station(air_report(conn, YEAR)).name == "Renamed"


def test_change_in_flight_while_the_report_is_computed_is_not_missed(database_url):
    with (
        psycopg.connect(database_url, autocommit=True) as reader,
        psycopg.connect(database_url) as writer,
    ):
        prepare_connection(reader)
        prepare_connection(writer)
        _day(reader, date(YEAR, 5, 1), 50.0)
        with writer.transaction():
            _day(writer, date(YEAR, 5, 2), 10.0)  # written, not yet committed
            during = air_report(reader, YEAR)  # computed and cached without it
            assert _station(during).valid_days == 1
        after = air_report(reader, YEAR)
        assert _station(after).valid_days == 2
        assert _station(after).annual_mean == 30.0


def test_water_report_is_cached_and_invalidated_too(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        prepare_connection(conn)
        empty = water_report(conn, YEAR)
        assert ("water", YEAR) in _cached_kinds(conn)
        assert water_report(conn, YEAR) == empty
        conn.execute(
            "INSERT INTO readings_daily (station_id, parameter, day, mean, min, max,"
            " valid_hours, hours, valid)"
            " SELECT station_id, 'nh3_n', %s, 0.1, 0.1, 0.1, 1, 1, true FROM stations"
            " WHERE kind = 'surface_water'",
            (date(YEAR, 6, 10),),
        )
        assert water_report(conn, YEAR).sections_assessed > empty.sections_assessed
