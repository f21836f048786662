"""Data review on the real services: invalidate and restore hours, sand-dust events, the audit
log, refusals, scopes, the command line, and a review while three ingest workers write."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from airwater.cli import main as airwater
from storage.writer import prepare_connection, write_batch
from tests.support import (
    assert_rollups_match_readings,
    count,
    settle,
    wait_for,
    wait_until_consuming,
)

BEIJING = ZoneInfo("Asia/Shanghai")
STATION = "110000-A001"
OTHER = "110000-A002"
RECEIVED = datetime(2026, 11, 1, tzinfo=UTC)
DAY = date(2026, 4, 10)


def hourly(station_id: str, parameter: str, day: date, values: list[float]) -> list[tuple]:
    start = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    return [
        (station_id, parameter, start + timedelta(hours=h), v, RECEIVED)
        for h, v in enumerate(values)
    ]


@pytest.fixture()
def april(database_url: str) -> str:
    """Two Beijing stations, 10 days of PM2.5 and PM10 from 5 April: hour h is worth 10 + h
    (PM10: twice that) at A001 and 40 at A002."""
    rows = []
    for offset in range(10):
        day = date(2026, 4, 5) + timedelta(days=offset)
        rows += hourly(STATION, "pm25", day, [10.0 + h for h in range(24)])
        rows += hourly(STATION, "pm10", day, [20.0 + 2 * h for h in range(24)])
        rows += hourly(OTHER, "pm25", day, [40.0] * 24)
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(conn, rows)
    settle(database_url)
    return database_url


@pytest.fixture()
def reviewer(api, make_key):
    api.headers["Authorization"] = f"Bearer {make_key('read', 'review')}"
    return api


def levels(database_url: str) -> dict[str, list[tuple]]:
    """Every derived level's rows, to compare states."""
    with psycopg.connect(database_url) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
            for table in ("readings_daily", "city_daily", "station_yearly", "city_yearly")
        }


def daily(database_url: str, station_id: str, parameter: str, day: date) -> tuple:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT mean, valid_hours, valid, reviewed_hours FROM readings_daily"
            " WHERE station_id = %s AND parameter = %s AND day = %s",
            (station_id, parameter, day),
        ).fetchone()
    assert row is not None
    return row


def review_body(**changes: Any) -> dict[str, Any]:
    body = {
        "parameters": ["pm25"],
        "from": "2026-04-10T08:00:00+08:00",
        "to": "2026-04-10T12:00:00+08:00",
        "reason": "calibration",
        "comment": "span check",
    }
    body.update(changes)
    return body


def test_invalidated_hours_leave_every_level_and_restore_brings_back_exactly(april, reviewer):
    before = levels(april)
    assert daily(april, STATION, "pm25", DAY) == (21.5, 24, True, 0)

    response = reviewer.post(f"/v1/stations/{STATION}/reviews", json=review_body())
    assert response.status_code == 201, response.text
    review = response.json()
    assert review["hours"] == 4 and review["active"] is True
    assert review["from"] == "2026-04-10T00:00:00Z" and review["to"] == "2026-04-10T04:00:00Z"
    settle(april)

    # hours 8..11 (values 18..21) are out: 20 valid hours left, mean of the others
    kept = [10.0 + h for h in range(24) if not 8 <= h < 12]
    assert daily(april, STATION, "pm25", DAY) == (sum(kept) / 20, 20, True, 4)
    assert daily(april, STATION, "pm10", DAY)[3] == 0  # another parameter: untouched
    assert_rollups_match_readings(april, settled=False)  # the independent recomputation
    with psycopg.connect(april) as conn:
        year = conn.execute(
            "SELECT reviewed_hours FROM station_yearly"
            " WHERE station_id = %s AND parameter = 'pm25' AND year = 2026",
            (STATION,),
        ).fetchone()
    assert year == (4,)
    hours = reviewer.get(
        f"/v1/stations/{STATION}/aggregates",
        params={
            "parameter": "pm25",
            "period": "hourly",
            "start": "2026-04-10T07:00:00+08:00",
            "end": "2026-04-10T13:00:00+08:00",
        },
    )
    assert hours.status_code == 200, hours.text
    validity = [item["coverage"]["valid"] for item in hours.json()["items"]]
    assert validity == [True, False, False, False, False, True]
    assert hours.json()["items"][1]["coverage"]["reasons"] == ["1 hour removed by review"]
    days = reviewer.get(
        f"/v1/stations/{STATION}/aggregates",
        params={"parameter": "pm25", "period": "daily", "start": "2026-04-10", "end": "2026-04-10"},
    ).json()["items"]
    assert days[0]["coverage"]["removed_by_review_hours"] == 4
    assert days[0]["coverage"]["reasons"] == ["4 hours removed by review"]

    readings = reviewer.get(
        f"/v1/stations/{STATION}/readings",
        params={
            "parameter": "pm25",
            "start": "2026-04-10T07:00:00+08:00",
            "end": "2026-04-10T13:00:00+08:00",
        },
    )
    assert readings.status_code == 200, readings.text
    flags = [(item["flag"], item["flag_reason"]) for item in readings.json()["items"]]
    reviewed = ("invalid", f"review {review['review_id']}: calibration")
    assert flags == [("valid", None), *[reviewed] * 4, ("valid", None)]

    restored = reviewer.post(f"/v1/reviews/{review['review_id']}/restore", json={"comment": "ok"})
    assert restored.status_code == 200, restored.text
    assert restored.json()["active"] is False
    settle(april)
    assert levels(april) == before


def test_a_day_left_with_fewer_than_20_hours_is_no_longer_valid(april, reviewer):
    body = review_body(to="2026-04-10T13:00:00+08:00", reason="instrument_fault")
    assert reviewer.post(f"/v1/stations/{STATION}/reviews", json=body).status_code == 201
    settle(april)
    _, valid_hours, valid, reviewed = daily(april, STATION, "pm25", DAY)
    assert (valid_hours, valid, reviewed) == (19, False, 5)
    with psycopg.connect(april) as conn:
        city = conn.execute(
            "SELECT mean, stations FROM city_daily"
            " WHERE city_code = '110000' AND parameter = 'pm25' AND day = %s",
            (DAY,),
        ).fetchone()
    assert city == (40.0, 1)  # only A002's valid day stands behind the city's value


def test_dust_event_excludes_pm_hours_from_the_excluded_statistics_only(april, reviewer):
    body = {
        "areas": ["110000"],
        "from": "2026-04-10T00:00:00+08:00",
        "to": "2026-04-12T00:00:00+08:00",
        "evidence": "CMA sand-dust bulletin No. 7",
    }
    response = reviewer.post("/v1/dust-events", json=body)
    assert response.status_code == 201, response.text
    event = response.json()
    assert event["city_codes"] == ["110000"]
    settle(april)
    assert_rollups_match_readings(april, settled=False)
    with psycopg.connect(april) as conn:
        yearly = dict(
            conn.execute(
                "SELECT parameter, valid_days FROM city_yearly"
                " WHERE city_code = '110000' AND year = 2026"
            ).fetchall()
        )
    assert yearly["pm25"] == 10 and yearly["pm10"] == 10  # as measured
    assert yearly["pm25_dust_excluded"] == 8 and yearly["pm10_dust_excluded"] == 8
    # withdrawn: the excluded statistics equal the measured ones again
    assert reviewer.post(f"/v1/dust-events/{event['event_id']}/withdraw").status_code == 200
    settle(april)
    assert_rollups_match_readings(april, settled=False)
    with psycopg.connect(april) as conn:
        pairs = conn.execute(
            "SELECT m.mean, x.mean, m.valid_days, x.valid_days FROM city_yearly m"
            " JOIN city_yearly x ON x.city_code = m.city_code AND x.year = m.year"
            " AND x.parameter = m.parameter || '_dust_excluded'"
            " WHERE m.parameter IN ('pm25', 'pm10')"
        ).fetchall()
    assert len(pairs) == 2 and all(m == x and dm == dx for m, x, dm, dx in pairs)


def test_province_code_stands_for_its_cities(april, reviewer):
    body = {
        "areas": ["110000"],
        "from": "2026-04-10T00:00:00+08:00",
        "to": "2026-04-10T06:00:00+08:00",
        "evidence": "bulletin",
    }
    # Beijing is a municipality: its code is the province's
    assert reviewer.post("/v1/dust-events", json=body).json()["city_codes"] == ["110000"]
    body["areas"] = ["650000"]  # Xinjiang → Urumqi (650100)
    assert reviewer.post("/v1/dust-events", json=body).json()["city_codes"] == ["650100"]


def test_audit_log_keeps_every_action_and_refuses_changes(april, api, make_key):
    api.headers["Authorization"] = f"Bearer {make_key('read', 'review')}"
    made = api.post(f"/v1/stations/{STATION}/reviews", json=review_body()).json()
    api.post(f"/v1/reviews/{made['review_id']}/restore", json={"comment": "false alarm"})
    event = api.post(
        "/v1/dust-events",
        json={
            "areas": ["110000"],
            "from": "2026-04-06T00:00:00+08:00",
            "to": "2026-04-07T00:00:00+08:00",
            "evidence": "bulletin",
        },
    ).json()
    api.post(f"/v1/dust-events/{event['event_id']}/withdraw")
    page = api.get("/v1/audit", params={"station_id": STATION}).json()
    actions = [(e["action"], e["actor"], e["hours"]) for e in page["items"]]
    assert actions == [
        ("invalidate", "test", 4),
        ("restore", "test", 4),
        ("dust_event", "test", None),
        ("dust_withdrawn", "test", None),
    ]
    assert page["items"][0]["reason"] == "calibration"
    assert page["items"][1]["comment"] == "false alarm"
    assert page["next_after"] is None
    with psycopg.connect(april) as conn:
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
    assert count(april, "SELECT count(*) FROM audit_log") == 4


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/v1/stations/110000-A001/reviews", review_body(from_="x"), 422, "from"),
        (
            "/v1/stations/110000-A001/reviews",
            review_body(**{"from": "2026-05-01T00:00:00+08:00", "to": "2026-05-02T00:00:00+08:00"}),
            422,
            "no readings",
        ),
        (
            "/v1/stations/110000-A001/reviews",
            review_body(**{"to": "2026-04-10T07:00:00+08:00"}),
            422,
            "reversed",
        ),
        (
            "/v1/stations/110000-A001/reviews",
            review_body(**{"from": "2099-01-01T00:00:00+08:00", "to": "2099-01-02T00:00:00+08:00"}),
            422,
            "future",
        ),
        ("/v1/stations/110000-A001/reviews", review_body(reason="whim"), 422, "reason"),
        (
            "/v1/stations/110000-A001/reviews",
            review_body(reason="other", comment=""),
            422,
            "comment",
        ),
        ("/v1/stations/110000-A001/reviews", review_body(parameters=["pm99"]), 422, "pm99"),
        ("/v1/stations/NOPE-1/reviews", review_body(), 404, "NOPE-1"),
        ("/v1/reviews/999999/restore", {}, 404, "never"),
        (
            "/v1/dust-events",
            {
                "areas": ["999900"],
                "from": "2026-04-10T00:00:00+08:00",
                "to": "2026-04-11T00:00:00+08:00",
                "evidence": "x",
            },
            404,
            "999900",
        ),
        (
            "/v1/dust-events",
            {
                "areas": ["110000"],
                "from": "2026-04-11T00:00:00+08:00",
                "to": "2026-04-10T00:00:00+08:00",
                "evidence": "x",
            },
            422,
            "reversed",
        ),
    ],
)
def test_bad_review_requests_are_problems_and_change_nothing(
    april, reviewer, path, body, status, words
):
    body = {("from" if k == "from_" else k): v for k, v in body.items()}
    response = reviewer.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert words.lower() in response.text.lower()
    for table in ("reviews", "dust_events", "audit_log"):
        assert count(april, f"SELECT count(*) FROM {table}") == 0
    assert count(april, "SELECT count(*) FROM aggregation_queue") == 0


def test_overlapping_review_and_second_restore_are_conflicts(april, reviewer):
    first = reviewer.post(f"/v1/stations/{STATION}/reviews", json=review_body()).json()
    overlapping = review_body(
        parameters=["pm25", "pm10"],
        **{"from": "2026-04-10T11:00:00+08:00", "to": "2026-04-10T15:00:00+08:00"},
    )
    response = reviewer.post(f"/v1/stations/{STATION}/reviews", json=overlapping)
    assert response.status_code == 409, response.text
    assert str(first["review_id"]) in response.json()["detail"]
    # adjacent, or another parameter: no overlap
    adjacent = review_body(
        **{"from": "2026-04-10T12:00:00+08:00", "to": "2026-04-10T14:00:00+08:00"}
    )
    assert reviewer.post(f"/v1/stations/{STATION}/reviews", json=adjacent).status_code == 201
    pm10 = review_body(parameters=["pm10"])
    assert reviewer.post(f"/v1/stations/{STATION}/reviews", json=pm10).status_code == 201
    path = f"/v1/reviews/{first['review_id']}/restore"
    assert reviewer.post(path).status_code == 200
    again = reviewer.post(path)
    assert again.status_code == 409 and "already restored" in again.text
    assert count(april, "SELECT count(*) FROM audit_log") == 4


@pytest.mark.parametrize(
    ("scopes", "status"), [(("read",), 403), (("ingest",), 403), (("admin",), 201)]
)
def test_only_review_or_admin_keys_may_review(april, api, make_key, scopes, status):
    api.headers["Authorization"] = f"Bearer {make_key(*scopes)}"
    response = api.post(f"/v1/stations/{STATION}/reviews", json=review_body())
    assert response.status_code == status, response.text
    assert count(april, "SELECT count(*) FROM reviews") == (1 if status == 201 else 0)


def test_reviews_are_listed_and_readable_with_a_read_key(april, reviewer, make_key):
    made = reviewer.post(f"/v1/stations/{STATION}/reviews", json=review_body()).json()
    reviewer.headers["Authorization"] = f"Bearer {make_key('read')}"
    listed = reviewer.get(f"/v1/stations/{STATION}/reviews").json()
    assert [r["review_id"] for r in listed] == [made["review_id"]]
    assert listed[0]["reason_text"].startswith("analyser being calibrated")
    assert reviewer.get(f"/v1/stations/{OTHER}/reviews", params={"active": True}).json() == []


def test_command_line_invalidates_restores_and_reads_the_audit(april, monkeypatch, capsys):
    monkeypatch.setenv("AIRWATER_DATABASE_URL", april)
    code = airwater(
        [
            "review",
            "--by",
            "duty officer",
            "invalidate",
            STATION,
            "-p",
            "pm25",
            "--from",
            "2026-04-10T08:00+08:00",
            "--to",
            "2026-04-10T10:30+08:00",
            "--reason",
            "maintenance",
        ]
    )
    assert code == 0
    out = capsys.readouterr()
    assert "3 hour(s)" in out.err
    settle(april)
    assert daily(april, STATION, "pm25", DAY)[3] == 3
    review_id = count(april, "SELECT max(review_id) FROM reviews")
    assert airwater(["review", "restore", str(review_id)]) == 0
    assert airwater(["review", "restore", str(review_id)]) == 2  # already restored
    assert "already restored" in capsys.readouterr().err
    assert airwater(["review", "audit", "--station", STATION]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and '"duty officer"' in lines[0] and '"restore"' in lines[1]


def test_review_while_three_workers_write_to_the_station(
    database_url, make_worker, broker, publisher, reviewer
):
    """Three ingest workers on the shared subscription store readings of the same station
    while a review of its hours is made: nothing is lost, and once the stage has run every
    level equals the recomputation with the reviewed hours out (including readings that
    arrived after the review)."""
    workers = [make_worker(f"test-ingest-{i}").start() for i in range(3)]
    wait_until_consuming(database_url, publisher)
    start = datetime(2026, 6, 1, tzinfo=BEIJING)
    messages = [
        (
            STATION,
            {
                "readings": [
                    {"ts": (start + timedelta(hours=h)).isoformat(), "pm25": 30 + h % 7}
                    for h in range(i * 24, i * 24 + 24)
                ]
            },
        )
        for i in range(20)
    ]
    # the first day is in before the review, the rest arrives while it is made
    publisher.publish_all(messages[:1])
    wait_for(
        lambda: (
            count(database_url, "SELECT count(*) FROM readings WHERE station_id = %s", (STATION,))
            == 24
        ),
        timeout=60,
    )
    sender = threading.Thread(target=publisher.publish_all, args=(messages[1:],))
    sender.start()
    response = reviewer.post(
        f"/v1/stations/{STATION}/reviews",
        json=review_body(
            reason="outlier",
            **{"from": "2026-06-01T06:00:00+08:00", "to": "2026-06-03T06:00:00+08:00"},
        ),
    )
    sender.join(timeout=120)
    assert response.status_code == 201, response.text
    wait_for(
        lambda: (
            count(database_url, "SELECT count(*) FROM readings WHERE station_id = %s", (STATION,))
            == 480
        ),
        timeout=120,
    )
    assert all(w.process is not None and w.process.poll() is None for w in workers)
    assert_rollups_match_readings(database_url)
    assert (
        count(
            database_url, "SELECT sum(reviewed_hours) FROM readings_daily WHERE parameter = 'pm25'"
        )
        == 48
    )


def test_reports_judge_pm_without_dust_hours_and_give_the_measured_figures_too(april, reviewer):
    from reports import air_assessment, air_report

    event = {
        "areas": ["110000"],
        "from": "2026-04-05T00:00:00+08:00",
        "to": "2026-04-07T00:00:00+08:00",
        "evidence": "bulletin",
    }
    assert reviewer.post("/v1/dust-events", json=event).status_code == 201
    assert reviewer.post(f"/v1/stations/{STATION}/reviews", json=review_body()).status_code == 201
    settle(april)
    with psycopg.connect(april) as conn:
        report = air_report(conn, 2026)
        assessment = air_assessment(conn, 2026, today=date(2026, 4, 30))
    assert report.sand_dust == "excluded"
    station = next(s for s in report.stations if s.id == STATION)
    # A001's days are all worth 21.5 as measured (the review took 4 hours of 10 April out)
    kept = [10.0 + h for h in range(24) if not 8 <= h < 12]
    measured_days = [21.5] * 9 + [sum(kept) / 20]
    assert station.annual_mean_measured == pytest.approx(sum(measured_days) / 10, abs=1e-3)
    assert station.annual_mean == pytest.approx(sum(measured_days[2:]) / 8, abs=1e-3)
    assert station.valid_days == 8
    assert station.coverage.removed_by_review_hours == 4
    assert "4 hours removed by review" in station.coverage.reasons
    city = next(c for c in report.cities if c.id == "110000")
    assert city.coverage.removed_by_review_hours == 4
    assert city.annual_mean_measured is not None and city.valid_days == 8
    beijing = next(c for c in assessment.cities if c.id == "110000").period
    by_key = {s.key: s for s in beijing.statistics}
    assert by_key["pm25_mean"].sand_dust == "excluded"
    assert by_key["pm25_mean_measured"].sand_dust == "measured"
    assert by_key["pm25_mean"].valid_days == 8 and by_key["pm25_mean_measured"].valid_days == 10
    assert by_key["pm25_mean_measured"].meets_grade_ii is None  # reported, not judged


def test_a_station_moving_out_of_a_dusty_city_takes_its_excluded_days_along(april, reviewer):
    event = {
        "areas": ["110000"],
        "from": "2026-04-06T10:00:00+08:00",
        "to": "2026-04-08T00:00:00+08:00",
        "evidence": "bulletin",
    }
    assert reviewer.post("/v1/dust-events", json=event).status_code == 201
    settle(april)
    with psycopg.connect(april) as conn:
        stored = conn.execute(
            "SELECT day, hours, valid FROM readings_daily"
            " WHERE station_id = %s AND parameter = 'pm25_dust_excluded' ORDER BY day",
            (STATION,),
        ).fetchall()
        # only the days the event touches are kept apart: 10 hours of the 6th, none of the 7th
        assert stored == [(date(2026, 4, 6), 10, False), (date(2026, 4, 7), 0, False)]
        conn.execute("UPDATE stations SET city_code = '310000' WHERE station_id = %s", (STATION,))
        conn.commit()
    assert_rollups_match_readings(april)  # settles: the whole station is recomputed
    with psycopg.connect(april) as conn:
        moved = conn.execute(
            "SELECT count(*) FROM readings_daily"
            " WHERE station_id = %s AND parameter = 'pm25_dust_excluded'",
            (STATION,),
        ).fetchone()
    assert moved == (0,)  # no event in its new city
