"""The annual air report: HJ 663 statistics of every station and city (storage.compliance),
the national value, judged by the GB 3095 limits in force and the national PM2.5 targets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import psycopg

from reports.coverage import coverage, coverage_of
from schemas.reports import AirAnnual, AirReport, AirTrendPoint
from standards.assessment import AREA_MEAN_DECIMALS, STATISTIC_DECIMALS, published_area_mean
from standards.limits import complies, days_judged, limit_set_for_period
from standards.parameters import CATALOGUE
from standards.review import assessed_series
from standards.targets import NATIONAL_PM25_2027, NATIONAL_PM25_2035, Target
from standards.validity import ANNUAL_PERCENTILE, annual_coverage
from storage.aggregation import as_of as aggregation_as_of
from storage.compliance import (
    AirStation,
    AnnualStatistics,
    air_stations,
    city_annual_statistics,
    station_annual_statistics,
)

AIR_REPORT_PARAMETERS = ("pm25", "pm10", "so2", "no2")
_NO_DATA = AnnualStatistics("", None, 0, None, 0, (0,) * 12)


def daily_limit_periods(parameter: str, start: date, end: date) -> list[tuple[date, date, str]]:
    """The GB 3095 versions whose Grade II 24-hour limit of ``parameter`` judges the days of
    [start, end]: (first day, last day, name); a period before the first version is judged by
    the oldest (as the aggregation stage does)."""
    periods = []
    for first, last, limit_set in days_judged():
        d_from, d_to = max(start, first), min(end, last)
        if d_from <= d_to and limit_set.limit(parameter, "24h", 2) is not None:
            periods.append((d_from, d_to, limit_set.name))
    return periods


def _gaps(parameter: str, mean: float | None) -> tuple[float | None, float | None]:
    if parameter != "pm25" or mean is None:
        return None, None
    return (round(mean - NATIONAL_PM25_2027.value, 3), round(mean - NATIONAL_PM25_2035.value, 3))


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _met(target: Target, parameter: str, mean: float | None) -> bool | None:
    """The national mean as published (one decimal) against ``target``."""
    published = published_area_mean(mean)
    return None if parameter != "pm25" or published is None else target.is_met(published)


@dataclass(frozen=True)
class _Judging:
    """What every annual value of one report is measured and judged by."""

    year: int
    parameter: str
    unit: str
    rank: float  # percentile rank of the annual statistic (HJ 663)
    annual_limit: float | None  # Grade II, of the GB 3095 version in force


@dataclass(frozen=True)
class _City:
    name: str
    province: str | None


def _annual(
    judging: _Judging,
    level: Literal["station", "city"],
    key: str,
    name: str,
    found: AnnualStatistics | None,
    measured: AnnualStatistics | None = None,
    **extra: Any,
) -> AirAnnual:
    """The annual value of one station or city (``found``: of the assessed series, ``measured``:
    as measured, PM only), with its coverage and judgement."""
    row = found or _NO_DATA
    months = dict(zip(range(1, 13), row.valid_days_by_month, strict=True))
    rule = annual_coverage(months, judging.year)
    gap_28, gap_25 = _gaps(judging.parameter, row.mean)
    annual_limit = judging.annual_limit
    return AirAnnual(
        level=level,
        id=key,
        name=name,
        parameter=judging.parameter,
        unit=judging.unit,
        annual_mean=_round(row.mean),
        valid_days=row.valid_days,
        percentile=_round(row.percentile),
        percentile_rank=judging.rank,
        days_over_24h_limit=row.days_over_limit,
        annual_limit=annual_limit,
        # not assessed (null) when the year fails the coverage rule, as for the nation
        meets_grade_ii=None
        if row.mean is None or annual_limit is None or not rule.valid
        else complies(row.mean, annual_limit, STATISTIC_DECIMALS[judging.parameter]),
        gap_to_2027_target=gap_28,
        gap_to_2035_target=gap_25,
        coverage=coverage_of(rule, row.reviewed_hours),
        annual_mean_measured=_round(measured.mean) if measured else None,
        **extra,
    )


def _station_annuals(
    judging: _Judging,
    stations: list[AirStation],
    found: dict[str, AnnualStatistics],
    measured: dict[str, AnnualStatistics],
) -> list[AirAnnual]:
    return [
        _annual(
            judging,
            "station",
            station.station_id,
            station.name,
            found.get(station.station_id),
            measured.get(station.station_id),
            city_code=station.city_code,
            province=station.province,
        )
        for station in stations
    ]


def _cities_of(stations: list[AirStation]) -> dict[str, _City]:
    """The cities of the air stations by city code, named after their first station's city."""
    cities: dict[str, _City] = {}
    for station in stations:
        if station.city_code is not None:
            cities.setdefault(
                station.city_code, _City(station.city or station.city_code, station.province)
            )
    return cities


def _city_annuals(
    judging: _Judging,
    cities: dict[str, _City],
    found: dict[str, AnnualStatistics],
    measured: dict[str, AnnualStatistics],
) -> list[AirAnnual]:
    annuals = []
    for code, city in sorted(cities.items()):
        city_row = found.get(code)
        annuals.append(
            _annual(
                judging,
                "city",
                code,
                city.name,
                city_row,
                measured.get(code),
                city_code=code,
                province=city.province,
                stations=city_row.stations if city_row else 0,
            )
        )
    return annuals


def air_report(conn: psycopg.Connection, year: int, parameter: str = "pm25") -> AirReport:
    """Annual air quality of every station, every city and the nation for ``year`` (so far,
    for a year in progress), from the yearly statistics the aggregation stage keeps."""
    if parameter not in AIR_REPORT_PARAMETERS:
        raise ValueError(f"annual report parameter must be one of {AIR_REPORT_PARAMETERS}")
    start, end = date(year, 1, 1), date(year, 12, 31)
    as_of = aggregation_as_of(conn)
    limit_set = limit_set_for_period(start, end)
    daily_standards = [name for _, _, name in daily_limit_periods(parameter, start, end)]
    judging = _Judging(
        year=year,
        parameter=parameter,
        unit=CATALOGUE[parameter].unit,
        rank=ANNUAL_PERCENTILE[parameter][1],
        annual_limit=limit_set.limit(parameter, "annual", 2),
    )
    # PM10 and PM2.5 are judged with the sand-dust hours excluded, and given as measured too
    series = assessed_series(parameter)
    station_rows = station_annual_statistics(conn, series, year)
    city_rows = city_annual_statistics(conn, series, year)
    dusty = series != parameter
    station_measured = station_annual_statistics(conn, parameter, year) if dusty else {}
    city_measured = city_annual_statistics(conn, parameter, year) if dusty else {}
    registry = air_stations(conn)
    stations = _station_annuals(judging, registry, station_rows, station_measured)
    cities = _city_annuals(judging, _cities_of(registry), city_rows, city_measured)
    national = _national(cities, parameter, judging.unit, judging.rank, judging.annual_limit)
    if dusty:
        national.annual_mean_measured = _national_mean(cities, city_measured)
    assessed = [c for c in cities if c.coverage.valid and c.annual_mean is not None]
    meeting = sum(1 for c in assessed if c.meets_grade_ii)
    return AirReport(
        year=year,
        as_of=as_of,
        period_start=start,
        period_end=end,
        parameter=parameter,
        unit=judging.unit,
        standard=limit_set.name,
        daily_limit_standards=daily_standards,
        annual_limit=judging.annual_limit,
        sand_dust="excluded" if dusty else None,
        national=national,
        cities_assessed=len(assessed),
        cities_meeting_grade_ii=meeting,
        share_cities_meeting_grade_ii=round(100 * meeting / len(assessed), 2) if assessed else None,
        meets_2027_target=_met(NATIONAL_PM25_2027, parameter, national.annual_mean),
        meets_2035_target=_met(NATIONAL_PM25_2035, parameter, national.annual_mean),
        cities=cities,
        stations=stations,
    )


def _national_mean(cities: list[AirAnnual], measured: dict[str, AnnualStatistics]) -> float | None:
    """The national mean as measured: of the same cities as the assessed one."""
    values = [
        measured[c.id].mean
        for c in cities
        if c.coverage.valid and c.annual_mean is not None and c.id in measured
    ]
    return _round(statistics.fmean(v for v in values if v is not None)) if values else None


def _national(
    cities: list[AirAnnual],
    parameter: str,
    unit: str,
    rank: float,
    annual_limit: float | None,
) -> AirAnnual:
    """National value = mean of the annual means of the cities with valid coverage."""
    valid = [c.annual_mean for c in cities if c.coverage.valid and c.annual_mean is not None]
    with_data = [c for c in cities if c.annual_mean is not None]
    reasons = []
    if len(valid) < len(cities):
        reasons.append(
            f"{len(cities) - len(valid)} of {len(cities)} cities have no valid "
            "annual mean and are left out"
        )
    mean = statistics.fmean(valid) if valid else None
    gap_28, gap_25 = _gaps(parameter, mean)
    return AirAnnual(
        level="national",
        id="national",
        name="National (cities with valid data)",
        parameter=parameter,
        unit=unit,
        annual_mean=_round(mean),
        valid_days=max((c.valid_days for c in with_data), default=0),
        percentile=None,
        percentile_rank=rank,
        days_over_24h_limit=None,
        annual_limit=annual_limit,
        meets_grade_ii=None
        if mean is None or annual_limit is None
        else complies(mean, annual_limit, AREA_MEAN_DECIMALS),
        gap_to_2027_target=gap_28,
        gap_to_2035_target=gap_25,
        cities=len(valid),
        coverage=coverage(
            len(cities),
            len(valid),
            bool(valid),
            reasons if valid else ["no city has a valid annual mean"],
        ),
    )


def air_trend_point(report: AirReport) -> AirTrendPoint:
    """The year's point of a multi-year air trend, taken from its report."""
    return AirTrendPoint(
        year=report.year,
        national_annual_mean=report.national.annual_mean,
        national_valid=report.national.coverage.valid,
        share_cities_meeting_grade_ii=report.share_cities_meeting_grade_ii,
        standard=report.standard,
        annual_limit=report.annual_limit,
    )
