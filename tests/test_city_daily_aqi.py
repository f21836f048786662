"""The cities' daily AQI the aggregation stage keeps (city_daily_aqi, 0009_assessment.sql):
what GET /v1/cities/{code}/aqi gives for the same days, the O3 daily maximum 8-hour mean
included, a not computable day kept and shown as such, and an existing database brought
over by the migration."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from storage.migrate import migrate, migration_files
from storage.writer import prepare_connection, write_batch
from tests.support import settle

BEIJING = ZoneInfo("Asia/Shanghai")
RECEIVED = datetime(2026, 11, 28, tzinfo=UTC)


def write_hours(
    database_url: str, station_id: str, day: date, series: dict[str, list[float | None]]
) -> None:
    """One reading per local hour of ``day`` from 00:00 on, per parameter; None: no reading."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    rows = [
        (station_id, parameter, midnight + timedelta(hours=h), value, RECEIVED)
        for parameter, values in series.items()
        for h, value in enumerate(values)
        if value is not None
    ]
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(conn, rows)


def kept(database_url: str, city_code: str = "110000") -> dict[str, tuple]:
    """{day: (aqi, version, primary pollutants, beyond_index, not_computable)}"""
    with psycopg.connect(database_url) as conn:
        return {
            row[0].isoformat(): row[1:]
            for row in conn.execute(
                "SELECT day, aqi, version, primary_pollutants, beyond_index, not_computable"
                " FROM city_daily_aqi WHERE city_code = %s ORDER BY day",
                (city_code,),
            )
        }


def test_kept_city_daily_aqi_equals_the_api_for_the_same_days(admin, database_url):
    # two stations of Beijing, days on both sides of HJ 633-2026's first day; PM2.5, PM10,
    # NO2 and O3 in a daily cycle, with hours missing at one station on some days
    days = [date(2026, 2, 26) + timedelta(days=i) for i in range(6)]
    for number, station in enumerate(("110000-A001", "110000-A002")):
        for index, day in enumerate(days):
            o3: list[float | None] = [
                60.0 + 25 * index + 40 * number + (10 * h if 8 <= h <= 16 else 0) for h in range(24)
            ]
            if (index + number) % 3 == 0:
                o3[2:6] = [None] * 4  # 16 hours: no O3 1-hour, 15 valid windows
            write_hours(
                database_url,
                station,
                day,
                {
                    "pm25": [40.0 + 15 * index + 7 * number] * 24,
                    "pm10": [90.0 + 10 * index] * (24 if number else 12),
                    "no2": [30.0 + 5 * h for h in range(24)],
                    "o3": o3,
                },
            )
    settle(database_url)
    response = admin.get(
        "/v1/cities/110000/aqi",
        params={"period": "daily", "start": days[0].isoformat(), "end": days[-1].isoformat()},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    from_api = {
        item["day"]: (
            item["aqi"],
            item["version"],
            item["primary_pollutants"] or [],
            item["beyond_index"],
            None,
        )
        for item in body["items"]
    }
    assert body["not_computable"] == []
    assert len(from_api) == len(days)
    assert kept(database_url) == from_api
    assert {v[1] for v in from_api.values()} == {"HJ 633-2012", "HJ 633-2026"}
    assert any("o3_8h" in v[2] or "o3_1h" in v[2] for v in from_api.values())


def test_an_ozone_only_day_gets_its_aqi_from_the_o3_daily_max_8_hour(database_url):
    # 250 all day: the 8-hour maximum 250 on 215…265 → 150 + 50·35/50 = 185
    write_hours(database_url, "110000-A001", date(2026, 6, 10), {"o3": [250.0] * 24})
    settle(database_url)
    assert kept(database_url) == {"2026-06-10": (185, "HJ 633-2026", ["o3_8h"], False, None)}


def test_a_not_computable_day_is_kept_and_shown_as_such(admin, database_url):
    # HJ 633-2012: an 8-hour O3 above 800 takes the IAQI of the 1-hour maximum; with 16 hours
    # there is no valid O3 day, so no 1-hour maximum, while 11 windows of 900 make a valid
    # 8-hour maximum (above the limit). PM2.5 alone (100 → 132) would understate the day.
    day = date(2025, 7, 1)
    write_hours(
        database_url,
        "110000-A001",
        day,
        {"o3": [900.0] * 16 + [None] * 8, "pm25": [100.0] * 24},
    )
    write_hours(database_url, "110000-A001", day - timedelta(days=1), {"pm25": [100.0] * 24})
    settle(database_url)
    stored = kept(database_url)
    assert stored["2025-06-30"] == (132, "HJ 633-2012", ["pm25"], False, None)
    aqi, version, primary, beyond, reason = stored["2025-07-01"]
    assert (aqi, version, primary, beyond) == (None, "HJ 633-2012", [], False)
    assert reason is not None and "o3_8h above 800" in reason

    history = admin.get(
        "/v1/cities/110000/aqi",
        params={"period": "daily", "start": "2025-06-30", "end": "2025-07-01"},
    ).json()
    assert [i["day"] for i in history["items"]] == ["2025-06-30"]
    (shown,) = history["not_computable"]
    assert (shown["day"], shown["version"], shown["reason"]) == ("2025-07-01", version, reason)
    o3_8h = next(c for c in shown["concentrations"] if c["key"] == "o3_8h")
    assert (o3_8h["value"], o3_8h["valid_windows"]) == (900.0, 11)
    assert "o3_1h" in shown["missing"]
    # the latest day with data has no AQI: the latest AQI is the day before, and says so
    latest = admin.get("/v1/stations/110000-A001/aqi/latest", params={"period": "daily"}).json()
    assert latest["latest"]["day"] == "2025-06-30"
    assert latest["not_computable"]["day"] == "2025-07-01"


def test_the_migration_derives_o3_8h_days_and_city_aqis_of_an_existing_database(postgres):
    """A database of 0008 whose levels were kept without 'o3_8h' days and city AQIs gets
    them from `migrate` and the stage it queues."""
    name = "migrate_0008"
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    url = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, sql in migration_files():
            if version < "0009":
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_migrations VALUES (%s)", (version,))
        conn.execute(
            "INSERT INTO stations (station_id, name, kind, city_code)"
            " VALUES ('M-1', 'm1', 'air', '110100')"
        )
        # a day of O3 at 250 (Beijing 2026-06-10), stored as a reading path of 0008 would
        conn.execute(
            "INSERT INTO readings (station_id, parameter, ts, value)"
            " SELECT 'M-1', 'o3', '2026-06-09 16:00+00'::timestamptz + h * interval '1 hour', 250"
            " FROM generate_series(0, 23) h"
        )
        conn.execute("DELETE FROM aggregation_queue")  # a database whose levels are current
        conn.commit()
        assert "0009_assessment" in migrate(conn)
        queued = conn.execute("SELECT count(*) FROM aggregation_queue").fetchone()
    assert queued == (1,)
    settle(url)
    with psycopg.connect(url) as conn:
        o3_8h = conn.execute(
            "SELECT day, mean, valid FROM readings_daily WHERE parameter = 'o3_8h'"
        ).fetchall()
        aqis = conn.execute("SELECT city_code, day, aqi FROM city_daily_aqi").fetchall()
    assert o3_8h == [(date(2026, 6, 10), 250.0, True)]
    assert aqis == [("110100", date(2026, 6, 10), 185)]
