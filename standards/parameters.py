"""The parameters airwater stores, their stored unit and how strictly each is checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Medium = Literal["air", "water"]


@dataclass(frozen=True)
class Parameter:
    """One measured quantity. ``unit`` is the unit every stored value is in."""

    name: str
    unit: str
    medium: Medium
    # Hourly values a daily mean needs to be valid (GB 3095-2026 Table 4: 20 for air);
    # water sections sample a few times a day or month, so one sample makes a daily value.
    daily_min_hours: int = 1
    may_be_negative: bool = False


UG_M3 = "ug/m3"
MG_M3 = "mg/m3"
MG_L = "mg/L"

CATALOGUE: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("pm25", UG_M3, "air", 20),
        Parameter("pm10", UG_M3, "air", 20),
        Parameter("so2", UG_M3, "air", 20),
        Parameter("no2", UG_M3, "air", 20),
        Parameter("co", MG_M3, "air", 20),
        Parameter("o3", UG_M3, "air", 20),
        Parameter("ph", "pH", "water"),
        Parameter("water_temp", "Cel", "water", may_be_negative=True),
        Parameter("do", MG_L, "water"),
        Parameter("codmn", MG_L, "water"),
        Parameter("cod", MG_L, "water"),
        Parameter("bod5", MG_L, "water"),
        Parameter("nh3_n", MG_L, "water"),
        Parameter("tp", MG_L, "water"),
        Parameter("tn", MG_L, "water"),
        Parameter("cu", MG_L, "water"),
        Parameter("zn", MG_L, "water"),
        Parameter("fluoride", MG_L, "water"),
        Parameter("se", MG_L, "water"),
        Parameter("as", MG_L, "water"),
        Parameter("hg", MG_L, "water"),
        Parameter("cd", MG_L, "water"),
        Parameter("cr6", MG_L, "water"),
        Parameter("pb", MG_L, "water"),
        Parameter("cn", MG_L, "water"),
        Parameter("phenol", MG_L, "water"),
        Parameter("petroleum", MG_L, "water"),
        Parameter("las", MG_L, "water"),
        Parameter("sulfide", MG_L, "water"),
        Parameter("fecal_coliform", "1/L", "water"),
        # 1..5 = Class I..V, 6 = worse than Class V (劣V)
        Parameter("water_class", "class", "water"),
    )
}

# Spellings seen from real analysers and data portals, mapped to the stored name.
ALIASES: dict[str, str] = {
    "pm2.5": "pm25",
    "pm2_5": "pm25",
    "pm_25": "pm25",
    "o3_1h": "o3",
    "dissolved_oxygen": "do",
    "permanganate_index": "codmn",
    "cod_mn": "codmn",
    "nh3-n": "nh3_n",
    "nh3n": "nh3_n",
    "ammonia_nitrogen": "nh3_n",
    "total_phosphorus": "tp",
    "total_nitrogen": "tn",
    "class": "water_class",
}


def canonical_parameter(name: str) -> str | None:
    """The stored parameter name for ``name`` (case-insensitive, aliases allowed), or None."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in CATALOGUE else None


# Mass concentrations expressed in µg/m³ (1 mg/L = 1 g/m³), for SenML unit conversion.
_UG_M3_PER_UNIT: dict[str, float] = {
    "kg/m3": 1e9,
    "g/m3": 1e6,
    "mg/m3": 1e3,
    "ug/m3": 1.0,
    "µg/m3": 1.0,
    "μg/m3": 1.0,
    "mg/l": 1e6,
    "ug/l": 1e3,
    "µg/l": 1e3,
}
_OTHER_UNITS: dict[str, set[str]] = {
    "pH": {"ph", "/", ""},
    "Cel": {"cel"},
    "1/L": {"1/l", "/l"},
    "class": {"class", ""},
}


def conversion_factor(unit: str, parameter: Parameter) -> float | None:
    """Factor turning a value in ``unit`` into ``parameter.unit``; None if they do not match."""
    given = unit.strip().lower()
    stored = _UG_M3_PER_UNIT.get(parameter.unit.lower())
    if stored is not None:
        source = _UG_M3_PER_UNIT.get(given)
        return None if source is None else source / stored
    return 1.0 if given in _OTHER_UNITS.get(parameter.unit, set()) else None
