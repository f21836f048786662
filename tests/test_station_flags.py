"""Values their station flagged (HJ 212-2017 data flags other than N) are kept with the flag
and count toward no hour, day or statistic (real database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from storage.writer import prepare_connection, write_batch
from tests.support import assert_rollups_match_readings, settle

BEIJING = ZoneInfo("Asia/Shanghai")
STATION = "110000-A001"
RECEIVED = datetime(2026, 11, 1, tzinfo=UTC)
MAINTENANCE = ("invalid", "station:M")


def hours(first: int, last: int, value: float) -> list[tuple]:
    start = datetime(2026, 4, 10, tzinfo=BEIJING)
    return [
        (STATION, "pm25", start + timedelta(hours=h), value, RECEIVED) for h in range(first, last)
    ]


def test_flagged_values_are_kept_but_count_toward_no_figure(database_url, admin):
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(conn, hours(0, 19, 30.0))
        write_batch(conn, hours(19, 24, 500.0), flag=MAINTENANCE)
        # the logger sends the maintenance hours again as normal: the first value and flag stay
        again = write_batch(conn, hours(19, 24, 31.0))
    assert (again.inserted, again.duplicates) == (0, 5)
    settle(database_url)
    with psycopg.connect(database_url) as conn:
        day = conn.execute(
            "SELECT mean, valid_hours, hours, valid FROM readings_daily"
            " WHERE station_id = %s AND parameter = 'pm25' AND day = %s",
            (STATION, date(2026, 4, 10)),
        ).fetchone()
    assert day == (30.0, 19, 19, False)  # 19 valid hours: the flagged 500s are not among them
    assert_rollups_match_readings(database_url, settled=False)
    readings = admin.get(
        f"/v1/stations/{STATION}/readings",
        params={"parameter": "pm25", "start": "2026-04-10T19:00:00+08:00"},
    ).json()["items"]
    assert {(r["value"], r["flag"], r["flag_reason"]) for r in readings} == {
        (500.0, "invalid", "station:M")
    }
    hourly = admin.get(
        f"/v1/stations/{STATION}/aggregates",
        params={
            "parameter": "pm25",
            "period": "hourly",
            "start": "2026-04-10T17:00:00+08:00",
            "end": "2026-04-10T20:00:00+08:00",
        },
    ).json()["items"]
    assert [item["mean"] for item in hourly] == [30.0, 30.0]  # 19:00 and later: no valid value


def test_a_reviewer_overrules_the_station_flag_and_restores_it(database_url, api, make_key):
    api.headers["Authorization"] = f"Bearer {make_key('read', 'review')}"
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(conn, hours(0, 19, 30.0))
        write_batch(conn, hours(19, 24, 40.0), flag=MAINTENANCE)
    settle(database_url)
    body = {
        "parameters": ["pm25"],
        "from": "2026-04-10T00:00:00+08:00",
        "to": "2026-04-10T18:00:00+08:00",
        "action": "accept",
        "comment": "maintenance log: the analyser ran normally",
    }
    refused = api.post(f"/v1/stations/{STATION}/reviews", json=body)  # nothing flagged there
    assert refused.status_code == 422 and "flagged by the station" in refused.json()["detail"]
    body["to"] = "2026-04-11T00:00:00+08:00"
    accepted = api.post(f"/v1/stations/{STATION}/reviews", json=body)
    assert accepted.status_code == 201, accepted.text
    review = accepted.json()
    assert (review["action"], review["reason"], review["hours"]) == ("accept", "verified", 5)
    settle(database_url)
    with psycopg.connect(database_url) as conn:
        day = conn.execute(
            "SELECT mean, valid_hours, valid FROM readings_daily"
            " WHERE station_id = %s AND parameter = 'pm25' AND day = %s",
            (STATION, date(2026, 4, 10)),
        ).fetchone()
    assert day == ((19 * 30.0 + 5 * 40.0) / 24, 24, True)  # the flagged hours count now
    assert_rollups_match_readings(database_url, settled=False)
    readings = api.get(
        f"/v1/stations/{STATION}/readings",
        params={"parameter": "pm25", "start": "2026-04-10T19:00:00+08:00"},
    ).json()["items"]
    reason = f"review {review['review_id']}: verified (overrules station:M)"
    assert {(r["flag"], r["flag_reason"]) for r in readings} == {("valid", reason)}
    audit = api.get("/v1/audit", params={"station_id": STATION}).json()["items"]
    assert [e["action"] for e in audit] == ["accept"]

    assert api.post(f"/v1/reviews/{review['review_id']}/restore").status_code == 200
    settle(database_url)
    with psycopg.connect(database_url) as conn:
        valid_hours = conn.execute(
            "SELECT valid_hours FROM readings_daily"
            " WHERE station_id = %s AND parameter = 'pm25' AND day = %s",
            (STATION, date(2026, 4, 10)),
        ).fetchone()
    assert valid_hours == (19,)
