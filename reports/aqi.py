"""HJ 633 AQI answers of a station or a city: concentrations from storage.aqi_queries, the AQI
arithmetic and the version in force (by Beijing time) from standards.aqi, made into the
schemas.aqi_api models that the REST API and the dashboard give out."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from schemas.aqi_api import (
    Aqi,
    AqiHistory,
    AqiLatest,
    AqiPeriod,
    AqiSubject,
    Colour,
    ConcentrationOut,
    IaqiOut,
    Statistic,
)
from schemas.stations import Station
from standards.aqi import (
    DAILY_INPUT_KEYS,
    HOURLY_INPUT_KEYS,
    AqiResult,
    AqiVersion,
    Iaqi,
    aqi_category,
    aqi_version_in_force,
    daily_aqi,
    hourly_aqi,
)
from standards.parameters import CATALOGUE
from storage.aggregation import as_of as aggregation_as_of
from storage.aqi_queries import (
    AQI_PARAMETERS,
    DAILY_MEAN_PARAMETERS,
    MOVING_8H_PARAMETERS,
    MOVING_24H_PARAMETERS,
    AqiConcentration,
    daily_aqi_concentrations,
    hourly_aqi_concentrations,
    latest_day_with_aqi_data,
    latest_hour_with_aqi_data,
)

_HOURLY_STATISTICS: dict[str, Statistic] = {
    **{p: "1h_mean" for p in AQI_PARAMETERS},
    **{f"{p}_24h": "24h_moving_mean" for p in MOVING_24H_PARAMETERS},
    **{f"{p}_8h": "8h_moving_mean" for p in MOVING_8H_PARAMETERS},
}
_DAILY_STATISTICS: dict[str, Statistic] = {
    **{p: "daily_mean" for p in DAILY_MEAN_PARAMETERS},
    "o3_8h": "daily_max_8h_mean",
    "o3_1h": "daily_max_1h_mean",
}


def station_subject(station: Station) -> AqiSubject:
    """An air station as the subject of an AQI answer."""
    return AqiSubject(
        level="station",
        id=station.station_id,
        name=station.name,
        timezone=station.timezone,
        stations=[station.station_id],
    )


def _parameter(key: str) -> str:
    return key.split("_")[0]  # "pm25_24h" → "pm25", "o3_8h" → "o3"


def _inputs_read(version: AqiVersion, period: AqiPeriod) -> list[str]:
    """The AQI inputs ``version`` reads in ``period``, in the order of its IAQIs."""
    hourly = period == "hourly"
    items = version.hourly_items if hourly else version.daily_items
    accepted = HOURLY_INPUT_KEYS if hourly else DAILY_INPUT_KEYS
    keys = [item.input_key for item in items]
    # a substitution rule may read one more input (HJ 633-2012 real time: SO2 24-hour mean)
    for rule in version.above_top_rules.values():
        if rule.use_iaqi_of in accepted and rule.use_iaqi_of not in keys:
            keys.append(rule.use_iaqi_of)
    return keys


def _iaqi_out(pollutant: str, found: Iaqi) -> IaqiOut:
    return IaqiOut(
        pollutant=pollutant,
        iaqi=found.value,
        display=None if found.value is None else str(found),
        beyond_index=found.beyond_index,
        concentration=found.concentration,
        unit=CATALOGUE[_parameter(pollutant)].unit,
        breakpoints=found.breakpoints,
        rule=found.rule,
    )


def _concentration_out(
    key: str, period: AqiPeriod, found: AqiConcentration | None
) -> ConcentrationOut:
    statistics = _HOURLY_STATISTICS if period == "hourly" else _DAILY_STATISTICS
    return ConcentrationOut(
        key=key,
        parameter=_parameter(key),
        statistic=statistics[key],
        value=None if found is None else found.value,
        unit=CATALOGUE[_parameter(key)].unit,
        stations=0 if found is None else found.stations,
        valid_hours=None if found is None else found.valid_hours,
        valid_windows=None if found is None else found.valid_windows,
    )


def _aqi_out(
    result: AqiResult,
    version: AqiVersion,
    period: AqiPeriod,
    inputs: dict[str, AqiConcentration],
    start: datetime,
    end: datetime,
    day: date | None = None,
) -> Aqi:
    assert result.aqi is not None
    category = aqi_category(result.aqi, version)
    return Aqi(
        start=start,
        end=end,
        day=day,
        version=result.version,
        aqi=result.aqi,
        display=str(result),
        beyond_index=result.beyond_index,
        level=category.level,
        category=category.name,
        category_zh=category.name_zh,
        colour=Colour(rgb=category.colour, hex="#{:02x}{:02x}{:02x}".format(*category.colour)),
        # standards.aqi names none at AQI <= 50 (HJ 633 §4.3): reported as null
        primary_pollutants=list(result.primary_pollutants) or None,
        iaqi=[_iaqi_out(pollutant, found) for pollutant, found in result.iaqi.items()],
        missing=list(result.missing),
        concentrations=[
            _concentration_out(key, period, inputs.get(key))
            for key in _inputs_read(version, period)
        ],
    )


def hourly_aqis(
    conn: psycopg.Connection, subject: AqiSubject, first: datetime, last: datetime
) -> list[Aqi]:
    """The real-time AQI of each hour from ``first`` to ``last`` (hour starts, inclusive) that
    has one, with times in the subject's timezone."""
    tz = ZoneInfo(subject.timezone)
    items = []
    for hour, inputs in hourly_aqi_concentrations(conn, subject.stations, first, last).items():
        result = hourly_aqi({key: c.value for key, c in inputs.items()}, hour)
        if result.aqi is None:  # only inputs this version does not read
            continue
        version = aqi_version_in_force(hour)
        end = hour + timedelta(hours=1)
        items.append(
            _aqi_out(result, version, "hourly", inputs, hour.astimezone(tz), end.astimezone(tz))
        )
    return items


def daily_aqis(conn: psycopg.Connection, subject: AqiSubject, first: date, last: date) -> list[Aqi]:
    """The daily AQI of each local day from ``first`` to ``last`` (inclusive) that has one."""
    tz = ZoneInfo(subject.timezone)
    items = []
    for day, inputs in daily_aqi_concentrations(conn, subject.stations, first, last).items():
        result = daily_aqi({key: c.value for key, c in inputs.items()}, day)
        if result.aqi is None:
            continue
        start = datetime.combine(day, time(), tz)
        end = datetime.combine(day + timedelta(days=1), time(), tz)
        items.append(_aqi_out(result, aqi_version_in_force(day), "daily", inputs, start, end, day))
    return items


def latest_aqi(
    conn: psycopg.Connection, subject: AqiSubject, period: AqiPeriod
) -> AqiLatest | None:
    """The AQI of the subject's latest hour (or local day) with AQI data; None when there is
    none."""
    as_of = aggregation_as_of(conn)
    items: list[Aqi] = []
    if period == "hourly":
        hour = latest_hour_with_aqi_data(conn, subject.stations)
        if hour is not None:
            items = hourly_aqis(conn, subject, hour, hour)
    else:
        day = latest_day_with_aqi_data(conn, subject.stations)
        if day is not None:
            items = daily_aqis(conn, subject, day, day)
    if not items:
        return None
    return AqiLatest(subject=subject, period=period, as_of=as_of, latest=items[-1])


def hourly_aqi_history(
    conn: psycopg.Connection, subject: AqiSubject, first: datetime, last: datetime
) -> AqiHistory:
    """The hourly AQI history from hour start ``first`` to ``last`` (UTC, inclusive)."""
    tz = ZoneInfo(subject.timezone)
    start, end = first.astimezone(tz), (last + timedelta(hours=1)).astimezone(tz)
    as_of = aggregation_as_of(conn)
    items = hourly_aqis(conn, subject, first, last)
    return AqiHistory(
        subject=subject, period="hourly", start=start, end=end, as_of=as_of, items=items
    )


def daily_aqi_history(
    conn: psycopg.Connection, subject: AqiSubject, first: date, last: date
) -> AqiHistory:
    """The daily AQI history from local day ``first`` to ``last`` (inclusive)."""
    tz = ZoneInfo(subject.timezone)
    start = datetime.combine(first, time(), tz)
    end = datetime.combine(last + timedelta(days=1), time(), tz)
    as_of = aggregation_as_of(conn)
    items = daily_aqis(conn, subject, first, last)
    return AqiHistory(
        subject=subject, period="daily", start=start, end=end, as_of=as_of, items=items
    )
