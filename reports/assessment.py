"""Where the country stands in a year (so far): the six-pollutant assessment of every station,
city, province and the nation, attainment, the comprehensive index and its ranking, good days,
the same period of the previous year and what the rest of the year must average
(standards.assessment), from the levels the aggregation stage keeps (storage.assessment)."""

from __future__ import annotations

import statistics
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, TypeVar

import psycopg

from reports.coverage import coverage, coverage_of
from schemas.assessment import (
    AirAssessment,
    AirStatus,
    AqiDaysOut,
    AreaLevel,
    AssessedArea,
    IndexOut,
    PeriodFigures,
    RankedCity,
    RestOfYearOut,
    StatisticOut,
    Status,
    WaterStatus,
)
from standards.aqi import BEIJING
from standards.assessment import (
    AREA_MEAN_DECIMALS,
    GOOD_DAY_MAX_AQI,
    HEAVY_DAY_MIN_AQI,
    JUDGED,
    ROUNDING_RULE,
    SERIES,
    SIX_POLLUTANTS,
    STATISTIC_DECIMALS,
    STATISTICS,
    Period,
    Statistic,
    change_percent,
    comprehensive_index,
    grade_ii_limit,
    period_coverage,
    published,
    published_area_mean,
    rest_of_year,
    same_period_last_year,
    share,
    share_published,
    year_period,
)
from standards.limits import LimitSet, limit_set_for_period
from standards.parameters import CATALOGUE
from standards.targets import NATIONAL_PM25_2027, SURFACE_WATER_2027
from standards.validity import MONTH_NAMES
from standards.water import Waterbody, excellent_share, median_class, water_class
from storage.aggregation import as_of as aggregation_as_of
from storage.assessment import (
    AqiDays,
    Statistics,
    city_aqi_days,
    city_period_statistics,
    city_yearly_series,
    city_years_stamp,
    station_yearly_series,
    water_classes,
    water_last_month,
    water_means_to_month,
    water_years_stamp,
)
from storage.compliance import AirStation, AnnualStatistics, air_stations, water_sections

__all__ = ["air_assessment", "status", "today_in_china"]

_WORDS = {
    "annual_mean": "annual mean of daily means",
    "o3_8h": "90th percentile of daily maximum 8-hour means",
}
ASSESSMENT_RULES = (
    "HJ 663-2013: SO2 and NO2 annual mean and 98th percentile, PM10 and PM2.5 annual mean and "
    "95th percentile of daily means, CO 95th percentile of daily means, O3 90th percentile of "
    "daily maximum 8-hour means; a city's daily value is the mean of its stations'.",
    "A city attains the standard when all six judged statistics (SO2, NO2, PM10, PM2.5 annual "
    "means; CO 95th percentile against the 24-hour limit; O3 90th percentile against the 8-hour "
    "limit) meet Grade II of the GB 3095 version in force at the end of the period; a city "
    "missing a pollutant or failing its coverage is not assessed (null).",
    "Comprehensive index = Σ published statistic ÷ Grade II limit over the six; lower ranks "
    "better; the largest term is the main contributor.",
    "Good days: daily AQI ≤ 100; heavily polluted or worse: daily AQI > 200 (HJ 633 version "
    "in force that day); national and provincial shares are means of the cities' shares.",
    "National and provincial values are means of the cities with a valid statistic.",
    "A year in progress is assessed over 1 January … today (Beijing) and compared with the same "
    "calendar days of the previous year by the same limits; a statistic of a part of a year "
    "needs every whole month valid and 324/365 of its days (rounded up).",
    ROUNDING_RULE,
)


def today_in_china() -> date:
    """Today in Beijing time, the day national figures are dated by."""
    return datetime.now(BEIJING).date()


_SAND_DUST_WORDS = {
    "excluded": ", sand-dust hours excluded (assessed)",
    "measured": ", as measured (sand-dust hours included; not judged)",
    None: "",
}


def _words(statistic: Statistic) -> str:
    if statistic.series == "o3_8h":
        return _WORDS["o3_8h"]
    if statistic.kind == "annual_mean":
        words = _WORDS["annual_mean"]
    else:
        words = f"{statistic.rank:g}th percentile of daily means"
    return words + _SAND_DUST_WORDS[statistic.sand_dust]


def _months(row: AnnualStatistics | None) -> dict[int, int]:
    if row is None:
        return {}
    return dict(zip(range(1, 13), row.valid_days_by_month, strict=True))


def _value(statistic: Statistic, row: AnnualStatistics | None) -> float | None:
    if row is None:
        return None
    return row.mean if statistic.kind == "annual_mean" else row.percentile


def _r3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(frozen=True)
class _Judging:
    period: Period
    limits: LimitSet


def _aqi_out(found: AqiDays | None) -> AqiDaysOut | None:
    if found is None:
        return None
    return AqiDaysOut(
        days=found.days,
        good_days=found.good,
        heavy_days=found.heavy,
        not_computable=found.not_computable,
        good_day_share=share(found.good, found.days),
        heavy_day_share=share(found.heavy, found.days),
    )


def _judgement(
    judging: _Judging, figures: Sequence[StatisticOut]
) -> tuple[bool | None, list[str], IndexOut | None]:
    """Attainment, why not assessed, and the comprehensive index of one area's statistics."""
    by_key = {s.key: s for s in figures}
    reasons: list[str] = []
    judged: dict[str, float] = {}
    for pollutant in SIX_POLLUTANTS:
        found = by_key[JUDGED[pollutant].key]
        if found.published is None:
            reasons.append(f"{pollutant}: no data")
        elif not found.coverage.valid:
            reasons.append(f"{pollutant}: " + "; ".join(found.coverage.reasons))
        else:
            judged[pollutant] = found.published
    if reasons:
        return None, reasons, None
    attains = all(by_key[JUDGED[p].key].meets_grade_ii for p in SIX_POLLUTANTS)
    index = comprehensive_index(judged, judging.limits)
    return (
        attains,
        [],
        IndexOut(
            value=index.value,
            terms=dict(index.terms),
            shares=dict(index.shares),
            largest_contributor=index.largest,
        ),
    )


def _figures(
    judging: _Judging, stats: Mapping[str, AnnualStatistics], aqi: AqiDays | None
) -> PeriodFigures:
    """A station's or city's figures of the period from its statistics of each series."""
    out = []
    for statistic in STATISTICS:
        row = stats.get(statistic.series)
        value = _value(statistic, row)
        rule = period_coverage(_months(row), judging.period)
        shown = published(statistic.pollutant, value)
        limit = grade_ii_limit(statistic, judging.limits)
        out.append(
            StatisticOut(
                key=statistic.key,
                pollutant=statistic.pollutant,
                sand_dust=statistic.sand_dust,
                statistic=_words(statistic),
                value=_r3(value),
                published=shown,
                unit=CATALOGUE[statistic.pollutant].unit,
                limit=limit,
                meets_grade_ii=None
                if shown is None or limit is None or not rule.valid
                else shown <= limit,
                valid_days=row.valid_days if row else 0,
                coverage=coverage_of(rule),
            )
        )
    attains, reasons, index = _judgement(judging, out)
    return PeriodFigures(
        start=judging.period.start,
        end=judging.period.end,
        days=judging.period.days,
        statistics=out,
        attains=attains,
        not_assessed=reasons,
        index=index,
        aqi_days=_aqi_out(aqi),
    )


def _area_figures(judging: _Judging, members: Sequence[PeriodFigures]) -> PeriodFigures:
    """A province's or the nation's figures: each statistic the mean of its cities' valid
    values (published to one decimal), AQI days summed, shares the mean of the cities'."""
    out = []
    for position, statistic in enumerate(STATISTICS):
        values = [
            m.statistics[position].value
            for m in members
            if m.statistics[position].coverage.valid and m.statistics[position].value is not None
        ]
        mean = statistics.fmean(v for v in values if v is not None) if values else None
        shown = published_area_mean(mean)
        limit = grade_ii_limit(statistic, judging.limits)
        left_out = len(members) - len(values)
        reasons = [f"{left_out} of {len(members)} cities have no valid value"] if left_out else []
        out.append(
            StatisticOut(
                key=statistic.key,
                pollutant=statistic.pollutant,
                sand_dust=statistic.sand_dust,
                statistic=f"mean of the cities' {_words(statistic)}",
                value=_r3(mean),
                published=shown,
                unit=CATALOGUE[statistic.pollutant].unit,
                limit=limit,
                meets_grade_ii=None if shown is None or limit is None else shown <= limit,
                valid_days=max((m.statistics[position].valid_days for m in members), default=0),
                coverage=coverage(len(members), len(values), bool(values), reasons),
            )
        )
    _, reasons, index = _judgement(judging, out)
    with_aqi = [m.aqi_days for m in members if m.aqi_days is not None and m.aqi_days.days]
    aqi = None
    if with_aqi:
        good = [a.good_day_share for a in with_aqi if a.good_day_share is not None]
        heavy = [a.heavy_day_share for a in with_aqi if a.heavy_day_share is not None]
        aqi = AqiDaysOut(
            days=sum(a.days for a in with_aqi),
            good_days=sum(a.good_days for a in with_aqi),
            heavy_days=sum(a.heavy_days for a in with_aqi),
            not_computable=sum(a.not_computable for a in with_aqi),
            good_day_share=round(statistics.fmean(good), 1) if good else None,
            heavy_day_share=round(statistics.fmean(heavy), 1) if heavy else None,
        )
    return PeriodFigures(
        start=judging.period.start,
        end=judging.period.end,
        days=judging.period.days,
        statistics=out,
        attains=None,
        not_assessed=reasons,
        index=index,
        aqi_days=aqi,
    )


def _changes(this: PeriodFigures, last: PeriodFigures | None) -> dict[str, float | None]:
    """Same-period change in % of each published statistic, the index, the good-day share."""
    if last is None:
        return {}
    before = {s.key: s.published for s in last.statistics}
    changes = {s.key: change_percent(s.published, before.get(s.key)) for s in this.statistics}
    changes["index"] = change_percent(
        this.index.value if this.index else None, last.index.value if last.index else None
    )
    changes["good_day_share"] = change_percent(
        this.aqi_days.good_day_share if this.aqi_days else None,
        last.aqi_days.good_day_share if last.aqi_days else None,
    )
    return changes


def _pm25_mean(figures: PeriodFigures) -> float | None:
    for s in figures.statistics:
        if s.key == "pm25_mean":
            return s.value if s.coverage.valid else None
    return None


def _rest_of_year(
    period: Period, figures: PeriodFigures, target: str, value: float, decimals: int, strict: bool
) -> RestOfYearOut | None:
    mean = _pm25_mean(figures)
    if mean is None:
        return None
    rest = rest_of_year(mean, period, value, decimals, "<" if strict else "<=")
    return RestOfYearOut(
        target=target,
        days_left=rest.days_left,
        must_average=rest.bound,
        comparator="at most" if rest.inclusive else "below",
        reachable=rest.reachable,
    )


def _rank(areas: list[AssessedArea]) -> dict[str, int]:
    """Competition ranking (1, 2, 2, 4) by index, lowest first; areas without one unranked."""
    ranked = sorted((a.period.index.value, a.id) for a in areas if a.period.index is not None)
    ranks: dict[str, int] = {}
    for position, (value, key) in enumerate(ranked):
        previous = ranked[position - 1] if position else None
        ranks[key] = ranks[previous[1]] if previous and previous[0] == value else position + 1
    return ranks


@dataclass(frozen=True)
class _City:
    code: str
    name: str
    province: str | None
    stations: int


def _cities_of(registry: Iterable[AirStation]) -> dict[str, _City]:
    counts: dict[str, int] = defaultdict(int)
    first: dict[str, AirStation] = {}
    for station in registry:
        if station.city_code is not None:
            counts[station.city_code] += 1
            first.setdefault(station.city_code, station)
    return {
        code: _City(code, s.city or code, s.province, counts[code])
        for code, s in sorted(first.items())
    }


# Statistics of parts of past years (the same period of the previous year), by period and the
# stamp of that year's kept city-years: recomputed only when one of them changed.
_PERIODS_KEPT = 8
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class _Kept(Generic[_K, _V]):
    """The last few figures computed, by a key that holds the stamp of the data they come
    from (a changed stamp is a new key): shared by the API's threads."""

    def __init__(self, size: int = _PERIODS_KEPT) -> None:
        self._items: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: _K, compute: Callable[[], _V]) -> _V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        found = compute()
        with self._lock:
            self._items[key] = found
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return found


_periods: _Kept[tuple[Period, tuple[int, int]], Statistics] = _Kept()
# Class I–III shares of January … month by year, month, sections and the year's stamp.
_water_shares: _Kept[
    tuple[int, int, frozenset[tuple[str, str | None]], tuple[int, int]], tuple[int, float | None]
] = _Kept()
_water_last_months: _Kept[tuple[int, tuple[int, int]], int | None] = _Kept()


def _period_statistics(conn: psycopg.Connection, period: Period, provisional: bool) -> Statistics:
    """Each city's statistics of the six series over ``period``: the kept city-years for a
    whole year and for the year in progress (they hold its days so far: readings from the
    future are refused at the door), otherwise computed over the period's days."""
    year = period.start.year
    if period.whole_year or provisional:
        return city_yearly_series(conn, SERIES, year)
    fractions = {s.series: s.rank / 100 for s in STATISTICS if s.kind == "percentile" and s.rank}
    return _periods.get(
        (period, city_years_stamp(conn, SERIES, year)),
        lambda: city_period_statistics(conn, SERIES, fractions, period.start, period.end),
    )


def air_assessment(
    conn: psycopg.Connection, year: int, today: date | None = None, with_stations: bool = True
) -> AirAssessment:
    """The six-pollutant assessment of ``year`` (so far, when it is in progress on ``today``,
    Beijing time by default) beside the same period of the previous year. A year that has
    not begun is a ValueError."""
    period, provisional = year_period(year, today or today_in_china())
    last = same_period_last_year(period)
    as_of = aggregation_as_of(conn)
    limits = limit_set_for_period(period.start, period.end)
    judging, judging_last = _Judging(period, limits), _Judging(last, limits)
    registry = air_stations(conn)
    cities_of = _cities_of(registry)

    now = _period_statistics(conn, period, provisional)
    before = _period_statistics(conn, last, provisional=False)
    aqi_now = city_aqi_days(conn, period.start, period.end, GOOD_DAY_MAX_AQI, HEAVY_DAY_MIN_AQI)
    aqi_last = city_aqi_days(conn, last.start, last.end, GOOD_DAY_MAX_AQI, HEAVY_DAY_MIN_AQI)

    city_limit = limits.limit("pm25", "annual", 2)
    cities: list[AssessedArea] = []
    for code, city in cities_of.items():
        this = _figures(judging, now.get(code, {}), aqi_now.get(code))
        previous = _figures(judging_last, before.get(code, {}), aqi_last.get(code))
        cities.append(
            AssessedArea(
                level="city",
                id=code,
                name=city.name,
                province=city.province,
                city_code=code,
                stations=city.stations,
                period=this,
                same_period=previous,
                change_percent=_changes(this, previous),
                pm25_rest_of_year=_rest_of_year(
                    period,
                    this,
                    f"City PM2.5 within Grade II ({limits.name}: {city_limit:g} µg/m³)",
                    float(city_limit or 0),
                    STATISTIC_DECIMALS["pm25"],
                    strict=False,
                )
                if provisional and city_limit is not None
                else None,
            )
        )
    national = _area(judging, judging_last, "national", "national", "National", cities)
    if provisional:
        national.pm25_rest_of_year = _rest_of_year(
            period,
            national.period,
            NATIONAL_PM25_2027.name,
            NATIONAL_PM25_2027.value,
            AREA_MEAN_DECIMALS,
            strict=True,
        )
    by_province: dict[str, list[AssessedArea]] = defaultdict(list)
    for area in cities:
        if area.province:
            by_province[area.province].append(area)
    provinces = [
        _area(judging, judging_last, "province", name, name, members)
        for name, members in sorted(by_province.items())
    ]
    _apply_ranks(cities, provinces)
    cities.sort(key=lambda c: (c.rank is None, c.rank or 0, c.id))
    assessed = [c for c in cities if c.period.attains is not None]
    attaining = [c.id for c in assessed if c.period.attains]
    stations = _stations(conn, judging, registry, year) if with_stations else []
    return AirAssessment(
        year=year,
        as_of=as_of,
        provisional=provisional,
        period_start=period.start,
        period_end=period.end,
        same_period_start=last.start,
        same_period_end=last.end,
        standard=limits.name,
        rules=list(ASSESSMENT_RULES),
        national=national,
        cities_assessed=len(assessed),
        cities_attaining=len(attaining),
        attaining_cities=sorted(attaining),
        provinces=provinces,
        cities=cities,
        stations=stations,
    )


def _area(
    judging: _Judging,
    judging_last: _Judging,
    level: AreaLevel,
    key: str,
    name: str,
    members: Sequence[AssessedArea],
) -> AssessedArea:
    this = _area_figures(judging, [m.period for m in members])
    previous = _area_figures(
        judging_last, [m.same_period for m in members if m.same_period is not None]
    )
    return AssessedArea(
        level=level,
        id=key,
        name=name,
        province=key if level == "province" else None,
        cities=len(members),
        period=this,
        same_period=previous,
        change_percent=_changes(this, previous),
    )


def _apply_ranks(cities: list[AssessedArea], provinces: list[AssessedArea]) -> None:
    for key, rank in _rank(cities).items():
        next(c for c in cities if c.id == key).rank = rank
    by_province: dict[str, list[AssessedArea]] = defaultdict(list)
    for city in cities:
        if city.province:
            by_province[city.province].append(city)
    for members in by_province.values():
        ranks = _rank(members)
        for city in members:
            city.rank_in_province = ranks.get(city.id)
    for key, rank in _rank(provinces).items():
        next(p for p in provinces if p.id == key).rank = rank


def _stations(
    conn: psycopg.Connection, judging: _Judging, registry: Sequence[AirStation], year: int
) -> list[AssessedArea]:
    """Each station's statistics of the year so far as the stage keeps them (no same
    period: the national comparison is made for cities and above)."""
    found = station_yearly_series(conn, SERIES, year)
    return [
        AssessedArea(
            level="station",
            id=s.station_id,
            name=s.name,
            province=s.province,
            city_code=s.city_code,
            period=_figures(judging, found.get(s.station_id, {}), None),
            same_period=None,
        )
        for s in registry
    ]


# ---- the compact status of a year ----------------------------------------------------------

BEST_WORST = 10


def _ranked(city: AssessedArea) -> RankedCity:
    assert city.rank is not None and city.period.index is not None
    return RankedCity(
        rank=city.rank,
        city_code=city.id,
        name=city.name,
        province=city.province,
        index=city.period.index.value,
        largest_contributor=city.period.index.largest_contributor,
        pm25=next(s.published for s in city.period.statistics if s.key == "pm25_mean"),
    )


def _published(figures: PeriodFigures | None, key: str) -> float | None:
    if figures is None:
        return None
    return next((s.published for s in figures.statistics if s.key == key), None)


def air_status(assessment: AirAssessment) -> AirStatus:
    """The national PM2.5, its same period and target, good days, attainment, the ranking."""
    national = assessment.national
    pm25 = _published(national.period, "pm25_mean")
    aqi = national.period.aqi_days
    aqi_last = national.same_period.aqi_days if national.same_period else None
    ranked = [c for c in assessment.cities if c.rank is not None]
    return AirStatus(
        pm25=pm25,
        pm25_same_period=_published(national.same_period, "pm25_mean"),
        pm25_change_percent=national.change_percent.get("pm25_mean"),
        pm25_target=NATIONAL_PM25_2027.value,
        pm25_below_target=None if pm25 is None else NATIONAL_PM25_2027.is_met(pm25),
        pm25_rest_of_year=national.pm25_rest_of_year,
        good_day_share=aqi.good_day_share if aqi else None,
        good_day_share_same_period=aqi_last.good_day_share if aqi_last else None,
        heavy_days=aqi.heavy_days if aqi else None,
        heavy_days_same_period=aqi_last.heavy_days if aqi_last else None,
        cities_assessed=assessment.cities_assessed,
        cities_attaining=assessment.cities_attaining,
        attaining=[_ranked(c) for c in ranked if c.period.attains],
        best=[_ranked(c) for c in ranked[:BEST_WORST]],
        worst=[_ranked(c) for c in reversed(ranked[-BEST_WORST:])],
    )


def _section_class(
    items: Mapping[str, tuple[float, list[float]]], waterbody: str | None
) -> int | None:
    """A section's class over the months so far, by the rule of its annual class
    (reports.water.section_year): items' means, single factor; or the median reported class."""
    means = {item: mean for item, (mean, _) in items.items() if item != "water_class"}
    body: Waterbody = "lake" if waterbody == "lake" else "river"
    derived = water_class(means, body) if means else None
    if derived is not None:
        return derived.water_class
    if "water_class" in items:
        return median_class(items["water_class"][1])
    return None


def _water_share(
    conn: psycopg.Connection, year: int, months: int, waterbodies: Mapping[str, str | None]
) -> tuple[int, float | None]:
    """Sections assessed and their Class I–III share over January … ``months`` of ``year``:
    the kept annual class for a whole year, otherwise each item's mean of its monthly means
    of those months, then the single-factor class."""

    def compute() -> tuple[int, float | None]:
        if months == 12:
            found = water_classes(conn, year)
            classes = [c for s, c in found.items() if s in waterbodies and c is not None]
        else:
            classes = [
                c
                for station_id, items in water_means_to_month(conn, year, months).items()
                if station_id in waterbodies
                and (c := _section_class(items, waterbodies[station_id])) is not None
            ]
        return len(classes), (share_published(excellent_share(classes)) if classes else None)

    key = (year, months, frozenset(waterbodies.items()), water_years_stamp(conn, year))
    return _water_shares.get(key, compute)


def _water_months(conn: psycopg.Connection, period: Period) -> int:
    """Months assessed: 12 for a whole year; for a year so far, January to the last month
    with a sample (a month without one yet would compare with last year's whole month)."""
    if period.whole_year:
        return 12
    year = period.start.year
    last = _water_last_months.get(
        (year, water_years_stamp(conn, year)), lambda: water_last_month(conn, year)
    )
    return period.end.month if last is None else min(last, period.end.month)


def water_status(conn: psycopg.Connection, period: Period) -> WaterStatus:
    """The Class I–III share of the months so far (water is assessed by month: January to
    the last month with a sample, both years) against the same months of the previous year
    and 90 %."""
    waterbodies = {s.station_id: s.waterbody for s in water_sections(conn)}
    months = _water_months(conn, period)
    assessed, excellent = _water_share(conn, period.start.year, months, waterbodies)
    assessed_last, excellent_last = _water_share(conn, period.start.year - 1, months, waterbodies)
    span = MONTH_NAMES[0] if months == 1 else f"{MONTH_NAMES[0]}–{MONTH_NAMES[months - 1]}"
    return WaterStatus(
        months=span,
        sections_assessed=assessed,
        excellent_share=excellent,
        same_period_sections_assessed=assessed_last,
        same_period_excellent_share=excellent_last,
        change_points=None
        if excellent is None or excellent_last is None
        else share_published(excellent - excellent_last),
        target=SURFACE_WATER_2027.value,
        meets_target=None if excellent is None else SURFACE_WATER_2027.is_met(excellent),
    )


def status(conn: psycopg.Connection, year: int, today: date | None = None) -> Status:
    """Where the country stands in ``year`` (so far): air and water, beside the same period
    of the previous year and the targets."""
    assessment = air_assessment(conn, year, today, with_stations=False)
    period = Period(assessment.period_start, assessment.period_end)
    return Status(
        year=year,
        as_of=assessment.as_of,
        provisional=assessment.provisional,
        period_start=assessment.period_start,
        period_end=assessment.period_end,
        same_period_start=assessment.same_period_start,
        same_period_end=assessment.same_period_end,
        air=air_status(assessment),
        water=water_status(conn, period),
    )
