"""Automatic quality flags on the real services: /v1/stations/{id}/flags, the readings (JSON
and CSV) and the hourly values carry them, the thresholds come from the settings, and no
daily or annual figure changes because of them."""

from __future__ import annotations

import csv
import io
import statistics
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from storage.writer import prepare_connection, write_batch
from tests.support import settle

RECEIVED = datetime(2026, 11, 28, tzinfo=UTC)
T0 = datetime(2026, 3, 1, tzinfo=UTC)  # 08:00 in Beijing
HOUR = timedelta(hours=1)
STATION = "110000-A001"
FLAGS = f"/v1/stations/{STATION}/flags"
HOURS = 48


def pm25_of(h: int) -> float:
    """A spike at hour 24, 35.0 stuck for hours 25-38, 80 above PM10 at hour 39."""
    if h < 24:
        return 20.0 + h % 5
    if h == 24:
        return 300.0
    if h <= 38:
        return 35.0
    if h == 39:
        return 80.0
    return 30.0 + h % 3


def pm10_of(h: int) -> float:
    return {24: 400.0, 39: 60.0}.get(h, 100.0 + h)


def no2_of(h: int) -> float:
    """Zero for the first six hours."""
    return 0.0 if h < 6 else 40.0 + h % 7


def co_of(h: int) -> float:
    """80 mg/m³ at hour 30: beyond the analyser range, and a spike."""
    return 80.0 if h == 30 else 0.8 + (h % 4) * 0.1


def readings() -> list[tuple[str, str, datetime, float]]:
    rows = []
    for h in range(HOURS):
        ts = T0 + h * HOUR
        rows += [
            (STATION, "pm25", ts, pm25_of(h)),
            (STATION, "pm10", ts, pm10_of(h)),
            (STATION, "no2", ts, no2_of(h)),
            (STATION, "co", ts, co_of(h)),
        ]
    # a second reading in the spike's hour: both inherit the hour's flag
    rows.append((STATION, "pm25", T0 + 24 * HOUR + timedelta(minutes=30), 300.0))
    # another station's stuck series is never listed
    rows += [("110000-A002", "pm25", T0 + h * HOUR, 50.0) for h in range(HOURS)]
    return rows


@pytest.fixture()
def stored(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(conn, [(*row, RECEIVED) for row in readings()])
    settle(database_url)


def at(h: int) -> str:
    return (T0 + h * HOUR).isoformat()


def flags_of(client, **params) -> dict:
    response = client.get(FLAGS, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def codes_by_hour(body: dict) -> dict[tuple[int, str], list[str]]:
    return {
        (int((datetime.fromisoformat(item["hour"]) - T0) / HOUR), item["parameter"]): [
            flag["code"] for flag in item["flags"]
        ]
        for item in body["items"]
    }


STUCK_MESSAGE = "the same value 35.0 ug/m3 for 14 consecutive hours (threshold 12)"


def test_flags_endpoint_lists_each_flagged_hour_with_code_and_sentence(admin, stored):
    body = flags_of(admin, **{"from": at(0), "to": at(HOURS)})
    assert (body["station_id"], body["start"], body["end"]) == (STATION, at(0), at(HOURS))
    expected = {(24, "pm25"): ["spike"]}
    expected |= {(h, "pm25"): ["stuck"] for h in range(25, 39)}
    expected |= {(39, "pm25"): ["pm25_above_pm10"], (39, "pm10"): ["pm25_above_pm10"]}
    expected |= {(30, "co"): ["out_of_range", "spike"]}
    expected |= {(h, "no2"): ["zero_run"] for h in range(6)}
    assert codes_by_hour(body) == expected
    # by hour, then parameter
    keys = [(item["hour"], item["parameter"]) for item in body["items"]]
    assert keys == sorted(keys)
    by_key = {(item["hour"], item["parameter"]): item for item in body["items"]}
    stuck = by_key[at(30), "pm25"]
    assert (stuck["value"], stuck["unit"]) == (35.0, "ug/m3")
    assert stuck["flags"] == [{"code": "stuck", "message": STUCK_MESSAGE}]
    co = by_key[at(30), "co"]
    assert (co["value"], co["unit"]) == (80.0, "mg/m3")
    assert co["flags"][0]["message"] == (
        "80.0 mg/m3 is outside the plausible range 0.0–57.0 mg/m3 "
        "(the HJ 654-2013 analyser range 50 µmol/mol)"
    )
    assert by_key[at(39), "pm10"]["flags"][0]["message"] == (
        "PM2.5 80.0 ug/m3 is above PM10 60.0 ug/m3 in the same hour (PM2.5 is part of PM10)"
    )
    assert by_key[at(24), "pm25"]["value"] == 300.0


def test_hours_at_the_range_start_are_judged_with_the_hours_before_it(admin, stored):
    # the stuck run began at hour 25 and the spike's median needs hours 0-23: both lie
    # before the range and still count
    body = flags_of(admin, **{"from": at(24), "to": at(31), "parameter": "pm25"})
    assert codes_by_hour(body) == {(24, "pm25"): ["spike"]} | {
        (h, "pm25"): ["stuck"] for h in range(25, 31)
    }
    assert body["items"][-1]["flags"][0]["message"] == STUCK_MESSAGE


def test_asking_for_pm10_alone_still_compares_it_with_pm25(admin, stored):
    body = flags_of(admin, **{"from": at(0), "to": at(HOURS), "parameter": "PM10"})
    assert codes_by_hour(body) == {(39, "pm10"): ["pm25_above_pm10"]}


def test_local_days_are_the_stations_days_end_included(admin, stored):
    # 2026-03-02 in Beijing is UTC hours 16-39
    body = flags_of(admin, **{"from": "2026-03-02", "to": "2026-03-02", "parameter": "co"})
    assert (body["start"], body["end"]) == (at(16), at(40))
    assert codes_by_hour(body) == {(30, "co"): ["out_of_range", "spike"]}


def test_thresholds_come_from_the_settings(admin, api_settings, stored):
    api_settings.quality_stuck_hours = 15
    api_settings.quality_zero_run_hours = 7
    body = flags_of(admin, **{"from": at(0), "to": at(HOURS)})
    found = {code for codes in codes_by_hour(body).values() for code in codes}
    assert found == {"spike", "pm25_above_pm10", "out_of_range"}


def test_readings_inherit_the_flags_of_their_hour(admin, stored):
    params = {"parameter": "pm25", "start": at(23), "end": at(26)}
    response = admin.get(f"/v1/stations/{STATION}/readings", params=params)
    assert response.status_code == 200, response.text
    got = [(item["ts"], item["value"], item["quality_flags"]) for item in response.json()["items"]]
    assert [(ts, value) for ts, value, _ in got] == [
        (at(23), 23.0),
        (at(24), 300.0),
        ((T0 + 24 * HOUR + timedelta(minutes=30)).isoformat(), 300.0),
        (at(25), 35.0),
    ]
    assert got[0][2] == []
    assert [f["code"] for f in got[1][2]] == ["spike"] and got[1][2] == got[2][2]
    assert got[1][2][0]["message"].startswith("300.0 ug/m3 is 13.64 times the median 22.0")
    # the page ends at hour 25, yet the run is judged with the 11 hours after it (and says
    # it may go on beyond them)
    assert got[3][2] == [
        {
            "code": "stuck",
            "message": "the same value 35.0 ug/m3 for at least 12 consecutive hours (threshold 12)",
        }
    ]
    # the reviewer's flag is untouched
    assert {item["flag"] for item in response.json()["items"]} == {"valid"}


def test_readings_csv_carries_the_flag_codes(admin, stored):
    params = {"format": "csv", "start": at(30), "end": at(31)}
    response = admin.get(f"/v1/stations/{STATION}/readings", params=params)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][-1] == "quality_flags" and len(rows[0]) == 8
    assert {row[1]: row[-1] for row in rows[1:]} == {
        "co": "out_of_range;spike",
        "no2": "",
        "pm10": "",
        "pm25": "stuck",
    }


def test_hourly_values_carry_flags_daily_values_do_not(admin, stored):
    path = f"/v1/stations/{STATION}/aggregates"
    hourly = admin.get(
        path, params={"parameter": "pm25", "period": "hourly", "start": at(37), "end": at(41)}
    ).json()
    assert [
        (i["period_start"], [f["code"] for f in i["quality_flags"]]) for i in hourly["items"]
    ] == [
        (at(37), ["stuck"]),
        (at(38), ["stuck"]),
        (at(39), ["pm25_above_pm10"]),
        (at(40), []),
    ]
    assert hourly["items"][0]["quality_flags"][0]["message"] == STUCK_MESSAGE
    daily = admin.get(
        path,
        params={"parameter": "pm25", "period": "daily", "start": "2026-03-02", "end": "2026-03-02"},
    ).json()
    assert [item["quality_flags"] for item in daily["items"]] == [None]
    city = admin.get(
        "/v1/cities/110000/aggregates",
        params={"parameter": "pm25", "period": "hourly", "start": at(24), "end": at(25)},
    ).json()
    assert [item["quality_flags"] for item in city["items"]] == [None]


def test_flags_change_no_hourly_daily_or_annual_figure(admin, stored):
    path = f"/v1/stations/{STATION}/aggregates"

    def mean_of(period: str, start: str, end: str) -> float:
        params = {"parameter": "pm25", "period": period, "start": start, "end": end}
        [item] = admin.get(path, params=params).json()["items"]
        return float(item["mean"])

    # the flagged hours stay in every figure: the spike, the stuck run, PM2.5 above PM10
    assert mean_of("hourly", at(24), at(25)) == 300.0
    day = [pm25_of(h) for h in range(16, 40)]  # 2026-03-02 in Beijing: 24 valid hours
    assert mean_of("daily", "2026-03-02", "2026-03-02") == pytest.approx(statistics.fmean(day))
    assert mean_of("annual", "2026-01-01", "2026-12-31") == pytest.approx(statistics.fmean(day))
    pm10_day = [pm10_of(h) for h in range(16, 40)]
    params = {"parameter": "pm10", "period": "daily", "start": "2026-03-02", "end": "2026-03-02"}
    [pm10] = admin.get(path, params=params).json()["items"]
    assert pm10["mean"] == pytest.approx(statistics.fmean(pm10_day))


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, 422, "query.to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, 422, "query.to"),
        ({"from": "2026-03-02", "to": "2026-03-01T00:00:00Z"}, 422, "query.to"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, 422, "query.to"),
        ({"from": "2026-03-01T00:00:00", "to": "2026-03-02T00:00:00Z"}, 422, "query.from"),
        ({"to": "2026-03-02"}, 422, "query.from"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, 422, "query.from"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, 422, "query.from"),
        ({"from": "0001-01-01T00:00:00+08:00", "to": "0001-01-01T01:00:00Z"}, 422, "query.from"),
        ({"from": "2026-03-01", "to": "2026-03-02", "parameter": "pm3"}, 422, "query.parameter"),
    ],
)
def test_bad_input_is_a_problem_never_a_server_error(admin, params, status, field):
    response = admin.get(FLAGS, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [p["name"] for p in response.json()["invalid_params"]] == [field]


def test_a_year_is_allowed_and_unknown_station_is_404(admin):
    year = admin.get(FLAGS, params={"from": "2025-01-01", "to": "2025-12-31"})
    assert year.status_code == 200 and year.json()["items"] == []
    missing = admin.get(
        "/v1/stations/nope/flags", params={"from": "2026-03-01", "to": "2026-03-01"}
    )
    assert missing.status_code == 404
    assert missing.json()["type"] == "/problems/station-not-found"


def test_flags_need_a_key_with_read_scope(api, make_key):
    params = {"from": "2026-03-01", "to": "2026-03-01"}
    assert api.get(FLAGS, params=params).status_code == 401
    ingest_only = {"Authorization": f"Bearer {make_key('ingest')}"}
    assert api.get(FLAGS, params=params, headers=ingest_only).status_code == 403
    reader = {"Authorization": f"Bearer {make_key('read')}"}
    assert api.get(FLAGS, params=params, headers=reader).status_code == 200
