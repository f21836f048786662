"""HJ 633 air quality index (AQI): IAQI, AQI, primary pollutant and category, by version.

Both versions are kept as data (HJ 633-2012 in force 2016-01-01..2026-02-28, HJ 633-2026 from
2026-03-01) and chosen by the reading's Beijing time, so that history is judged by its own rules.
Concentrations are in µg/m³, CO in mg/m³. Arithmetic is exact (decimal/fraction), so that a
concentration exactly at a breakpoint gives exactly that breakpoint's level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")

# HJ 633 Table 1 (2012) / Table 3 (2026): the IAQI level of each breakpoint column.
IAQI_LEVELS: tuple[int, ...] = (0, 50, 100, 150, 200, 300, 400, 500)

# Rounding of concentrations before the IAQI in HJ 633-2026. STANDARDS.md §4 leaves the mode
# open; the default is GB/T 8170 round half to even. Any ``decimal`` rounding constant works;
# it is read when HJ633_2026 is built — for another mode, build a version with
# ``dataclasses.replace(HJ633_2026, concentration_rounding=...)`` and pass ``versions=``.
CONCENTRATION_ROUNDING: str = ROUND_HALF_EVEN

Mode = Literal["hourly", "daily"]


class AqiInputError(ValueError):
    """A concentration or key that the AQI cannot be computed from."""


@dataclass(frozen=True)
class AqiCategory:
    """One AQI category (HJ 633 Table 2): AQI up to ``upper`` (None = no upper bound)."""

    level: int  # 1..6, the standard's 一级..六级
    upper: int | None
    name: str
    name_zh: str
    colour: tuple[int, int, int]  # RGB, HJ 633 Appendix A


@dataclass(frozen=True)
class AboveTopRule:
    """What a version does with a concentration above a table's top breakpoint: take the IAQI
    of another table (``use_iaqi_of``) or report a fixed IAQI (``fixed_iaqi``)."""

    breakpoints: str
    use_iaqi_of: str | None = None
    fixed_iaqi: int | None = None


@dataclass(frozen=True)
class AqiItem:
    """One IAQI that enters an AQI: result key, the input key holding its concentration and
    the breakpoint table it is placed on. An optional item that is absent is not reported."""

    pollutant: str
    input_key: str
    breakpoints: str
    optional: bool = False


@dataclass(frozen=True)
class AqiVersion:
    """One version of HJ 633, every rule as data."""

    name: str
    in_force_from: date
    in_force_to: date | None
    breakpoints: Mapping[str, tuple[float, ...]]
    above_top_rules: Mapping[str, AboveTopRule]
    hourly_items: tuple[AqiItem, ...]  # the real-time (hourly) AQI
    daily_items: tuple[AqiItem, ...]  # the daily AQI
    # decimals each table's concentration is rounded to before the IAQI; empty: no rounding
    concentration_decimals: Mapping[str, int]
    concentration_rounding: str
    categories: tuple[AqiCategory, ...]

    def in_force_on(self, day: date) -> bool:
        return self.in_force_from <= day and (self.in_force_to is None or day <= self.in_force_to)


# HJ 633 Table 1 / Table 3 concentration breakpoints (STANDARDS.md §4, typed from the text).
_BREAKPOINTS_COMMON: dict[str, tuple[float, ...]] = {
    "so2_24h": (0, 50, 150, 475, 800, 1600, 2100, 2620),
    "so2_1h": (0, 150, 500, 650, 800),  # no levels above 200
    "no2_24h": (0, 40, 80, 180, 280, 565, 750, 940),
    "no2_1h": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "co_24h": (0, 2, 4, 14, 24, 36, 48, 60),
    "co_1h": (0, 5, 10, 35, 60, 90, 120, 150),
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "o3_8h": (0, 100, 160, 215, 265, 800),  # no levels above 300
}
_BREAKPOINTS_2012 = MappingProxyType(
    {
        "pm25_24h": (0, 35, 75, 115, 150, 250, 350, 500),
        "pm10_24h": (0, 50, 150, 250, 350, 420, 500, 600),
        **_BREAKPOINTS_COMMON,
    }
)
# HJ 633-2026 tightens the Grade II (IAQI 100) PM points to the GB 3095-2026 transitional limits.
_BREAKPOINTS_2026 = MappingProxyType(
    {
        "pm25_24h": (0, 35, 60, 115, 150, 250, 350, 500),
        "pm10_24h": (0, 50, 120, 250, 350, 420, 500, 600),
        **_BREAKPOINTS_COMMON,
    }
)

# HJ 633 Table 2 and Appendix A. HJ 633-2026 writes the first category as 1–50; an AQI of 0
# (every concentration zero) is also put in it here.
CATEGORIES: tuple[AqiCategory, ...] = (
    AqiCategory(1, 50, "Excellent", "优", (0, 228, 0)),
    AqiCategory(2, 100, "Good", "良", (255, 255, 0)),
    AqiCategory(3, 150, "Lightly polluted", "轻度污染", (255, 126, 0)),
    AqiCategory(4, 200, "Moderately polluted", "中度污染", (255, 0, 0)),
    AqiCategory(5, 300, "Heavily polluted", "重度污染", (153, 0, 76)),
    AqiCategory(6, None, "Severely polluted", "严重污染", (126, 0, 35)),
)

# Result keys in the order of HJ 633 Table 1 (SO2, NO2, PM10, CO, O3, PM2.5): ties are listed so.
# Real-time 2012 (§5): PM on the 24-hour moving average; gases on their 1-hour tables; the O3
# 8-hour moving average, when supplied, is reported too (the 2012 real-time format includes it).
_HOURLY_2012 = (
    AqiItem("so2", "so2", "so2_1h"),
    AqiItem("no2", "no2", "no2_1h"),
    AqiItem("pm10", "pm10_24h", "pm10_24h"),
    AqiItem("co", "co", "co_1h"),
    AqiItem("o3_1h", "o3", "o3_1h"),
    AqiItem("o3_8h", "o3_8h", "o3_8h", optional=True),
    AqiItem("pm25", "pm25_24h", "pm25_24h"),
)
# Real-time 2026: the 1-hour PM concentration on the 24-hour table; O3 on the 1-hour table only.
_HOURLY_2026 = (
    AqiItem("so2", "so2", "so2_1h"),
    AqiItem("no2", "no2", "no2_1h"),
    AqiItem("pm10", "pm10", "pm10_24h"),
    AqiItem("co", "co", "co_1h"),
    AqiItem("o3_1h", "o3", "o3_1h"),
    AqiItem("pm25", "pm25", "pm25_24h"),
)
_DAILY_COMMON = (
    AqiItem("so2", "so2", "so2_24h"),
    AqiItem("no2", "no2", "no2_24h"),
    AqiItem("pm10", "pm10", "pm10_24h"),
    AqiItem("co", "co", "co_24h"),
)
# Daily 2012: the O3 daily max 1-hour and max 8-hour both enter; 2026: only the max 8-hour.
_DAILY_2012 = (
    *_DAILY_COMMON,
    AqiItem("o3_1h", "o3_1h", "o3_1h"),
    AqiItem("o3_8h", "o3_8h", "o3_8h"),
    AqiItem("pm25", "pm25", "pm25_24h"),
)
_DAILY_2026 = (
    *_DAILY_COMMON,
    AqiItem("o3_8h", "o3_8h", "o3_8h"),
    AqiItem("pm25", "pm25", "pm25_24h"),
)

HJ633_2012 = AqiVersion(
    name="HJ 633-2012",
    in_force_from=date(2016, 1, 1),
    in_force_to=date(2026, 2, 28),
    breakpoints=_BREAKPOINTS_2012,
    # Table 1 notes: SO2 1-hour > 800 → the 24-hour SO2 IAQI; O3 8-hour > 800 → the 1-hour O3 IAQI.
    above_top_rules=MappingProxyType(
        {
            "so2_1h": AboveTopRule("so2_1h", use_iaqi_of="so2_24h"),
            "o3_8h": AboveTopRule("o3_8h", use_iaqi_of="o3_1h"),
        }
    ),
    hourly_items=_HOURLY_2012,
    daily_items=_DAILY_2012,
    concentration_decimals=MappingProxyType({}),
    concentration_rounding=CONCENTRATION_ROUNDING,
    categories=CATEGORIES,
)

HJ633_2026 = AqiVersion(
    name="HJ 633-2026",
    in_force_from=date(2026, 3, 1),
    in_force_to=None,
    breakpoints=_BREAKPOINTS_2026,
    # SO2 1-hour > 800 → IAQI 200; O3 8-hour > 800 → IAQI 300.
    above_top_rules=MappingProxyType(
        {
            "so2_1h": AboveTopRule("so2_1h", fixed_iaqi=200),
            "o3_8h": AboveTopRule("o3_8h", fixed_iaqi=300),
        }
    ),
    hourly_items=_HOURLY_2026,
    daily_items=_DAILY_2026,
    # SO2, NO2, O3 and PM to integers, CO to one decimal, before the IAQI.
    concentration_decimals=MappingProxyType(
        {key: 1 if key.startswith("co_") else 0 for key in _BREAKPOINTS_2026}
    ),
    concentration_rounding=CONCENTRATION_ROUNDING,
    categories=CATEGORIES,
)

# Oldest first. The earliest version also judges readings before its in-force date (2012
# before 2016-01-01: the index it replaced, the API of GB 3095-1996, is not modelled).
AQI_VERSIONS: tuple[AqiVersion, ...] = (HJ633_2012, HJ633_2026)

# The input keys each mode accepts, and where a mode finds the concentration of a table that
# an above-top rule substitutes (2012: SO2 1-hour → 24-hour, O3 8-hour → 1-hour).
HOURLY_INPUT_KEYS = frozenset(
    {"pm25", "pm10", "pm25_24h", "pm10_24h", "so2", "no2", "co", "o3", "so2_24h", "o3_8h"}
)
DAILY_INPUT_KEYS = frozenset({"pm25", "pm10", "so2", "no2", "co", "o3_8h", "o3_1h"})
_SUBSTITUTE_INPUTS: dict[Mode, dict[str, str]] = {
    "hourly": {"so2_24h": "so2_24h", "o3_1h": "o3"},
    "daily": {"so2_24h": "so2", "o3_1h": "o3_1h"},
}


def aqi_version_in_force(
    at: datetime | date, versions: Sequence[AqiVersion] = AQI_VERSIONS
) -> AqiVersion:
    """The HJ 633 version in force at ``at``: naive datetimes and dates are Beijing time, aware
    datetimes are converted to Asia/Shanghai. Before the first version, the first applies."""
    if isinstance(at, datetime):
        day = (at.astimezone(BEIJING) if at.tzinfo is not None else at).date()
    else:
        day = at
    for version in versions:
        if version.in_force_on(day):
            return version
    earliest = min(versions, key=lambda v: v.in_force_from)
    if day < earliest.in_force_from:
        return earliest
    raise LookupError(f"no AQI version in force on {day.isoformat()}")


@dataclass(frozen=True)
class Iaqi:
    """One individual AQI (HJ 633 §4.2), rounded up to an integer; None without concentration.

    ``beyond_index``: the concentration is above the top breakpoint, where the standard gives no
    index; ``value`` is then the top level (500; 200 for SO2 1-hour, 300 for O3 8-hour) read as
    "500+". ``concentration`` and ``breakpoints`` are what the value was computed from (after the
    version's rounding, and after a substitution rule); ``rule`` names a special rule applied.
    """

    value: int | None
    beyond_index: bool
    concentration: float | None = None
    breakpoints: str | None = None
    rule: str | None = None

    def __str__(self) -> str:
        if self.value is None:
            return "—"
        return f"{self.value}+" if self.beyond_index else str(self.value)


def _exact(concentration: float) -> Decimal:
    # the shortest decimal string of the float: 35.1 is 351/10, not 35.1000000000000014…
    if isinstance(concentration, Decimal):
        return concentration
    return Decimal(repr(float(concentration)))


def _rounded(key: str, concentration: Decimal, version: AqiVersion) -> Decimal:
    decimals = version.concentration_decimals.get(key)
    if decimals is None:
        return concentration
    step = Decimal(1).scaleb(-decimals)
    return concentration.quantize(step, rounding=version.concentration_rounding)


def iaqi(key: str, concentration: float | None, version: AqiVersion) -> Iaqi:
    """IAQI of a concentration (µg/m³; CO mg/m³) on breakpoint table ``key`` ("pm25_24h",
    "so2_1h", …) of ``version``, rounded up; the version's concentration rounding is applied
    first. No special rule here: above the top breakpoint the value is the top level and
    ``beyond_index`` is True. NaN or None gives ``Iaqi(None, False)``."""
    breakpoints = version.breakpoints.get(key)
    if breakpoints is None:
        raise AqiInputError(f"no AQI breakpoints {key!r}; known: {sorted(version.breakpoints)}")
    if concentration is None or math.isnan(concentration):
        return Iaqi(None, False, breakpoints=key)
    if math.isinf(concentration) or concentration < 0:
        raise AqiInputError(f"{key} concentration {concentration} is not a finite value ≥ 0")
    c = Fraction(_rounded(key, _exact(concentration), version))
    levels = IAQI_LEVELS[: len(breakpoints)]
    if c > Fraction(_exact(breakpoints[-1])):
        return Iaqi(levels[-1], True, float(c), key)
    for i in range(1, len(breakpoints)):
        bp_lo, bp_hi = Fraction(_exact(breakpoints[i - 1])), Fraction(_exact(breakpoints[i]))
        if c <= bp_hi:
            i_lo, i_hi = levels[i - 1], levels[i]
            value = (i_hi - i_lo) / (bp_hi - bp_lo) * (c - bp_lo) + i_lo
            return Iaqi(math.ceil(value), False, float(c), key)
    raise AssertionError("unreachable: c ≤ top breakpoint")  # pragma: no cover


def aqi_category(aqi: int, version: AqiVersion) -> AqiCategory:
    """The category (HJ 633 Table 2) of an AQI value."""
    return next(c for c in version.categories if c.upper is None or aqi <= c.upper)


@dataclass(frozen=True)
class AqiResult:
    """An hourly or daily AQI (HJ 633): the maximum IAQI, its primary pollutant(s) and category.

    ``iaqi`` is keyed by pollutant ("so2", "no2", "pm10", "co", "o3_1h", "o3_8h", "pm25");
    ``missing`` lists the required pollutants without a concentration (the AQI is then the
    maximum of the others). ``beyond_index``: the AQI is a top level exceeded ("500+").
    ``not_computable``: why there is no AQI although there are concentrations — a rule
    replaces an IAQI by another one whose concentration is missing (HJ 633-2012: SO2 1-hour
    above 800 without the 24-hour mean, O3 8-hour above 800 without the 1-hour value), so
    the maximum of the others could understate it; ``aqi`` is then None.
    """

    aqi: int | None
    iaqi: Mapping[str, Iaqi]
    primary_pollutants: tuple[str, ...]
    category: str | None
    colour: tuple[int, int, int] | None
    beyond_index: bool
    version: str
    level: int | None = None
    missing: tuple[str, ...] = ()
    not_computable: str | None = None

    def __str__(self) -> str:
        if self.aqi is None:
            return "—"
        return f"{self.aqi}+" if self.beyond_index else str(self.aqi)


def _concentration(concentrations: Mapping[str, float | None], key: str) -> float | None:
    value = concentrations.get(key)
    return None if value is None or math.isnan(value) else value


def _item_iaqi(
    item: AqiItem,
    concentrations: Mapping[str, float | None],
    version: AqiVersion,
    mode: Mode,
) -> Iaqi:
    found = iaqi(item.breakpoints, _concentration(concentrations, item.input_key), version)
    rule = version.above_top_rules.get(item.breakpoints)
    if not found.beyond_index or rule is None:
        return found
    top = version.breakpoints[item.breakpoints][-1]
    if rule.fixed_iaqi is not None:
        note = f"{version.name}: {item.breakpoints} above {top:g} → IAQI {rule.fixed_iaqi}"
        return Iaqi(rule.fixed_iaqi, False, found.concentration, item.breakpoints, note)
    assert rule.use_iaqi_of is not None
    note = f"{version.name}: {item.breakpoints} above {top:g} → IAQI of {rule.use_iaqi_of}"
    substitute_key = _SUBSTITUTE_INPUTS[mode][rule.use_iaqi_of]
    substitute = iaqi(rule.use_iaqi_of, _concentration(concentrations, substitute_key), version)
    if substitute.value is None:
        note += f", and {substitute_key!r} is missing: no IAQI"
    return Iaqi(
        substitute.value, substitute.beyond_index, substitute.concentration, rule.use_iaqi_of, note
    )


def _aqi(
    concentrations: Mapping[str, float | None],
    version: AqiVersion,
    mode: Mode,
    accepted: frozenset[str],
) -> AqiResult:
    unknown = set(concentrations) - accepted
    if unknown:
        raise AqiInputError(
            f"unknown {mode} AQI inputs {sorted(unknown)}; known: {sorted(accepted)}"
        )
    items = version.hourly_items if mode == "hourly" else version.daily_items
    by_pollutant = {
        item.pollutant: _item_iaqi(item, concentrations, version, mode)
        for item in items
        if not (item.optional and _concentration(concentrations, item.input_key) is None)
    }
    # also an SO2 whose 2012 substitute (the 24-hour mean) is missing
    missing = tuple(p for p, found in by_pollutant.items() if found.value is None)
    values = [found.value for found in by_pollutant.values() if found.value is not None]
    # a concentration above the top whose substitute IAQI is missing: the IAQI is unknown
    # and may be the largest (an O3 8-hour mean above 800 is at least "heavily polluted")
    blocked = [
        found.rule
        for found in by_pollutant.values()
        if found.value is None and found.rule is not None
    ]
    if not values or blocked:
        return AqiResult(
            aqi=None,
            iaqi=MappingProxyType(by_pollutant),
            primary_pollutants=(),
            category=None,
            colour=None,
            beyond_index=False,
            version=version.name,
            missing=missing,
            not_computable="; ".join(r for r in blocked if r is not None) or None,
        )
    aqi = max(values)
    at_max = [(p, i) for p, i in by_pollutant.items() if i.value == aqi]
    primary: list[str] = []
    seen: set[tuple[str | None, float | None]] = set()
    # an IAQI substituted from another one at the maximum (2012 O3 8-hour → 1-hour) is one
    # pollutant, named once
    for pollutant, found in at_max:
        if (found.breakpoints, found.concentration) not in seen:
            seen.add((found.breakpoints, found.concentration))
            primary.append(pollutant)
    category = aqi_category(aqi, version)
    return AqiResult(
        aqi=aqi,
        iaqi=MappingProxyType(by_pollutant),
        # HJ 633 §4.3: a primary pollutant only when the AQI is above 50
        primary_pollutants=tuple(primary) if aqi > 50 else (),
        category=category.name,
        colour=category.colour,
        beyond_index=any(found.beyond_index for _, found in at_max),
        version=version.name,
        level=category.level,
        missing=missing,
    )


def hourly_aqi(
    concentrations: Mapping[str, float | None],
    at: datetime,
    versions: Sequence[AqiVersion] = AQI_VERSIONS,
) -> AqiResult:
    """Real-time (hourly) AQI under the version in force at ``at`` (naive = Beijing time).

    Keys: "pm25", "pm10" (1-hour; used by 2026), "pm25_24h", "pm10_24h" (24-hour moving
    averages; used by 2012), "so2", "no2", "co", "o3" (1-hour), "so2_24h" (for the 2012 SO2
    1-hour > 800 rule), "o3_8h" (8-hour moving average, optional; used by 2012). µg/m³, CO mg/m³.
    Keys a version does not use are ignored; None or NaN means no concentration.
    """
    version = aqi_version_in_force(at, versions)
    return _aqi(concentrations, version, "hourly", HOURLY_INPUT_KEYS)


def daily_aqi(
    concentrations: Mapping[str, float | None],
    day: date,
    versions: Sequence[AqiVersion] = AQI_VERSIONS,
) -> AqiResult:
    """Daily AQI under the version in force on ``day`` (Beijing date).

    Keys: "pm25", "pm10", "so2", "no2", "co" (24-hour means), "o3_8h" (daily max 8-hour),
    "o3_1h" (daily max 1-hour; used by 2012 only). µg/m³, CO mg/m³.
    """
    version = aqi_version_in_force(day, versions)
    return _aqi(concentrations, version, "daily", DAILY_INPUT_KEYS)
