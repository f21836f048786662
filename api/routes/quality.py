"""/v1/stations/{station_id}/flags: a station's hours that carry automatic quality flags
(stuck value, spike, PM2.5 above PM10, out of range, run of zeros), judged when read with
the AIRWATER_QUALITY_* thresholds; flags change no figure."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from api.deps import Conn, ReadAccess, Thresholds
from api.errors import problem_responses
from api.routes.readings import invalid_query, station_or_404
from reports import station_flags
from schemas.series import DateOrInstant, ParameterName, StationFlags

router = APIRouter(prefix="/v1/stations", tags=["quality"])

# Not paginated, like an hourly series: a query spans a year at most.
FLAGS_MAX_SPAN = timedelta(days=366)
# Far beyond any reading (those before 1990 are refused), far from datetime's limits, which
# the hours judged around the range would otherwise cross.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _instant(value: date | datetime, timezone: str, end: bool) -> datetime:
    """A datetime as given; a date as the station's local midnight starting it (``end``:
    the midnight ending it, the day being included)."""
    if isinstance(value, datetime):
        return value
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone))


@router.get(
    "/{station_id}/flags",
    response_model=StationFlags,
    responses=problem_responses(401, 403, 404, 422),
)
def flags(
    station_id: str,
    conn: Conn,
    _: ReadAccess,
    thresholds: Thresholds,
    start: Annotated[
        DateOrInstant,
        Query(
            alias="from",
            description="first local day (YYYY-MM-DD, the station's day, included) or an "
            "ISO 8601 datetime with offset (included)",
        ),
    ],
    end: Annotated[
        DateOrInstant,
        Query(
            alias="to",
            description="last local day (YYYY-MM-DD, included) or an ISO 8601 datetime with "
            "offset (excluded); at most 366 days after from",
        ),
    ],
    parameter: Annotated[
        ParameterName | None, Query(description="one parameter, e.g. pm25; all when absent")
    ] = None,
) -> StationFlags:
    """The station's hours in the range whose hourly mean carries an automatic quality flag,
    by hour then parameter, each flag a code and a sentence naming the numbers. Flags are
    judged when read (the hours before and after the range count for runs and spikes) and
    never change a mean, a daily or an annual figure."""
    if type(start) is type(end) and start > end:
        raise invalid_query("to", "to must not be before from")
    station = station_or_404(conn, station_id)
    try:
        first = _instant(start, station.timezone, end=False)
        last = _instant(end, station.timezone, end=True)
    except OverflowError:
        first = last = EARLIEST - HOUR
    if first < EARLIEST or last > LATEST:
        raise invalid_query("from", "from and to must lie between the years 1900 and 9000")
    if first > last:
        raise invalid_query("to", "to must not be before from")
    if last - first > FLAGS_MAX_SPAN:
        raise invalid_query("to", "a flags query spans at most 366 days")
    parameters = None if parameter is None else [parameter]
    items = station_flags(conn, station.station_id, first, last, thresholds, parameters)
    return StationFlags(
        station_id=station.station_id,
        start=first.astimezone(UTC),
        end=last.astimezone(UTC),
        items=items,
    )
