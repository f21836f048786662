"""Compliance reports against values computed independently with pandas."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
import pytest

from core import PROJECT_ROOT
from reports import air_report, air_trend_point, water_report
from schemas.stations import Station
from standards.limits import round_half_even
from storage.stations import upsert_stations
from storage.writer import prepare_connection, write_batch
from tests.support import count, settle, wait_for, wait_until_consuming

BEIJING_TZ = ZoneInfo("Asia/Shanghai")
RECEIVED = datetime(2026, 11, 28, tzinfo=UTC)
CITY_STATIONS = {
    "110000": ["110000-A001", "110000-A002"],
    "440100": ["440100-A001", "440100-A002"],
}
GUANGZHOU = [
    Station(
        station_id=s, name=s, kind="air", city="Guangzhou", city_code="440100", province="Guangdong"
    )
    for s in CITY_STATIONS["440100"]
]


def simulated_year(year: int, seed: int) -> pd.DataFrame:
    """Hourly PM2.5 for the four stations with random gaps; one station loses most of March."""
    rng = random.Random(seed)
    rows = []
    start = datetime(year, 1, 1, tzinfo=BEIJING_TZ)
    hours = (datetime(year + 1, 1, 1, tzinfo=BEIJING_TZ) - start) // timedelta(hours=1)
    for city_index, stations in enumerate(CITY_STATIONS.values()):
        for station_id in stations:
            dead_days = set(rng.sample(range(365), 12))
            for hour in range(hours):
                ts = start + timedelta(hours=hour)
                if station_id == "110000-A002" and ts.month == 3 and ts.day <= 7:
                    continue  # March: 24 valid days at most → station year invalid
                if ts.timetuple().tm_yday - 1 in dead_days and ts.hour < 6:
                    continue  # 18 hours that day → invalid daily mean
                if rng.random() < 0.03:
                    continue
                seasonal = 25 * np.cos(2 * np.pi * (ts.timetuple().tm_yday - 15) / 365)
                value = max(1.0, 30 + 8 * city_index + seasonal + rng.gauss(0, 12))
                rows.append((station_id, ts, round(value, 1)))
    return pd.DataFrame(rows, columns=["station_id", "ts", "value"])


def expected_annual(frame: pd.DataFrame, daily_limit: float) -> dict[str, dict[str, float]]:
    """HJ 663 in pandas: hourly → valid daily (≥ 20 h) → station / city / national."""
    frame = frame.assign(day=frame["ts"].map(lambda t: t.astimezone(BEIJING_TZ).date()))
    daily = frame.groupby(["station_id", "day"])["value"].agg(["mean", "count"]).reset_index()
    daily = daily[daily["count"] >= 20]
    result: dict[str, dict[str, float]] = {}
    for station_id, group in daily.groupby("station_id"):
        result[station_id] = {
            "mean": group["mean"].mean(),
            "days": len(group),
            "p95": float(np.percentile(group["mean"], 95)),
            "over": int((group["mean"] > daily_limit).sum()),
        }
    city_of = {s: c for c, stations in CITY_STATIONS.items() for s in stations}
    daily["city"] = daily["station_id"].map(city_of)
    city_daily = daily.groupby(["city", "day"])["mean"].mean().reset_index()
    for city, group in city_daily.groupby("city"):
        result[city] = {
            "mean": group["mean"].mean(),
            "days": len(group),
            "p95": float(np.percentile(group["mean"], 95)),
            "over": int((group["mean"] > daily_limit).sum()),
        }
    result["national"] = {"mean": float(np.mean([result[c]["mean"] for c in CITY_STATIONS]))}
    return result


def test_year_published_over_mqtt_gives_hj663_annual_means(make_worker, publisher, database_url):
    with psycopg.connect(database_url) as conn:
        upsert_stations(conn, GUANGZHOU)
    frame = simulated_year(2025, seed=7)
    make_worker().start()
    wait_until_consuming(database_url, publisher)
    messages = []
    for (station_id, _day), group in frame.groupby(
        [frame["station_id"], frame["ts"].map(lambda t: t.date())]
    ):
        messages.append(
            (
                station_id,
                {
                    "readings": [
                        {
                            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S"),
                            "pm25": value,
                        }  # naive: Beijing time
                        for ts, value in zip(group["ts"], group["value"], strict=True)
                    ]
                },
            )
        )
    publisher.publish_all(messages)
    wait_for(
        lambda: count(database_url, "SELECT count(*) FROM readings") == len(frame),
        timeout=120,
        what=f"{len(frame)} readings",
    )
    settle(database_url)  # the worker stored the readings; the stage makes their years

    expected = expected_annual(frame, daily_limit=75)
    with psycopg.connect(database_url) as conn:
        report = air_report(conn, 2025)
    assert report.standard == "GB 3095-2012"
    assert report.annual_limit == 35
    by_id = {row.id: row for row in [*report.stations, *report.cities]}
    for key in ["110000-A001", "110000-A002", "440100-A001", "440100-A002", "110000", "440100"]:
        row = by_id[key]
        assert row.annual_mean == pytest.approx(expected[key]["mean"], abs=1e-3), key
        assert row.valid_days == expected[key]["days"], key
        assert row.percentile == pytest.approx(expected[key]["p95"], abs=1e-3), key
        assert row.days_over_24h_limit == expected[key]["over"], key
        # judged as published (whole µg/m³), and not at all without valid coverage
        judged = round_half_even(expected[key]["mean"], 0) <= 35
        assert row.meets_grade_ii == (judged if row.coverage.valid else None), key
    assert not by_id["110000-A002"].coverage.valid
    assert any("March" in reason for reason in by_id["110000-A002"].coverage.reasons)
    assert by_id["110000"].coverage.valid and by_id["440100"].coverage.valid
    assert report.national.annual_mean == pytest.approx(expected["national"]["mean"], abs=1e-3)
    assert report.national.gap_to_2027_target == pytest.approx(
        expected["national"]["mean"] - 28, abs=1e-3
    )
    assert report.cities_assessed == 2


def write_daily_values(
    conn: psycopg.Connection,
    station_id: str,
    days: list[date],
    value: float,
    parameter: str = "pm25",
) -> None:
    """24 hourly readings of ``value`` on each Beijing day."""
    rows = [
        (
            station_id,
            parameter,
            datetime(d.year, d.month, d.day, tzinfo=BEIJING_TZ) + timedelta(hours=h),
            value,
            RECEIVED,
        )
        for d in days
        for h in range(24)
    ]
    for i in range(0, len(rows), 20000):
        write_batch(conn, rows[i : i + 20000])


def days_of(year: int) -> list[date]:
    return [
        date(year, 1, 1) + timedelta(days=i)
        for i in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)
    ]


def test_2026_uses_the_limits_in_force_on_each_day_and_the_transitional_annual_limit(database_url):
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_daily_values(conn, "110000-A001", days_of(2026), 70.0)
        settle(database_url)
        report = air_report(conn, 2026)
    station = next(s for s in report.stations if s.id == "110000-A001")
    # 2026-01-01..02-28 (59 days) judged by 75 (2012); 03-01..12-31 (306 days) by 60 (2026)
    assert station.days_over_24h_limit == 306
    assert report.daily_limit_standards == ["GB 3095-2012", "GB 3095-2026 (transitional)"]
    assert report.standard == "GB 3095-2026 (transitional)"
    assert report.annual_limit == 30
    assert station.meets_grade_ii is False


@pytest.mark.parametrize(("valid_days", "valid"), [(324, True), (323, False)])
def test_annual_mean_needs_324_valid_days(database_url, valid_days, valid):
    year_days = days_of(2025)
    # drop days but never below 27 in a month (25 in February): the day count alone decides
    droppable = [d for d in year_days if d.day > (25 if d.month == 2 else 27)]
    kept = sorted(set(year_days) - set(droppable[: 365 - valid_days]))
    assert len(kept) == valid_days
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_daily_values(conn, "110000-A001", kept, 35.0)
        settle(database_url)
        report = air_report(conn, 2025)
    station = next(s for s in report.stations if s.id == "110000-A001")
    assert station.valid_days == valid_days
    assert station.coverage.valid is valid
    # 35 is within the 2012 limit of 35; a year failing coverage is not assessed
    assert station.meets_grade_ii is (True if valid else None)


def test_annual_mean_is_judged_as_published_so_35_4_meets_35_and_35_6_does_not(database_url):
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_daily_values(conn, "110000-A001", days_of(2025), 35.4)
        write_daily_values(conn, "110000-A002", days_of(2025), 35.6)
        settle(database_url)
        report = air_report(conn, 2025)
    by_id = {s.id: s for s in report.stations}
    assert by_id["110000-A001"].meets_grade_ii is True  # published 35
    assert by_id["110000-A002"].meets_grade_ii is False  # published 36
    beijing = next(c for c in report.cities if c.id == "110000")
    assert beijing.annual_mean == pytest.approx(35.5)
    assert beijing.meets_grade_ii is False  # 35.5 is published 36 (half to even)


def test_trend_reports_each_year_by_its_own_standard(database_url):
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_daily_values(conn, "110000-A001", days_of(2025), 32.0)
        write_daily_values(conn, "110000-A001", days_of(2026), 29.0)
        settle(database_url)
        trend = [air_trend_point(air_report(conn, year)) for year in (2025, 2026)]
    assert [(p.year, p.national_annual_mean, p.annual_limit, p.standard) for p in trend] == [
        (2025, 32.0, 35, "GB 3095-2012"),
        (2026, 29.0, 30, "GB 3095-2026 (transitional)"),
    ]
    assert [p.share_cities_meeting_grade_ii for p in trend] == [100.0, 100.0]


WATER_SECTIONS = [
    Station(
        station_id=f"W-HUAI-{i}",
        name=f"Huai {i}",
        kind="surface_water",
        waterbody="river",
        basin="Huai",
    )
    for i in range(1, 6)
] + [
    Station(
        station_id="W-CHAO-1",
        name="Chaohu centre",
        kind="surface_water",
        waterbody="lake",
        basin="Chaohu",
    ),
    Station(
        station_id="W-CLASS-ONLY",
        name="Reports a class",
        kind="surface_water",
        waterbody="river",
        basin="Chaohu",
    ),
]


def test_water_report_classes_shares_and_basins(database_url):
    monthly = [date(2025, m, 10) for m in range(1, 13)]
    with psycopg.connect(database_url) as conn:
        upsert_stations(conn, WATER_SECTIONS)
        prepare_connection(conn)
        # Huai 1-4: Class II water (NH3-N 0.4); Huai 5: NH3-N 1.8 → Class V
        for i in range(1, 5):
            write_daily_values(conn, f"W-HUAI-{i}", monthly, 0.4, "nh3_n")
            write_daily_values(conn, f"W-HUAI-{i}", monthly, 8.0, "do")  # Class I
        write_daily_values(conn, "W-HUAI-5", monthly[:6], 1.6, "nh3_n")
        write_daily_values(conn, "W-HUAI-5", monthly[6:], 2.0, "nh3_n")  # annual mean 1.8
        # lake: TP 0.04 is Class III for lakes (0.025 < 0.04 <= 0.05)
        write_daily_values(conn, "W-CHAO-1", monthly, 0.04, "tp")
        # class-only section: months IV, IV, III, II, II, III, III, IV, V, III, III, II
        for d, cls in zip(monthly, [4, 4, 3, 2, 2, 3, 3, 4, 5, 3, 3, 2], strict=True):
            write_daily_values(conn, "W-CLASS-ONLY", [d], float(cls), "water_class")
        settle(database_url)
        report = water_report(conn, 2025)
    by_id = {s.station_id: s for s in report.sections if s.station_id.startswith("W-")}
    assert by_id["W-HUAI-1"].water_class == 2
    assert by_id["W-HUAI-1"].deciding_parameters == ["nh3_n"]
    assert by_id["W-HUAI-5"].water_class == 5 and by_id["W-HUAI-5"].class_name == "V"
    assert by_id["W-CHAO-1"].water_class == 3
    # sorted: 2,2,2,3,3,3,3,3,4,4,4,5 → median between 3 and 3 → III
    assert by_id["W-CLASS-ONLY"].water_class == 3
    assert by_id["W-CLASS-ONLY"].method == "reported_class"
    assert by_id["W-HUAI-1"].months_with_data == 12
    assessed = [s for s in report.sections if s.water_class is not None]
    assert report.sections_assessed == len(assessed) == 7
    assert report.distribution == {"I": 0, "II": 4, "III": 2, "IV": 0, "V": 1, "worse than V": 0}
    assert report.excellent_share == pytest.approx(100 * 6 / 7, abs=0.01)
    assert report.meets_target is False
    basins = {b.basin: b for b in report.basins}
    assert basins["Huai"].method == "share" and basins["Huai"].excellent_share == 80.0
    assert basins["Huai"].grade == "good"
    assert basins["Chaohu"].method == "averaged_items"


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIRWATER_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "airwater.cli", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_reports_as_table_csv_and_json(database_url):
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_daily_values(conn, "110000-A001", days_of(2025), 32.0)
        write_daily_values(conn, "110000-A001", days_of(2026), 29.0)
        write_daily_values(conn, "W-YANGTZE-01", [date(2025, 6, 1)], 0.4, "nh3_n")
    settle(database_url)
    table = run_cli(database_url, "report", "air", "--year", "2025")
    assert table.returncode == 0, table.stderr
    assert "not yet reflected" not in table.stderr  # settled: nothing pending
    assert "GB 3095-2012" in table.stdout and "32.0" in table.stdout
    rows = list(
        csv.DictReader(
            io.StringIO(
                run_cli(
                    database_url,
                    "report",
                    "air",
                    "--year",
                    "2025",
                    "--level",
                    "all",
                    "--format",
                    "csv",
                ).stdout
            )
        )
    )
    station = next(r for r in rows if r["id"] == "110000-A001")
    assert (station["annual_mean"], station["valid_days"], station["coverage_valid"]) == (
        "32.0",
        "365",
        "True",
    )
    trend = json.loads(
        run_cli(
            database_url, "report", "air", "--year", "2025", "--to", "2026", "--format", "json"
        ).stdout
    )
    assert [p["national_annual_mean"] for p in trend["trend"]] == [32.0, 29.0]
    water = json.loads(
        run_cli(database_url, "report", "water", "--year", "2025", "--format", "json").stdout
    )
    section = next(s for s in water["reports"][0]["sections"] if s["station_id"] == "W-YANGTZE-01")
    assert section["class_name"] == "II"
    bad = run_cli(database_url, "report", "air", "--year", "twenty")
    assert bad.returncode == 2 and "--year" in bad.stderr
