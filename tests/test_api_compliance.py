"""/v1/compliance/air and /water: the storage reports as JSON and CSV, real database."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

import psycopg
import pytest

from reports import (
    AIR_CSV_COLUMNS,
    WATER_CSV_COLUMNS,
    air_report,
    air_trend_point,
    water_report,
    water_trend_point,
)
from storage.writer import prepare_connection
from tests.support import settle
from tests.test_compliance import days_of, write_daily_values


@pytest.fixture()
def reader(api, make_key):
    api.headers["Authorization"] = f"Bearer {make_key('read')}"
    return api


@pytest.fixture()
def two_years(database_url):
    """Beijing's two stations through 2025 and 2026, a Yangtze section in 2025."""
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_daily_values(conn, "110000-A001", days_of(2025), 32.0)
        write_daily_values(conn, "110000-A002", days_of(2025)[:200], 36.0)
        write_daily_values(conn, "110000-A001", days_of(2026), 29.0)
        monthly = [date(2025, m, 10) for m in range(1, 13)]
        write_daily_values(conn, "W-YANGTZE-01", monthly, 0.4, "nh3_n")
        write_daily_values(conn, "W-TAIHU-01", monthly, 0.08, "tp")  # Class IV in a lake
    settle(database_url)
    return database_url


def as_of(report: dict[str, Any]) -> datetime:
    """The report's ``as_of``: a timestamp with its offset."""
    value = datetime.fromisoformat(report["as_of"])
    assert value.tzinfo is not None, report["as_of"]
    return value


def without_as_of(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reports without ``as_of`` (checked to be a timestamp): a report computed here and
    one of the API are taken at different instants, and differ in nothing else."""
    for report in reports:
        as_of(report)
    return [{k: v for k, v in report.items() if k != "as_of"} for report in reports]


def dumped(*reports: Any) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in reports]


def csv_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def test_air_json_equals_the_storage_report(reader, two_years):
    response = reader.get("/v1/compliance/air", params={"year": 2025})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    with psycopg.connect(two_years) as conn:
        expected = air_report(conn, 2025)
    body = response.json()
    assert without_as_of(body["reports"]) == without_as_of(dumped(expected))
    assert as_of(body["reports"][0]) <= expected.as_of  # the API's report came first
    assert body["trend"] == []
    station = next(s for s in body["reports"][0]["stations"] if s["id"] == "110000-A001")
    assert (station["annual_mean"], station["valid_days"], station["meets_grade_ii"]) == (
        32.0,
        365,
        True,
    )
    assert (
        body["reports"][0]["national"]["gap_to_2027_target"] == expected.national.gap_to_2027_target
    )


def test_as_of_is_before_a_reading_not_yet_reflected_and_moves_on_once_it_is(reader, two_years):
    """A reading committed but not yet through the aggregation stage is not in the report,
    whose as_of is then no later than the reading's write; after the stage it is in, and
    as_of has moved past the write."""
    year = {"year": 2025}
    before = reader.get("/v1/compliance/air", params=year).json()["reports"][0]
    station = next(s for s in before["stations"] if s["id"] == "110000-A002")
    assert (station["annual_mean"], station["valid_days"]) == (36.0, 200)
    new_day = days_of(2025)[200]  # the first day A002 has no readings of
    with psycopg.connect(two_years) as conn:
        prepare_connection(conn)
        write_daily_values(conn, "110000-A002", [new_day], 80.0)
        # committed: a new transaction sees it; its now() is after the write's commit
        row = conn.execute(
            "SELECT (SELECT count(*) FROM readings WHERE station_id = '110000-A002'),"
            " (SELECT min(queued_at) FROM aggregation_queue), now()"
        ).fetchone()
    assert row is not None
    stored, queued, committed = row
    assert stored == 201 * 24 and queued is not None

    pending = reader.get("/v1/compliance/air", params=year).json()["reports"][0]
    assert without_as_of([pending]) == without_as_of([before])  # not reflected
    assert as_of(before) <= as_of(pending) <= queued < committed

    settle(two_years)
    after = reader.get("/v1/compliance/air", params=year).json()["reports"][0]
    station = next(s for s in after["stations"] if s["id"] == "110000-A002")
    assert station["valid_days"] == 201
    assert station["annual_mean"] == pytest.approx((200 * 36.0 + 80.0) / 201, abs=1e-3)
    assert as_of(after) >= committed > as_of(pending)


def test_air_parameter_is_passed_on(reader, two_years):
    with psycopg.connect(two_years) as conn:
        prepare_connection(conn)
        write_daily_values(conn, "110000-A001", days_of(2025), 80.0, "pm10")
        settle(two_years)
        expected = air_report(conn, 2025, "pm10")
    body = reader.get("/v1/compliance/air", params={"year": 2025, "parameter": "pm10"}).json()
    assert without_as_of(body["reports"]) == without_as_of(dumped(expected))
    assert body["reports"][0]["parameter"] == "pm10"
    station = next(s for s in body["reports"][0]["stations"] if s["id"] == "110000-A001")
    assert (station["annual_mean"], station["valid_days"]) == (80.0, 365)


def test_air_year_range_gives_reports_and_trend(reader, two_years):
    body = reader.get("/v1/compliance/air", params={"year": 2025, "to": 2026}).json()
    with psycopg.connect(two_years) as conn:
        reports = [air_report(conn, y) for y in (2025, 2026)]
        trend = [air_trend_point(r) for r in reports]
    assert without_as_of(body["reports"]) == without_as_of(dumped(*reports))
    assert body["trend"] == [p.model_dump(mode="json") for p in trend]
    assert [(p["year"], p["annual_limit"]) for p in body["trend"]] == [(2025, 35), (2026, 30)]
    assert [p["national_annual_mean"] for p in body["trend"]] == [
        pytest.approx((200 * 34.0 + 165 * 32.0) / 365, abs=1e-3),
        29.0,
    ]


def test_air_csv_has_the_cli_columns_and_every_level(reader, two_years):
    response = reader.get(
        "/v1/compliance/air", params={"year": 2025, "level": "all"}, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="air-pm25-2025.csv"' in response.headers["content-disposition"]
    columns, rows = csv_rows(response.text)
    assert columns == list(AIR_CSV_COLUMNS)
    with psycopg.connect(two_years) as conn:
        report = air_report(conn, 2025)
    assert [(r["level"], r["id"]) for r in rows] == [("national", "national")] + [
        ("city", c.id) for c in report.cities
    ] + [("station", s.id) for s in report.stations]
    station = next(r for r in rows if r["id"] == "110000-A002")
    assert (
        station["annual_mean"],
        station["valid_days"],
        station["coverage_valid"],
        station["year"],
    ) == ("36.0", "200", "False", "2025")
    assert station["coverage_reasons"]
    # the same file whichever way CSV is asked for; ?format= wins over Accept
    for params, headers in [
        ({"format": "csv"}, {}),
        ({}, {"Accept": "application/json;q=0.5, text/csv"}),
        ({"format": "csv"}, {"Accept": "application/json"}),
    ]:
        again = reader.get(
            "/v1/compliance/air", params={"year": 2025, "level": "all", **params}, headers=headers
        )
        assert again.text == response.text


def test_air_csv_level_national_and_range(reader, two_years):
    response = reader.get(
        "/v1/compliance/air",
        params={"year": 2025, "to": 2026, "level": "national", "format": "csv"},
    )
    _, rows = csv_rows(response.text)
    with psycopg.connect(two_years) as conn:
        means = [air_report(conn, y).national.annual_mean for y in (2025, 2026)]
    assert means[0] == pytest.approx((200 * 34.0 + 165 * 32.0) / 365, abs=1e-3)
    assert [(r["year"], r["level"], r["annual_mean"]) for r in rows] == [
        ("2025", "national", str(means[0])),
        ("2026", "national", "29.0"),
    ]
    assert 'filename="air-pm25-2025-2026.csv"' in response.headers["content-disposition"]


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "*/*",
        "text/csv;q=0.1, */*",
        "application/json, text/csv;q=0.1",
        "text/csv;q=0.5, application/json;q=0.5",
        "application/xml",
        "text/*;q=0.2, application/*",
    ],
)
def test_json_unless_csv_is_preferred(reader, database_url, accept):
    response = reader.get("/v1/compliance/air", params={"year": 2025}, headers={"Accept": accept})
    assert response.headers["content-type"] == "application/json"
    assert response.json()["reports"][0]["year"] == 2025


def test_water_is_json_when_accept_prefers_json_to_csv(reader, database_url):
    response = reader.get(
        "/v1/compliance/water",
        params={"year": 2025},
        headers={"Accept": "application/json, text/csv;q=0.1"},
    )
    assert response.headers["content-type"] == "application/json"
    assert response.json()["reports"][0]["year"] == 2025


def test_water_json_equals_the_storage_report_and_range_has_a_trend(reader, two_years):
    with psycopg.connect(two_years) as conn:
        expected = water_report(conn, 2025)
        trend = [water_trend_point(water_report(conn, y)) for y in (2024, 2025)]
    single = reader.get("/v1/compliance/water", params={"year": 2025})
    assert single.status_code == 200, single.text
    assert set(single.json()) == {"reports", "trend"} and single.json()["trend"] == []
    assert without_as_of(single.json()["reports"]) == without_as_of(dumped(expected))
    sections = {s["station_id"]: s["water_class"] for s in single.json()["reports"][0]["sections"]}
    assert sections == {"W-YANGTZE-01": 2, "W-TAIHU-01": 4}
    ranged = reader.get("/v1/compliance/water", params={"year": 2024, "to": 2025}).json()
    assert [r["year"] for r in ranged["reports"]] == [2024, 2025]
    assert all(as_of(r) for r in ranged["reports"])
    assert ranged["trend"] == [p.model_dump(mode="json") for p in trend]
    assert ranged["trend"][1]["excellent_share"] == 50.0


def test_water_csv_one_line_per_section_and_year(reader, two_years):
    response = reader.get(
        "/v1/compliance/water", params={"year": 2024, "to": 2025}, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200
    columns, rows = csv_rows(response.text)
    assert columns == list(WATER_CSV_COLUMNS)
    by_key = {(r["year"], r["station_id"]): r for r in rows}
    assert len(rows) == 4
    assert by_key[("2025", "W-YANGTZE-01")]["class_name"] == "II"
    assert by_key[("2025", "W-YANGTZE-01")]["deciding_parameters"] == "nh3_n"
    assert by_key[("2024", "W-TAIHU-01")]["water_class"] == ""  # no data that year
    assert by_key[("2025", "W-TAIHU-01")]["method"] == "parameters"


def test_csv_of_an_empty_water_report_still_has_its_header(reader, database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM stations WHERE kind = 'surface_water'")
    response = reader.get("/v1/compliance/water", params={"year": 2025, "format": "csv"})
    assert response.text.strip() == ",".join(WATER_CSV_COLUMNS)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("air", {}, "query.year"),
        ("air", {"year": 1989}, "query.year"),
        ("air", {"year": 2101}, "query.year"),
        ("air", {"year": "twenty"}, "query.year"),
        ("air", {"year": 2025, "to": 2024}, "query.to"),
        ("air", {"year": 2000, "to": 2020}, "query.to"),  # 21 years
        ("air", {"year": 2025, "to": 2101}, "query.to"),
        ("air", {"year": 2025, "parameter": "o3"}, "query.parameter"),
        ("air", {"year": 2025, "level": "province"}, "query.level"),
        ("air", {"year": 2025, "format": "xml"}, "query.format"),
        ("water", {"year": 1900}, "query.year"),
        ("water", {"year": 2025, "to": 2020}, "query.to"),
        ("water", {"year": 2025, "to": 2045}, "query.to"),
    ],
)
def test_bad_years_and_options_are_422_problems_naming_the_field(
    reader, database_url, path, params, field
):
    response = reader.get(f"/v1/compliance/{path}", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    assert [p["name"] for p in problem["invalid_params"]] == [field]


def test_twenty_years_is_the_longest_range(reader, database_url):
    body = reader.get("/v1/compliance/water", params={"year": 2006, "to": 2025}).json()
    assert len(body["reports"]) == len(body["trend"]) == 20


@pytest.mark.parametrize("path", ["/v1/compliance/air?year=2025", "/v1/compliance/water?year=2025"])
def test_401_without_key_403_without_read_scope(api, make_key, database_url, path):
    assert api.get(path).status_code == 401
    assert api.get(path, headers={"Authorization": "Bearer aw_kbad_x"}).status_code == 401
    denied = api.get(path, headers={"Authorization": f"Bearer {make_key('ingest')}"})
    assert denied.status_code == 403
    assert denied.json()["type"] == "/problems/forbidden"
    assert api.get(path, headers={"Authorization": f"Bearer {make_key('read')}"}).status_code == 200
