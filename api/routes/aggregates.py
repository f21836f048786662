"""/v1/stations/{station_id}/aggregates and /v1/cities/{city_code}/aggregates: hourly,
daily, monthly and annual values with their coverage (HJ 663, GB 3095 Table 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import Conn, ReadAccess, Thresholds
from api.errors import ApiError, problem_responses
from api.routes.readings import invalid_query, station_or_404
from reports import aggregate_series
from schemas.series import AggregateSeries, DateOrInstant, ParameterName, Period
from storage.series import Range, city_by_code

router = APIRouter(prefix="/v1", tags=["aggregates"])

# Responses are not paginated: an hourly series is kept to a year (8,784 values at most).
HOURLY_MAX_SPAN = timedelta(days=366)

ParameterQuery = Annotated[ParameterName, Query(description="e.g. pm25, no2, nh3_n")]
PeriodQuery = Annotated[Period, Query(description="length of each value's period")]
StartQuery = Annotated[
    DateOrInstant,
    Query(
        description="first day (YYYY-MM-DD, the local day, included); for hourly also an "
        "ISO 8601 datetime with offset (included). Monthly and annual values cover every "
        "whole month or year the range touches."
    ),
]
EndQuery = Annotated[
    DateOrInstant,
    Query(
        description="last day (YYYY-MM-DD, included); for hourly also an ISO 8601 datetime "
        "with offset (excluded)"
    ),
]


def checked_range(period: Period, start: date | datetime, end: date | datetime) -> Range:
    """The query's bounds, or a 422 naming the bad parameter."""
    if isinstance(start, datetime) and isinstance(end, datetime):
        if period != "hourly":
            raise invalid_query("start", f"{period} values take dates (YYYY-MM-DD), not times")
        span = Range(start_ts=start, end_ts=end)
        length = end - start
    elif not isinstance(start, datetime) and not isinstance(end, datetime):
        span = Range(start_day=start, end_day=end)
        length = end - start + timedelta(days=1)  # both days included
    else:
        raise invalid_query("end", "start and end must both be dates or both datetimes")
    if span.is_reversed():
        raise invalid_query("end", "end must not be before start")
    if period == "hourly" and length > HOURLY_MAX_SPAN:
        raise invalid_query("end", "an hourly series spans at most 366 days")
    return span


@dataclass(frozen=True)
class SeriesQuery:
    """What a series request asks for: a parameter, a period length and a checked range."""

    parameter: str
    period: Period
    span: Range


def series_query(
    parameter: ParameterQuery,
    start: StartQuery,
    end: EndQuery,
    period: PeriodQuery = "daily",
) -> SeriesQuery:
    return SeriesQuery(parameter, period, checked_range(period, start, end))


AskedSeries = Annotated[SeriesQuery, Depends(series_query)]


@router.get(
    "/stations/{station_id}/aggregates",
    response_model=AggregateSeries,
    responses=problem_responses(401, 403, 404, 422),
)
def station_series(
    station_id: str, conn: Conn, _: ReadAccess, query: AskedSeries, thresholds: Thresholds
) -> AggregateSeries:
    """Values of one station per hour (UTC), local day, month or year, each with its
    coverage: how many values stand behind it and whether it is valid. Only periods with
    data appear. Hourly values carry the automatic quality flags of their hour
    (``quality_flags``), which change no value."""
    station = station_or_404(conn, station_id)
    return aggregate_series(
        conn,
        "station",
        station.station_id,
        station.name,
        station.timezone,
        query.parameter,
        query.period,
        query.span,
        thresholds,
    )


@router.get(
    "/cities/{city_code}/aggregates",
    response_model=AggregateSeries,
    responses=problem_responses(401, 403, 404, 422),
)
def city_series(city_code: str, conn: Conn, _: ReadAccess, query: AskedSeries) -> AggregateSeries:
    """Values of a city by HJ 663: hourly and daily values are the means of its stations'
    valid values, monthly and annual values the means of the city's daily values. Coverage
    of an hourly or daily value counts stations; of a monthly or annual value, days."""
    city = city_by_code(conn, city_code)
    if city is None:
        raise ApiError(404, f"no station has city code {city_code!r}", "city-not-found")
    name, timezone = city
    return aggregate_series(
        conn, "city", city_code, name, timezone, query.parameter, query.period, query.span
    )
