"""GB 3095 ambient-air concentration limits, every version kept as data and chosen by date.

Units: µg/m³, except CO in mg/m³. Periods: ``"annual"``, ``"24h"``, ``"1h"`` and ``"8h"``
(O3 daily maximum 8-hour mean).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType

POLLUTANTS = ("pm25", "pm10", "so2", "no2", "co", "o3")
PERIODS = ("annual", "24h", "1h", "8h")
GRADES = (1, 2)

Limits = Mapping[tuple[str, str], tuple[float, float]]


@dataclass(frozen=True)
class LimitSet:
    """One version of the GB 3095 limits table and the dates it is in force (both inclusive)."""

    name: str
    in_force_from: date
    in_force_to: date | None
    # (pollutant, period) -> (Grade I, Grade II)
    limits: Limits

    def limit(self, pollutant: str, period: str, grade: int = 2) -> float | None:
        """The limit (µg/m³; CO mg/m³), or None when the table has none (e.g. CO annual)."""
        if grade not in GRADES:
            raise ValueError(f"grade must be 1 or 2, not {grade!r}")
        pair = self.limits.get((pollutant, period))
        return None if pair is None else pair[grade - 1]

    def is_in_force(self, on: date) -> bool:
        """True when ``on`` falls within this version's dates."""
        return self.in_force_from <= on and (self.in_force_to is None or on <= self.in_force_to)


# GB 3095-2012 Table 1 (Grade I, Grade II).
GB3095_2012: Limits = MappingProxyType(
    {
        ("pm25", "annual"): (15, 35),
        ("pm25", "24h"): (35, 75),
        ("pm10", "annual"): (40, 70),
        ("pm10", "24h"): (50, 150),
        ("so2", "annual"): (20, 60),
        ("so2", "24h"): (50, 150),
        ("so2", "1h"): (150, 500),
        ("no2", "annual"): (40, 40),
        ("no2", "24h"): (80, 80),
        ("no2", "1h"): (200, 200),
        ("co", "24h"): (4, 4),
        ("co", "1h"): (10, 10),
        ("o3", "8h"): (100, 160),
        ("o3", "1h"): (160, 200),
    }
)
# GB 3095-2026 Table 1, transitional limits (2026-03-01 … 2030-12-31): tighter PM Grade II.
GB3095_2026_TRANSITIONAL: Limits = MappingProxyType(
    {
        **GB3095_2012,
        ("pm25", "annual"): (15, 30),
        ("pm25", "24h"): (35, 60),
        ("pm10", "annual"): (40, 60),
        ("pm10", "24h"): (50, 120),
    }
)
# GB 3095-2026 Table 1, final limits (from 2031-01-01).
GB3095_2026_FINAL: Limits = MappingProxyType(
    {
        ("pm25", "annual"): (10, 25),
        ("pm25", "24h"): (25, 50),
        ("pm10", "annual"): (20, 50),
        ("pm10", "24h"): (50, 100),
        ("so2", "annual"): (20, 20),
        ("so2", "24h"): (50, 50),
        ("so2", "1h"): (150, 150),
        ("no2", "annual"): (30, 30),
        ("no2", "24h"): (50, 50),
        ("no2", "1h"): (200, 200),
        ("co", "24h"): (4, 4),
        ("co", "1h"): (10, 10),
        ("o3", "8h"): (100, 160),
        ("o3", "1h"): (160, 200),
    }
)

# Oldest first; the dates meet without gaps (STANDARDS.md §0).
LIMIT_SETS: tuple[LimitSet, ...] = (
    LimitSet("GB 3095-2012", date(2016, 1, 1), date(2026, 2, 28), GB3095_2012),
    LimitSet(
        "GB 3095-2026 (transitional)",
        date(2026, 3, 1),
        date(2030, 12, 31),
        GB3095_2026_TRANSITIONAL,
    ),
    LimitSet("GB 3095-2026 (final)", date(2031, 1, 1), None, GB3095_2026_FINAL),
)


def limit_set_in_force(on: date) -> LimitSet:
    """The limit set in force on ``on``. Before 2016-01-01 GB 3095-2012 is returned: it was
    issued in 2012 and is the oldest version kept, so earlier data are judged by it."""
    for limit_set in LIMIT_SETS:
        if limit_set.is_in_force(on):
            return limit_set
    return LIMIT_SETS[0]


def days_judged() -> list[tuple[date, date, LimitSet]]:
    """Every version with the days it judges (both inclusive): its own dates, and for the
    oldest also every day before it (as ``limit_set_in_force``)."""
    return [
        (date.min if index == 0 else s.in_force_from, s.in_force_to or date.max, s)
        for index, s in enumerate(LIMIT_SETS)
    ]


def limit_set_for_period(start: date, end: date) -> LimitSet:
    """The limit set for an assessed period ``start`` … ``end`` (both inclusive): the set in
    force on its last day (project rule, STANDARDS.md §0), so the 2026 annual report is judged
    by the 2026 transitional limits."""
    if end < start:
        raise ValueError(f"period ends ({end}) before it starts ({start})")
    return limit_set_in_force(end)


def round_half_even(value: float, decimals: int) -> float:
    """``value`` rounded to ``decimals`` places, half to even on its decimal digits (GB/T 8170:
    35.05 → 35.0, 35.15 → 35.2), not on its binary approximation as ``round()`` does."""
    if not math.isfinite(value):
        return value
    quantum = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_EVEN))


def complies(value: float, limit: float, decimals: int | None = None) -> bool:
    """True when ``value`` ≤ ``limit`` (GB 3095: at or below the limit complies).

    The value is compared as given (35.0 complies with 35, 35.1 does not); with ``decimals``
    it is first rounded half to even to that many places, as a published figure would be.
    A NaN value is neither compliant nor not: ValueError.
    """
    if math.isnan(value) or math.isnan(limit):
        raise ValueError("cannot judge compliance of a missing (NaN) value")
    if decimals is not None:
        value = round_half_even(value, decimals)
    return value <= limit
