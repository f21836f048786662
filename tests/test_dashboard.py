"""The dashboard: pages rendered by the app (TestClient) and, in headless Chromium driven by
Playwright, the numbers shown against the REST API's, with screenshots in test-artifacts/."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from plotly.offline import get_plotlyjs, get_plotlyjs_version
from psycopg import sql
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from airwater.embedded import free_port
from api import create_app
from api.routes import dashboard
from core import PROJECT_ROOT
from core.db import make_pool
from core.settings import Settings
from schemas.stations import Station
from storage.migrate import migrate
from storage.stations import upsert_stations
from storage.writer import prepare_connection, write_batch
from tests.alert_support import add_event, add_subscription
from tests.conftest import ADMIN_KEY, TEST_STATIONS
from tests.support import settle, wait_for

BEIJING_TZ = ZoneInfo("Asia/Shanghai")
RECEIVED = datetime(2026, 1, 5, tzinfo=UTC)
YEARS = (2024, 2025)
CHROMIUM = Path("/usr/bin/chromium")
# as the machine notes say: headless, no sandbox (root), and no calls home
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}

GUANGZHOU = [
    Station(
        station_id=f"440100-A00{i}",
        name=name,
        kind="air",
        city="Guangzhou",
        city_code="440100",
        province="Guangdong",
    )
    for i, name in ((1, "Haizhu Baogang"), (2, "Tianhe Sports West"))
]
# (city level of PM2.5 µg/m³, stations): Beijing above the Grade II limit, Guangzhou within
AIR_STATIONS = {"110000-A001": 41.0, "110000-A002": 37.0, "440100-A001": 27.0, "440100-A002": 24.0}
# the annual class of each section: 8 of 10 in Class I–III
WATER_CLASSES = {
    "W-YANGTZE-01": 2,
    "W-TAIHU-01": 4,
    **{f"W-SEC-{i:02d}": c for i, c in enumerate((1, 2, 2, 3, 3, 3, 3, 6), start=1)},
}
WATER_SECTIONS = [
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
    if station_id.startswith("W-SEC")
]


def hourly_pm25(station_id: str, level: float, year: int) -> list[tuple]:
    """A year of hourly PM2.5 around ``level``: higher in winter and at night, a two-day
    episode every five weeks; deterministic."""
    start = datetime(year, 1, 1, tzinfo=BEIJING_TZ)
    hours = (datetime(year + 1, 1, 1, tzinfo=BEIJING_TZ) - start) // timedelta(hours=1)
    offset = sum(map(ord, station_id)) % 7
    rows = []
    for hour in range(hours):
        ts = start + timedelta(hours=hour)
        day = ts.timetuple().tm_yday
        seasonal = 0.45 * level * math.cos(2 * math.pi * (day - 15) / 365)
        diurnal = 0.15 * level * math.cos(2 * math.pi * (ts.hour - 22) / 24)
        episode = 1.8 * level if (day + offset) % 35 < 2 else 0.0
        noise = 0.1 * level * math.sin(hour * 0.7 + offset)
        value = max(2.0, level + seasonal + diurnal + episode + noise)
        rows.append((station_id, "pm25", ts, round(value, 1), RECEIVED))
    return rows


def water_samples(station_id: str, water_class: int, year: int) -> list[tuple]:
    """One reported class on the 15th of every month."""
    return [
        (
            station_id,
            "water_class",
            datetime(year, month, 15, 10, tzinfo=BEIJING_TZ),
            float(water_class),
            RECEIVED,
        )
        for month in range(1, 13)
    ]


def write_rows(database_url: str, rows: list[tuple]) -> None:
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        for i in range(0, len(rows), 20000):
            write_batch(conn, rows[i : i + 20000])


NETWORK_DATABASE = "airwater_dashboard"


@pytest.fixture(scope="module")
def network_url(postgres) -> Iterator[str]:
    """A database of its own holding two years of the network (written once: ~70,000
    hourly readings), for the tests that only read."""
    name = sql.Identifier(NETWORK_DATABASE)
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
    url = postgres.url.rsplit("/", 1)[0] + "/" + NETWORK_DATABASE
    with psycopg.connect(url) as conn:
        migrate(conn)
        upsert_stations(conn, [*TEST_STATIONS, *GUANGZHOU, *WATER_SECTIONS])
    rows: list[tuple] = []
    for year in YEARS:
        for station_id, level in AIR_STATIONS.items():
            rows += hourly_pm25(station_id, level - 2.5 * (year - YEARS[0]), year)
    write_rows(url, rows + water_rows(YEARS))
    settle(url)  # the daily values and annual statistics the pages show
    with psycopg.connect(url) as conn:
        subscription = add_subscription(conn, "PM2.5 over 75", channel="stream")
        for station_id, kind, value in (
            ("110000-A001", "firing", 118.4),
            ("110000-A002", "firing", 96.0),
            ("110000-A001", "resolved", 61.2),
        ):
            add_event(conn, subscription, station_id, kind, value, notify=False)
    yield url
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


@pytest.fixture(scope="module")
def network(network_url: str) -> Iterator[TestClient]:
    """A client (no key) of an app on the network database."""
    settings = Settings(
        database_url=network_url,
        mqtt_url="mqtt://127.0.0.1:1",
        admin_key=SecretStr(ADMIN_KEY),
        metrics_port=0,
    )
    pool = make_pool(network_url, max_size=4, configure=prepare_connection, name="dashboard")
    pool.open()
    try:
        with TestClient(create_app(settings, pool)) as client:
            yield client
    finally:
        pool.close()


def water_rows(years: tuple[int, ...]) -> list[tuple]:
    return [
        row
        for year in years
        for station_id, water_class in WATER_CLASSES.items()
        for row in water_samples(station_id, water_class, year)
    ]


def shown_text(page_html: str, name: str) -> str:
    """Text of the element with data-testid=name (no nested tags)."""
    found = re.search(rf'data-testid="{re.escape(name)}"[^>]*>([^<]*)<', page_html)
    assert found is not None, f"no data-testid={name!r} in the page"
    return found.group(1)


def one_decimal(value: float) -> str:
    return f"{value:.1f}"


# --- server-side pages --------------------------------------------------------------------


def test_overview_of_a_past_year_shows_the_compliance_api_numbers(network):
    page = network.get("/", params={"year": 2025})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    air = network.get("/v1/compliance/air", params={"year": 2025}, headers=ADMIN).json()
    water = network.get("/v1/compliance/water", params={"year": 2025}, headers=ADMIN).json()
    report = air["reports"][0]
    assert shown_text(html, "national-mean") == one_decimal(report["national"]["annual_mean"])
    assert shown_text(html, "cities-meeting") == str(report["cities_meeting_grade_ii"]) == "1"
    assert shown_text(html, "cities-assessed") == str(report["cities_assessed"]) == "2"
    assert shown_text(html, "gap-2027") == f"{report['national']['gap_to_2027_target']:+.1f}"
    share = water["reports"][0]["excellent_share"]
    assert share == 80.0
    assert shown_text(html, "excellent-share") == "80.0"
    # every city row carries the API's annual mean
    for city in report["cities"]:
        row = re.search(rf'<tr data-city="{city["id"]}">.*?</tr>', html)
        assert row is not None
        expected = "—" if city["annual_mean"] is None else one_decimal(city["annual_mean"])
        assert shown_text(row.group(0), "city-mean") == expected
    # figures for the trend, the ranking and the water classes; the trend covers both years
    for chart in ("trend-chart", "city-chart", "water-chart"):
        assert f'data-testid="{chart}"' in html
    assert re.search(r'"x":\[2024,2025\]', html)
    assert f'src="/static/plotly.min.js?v={get_plotlyjs_version()}"' in html


def test_year_query_chooses_the_year_and_links_every_year_with_data(network):
    html = network.get("/", params={"year": 2024}).text
    report = network.get("/v1/compliance/air", params={"year": 2024}, headers=ADMIN).json()
    national = report["reports"][0]["national"]["annual_mean"]
    assert shown_text(html, "national-mean") == one_decimal(national)
    assert '<a href="/?year=2024" class=on>2024</a>' in html
    assert '<a href="/?year=2025">2025</a>' in html


def test_year_without_data_is_a_404_page_and_a_bad_year_a_400_page(network):
    missing = network.get("/", params={"year": 2019})
    assert missing.status_code == 404
    assert "No data for 2019" in missing.text
    assert 'href="/?year=2025"' in missing.text
    for bad in ("abc", "20251", "1200"):
        page = network.get("/", params={"year": bad})
        assert page.status_code == 400, bad
        assert page.headers["content-type"].startswith("text/html")


def test_empty_database_renders_a_no_data_page(api, database_url):
    page = api.get("/")
    assert page.status_code == 200
    assert 'data-testid="no-data"' in page.text
    assert "No data yet" in page.text
    station = api.get("/stations/110000-A001")
    assert station.status_code == 200
    assert "No data yet" in station.text
    water = api.get("/stations/W-TAIHU-01")
    assert water.status_code == 200
    assert "No annual class yet" in water.text


def test_only_water_data_renders_the_overview_without_air_figures(api, database_url):
    with psycopg.connect(database_url) as conn:
        upsert_stations(conn, WATER_SECTIONS)
    write_rows(database_url, water_rows((2025,)))
    settle(database_url)
    html = api.get("/").text
    assert shown_text(html, "national-mean") == "—"
    assert shown_text(html, "excellent-share") == "80.0"
    assert "No city has PM2.5 data in 2025" in html


def test_unknown_station_is_a_404_page(api, database_url):
    assert api.get("/stations/..%2Fetc").status_code == 404  # no route: the API's 404
    for path in ("/stations/110000-X999", "/stations/not%20an%20id"):
        page = api.get(path)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html")
        assert "Station not found" in page.text


def test_station_page_shows_the_latest_aqi_of_the_api_and_both_series(network):
    html = network.get("/stations/110000-A001").text
    latest = network.get("/v1/stations/110000-A001/aqi/latest", headers=ADMIN).json()["latest"]
    assert shown_text(html, "latest-aqi") == latest["display"]
    assert shown_text(html, "latest-aqi-category") == latest["category"]
    assert latest["colour"]["hex"] in html
    daily = network.get(
        "/v1/stations/110000-A001/aqi/latest", params={"period": "daily"}, headers=ADMIN
    ).json()["latest"]
    assert shown_text(html, "daily-aqi") == daily["display"]
    assert 'data-testid="hourly-chart"' in html
    assert 'data-testid="daily-chart"' in html
    # the last hour shown is the API's last hourly mean
    hourly = network.get(
        "/v1/stations/110000-A001/aggregates",
        params={
            "parameter": "pm25",
            "period": "hourly",
            "start": "2025-12-31",
            "end": "2025-12-31",
        },
        headers=ADMIN,
    ).json()["items"]
    assert shown_text(html, "latest-pm25") == one_decimal(hourly[-1]["mean"])


def test_water_section_page_shows_its_annual_class(network):
    page = network.get("/stations/W-TAIHU-01")
    assert page.status_code == 200
    assert shown_text(page.text, "water-class") == "IV"


def test_names_from_the_registry_are_escaped(api, database_url):
    hostile = Station(
        station_id="440100-A009",
        name='<script>alert("pwned")</script>',
        kind="air",
        city="<img src=x onerror=alert(1)>",
        city_code="440199",
        province="Guangdong & <b>co</b>",
    )
    with psycopg.connect(database_url) as conn:
        upsert_stations(conn, [hostile])
    write_rows(database_url, hourly_pm25(hostile.station_id, 30.0, 2025))
    settle(database_url)
    for path in ("/", "/stations/440100-A009"):
        html = api.get(path).text
        assert "<script>alert" not in html, path
        assert "<img src=x" not in html, path
        assert "<b>co</b>" not in html, path
    overview = api.get("/").text
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in overview
    assert "&lt;img src=x onerror=alert(1)&gt;" in overview
    station = api.get("/stations/440100-A009").text
    assert (
        shown_text(station, "station-name")
        == "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;"
    )


def test_recent_alerts_are_listed_newest_first(api, database_url):
    with psycopg.connect(database_url) as conn:
        upsert_stations(conn, WATER_SECTIONS)
        subscription = add_subscription(conn, "pm25 over 75", channel="stream")
        for value in (80.5, 91.25, 77.0):
            add_event(conn, subscription, station_id="110000-A002", value=value, notify=False)
    write_rows(database_url, water_rows((2025,)))
    settle(database_url)
    html = api.get("/").text
    table = re.search(r'<table data-testid="alerts">.*?</table>', html, re.S)
    assert table is not None
    values = re.findall(r"<td class=num>([\d.]+) µg/m³</td>", table.group(0))
    assert values == ["77.0", "91.2", "80.5"]
    assert "Dongsi" not in table.group(0)  # the station's own name is shown, not another's
    assert "Tiantan" in table.group(0)
    assert 'href="/stations/110000-A002"' in table.group(0)


def test_pages_load_nothing_from_other_hosts(network):
    for path in ("/", "/stations/110000-A001"):
        html = network.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path


def test_pages_need_no_api_key(network):
    assert network.get("/v1/compliance/air", params={"year": 2025}).status_code == 401
    assert network.get("/").status_code == 200
    assert network.get("/stations/110000-A001").status_code == 200


def test_plotly_js_comes_from_the_installed_package_and_is_cached(api):
    plain = api.get("/static/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/javascript")
    assert plain.text == get_plotlyjs()
    compressed = api.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.text == get_plotlyjs()  # httpx decodes it
    etag = plain.headers["etag"]
    again = api.get("/static/plotly.min.js", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_dashboard_is_not_part_of_the_openapi_schema(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert "/stations/{station_id}" not in paths


def test_unreachable_database_is_a_503_page(api_settings, monkeypatch):
    monkeypatch.setattr(dashboard, "DB_WAIT_S", 0.5)
    dead = ConnectionPool(
        "postgresql://nobody@127.0.0.1:1/none", min_size=0, max_size=1, timeout=0.5, open=False
    )
    dead.open(wait=False)
    try:
        with TestClient(create_app(api_settings, dead)) as client:
            page = client.get("/")
        assert page.status_code == 503
        assert "Database unavailable" in page.text
    finally:
        dead.close()


# --- in a browser -------------------------------------------------------------------------


@contextmanager
def serving(database_url: str, log_path: Path) -> Iterator[str]:
    """``python -m api`` under uvicorn on a free port on ``database_url``; yields its base
    URL."""
    port = free_port()
    env = {
        **os.environ,
        "AIRWATER_DATABASE_URL": database_url,
        "AIRWATER_HTTP_PORT": str(port),
        "AIRWATER_ADMIN_KEY": ADMIN_KEY,
        "AIRWATER_MQTT_URL": "mqtt://127.0.0.1:1",
        "AIRWATER_METRICS_PORT": "0",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "--log-level", "warning"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, log_path.read_text()
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, timeout=30, what="the API process to answer /health")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture()
def server(network_url: str, tmp_path: Path) -> Iterator[str]:
    """The API process on the network database."""
    with serving(network_url, tmp_path / "api.log") as base:
        yield base


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; the test skips (before starting a server) where it is missing."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
        )
    return CHROMIUM


def test_browser_shows_the_api_numbers_and_draws_the_charts(chromium, server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    year = 2025
    air = httpx.get(f"{server}/v1/compliance/air", params={"year": year}, headers=ADMIN).json()
    water = httpx.get(f"{server}/v1/compliance/water", params={"year": year}, headers=ADMIN)
    report = air["reports"][0]
    latest = httpx.get(f"{server}/v1/stations/110000-A001/aqi/latest", headers=ADMIN).json()
    ARTIFACTS.mkdir(exist_ok=True)
    foreign: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.on(
                "request",
                lambda r: None if r.url.startswith(server) else foreign.append(r.url),
            )
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            page.goto(f"{server}/?year={year}")
            for chart in ("trend-chart", "city-chart", "water-chart"):
                page.wait_for_selector(f'[data-testid="{chart}"].js-plotly-plot svg.main-svg')
            shown = page.get_by_test_id
            assert shown("national-mean").inner_text() == one_decimal(
                report["national"]["annual_mean"]
            )
            assert shown("cities-meeting").inner_text() == str(report["cities_meeting_grade_ii"])
            assert shown("cities-assessed").inner_text() == str(report["cities_assessed"])
            assert shown("excellent-share").inner_text() == one_decimal(
                water.json()["reports"][0]["excellent_share"]
            )
            # one bar per city with data in the ranking, drawn by plotly
            bars = page.locator('[data-testid="city-chart"] g.point').count()
            assert bars == sum(1 for c in report["cities"] if c["annual_mean"] is not None)
            page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"))
            page.screenshot(path=str(ARTIFACTS / "dashboard-overview-full.png"), full_page=True)

            page.click('a[href="/stations/110000-A001"]')
            page.wait_for_selector('[data-testid="hourly-chart"].js-plotly-plot svg.main-svg')
            page.wait_for_selector('[data-testid="daily-chart"].js-plotly-plot svg.main-svg')
            assert shown("latest-aqi").inner_text() == latest["latest"]["display"]
            assert shown("latest-aqi-category").inner_text() == latest["latest"]["category"]
            page.screenshot(path=str(ARTIFACTS / "dashboard-station.png"), full_page=True)
        finally:
            browser.close()
    assert not foreign, f"the pages asked other hosts: {foreign}"
    assert not errors, f"the browser reported errors: {errors}"
