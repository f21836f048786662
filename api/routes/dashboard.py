"""The dashboard: HTML pages at ``/`` (where the nation stands against the targets in a year,
the current one so far by default) and ``/stations/{station_id}`` (one station's series and
AQI), and the bundled plotly.js.

Always on and without login: the pages show aggregates only — annual, daily and hourly means,
AQI, water classes, and alert events without their subscriptions, addresses or secrets. The
numbers come from the functions behind the REST API (the reports layer, AQI included), so page
and API cannot disagree.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from functools import lru_cache

import psycopg
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from plotly.offline import get_plotlyjs, get_plotlyjs_version
from psycopg_pool import ConnectionPool, PoolTimeout

from api.dashboard import figures
from api.dashboard.pages import (
    LatestAqi,
    Overview,
    StationView,
    format_day_or_hour,
    message_page,
    no_data_page,
    overview_page,
    station_page,
)
from api.dashboard.review_page import BadReviewQuery, review_page, review_view
from api.deps import SettingsDep, Thresholds
from api.routes.compliance import FIRST_YEAR, LAST_YEAR
from reports import (
    air_report,
    air_trend_point,
    daily_aqis,
    hourly_aqis,
    station_aggregates,
    station_subject,
    status,
    today_in_china,
    water_report,
)
from schemas.alerts import AlertEvent, value_unit
from schemas.aqi_api import Aqi
from schemas.assessment import RankedCity, Status
from schemas.stations import STATION_ID_PATTERN, Station
from standards.assessment import SIX_POLLUTANTS
from storage.alert_events import EventSelection, alert_events_newest_first
from storage.aqi_queries import latest_day_with_aqi_data, latest_hour_with_aqi_data
from storage.report_years import WATER_PARAMETERS, years_with_daily_values
from storage.series import Range
from storage.stations import get_station, list_stations

router = APIRouter(tags=["dashboard"], include_in_schema=False)

PLOTLY_JS = "/static/plotly.min.js"
TREND_YEARS = 20  # as many years as one compliance request may span
RECENT_ALERTS = 20
HOURLY_WINDOW = timedelta(days=7)
DAILY_WINDOW_DAYS = 90
DB_WAIT_S = 10.0  # as long as an API request waits for a pooled connection


def _plotly_src() -> str:
    # the version in the URL lets browsers keep the 4.8 MB file for as long as it is current
    return f"{PLOTLY_JS}?v={get_plotlyjs_version()}"


@lru_cache(maxsize=1)
def _plotly_bundle() -> tuple[bytes, bytes]:
    """plotly.min.js of the installed plotly package, plain and gzip-compressed."""
    source = get_plotlyjs().encode()
    return source, gzip.compress(source, compresslevel=6)


@router.get(PLOTLY_JS)
def plotly_js(request: Request) -> Response:
    """The plotly.js bundled with the installed ``plotly`` package (no CDN, no copy in the
    repository)."""
    etag = f'"plotly-{get_plotlyjs_version()}"'
    headers = {
        "Cache-Control": "public, max-age=604800",
        "ETag": etag,
        "Vary": "Accept-Encoding",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    source, compressed = _plotly_bundle()
    media_type = "text/javascript; charset=utf-8"
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            compressed, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"}
        )
    return Response(source, media_type=media_type, headers=headers)


@contextmanager
def _connection(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    with pool.connection(timeout=DB_WAIT_S) as conn:
        yield conn


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status)


def _unavailable(exc: Exception) -> HTMLResponse:
    return _html(
        message_page(
            "Database unavailable",
            f"The dashboard cannot reach the database ({type(exc).__name__}); "
            "try again in a moment.",
        ),
        503,
    )


# --- overview ---------------------------------------------------------------------------


def _recent_alerts(conn: psycopg.Connection) -> list[AlertEvent] | None:
    """The newest alert events of every subscription (as GET /v1/alerts shows them to an
    admin key); None without an outbox."""
    try:
        with conn.transaction():
            rows = alert_events_newest_first(conn, EventSelection(), None, RECENT_ALERTS)
    except psycopg.errors.UndefinedTable:
        return None
    return [AlertEvent(**row, unit=value_unit(row["target"], row["parameter"])) for row in rows]


def _opening_year(air_years: Sequence[int], years: Sequence[int], today: date) -> int | None:
    """The year the front page opens on: the current one (Beijing) while the database has air
    data of it or of the year before (early January shows the new year beside the last);
    otherwise the latest year with data; None without data."""
    if today.year in air_years or today.year - 1 in air_years:
        return today.year
    return years[-1] if years else None


def _status_of_year(
    conn: psycopg.Connection, year: int, today: date
) -> tuple[Status | None, list[RankedCity]]:
    """GET /v1/status of ``year`` and its cities attaining all six pollutants, by rank;
    nothing for a year that has not begun."""
    if year > today.year:
        return None, []
    found = status(conn, year, today)
    return found, list(found.air.attaining)


def _overview(conn: psycopg.Connection, year_text: str | None) -> HTMLResponse:
    today = today_in_china()
    pm25_years = years_with_daily_values(conn, ("pm25",))
    air_years = years_with_daily_values(conn, SIX_POLLUTANTS)
    years_with_data = set(air_years) | set(years_with_daily_values(conn, WATER_PARAMETERS))
    opening = _opening_year(air_years, sorted(years_with_data), today)
    if opening is None:
        return _html(no_data_page(len(list_stations(conn))))
    years = sorted(years_with_data | {opening})
    if year_text is None:
        year = opening
    else:
        if not re.fullmatch(r"\d{4}", year_text) or not FIRST_YEAR <= int(year_text) <= LAST_YEAR:
            return _html(
                message_page(
                    "Not a year",
                    f"year must be a calendar year from {FIRST_YEAR} to {LAST_YEAR}.",
                    years,
                ),
                400,
            )
        year = int(year_text)
        if year not in years:
            return _html(
                message_page(f"No data for {year}", "Choose a year with data.", years), 404
            )
    # the trend shows complete years: a year in progress has no annual mean yet
    trend_years = [y for y in pm25_years if y < today.year][-TREND_YEARS:]
    reports = {y: air_report(conn, y) for y in trend_years}
    air = reports.get(year) or air_report(conn, year)
    water = water_report(conn, year)
    year_status, attaining = _status_of_year(conn, year, today)
    names = {s.id: s.name for s in air.stations}
    names.update({s.station_id: s.name for s in water.sections})
    overview = Overview(
        year=year,
        years=years,
        air=air,
        trend=[air_trend_point(reports[y]) for y in trend_years],
        water=water,
        alerts=_recent_alerts(conn),
        station_names=names,
        status=year_status,
        attaining=attaining,
    )
    return _html(overview_page(overview, _plotly_src()))


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, year: str | None = None) -> HTMLResponse:
    """Where the country stands in a year (the current one by default, so far): the status
    of GET /v1/status, the city ranking and attainment, PM2.5 against 35 / 28 / 25, water
    classes, recent alerts."""
    try:
        with _connection(request) as conn:
            return _overview(conn, year)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        return _unavailable(exc)


# --- station ----------------------------------------------------------------------------


def _air_view(conn: psycopg.Connection, station: Station) -> StationView:
    """The station's last 7 days of hourly PM2.5 and 90 days of daily PM2.5, each up to its
    latest period with AQI data, and its latest hourly and daily AQI (as GET
    /v1/stations/{id}/aqi/latest computes them)."""
    ids = [station.station_id]
    tz = station.timezone
    subject = station_subject(station)
    hourly = []
    latest_hourly = None
    last_hour = latest_hour_with_aqi_data(conn, ids)
    if last_hour is not None:
        span = Range(
            start_ts=last_hour - HOURLY_WINDOW + timedelta(hours=1),
            end_ts=last_hour + timedelta(hours=1),
        )
        hourly = station_aggregates(conn, station.station_id, tz, "pm25", "hourly", span)
        latest_hourly = _latest(
            hourly_aqis(conn, subject, last_hour, last_hour),
            format_day_or_hour(last_hour, tz, True),
        )
    days = []
    latest_daily = None
    last_day = latest_day_with_aqi_data(conn, ids)
    if last_day is not None:
        span = Range(start_day=last_day - timedelta(days=DAILY_WINDOW_DAYS - 1), end_day=last_day)
        items = station_aggregates(conn, station.station_id, tz, "pm25", "daily", span)
        days = figures.pm25_days(items, tz)
        latest_daily = _latest(daily_aqis(conn, subject, last_day, last_day), last_day.isoformat())
    return StationView(
        station=station,
        hourly=hourly,
        days=days,
        latest_hourly=latest_hourly,
        latest_daily=latest_daily,
    )


def _latest(aqis: list[Aqi], when: str) -> LatestAqi | None:
    return LatestAqi(when=when, aqi=aqis[-1]) if aqis else None


def _water_view(conn: psycopg.Connection, station: Station) -> StationView:
    """The section's row of the latest water report."""
    years = years_with_daily_values(conn, WATER_PARAMETERS)
    section = None
    if years:
        report = water_report(conn, years[-1])
        section = next((s for s in report.sections if s.station_id == station.station_id), None)
    return StationView(
        station=station,
        hourly=[],
        days=[],
        latest_hourly=None,
        latest_daily=None,
        water_section=section,
        water_year=years[-1] if years else None,
    )


@router.get("/stations/{station_id}", response_class=HTMLResponse)
def station_dashboard(request: Request, station_id: str) -> HTMLResponse:
    """One station: hourly PM2.5, daily PM2.5 in AQI colours, the latest AQI (air); the
    annual class (surface water)."""
    not_found = _html(
        message_page("Station not found", f"There is no station {station_id!r}."), 404
    )
    if not re.fullmatch(STATION_ID_PATTERN, station_id):
        return not_found
    try:
        with _connection(request) as conn:
            station = get_station(conn, station_id)
            if station is None:
                return not_found
            view = _air_view(conn, station) if station.kind == "air" else _water_view(conn, station)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        return _unavailable(exc)
    return _html(station_page(view, _plotly_src()))


@router.get("/stations/{station_id}/review", response_class=HTMLResponse)
def station_review(
    request: Request,
    station_id: str,
    thresholds: Thresholds,
    settings: SettingsDep,
    parameter: str | None = None,
    first_day: str | None = Query(None, alias="from"),
    last_day: str | None = Query(None, alias="to"),
) -> HTMLResponse:
    """One station's review: the hourly series of a parameter over local days (the last 7
    with data by default) with flags and invalidated hours, the invalidate form, the
    reviews and the audit log (the last two read by the browser with the operator's key)."""
    not_found = _html(
        message_page("Station not found", f"There is no station {station_id!r}."), 404
    )
    if not re.fullmatch(STATION_ID_PATTERN, station_id):
        return not_found
    try:
        with _connection(request) as conn:
            station = get_station(conn, station_id)
            if station is None:
                return not_found
            view = review_view(conn, station, parameter, first_day, last_day, thresholds)
    except BadReviewQuery as exc:
        return _html(message_page("Cannot show this review window", str(exc)), 400)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        return _unavailable(exc)
    return _html(review_page(view, _plotly_src(), settings.public_read))
