"""The six-pollutant assessment (reports.assessment) on the real database against an
independent recomputation in pandas from the hourly values written: the six statistics,
the published rounding, attainment, the comprehensive index and the ranking, good days, a year
so far that spans the 2026-03-01 change of standards beside its same period, a city missing a
pollutant, a city failing coverage, O3 days failing the 8-hour validity, and a leap day."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from pydantic import SecretStr

from api import create_app
from core.db import make_pool
from core.settings import Settings
from reports import ASSESSMENT_CSV_COLUMNS, air_assessment, status, today_in_china
from schemas.assessment import AirAssessment, AssessedArea
from schemas.stations import Station
from standards.aqi import daily_aqi
from storage.migrate import migrate
from storage.stations import upsert_stations
from storage.writer import prepare_connection, write_batch
from tests.conftest import ADMIN_KEY
from tests.support import settle
from tests.test_compliance import run_cli

BEIJING = ZoneInfo("Asia/Shanghai")
RECEIVED = datetime(2026, 4, 20, tzinfo=UTC)
TODAY = date(2026, 4, 10)  # the year so far spans the 2026-03-01 change of both standards
FIRST_DAY = date(2025, 1, 1)
POLLUTANTS = ("pm25", "pm10", "so2", "no2", "co", "o3")
# (city code, city, province, stations, scale of the pollution, pollutants measured)
CITIES = (
    ("110000", "Beijing", "Beijing", 2, 1.25, POLLUTANTS),
    ("130100", "Shijiazhuang", "Hebei", 2, 1.5, POLLUTANTS),
    ("130200", "Tangshan", "Hebei", 1, 1.1, POLLUTANTS),
    ("460100", "Haikou", "Hainan", 1, 0.45, POLLUTANTS),
    ("440100", "Guangzhou", "Guangdong", 1, 0.8, ("pm25", "pm10", "so2", "no2", "o3")),  # no CO
)
# a station whose February 2026 loses ten days: its city is not assessed in the year so far
OUTAGE_STATION = "130200-A01"
OUTAGE = (date(2026, 2, 5), date(2026, 2, 14))
BASE = {"pm25": 30.0, "pm10": 55.0, "so2": 8.0, "no2": 28.0, "co": 0.8, "o3": 70.0}
DATABASE = "airwater_assessment"
LEAP_DATABASE = "airwater_assessment_leap"
PERCENTILES = {"pm25": 95, "pm10": 95, "so2": 98, "no2": 98, "co": 95, "o3_8h": 90}


def _stations() -> list[Station]:
    return [
        Station(
            station_id=f"{code}-A{i:02d}",
            name=f"{city} {i}",
            kind="air",
            city=city,
            city_code=code,
            province=province,
        )
        for code, city, province, count, _, _ in CITIES
        for i in range(1, count + 1)
    ]


def _hourly_rows(first: date, last: date, seed: int) -> list[tuple]:
    """Hourly values of every station and pollutant from ``first`` to ``last`` (local days):
    seasonal and diurnal cycles, winter episodes, ~3 % of hours lost at random, and every
    fifteenth day O3 without its morning hours 02–09 (fewer than 14 valid 8-hour windows)."""
    rng = np.random.default_rng(seed)
    rows: list[tuple] = []
    start = datetime(first.year, first.month, first.day, tzinfo=BEIJING)
    hours = ((last - first).days + 1) * 24
    local = [start + timedelta(hours=h) for h in range(hours)]
    day_of_year = np.array([t.timetuple().tm_yday for t in local])
    hour = np.array([t.hour for t in local])
    ordinal = np.array([t.toordinal() for t in local])
    for code, _, _, count, scale, measured in CITIES:
        for i in range(1, count + 1):
            station_id = f"{code}-A{i:02d}"
            for parameter in measured:
                winter = np.cos(2 * np.pi * (day_of_year - 15) / 365)
                if parameter == "o3":
                    level = BASE["o3"] * (1 - 0.5 * winter) * (0.6 + 0.8 * (np.abs(hour - 15) < 5))
                else:
                    level = BASE[parameter] * scale * (1 + 0.5 * winter)
                    level = level * (1 + 2.5 * ((ordinal + i) % 29 < 2))  # episodes
                values = level * rng.lognormal(0, 0.25, hours)
                kept = rng.random(hours) > 0.03
                if parameter == "o3":
                    kept &= ~((ordinal % 15 == 0) & (hour >= 2) & (hour <= 9))
                if station_id == OUTAGE_STATION:
                    day = np.array([t.date() for t in local])
                    kept &= ~((day >= OUTAGE[0]) & (day <= OUTAGE[1]))
                digits = 2 if parameter == "co" else 1
                rows += [
                    (station_id, parameter, local[h], round(float(values[h]), digits), RECEIVED)
                    for h in np.flatnonzero(kept)
                ]
    return rows


def _database(postgres, name: str, rows: list[tuple]) -> str:
    ident = sql.Identifier(name)
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    url = postgres.url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url) as conn:
        migrate(conn)
        upsert_stations(conn, _stations())
        prepare_connection(conn)
        for i in range(0, len(rows), 20000):
            write_batch(conn, rows[i : i + 20000])
    settle(url)
    return url


def _drop(postgres, name: str) -> None:
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def written(postgres) -> Iterator[tuple[str, pd.DataFrame]]:
    rows = _hourly_rows(FIRST_DAY, TODAY, seed=15)
    url = _database(postgres, DATABASE, rows)
    yield url, _frame(rows)
    _drop(postgres, DATABASE)


# ---- the independent recomputation -------------------------------------------------------


def _frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["station", "parameter", "ts", "value", "received"])
    local = pd.to_datetime(frame["ts"], utc=True).dt.tz_convert(BEIJING)
    frame["day"] = local.dt.date
    frame["hour"] = local.dt.hour
    frame["city"] = frame["station"].str.slice(0, 6)
    return frame


def _station_days(frame: pd.DataFrame) -> pd.DataFrame:
    """Valid station-day values: daily means (≥ 20 hours) and the O3 daily max 8-hour
    (windows starting 00…16 with ≥ 6 hours; ≥ 14 windows, or a maximum above 160); for O3
    also its daily maximum hour (of a valid O3 day)."""
    means = frame.groupby(["station", "city", "parameter", "day"])["value"].agg(["mean", "size"])
    means = means[means["size"] >= 20].reset_index()
    o3_max = means[means["parameter"] == "o3"][["station", "city", "day"]].merge(
        frame[frame["parameter"] == "o3"].groupby(["station", "day"])["value"].max().reset_index()
    )
    o3_max = o3_max.assign(parameter="o3_1h", mean=o3_max["value"])
    o3 = frame[frame["parameter"] == "o3"]
    hours = o3.pivot_table(index=["station", "city", "day"], columns="hour", values="value")
    hourly = hours.reindex(columns=range(24)).to_numpy()
    windows = np.lib.stride_tricks.sliding_window_view(hourly, 8, axis=1)[:, :17, :]
    held = (~np.isnan(windows)).sum(axis=2)
    with np.errstate(invalid="ignore"):
        eights = np.where(held >= 6, np.nansum(windows, axis=2) / np.maximum(held, 1), np.nan)
    count = (held >= 6).sum(axis=1)
    top = np.max(np.where(np.isnan(eights), -np.inf, eights), axis=1)
    keep = (count > 0) & ((count >= 14) | (top > 160))
    eight = hours.index.to_frame(index=False)[keep].assign(parameter="o3_8h", mean=top[keep])
    return pd.concat(
        [means[["station", "city", "parameter", "day", "mean"]], eight, o3_max[eight.columns]]
    )


def _city_days(station_days: pd.DataFrame) -> pd.DataFrame:
    return station_days.groupby(["city", "parameter", "day"])["mean"].mean().reset_index()


def _half_even(value: float, decimals: int) -> float:
    quantum = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_EVEN))


def _statistics(city_days: pd.DataFrame, first: date, last: date) -> dict[tuple[str, str], float]:
    """(city, statistic key) → value over the days first … last."""
    found = {}
    period = city_days[(city_days["day"] >= first) & (city_days["day"] <= last)]
    for (city, parameter), group in period.groupby(["city", "parameter"]):
        if parameter in ("o3", "o3_1h"):
            continue
        if parameter != "o3_8h":
            found[(city, f"{parameter}_mean")] = group["mean"].mean()
        rank = PERCENTILES[parameter]
        found[(city, f"{parameter}_p{rank}")] = float(np.percentile(group["mean"], rank))
    return found


def _aqi_days(city_days: pd.DataFrame, first: date, last: date) -> dict[str, tuple[int, int, int]]:
    """city → (days with a daily AQI, good days, heavily polluted days)."""
    period = city_days[(city_days["day"] >= first) & (city_days["day"] <= last)]
    counts: dict[str, list[int]] = {}
    for (city, day), group in period.groupby(["city", "day"]):
        inputs = {p: m for p, m in zip(group["parameter"], group["mean"], strict=True)}
        inputs.pop("o3", None)
        result = daily_aqi(inputs, day)
        if result.aqi is None:
            continue
        found = counts.setdefault(city, [0, 0, 0])
        found[0] += 1
        found[1] += result.aqi <= 100
        found[2] += result.aqi > 200
    return {city: (a, b, c) for city, (a, b, c) in counts.items()}


def _area(report: AirAssessment, city_code: str) -> AssessedArea:
    return next(c for c in report.cities if c.id == city_code)


def _statistic(area: AssessedArea, key: str, same_period: bool = False):
    figures = area.same_period if same_period else area.period
    assert figures is not None
    return next(s for s in figures.statistics if s.key == key)


def _assert_cities_match(report: AirAssessment, frame: pd.DataFrame, same: bool) -> None:
    city_days = _city_days(_station_days(frame))
    first, last = (
        (report.same_period_start, report.same_period_end)
        if same
        else (report.period_start, report.period_end)
    )
    expected = _statistics(city_days, first, last)
    aqi_days = _aqi_days(city_days, first, last)
    for code, *_ in CITIES:
        area = _area(report, code)
        figures = area.same_period if same else area.period
        assert figures is not None
        for statistic in figures.statistics:
            # no sand-dust event here: the measured statistics equal the assessed ones
            want = expected.get((code, statistic.key.removesuffix("_measured")))
            if want is None:
                assert statistic.value is None, (code, statistic.key)
                continue
            assert statistic.value == pytest.approx(want, abs=1.5e-3), (code, statistic.key)
            decimals = 1 if statistic.pollutant == "co" else 0
            assert statistic.published == _half_even(want, decimals), (code, statistic.key)
            if statistic.limit is not None and statistic.coverage.valid:
                assert statistic.meets_grade_ii is (_half_even(want, decimals) <= statistic.limit)
        days, good, heavy = aqi_days.get(code, (0, 0, 0))
        assert figures.aqi_days is not None and figures.aqi_days.days == days, code
        assert (figures.aqi_days.good_days, figures.aqi_days.heavy_days) == (good, heavy), code
        assert figures.aqi_days.good_day_share == (
            _half_even(100 * good / days, 1) if days else None
        )


# ---- the tests -----------------------------------------------------------------------------


def test_year_so_far_statistics_equal_an_independent_recomputation(written):
    url, frame = written
    with psycopg.connect(url) as conn:
        report = air_assessment(conn, 2026, today=TODAY)
    assert report.provisional and report.period_end == TODAY
    assert (report.same_period_start, report.same_period_end) == (
        date(2025, 1, 1),
        date(2025, 4, 10),
    )
    # judged by the limits in force at the end of the period: GB 3095-2026 transitional
    assert report.standard == "GB 3095-2026 (transitional)"
    assert _statistic(report.cities[0], "pm25_mean").limit == 30
    _assert_cities_match(report, frame, same=False)


def test_same_period_of_last_year_equals_an_independent_recomputation(written):
    url, frame = written
    with psycopg.connect(url) as conn:
        report = air_assessment(conn, 2026, today=TODAY)
    _assert_cities_match(report, frame, same=True)
    for area in report.cities:
        this, last = _statistic(area, "pm25_mean"), _statistic(area, "pm25_mean", same_period=True)
        assert this.published is not None and last.published is not None
        assert area.change_percent["pm25_mean"] == _half_even(
            100 * (this.published - last.published) / last.published, 1
        )


def test_a_whole_year_is_assessed_from_the_kept_yearly_level(written):
    url, frame = written
    with psycopg.connect(url) as conn:
        report = air_assessment(conn, 2025, today=TODAY)
    assert not report.provisional
    assert (report.period_start, report.period_end) == (date(2025, 1, 1), date(2025, 12, 31))
    assert report.standard == "GB 3095-2012"
    _assert_cities_match(report, frame, same=False)
    assert report.cities_assessed >= 3 and report.cities[0].rank == 1


def test_attainment_index_and_ranking_follow_the_published_statistics(written):
    url, _ = written
    with psycopg.connect(url) as conn:
        report = air_assessment(conn, 2026, today=TODAY)
    limits = {"so2": 60, "no2": 40, "pm10": 60, "pm25": 30, "co": 4, "o3": 160}
    judged = {"so2": "so2_mean", "no2": "no2_mean", "pm10": "pm10_mean",
              "pm25": "pm25_mean", "co": "co_p95", "o3": "o3_8h_p90"}  # fmt: skip
    ranked = [c for c in report.cities if c.rank is not None]
    for city in ranked:
        assert city.period.index is not None
        published = {p: _statistic(city, key).published for p, key in judged.items()}
        terms = {p: published[p] / limits[p] for p in judged}
        assert city.period.index.value == _half_even(sum(terms.values()), 2)
        assert city.period.index.largest_contributor == max(terms, key=terms.__getitem__)
        assert city.period.attains is all(published[p] <= limits[p] for p in judged)
    indexes = [c.period.index.value for c in ranked if c.period.index]
    assert indexes == sorted(indexes) and ranked[0].rank == 1
    assert report.attaining_cities == sorted(c.id for c in ranked if c.period.attains)
    assert report.cities_attaining == len(report.attaining_cities)
    hebei = [c for c in ranked if c.province == "Hebei"]
    assert sorted(c.rank_in_province for c in hebei if c.rank_in_province) == list(
        range(1, len(hebei) + 1)
    )


def test_a_city_missing_a_pollutant_or_failing_coverage_is_not_assessed(written):
    url, _ = written
    with psycopg.connect(url) as conn:
        report = air_assessment(conn, 2026, today=TODAY)
    guangzhou = _area(report, "440100")
    assert guangzhou.period.attains is None and guangzhou.period.index is None
    assert guangzhou.rank is None and "co: no data" in guangzhou.period.not_assessed
    tangshan = _area(report, "130200")
    assert tangshan.period.attains is None and tangshan.rank is None
    pm25 = _statistic(tangshan, "pm25_mean")
    assert pm25.meets_grade_ii is None and not pm25.coverage.valid
    assert any("February" in r for r in pm25.coverage.reasons)
    assert "130200" not in report.attaining_cities and "440100" not in report.attaining_cities
    assert report.cities_assessed == sum(1 for c in report.cities if c.period.attains is not None)


def test_o3_days_failing_the_8_hour_validity_leave_the_statistic(written):
    url, frame = written
    o3 = frame[frame["parameter"] == "o3"]
    assert not o3[o3["day"].map(lambda d: d.toordinal() % 15 == 0)].empty
    with psycopg.connect(url) as conn:
        kept = conn.execute(
            "SELECT count(*) FILTER (WHERE NOT valid), "
            "       count(*) FILTER (WHERE valid IS DISTINCT FROM (mean > 160)) "
            "FROM readings_daily WHERE parameter = 'o3_8h' AND valid_hours < 14"
        ).fetchone()
    assert kept is not None
    # the days without their morning hours keep 9 windows: not valid unless above 160
    invalid, misjudged = kept
    assert invalid > 20 and misjudged == 0


def test_national_and_provincial_values_are_means_of_the_cities(written):
    url, _ = written
    with psycopg.connect(url) as conn:
        report = air_assessment(conn, 2026, today=TODAY)
    valid = [
        _statistic(c, "pm25_mean").value
        for c in report.cities
        if _statistic(c, "pm25_mean").coverage.valid
    ]
    national = next(s for s in report.national.period.statistics if s.key == "pm25_mean")
    assert national.value == pytest.approx(sum(v for v in valid if v) / len(valid), abs=2e-3)
    assert national.published == _half_even(national.value or 0, 1)
    rest = report.national.pm25_rest_of_year
    assert rest is not None and rest.comparator == "below" and rest.days_left == 365 - 100
    expected = (27.95 * 365 - (national.value or 0) * 100) / 265
    assert rest.must_average == pytest.approx(expected, abs=0.11)
    hebei = next(p for p in report.provinces if p.id == "Hebei")
    assert hebei.cities == 2


def test_status_gives_the_national_figures_of_the_assessment(written):
    url, _ = written
    with psycopg.connect(url) as conn:
        report = air_assessment(conn, 2026, today=TODAY, with_stations=False)
        found = status(conn, 2026, today=TODAY)
    pm25 = next(s for s in report.national.period.statistics if s.key == "pm25_mean")
    assert found.air.pm25 == pm25.published
    assert found.air.cities_attaining == report.cities_attaining
    assert [c.city_code for c in found.air.best] == [
        c.id for c in report.cities if c.rank is not None
    ][: len(found.air.best)]
    assert found.water.sections_assessed == 0 and found.water.excellent_share is None


def test_a_leap_day_in_the_period_compares_with_the_28th_of_february(postgres):
    rows = _hourly_rows(date(2027, 1, 1), date(2027, 3, 1), seed=27)
    rows += _hourly_rows(date(2028, 1, 1), date(2028, 2, 29), seed=28)
    url = _database(postgres, LEAP_DATABASE, rows)
    try:
        with psycopg.connect(url) as conn:
            report = air_assessment(conn, 2028, today=date(2028, 2, 29))
        assert report.period_end == date(2028, 2, 29) and report.national.period.days == 60
        assert report.same_period_end == date(2027, 2, 28)
        assert report.national.same_period is not None
        assert report.national.same_period.days == 59
        _assert_cities_match(report, _frame(rows), same=False)
        _assert_cities_match(report, _frame(rows), same=True)
    finally:
        _drop(postgres, LEAP_DATABASE)


# ---- through the REST API ------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(written) -> Iterator[TestClient]:
    url, _ = written
    settings = Settings(
        database_url=url,
        mqtt_url="mqtt://127.0.0.1:1",
        admin_key=SecretStr(ADMIN_KEY),
        metrics_port=0,
    )
    pool = make_pool(url, max_size=2, configure=prepare_connection, name="assessment")
    pool.open()
    try:
        with TestClient(create_app(settings, pool)) as test_client:
            test_client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
            yield test_client
    finally:
        pool.close()


def test_api_gives_the_assessment_of_a_year_as_json_and_csv(client, written):
    url, _ = written
    response = client.get("/v1/compliance/air/assessment", params={"year": 2025})
    assert response.status_code == 200
    body = response.json()
    with psycopg.connect(url) as conn:
        expected = air_assessment(conn, 2025)
    assert body["national"] == expected.model_dump(mode="json")["national"]
    assert body["attaining_cities"] == expected.attaining_cities
    assert [c["id"] for c in body["cities"]] == [c.id for c in expected.cities]
    csv_response = client.get(
        "/v1/compliance/air/assessment", params={"year": 2025, "format": "csv", "level": "all"}
    )
    assert csv_response.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(csv_response.text)))
    assert tuple(lines[0]) == ASSESSMENT_CSV_COLUMNS
    assert [row["level"] for row in lines].count("city") == len(CITIES)
    assert len(lines) == 1 + 4 + len(CITIES) + len(_stations())  # nation, provinces, …
    beijing = next(row for row in lines if row["id"] == "110000")
    area = _area(expected, "110000")
    assert float(beijing["pm25_mean"]) == _statistic(area, "pm25_mean").published
    assert beijing["rank"] == str(area.rank)


def test_the_year_in_progress_is_provisional_and_a_year_to_come_is_a_422(client):
    today = today_in_china()
    response = client.get("/v1/compliance/air/assessment", params={"year": today.year})
    assert response.status_code == 200
    body = response.json()
    assert body["provisional"] is True and body["period_end"] == today.isoformat()
    # the data stop on 10 April: no city has enough days in the year so far
    assert body["cities_assessed"] == 0
    assert all(c["period"]["attains"] is None for c in body["cities"])
    for path in ("/v1/compliance/air/assessment", "/v1/status"):
        future = client.get(path, params={"year": today.year + 1})
        assert future.status_code == 422, path
        assert future.headers["content-type"] == "application/problem+json"
        assert "has not begun" in future.text


def test_status_defaults_to_the_current_year_and_has_a_csv(client):
    response = client.get("/v1/status")
    assert response.status_code == 200
    body = response.json()
    assert body["year"] == today_in_china().year and body["provisional"] is True
    assert body["air"]["pm25_target"] == 28.0
    last = client.get("/v1/status", params={"year": 2025, "format": "csv"})
    assert last.status_code == 200
    rows = {r["figure"]: r["value"] for r in csv.DictReader(io.StringIO(last.text))}
    json_last = client.get("/v1/status", params={"year": 2025}).json()
    assert rows["air_pm25"] == str(json_last["air"]["pm25"])
    assert rows["air_cities_attaining"] == str(json_last["air"]["cities_attaining"])


def test_assessment_needs_a_read_key_and_is_in_the_openapi_schema(client):
    anonymous = client.get("/v1/status", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    schema = client.get("/openapi.json").json()
    assert "/v1/status" in schema["paths"]
    assert "/v1/compliance/air/assessment" in schema["paths"]
    content = schema["paths"]["/v1/status"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(content)


def test_a_late_reading_of_last_year_changes_the_same_period_computed_before(written):
    """The same period of last year is computed once and kept while last year's city-years
    stay as they were; a late reading that changes one of them is reflected. (Last in this
    file: it adds a station to the module's database.)"""
    url, _ = written
    with psycopg.connect(url) as conn:
        before = air_assessment(conn, 2026, today=TODAY, with_stations=False)
        upsert_stations(
            conn,
            [
                Station(
                    station_id="110000-A09",
                    name="Beijing late",
                    kind="air",
                    city="Beijing",
                    city_code="110000",
                    province="Beijing",
                )
            ],
        )
        prepare_connection(conn)
        start = datetime(2025, 1, 5, tzinfo=BEIJING)
        write_batch(
            conn,
            [
                ("110000-A09", "pm25", start + timedelta(hours=h), 900.0, RECEIVED)
                for h in range(24)
            ],
        )
    settle(url)
    with psycopg.connect(url) as conn:
        after = air_assessment(conn, 2026, today=TODAY, with_stations=False)
    old = _statistic(_area(before, "110000"), "pm25_mean", same_period=True).value
    new = _statistic(_area(after, "110000"), "pm25_mean", same_period=True).value
    assert old is not None and new is not None and new > old


def test_cli_says_a_year_is_in_progress_and_gives_the_assessment_and_status(written):
    url, _ = written
    current = today_in_china().year
    air = run_cli(url, "report", "air", "--year", str(current))
    assert air.returncode == 0, air.stderr
    assert f"{current} is in progress" in air.stderr and "provisional" in air.stderr
    past = run_cli(url, "report", "status", "--year", "2025", "--format", "json")
    assert past.returncode == 0, past.stderr
    assert "in progress" not in past.stderr
    with psycopg.connect(url) as conn:
        expected = status(conn, 2025)
    assert json.loads(past.stdout)["air"] == expected.air.model_dump(mode="json")
    table = run_cli(url, "report", "assessment", "--year", "2025")
    assert table.returncode == 0, table.stderr
    assert "Six-pollutant assessment 2025" in table.stdout and "Beijing" in table.stdout
    csv_out = run_cli(url, "report", "assessment", "--year", "2025", "--format", "csv")
    assert csv_out.stdout.splitlines()[0] == ",".join(ASSESSMENT_CSV_COLUMNS)
    future = run_cli(url, "report", "status", "--year", str(current + 1))
    assert future.returncode == 2 and "has not begun" in future.stderr
