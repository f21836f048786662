"""The front page on the current year (Beijing): the status band, the city ranking by
comprehensive index and the cities attaining all six pollutants show the numbers of GET
/v1/status and GET /v1/compliance/air/assessment — rendered by the app (TestClient) and read
in headless Chromium (Playwright)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from pydantic import SecretStr

from api import create_app
from core.db import make_pool
from core.settings import Settings
from reports import today_in_china
from schemas.stations import Station
from storage.migrate import migrate
from storage.stations import upsert_stations
from storage.writer import prepare_connection
from tests.conftest import ADMIN_KEY
from tests.support import settle
from tests.test_dashboard import (
    ADMIN,
    ARTIFACTS,
    BEIJING_TZ,
    CHROMIUM,
    CHROMIUM_FLAGS,
    RECEIVED,
    hourly_pm25,
    serving,
    shown_text,
    write_rows,
)

TODAY = today_in_china()
CURRENT = TODAY.year
LAST = CURRENT - 1
# the current year's data end two days before today; last year is complete
DATA_END = TODAY - timedelta(days=2)
# a year so far is assessed with 324/365 of its days valid: from about 20 January
ASSESSED = TODAY.timetuple().tm_yday >= 20

# One station a city, hourly: Beijing above the PM2.5 limit with heavily polluted days and
# Guangzhou within every Grade II limit (six pollutants each); Kunming measures PM2.5 only,
# so it counts in the national PM2.5 but is not assessed for attainment nor ranked.
CITY_LEVELS: list[tuple[Station, dict[str, float]]] = [
    (
        Station(
            station_id="110000-A001",
            name="Dongsi",
            kind="air",
            city="Beijing",
            city_code="110000",
            province="Beijing",
        ),
        {"pm25": 36, "pm10": 62, "so2": 7, "no2": 34, "co": 0.9, "o3": 62},
    ),
    (
        Station(
            station_id="440100-A001",
            name="Haizhu Baogang",
            kind="air",
            city="Guangzhou",
            city_code="440100",
            province="Guangdong",
        ),
        {"pm25": 22, "pm10": 40, "so2": 6, "no2": 30, "co": 0.7, "o3": 75},
    ),
    (
        Station(
            station_id="530100-A001",
            name="Dianchi",
            kind="air",
            city="Kunming",
            city_code="530100",
            province="Yunnan",
        ),
        {"pm25": 15},
    ),
]
HEAVY_CITY = "110000-A001"
# the reported class of each section, last year and this year: 60 % then 80 % in I–III
WATER_CLASSES = {"W-ST-01": (2, 2), "W-ST-02": (3, 3), "W-ST-03": (4, 3), "W-ST-04": (2, 2)}
WATER_CLASSES["W-ST-05"] = (5, 4)
SECTIONS = [
    Station(
        station_id=station_id,
        name=f"Section {station_id[-2:]}",
        kind="surface_water",
        waterbody="river",
        basin="Pearl",
        city="Guangzhou",
        city_code="440100",
        province="Guangdong",
    )
    for station_id in WATER_CLASSES
]
STATUS_DATABASE = "airwater_dashboard_status"
POLLUTANT_NAMES = {
    "so2": "SO₂",
    "no2": "NO₂",
    "pm10": "PM10",
    "pm25": "PM2.5",
    "co": "CO",
    "o3": "O₃",
}


def hourly_air(station_id: str, levels: dict[str, float], start: date, end: date) -> list[tuple]:
    """Hourly values of the pollutants in ``levels`` on the days ``start`` … ``end``
    (Beijing): particles and gases higher in winter and at night, O3 in summer afternoons;
    in the heavy city one day in 45 of PM2.5 at 170 µg/m³ (daily AQI above 200)."""
    rows = []
    offset = sum(map(ord, station_id)) % 7
    first = datetime(start.year, start.month, start.day, tzinfo=BEIJING_TZ)
    for hour in range(((end - start).days + 1) * 24):
        ts = first + timedelta(hours=hour)
        day = ts.timetuple().tm_yday
        winter = math.cos(2 * math.pi * (day - 15) / 365)
        night = math.cos(2 * math.pi * (ts.hour - 22) / 24)
        noise = math.sin(hour * 0.7 + offset)
        sun = max(0.0, math.sin(math.pi * (ts.hour - 7) / 12))
        for parameter, level in levels.items():
            if parameter == "o3":
                value = level * (0.45 + 0.9 * sun) * (1 - 0.3 * winter) + 3 * noise
            else:
                value = level * (1 + 0.35 * winter + 0.15 * night + 0.08 * noise)
            if parameter == "pm25" and station_id == HEAVY_CITY and (day + offset) % 45 == 0:
                value = 170.0
            digits = 2 if parameter == "co" else 1
            rows.append((station_id, parameter, ts, round(max(value, 0.1), digits), RECEIVED))
    return rows


def water_samples(year: int, until: date) -> list[tuple]:
    """The reported class of each section on the 15th of every month up to ``until``."""
    position = 0 if year == LAST else 1
    return [
        (
            station_id,
            "water_class",
            datetime(year, month, 15, 10, tzinfo=BEIJING_TZ),
            float(classes[position]),
            RECEIVED,
        )
        for station_id, classes in WATER_CLASSES.items()
        for month in range(1, 13)
        if date(year, month, 15) <= until
    ]


@pytest.fixture(scope="module")
def status_url(postgres) -> Iterator[str]:
    """A database of its own: last year complete and this year up to two days ago, hourly
    in three cities (~220,000 readings), water sections monthly."""
    name = sql.Identifier(STATUS_DATABASE)
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
    url = postgres.url.rsplit("/", 1)[0] + "/" + STATUS_DATABASE
    with psycopg.connect(url) as conn:
        migrate(conn)
        upsert_stations(conn, [station for station, _ in CITY_LEVELS] + SECTIONS)
    rows = water_samples(LAST, date(LAST, 12, 31)) + water_samples(CURRENT, DATA_END)
    for station, levels in CITY_LEVELS:
        rows += hourly_air(station.station_id, levels, date(LAST, 1, 1), date(LAST, 12, 31))
        if DATA_END.year == CURRENT:
            cleaner = {p: v * 0.92 for p, v in levels.items()}  # this year is a little cleaner
            rows += hourly_air(station.station_id, cleaner, date(CURRENT, 1, 1), DATA_END)
    write_rows(url, rows)
    settle(url)  # derived levels: daily values, O3 8-hour maxima, city AQIs, yearly statistics
    yield url
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


@pytest.fixture(scope="module")
def client(status_url: str) -> Iterator[TestClient]:
    """A client (no key) of an app on the status database."""
    settings = Settings(
        database_url=status_url,
        mqtt_url="mqtt://127.0.0.1:1",
        admin_key=SecretStr(ADMIN_KEY),
        metrics_port=0,
    )
    pool = make_pool(status_url, max_size=4, configure=prepare_connection, name="status")
    pool.open()
    try:
        with TestClient(create_app(settings, pool)) as app_client:
            yield app_client
    finally:
        pool.close()


def decimal(value: float | None) -> str:
    return "not assessed" if value is None else f"{value:.1f}"


def change(value: float | None) -> str:
    return "not assessed" if value is None else f"{value:+.1f}"


def count(value: int | None) -> str:
    return "not assessed" if value is None else str(value)


def expected_figures(status: dict[str, Any]) -> dict[str, str]:
    """What each data-testid of the status band shows for GET /v1/status's JSON."""
    air, water = status["air"], status["water"]
    below = air["pm25_below_target"]
    figures = {
        "status-pm25": decimal(air["pm25"]),
        "status-pm25-same-period": decimal(air["pm25_same_period"]),
        "status-pm25-change": change(air["pm25_change_percent"]),
        "status-pm25-target": f"{air['pm25_target']:.0f}",
        "status-pm25-target-verdict": "not assessed"
        if below is None
        else ("below" if below else "not below"),
        "status-good-share": decimal(air["good_day_share"]),
        "status-good-share-same-period": decimal(air["good_day_share_same_period"]),
        "status-heavy-days": count(air["heavy_days"]),
        "status-heavy-days-same-period": count(air["heavy_days_same_period"]),
        "status-cities-attaining": str(air["cities_attaining"]),
        "status-cities-assessed": str(air["cities_assessed"]),
        "status-water-months": water["months"],
        "status-water-share": decimal(water["excellent_share"]),
        "status-water-share-same-period": decimal(water["same_period_excellent_share"]),
        "status-water-change": change(water["change_points"]),
        "status-water-target": f"{water['target']:.0f}",
    }
    rest = air["pm25_rest_of_year"]
    if status["provisional"] and rest and rest["reachable"] and rest["days_left"]:
        figures["status-rest-must-average"] = f"{rest['must_average']:.1f}"
        figures["status-rest-days-left"] = str(rest["days_left"])
    return figures


def rest_of_year_words(status: dict[str, Any]) -> str:
    """The sentence the page gives for the rest of the year."""
    rest = status["air"]["pm25_rest_of_year"]
    if not status["provisional"]:
        return "the year is complete"
    if rest is None:
        return "rest of the year: not assessed"
    if rest["days_left"] == 0:
        return "no day of the year is left"
    if not rest["reachable"]:
        return "cannot be met this year"
    return (
        f"the rest of the year must average {rest['comparator']} {rest['must_average']:.1f} "
        f"µg/m³ over {rest['days_left']} days"
    )


def provisional_words(status: dict[str, Any]) -> str:
    end = date.fromisoformat(status["period_end"])
    return f"provisional, 1 Jan – {end.day} {end:%b}"


def ranking_rows(page_html: str, testid: str) -> list[dict[str, str]]:
    """The rows of a ranking table: city code and each cell with a data-testid."""
    table = re.search(rf'<table data-testid="{testid}">.*?</table>', page_html, re.S)
    assert table is not None, f"no table {testid}"
    rows = []
    for code, cells in re.findall(r'<tr data-city="([^"]+)">(.*?)</tr>', table.group(0)):
        row = dict(re.findall(r'data-testid="([^"]+)"[^>]*>([^<]*)<', cells))
        row["code"] = code
        rows.append(row)
    return rows


def expected_ranking(cities: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "code": c["city_code"],
            "rank": str(c["rank"]),
            "city": c["name"],
            "index": f"{c['index']:.2f}",
            "contributor": POLLUTANT_NAMES[c["largest_contributor"]],
            "pm25": "—" if c["pm25"] is None else f"{c['pm25']:.0f}",
        }
        for c in cities
    ]


# --- server-side page ---------------------------------------------------------------------


def test_front_page_opens_on_the_current_year_with_the_status_of_the_api(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    status = client.get("/v1/status", headers=ADMIN).json()
    assert status["year"] == CURRENT and status["provisional"] is True
    assert f"Where the country stands, {CURRENT} so far" in html
    assert f'<a href="/?year={CURRENT}" class=on>{CURRENT}</a>' in html
    assert f'<a href="/?year={LAST}">{LAST}</a>' in html
    for testid, text in expected_figures(status).items():
        assert shown_text(html, testid) == text, testid
    assert provisional_words(status) in html
    if ASSESSED:
        air = status["air"]
        # the data make every figure exist: nothing on the page is empty
        assert air["pm25"] is not None and air["pm25_same_period"] is not None
        assert air["pm25_change_percent"] < 0  # this year is cleaner
        assert air["pm25_rest_of_year"]["reachable"]
        assert air["heavy_days"] > 0 and air["heavy_days_same_period"] > 0
        assert (air["cities_attaining"], air["cities_assessed"]) == (1, 2)
        assert status["water"]["excellent_share"] == 80.0
        assert status["water"]["same_period_excellent_share"] == 60.0
        band = re.search(r'data-testid="status">.*?</section>', html)
        assert band is not None and "not assessed" not in band.group(0)


def test_front_page_ranks_the_cities_and_lists_those_attaining_as_the_api(client):
    html = client.get("/").text
    status = client.get("/v1/status", headers=ADMIN).json()
    assessment = client.get(
        "/v1/compliance/air/assessment", params={"year": CURRENT}, headers=ADMIN
    ).json()
    assert ranking_rows(html, "ranking-best") == expected_ranking(status["air"]["best"])
    assert ranking_rows(html, "ranking-worst") == expected_ranking(status["air"]["worst"])
    listed = re.search(r'<ul class="cities" data-testid="attaining-cities">(.*?)</ul>', html)
    codes = [] if listed is None else re.findall(r'<li data-city="([^"]+)"', listed.group(1))
    assert sorted(codes) == assessment["attaining_cities"]
    assert shown_text(html, "attaining-count") == str(assessment["cities_attaining"])
    if ASSESSED:
        assert [c["city_code"] for c in status["air"]["best"]] == ["440100", "110000"]
        assert [c["city_code"] for c in status["air"]["worst"]] == ["110000", "440100"]
        assert codes == ["440100"]
        assert listed is not None and "Guangzhou" in listed.group(1)
    # the PM2.5 panels of the year so far stay below
    assert 'data-testid="city-chart"' in html
    assert "Cities ranked by PM2.5 mean so far" in html


def test_last_year_shows_its_whole_year_status_and_annual_cards(client):
    html = client.get("/", params={"year": LAST}).text
    status = client.get("/v1/status", params={"year": LAST}, headers=ADMIN).json()
    assert status["provisional"] is False
    for testid, text in expected_figures(status).items():
        assert shown_text(html, testid) == text, testid
    assert shown_text(html, "status-rest-of-year") == "the year is complete"
    assert 'data-testid="status-provisional"' not in html
    air = client.get("/v1/compliance/air", params={"year": LAST}, headers=ADMIN).json()
    national = air["reports"][0]["national"]["annual_mean"]
    assert shown_text(html, "national-mean") == f"{national:.1f}"


def test_without_air_data_of_this_or_last_year_the_page_opens_on_the_latest_year(api, database_url):
    old = CURRENT - 3
    write_rows(database_url, hourly_pm25("110000-A001", 30.0, old)[:72])
    settle(database_url)
    html = api.get("/").text
    assert f'<a href="/?year={old}" class=on>{old}</a>' in html
    assert f'href="/?year={CURRENT}"' not in html
    assert shown_text(html, "status-rest-of-year") == "the year is complete"
    assert shown_text(html, "status-pm25") == "not assessed"
    assert 'data-testid="ranking-none"' in html


# --- in a browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; the test skips (before starting a server) where it is missing."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
        )
    return CHROMIUM


@pytest.fixture()
def server(status_url: str, tmp_path: Path) -> Iterator[str]:
    """The API process on the status database."""
    with serving(status_url, tmp_path / "api.log") as base:
        yield base


def test_browser_shows_the_status_of_the_api_on_the_front_page(chromium, server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    status = httpx.get(f"{server}/v1/status", headers=ADMIN).json()
    assessment = httpx.get(
        f"{server}/v1/compliance/air/assessment", params={"year": CURRENT}, headers=ADMIN
    ).json()
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{server}/")
            page.wait_for_selector('[data-testid="city-chart"].js-plotly-plot svg.main-svg')
            shown = page.get_by_test_id
            for testid, text in expected_figures(status).items():
                assert shown(testid).inner_text() == text, testid
            assert shown("status-provisional").inner_text() == provisional_words(status)
            assert rest_of_year_words(status) in shown("status-rest-of-year").inner_text()
            for testid, cities in (
                ("ranking-best", status["air"]["best"]),
                ("ranking-worst", status["air"]["worst"]),
            ):
                rows = page.locator(f'[data-testid="{testid}"] tbody tr')
                assert rows.count() == len(cities)
                for i, city in enumerate(expected_ranking(cities)):
                    row = rows.nth(i)
                    assert row.get_attribute("data-city") == city["code"]
                    assert row.get_by_test_id("index").inner_text() == city["index"]
                    assert row.get_by_test_id("rank").inner_text() == city["rank"]
            listed = page.locator('[data-testid="attaining-cities"] li')
            codes = [listed.nth(i).get_attribute("data-city") for i in range(listed.count())]
            assert sorted(c for c in codes if c) == assessment["attaining_cities"]
            page.screenshot(path=str(ARTIFACTS / "dashboard-status.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, f"the browser reported errors: {errors}"
