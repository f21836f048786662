"""Published years on the real database: publish a finished year, late data and review actions
make revisions with the right difference, the figures as published stay readable, refusals,
the aggregation stage's periodic check and the command line."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from airwater.cli import main as airwater
from core.settings import Settings
from reports.publications import (
    check_revisions,
    difference,
    publish,
    published,
)
from reports.refusal import Refused
from reports.review import invalidate, record_dust_event, restore
from storage.stations import get_station, upsert_stations
from storage.writer import prepare_connection
from tests.support import count, settle, wait_for
from tests.test_compliance import days_of, write_daily_values

BEIJING = ZoneInfo("Asia/Shanghai")
LATE_DAY = date(2025, 12, 31)
# The late reading: A002's year goes from 364 days of 30 to a mean of (364·30 + 103)/365 = 30.2,
# Beijing's 31 December from 30 to (30 + 103)/2 = 66.5, its year (and the nation's) to 30.1.
LATE_VALUE = 103.0


def connect(database_url: str) -> psycopg.Connection:
    conn = psycopg.connect(database_url, autocommit=True)
    prepare_connection(conn)
    return conn


@pytest.fixture()
def year_2025(database_url: str) -> str:
    """Beijing's two stations with PM2.5 of 30 every day of 2025, but A002 lacks 31 December;
    settled and published as air 2025 by "publisher"."""
    with connect(database_url) as conn:
        write_daily_values(conn, "110000-A001", days_of(2025), 30.0)
        write_daily_values(conn, "110000-A002", days_of(2025)[:-1], 30.0)
    settle(database_url)
    with connect(database_url) as conn:
        publish(conn, "air", 2025, "publisher")
    return database_url


def by_path(changes: list[Any]) -> dict[str, tuple[Any, Any]]:
    return {c.path: (c.published, c.current) for c in changes}


def pm25_station(database_url: str, station_id: str, revision: int | None = None) -> Any:
    with connect(database_url) as conn:
        figures = published(conn, "air", 2025, revision)
    assert figures.air is not None
    return next(s for s in figures.air["pm25"].stations if s.id == station_id)


def test_difference_walks_objects_and_keys_lists_of_stations_by_id():
    before = {
        "national": {"annual_mean": 30.0, "cities": 1},
        "stations": [{"id": "A", "mean": 1.0}, {"id": "B", "mean": 2.0}],
        "standards": ["GB 3095-2012"],
    }
    after = {
        "national": {"annual_mean": 30.1, "cities": 1},
        "stations": [{"id": "B", "mean": 2.0}, {"id": "C", "mean": 3.0}],  # A gone, C new
        "standards": ["GB 3095-2012", "GB 3095-2026"],
    }
    assert difference(before, after) == [
        {"path": "national.annual_mean", "published": 30.0, "current": 30.1},
        {"path": "stations[A]", "published": {"id": "A", "mean": 1.0}, "current": None},
        {"path": "stations[C]", "published": None, "current": {"id": "C", "mean": 3.0}},
        {
            "path": "standards",
            "published": ["GB 3095-2012"],
            "current": ["GB 3095-2012", "GB 3095-2026"],
        },
    ]
    assert difference(after, after) == []
    assert difference({"v": True}, {"v": 1}) != []  # a judgement is not a count


def test_late_reading_makes_revision_2_with_exactly_the_changed_values(year_2025):
    with connect(year_2025) as conn:
        write_daily_values(conn, "110000-A002", [LATE_DAY], LATE_VALUE)
    settle(year_2025)
    with connect(year_2025) as conn:
        revised = check_revisions(conn)
    assert [(r.kind, r.year, r.revision, r.cause) for r in revised] == [
        ("air", 2025, 2, "revision")
    ]
    changes = by_path(revised[0].difference or [])
    station, city = "pm25.stations[110000-A002]", "pm25.cities[110000]"
    old_percent = pm25_station(year_2025, "110000-A002", 1).coverage.percent_complete
    assert changes == {
        "pm25.national.annual_mean": (30.0, 30.1),
        "pm25.national.annual_mean_measured": (30.0, 30.1),
        "pm25.national.gap_to_2027_target": (2.0, 2.1),
        "pm25.national.gap_to_2035_target": (5.0, 5.1),
        f"{city}.annual_mean": (30.0, 30.1),
        f"{city}.annual_mean_measured": (30.0, 30.1),
        f"{city}.gap_to_2027_target": (2.0, 2.1),
        f"{city}.gap_to_2035_target": (5.0, 5.1),
        f"{station}.annual_mean": (30.0, 30.2),
        f"{station}.annual_mean_measured": (30.0, 30.2),
        f"{station}.valid_days": (364, 365),
        f"{station}.days_over_24h_limit": (0, 1),  # 103 > 75 (GB 3095-2012, 24 h)
        f"{station}.gap_to_2027_target": (2.0, 2.2),
        f"{station}.gap_to_2035_target": (5.0, 5.2),
        f"{station}.coverage.observed": (364, 365),
        f"{station}.coverage.percent_complete": (old_percent, 100.0),
    }
    assert old_percent < 100.0
    # the audit log has the publication and the revision, with its difference
    with connect(year_2025) as conn:
        audit = conn.execute(
            "SELECT actor, action, detail FROM audit_log ORDER BY audit_id"
        ).fetchall()
    assert [(a[0], a[1]) for a in audit] == [("publisher", "publish"), ("system", "revision")]
    assert audit[0][2] == {"kind": "air", "year": 2025, "revision": 1}
    assert audit[1][2]["revision"] == 2 and audit[1][2]["changes"] == 16
    assert {c["path"] for c in audit[1][2]["difference"]} == set(changes)


def test_as_published_keeps_revision_1_while_current_shows_the_late_data(year_2025, admin):
    with connect(year_2025) as conn:
        write_daily_values(conn, "110000-A002", [LATE_DAY], LATE_VALUE)
    settle(year_2025)
    with connect(year_2025) as conn:
        check_revisions(conn)

    def a002(response: Any) -> float:
        report = response.json()["reports"][0]
        return next(s["annual_mean"] for s in report["stations"] if s["id"] == "110000-A002")

    first = admin.get("/v1/compliance/air?year=2025&version=published&revision=1")
    assert first.status_code == 200, first.text
    assert first.headers["X-Airwater-Revision"] == "1" and a002(first) == 30.0
    latest = admin.get("/v1/compliance/air?year=2025&version=published")
    assert latest.headers["X-Airwater-Revision"] == "2" and a002(latest) == 30.2
    current = admin.get("/v1/compliance/air?year=2025")
    assert "X-Airwater-Revision" not in current.headers and a002(current) == 30.2
    csv = admin.get("/v1/compliance/air?year=2025&version=published&revision=1&format=csv")
    assert csv.headers["X-Airwater-Revision"] == "1" and ",30.0," in csv.text

    revisions = admin.get("/v1/publications/air/2025").json()["revisions"]
    assert [(r["revision"], r["cause"], r["changes"]) for r in revisions] == [
        (1, "publish", 0),
        (2, "revision", 16),
    ]
    assert revisions[0]["difference"] is None
    figures = admin.get("/v1/publications/air/2025/revisions/1").json()
    national = figures["air"]["pm25"]["national"]
    assert figures["revision"] == 1 and national["annual_mean"] == 30.0
    listed = admin.get("/v1/publications").json()
    assert [(p["kind"], p["year"], p["latest_revision"]) for p in listed] == [("air", 2025, 2)]


def test_a_check_without_a_change_makes_no_revision(year_2025):
    with connect(year_2025) as conn:
        assert check_revisions(conn) == []
        # a registry change the report does not show changes the stamp, not the figures
        station = get_station(conn, "110000-A001")
        assert station is not None
        upsert_stations(conn, [station.model_copy(update={"latitude": 39.93})])
        assert check_revisions(conn) == []
        write_daily_values(conn, "110000-A001", [date(2025, 5, 1)], 99.0)  # first value wins
    settle(year_2025)
    with connect(year_2025) as conn:
        assert check_revisions(conn) == []
    assert count(year_2025, "SELECT count(*) FROM publications") == 1
    assert count(year_2025, "SELECT count(*) FROM audit_log WHERE action = 'revision'") == 0


def test_review_and_its_restore_each_make_a_revision(year_2025):
    start = datetime(2025, 6, 10, 0, tzinfo=BEIJING)
    with connect(year_2025) as conn:
        review = invalidate(
            conn, "110000-A002", ["pm25"], start, start.replace(hour=12), "outlier", "", "qa"
        )
    settle(year_2025)
    with connect(year_2025) as conn:
        [taken_out] = check_revisions(conn)
    changes = by_path(taken_out.difference or [])
    # 12 of 24 hours left: the day is no longer valid (HJ 663 needs 20)
    assert changes["pm25.stations[110000-A002].valid_days"] == (364, 363)
    assert taken_out.revision == 2
    with connect(year_2025) as conn:
        restore(conn, review.review_id, "qa")
    settle(year_2025)
    with connect(year_2025) as conn:
        [put_back] = check_revisions(conn)
        assert put_back.revision == 3
    changes = by_path(put_back.difference or [])
    assert changes["pm25.stations[110000-A002].valid_days"] == (363, 364)
    assert pm25_station(year_2025, "110000-A002", 1).valid_days == 364


def test_dust_event_revises_the_dust_excluded_figures_and_keeps_the_measured(year_2025):
    start = datetime(2025, 3, 1, tzinfo=BEIJING)
    with connect(year_2025) as conn:
        record_dust_event(conn, ["110000"], start, start.replace(day=4), "bulletin", "qa")
    settle(year_2025)
    with connect(year_2025) as conn:
        [revised] = check_revisions(conn)
    changes = by_path(revised.difference or [])
    # three days of PM hours leave the judged (dust-excluded) statistics, not the measured ones
    old_days, new_days = changes["pm25.stations[110000-A001].valid_days"]
    assert new_days < old_days == 365
    assert all(path.split(".")[0] in ("pm25", "pm10") for path in changes)
    assert not any(path.endswith("annual_mean_measured") for path in changes)
    assert pm25_station(year_2025, "110000-A001", 1).valid_days == 365


def test_water_year_is_revised_when_a_late_sample_changes_a_section_class(database_url):
    months = [date(2025, m, 10) for m in range(1, 13)]
    with connect(database_url) as conn:
        write_daily_values(conn, "W-YANGTZE-01", months[:11], 0.4, "nh3_n")  # Class II
    settle(database_url)
    with connect(database_url) as conn:
        first = publish(conn, "water", 2025, "publisher")
        write_daily_values(conn, "W-YANGTZE-01", months[11:], 13.6, "nh3_n")  # mean 1.6: V
    settle(database_url)
    with connect(database_url) as conn:
        [revised] = check_revisions(conn)
    changes = by_path(revised.difference or [])
    assert first.revision == 1 and revised.revision == 2 and revised.kind == "water"
    assert changes["sections[W-YANGTZE-01].water_class"] == (2, 5)
    assert changes["sections[W-YANGTZE-01].class_name"] == ("II", "V")
    assert changes["distribution.II"] == (1, 0) and changes["distribution.V"] == (0, 1)
    assert changes["sections[W-YANGTZE-01].months_with_data"] == (11, 12)


def test_publishing_is_refused_for_a_year_not_ended_published_or_unsettled(database_url):
    with connect(database_url) as conn:
        for year, words in ((2026, "in progress"), (2027, "has not begun")):
            with pytest.raises(Refused, match=words) as refused:
                publish(conn, "air", year, "x", today=date(2026, 12, 6))
            assert refused.value.kind == "invalid"
        write_daily_values(conn, "110000-A001", [date(2025, 1, 1)], 30.0)  # not yet settled
        with pytest.raises(Refused, match="aggregation stage") as queued:
            publish(conn, "air", 2025, "x")
        assert queued.value.kind == "conflict"
    settle(database_url)
    with connect(database_url) as conn:
        publish(conn, "air", 2025, "x")
        with pytest.raises(Refused, match="was published") as again:
            publish(conn, "air", 2025, "x")
        assert again.value.kind == "conflict"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE publications SET created_by = 'someone else'")
    assert count(database_url, "SELECT count(*) FROM publications") == 1


def test_bad_publication_requests_are_problems(year_2025, admin, make_key):
    cases = [
        ("post", "/v1/publications/noise/2024", 422, "unknown kind"),
        ("post", "/v1/publications/air/2026", 422, "in progress"),
        ("post", "/v1/publications/air/2027", 422, "has not begun"),
        ("post", "/v1/publications/air/2025", 409, "was published"),
        ("get", "/v1/publications/air/2025/revisions/2", 404, "no revision 2"),
        ("get", "/v1/publications/water/2025", 404, "not published"),
        ("get", "/v1/compliance/water?year=2025&version=published", 404, "not published"),
        ("get", "/v1/compliance/air?year=2025&revision=1", 422, "version=published"),
        ("get", "/v1/compliance/air?year=2024&to=2025&version=published&revision=1", 422, "one"),
    ]
    for method, path, status, words in cases:
        response = getattr(admin, method)(path)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert words in response.json()["detail"] or words in response.text, path
    admin.headers["Authorization"] = f"Bearer {make_key('read')}"
    assert admin.post("/v1/publications/water/2025").status_code == 403
    assert admin.get("/v1/publications").status_code == 200


def test_admin_publishes_through_the_api_with_an_audit_entry(database_url, admin):
    with connect(database_url) as conn:
        write_daily_values(conn, "110000-A001", days_of(2025), 30.0)
    settle(database_url)
    response = admin.post("/v1/publications/air/2025")
    assert response.status_code == 201, response.text
    assert response.json()["revision"] == 1 and response.json()["cause"] == "publish"
    assert count(database_url, "SELECT count(*) FROM audit_log WHERE action = 'publish'") == 1
    published_report = admin.get("/v1/compliance/air?year=2025&version=published&parameter=pm10")
    assert published_report.headers["X-Airwater-Revision"] == "1"
    assert published_report.json()["reports"][0]["parameter"] == "pm10"


def test_the_aggregation_stage_revises_published_years_on_its_own(year_2025):
    from ingest.aggregation import run

    stop = threading.Event()
    settings = Settings(database_url=year_2025, publication_check_s=0.2)
    stage = threading.Thread(target=run, args=(settings, stop, 0.05), daemon=True)
    stage.start()
    try:
        with connect(year_2025) as conn:
            write_daily_values(conn, "110000-A002", [LATE_DAY], LATE_VALUE)
        wait_for(
            lambda: count(year_2025, "SELECT count(*) FROM publications") == 2,
            timeout=60,
            what="revision 2 by the stage",
        )
    finally:
        stop.set()
        stage.join(timeout=30)
    assert pm25_station(year_2025, "110000-A002").annual_mean == 30.2


def test_command_line_publishes_checks_and_lists(database_url, monkeypatch, capsys):
    monkeypatch.setenv("AIRWATER_DATABASE_URL", database_url)
    with connect(database_url) as conn:
        write_daily_values(conn, "110000-A002", days_of(2025)[:-1], 30.0)
    settle(database_url)
    assert airwater(["publish", "air"]) == 2  # --year missing
    assert airwater(["publish", "--by", "editor", "air", "--year", "2025"]) == 0
    assert "air 2025 published (revision 1)" in capsys.readouterr().err
    assert airwater(["publish", "air", "--year", "2025"]) == 2
    assert "was published" in capsys.readouterr().err
    assert airwater(["publish", "check"]) == 0
    assert "no published figure changed" in capsys.readouterr().err
    with connect(database_url) as conn:
        write_daily_values(conn, "110000-A002", [LATE_DAY], LATE_VALUE)
    settle(database_url)
    assert airwater(["publish", "check"]) == 0
    assert "air 2025: revision 2" in capsys.readouterr().err
    assert airwater(["publish", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and '"revision": 2' in lines[0] and '"created_by": "editor"' in lines[0]


def test_command_line_reports_the_year_as_published(year_2025, monkeypatch, capsys):
    with connect(year_2025) as conn:
        write_daily_values(conn, "110000-A002", [LATE_DAY], LATE_VALUE)
    settle(year_2025)
    with connect(year_2025) as conn:
        check_revisions(conn)
    monkeypatch.setenv("AIRWATER_DATABASE_URL", year_2025)

    def a002(argv: list[str]) -> float:
        assert airwater(argv) == 0
        report = json.loads(capsys.readouterr().out)["reports"][0]
        return next(s["annual_mean"] for s in report["stations"] if s["id"] == "110000-A002")

    common = ["report", "air", "--year", "2025", "--format", "json", "--level", "all"]
    assert a002([*common, "--published", "--revision", "1"]) == 30.0
    assert a002([*common, "--published"]) == 30.2  # the latest revision
    assert a002(common) == 30.2  # current
    assert airwater(["report", "water", "--year", "2025", "--published"]) == 2
    assert "not published" in capsys.readouterr().err
