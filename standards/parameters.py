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
        # automatic water stations' general items (HJ 915 five-parameter analysers)
        Parameter("conductivity", "uS/cm", "water"),
        Parameter("turbidity", "NTU", "water"),
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


@dataclass(frozen=True)
class PlausibleRange:
    """The values a working instrument can report for a parameter, in its stored unit.

    A value outside is not pollution but a fault or a forgery: it is dead-lettered
    (``out_of_range``), never stored, so that no single message can carry a number that
    breaks a mean or a sum. The bounds are deliberately wide: the widest full scale of the
    analysers in use or about twice the highest value ever reported, whichever is larger;
    extreme but real episodes (sand-dust storms, spills) stay inside."""

    low: float
    high: float
    basis: str

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high and (value == 0 or abs(value) >= RESOLUTION_FLOOR)


# Non-zero magnitudes below this are below any analyser's resolution (ICP-MS trace metals
# reach 1e-6 mg/L), so they are not measurements; subnormal floats among them would also make
# PostgreSQL's checked float arithmetic raise "underflow" when an hour's mean is merged.
RESOLUTION_FLOOR = 1e-9


# Bounds inclusive; the source of each is its basis. Air in µg/m³ (CO in mg/m³), water in mg/L.
PLAUSIBLE: dict[str, PlausibleRange] = {
    # HJ 653-2013 asks PM analysers for 0-1,000 µg/m³; beta gauges (BAM-1020, 5030i) reach
    # 10,000 extended. Hourly PM10 near 10,000 was reported in the March 2021 sand-dust storm
    # of northern China; PM2.5 in such episodes stays below its PM10 (a few thousand).
    "pm25": PlausibleRange(0, 10_000, "beta-gauge extended full scale 10,000 µg/m³"),
    "pm10": PlausibleRange(
        0, 20_000, "twice the highest hourly PM10 reported (about 10,000 µg/m³, sand dust 2021)"
    ),
    # HJ 654-2013 gas analysers: SO2/NO2 0-500 nmol/mol standard, up to 10-20 µmol/mol on
    # source-oriented ranges (SO2 20 µmol/mol ≈ 57,000 µg/m³; NO2 10 µmol/mol ≈ 20,500 µg/m³).
    "so2": PlausibleRange(0, 57_000, "SO2 analyser widest range 20 µmol/mol"),
    "no2": PlausibleRange(0, 20_500, "NOx analyser widest range 10 µmol/mol"),
    # CO analysers: 0-50 µmol/mol standard, 0-1,000 on wide ranges (≈ 1,250 mg/m³).
    "co": PlausibleRange(0, 1_250, "CO analyser widest range 1,000 µmol/mol"),
    # UV photometric O3 analysers: 0-1 µmol/mol standard, 0-10 widest (≈ 21,400 µg/m³).
    "o3": PlausibleRange(0, 21_400, "O3 photometer widest range 10 µmol/mol"),
    "ph": PlausibleRange(0, 14, "the pH scale of the electrode"),
    # liquid surface water; above 60 °C only hot springs, which are not assessment sections
    "water_temp": PlausibleRange(-5, 60, "liquid surface water, hot springs excluded"),
    # conductivity probes read to 200 mS/cm (brines); turbidity meters to 4,000-10,000 NTU
    "conductivity": PlausibleRange(0, 200_000, "conductivity probe full scale 200 mS/cm"),
    "turbidity": PlausibleRange(0, 10_000, "turbidimeter widest range 10,000 NTU"),
    # saturation is ~14.6 mg/L at 0 °C; algal supersaturation reaches ~25; optical DO probes
    # read to 50
    "do": PlausibleRange(0, 50, "optical DO probe full scale 50 mg/L"),
    # Organic load: raw industrial wastewater reaches tens of thousands of mg/L COD; a
    # surface-water section above these bounds is a probe or a unit error.
    "codmn": PlausibleRange(0, 2_000, "permanganate index analyser widest range"),
    "cod": PlausibleRange(0, 100_000, "COD of raw industrial wastewater"),
    "bod5": PlausibleRange(0, 50_000, "BOD5 of raw industrial wastewater"),
    "nh3_n": PlausibleRange(0, 10_000, "ammonia of raw landfill leachate"),
    "tp": PlausibleRange(0, 1_000, "total phosphorus of raw wastewater, widest analyser range"),
    "tn": PlausibleRange(0, 10_000, "total nitrogen of raw landfill leachate"),
    # Trace elements and compounds: GB 3838 Class V limits are 0.001-2 mg/L (petroleum 1,
    # fluoride 1.5); a spill measured at 1,000 mg/L is already a hundred times a disaster's.
    **{
        name: PlausibleRange(0, 1_000, "over 500 times the GB 3838-2002 Class V limit")
        for name in (
            "cu",
            "zn",
            "fluoride",
            "se",
            "as",
            "hg",
            "cd",
            "cr6",
            "pb",
            "cn",
            "phenol",
            "petroleum",
            "las",
            "sulfide",
        )
    },
    # raw sewage carries up to ~10^7 per mL (10^10 per L); Class V allows 40,000 per L
    "fecal_coliform": PlausibleRange(0, 1e11, "ten times the coliforms of raw sewage"),
    "water_class": PlausibleRange(1, 6, "Class I..V, 6 = worse than Class V"),
}


def implausible(parameter: str, value: float) -> PlausibleRange | None:
    """The plausible range ``value`` (in the stored unit) lies outside of, or None."""
    bounds = PLAUSIBLE[parameter]
    return None if bounds.holds(value) else bounds


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
