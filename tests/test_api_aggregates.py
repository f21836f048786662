"""/v1/stations/{id}/aggregates and /v1/cities/{code}/aggregates: values and coverage by
GB 3095 Table 4 and HJ 663, checked against means computed here from the raw readings."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from schemas.stations import Station
from storage.stations import upsert_stations
from storage.writer import prepare_connection, write_batch
from tests.support import settle

RECEIVED = datetime(2026, 11, 28, tzinfo=UTC)
BEIJING = ZoneInfo("Asia/Shanghai")
URUMQI = ZoneInfo("Asia/Urumqi")
A001, A002 = "110000-A001", "110000-A002"

Reading = tuple[str, str, datetime, float]


def store(database_url: str, readings: list[Reading], settled: bool = True) -> None:
    """Write the readings and (unless ``settled`` is False) run the aggregation stage, so
    that the daily, monthly and annual values reflect them; hourly values are a view over
    the readings, current without the stage."""
    rows = [(*reading, RECEIVED) for reading in readings]
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        for i in range(0, len(rows), 20_000):
            write_batch(conn, rows[i : i + 20_000])
    if settled:
        settle(database_url)


def day_of_hours(station: str, day: date, hours: int, base: float, tz=BEIJING) -> list[Reading]:
    """One pm25 reading at the start of each of the first ``hours`` local hours of ``day``."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    return [
        (station, "pm25", (midnight + timedelta(hours=h)).astimezone(UTC), base + 0.5 * h)
        for h in range(hours)
    ]


def valid_daily_means(readings: list[Reading], tz=BEIJING) -> dict[tuple[str, date], float]:
    """Independent HJ 663 daily means of hourly stations (one reading = one valid hour):
    the mean of the day's hourly values when there are at least 20 of them."""
    hours: dict[tuple[str, date], list[float]] = defaultdict(list)
    for station, _, ts, value in readings:
        hours[station, ts.astimezone(tz).date()].append(value)
    return {key: statistics.fmean(v) for key, v in hours.items() if len(v) >= 20}


def series(client, path: str, **params):
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def station_series(client, station: str, **params):
    return series(client, f"/v1/stations/{station}/aggregates", parameter="pm25", **params)


def test_daily_value_needs_20_valid_hours(admin, database_url):
    day = date(2026, 3, 1)
    store(database_url, day_of_hours(A001, day, 19, 10) + day_of_hours(A002, day, 20, 10))
    nineteen = station_series(admin, A001, period="daily", start="2026-03-01", end="2026-03-01")
    twenty = station_series(admin, A002, period="daily", start="2026-03-01", end="2026-03-01")
    assert nineteen["unit"] == "ug/m3" and nineteen["timezone"] == "Asia/Shanghai"
    assert datetime.fromisoformat(nineteen["as_of"]).tzinfo is not None
    [short] = nineteen["items"]
    [full] = twenty["items"]
    assert short["period_start"] == full["period_start"] == "2026-03-01T00:00:00+08:00"
    assert short["coverage"] == {
        "expected": 24,
        "observed": 19,
        "percent_complete": 79.17,
        "valid": False,
        "reasons": ["19 valid hours (20 needed)"],
        "removed_by_review_hours": 0,
    }
    assert short["mean"] == pytest.approx(statistics.fmean(10 + 0.5 * h for h in range(19)))
    assert full["coverage"] == {
        "expected": 24,
        "observed": 20,
        "percent_complete": 83.33,
        "valid": True,
        "reasons": [],
        "removed_by_review_hours": 0,
    }
    assert full["mean"] == pytest.approx(statistics.fmean(10 + 0.5 * h for h in range(20)))
    assert (full["min"], full["max"]) == (10.0, 19.5)


def test_daily_validity_follows_the_parameters_minimum_of_hours(admin, database_url):
    # water items need one sample a day (daily_min_hours = 1 in the parameters table)
    ts = datetime(2026, 3, 1, 9, tzinfo=BEIJING).astimezone(UTC)
    store(database_url, [("W-YANGTZE-01", "nh3_n", ts, 0.42)])
    got = series(
        admin,
        "/v1/stations/W-YANGTZE-01/aggregates",
        parameter="nh3_n",
        start="2026-03-01",
        end="2026-03-01",
    )
    assert got["unit"] == "mg/L"
    [value] = got["items"]
    assert value["mean"] == 0.42
    assert value["coverage"]["observed"] == 1 and value["coverage"]["valid"] is True


def march(database_url: str) -> list[Reading]:
    """A001: 26 valid days in March 2026 and one of 10 hours; A002: 27 valid days."""
    readings = []
    for d in range(1, 27):
        readings += day_of_hours(A001, date(2026, 3, d), 20 + d % 5, 5.0 + d)
    readings += day_of_hours(A001, date(2026, 3, 27), 10, 500.0)  # invalid: not in the mean
    for d in range(1, 28):
        readings += day_of_hours(A002, date(2026, 3, d), 24, 3.0 * d)
    store(database_url, readings)
    return readings


def test_monthly_value_needs_27_valid_days(admin, database_url):
    daily = valid_daily_means(march(database_url))
    a001 = station_series(admin, A001, period="monthly", start="2026-03-10", end="2026-03-10")
    a002 = station_series(admin, A002, period="monthly", start="2026-03-01", end="2026-03-31")
    [short] = a001["items"]
    [full] = a002["items"]
    assert short["period_start"] == "2026-03-01T00:00:00+08:00"  # the whole month
    assert short["coverage"] == {
        "expected": 31,
        "observed": 26,
        "percent_complete": 83.87,
        "valid": False,
        "reasons": ["March has 26 valid days (27 needed)"],
        "removed_by_review_hours": 0,
    }
    a001_days = [v for (station, _), v in daily.items() if station == A001]
    assert len(a001_days) == 26
    assert short["mean"] == pytest.approx(statistics.fmean(a001_days))
    assert (short["min"], short["max"]) == pytest.approx((min(a001_days), max(a001_days)))
    assert full["coverage"]["observed"] == 27 and full["coverage"]["valid"] is True
    assert full["coverage"]["reasons"] == []
    a002_days = [v for (station, _), v in daily.items() if station == A002]
    assert full["mean"] == pytest.approx(statistics.fmean(a002_days))


def test_annual_coverage_names_every_failing_month_and_the_yearly_shortfall(admin, database_url):
    daily = valid_daily_means(march(database_url))
    got = station_series(admin, A001, period="annual", start="2026-06-01", end="2026-06-30")
    [year] = got["items"]
    assert year["period_start"] == "2026-01-01T00:00:00+08:00"
    months = ["January", "February", "March", "April", "May", "June", "July", "August"]
    months += ["September", "October", "November", "December"]
    expected_reasons = [
        f"{month} has {days} valid days ({25 if month == 'February' else 27} needed)"
        for month, days in zip(months, [0, 0, 26] + [0] * 9, strict=True)
    ]
    assert year["coverage"] == {
        "expected": 365,
        "observed": 26,
        "percent_complete": 7.12,
        "valid": False,
        "reasons": [*expected_reasons, "26 valid days in the year (324 needed)"],
        "removed_by_review_hours": 0,
    }
    a001_days = [v for (station, _), v in daily.items() if station == A001]
    assert year["mean"] == pytest.approx(statistics.fmean(a001_days))


def test_a_full_year_is_valid_and_its_days_are_the_stations_local_days(admin, database_url):
    readings = []
    day = date(2026, 1, 1)
    while day.year == 2026:
        # every month valid except that November keeps only 27 valid days (still enough)
        hours = 20 if day.month != 11 or day.day <= 27 else 5
        readings += day_of_hours("650000-A001", day, hours, day.timetuple().tm_yday, URUMQI)
        day += timedelta(days=1)
    store(database_url, readings)
    got = station_series(
        admin, "650000-A001", period="annual", start="2026-01-01", end="2026-12-31"
    )
    [year] = got["items"]
    assert year["period_start"] == "2026-01-01T00:00:00+06:00"
    assert year["coverage"]["valid"] is True and year["coverage"]["reasons"] == []
    assert year["coverage"]["observed"] == 365 - 3
    daily = valid_daily_means(readings, URUMQI)
    assert len(daily) == 362
    assert year["mean"] == pytest.approx(statistics.fmean(daily.values()))
    november = station_series(
        admin, "650000-A001", period="monthly", start="2026-11-01", end="2026-11-30"
    )["items"]
    assert november[0]["coverage"]["observed"] == 27 and november[0]["coverage"]["valid"]


def test_city_daily_value_is_the_mean_of_its_stations_valid_daily_means(admin, database_url):
    d1, d2, d3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
    readings = (
        day_of_hours(A001, d1, 20, 30)
        + day_of_hours(A002, d1, 24, 50)
        + day_of_hours(A001, d2, 19, 90)  # invalid: left out of the city value
        + day_of_hours(A002, d2, 22, 40)
        + day_of_hours(A001, d3, 10, 70)  # no valid station on day 3
        + day_of_hours(A002, d3, 12, 70)
        + day_of_hours("310000-A001", d1, 24, 999)  # Shanghai: another city
    )
    store(database_url, readings)
    daily = valid_daily_means(readings)
    got = series(
        admin,
        "/v1/cities/110000/aggregates",
        parameter="pm25",
        period="daily",
        start="2026-03-01",
        end="2026-03-03",
    )
    assert (got["level"], got["id"], got["name"]) == ("city", "110000", "Beijing")
    one, two, three = got["items"]
    assert one["period_start"] == "2026-03-01T00:00:00+08:00"
    assert one["mean"] == pytest.approx((daily[A001, d1] + daily[A002, d1]) / 2)
    assert (one["min"], one["max"]) == pytest.approx((daily[A001, d1], daily[A002, d1]))
    assert one["coverage"]["expected"] == 2 and one["coverage"]["observed"] == 2
    assert two["mean"] == pytest.approx(daily[A002, d2])
    assert two["coverage"] == {
        "expected": 2,
        "observed": 1,
        "percent_complete": 50.0,
        "valid": True,
        "reasons": [],
        "removed_by_review_hours": 0,
    }
    assert three["mean"] is None
    assert three["coverage"]["valid"] is False
    assert three["coverage"]["reasons"] == ["no station has a valid daily mean"]

    # the city's month and year come from its daily values
    city_days = [one["mean"], two["mean"]]
    for period in ("monthly", "annual"):
        [value] = series(
            admin,
            "/v1/cities/110000/aggregates",
            parameter="pm25",
            period=period,
            start="2026-03-01",
            end="2026-03-31",
        )["items"]
        assert value["mean"] == pytest.approx(statistics.fmean(city_days))
        assert value["coverage"]["observed"] == 2
        assert "March has 2 valid days (27 needed)" in value["coverage"]["reasons"]


def test_city_hourly_value_is_the_mean_of_its_stations_valid_hourly_means(admin, database_url):
    upsert_stations_for_test(database_url)
    h0 = datetime(2026, 3, 1, 2, tzinfo=UTC)
    h1 = h0 + timedelta(hours=1)
    readings: list[Reading] = [
        (A001, "pm25", h0, 10.0),
        (A002, "pm25", h0, 20.0),
        (A001, "pm25", h1, 12.0),
    ]
    # 110000-A003 reports every 5 minutes: 8 readings = 40 min (invalid), 9 = 45 min (valid)
    readings += [("110000-A003", "pm25", h0 + timedelta(minutes=5 * i), 100.0) for i in range(8)]
    readings += [("110000-A003", "pm25", h1 + timedelta(minutes=5 * i), 30.0) for i in range(9)]
    store(database_url, readings, settled=False)  # hours: no aggregation stage needed
    params = {"period": "hourly", "start": "2026-03-01T10:00:00+08:00"}
    got = series(
        admin,
        "/v1/cities/110000/aggregates",
        parameter="pm25",
        end="2026-03-01T04:00:00Z",
        **params,
    )
    first, second = got["items"]
    assert first["period_start"] == "2026-03-01T02:00:00+00:00"
    assert (first["mean"], first["min"], first["max"]) == (15.0, 10.0, 20.0)
    assert first["coverage"]["expected"] == 3 and first["coverage"]["observed"] == 2
    assert second["period_start"] == "2026-03-01T03:00:00+00:00"
    assert second["mean"] == 21.0
    assert second["coverage"]["observed"] == 2 and second["coverage"]["valid"] is True

    a003 = station_series(admin, "110000-A003", end="2026-03-01T04:00:00Z", **params)["items"]
    assert [v["coverage"] for v in a003] == [
        {
            "expected": 60,
            "observed": 40,
            "percent_complete": 66.67,
            "valid": False,
            "reasons": ["40 minutes of data in the hour (45 needed)"],
            "removed_by_review_hours": 0,
        },
        {
            "expected": 60,
            "observed": 45,
            "percent_complete": 75.0,
            "valid": True,
            "reasons": [],
            "removed_by_review_hours": 0,
        },
    ]
    assert a003[0]["mean"] == 100.0


def upsert_stations_for_test(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        upsert_stations(
            conn,
            [
                Station(
                    station_id="110000-A003",
                    name="Guanyuan",
                    city="Beijing",
                    city_code="110000",
                    province="Beijing",
                    reading_interval_s=300,
                )
            ],
        )


def test_hourly_minutes_are_capped_at_the_hour_and_dates_are_local_days(admin, database_url):
    upsert_stations_for_test(database_url)
    h0 = datetime(2026, 3, 1, 2, tzinfo=UTC)
    # every 4 minutes at a 5-minute interval: 15 x 5 = 75 minutes, counted as 60
    readings: list[Reading] = [
        ("110000-A003", "pm25", h0 + timedelta(minutes=4 * i), 8.0) for i in range(15)
    ]
    # local day 2026-03-01 in Beijing = 2026-02-28T16:00Z .. 2026-03-01T16:00Z
    readings += [
        (A001, "pm25", datetime(2026, 2, 28, 15, tzinfo=UTC), 1.0),
        (A001, "pm25", datetime(2026, 2, 28, 16, tzinfo=UTC), 2.0),
        (A001, "pm25", datetime(2026, 3, 1, 15, tzinfo=UTC), 3.0),
        (A001, "pm25", datetime(2026, 3, 1, 16, tzinfo=UTC), 4.0),
    ]
    store(database_url, readings, settled=False)  # hours: no aggregation stage needed
    dates = {"period": "hourly", "start": "2026-03-01", "end": "2026-03-01"}
    [capped] = station_series(admin, "110000-A003", **dates)["items"]
    assert capped["coverage"]["observed"] == 60 and capped["coverage"]["percent_complete"] == 100
    local_day = station_series(admin, A001, **dates)["items"]
    assert [(v["period_start"], v["mean"]) for v in local_day] == [
        ("2026-02-28T16:00:00+00:00", 2.0),
        ("2026-03-01T15:00:00+00:00", 3.0),
    ]
    assert local_day[0]["coverage"]["observed"] == 60


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/v1/stations/nope/aggregates", {}, 404, None),
        ("/v1/cities/999000/aggregates", {}, 404, None),
        ("/v1/stations/110000-A001/aggregates", {"parameter": "pm3"}, 422, "query.parameter"),
        ("/v1/cities/110000/aggregates", {"parameter": "pm3"}, 422, "query.parameter"),
        ("/v1/stations/110000-A001/aggregates", {"period": "weekly"}, 422, "query.period"),
        ("/v1/stations/110000-A001/aggregates", {"end": "2026-02-01"}, 422, "query.end"),
        ("/v1/cities/110000/aggregates", {"end": "2026-02-01"}, 422, "query.end"),
        ("/v1/stations/110000-A001/aggregates", {"start": "2026-13-01"}, 422, "query.start"),
        ("/v1/stations/110000-A001/aggregates", {"start": None}, 422, "query.start"),
        (
            "/v1/stations/110000-A001/aggregates",
            {"start": "2026-03-01T00:00:00+08:00", "end": "2026-03-02T00:00:00+08:00"},
            422,
            "query.start",  # daily values take dates
        ),
        (
            "/v1/stations/110000-A001/aggregates",
            {"period": "hourly", "start": "2026-03-01T00:00:00"},
            422,
            "query.start",  # naive: no offset
        ),
        (
            "/v1/stations/110000-A001/aggregates",
            {"period": "hourly", "start": "2026-03-01T00:00:00+08:00"},
            422,
            "query.end",  # a date and a datetime
        ),
        (
            "/v1/stations/110000-A001/aggregates",
            {"period": "hourly", "start": "2025-01-01", "end": "2026-01-02"},
            422,
            "query.end",  # 366 days at most
        ),
    ],
)
def test_bad_input_is_a_problem_never_a_server_error(admin, path, params, status, field):
    query = {"parameter": "pm25", "start": "2026-03-01", "end": "2026-03-31"} | params
    response = admin.get(path, params={k: v for k, v in query.items() if v is not None})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if status == 404:
        assert response.json()["type"] in (
            "/problems/station-not-found",
            "/problems/city-not-found",
        )
    if field is not None:
        invalid = response.json()["invalid_params"]
        assert [p["name"] for p in invalid] == [field]
    if params.get("start") == "2026-03-01T00:00:00":
        assert "offset" in response.json()["invalid_params"][0]["reason"]


def test_hourly_span_of_366_days_is_allowed(admin):
    params = {"period": "hourly", "start": "2024-01-01", "end": "2024-12-31"}
    assert station_series(admin, A001, **params)["items"] == []


@pytest.mark.parametrize(
    "path", ["/v1/stations/110000-A001/aggregates", "/v1/cities/110000/aggregates"]
)
def test_401_without_key_403_without_read_scope(api, make_key, path):
    params = {"parameter": "pm25", "start": "2026-03-01", "end": "2026-03-31"}
    assert api.get(path, params=params).status_code == 401
    bad = {"Authorization": "Bearer aw_kbad_x"}
    assert api.get(path, params=params, headers=bad).status_code == 401
    denied = api.get(path, params=params, headers={"Authorization": f"Bearer {make_key('ingest')}"})
    assert denied.status_code == 403
    assert denied.json()["type"] == "/problems/forbidden"
    reader = {"Authorization": f"Bearer {make_key('read')}"}
    assert api.get(path, params=params, headers=reader).status_code == 200
