"""The derived levels equal a recomputation from readings: the hours (a view over `readings`)
and the station-days the aggregation stage makes of what the writer queued."""

from __future__ import annotations

import inspect
import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest.aggregation import yearly_rules
from storage import writer
from storage.writer import DeadLetter, prepare_connection, write_batch
from tests.support import assert_rollups_match_readings, settle


@pytest.mark.parametrize("bulk", [False, True], ids=["ingest", "bulk"])
def test_rollups_equal_recomputation_after_shuffled_batches_with_duplicates(
    database_url, bulk, monkeypatch
):
    rng = random.Random(20261128)
    start = datetime(2026, 2, 27, 10, tzinfo=UTC)
    received = datetime(2026, 11, 28, tzinfo=UTC)
    readings = []
    # hourly stations (one of them in Asia/Urumqi) over 4 days, with gaps
    for station in ("110000-A001", "110000-A002", "650000-A001"):
        for hour in range(96):
            if rng.random() < 0.15:
                continue
            ts = start + timedelta(hours=hour)
            readings.append((station, "pm25", ts, round(rng.uniform(5, 150), 1), received))
            readings.append((station, "pm10", ts, round(rng.uniform(10, 250), 1), received))
    # a 5-minute station: some hours have fewer than 9 readings (< 45 min → invalid hour)
    for minute in range(0, 2 * 24 * 60, 5):
        if rng.random() < 0.3:
            continue
        ts = start + timedelta(minutes=minute)
        readings.append(("310000-A001", "pm25", ts, round(rng.uniform(5, 90), 1), received))
    # water section: a few samples a day
    for hour in range(0, 96, 4):
        ts = start + timedelta(hours=hour)
        readings.append(("W-YANGTZE-01", "nh3_n", ts, round(rng.uniform(0.1, 2), 3), received))
    duplicates = rng.sample(readings, 300)
    stream = readings + duplicates
    rng.shuffle(stream)
    paths: list[bool] = []
    if bulk:
        # bulk batches are dense in time (a day file): in time order, shuffled within a batch
        stream.sort(key=lambda r: r[2])
        for i in range(0, len(stream), 137):
            part = stream[i : i + 137]
            rng.shuffle(part)
            stream[i : i + 137] = part
        real_write = writer._write

        def spy(*args):
            paths.append(inspect.signature(real_write).bind(*args).arguments["bulk"])
            return real_write(*args)

        monkeypatch.setattr(writer, "_write", spy)

    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        inserted = duplicate_count = 0
        for i in range(0, len(stream), 137):
            result = write_batch(conn, stream[i : i + 137], bulk=bulk)
            inserted += result.inserted
            duplicate_count += result.duplicates
    assert inserted == len(readings)
    assert duplicate_count == len(duplicates)
    assert assert_rollups_match_readings(database_url) > 0
    if bulk:
        assert paths and all(paths)  # every batch went through the bulk statements


def test_daily_mean_needs_20_valid_hours(database_url):
    day_start = datetime(2026, 3, 1, tzinfo=UTC) - timedelta(hours=8)  # Beijing midnight
    received = datetime(2026, 11, 28, tzinfo=UTC)
    nineteen = [
        ("110000-A001", "pm25", day_start + timedelta(hours=h), 10.0 + h, received)
        for h in range(19)
    ]
    twenty = [
        ("110000-A002", "pm25", day_start + timedelta(hours=h), 10.0, received) for h in range(20)
    ]
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(conn, nineteen + twenty)
        assert settle(database_url) == 2  # one station-day each
        got = {
            station: (valid, hours, mean)
            for station, valid, hours, mean in conn.execute(
                "SELECT station_id, valid, valid_hours, mean FROM readings_daily "
                "WHERE day = '2026-03-01'"
            ).fetchall()
        }
    assert got["110000-A001"] == (False, 19, sum(10.0 + h for h in range(19)) / 19)
    assert got["110000-A002"] == (True, 20, 10.0)


def test_hour_needs_45_minutes_of_data(database_url):
    hour = datetime(2026, 3, 1, 2, tzinfo=UTC)
    received = datetime(2026, 11, 28, tzinfo=UTC)
    # 310000-A001 reports every 5 minutes: 9 readings = 45 min (valid), 8 = 40 min (invalid)
    nine = [
        ("310000-A001", "pm25", hour + timedelta(minutes=5 * i), 20.0, received) for i in range(9)
    ]
    eight = [
        ("310000-A001", "pm25", hour + timedelta(hours=1, minutes=5 * i), 20.0, received)
        for i in range(8)
    ]
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(conn, nine + eight)
        got = conn.execute(
            "SELECT count, valid FROM readings_hourly WHERE station_id = "
            "'310000-A001' ORDER BY bucket"
        ).fetchall()
    assert got == [(9, True), (8, False)]


def test_written_twice_changes_nothing(database_url):
    received = datetime(2026, 11, 28, tzinfo=UTC)
    rows = [
        ("110000-A001", "pm25", datetime(2026, 3, 1, h, tzinfo=UTC), float(h), received)
        for h in range(24)
    ]
    letter = DeadLetter(
        "stations/110000-A001/readings",
        "110000-A001",
        b"{bad",
        "malformed_json",
        "not valid JSON",
        received,
    )
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        first = write_batch(conn, rows, [letter])
        settle(database_url)
        before = conn.execute(
            "SELECT * FROM readings_daily WHERE parameter = 'pm25' ORDER BY day"
        ).fetchall()
        second = write_batch(conn, rows, [letter])
        queued = conn.execute("SELECT count(*) FROM aggregation_queue").fetchone()
        settle(database_url)
        after = conn.execute(
            "SELECT * FROM readings_daily WHERE parameter = 'pm25' ORDER BY day"
        ).fetchall()
        letters = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert (first.inserted, first.duplicates) == (24, 0)
    assert (second.inserted, second.duplicates) == (0, 24)
    assert queued == (0,)  # nothing new: nothing for the stage to do
    assert len(before) == 2  # 24 UTC hours span two Beijing days
    assert before == after
    assert letters == (1,)
    assert_rollups_match_readings(database_url)


def test_a_batch_of_many_station_days_holds_a_bounded_number_of_locks(database_url):
    """The aggregation stage locks each station-year and city-year it recomputes against
    other stages, hashed into LOCK_SLOTS locks per level: a batch of water samples (each its
    own day) must not fill PostgreSQL's shared lock table ("out of shared memory")."""
    from standards.parameters import CATALOGUE
    from storage import aggregation as levels

    stations = ["W-YANGTZE-01", "W-TAIHU-01", "110000-A001", "110000-A002"]
    start = datetime(2004, 6, 1, 4, tzinfo=UTC)
    received = datetime.now(UTC)
    rows = [
        (station, parameter, start + timedelta(days=day * 61), 1.0 + day % 7, received)
        for station in stations
        for parameter in CATALOGUE
        for day in range(120)  # 20 years
    ]
    with psycopg.connect(database_url, autocommit=True) as conn:
        prepare_connection(conn)
        result = write_batch(conn, rows)
        levels.prepare_connection(conn)
        with conn.transaction():
            claimed = levels.claim(conn, 100_000, 0)
            levels.refresh_station_days(conn, 2700)
            levels.refresh_station_years(conn, yearly_rules())
            levels.refresh_cities(conn, yearly_rules())
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND pid = pg_backend_pid()"
            ).fetchone()
    assert result.inserted == len(rows) == 4 * len(CATALOGUE) * 120
    assert claimed.days == len(rows)  # > 14,000 station-days of 80 station-years
    assert row is not None and 0 < row[0] <= 2 * levels.LOCK_SLOTS
    assert_rollups_match_readings(database_url)


def test_bulk_write_racing_another_writer_of_the_same_key_falls_back_and_counts_it_once(
    database_url,
):
    """The bulk path inserts without ON CONFLICT; a key another transaction stores meanwhile
    makes it fail on the unique index, and the batch is written the usual way instead."""
    import threading
    import time

    received = datetime(2026, 11, 28, tzinfo=UTC)
    start = datetime(2025, 5, 1, tzinfo=UTC)
    batch = [
        ("110000-A001", "pm25", start + timedelta(hours=h), 20.0 + h, received) for h in range(48)
    ]
    contested = batch[30]
    with psycopg.connect(database_url) as rival, psycopg.connect(database_url) as conn:
        prepare_connection(rival)
        prepare_connection(conn)
        results = []
        with rival.transaction():
            write_batch(rival, [contested])  # stored, not yet committed
            thread = threading.Thread(
                target=lambda: results.append(write_batch(conn, batch, bulk=True))
            )
            thread.start()
            time.sleep(1.0)  # the bulk insert now waits for the rival's key
            assert thread.is_alive()
        thread.join(30)
    assert results and (results[0].inserted, results[0].duplicates) == (47, 1)
    with psycopg.connect(database_url) as check:
        row = check.execute(
            "SELECT count(*), sum(value) FROM readings WHERE station_id = '110000-A001'"
        ).fetchone()
    assert row == (48, sum(r[3] for r in batch))
    assert_rollups_match_readings(database_url)
