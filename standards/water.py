"""GB 3838-2002 surface-water classes by the single-factor rule."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Waterbody = Literal["river", "lake"]

WORSE_THAN_V = 6
CLASS_NAMES = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "worse than V"}

# GB 3838-2002 Table 1, upper limits (mg/L; fecal coliform per L) for Class I..V.
UPPER_LIMITS: dict[str, tuple[float, float, float, float, float]] = {
    "codmn": (2, 4, 6, 10, 15),
    "cod": (15, 15, 20, 30, 40),
    "bod5": (3, 3, 4, 6, 10),
    "nh3_n": (0.15, 0.5, 1.0, 1.5, 2.0),
    "cu": (0.01, 1.0, 1.0, 1.0, 1.0),
    "zn": (0.05, 1.0, 1.0, 2.0, 2.0),
    "fluoride": (1.0, 1.0, 1.0, 1.5, 1.5),
    "se": (0.01, 0.01, 0.01, 0.02, 0.02),
    "as": (0.05, 0.05, 0.05, 0.1, 0.1),
    "hg": (0.00005, 0.00005, 0.0001, 0.001, 0.001),
    "cd": (0.001, 0.005, 0.005, 0.005, 0.01),
    "cr6": (0.01, 0.05, 0.05, 0.05, 0.1),
    "pb": (0.01, 0.01, 0.05, 0.05, 0.1),
    "cn": (0.005, 0.05, 0.2, 0.2, 0.2),
    "phenol": (0.002, 0.002, 0.005, 0.01, 0.1),
    "petroleum": (0.05, 0.05, 0.05, 0.5, 1.0),
    "las": (0.2, 0.2, 0.2, 0.3, 0.3),
    "sulfide": (0.05, 0.1, 0.2, 0.5, 1.0),
    "fecal_coliform": (200, 2000, 10000, 20000, 40000),
}
# Total phosphorus differs between rivers and lakes/reservoirs (GB 3838-2002 Table 1, item 9).
TP_LIMITS: dict[Waterbody, tuple[float, float, float, float, float]] = {
    "river": (0.02, 0.1, 0.2, 0.3, 0.4),
    "lake": (0.01, 0.025, 0.05, 0.1, 0.2),
}
TN_LAKE_LIMITS = (0.2, 0.5, 1.0, 1.5, 2.0)
# Dissolved oxygen is a lower limit: at least this much for Class I..V.
DO_LOWER_LIMITS = (7.5, 6, 5, 3, 2)
PH_RANGE = (6.0, 9.0)

# Not used for the class (2011 evaluation method): water temperature, total nitrogen,
# fecal coliform. Total nitrogen of lakes can be included by setting.
EXCLUDED_FROM_CLASS = frozenset({"water_temp", "tn", "fecal_coliform"})


@dataclass(frozen=True)
class WaterClass:
    """A section's class (1..5, 6 = worse than V) and the item(s) that decided it."""

    water_class: int
    deciding: tuple[str, ...]

    @property
    def name(self) -> str:
        return CLASS_NAMES[self.water_class]


def item_class(item: str, value: float, waterbody: Waterbody = "river") -> int | None:
    """Class (1..6) of one item's value, or None if the item is not classified."""
    if item == "ph":
        return 1 if PH_RANGE[0] <= value <= PH_RANGE[1] else WORSE_THAN_V
    if item == "do":
        return next((i + 1 for i, low in enumerate(DO_LOWER_LIMITS) if value >= low), 6)
    if item == "tp":
        limits = TP_LIMITS[waterbody]
    elif item == "tn":
        # Table 1 gives total nitrogen limits for lakes and reservoirs only.
        if waterbody != "lake":
            return None
        limits = TN_LAKE_LIMITS
    elif item in UPPER_LIMITS:
        limits = UPPER_LIMITS[item]
    else:
        return None
    return next((i + 1 for i, high in enumerate(limits) if value <= high), WORSE_THAN_V)


def water_class(
    values: Mapping[str, float],
    waterbody: Waterbody = "river",
    include_total_nitrogen: bool = False,
) -> WaterClass | None:
    """Single-factor class: the worst class among the assessed items; None if none assessed."""
    classes: dict[str, int] = {}
    for item, value in values.items():
        if math.isnan(value):
            continue
        if item in EXCLUDED_FROM_CLASS and not (
            item == "tn" and include_total_nitrogen and waterbody == "lake"
        ):
            continue
        cls = item_class(item, value, waterbody)
        if cls is not None:
            classes[item] = cls
    if not classes:
        return None
    worst = max(classes.values())
    return WaterClass(worst, tuple(sorted(i for i, c in classes.items() if c == worst)))


_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}
_UNICODE_ROMAN = str.maketrans({"Ⅰ": "I", "Ⅱ": "II", "Ⅲ": "III", "Ⅳ": "IV", "Ⅴ": "V"})


def parse_water_class(raw: object) -> int | None:
    """Class 1..6 (6 = worse than V) from ``3``, ``"III"``, ``"Ⅲ"``, ``"Class III"``, ``"Ⅲ类"``,
    ``"劣V"`` or ``"worse than V"``; None if ``raw`` names no class."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        # range first: float() of a huge int overflows
        return int(raw) if 1 <= raw <= 6 and float(raw).is_integer() else None
    if not isinstance(raw, str):
        return None
    text = raw.strip().upper().translate(_UNICODE_ROMAN)
    text = text.removeprefix("CLASS").removesuffix("类").strip()
    if text in ("劣V", "WORSE THAN V", "V+", ">V"):
        return WORSE_THAN_V
    if text.isdecimal():
        # isdecimal, not isdigit (int() refuses "³"); the length cap keeps int() cheap
        return parse_water_class(int(text)) if len(text) <= 3 else None
    return _ROMAN.get(text)


def median_class(monthly_classes: Sequence[int | float]) -> int:
    """Annual class (1..6) of a section that reports only its class: the median of its
    monthly classes, the worse of the two middle ones when their number is even (a section
    is never reported better than half of its months)."""
    if not monthly_classes:
        raise ValueError("no monthly classes")
    ordered = sorted(monthly_classes)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return int(ordered[middle])
    return int(max(ordered[middle - 1], ordered[middle]))


# Basin and river evaluation (2011 surface-water evaluation method): with at least this many
# sections the grade comes from the class shares; with fewer, from the mean of each item.
BASIN_MIN_SECTIONS = 5


def _count(classes: Sequence[int], worst: int) -> tuple[int, int]:
    """(sections in Class I..``worst``, sections assessed); refuses classes outside 1..6."""
    for cls in classes:
        if cls not in CLASS_NAMES:
            raise ValueError(f"water class must be 1..6 (6 = worse than V), not {cls!r}")
    if not classes:
        raise ValueError("no sections assessed")
    return sum(1 for cls in classes if cls <= worst), len(classes)


def excellent_share(classes: Sequence[int]) -> float:
    """Sections in Class I–III ÷ sections assessed × 100 (%): the targets' "excellent share"."""
    good, assessed = _count(classes, 3)
    return 100 * good / assessed


def worse_than_v_share(classes: Sequence[int]) -> float:
    """Sections worse than Class V ÷ sections assessed × 100 (%)."""
    at_most_v, assessed = _count(classes, 5)
    return 100 * (assessed - at_most_v) / assessed


def basin_grade(section_classes: Sequence[int]) -> str | None:
    """Grade of a river or basin with at least 5 sections, from its sections' classes (1..6):
    Class I–III ≥ 90 % excellent; 75–90 % good; below 75 % lightly (worse than V < 20 %),
    moderately (20–40 %) or heavily polluted (≥ 40 %). None for fewer than 5 sections: use
    ``basin_class_few_sections`` instead.

    Each lower bound belongs to the better grade for the I–III share (exactly 90 % is
    excellent, exactly 75 % good) and to the worse grade for the worse-than-V share (exactly
    20 % is moderately, exactly 40 % heavily polluted), as in the 2011 method's inequalities.
    """
    if len(section_classes) < BASIN_MIN_SECTIONS:
        return None
    good, assessed = _count(section_classes, 3)
    at_most_v, _ = _count(section_classes, 5)
    worse_than_v = assessed - at_most_v
    # integer cross-multiplication: 100 * good / assessed >= 90 without float rounding
    if 100 * good >= 90 * assessed:
        return "excellent"
    if 100 * good >= 75 * assessed:
        return "good"
    if 100 * worse_than_v < 20 * assessed:
        return "lightly polluted"
    if 100 * worse_than_v < 40 * assessed:
        return "moderately polluted"
    return "heavily polluted"


def basin_class_few_sections(
    section_values: Sequence[Mapping[str, float]],
    waterbody: Waterbody = "river",
    include_total_nitrogen: bool = False,
) -> WaterClass | None:
    """Class of a river or basin with fewer than 5 sections: each item is averaged over the
    sections that measured it (NaN = not measured), then the single-factor rule applies to
    the means. None when no item can be assessed."""
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for values in section_values:
        for item, value in values.items():
            if math.isnan(value):
                continue
            totals[item] = totals.get(item, 0.0) + value
            counts[item] = counts.get(item, 0) + 1
    means = {item: totals[item] / counts[item] for item in totals}
    return water_class(means, waterbody, include_total_nitrogen)
