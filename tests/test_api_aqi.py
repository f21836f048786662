"""/v1/stations/{id}/aqi and /v1/cities/{code}/aqi against the real database.

Every expected IAQI is computed by hand from the breakpoints of STANDARDS.md §4 (written out in
the comments), not with standards.aqi.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from schemas.stations import Station
from storage.stations import upsert_stations
from storage.writer import prepare_connection, write_batch
from tests.support import settle

BEIJING = ZoneInfo("Asia/Shanghai")
URUMQI = ZoneInfo("Asia/Urumqi")
RECEIVED = datetime(2026, 11, 28, tzinfo=UTC)
# a 5-minute station of Beijing: fewer than 9 readings make an invalid hour
FIVE_MINUTE_STATION = Station(
    station_id="110000-A003",
    name="Guanyuan",
    city="Beijing",
    city_code="110000",
    province="Beijing",
    reading_interval_s=300,
)


def write_hours(
    database_url: str,
    station_id: str,
    first_hour: datetime,
    series: dict[str, list[float | None]],
) -> None:
    """One reading per hour from ``first_hour`` on, per parameter; None = no reading."""
    rows = [
        (station_id, parameter, first_hour + timedelta(hours=h), value, RECEIVED)
        for parameter, values in series.items()
        for h, value in enumerate(values)
        if value is not None
    ]
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(conn, rows)


def write_days(database_url: str, station_id: str, days: list[date], means: dict[str, float]):
    """24 hourly readings of each value on each Beijing day: a valid daily mean of it."""
    for day in days:
        midnight = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
        write_hours(database_url, station_id, midnight, {p: [v] * 24 for p, v in means.items()})


def iaqis(item: dict) -> dict[str, int | None]:
    return {i["pollutant"]: i["iaqi"] for i in item["iaqi"]}


def concentrations(item: dict) -> dict[str, dict]:
    return {c["key"]: c for c in item["concentrations"]}


def test_hourly_aqi_switches_from_2012_to_2026_rules_at_beijing_midnight_march_1(
    admin, database_url
):
    # 2026-02-28 00:00 … 2026-03-01 00:00 Beijing (25 hours). PM2.5 is 70 for 23 hours, 190 at
    # 23:00 (24-hour moving mean at 23:00: (23·70 + 190)/24 = 75) and 100 at 00:00.
    write_hours(
        database_url,
        "110000-A001",
        datetime(2026, 2, 28, tzinfo=BEIJING),
        {
            "pm25": [70.0] * 23 + [190.0, 100.0],
            "pm10": [100.0] * 25,
            "so2": [20.0] * 25,
            "no2": [50.0] * 25,
            "co": [1.0] * 25,
            "o3": [100.0] * 25,
        },
    )
    response = admin.get(
        "/v1/stations/110000-A001/aqi",
        params={
            "period": "hourly",
            "start": "2026-02-28T23:00:00+08:00",
            "end": "2026-03-01T00:00:00+08:00",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["start"] == "2026-02-28T23:00:00+08:00"
    assert body["end"] == "2026-03-01T01:00:00+08:00"
    old, new = body["items"]

    assert old["start"] == "2026-02-28T23:00:00+08:00"
    assert old["end"] == "2026-03-01T00:00:00+08:00"
    assert old["version"] == "HJ 633-2012"
    # 2012 real time: PM on the 24-hour moving mean; gases on their 1-hour tables
    assert iaqis(old) == {
        "pm25": 100,  # 24-h mean 75 = breakpoint 75 → 100 (the 1-hour 190 would give 240)
        "pm10": 75,  # 100 on 50…150 → 50 + 50·50/100 = 75
        "so2": 7,  # 20 on 0…150 → 50·20/150 = 6.67 → 7
        "no2": 25,  # 50 on 0…100 → 25
        "co": 10,  # 1.0 on 0…5 → 10
        "o3_1h": 32,  # 100 on 0…160 → 31.25 → 32
        "o3_8h": 50,  # 8-hour moving mean 100 = breakpoint 100 → 50
    }
    assert (old["aqi"], old["category"], old["level"]) == (100, "Good", 2)
    assert old["colour"] == {"rgb": [255, 255, 0], "hex": "#ffff00"}
    assert old["primary_pollutants"] == ["pm25"]
    used = concentrations(old)
    assert set(used) == {"so2", "no2", "pm10_24h", "co", "o3", "o3_8h", "pm25_24h", "so2_24h"}
    assert used["pm25_24h"] == {
        "key": "pm25_24h",
        "parameter": "pm25",
        "statistic": "24h_moving_mean",
        "value": 75.0,
        "unit": "ug/m3",
        "stations": 1,
        "valid_hours": 24,
        "valid_windows": None,
    }
    assert used["co"]["unit"] == "mg/m3"

    assert new["start"] == "2026-03-01T00:00:00+08:00"
    assert new["version"] == "HJ 633-2026"
    # 2026 real time: the 1-hour PM on the 24-hour table; O3 on the 1-hour table only
    assert iaqis(new) == {
        "pm25": 137,  # 100 on 60…115 → 100 + 50·40/55 = 136.36 → 137
        "pm10": 86,  # 100 on 50…120 → 50 + 50·50/70 = 85.71 → 86
        "so2": 7,
        "no2": 25,
        "co": 10,
        "o3_1h": 32,
    }
    assert (new["aqi"], new["display"], new["category"]) == (137, "137", "Lightly polluted")
    assert new["category_zh"] == "轻度污染"
    assert new["colour"]["rgb"] == [255, 126, 0]
    assert new["primary_pollutants"] == ["pm25"]
    assert set(concentrations(new)) == {"so2", "no2", "pm10", "co", "o3", "pm25"}
    assert concentrations(new)["pm25"]["statistic"] == "1h_mean"


def test_daily_pm_means_judged_by_2012_then_2026_breakpoints(admin, database_url):
    write_days(
        database_url,
        "110000-A001",
        [date(2026, 2, 28), date(2026, 3, 1)],
        {"pm25": 75.0, "pm10": 150.0},
    )
    settle(database_url)  # daily means come from the aggregation stage
    response = admin.get(
        "/v1/stations/110000-A001/aqi",
        params={"period": "daily", "start": "2026-02-28", "end": "2026-03-01"},
    )
    assert response.status_code == 200, response.text
    assert datetime.fromisoformat(response.json()["as_of"]).tzinfo is not None
    old, new = response.json()["items"]
    assert (old["day"], old["version"]) == ("2026-02-28", "HJ 633-2012")
    assert old["start"] == "2026-02-28T00:00:00+08:00"
    assert old["end"] == "2026-03-01T00:00:00+08:00"
    # PM2.5 75 and PM10 150 are both the 2012 breakpoints of IAQI 100: a tie names both,
    # in HJ 633 Table 1 order
    assert iaqis(old) == {
        "pm25": 100,
        "pm10": 100,
        "so2": None,
        "no2": None,
        "co": None,
        "o3_1h": None,
        "o3_8h": None,
    }
    assert old["aqi"] == 100 and old["primary_pollutants"] == ["pm10", "pm25"]
    assert set(old["missing"]) == {"so2", "no2", "co", "o3_1h", "o3_8h"}
    assert concentrations(old)["pm25"]["statistic"] == "daily_mean"
    assert concentrations(old)["pm25"]["valid_hours"] == 24

    assert (new["day"], new["version"]) == ("2026-03-01", "HJ 633-2026")
    # 75 on 60…115 → 100 + 50·15/55 = 113.64 → 114; PM10 150 on 120…250 → 100 + 50·30/130
    # = 111.54 → 112
    assert iaqis(new)["pm25"] == 114 and iaqis(new)["pm10"] == 112
    assert "o3_1h" not in iaqis(new)  # 2026 daily: only the O3 daily max 8-hour
    assert new["aqi"] == 114 and new["primary_pollutants"] == ["pm25"]
    assert new["category"] == "Lightly polluted"


def test_daily_o3_max_8h_uses_windows_inside_the_day_with_6_valid_hours(admin, database_url):
    # 2026-06-10: 50 until 19:00, 300 from 20:00 into 03:00 of the next day. The windows inside
    # the day end at 08:00 … 24:00; the best is 16–24: (4·50 + 4·300)/8 = 175. A window across
    # midnight (20–04: 300) does not belong to the day.
    write_hours(
        database_url,
        "110000-A001",
        datetime(2026, 6, 10, tzinfo=BEIJING),
        {"o3": [50.0] * 20 + [300.0] * 8},
    )
    # 2026-06-12: 50 except 400 at 13:00 and no data at 09:00, 12:00 and 16:00. The window
    # 09–17 has 5 valid hours (it would give (4·50 + 400)/5 = 120); the 16 others have 6 or
    # more, the best 6: (5·50 + 400)/6 = 108.33 (06–14 … 08–16, 10–18 … 12–20).
    o3_day: list[float | None] = [50.0] * 24
    o3_day[13] = 400.0
    for hour in (9, 12, 16):
        o3_day[hour] = None
    write_hours(database_url, "110000-A001", datetime(2026, 6, 12, tzinfo=BEIJING), {"o3": o3_day})
    settle(database_url)
    response = admin.get(
        "/v1/stations/110000-A001/aqi",
        params={"period": "daily", "start": "2026-06-10", "end": "2026-06-12"},
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    # 06-11 has 4 hours: no valid 8-hour window, no valid day
    assert [i["day"] for i in items] == ["2026-06-10", "2026-06-12"]
    first, third = items
    o3_first = concentrations(first)["o3_8h"]
    assert o3_first["value"] == 175.0
    assert o3_first["statistic"] == "daily_max_8h_mean"
    assert o3_first["valid_windows"] == 17
    # 175 on 160…215 → 100 + 50·15/55 = 113.64 → 114
    assert first["aqi"] == 114 and first["primary_pollutants"] == ["o3_8h"]
    assert set(first["missing"]) == {"so2", "no2", "pm10", "co", "pm25"}

    o3_third = concentrations(third)["o3_8h"]
    assert o3_third["value"] == pytest.approx(650 / 6)
    # valid windows of 17; valid hours of the O3 day behind them
    assert (o3_third["valid_windows"], o3_third["valid_hours"]) == (16, 21)
    # 2026 rounds 108.33 to 108 before the IAQI: 108 on 100…160 → 50 + 50·8/60 = 56.67 → 57
    (iaqi_8h,) = [i for i in third["iaqi"] if i["pollutant"] == "o3_8h"]
    assert (iaqi_8h["iaqi"], iaqi_8h["concentration"]) == (57, 108.0)
    assert third["aqi"] == 57


def test_2012_daily_aqi_includes_the_o3_daily_max_1_hour(admin, database_url):
    write_hours(
        database_url,
        "110000-A001",
        datetime(2025, 6, 10, tzinfo=BEIJING),
        {"o3": [50.0] * 20 + [300.0] * 8},
    )
    settle(database_url)
    response = admin.get(
        "/v1/stations/110000-A001/aqi",
        params={"period": "daily", "start": "2025-06-10", "end": "2025-06-10"},
    )
    (item,) = response.json()["items"]
    assert item["version"] == "HJ 633-2012"
    # max 1-hour 300 = breakpoint → 150; max 8-hour 175 → 114
    assert iaqis(item)["o3_1h"] == 150 and iaqis(item)["o3_8h"] == 114
    assert concentrations(item)["o3_1h"]["statistic"] == "daily_max_1h_mean"
    assert item["aqi"] == 150 and item["primary_pollutants"] == ["o3_1h"]


def test_so2_1_hour_above_800_uses_2012_24_hour_mean_and_2026_fixed_200(admin, database_url):
    write_hours(
        database_url,
        "110000-A001",
        datetime(2025, 12, 1, tzinfo=BEIJING),
        {"so2": [50.0] * 23 + [900.0]},
    )
    write_hours(
        database_url, "110000-A001", datetime(2026, 3, 2, 5, tzinfo=BEIJING), {"so2": [900.0]}
    )
    old = admin.get(
        "/v1/stations/110000-A001/aqi",
        params={"start": "2025-12-01T23:00:00+08:00", "end": "2025-12-01T23:00:00+08:00"},
    ).json()["items"][0]
    (so2,) = [i for i in old["iaqi"] if i["pollutant"] == "so2"]
    # 24-hour mean (23·50 + 900)/24 = 85.42 on 50…150 → 50 + 50·35.42/100 = 67.71 → 68
    assert so2["iaqi"] == 68 and so2["breakpoints"] == "so2_24h"
    assert so2["concentration"] == pytest.approx(2050 / 24)
    assert "so2_1h above 800" in so2["rule"]
    assert concentrations(old)["so2_24h"]["valid_hours"] == 24

    new = admin.get(
        "/v1/stations/110000-A001/aqi",
        params={"start": "2026-03-02T05:00:00+08:00", "end": "2026-03-02T05:00:00+08:00"},
    ).json()["items"][0]
    (so2,) = [i for i in new["iaqi"] if i["pollutant"] == "so2"]
    assert (so2["iaqi"], so2["beyond_index"]) == (200, False)
    assert "IAQI 200" in so2["rule"]


def test_2012_so2_1_hour_above_800_without_24_hour_mean_is_shown_not_computable(
    admin, database_url
):
    # one hour of SO2 900 and NO2 100 (→ 50): without a 24-hour SO2 mean the SO2 IAQI is
    # unknown, and 50 would understate the hour
    write_hours(
        database_url,
        "110000-A001",
        datetime(2025, 12, 1, 23, tzinfo=BEIJING),
        {"so2": [900.0], "no2": [100.0]},
    )
    body = admin.get(
        "/v1/stations/110000-A001/aqi",
        params={"start": "2025-12-01T23:00:00+08:00", "end": "2025-12-01T23:00:00+08:00"},
    ).json()
    assert body["items"] == []
    (hour,) = body["not_computable"]
    assert (hour["start"], hour["version"]) == ("2025-12-01T23:00:00+08:00", "HJ 633-2012")
    assert "so2_1h above 800" in hour["reason"] and "'so2_24h' is missing" in hour["reason"]
    assert {i["pollutant"]: i["iaqi"] for i in hour["iaqi"]}["no2"] == 50
    assert "so2" in hour["missing"]
    # nothing earlier has an AQI: no latest
    latest = admin.get("/v1/stations/110000-A001/aqi/latest")
    assert latest.status_code == 404


def test_latest_hour_beyond_the_index_is_reported_as_500_plus(admin, database_url):
    write_hours(
        database_url,
        "110000-A001",
        datetime(2026, 3, 2, 7, tzinfo=BEIJING),
        {"pm25": [80.0, 600.0]},
    )
    response = admin.get("/v1/stations/110000-A001/aqi/latest")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["subject"] == {
        "level": "station",
        "id": "110000-A001",
        "name": "Dongsi",
        "timezone": "Asia/Shanghai",
        "stations": ["110000-A001"],
    }
    latest = body["latest"]
    assert latest["start"] == "2026-03-02T08:00:00+08:00"
    # 600 is above PM2.5's top breakpoint 500: the top level, beyond the index
    (pm25,) = [i for i in latest["iaqi"] if i["pollutant"] == "pm25"]
    assert (pm25["iaqi"], pm25["display"], pm25["beyond_index"]) == (500, "500+", True)
    assert (latest["aqi"], latest["display"], latest["beyond_index"]) == (500, "500+", True)
    assert (latest["category"], latest["level"]) == ("Severely polluted", 6)
    assert latest["colour"]["rgb"] == [126, 0, 35]


def test_primary_pollutant_is_null_at_aqi_50_or_less(admin, database_url):
    write_hours(
        database_url,
        "110000-A002",
        datetime(2026, 3, 2, 9, tzinfo=BEIJING),
        {"pm25": [20.0], "no2": [60.0]},
    )
    item = admin.get("/v1/stations/110000-A002/aqi/latest").json()["latest"]
    # PM2.5 20 on 0…35 → 28.57 → 29; NO2 60 on 0…100 → 30
    assert iaqis(item) == {
        "pm25": 29,
        "no2": 30,
        "so2": None,
        "co": None,
        "o3_1h": None,
        "pm10": None,
    }
    assert item["aqi"] == 30
    assert item["primary_pollutants"] is None
    assert (item["category"], item["colour"]["hex"]) == ("Excellent", "#00e400")


def test_latest_daily_is_the_latest_valid_day(admin, database_url):
    write_days(database_url, "110000-A002", [date(2026, 3, 5), date(2026, 3, 6)], {"pm25": 35.0})
    write_hours(
        database_url, "110000-A002", datetime(2026, 3, 7, tzinfo=BEIJING), {"pm25": [50.0] * 5}
    )
    settle(database_url)
    daily = admin.get("/v1/stations/110000-A002/aqi/latest", params={"period": "daily"}).json()
    # 03-07 has 5 valid hours of the 20 a daily mean needs
    assert daily["period"] == "daily"
    assert datetime.fromisoformat(daily["as_of"]).tzinfo is not None
    assert daily["latest"]["day"] == "2026-03-06"
    assert daily["latest"]["aqi"] == 50  # 35 = breakpoint → 50
    assert daily["latest"]["primary_pollutants"] is None
    hourly = admin.get("/v1/stations/110000-A002/aqi/latest", params={"period": "hourly"}).json()
    assert hourly["latest"]["start"] == "2026-03-07T04:00:00+08:00"
    assert hourly["latest"]["aqi"] == 80  # 50 on 35…60 → 50 + 50·15/25 = 80


def test_version_is_chosen_by_beijing_time_for_a_station_in_another_timezone(admin, database_url):
    # Urumqi (UTC+6) 21:00 on 02-28 is 23:00 in Beijing (2012); 22:00 is 00:00 on 03-01 (2026)
    write_hours(
        database_url,
        "650000-A001",
        datetime(2026, 2, 27, 22, tzinfo=URUMQI),
        {"pm25": [100.0] * 25},
    )
    response = admin.get(
        "/v1/stations/650000-A001/aqi",
        params={"start": "2026-02-28T21:00:00+06:00", "end": "2026-02-28T22:00:00+06:00"},
    )
    old, new = response.json()["items"]
    assert old["start"] == "2026-02-28T21:00:00+06:00"
    assert old["version"] == "HJ 633-2012"
    assert old["aqi"] == 132  # 24-hour mean 100 on 75…115 → 100 + 50·25/40 = 131.25 → 132
    assert new["start"] == "2026-02-28T22:00:00+06:00"
    assert new["version"] == "HJ 633-2026"
    assert new["aqi"] == 137  # 1-hour 100 on 60…115 → 136.36 → 137


def test_city_hourly_aqi_is_from_the_mean_of_its_stations_valid_hours(admin, database_url):
    with psycopg.connect(database_url) as conn:
        upsert_stations(conn, [FIVE_MINUTE_STATION])
    hour = datetime(2026, 3, 3, 10, tzinfo=BEIJING)
    write_hours(database_url, "110000-A001", hour, {"pm25": [40.0]})
    write_hours(database_url, "110000-A002", hour, {"pm25": [80.0]})
    write_hours(database_url, "310000-A001", hour, {"pm25": [400.0] * 12})  # another city
    # 3 five-minute readings: 15 minutes of data, an invalid hour that must not count
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(
            conn,
            [
                ("110000-A003", "pm25", hour + timedelta(minutes=5 * i), 500.0, RECEIVED)
                for i in range(3)
            ],
        )

    latest = admin.get("/v1/cities/110000/aqi/latest")
    assert latest.status_code == 200, latest.text
    body = latest.json()
    assert body["subject"]["level"] == "city"
    assert body["subject"]["name"] == "Beijing"
    assert body["subject"]["stations"] == ["110000-A001", "110000-A002", "110000-A003"]
    item = body["latest"]
    assert item["start"] == "2026-03-03T10:00:00+08:00"
    # city PM2.5 = (40 + 80)/2 = 60 = the 2026 breakpoint of IAQI 100
    pm25 = concentrations(item)["pm25"]
    assert (pm25["value"], pm25["stations"]) == (60.0, 2)
    assert item["aqi"] == 100 and item["version"] == "HJ 633-2026"

    history = admin.get(
        "/v1/cities/110000/aqi",
        params={"period": "hourly", "start": "2026-03-03", "end": "2026-03-03"},
    ).json()
    assert history["start"] == "2026-03-03T00:00:00+08:00"
    assert history["end"] == "2026-03-04T00:00:00+08:00"
    assert [i["start"] for i in history["items"]] == ["2026-03-03T10:00:00+08:00"]
    assert history["items"][0]["aqi"] == 100


def test_city_daily_aqi_is_from_the_mean_of_its_stations_valid_days(admin, database_url):
    with psycopg.connect(database_url) as conn:
        upsert_stations(conn, [FIVE_MINUTE_STATION])
    days = [date(2025, 6, 10), date(2026, 6, 10)]
    write_days(database_url, "110000-A001", days, {"pm25": 70.0})
    write_days(database_url, "110000-A002", days, {"pm25": 80.0})
    # 10 valid hours of 300 at the third station: an invalid day that must not count
    for day in days:
        midnight = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
        with psycopg.connect(database_url) as conn:
            prepare_connection(conn)
            write_batch(
                conn,
                [
                    ("110000-A003", "pm25", midnight + timedelta(minutes=5 * i), 300.0, RECEIVED)
                    for i in range(12 * 10)
                ],
            )
    settle(database_url)
    history = admin.get(
        "/v1/cities/110000/aqi",
        params={"period": "daily", "start": "2025-06-10", "end": "2026-06-10"},
    )
    assert history.status_code == 200, history.text
    old, new = history.json()["items"]
    # city daily PM2.5 = (70 + 80)/2 = 75: 2012 → 100; 2026 → 114
    assert concentrations(old)["pm25"]["value"] == 75.0
    assert concentrations(old)["pm25"]["stations"] == 2
    assert (old["day"], old["version"], old["aqi"]) == ("2025-06-10", "HJ 633-2012", 100)
    assert (new["day"], new["version"], new["aqi"]) == ("2026-06-10", "HJ 633-2026", 114)

    latest = admin.get("/v1/cities/110000/aqi/latest", params={"period": "daily"}).json()
    assert latest["latest"]["day"] == "2026-06-10" and latest["latest"]["aqi"] == 114


def test_history_without_data_is_an_empty_list(admin, database_url):
    response = admin.get(
        "/v1/cities/310000/aqi",
        params={"period": "daily", "start": "2026-01-01", "end": "2026-01-31"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
    assert response.json()["end"] == "2026-02-01T00:00:00+08:00"


@pytest.mark.parametrize(
    ("path", "problem_type"),
    [
        ("/v1/stations/nope/aqi/latest", "/problems/station-not-found"),
        ("/v1/stations/nope/aqi", "/problems/station-not-found"),
        ("/v1/stations/W-TAIHU-01/aqi", "/problems/not-an-air-station"),
        ("/v1/cities/999000/aqi/latest", "/problems/city-not-found"),
        ("/v1/cities/999000/aqi", "/problems/city-not-found"),
        ("/v1/cities/320100/aqi", "/problems/city-not-found"),  # water sections only
        ("/v1/stations/110000-A001/aqi/latest", "/problems/no-aqi-data"),
        ("/v1/cities/110000/aqi/latest?period=daily", "/problems/no-aqi-data"),
    ],
)
def test_unknown_station_city_or_missing_data_is_404_problem(admin, path, problem_type):
    response = admin.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == problem_type


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "weekly"}, "query.period"),
        ({"start": "2026-03-02T00:00:00+08:00", "end": "2026-03-01T00:00:00+08:00"}, "query.end"),
        ({"period": "daily", "start": "2026-03-02", "end": "2026-03-01"}, "query.end"),
        ({"start": "2026-03-01T08:00:00"}, "query.start"),  # no offset
        ({"start": "yesterday"}, "query.start"),
        ({"start": "2026-01-01", "end": "2026-03-01"}, "query.start"),  # > 31 days of hours
        ({"period": "daily", "start": "2024-01-01", "end": "2026-01-01"}, "query.start"),
        ({"start": "0001-01-01T00:00:00+08:00"}, "query.start"),
        ({"end": "9999-12-31T23:00:00-12:00"}, "query.end"),
        ({"period": "daily", "end": "0001-01-01"}, "query.end"),
    ],
)
def test_bad_query_values_are_422_problems_naming_the_field(admin, params, field):
    for path in ("/v1/stations/110000-A001/aqi", "/v1/cities/110000/aqi"):
        response = admin.get(path, params=params)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "/problems/validation-error"
        assert [p["name"] for p in problem["invalid_params"]] == [field]
    latest = admin.get("/v1/stations/110000-A001/aqi/latest", params={"period": "weekly"})
    assert latest.status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/v1/stations/110000-A001/aqi/latest",
        "/v1/stations/110000-A001/aqi",
        "/v1/cities/110000/aqi/latest",
        "/v1/cities/110000/aqi",
    ],
)
def test_401_without_key_403_without_read_scope(api, make_key, path):
    assert api.get(path).status_code == 401
    assert api.get(path, headers={"Authorization": "Bearer aw_kbad_x"}).status_code == 401
    denied = api.get(path, headers={"Authorization": f"Bearer {make_key('ingest')}"})
    assert denied.status_code == 403
    assert denied.json()["type"] == "/problems/forbidden"
    reader = api.get(path, headers={"Authorization": f"Bearer {make_key('read')}"})
    assert reader.status_code in (200, 404)  # latest without data is a 404 problem
    assert reader.status_code == 200 or reader.json()["type"] == "/problems/no-aqi-data"


def test_openapi_documents_the_aqi_models_and_problems(api):
    schema = api.get("/openapi.json").json()
    assert {"Aqi", "AqiHistory", "AqiLatest", "IaqiOut"} <= set(schema["components"]["schemas"])
    history = schema["paths"]["/v1/stations/{station_id}/aqi"]["get"]
    assert {"200", "401", "403", "404", "422"} <= set(history["responses"])
    assert "application/problem+json" in history["responses"]["404"]["content"]
