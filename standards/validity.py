"""Data validity (GB 3095 Table 4, applied by HJ 663) and the HJ 663 percentile."""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

# GB 3095-2026 Table 4: an hourly value needs at least 45 minutes of data in the hour.
HOURLY_MIN_MINUTES = 45
# GB 3095-2026 Table 4: a daily (24-hour) mean needs at least 20 hourly values.
DAILY_MIN_HOURS = 20
# GB 3095-2026 Table 4: an O3 8-hour moving average needs at least 6 hourly values.
O3_8H_MIN_HOURS = 6
# HJ 663-2013 (STANDARDS.md §3a): a daily maximum 8-hour mean needs at least 14 valid 8-hour
# means of the 17 lying in the day; a day with fewer counts when its maximum exceeds the limit.
O3_DAILY_MAX_8H_MIN_WINDOWS = 14
# GB 3095-2026 Table 4: a monthly mean needs at least 27 daily means, 25 in February.
MONTHLY_MIN_DAYS = 27
FEBRUARY_MIN_DAYS = 25
# GB 3095-2026 Table 4: an annual mean needs at least 324 daily means (and every month valid).
ANNUAL_MIN_DAYS = 324

# English names, not calendar.month_name, which follows the process locale.
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# HJ 663-2013 annual statistics: the percentile of daily values each pollutant reports,
# as (period of the daily value, percentile). O3's daily value is the daily maximum 8-hour mean.
ANNUAL_PERCENTILE: Mapping[str, tuple[str, float]] = MappingProxyType(
    {
        "pm25": ("24h", 95),
        "pm10": ("24h", 95),
        "so2": ("24h", 98),
        "no2": ("24h", 98),
        "co": ("24h", 95),
        "o3": ("8h", 90),
    }
)


def hourly_value_is_valid(minutes: float) -> bool:
    """True when an hour holds at least 45 minutes of data (GB 3095 Table 4)."""
    return minutes >= HOURLY_MIN_MINUTES


def daily_mean_is_valid(valid_hours: int) -> bool:
    """True when a natural (local) day has at least 20 valid hourly values."""
    return valid_hours >= DAILY_MIN_HOURS


def o3_8h_mean_is_valid(valid_hours: int) -> bool:
    """True when an O3 8-hour window has at least 6 valid hourly values."""
    return valid_hours >= O3_8H_MIN_HOURS


def _check_month(month: int) -> None:
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, not {month!r}")


def monthly_min_days(year: int, month: int) -> int:
    """Valid daily means a month needs: 27, or 25 in February (leap year or not)."""
    _check_month(month)
    return FEBRUARY_MIN_DAYS if month == 2 else MONTHLY_MIN_DAYS


def monthly_mean_is_valid(valid_days: int, year: int, month: int) -> bool:
    """True when the month has enough valid daily means for a monthly mean."""
    return valid_days >= monthly_min_days(year, month)


@dataclass(frozen=True)
class Coverage:
    """How much data stands behind an aggregate: days expected (calendar days in the period),
    valid days observed, their share in percent, whether the aggregate is valid and, if not,
    one English sentence per failed rule."""

    expected: int
    observed: int
    percent_complete: float
    valid: bool
    reasons: tuple[str, ...]


def _days(count: int) -> str:
    return f"{count} valid day" if count == 1 else f"{count} valid days"


def _month_shortfall(valid_days: int, year: int, month: int) -> str | None:
    needed = monthly_min_days(year, month)
    if valid_days >= needed:
        return None
    return f"{MONTH_NAMES[month - 1]} has {_days(valid_days)} ({needed} needed)"


def _check_valid_days(valid_days: int, year: int, month: int) -> None:
    in_month = calendar.monthrange(year, month)[1]
    if not 0 <= valid_days <= in_month:
        raise ValueError(
            f"{MONTH_NAMES[month - 1]} {year} cannot have {valid_days} valid days "
            f"(it has {in_month} days)"
        )


def monthly_coverage(valid_days: int, year: int, month: int) -> Coverage:
    """Coverage of a monthly mean: valid when it has 27 valid days (25 in February)."""
    _check_month(month)
    _check_valid_days(valid_days, year, month)
    expected = calendar.monthrange(year, month)[1]
    shortfall = _month_shortfall(valid_days, year, month)
    return Coverage(
        expected=expected,
        observed=valid_days,
        percent_complete=100 * valid_days / expected,
        valid=shortfall is None,
        reasons=() if shortfall is None else (shortfall,),
    )


def annual_coverage(valid_days_by_month: Mapping[int, int], year: int) -> Coverage:
    """Coverage of an annual statistic: valid when the year has at least 324 valid days and
    every month is valid (27 days, 25 in February). A month missing from the mapping has no
    valid days. The reasons name every failing month, then the yearly shortfall if any."""
    for month in valid_days_by_month:
        _check_month(month)
    reasons: list[str] = []
    observed = 0
    for month in range(1, 13):
        valid_days = valid_days_by_month.get(month, 0)
        _check_valid_days(valid_days, year, month)
        observed += valid_days
        shortfall = _month_shortfall(valid_days, year, month)
        if shortfall is not None:
            reasons.append(shortfall)
    if observed < ANNUAL_MIN_DAYS:
        reasons.append(f"{_days(observed)} in the year ({ANNUAL_MIN_DAYS} needed)")
    expected = 366 if calendar.isleap(year) else 365
    return Coverage(
        expected=expected,
        observed=observed,
        percent_complete=100 * observed / expected,
        valid=not reasons,
        reasons=tuple(reasons),
    )


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0 ≤ p ≤ 100) by HJ 663: sort ascending X(1)…X(n),
    k = 1 + (n−1)·p/100, s = ⌊k⌋, result X(s) + (X(s+1) − X(s))·(k − s).
    Same unit as ``values``; invalid (NaN) values must be excluded by the caller."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, not {p!r}")
    if not values:
        raise ValueError("percentile of no values")
    if any(math.isnan(v) for v in values):
        raise ValueError("percentile of values containing NaN: exclude invalid data first")
    ordered = sorted(values)
    n = len(ordered)
    k = 1 + (n - 1) * p / 100
    s = math.floor(k)
    if s >= n:
        return float(ordered[-1])
    # ordered is 0-based: X(s) is ordered[s - 1]
    low, high = ordered[s - 1], ordered[s]
    return float(low + (high - low) * (k - s))
