"""Series as the API gives them: a station's readings, and the hourly, daily, monthly and
annual values of a station or a city, each with its coverage (HJ 663, GB 3095 Table 4)."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time
from itertools import groupby
from typing import Literal
from zoneinfo import ZoneInfo

import psycopg

from reports.coverage import coverage, coverage_of
from reports.quality import HOUR, flags_of_hours, flags_of_reading, flags_out, reading_flags
from schemas.series import AggregateSeries, AggregateValue, Period, Reading
from standards.parameters import CATALOGUE
from standards.quality import FlagsByHour, QualityFlag, QualityThresholds
from standards.validity import HOURLY_MIN_MINUTES, annual_coverage, monthly_coverage
from storage.aggregation import as_of as aggregation_as_of
from storage.series import (
    CityPeriod,
    MonthOfDays,
    Range,
    StationDay,
    StationHour,
    StoredReading,
    city_daily_means,
    city_hourly_means,
    city_valid_days_by_month,
    station_daily_means,
    station_hourly_means,
    station_valid_days_by_month,
)

RULES: dict[tuple[str, Period], str] = {
    ("station", "hourly"): "mean of the station's valid readings in the UTC hour; valid with "
    f"at least {HOURLY_MIN_MINUTES} minutes of data (GB 3095 Table 4)",
    ("station", "daily"): "mean of the valid hourly means of the station's local day; valid "
    "with at least the parameter's minimum of valid hours (20 for air pollutants)",
    ("station", "monthly"): "mean of the valid daily means of the month; valid with at least "
    "27 valid days (25 in February)",
    ("station", "annual"): "mean of the valid daily means of the year; valid with at least "
    "324 valid days and every month valid",
    ("city", "hourly"): "mean of the valid hourly means of the city's stations (HJ 663); "
    "valid when at least one station has a valid hour",
    ("city", "daily"): "mean of the valid daily means of the city's stations that day "
    "(HJ 663); valid when at least one station has a valid daily mean",
    ("city", "monthly"): "mean of the city's daily values in the month (HJ 663); valid with "
    "at least 27 days with a city value (25 in February)",
    ("city", "annual"): "mean of the city's daily values in the year (HJ 663); valid with at "
    "least 324 days with a city value and every month valid",
}


def unit_of(parameter: str) -> str:
    """The stored unit of a parameter ("" for one outside the catalogue)."""
    known = CATALOGUE.get(parameter)
    return known.unit if known else ""


def reading(row: StoredReading, quality_flags: Iterable[QualityFlag] = ()) -> Reading:
    """A stored reading as the API gives it: time in UTC, value with its unit, and the
    quality flags of its hour."""
    station_id, parameter, ts, value, flag, flag_reason = row
    return Reading(
        station_id=station_id,
        parameter=parameter,
        ts=ts.astimezone(UTC),
        value=value,
        unit=unit_of(parameter),
        flag=flag,  # type: ignore[arg-type]
        flag_reason=flag_reason,
        quality_flags=flags_out(quality_flags),
    )


def flagged_readings(
    conn: psycopg.Connection,
    station_id: str,
    rows: Sequence[StoredReading],
    thresholds: QualityThresholds,
) -> list[Reading]:
    """Readings of one station as the API gives them, each with the automatic quality flags
    of its hour (standards.quality)."""
    flags = reading_flags(conn, station_id, rows, thresholds)
    return [reading(row, flags_of_reading(flags, row[1], row[2])) for row in rows]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone))


def _utc_hour(bucket: date | datetime) -> datetime:
    assert isinstance(bucket, datetime)  # city hours are UTC datetimes
    return bucket.astimezone(UTC)


def _station_hourly(
    rows: Sequence[StationHour], parameter: str, flags: FlagsByHour | None
) -> list[AggregateValue]:
    """A station's hourly values; with ``flags``, each carries its hour's quality flags."""
    values = []
    for hour in rows:
        # minutes of data: readings x the station's interval, at most the hour
        minutes = min(60, hour.readings * hour.reading_interval_s // 60)
        if hour.review_id is not None or hour.valid:  # coverage says "1 hour removed by review"
            reasons = []
        else:
            reasons = [
                f"{_plural(minutes, 'minute')} of data in the hour ({HOURLY_MIN_MINUTES} needed)"
            ]
        values.append(
            AggregateValue(
                period_start=hour.bucket.astimezone(UTC),
                mean=hour.mean,
                min=hour.min,
                max=hour.max,
                coverage=coverage(
                    60, minutes, hour.valid, reasons, 0 if hour.review_id is None else 1
                ),
                quality_flags=None
                if flags is None
                else flags_out(flags.get((parameter, hour.bucket), [])),
            )
        )
    return values


def _station_daily(rows: Sequence[StationDay], timezone: str) -> list[AggregateValue]:
    values = []
    for day in rows:
        reasons = (
            []
            if day.valid_hours >= day.daily_min_hours
            else [f"{_plural(day.valid_hours, 'valid hour')} ({day.daily_min_hours} needed)"]
        )
        values.append(
            AggregateValue(
                period_start=_local_midnight(day.day, timezone),
                mean=day.mean,
                min=day.min,
                max=day.max,
                coverage=coverage(24, day.valid_hours, not reasons, reasons, day.reviewed_hours),
            )
        )
    return values


def _city_values(
    rows: Sequence[CityPeriod], start_of: Callable[[date | datetime], datetime], what: str
) -> list[AggregateValue]:
    """City hourly or daily values: expected = the city's stations with data in the range,
    observed = stations with a valid value in the period."""
    return [
        AggregateValue(
            period_start=start_of(row.period),
            mean=row.mean,
            min=row.min,
            max=row.max,
            coverage=coverage(
                row.stations,
                row.valid_stations,
                row.valid_stations > 0,
                [] if row.valid_stations else [f"no station has {what}"],
            ),
        )
        for row in rows
    ]


def _monthly(rows: Sequence[MonthOfDays], timezone: str) -> list[AggregateValue]:
    return [
        AggregateValue(
            period_start=_local_midnight(row.month, timezone),
            mean=row.total / row.valid_days if row.total is not None and row.valid_days else None,
            min=row.min,
            max=row.max,
            coverage=coverage_of(monthly_coverage(row.valid_days, row.month.year, row.month.month)),
        )
        for row in rows
    ]


def _annual(rows: Sequence[MonthOfDays], timezone: str) -> list[AggregateValue]:
    values = []
    for year, months in groupby(rows, key=lambda row: row.month.year):
        month_rows = list(months)
        valid_days = sum(row.valid_days for row in month_rows)
        total = sum(row.total for row in month_rows if row.total is not None)
        lows = [row.min for row in month_rows if row.min is not None]
        highs = [row.max for row in month_rows if row.max is not None]
        rule = annual_coverage({row.month.month: row.valid_days for row in month_rows}, year)
        values.append(
            AggregateValue(
                period_start=_local_midnight(date(year, 1, 1), timezone),
                mean=total / valid_days if valid_days else None,
                min=min(lows, default=None),
                max=max(highs, default=None),
                coverage=coverage_of(rule),
            )
        )
    return values


def _whole_periods(period: Period, span: Range) -> Range:
    """Monthly and annual values cover every whole month or year the range touches."""
    assert span.start_day is not None and span.end_day is not None
    start, end = span.start_day, span.end_day
    if period == "monthly":
        start = start.replace(day=1)
        end = end.replace(day=calendar.monthrange(end.year, end.month)[1])
    elif period == "annual":
        start, end = start.replace(month=1, day=1), end.replace(month=12, day=31)
    return Range(start_day=start, end_day=end)


def station_aggregates(
    conn: psycopg.Connection,
    station_id: str,
    timezone: str,
    parameter: str,
    period: Period,
    span: Range,
    thresholds: QualityThresholds | None = None,
) -> list[AggregateValue]:
    """Values of one station's parameter per period in ``span``, oldest first; only periods
    with data appear. With ``thresholds``, hourly values carry their quality flags."""
    if period == "hourly":
        hours = station_hourly_means(conn, station_id, parameter, span)
        flags = None
        if thresholds is not None:
            flags = (
                flags_of_hours(
                    conn,
                    station_id,
                    [parameter],
                    hours[0].bucket,
                    hours[-1].bucket + HOUR,
                    thresholds,
                )
                if hours
                else {}
            )
        return _station_hourly(hours, parameter, flags)
    if period == "daily":
        return _station_daily(station_daily_means(conn, station_id, parameter, span), timezone)
    months = station_valid_days_by_month(conn, station_id, parameter, _whole_periods(period, span))
    return _monthly(months, timezone) if period == "monthly" else _annual(months, timezone)


def city_aggregates(
    conn: psycopg.Connection,
    city_code: str,
    timezone: str,
    parameter: str,
    period: Period,
    span: Range,
) -> list[AggregateValue]:
    """Values of a city's parameter per period in ``span`` by HJ 663, oldest first."""
    if period == "hourly":
        return _city_values(
            city_hourly_means(conn, city_code, parameter, span),
            _utc_hour,
            "a valid hour",
        )
    if period == "daily":
        return _city_values(
            city_daily_means(conn, city_code, parameter, span),
            lambda day: _local_midnight(day, timezone),
            "a valid daily mean",
        )
    months = city_valid_days_by_month(conn, city_code, parameter, _whole_periods(period, span))
    return _monthly(months, timezone) if period == "monthly" else _annual(months, timezone)


def aggregate_series(
    conn: psycopg.Connection,
    level: Literal["station", "city"],
    subject_id: str,
    name: str | None,
    timezone: str,
    parameter: str,
    period: Period,
    span: Range,
    thresholds: QualityThresholds | None = None,
) -> AggregateSeries:
    """The series of a station (``subject_id`` a station id) or a city (a city code): its
    values per period in ``span`` with their coverage, unit and rule; with ``thresholds``,
    a station's hourly values carry their quality flags."""
    as_of = aggregation_as_of(conn)
    if level == "station":
        items = station_aggregates(conn, subject_id, timezone, parameter, period, span, thresholds)
    else:
        items = city_aggregates(conn, subject_id, timezone, parameter, period, span)
    return AggregateSeries(
        level=level,
        id=subject_id,
        name=name,
        parameter=parameter,
        unit=unit_of(parameter),
        period=period,
        timezone=timezone,
        rule=RULES[level, period],
        as_of=as_of,
        items=items,
    )
