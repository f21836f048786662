"""The annual air assessment of a city (HJ 663-2013 and the national city-ranking rules,
STANDARDS.md §3, §3a): the six statistics, the published rounding they are judged on,
attainment, the comprehensive index, good days, periods so far and the same period of the
previous year. Pure rules; reports.assessment applies them to the kept levels."""

from __future__ import annotations

import calendar
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import Literal

from standards.limits import LimitSet, round_half_even
from standards.review import DUST_EXCLUDED, MEASURED_OF
from standards.validity import (
    ANNUAL_MIN_DAYS,
    MONTH_NAMES,
    Coverage,
    monthly_min_days,
)

Kind = Literal["annual_mean", "percentile"]


@dataclass(frozen=True)
class Statistic:
    """One annual statistic of a pollutant (HJ 663 Table): computed from the daily values of
    ``series`` ("o3_8h": the O3 daily maximum 8-hour mean; "pm25_dust_excluded": PM2.5 without
    the sand-dust hours), judged against the Grade II limit of ``limit_period`` when
    ``judged``."""

    pollutant: str
    series: str
    kind: Kind
    rank: float | None  # percentile rank, e.g. 95
    limit_period: str | None  # "annual", "24h", "8h"
    judged: bool

    @property
    def sand_dust(self) -> Literal["excluded", "measured"] | None:
        """For PM10 and PM2.5: whether the sand-dust hours are excluded (what is assessed)
        or the statistic is as measured; None for the other pollutants."""
        if self.series in MEASURED_OF:
            return "excluded"
        return "measured" if self.series in DUST_EXCLUDED else None

    @property
    def key(self) -> str:
        """``pm25_mean`` (dust excluded: the assessed one), ``pm25_mean_measured``,
        ``pm25_p95``, ``o3_8h_p90``."""
        suffix = "mean" if self.kind == "annual_mean" else f"p{self.rank:g}"
        base = MEASURED_OF.get(self.series, self.series)
        return f"{base}_{suffix}" + ("_measured" if self.sand_dust == "measured" else "")


# HJ 663-2013 Table (STANDARDS.md §3): the six pollutants in bulletin order, each with its
# statistics; the judged one is the statistic attainment and the comprehensive index use (§3a).
# PM10 and PM2.5 are assessed with the sand-dust hours excluded (MEE 2016 supplementary rule,
# standards.review) and also given as measured, not judged.
SIX_POLLUTANTS = ("so2", "no2", "pm10", "pm25", "co", "o3")
STATISTICS: tuple[Statistic, ...] = (
    Statistic("so2", "so2", "annual_mean", None, "annual", True),
    Statistic("so2", "so2", "percentile", 98, None, False),
    Statistic("no2", "no2", "annual_mean", None, "annual", True),
    Statistic("no2", "no2", "percentile", 98, None, False),
    Statistic("pm10", DUST_EXCLUDED["pm10"], "annual_mean", None, "annual", True),
    Statistic("pm10", DUST_EXCLUDED["pm10"], "percentile", 95, None, False),
    Statistic("pm10", "pm10", "annual_mean", None, None, False),
    Statistic("pm10", "pm10", "percentile", 95, None, False),
    Statistic("pm25", DUST_EXCLUDED["pm25"], "annual_mean", None, "annual", True),
    Statistic("pm25", DUST_EXCLUDED["pm25"], "percentile", 95, None, False),
    Statistic("pm25", "pm25", "annual_mean", None, None, False),
    Statistic("pm25", "pm25", "percentile", 95, None, False),
    Statistic("co", "co", "percentile", 95, "24h", True),
    Statistic("o3", "o3_8h", "percentile", 90, "8h", True),
)
JUDGED: Mapping[str, Statistic] = MappingProxyType({s.pollutant: s for s in STATISTICS if s.judged})
# The daily series the six statistics are computed from.
SERIES = tuple(dict.fromkeys(s.series for s in STATISTICS))

# Rounding (GB/T 8170, half to even) before a statistic is compared with a limit or a target,
# as national practice publishes them (HJ 663-2013 §5 "数据修约"): concentrations of a station
# or city in whole µg/m³, CO to one decimal in mg/m³; national and provincial means (the mean
# of the cities) to one decimal, as the national bulletins give them (29.3 µg/m³ in 2024); the
# comprehensive index to two decimals; shares to one decimal.
STATISTIC_DECIMALS: Mapping[str, int] = MappingProxyType(
    {"so2": 0, "no2": 0, "pm10": 0, "pm25": 0, "co": 1, "o3": 0}
)
AREA_MEAN_DECIMALS = 1
INDEX_DECIMALS = 2
SHARE_DECIMALS = 1
ROUNDING_RULE = (
    "Statistics are rounded half to even (GB/T 8170) before they are compared with a limit or "
    "a target, as they are published: a station's or city's concentrations to whole µg/m³ "
    "(CO to 0.1 mg/m³), so 35.4 meets 35 and 35.6 does not; national and provincial means to "
    "0.1 µg/m³, so 27.94 is below 28 and 27.96 (published 28.0) is not; the comprehensive index "
    "to 0.01; shares to 0.1 %."
)

# HJ 633 categories the bulletins count (STANDARDS.md §3a): good = AQI ≤ 100 (excellent or
# good), heavily polluted or worse = AQI > 200.
GOOD_DAY_MAX_AQI = 100
HEAVY_DAY_MIN_AQI = 201


def published(pollutant: str, value: float | None) -> float | None:
    """A station's or city's statistic as published (rounded half to even)."""
    return None if value is None else round_half_even(value, STATISTIC_DECIMALS[pollutant])


def published_area_mean(value: float | None) -> float | None:
    """A national or provincial mean (of cities) as published: one decimal."""
    return None if value is None else round_half_even(value, AREA_MEAN_DECIMALS)


def grade_ii_limit(statistic: Statistic, limits: LimitSet) -> float | None:
    """The Grade II limit ``statistic`` is judged against (None: reported only)."""
    if statistic.limit_period is None:
        return None
    return limits.limit(statistic.pollutant, statistic.limit_period, 2)


def index_term(value: float, limit: float) -> float:
    """One pollutant's part of the comprehensive index: statistic ÷ Grade II limit."""
    return value / limit


@dataclass(frozen=True)
class ComprehensiveIndex:
    """Σ statistic ÷ Grade II limit over the six pollutants (rounded published statistics),
    each pollutant's term and share of the sum, and the largest contributor."""

    value: float
    terms: Mapping[str, float]
    shares: Mapping[str, float]
    largest: str


def comprehensive_index(judged: Mapping[str, float], limits: LimitSet) -> ComprehensiveIndex:
    """The comprehensive index of the six judged statistics (published values by pollutant).
    Every one of the six is needed: a missing pollutant is a KeyError."""
    terms = {}
    for pollutant in SIX_POLLUTANTS:
        limit = grade_ii_limit(JUDGED[pollutant], limits)
        assert limit is not None  # every judged statistic has a limit in every version
        terms[pollutant] = index_term(judged[pollutant], limit)
    total = sum(terms.values())
    shares = {
        p: round_half_even(100 * t / total, SHARE_DECIMALS) if total else 0.0
        for p, t in terms.items()
    }
    largest = max(SIX_POLLUTANTS, key=lambda p: (terms[p], -SIX_POLLUTANTS.index(p)))
    return ComprehensiveIndex(
        value=round_half_even(total, INDEX_DECIMALS),
        terms={p: round_half_even(t, 3) for p, t in terms.items()},
        shares=shares,
        largest=largest,
    )


def share_published(value: float) -> float:
    """A share in % as published: one decimal, half to even."""
    return round_half_even(value, SHARE_DECIMALS)


def share(part: int, whole: int) -> float | None:
    """part ÷ whole in %, one decimal; None for no whole."""
    return round_half_even(100 * part / whole, SHARE_DECIMALS) if whole else None


def change_percent(this: float | None, last: float | None) -> float | None:
    """Same-period change (同比) in %: (this − last) ÷ last × 100, one decimal; None when
    either is missing or last is 0."""
    if this is None or last is None or last == 0:
        return None
    return round_half_even(100 * (this - last) / last, SHARE_DECIMALS)


# ---- periods -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Days ``start`` … ``end`` (inclusive) of one calendar year."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def whole_year(self) -> bool:
        return self.start == date(self.start.year, 1, 1) and self.end == date(
            self.start.year, 12, 31
        )


def year_period(year: int, today: date) -> tuple[Period, bool]:
    """The period a report for ``year`` covers on ``today`` and whether it is provisional:
    a past year whole; the current year from 1 January to today (provisional). A year that
    has not begun is a ValueError."""
    if year > today.year:
        raise ValueError(f"{year} has not begun (today is {today.isoformat()})")
    if year < today.year:
        return Period(date(year, 1, 1), date(year, 12, 31)), False
    return Period(date(year, 1, 1), today), True


def same_period_last_year(period: Period) -> Period:
    """The same calendar days of the previous year (同比); 29 February ends on the 28th."""
    year = period.start.year - 1
    end = period.end
    if end.month == 2 and end.day == 29:
        end = date(end.year, 2, 28)
    return Period(date(year, period.start.month, period.start.day), end.replace(year=year))


def period_min_days(period: Period) -> int:
    """Valid days a statistic of ``period`` needs: 324 of a whole year (GB 3095 Table 4), and
    for a year so far the same share of its days, rounded up (project rule: 324/365 ≈ 89 %)."""
    in_year = 366 if calendar.isleap(period.start.year) else 365
    return math.ceil(ANNUAL_MIN_DAYS * period.days / in_year)


@functools.lru_cache(maxsize=64)
def _months_of(period: Period) -> tuple[tuple[int, bool, int], ...]:
    """(month, whether the period covers it whole, valid days its rule needs) of each month
    the period touches."""
    months = []
    month = date(period.start.year, period.start.month, 1)
    while month <= period.end:
        last = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
        whole = month >= period.start and last <= period.end
        months.append((month.month, whole, monthly_min_days(month.year, month.month)))
        month = last + timedelta(days=1)
    return tuple(months)


def period_coverage(valid_days_by_month: Mapping[int, int], period: Period) -> Coverage:
    """Coverage of a statistic of ``period``: every whole month of it valid (27 days, 25 in
    February) and at least ``period_min_days`` valid days. For a whole year this is
    validity.annual_coverage; a month the period only partly covers has no monthly rule."""
    reasons: list[str] = []
    observed = 0
    for month, whole, needed in _months_of(period):
        valid = valid_days_by_month.get(month, 0)
        observed += valid
        if whole and valid < needed:
            noun = "valid day" if valid == 1 else "valid days"
            reasons.append(f"{MONTH_NAMES[month - 1]} has {valid} {noun} ({needed} needed)")
    needed_days = period_min_days(period)
    if observed < needed_days:
        noun = "valid day" if observed == 1 else "valid days"
        where = "in the year" if period.whole_year else f"in the {period.days} days so far"
        reasons.append(f"{observed} {noun} {where} ({needed_days} needed)")
    return Coverage(
        expected=period.days,
        observed=observed,
        percent_complete=100 * observed / period.days,
        valid=not reasons,
        reasons=tuple(reasons),
    )


# ---- the rest of the year ------------------------------------------------------------------


@dataclass(frozen=True)
class RestOfYear:
    """What the remaining days of the year must average for the annual mean to meet a
    target: ``at_most`` (inclusive) or below (exclusive) ``bound``; None when no day is left.
    ``reachable`` is False when the bound is below zero (the target can no longer be met)."""

    days_left: int
    bound: float | None
    inclusive: bool
    reachable: bool


def compliant_bound(
    value: float, decimals: int, comparator: Literal["<", "<="]
) -> tuple[float, bool]:
    """The largest unrounded mean that still meets ``comparator value`` once it is rounded
    half to even to ``decimals`` places, and whether that bound itself meets it
    (< 28 at one decimal: below 27.95; ≤ 30 at whole numbers: at most 30.5)."""
    step = 10.0**-decimals
    top = value - step if comparator == "<" else value  # largest compliant published value
    bound = round(top + step / 2, decimals + 2)
    return bound, round_half_even(bound, decimals) <= top


def rest_of_year(
    mean_so_far: float,
    period: Period,
    target: float,
    decimals: int,
    comparator: Literal["<", "<="],
) -> RestOfYear:
    """The average the rest of the year must keep for a year's mean (the days so far
    weighing by their number) to meet ``comparator target`` at ``decimals`` places. Project
    rule: every remaining day counts as one valid day."""
    in_year = 366 if calendar.isleap(period.start.year) else 365
    left = in_year - period.days
    bound, inclusive = compliant_bound(target, decimals, comparator)
    if left <= 0:
        return RestOfYear(0, None, inclusive, reachable=False)
    needed = (bound * in_year - mean_so_far * period.days) / left
    # published to 0.1 downwards, the safe side of the bound
    return RestOfYear(left, math.floor(needed * 10) / 10, inclusive, reachable=needed > 0)
