"""The station review page: the hourly series with the automatic quality flags of GET
/v1/stations/{id}/flags and the hours active reviews took out, rendered by the app
(TestClient); and in headless Chromium (Playwright) an operator's whole round — select a
range on the chart, invalidate it with a reason through the API, see the review and its audit
entry, watch the city's annual PM2.5 change as GET /v1/compliance/air says, restore it."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from api.dashboard.figures import local_time
from standards.review import REVIEW_REASONS
from storage.writer import prepare_connection, write_batch
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

STATION = "110000-A001"
PAGE = f"/stations/{STATION}/review"
DAYS = [date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 12)]
STUCK_DAY = DAYS[1]  # PM2.5 reads 35.0 from 00:00 to 13:00: a stuck analyser
PM10_BELOW_HOUR = datetime(2026, 11, 12, 5, tzinfo=BEIJING_TZ)  # PM10 under PM2.5
YEAR = 2025


def three_days() -> list[tuple]:
    """Hourly PM2.5 and PM10 (twice PM2.5) at the station on DAYS, with 14 stuck hours
    of PM2.5 and one hour of PM10 below PM2.5."""
    rows = []
    for day in DAYS:
        for hour in range(24):
            ts = datetime(day.year, day.month, day.day, hour, tzinfo=BEIJING_TZ)
            pm25 = 35.0 if day == STUCK_DAY and hour < 14 else 20.0 + hour % 7
            pm10 = 10.0 if ts == PM10_BELOW_HOUR else 2 * pm25
            rows += [(STATION, "pm25", ts, pm25, RECEIVED), (STATION, "pm10", ts, pm10, RECEIVED)]
    return rows


def figure_of(page_html: str) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="review-figure">(.*?)</script>', page_html, re.S
    )
    assert found is not None, "no review figure"
    figure: dict[str, Any] = json.loads(found.group(1))
    return figure


def trace(figure: dict[str, Any], name: str) -> dict[str, Any]:
    """The chart's trace called ``name`` (empty when the chart has none)."""
    return next((t for t in figure["data"] if t.get("name") == name), {"x": [], "customdata": []})


def local(instant: str) -> str:
    return local_time(datetime.fromisoformat(instant), "Asia/Shanghai")


@pytest.fixture()
def flagged(database_url: str) -> str:
    write_rows(database_url, three_days())
    return database_url


@pytest.fixture()
def reviewer(api, make_key):
    api.headers["Authorization"] = f"Bearer {make_key('read', 'review')}"
    return api


def invalidate(client, start: str, end: str, reason: str = "calibration", comment: str = ""):
    response = client.post(
        f"/v1/stations/{STATION}/reviews",
        json={
            "parameters": ["pm25"],
            "from": start,
            "to": end,
            "reason": reason,
            "comment": comment,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


# --- server-side page ---------------------------------------------------------------------


def test_page_marks_the_flagged_hours_of_the_flags_api_with_their_messages(flagged, api):
    page = api.get(PAGE, params={"parameter": "pm25", "from": "2026-11-10", "to": "2026-11-12"})
    assert page.status_code == 200
    flags = api.get(
        f"/v1/stations/{STATION}/flags",
        params={"from": "2026-11-10", "to": "2026-11-12", "parameter": "pm25"},
        headers=ADMIN,
    ).json()["items"]
    expected = {
        local(item["hour"]): "<br>".join(f"{f['code']}: {f['message']}" for f in item["flags"])
        for item in flags
    }
    # the data give 14 stuck hours and one hour of PM2.5 above PM10
    assert len(expected) == 15
    assert "stuck: the same value 35.0" in expected["2026-11-11 00:00"]
    assert expected["2026-11-12 05:00"].startswith("pm25_above_pm10: PM2.5 25.0 ug/m3")
    marks = trace(figure_of(page.text), "automatic quality flag")
    assert dict(zip(marks["x"], marks["customdata"], strict=True)) == expected
    assert shown_text(page.text, "hours-shown") == "72"
    assert shown_text(page.text, "hours-flagged") == "15"
    assert shown_text(page.text, "hours-reviewed") == "0"


def test_page_shades_the_hours_of_active_reviews_and_not_restored_ones(flagged, reviewer):
    active = invalidate(
        reviewer, "2026-11-11T18:00:00+08:00", "2026-11-11T21:00:00+08:00", "calibration"
    )
    restored = invalidate(reviewer, "2026-11-10T02:00:00+08:00", "2026-11-10T04:00:00+08:00")
    assert reviewer.post(f"/v1/reviews/{restored['review_id']}/restore").status_code == 200
    page = reviewer.get(PAGE, params={"from": "2026-11-10", "to": "2026-11-12"}).text
    figure = figure_of(page)
    reviewed = trace(figure, "invalidated by review")
    assert reviewed["x"] == ["2026-11-11 18:00", "2026-11-11 19:00", "2026-11-11 20:00"]
    assert set(reviewed["customdata"]) == {
        f"invalidated by review {active['review_id']}: calibration"
    }
    bands = [(s["x0"], s["x1"]) for s in figure["layout"].get("shapes", [])]
    assert bands == [("2026-11-11 18:00", "2026-11-11 21:00")]
    # the restored hours are valid again: on the line, not marked
    valid = trace(figure, "valid hour")
    assert "2026-11-10 02:00" in valid["x"] and "2026-11-11 18:00" not in valid["x"]
    assert shown_text(page, "hours-reviewed") == "3"


def test_page_keeps_who_acted_and_their_comments_for_key_holders(flagged, reviewer):
    invalidate(
        reviewer,
        "2026-11-11T18:00:00+08:00",
        "2026-11-11T19:00:00+08:00",
        "other",
        "door of the shelter left open by contractor Zhang",
    )
    page = reviewer.get(PAGE).text
    # the reviews and audit tables are filled by the browser through the API with the key
    assert "contractor Zhang" not in page
    assert '<table id="reviews" data-testid="reviews">' in page
    assert '<table id="audit" data-testid="audit">' in page
    assert "sessionStorage" in page


MAINTENANCE_TEXT = (
    "station flag M: Produced while the analyser is under maintenance (维护) — not counted"
)


def test_page_draws_and_lists_the_values_the_station_flagged_without_counting_them(
    database_url, api
):
    day = datetime(2026, 11, 20, tzinfo=BEIJING_TZ)
    at = [day + timedelta(hours=h) for h in range(24)]
    normal = [(STATION, "pm25", at[h], 20.0 + h % 5, RECEIVED) for h in (*range(9), *range(12, 24))]
    maintenance = [(STATION, "pm25", at[h], 500.0 + h, RECEIVED) for h in (9, 10, 11)]
    calibration = [(STATION, "pm25", at[12] + timedelta(minutes=30), 480.0, RECEIVED)]
    elsewhere = [  # another parameter, and the day after the window
        (STATION, "pm10", at[9], 900.0, RECEIVED),
        (STATION, "pm25", at[23] + timedelta(hours=1), 700.0, RECEIVED),
    ]
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        write_batch(conn, normal)
        write_batch(conn, maintenance + elsewhere, flag=("invalid", "station:M"))
        write_batch(conn, calibration, flag=("invalid", "station:C"))
    settle(database_url)
    page = api.get(PAGE, params={"parameter": "pm25", "from": "2026-11-20", "to": "2026-11-20"})
    assert page.status_code == 200
    figure = figure_of(page.text)
    diamonds = trace(figure, "flagged by the station (not counted)")
    assert diamonds["marker"]["symbol"] == "diamond"
    assert diamonds["x"] == [
        "2026-11-20 09:00",
        "2026-11-20 10:00",
        "2026-11-20 11:00",
        "2026-11-20 12:30",
    ]
    assert diamonds["y"] == [509.0, 510.0, 511.0, 480.0]
    assert diamonds["customdata"] == [
        MAINTENANCE_TEXT,
        MAINTENANCE_TEXT,
        MAINTENANCE_TEXT,
        "station flag C: The analyser is calibrating (校准) — not counted",
    ]
    # the normal hours are still drawn, and the flagged values count toward none of them
    valid = trace(figure, "valid hour")
    assert [x for x in valid["x"] if x is not None] == [
        local_time(at[h], "Asia/Shanghai") for h in (*range(9), *range(12, 24))
    ]
    assert valid["y"][valid["x"].index("2026-11-20 12:00")] == 22.0
    assert shown_text(page.text, "hours-shown") == "21"
    assert shown_text(page.text, "station-flagged-count") == "4"
    table = re.search(r'data-testid="station-flagged">(.*?)</table>', page.text, re.S)
    assert table is not None, "no table of the values the station flagged"
    rows = re.findall(
        r"<tr><td>([^<]*)</td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td><td>([^<]*)</td></tr>",
        table.group(1),
    )
    maintenance_meaning = "Produced while the analyser is under maintenance (维护)"
    assert rows == [
        ("2026-11-20 09:00", "509.0", "M", maintenance_meaning),
        ("2026-11-20 10:00", "510.0", "M", maintenance_meaning),
        ("2026-11-20 11:00", "511.0", "M", maintenance_meaning),
        ("2026-11-20 12:30", "480.0", "C", "The analyser is calibrating (校准)"),
    ]
    assert "Values the station flagged" in page.text
    assert (
        "Values the station itself flagged (HJ 212 data flags) are kept but not counted; "
        "they are shown as grey diamonds." in page.text
    )


def test_page_without_station_flagged_values_has_no_diamonds_or_table(flagged, api):
    page = api.get(PAGE, params={"parameter": "pm25", "from": "2026-11-10", "to": "2026-11-12"})
    assert trace(figure_of(page.text), "flagged by the station (not counted)")["x"] == []
    assert 'data-testid="station-flagged"' not in page.text
    assert shown_text(page.text, "station-flagged-count") == "0"


def test_page_opens_on_the_last_seven_days_with_data_and_offers_every_reason(flagged, api):
    page = api.get(PAGE)
    assert page.status_code == 200
    assert "pm25 hourly means, 2026-11-06 to 2026-11-12" in page.text
    options = re.findall(r'<option value="([a-z_]+)">([^<]+)</option>', page.text)
    assert [code for code, _ in options] == list(REVIEW_REASONS)
    for code, text in options:
        assert html.unescape(text).startswith(REVIEW_REASONS[code])
    assert "The hours you invalidate leave every figure" in page.text
    assert "Restore</b> puts the hours back" in page.text
    assert "kept in the audit log" in page.text
    boxes = re.findall(r'name="parameters" value="([a-z0-9_]+)"( checked)?', page.text)
    assert boxes == [("pm25", " checked"), ("pm10", "")]


def test_water_section_without_data_opens_on_its_first_parameter_and_says_so(database_url, api):
    page = api.get("/stations/W-YANGTZE-01/review")
    assert page.status_code == 200
    assert shown_text(page.text, "hours-shown") == "0"
    assert "No hourly ph values" in page.text and "It has no reading of ph." in page.text
    assert 'data-testid="annual-figures"' not in page.text  # annual figures are air's


def test_station_page_links_to_its_review_page(flagged, api):
    page = api.get(f"/stations/{STATION}").text
    assert f'href="/stations/{STATION}/review" data-testid="review-link"' in page


def test_unknown_station_is_a_404_page(database_url, api):
    for station_id in ("999999-Z999", "no such station!"):
        page = api.get(f"/stations/{station_id}/review")
        assert page.status_code == 404
        assert "Station not found" in page.text


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"from": "2026-13-01"}, "from is not a calendar day"),
        ({"from": "yesterday"}, "from must be a day written YYYY-MM-DD"),
        ({"to": "2026-11-31"}, "to is not a calendar day"),
        ({"from": "2026-11-12", "to": "2026-11-10"}, "is before from"),
        ({"from": "2026-01-01", "to": "2026-11-10"}, "at most 92 days"),
        ({"parameter": "radon"}, "Unknown parameter &#x27;radon&#x27;"),
    ],
)
def test_bad_query_is_a_400_page_that_says_why(flagged, api, query, words):
    page = api.get(PAGE, params=query)
    assert page.status_code == 400
    assert "Cannot show this review window" in page.text
    assert words in page.text


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
def year_of_beijing(database_url: str) -> str:
    """A whole year of hourly PM2.5 at one Beijing station, settled: a valid annual figure."""
    write_rows(database_url, hourly_pm25(STATION, 41.0, YEAR))
    settle(database_url)
    return database_url


@pytest.fixture()
def server(year_of_beijing: str, tmp_path: Path) -> Iterator[str]:
    with serving(year_of_beijing, tmp_path / "api.log") as base:
        yield base


def beijing_annual(base: str) -> float:
    """Beijing's annual PM2.5 of YEAR as GET /v1/compliance/air gives it."""
    report = httpx.get(f"{base}/v1/compliance/air", params={"year": YEAR}, headers=ADMIN).json()[
        "reports"
    ][0]
    city = next(c for c in report["cities"] if c["id"] == "110000")
    assert city["coverage"]["valid"], city
    return float(city["annual_mean"])


def test_browser_invalidates_a_range_and_the_city_annual_figure_follows_the_api(
    chromium, server, year_of_beijing, make_key
):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    key = make_key("read", "review")
    before = beijing_annual(server)
    errors: list[str] = []
    refused: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    url = f"{server}{PAGE}?parameter=pm25&from={YEAR}-01-08&to={YEAR}-01-21"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def console(message: Any) -> None:
                if message.type != "error":
                    return
                # the one refusal this test provokes is logged by the browser as a 409
                (refused if "409" in message.text else errors).append(message.text)

            page.on("console", console)
            page.goto(url)
            page.wait_for_selector('#review-chart[data-ready="true"] svg.main-svg')
            shown = page.get_by_test_id
            assert shown("city-annual").inner_text() == f"{before:.1f}"
            assert "Enter an API key" in page.locator("#reviews-empty").inner_text()

            # dragging across the chart fills the range with whole hours of the window
            area = page.locator("#review-chart .nsewdrag").first.bounding_box()
            assert area is not None
            y = area["y"] + area["height"] / 2
            page.mouse.move(area["x"] + area["width"] * 0.3, y)
            page.mouse.down()
            page.mouse.move(area["x"] + area["width"] * 0.5, y, steps=8)
            page.mouse.up()
            page.wait_for_function("document.getElementById('range-from').value !== ''")
            start = shown("range-from").input_value()
            end = shown("range-to").input_value()
            assert f"{YEAR}-01-08T00:00" <= start < end <= f"{YEAR}-01-22T00:00"
            assert start.endswith(":00") and end.endswith(":00")

            # four winter days, typed (January keeps the 27 valid days a valid year needs)
            shown("api-key").fill(key)
            shown("range-from").fill(f"{YEAR}-01-12T00:00")
            shown("range-to").fill(f"{YEAR}-01-16T00:00")
            shown("reason").select_option("instrument_fault")
            shown("comment").fill("sample pump failed, heater off")
            shown("invalidate").click()
            message = page.locator('[data-testid="action-message"][data-state="ok"]')
            message.wait_for()
            assert "Invalidated 96 parameter-hours of pm25" in message.inner_text()
            # the tables reload through the API after the message: wait for them
            expect = sync_api.expect
            row = page.locator('[data-testid="reviews"] tbody tr')
            expect(row).to_have_count(1)
            expect(row.first.get_by_test_id("review-state")).to_have_text("active")
            expect(row.first).to_contain_text("instrument fault")
            audit = page.locator('[data-testid="audit"] tbody tr')
            expect(audit).to_have_count(1)
            expect(audit.first).to_contain_text("invalidate")
            expect(audit.first).to_contain_text("sample pump failed")

            # the same range again: the API's refusal, in words, and nothing changes
            shown("invalidate").click()
            page.locator('[data-testid="action-message"][data-state="error"]').wait_for()
            words = shown("action-message").inner_text()
            assert words.startswith("Nothing was invalidated. Overlaps active review(s)")
            expect(row).to_have_count(1)

            settle(year_of_beijing)  # the aggregation stage takes the hours out
            after = beijing_annual(server)
            assert after != before
            page.reload()
            page.wait_for_selector('#review-chart[data-ready="true"] svg.main-svg')
            assert shown("city-annual").inner_text() == f"{after:.1f}"
            assert shown("city-annual").inner_text() != f"{before:.1f}"
            assert shown("hours-reviewed").inner_text() == "96"
            # the key stayed in the tab (sessionStorage): the lists load without retyping
            assert shown("api-key").input_value() == key
            page.screenshot(path=str(ARTIFACTS / "dashboard-review.png"), full_page=True)

            # Restore puts the hours back
            row.first.get_by_test_id("restore").click()
            page.locator(
                '[data-testid="action-message"][data-state="ok"]', has_text="Restored"
            ).wait_for()
            expect(row.first.get_by_test_id("review-state")).to_contain_text("restored by test")
            expect(audit).to_have_count(2)
            expect(audit.first).to_contain_text("restore")
            settle(year_of_beijing)
            assert beijing_annual(server) == before
            page.reload()
            page.wait_for_selector('#review-chart[data-ready="true"] svg.main-svg')
            assert shown("city-annual").inner_text() == f"{before:.1f}"
        finally:
            browser.close()
    assert not errors, f"the browser reported errors: {errors}"
    assert len(refused) == 1
