"""The national targets airwater measures against (Opinions on Comprehensively Promoting the
Construction of a Beautiful China, 2023, items 5–7; city PM2.5 via GB 3095)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from standards.limits import limit_set_for_period
from standards.parameters import UG_M3

Comparator = Literal["<", "<=", ">=", ">"]
_COMPARE: dict[Comparator, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">=": operator.ge,
    ">": operator.gt,
}

PERCENT = "%"
OPINIONS_2023 = "Opinions on Comprehensively Promoting the Construction of a Beautiful China (2023)"


@dataclass(frozen=True)
class Target:
    """A target: ``metric`` of the ``year`` compared to ``value`` (in ``unit``) must hold."""

    name: str
    metric: str
    comparator: Comparator
    value: float
    unit: str
    year: int
    source: str

    def is_met(self, measured: float) -> bool:
        """True when ``measured`` (in ``unit``) satisfies the target, e.g. 27.9 < 28."""
        return _COMPARE[self.comparator](measured, self.value)

    def gap(self, measured: float) -> float:
        """``measured`` − target value, in ``unit``: for a "below" target a positive gap is
        still to close; for an "at least" target a negative gap is."""
        return measured - self.value


NATIONAL_PM25_2027 = Target(
    name="National PM2.5 below 28 µg/m³ by 2027",
    metric="national_pm25_annual_mean",
    # "decrease to below 28": strictly below, so a national mean of 28.0 has not met it
    comparator="<",
    value=28.0,
    unit=UG_M3,
    year=2027,
    source=f"{OPINIONS_2023}, item 5",
)
NATIONAL_PM25_2035 = Target(
    name="National PM2.5 below 25 µg/m³ by 2035",
    metric="national_pm25_annual_mean",
    comparator="<",
    value=25.0,
    unit=UG_M3,
    year=2035,
    source=f"{OPINIONS_2023}, item 5",
)
SURFACE_WATER_2027 = Target(
    name="Surface-water sections in Class I–III about 90 % by 2027",
    metric="surface_water_excellent_share",
    # "about 90 %" is judged as at least 90.0 % (the share as published, one decimal)
    comparator=">=",
    value=90.0,
    unit=PERCENT,
    year=2027,
    source=f"{OPINIONS_2023}, item 6",
)
NEARSHORE_SEA_2027 = Target(
    name="Nearshore sea water in Class I–II about 83 % by 2027",
    metric="nearshore_sea_excellent_area_share",
    # "about 83 %" is judged like the surface-water target: at least 83.0 %
    comparator=">=",
    value=83.0,
    unit=PERCENT,
    year=2027,
    source=f"{OPINIONS_2023}, item 6",
)
GROUNDWATER_2035 = Target(
    name="Groundwater points in Class I–IV over 80 % by 2035",
    metric="groundwater_class_i_iv_share",
    # "over 80 %": strictly above, read like "below 28" (the Chinese 以上 would include 80)
    comparator=">",
    value=80.0,
    unit=PERCENT,
    year=2035,
    source=f"{OPINIONS_2023}, item 7",
)

TARGETS: tuple[Target, ...] = (
    NATIONAL_PM25_2027,
    NATIONAL_PM25_2035,
    SURFACE_WATER_2027,
    NEARSHORE_SEA_2027,
    GROUNDWATER_2035,
)


def national_pm25_gap(annual_mean: float) -> dict[int, float]:
    """Gap of a national annual mean PM2.5 (µg/m³) to each national target, keyed by target
    year: mean − target, positive = still above the target (29.3 → {2027: 1.3, 2035: 4.3})."""
    return {
        target.year: target.gap(annual_mean) for target in (NATIONAL_PM25_2027, NATIONAL_PM25_2035)
    }


def city_pm25_limit(year: int) -> tuple[float, str]:
    """The Grade II annual PM2.5 limit (µg/m³) a city's annual report for ``year`` is judged
    by, and the name of the limit set: the set in force on 31 December of that year."""
    limit_set = limit_set_for_period(date(year, 1, 1), date(year, 12, 31))
    limit = limit_set.limit("pm25", "annual", grade=2)
    if limit is None:  # every GB 3095 version has a PM2.5 annual limit
        raise LookupError(f"{limit_set.name} has no PM2.5 annual limit")
    return float(limit), limit_set.name


def city_pm25_target(year: int) -> Target:
    """The city target for ``year``: annual mean PM2.5 at or below the Grade II limit in force
    ("cities … strive to meet the standards"; GB 3095: ≤ limit complies)."""
    limit, standard = city_pm25_limit(year)
    return Target(
        name=f"City PM2.5 meets the Grade II annual limit ({standard}: {limit:g} µg/m³)",
        metric="city_pm25_annual_mean",
        comparator="<=",
        value=limit,
        unit=UG_M3,
        year=year,
        source=f"{OPINIONS_2023}, item 5; {standard}",
    )
