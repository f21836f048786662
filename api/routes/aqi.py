"""/v1/stations/{station_id}/aqi and /v1/cities/{city_code}/aqi: the HJ 633 AQI of a station
or a city, hourly (real-time) and daily, latest and history.

The answers are assembled by reports.aqi (concentrations from storage.aqi_queries, rules from
standards.aqi); this module reads the request (subject, period, range) and says 404 or 422.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import PlainValidator, WithJsonSchema

from api.deps import Conn, ReadAccess
from api.errors import ApiError, problem_responses
from reports import (
    daily_aqi_history,
    hourly_aqi_history,
    latest_aqi,
    station_subject,
)
from schemas.aqi_api import AqiHistory, AqiLatest, AqiPeriod, AqiSubject
from schemas.stations import STATION_ID_PATTERN
from storage.aqi_queries import air_stations_of_city
from storage.stations import get_station

router = APIRouter(prefix="/v1", tags=["aqi"])

DEFAULT_HISTORY_HOURS = 24
DEFAULT_HISTORY_DAYS = 30
# one response stays small: a month of hours, a year of days
MAX_HISTORY_HOURS = 31 * 24
MAX_HISTORY_DAYS = 366
# times outside these dates are refused before any arithmetic on them
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(2999, 12, 31)


def _time_or_date(value: object) -> datetime | date:
    """A query bound: an ISO 8601 date, or an ISO 8601 time with offset (one error, not one
    per alternative, when it is neither)."""
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("expected an ISO 8601 date or time with offset") from None
    if moment.tzinfo is None:
        raise ValueError("a time needs an offset, e.g. 2026-03-01T08:00:00+08:00")
    return moment


TimeOrDate = Annotated[
    datetime | date,
    PlainValidator(_time_or_date),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}
    ),
]
StationIdPath = Annotated[str, Path(pattern=STATION_ID_PATTERN, examples=["110000-A001"])]
# city codes are free text in the registry; only what PostgreSQL text cannot hold is refused
CityCodePath = Annotated[str, Path(max_length=100, pattern=r"^[^\x00-\x1f]+$", examples=["110000"])]
PeriodQuery = Annotated[
    AqiPeriod,
    Query(description="hourly: the real-time AQI of each hour; daily: of each local day"),
]
StartQuery = Annotated[
    TimeOrDate | None,
    Query(
        description="first hour or day: ISO 8601 time with offset, or a date (its local "
        "midnight). Default: end minus 23 hours (hourly) or 29 days (daily)",
        examples=["2026-03-01T00:00:00+08:00"],
    ),
]
EndQuery = Annotated[
    TimeOrDate | None,
    Query(
        description="last hour or day, inclusive: ISO 8601 time with offset, or a date (its "
        "last hour). Default: now",
        examples=["2026-03-01T23:00:00+08:00"],
    ),
]

_RULES = """
Hourly (real-time) AQI of an hour (the hour is named by its start): the valid 1-hour means of
PM2.5, PM10, SO2, NO2, CO and O3; HJ 633-2012 also reads the 24-hour moving means of PM2.5 and
PM10 (and of SO2 for its SO2 1-hour > 800 rule; each needs 20 valid hours of the 24 ending with
the hour) and the O3 8-hour moving mean (6 valid hours of 8). Daily AQI of a local day: the valid
daily means (20 valid hours) of PM2.5, PM10, SO2, NO2 and CO, the O3 daily maximum 8-hour mean
(windows inside the day, ending 08:00 … 24:00, each with 6 valid hours) and, for HJ 633-2012,
the O3 daily maximum 1-hour mean of a valid O3 day. The HJ 633 version is the one in force at
the hour's start or on the day (Beijing time). A city's concentration of each statistic is the
mean of its stations' valid values (HJ 663). Concentrations in ug/m3, CO in mg/m3.
"""


def _invalid(field: str, value: object, reason: str) -> RequestValidationError:
    """A 422 problem that names the query field, like FastAPI's own validation errors."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": reason, "input": str(value)}]
    )


def _check_supported(field: str, value: datetime | date | None) -> None:
    if value is None:
        return
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise _invalid(field, value, f"must lie between {EARLIEST_DAY} and {LATEST_DAY}")


def _floor_hour(instant: datetime) -> datetime:
    # the rollups' hour buckets are UTC hours
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_range(
    start: datetime | date | None, end: datetime | date | None, tz: ZoneInfo
) -> tuple[datetime, datetime]:
    """First and last hour start (UTC) of an hourly history."""
    _check_supported("start", start)
    _check_supported("end", end)
    if isinstance(end, datetime):
        last = _floor_hour(end)
    elif end is not None:
        last = _floor_hour(datetime.combine(end + timedelta(days=1), time(), tz)) - timedelta(
            hours=1
        )
    else:
        last = _floor_hour(datetime.now(UTC))
    if isinstance(start, datetime):
        first = _floor_hour(start)
    elif start is not None:
        first = _floor_hour(datetime.combine(start, time(), tz))
    else:
        first = last - timedelta(hours=DEFAULT_HISTORY_HOURS - 1)
    if first > last:
        raise _invalid("end", end or "now", "end is before start")
    if last - first >= timedelta(hours=MAX_HISTORY_HOURS):
        raise _invalid("start", start, f"an hourly history spans at most {MAX_HISTORY_HOURS} hours")
    return first, last


def _day_range(
    start: datetime | date | None, end: datetime | date | None, tz: ZoneInfo
) -> tuple[date, date]:
    """First and last local day of a daily history."""
    _check_supported("start", start)
    _check_supported("end", end)

    def local_day(value: datetime | date) -> date:
        return value.astimezone(tz).date() if isinstance(value, datetime) else value

    last = local_day(end) if end is not None else datetime.now(tz).date()
    first = (
        local_day(start) if start is not None else last - timedelta(days=DEFAULT_HISTORY_DAYS - 1)
    )
    if first > last:
        raise _invalid("end", end or "today", "end is before start")
    if (last - first).days >= MAX_HISTORY_DAYS:
        raise _invalid("start", start, f"a daily history spans at most {MAX_HISTORY_DAYS} days")
    return first, last


def _latest(conn: psycopg.Connection, subject: AqiSubject, period: AqiPeriod) -> AqiLatest:
    latest = latest_aqi(conn, subject, period)
    if latest is None:
        raise ApiError(
            404, f"{subject.level} {subject.id!r} has no valid {period} AQI data", "no-aqi-data"
        )
    return latest


def _history(
    conn: psycopg.Connection,
    subject: AqiSubject,
    period: AqiPeriod,
    start: datetime | date | None,
    end: datetime | date | None,
) -> AqiHistory:
    tz = ZoneInfo(subject.timezone)
    if period == "hourly":
        return hourly_aqi_history(conn, subject, *_hour_range(start, end, tz))
    return daily_aqi_history(conn, subject, *_day_range(start, end, tz))


def _station(conn: psycopg.Connection, station_id: str) -> AqiSubject:
    station = get_station(conn, station_id)
    if station is None:
        raise ApiError(404, f"station {station_id!r} does not exist", "station-not-found")
    if station.kind != "air":
        raise ApiError(
            404,
            f"station {station_id!r} is a {station.kind} station; AQI is for air stations",
            "not-an-air-station",
        )
    return station_subject(station)


def _city(conn: psycopg.Connection, city_code: str) -> AqiSubject:
    city = air_stations_of_city(conn, city_code)
    if city is None:
        raise ApiError(404, f"no air station has city code {city_code!r}", "city-not-found")
    return AqiSubject(
        level="city",
        id=city.city_code,
        name=city.name,
        timezone=city.timezone,
        stations=list(city.station_ids),
    )


@router.get(
    "/stations/{station_id}/aqi/latest",
    response_model=AqiLatest,
    responses=problem_responses(401, 403, 404, 422),
    description="The AQI of the station's latest hour (or local day) with valid data.\n" + _RULES,
)
def station_aqi_latest(
    station_id: StationIdPath, conn: Conn, _: ReadAccess, period: PeriodQuery = "hourly"
) -> AqiLatest:
    return _latest(conn, _station(conn, station_id), period)


@router.get(
    "/stations/{station_id}/aqi",
    response_model=AqiHistory,
    responses=problem_responses(401, 403, 404, 422),
    description="The AQI of each hour (or local day) of a range with valid data; at most "
    f"{MAX_HISTORY_HOURS} hours or {MAX_HISTORY_DAYS} days.\n" + _RULES,
)
def station_aqi_history(
    station_id: StationIdPath,
    conn: Conn,
    _: ReadAccess,
    period: PeriodQuery = "hourly",
    start: StartQuery = None,
    end: EndQuery = None,
) -> AqiHistory:
    return _history(conn, _station(conn, station_id), period, start, end)


@router.get(
    "/cities/{city_code}/aqi/latest",
    response_model=AqiLatest,
    responses=problem_responses(401, 403, 404, 422),
    description="The AQI of the city's latest hour (or local day) with valid data at any "
    "of its air stations.\n" + _RULES,
)
def city_aqi_latest(
    city_code: CityCodePath, conn: Conn, _: ReadAccess, period: PeriodQuery = "hourly"
) -> AqiLatest:
    return _latest(conn, _city(conn, city_code), period)


@router.get(
    "/cities/{city_code}/aqi",
    response_model=AqiHistory,
    responses=problem_responses(401, 403, 404, 422),
    description="The city's AQI of each hour (or local day) of a range with valid data; at "
    f"most {MAX_HISTORY_HOURS} hours or {MAX_HISTORY_DAYS} days.\n" + _RULES,
)
def city_aqi_history(
    city_code: CityCodePath,
    conn: Conn,
    _: ReadAccess,
    period: PeriodQuery = "hourly",
    start: StartQuery = None,
    end: EndQuery = None,
) -> AqiHistory:
    return _history(conn, _city(conn, city_code), period, start, end)
