"""Alert rules judged in the ingest transaction, on real services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from alerts.evaluate import evaluate_batch
from alerts.silence import check_silence
from storage.writer import prepare_connection, write_batch
from tests.support import count, wait_for, wait_until_consuming

BEIJING = "110000-A001"
TZ = ZoneInfo("Asia/Shanghai")
RECEIVED = datetime(2026, 11, 28, tzinfo=UTC)


def subscribe(database_url: str, **fields: object) -> int:
    row = {
        "name": "test",
        "scope": "station",
        "scope_values": [BEIJING],
        "comparator": ">",
        "channel": "stream",
        **fields,
    }
    columns = ", ".join(row)
    with psycopg.connect(database_url) as conn:
        got = conn.execute(
            f"INSERT INTO alert_subscriptions ({columns}) VALUES "
            f"({', '.join(['%s'] * len(row))}) RETURNING subscription_id",
            list(row.values()),
        ).fetchone()
    assert got is not None
    return int(got[0])


def events(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT kind, station_id, observed_at, value, threshold FROM alert_events "
            "ORDER BY event_id"
        ).fetchall()


def hourly(station: str, start: datetime, values: list[float], parameter: str = "pm25"):
    return [
        (station, parameter, start + timedelta(hours=i), v, RECEIVED) for i, v in enumerate(values)
    ]


def test_breach_over_mqtt_fires_once_and_resolves_once_despite_noise_and_redelivery(
    make_worker, publisher, database_url
):
    subscribe(database_url, target="reading", parameter="pm25", threshold=75, clear_threshold=70)
    make_worker().start()
    wait_until_consuming(database_url, publisher)
    start = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    values = [60, 74, 76, 74, 76.5, 72, 75.5, 69, 74, 71]
    messages = [(BEIJING, {"ts": start + 3600 * i, "pm25": v}) for i, v in enumerate(values)]
    publisher.publish_all(messages)
    publisher.publish_all(messages[2:5])  # re-sent: duplicates must not re-fire
    wait_for(
        lambda: (
            count(database_url, "SELECT count(*) FROM readings WHERE station_id = %s", (BEIJING,))
            == len(values)
        ),
        what="the readings",
    )
    wait_for(lambda: len(events(database_url)) >= 2, what="two events")
    got = events(database_url)
    assert [(e[0], e[2], e[3]) for e in got] == [
        ("firing", datetime.fromtimestamp(start + 3600 * 2, UTC), 76.0),
        ("resolved", datetime.fromtimestamp(start + 3600 * 7, UTC), 69.0),
    ]


def test_daily_preset_uses_the_24h_limit_in_force_that_day(database_url):
    subscribe(
        database_url,
        target="daily_mean",
        parameter="pm25",
        threshold_rule="gb3095_24h_grade_ii",
        preset="pm25_24h_grade_ii",
    )
    feb_28 = datetime(2026, 2, 28, tzinfo=TZ)
    mar_1 = datetime(2026, 3, 1, tzinfo=TZ)
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        # 70 µg/m³ all day: within GB 3095-2012's 75, over 2026 transitional's 60
        write_batch(conn, hourly(BEIJING, feb_28, [70.0] * 24), after_write=evaluate_batch)
        assert events(database_url) == []
        write_batch(conn, hourly(BEIJING, mar_1, [70.0] * 24), after_write=evaluate_batch)
    got = events(database_url)
    assert [(e[0], e[3], e[4]) for e in got] == [("firing", 70.0, 60.0)]
    assert got[0][2] == mar_1  # the day's start, Beijing time


def test_daily_aqi_preset_fires_at_201(database_url):
    subscribe(
        database_url,
        target="daily_aqi",
        comparator=">=",
        threshold=201,
        preset="aqi_heavily_polluted",
    )
    day = datetime(2025, 1, 10, tzinfo=TZ)
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        # PM2.5 150 → IAQI 200 (not heavily polluted); 151 the next day → 201 (150–250 → 200–300)
        write_batch(conn, hourly(BEIJING, day, [150.0] * 24), after_write=evaluate_batch)
        write_batch(
            conn, hourly(BEIJING, day + timedelta(days=1), [151.0] * 24), after_write=evaluate_batch
        )
    assert [(e[0], e[3]) for e in events(database_url)] == [("firing", 201.0)]


def test_daily_aqi_preset_fires_on_an_ozone_day(database_url):
    subscribe(
        database_url,
        target="daily_aqi",
        comparator=">=",
        threshold=201,
        preset="aqi_heavily_polluted",
    )
    day = datetime(2026, 7, 1, tzinfo=TZ)
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        # O3 300 all day, PM2.5 clean: the daily maximum 8-hour 300 on 265…800 →
        # 200 + 100·35/535 = 206.5 → 207; the day is heavily polluted by ozone alone
        write_batch(
            conn,
            hourly(BEIJING, day, [300.0] * 24, "o3") + hourly(BEIJING, day, [10.0] * 24),
            after_write=evaluate_batch,
        )
    got = events(database_url)
    assert [(e[0], e[3]) for e in got] == [("firing", 207.0)]
    assert got[0][2] == day


def test_daily_aqi_of_o3_needs_14_valid_8_hour_windows_as_the_stage(database_url):
    subscribe(database_url, target="daily_aqi", comparator=">=", threshold=90)
    first = datetime(2026, 7, 1, tzinfo=TZ)
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        # 150 without data in the first 6 hours: 13 valid windows, 150 within the 160 limit,
        # so no daily maximum 8-hour mean and no AQI (one valid window once sufficed: 92)
        write_batch(
            conn,
            hourly(BEIJING, first + timedelta(hours=6), [150.0] * 18, "o3"),
            after_write=evaluate_batch,
        )
        assert events(database_url) == []
        # the next day without the first 5 hours: 14 valid windows, 150 on 100…160 →
        # 50 + 50·50/60 = 91.7 → 92
        second = first + timedelta(days=1)
        write_batch(
            conn,
            hourly(BEIJING, second + timedelta(hours=5), [150.0] * 19, "o3"),
            after_write=evaluate_batch,
        )
    assert [(e[0], e[2], e[3]) for e in events(database_url)] == [("firing", second, 92.0)]


def test_2012_daily_aqi_with_o3_reads_the_o3_daily_max_1_hour(database_url):
    subscribe(database_url, target="daily_aqi", comparator=">=", threshold=151)
    day = datetime(2025, 7, 1, tzinfo=TZ)
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        # 100 but 320 at 14:00: max 1-hour 320 on 300…400 → 150 + 50·20/100 = 160; the
        # 8-hour maximum (7·100 + 320)/8 = 127.5 → 64
        values = [100.0] * 24
        values[14] = 320.0
        write_batch(conn, hourly(BEIJING, day, values, "o3"), after_write=evaluate_batch)
    assert [(e[0], e[3]) for e in events(database_url)] == [("firing", 160.0)]


def test_no_event_without_the_committed_readings(database_url):
    subscribe(database_url, target="reading", parameter="pm25", threshold=75)

    def evaluate_then_fail(cur):
        assert evaluate_batch(cur) == 1
        raise RuntimeError("the transaction dies after evaluation")

    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        with pytest.raises(RuntimeError):
            write_batch(
                conn,
                hourly(BEIJING, datetime(2026, 3, 1, tzinfo=UTC), [90.0]),
                after_write=evaluate_then_fail,
            )
    assert events(database_url) == []
    assert count(database_url, "SELECT count(*) FROM readings") == 0
    assert count(database_url, "SELECT count(*) FROM alert_state") == 0


def test_scope_by_city_and_state_per_station(database_url):
    subscribe(
        database_url,
        target="reading",
        parameter="pm25",
        threshold=75,
        scope="city",
        scope_values=["110000"],
    )
    t = datetime(2026, 3, 1, tzinfo=UTC)
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(
            conn,
            hourly("110000-A001", t, [80.0])
            + hourly("110000-A002", t, [50.0])
            + hourly("650000-A001", t, [300.0]),
            after_write=evaluate_batch,
        )
    assert [(e[0], e[1]) for e in events(database_url)] == [("firing", "110000-A001")]


def test_water_section_worse_than_class_iii(database_url):
    subscribe(
        database_url,
        target="water_class",
        parameter="water_class",
        threshold=3,
        scope_values=["W-YANGTZE-01"],
        preset="water_worse_than_iii",
    )
    t = datetime(2026, 3, 1, tzinfo=UTC)
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(
            conn,
            hourly("W-YANGTZE-01", t, [3.0, 4.0, 4.0, 2.0], "water_class"),
            after_write=evaluate_batch,
        )
    assert [(e[0], e[3]) for e in events(database_url)] == [("firing", 4.0), ("resolved", 2.0)]


def test_silent_station_gets_no_data_then_resolves_on_its_next_reading(database_url):
    subscribe(database_url, target="silence", for_minutes=0)
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        assert check_silence(conn) == 1
        assert check_silence(conn) == 0  # already firing: not again
        write_batch(
            conn,
            hourly(BEIJING, datetime(2026, 3, 1, tzinfo=UTC), [10.0]),
            after_write=evaluate_batch,
        )
    assert [e[0] for e in events(database_url)] == ["no_data", "resolved"]
