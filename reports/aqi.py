"""HJ 633 AQI answers of a station or a city: concentrations from storage.aqi_queries, the AQI
arithmetic and the version in force (by Beijing time) from standards.aqi, made into the
schemas.aqi_api models that the REST API and the dashboard give out. An hour or day whose
AQI a rule makes not computable (standards.aqi.AqiResult.not_computable) is listed as such
beside the AQIs, never dropped nor given the lower maximum of the other IAQIs."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from schemas.aqi_api import (
    Aqi,
    AqiHistory,
    AqiLatest,
    AqiNotComputable,
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


def _not_computable_out(
    result: AqiResult,
    version: AqiVersion,
    period: AqiPeriod,
    inputs: dict[str, AqiConcentration],
    start: datetime,
    end: datetime,
    day: date | None = None,
) -> AqiNotComputable:
    assert result.not_computable is not None
    return AqiNotComputable(
        start=start,
        end=end,
        day=day,
        version=result.version,
        reason=result.not_computable,
        iaqi=[_iaqi_out(pollutant, found) for pollutant, found in result.iaqi.items()],
        missing=list(result.missing),
        concentrations=[
            _concentration_out(key, period, inputs.get(key))
            for key in _inputs_read(version, period)
        ],
    )


Judged = tuple[list[Aqi], list[AqiNotComputable]]


def _hourly(
    conn: psycopg.Connection, subject: AqiSubject, first: datetime, last: datetime
) -> Judged:
    tz = ZoneInfo(subject.timezone)
    items, not_computable = [], []
    for hour, inputs in hourly_aqi_concentrations(conn, subject.stations, first, last).items():
        result = hourly_aqi({key: c.value for key, c in inputs.items()}, hour)
        version = aqi_version_in_force(hour)
        start, end = hour.astimezone(tz), (hour + timedelta(hours=1)).astimezone(tz)
        if result.not_computable is not None:
            not_computable.append(
                _not_computable_out(result, version, "hourly", inputs, start, end)
            )
        elif result.aqi is not None:  # else only inputs this version does not read
            items.append(_aqi_out(result, version, "hourly", inputs, start, end))
    return items, not_computable


def _daily(conn: psycopg.Connection, subject: AqiSubject, first: date, last: date) -> Judged:
    tz = ZoneInfo(subject.timezone)
    items, not_computable = [], []
    for day, inputs in daily_aqi_concentrations(conn, subject.stations, first, last).items():
        result = daily_aqi({key: c.value for key, c in inputs.items()}, day)
        version = aqi_version_in_force(day)
        start = datetime.combine(day, time(), tz)
        end = datetime.combine(day + timedelta(days=1), time(), tz)
        if result.not_computable is not None:
            not_computable.append(
                _not_computable_out(result, version, "daily", inputs, start, end, day)
            )
        elif result.aqi is not None:
            items.append(_aqi_out(result, version, "daily", inputs, start, end, day))
    return items, not_computable


def hourly_aqis(
    conn: psycopg.Connection, subject: AqiSubject, first: datetime, last: datetime
) -> list[Aqi]:
    """The real-time AQI of each hour from ``first`` to ``last`` (hour starts, inclusive) that
    has one, with times in the subject's timezone."""
    return _hourly(conn, subject, first, last)[0]


def daily_aqis(conn: psycopg.Connection, subject: AqiSubject, first: date, last: date) -> list[Aqi]:
    """The daily AQI of each local day from ``first`` to ``last`` (inclusive) that has one."""
    return _daily(conn, subject, first, last)[0]


# How far back the latest AQI is looked for when the latest period with data has none.
LATEST_LOOKBACK_HOURS = 24
LATEST_LOOKBACK_DAYS = 31


def latest_aqi(
    conn: psycopg.Connection, subject: AqiSubject, period: AqiPeriod
) -> AqiLatest | None:
    """The AQI of the subject's latest hour (or local day) with AQI data; None when there is
    none. When that period's AQI is not computable, the latest AQI of the periods before it
    (within a day of hours, or a month of days) is given, with the not computable period."""
    as_of = aggregation_as_of(conn)
    judged: Judged = ([], [])
    if period == "hourly":
        hour = latest_hour_with_aqi_data(conn, subject.stations)
        if hour is not None:
            judged = _hourly(conn, subject, hour, hour)
            if judged[1]:
                earlier = hour - timedelta(hours=LATEST_LOOKBACK_HOURS)
                judged = _hourly(conn, subject, earlier, hour)
    else:
        day = latest_day_with_aqi_data(conn, subject.stations)
        if day is not None:
            judged = _daily(conn, subject, day, day)
            if judged[1]:
                judged = _daily(conn, subject, day - timedelta(days=LATEST_LOOKBACK_DAYS), day)
    items, not_computable = judged
    if not items:
        return None
    later = [n for n in not_computable if n.start > items[-1].start]
    return AqiLatest(
        subject=subject,
        period=period,
        as_of=as_of,
        latest=items[-1],
        not_computable=later[-1] if later else None,
    )


def hourly_aqi_history(
    conn: psycopg.Connection, subject: AqiSubject, first: datetime, last: datetime
) -> AqiHistory:
    """The hourly AQI history from hour start ``first`` to ``last`` (UTC, inclusive)."""
    tz = ZoneInfo(subject.timezone)
    start, end = first.astimezone(tz), (last + timedelta(hours=1)).astimezone(tz)
    as_of = aggregation_as_of(conn)
    items, not_computable = _hourly(conn, subject, first, last)
    return AqiHistory(
        subject=subject,
        period="hourly",
        start=start,
        end=end,
        as_of=as_of,
        items=items,
        not_computable=not_computable,
    )


def daily_aqi_history(
    conn: psycopg.Connection, subject: AqiSubject, first: date, last: date
) -> AqiHistory:
    """The daily AQI history from local day ``first`` to ``last`` (inclusive)."""
    tz = ZoneInfo(subject.timezone)
    start = datetime.combine(first, time(), tz)
    end = datetime.combine(last + timedelta(days=1), time(), tz)
    as_of = aggregation_as_of(conn)
    items, not_computable = _daily(conn, subject, first, last)
    return AqiHistory(
        subject=subject,
        period="daily",
        start=start,
        end=end,
        as_of=as_of,
        items=items,
        not_computable=not_computable,
    )
