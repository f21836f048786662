"""What a simulated station measures at an instant: pure functions of the station, the time
and the seed, so live mode, backfill and tests all see the same values.

Air (µg/m³, CO mg/m³): a city's typical annual level × a seasonal cycle (winter high for
particles and gases, summer high for ozone) × regional pollution episodes (winter haze,
spring dust, summer ozone) × a diurnal cycle in local solar time (morning and evening peaks
for particles and NO2, an afternoon ozone peak) × the city's weather (smooth, shared by its
stations) × the station's own noise; a slow downward trend across years (about -3.5 % a year
for PM2.5, as in the national bulletins).

Water (mg/L, pH without unit): each section has a typical quality index (the class of its
worst item: 2.4 means Class III); every item is that index plus an item offset, a seasonal
swing (low oxygen and high phosphorus in summer, high ammonia in winter) and noise, mapped
onto the GB 3838-2002 class limits.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from schemas.stations import Station
from simulators.geography import CITY_BY_CODE, DUSTY_REGIONS, NORTHERN_REGIONS, SECTION_BY_NAME
from simulators.noise import SMOOTH_VARIANCE, key_of, normal, smooth, uniform
from standards.water import water_class

DEFAULT_SEED = 2026
AIR_PARAMETERS = ("pm25", "pm10", "so2", "no2", "co", "o3")
WATER_ITEMS = ("do", "codmn", "nh3_n", "tp", "ph")
# Values the default network is calibrated to: the national PM2.5 (mean of the cities'
# annual means, µg/m³) of the reference year, and the yearly trend around it.
REFERENCE_YEAR = 2025
PM25_TREND_PER_YEAR = -0.035

_YEAR_DAYS = 365.2425
_TWO_PI = 2.0 * math.pi
_DECIMALS = {"pm25": 1, "pm10": 1, "so2": 1, "no2": 1, "co": 2, "o3": 1}
_WATER_DECIMALS = {"do": 2, "codmn": 2, "nh3_n": 3, "tp": 3, "ph": 2}


# --- diurnal cycles (local solar hour 0..23, normalised to a mean of 1) -------------------
def _bump(hour: float, centre: float, width: float) -> float:
    distance = min(abs(hour - centre), 24.0 - abs(hour - centre))
    return math.exp(-0.5 * (distance / width) ** 2)


def _diurnal_table(*terms: tuple[float, float, float], base: float = 1.0) -> tuple[float, ...]:
    raw = [base + sum(a * _bump(h, c, w) for a, c, w in terms) for h in range(24)]
    mean = sum(raw) / 24.0
    return tuple(v / mean for v in raw)


# Particles: rush-hour peak in the morning, a larger one at night under the shallow boundary
# layer, a minimum in the well-mixed afternoon.
_DIURNAL_PM = _diurnal_table((0.15, 8.0, 1.5), (0.35, 22.0, 3.0), (-0.30, 15.0, 3.0))
_DIURNAL_NO2 = _diurnal_table((0.45, 8.0, 1.5), (0.60, 20.0, 2.5), (-0.45, 14.0, 3.0))
_DIURNAL_CO = _diurnal_table((0.25, 8.0, 1.5), (0.35, 20.0, 3.0), (-0.25, 14.0, 3.0))
# SO2 from elevated stacks mixes down mid-morning (fumigation).
_DIURNAL_SO2 = _diurnal_table((0.25, 11.0, 3.0))
# Ozone is photochemical: low at night (titrated by NO), a peak in mid-afternoon.
_DIURNAL_O3 = _diurnal_table((1.6, 15.0, 3.2), base=0.3)


def _diurnal(table: tuple[float, ...], solar_hour: float) -> float:
    index = int(solar_hour) % 24
    fraction = solar_hour - math.floor(solar_hour)
    return table[index] + (table[(index + 1) % 24] - table[index]) * fraction


def _season(day: float, peak_day: float) -> float:
    """cos of the annual phase: 1 on ``peak_day`` (day of year), -1 half a year later."""
    return math.cos(_TWO_PI * (day - peak_day) / _YEAR_DAYS)


# --- stations ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AirProfile:
    """What the model needs to know of an air station (from its city, or its position)."""

    key: int
    city_key: int
    region: str
    region_key: int
    north: bool
    dusty: bool
    pm25: float  # annual mean in the reference year, µg/m³
    pm10_ratio: float
    no2: float
    so2: float
    co: float  # mg/m³
    o3: float  # mean of hourly values, µg/m³
    o3_peak_day: float
    solar_offset_h: float


_STATION_NUMBER = re.compile(r"-A(\d+)$")
# Stations of a city differ a little (a kerbside one higher, a park one lower); the pattern
# keeps a city's mean at its typical level for any number of stations.
_STATION_FACTORS = (1.0, 1.08, 0.92, 1.05, 0.95, 1.1, 0.9)
_O3_PEAK_DAY = {"pearl_delta": 280.0, "hainan": 300.0, "southeast_coast": 250.0}


def _station_factor(station_id: str) -> float:
    match = _STATION_NUMBER.search(station_id)
    if match and 1 <= int(match.group(1)) <= len(_STATION_FACTORS):
        return _STATION_FACTORS[int(match.group(1)) - 1]
    return 0.9 + 0.2 * uniform(key_of(station_id), 7)


@lru_cache(maxsize=16384)
def _air_profile(
    station_id: str, city_code: str | None, latitude: float | None, longitude: float | None
) -> AirProfile:
    city = CITY_BY_CODE.get(city_code or "")
    if city is not None:
        region, pm25, megacity = city.region, city.pm25, city.megacity
        latitude = city.latitude if latitude is None else latitude
        longitude = city.longitude if longitude is None else longitude
        city_key = key_of(city.code)
    else:  # a station of some other city: judge by its latitude (north of the Huai: dirtier)
        north = (latitude or 30.0) >= 33.0
        region = "other_north" if north else "other_south"
        pm25, megacity = (36.0 if north else 26.0), False
        city_key = key_of(city_code or station_id)
    north = region in NORTHERN_REGIONS or region == "other_north"
    dusty = region in DUSTY_REGIONS
    factor = _station_factor(station_id)
    pm10_ratio = 1.55 + (0.25 if north else 0.0) + (0.5 if region == "northwest" else 0.0)
    if region == "plateau":
        pm10_ratio += 1.5  # coarse mineral dust, little combustion
    o3_peak = _O3_PEAK_DAY.get(region, 120.0 if region == "southwest" else 168.0)
    o3 = 58.0 + (6.0 if north else 0.0) - (8.0 if region in ("plateau", "hainan") else 0.0)
    return AirProfile(
        key=key_of(station_id),
        city_key=city_key,
        region=region,
        region_key=key_of(region),
        north=north,
        dusty=dusty,
        pm25=pm25 * factor,
        pm10_ratio=pm10_ratio,
        no2=(8.0 + 0.5 * pm25 + (7.0 if megacity else 0.0)) * factor,
        so2=(3.0 + 0.12 * pm25 + (4.0 if north else 0.0)) * factor,
        co=(0.3 + 0.014 * pm25 + (0.1 if north else 0.0)) * factor,
        o3=o3 * (2.0 - factor),  # more NO at a kerbside station titrates more ozone
        o3_peak_day=o3_peak,
        solar_offset_h=(longitude if longitude is not None else 116.4) / 15.0,
    )


def air_profile(station: Station) -> AirProfile:
    return _air_profile(station.station_id, station.city_code, station.latitude, station.longitude)


# --- regional episodes ---------------------------------------------------------------------
_HAZE, _DUST, _OZONE = 1, 2, 3
_MAX_EPISODE_DAYS = 6


@lru_cache(maxsize=262144)
def _episode_start(
    seed: int, region_key: int, kind: int, day: int, north: bool, dusty: bool
) -> tuple[float, float, float] | None:
    """(start in days, length in days, amplitude) of an episode starting on ``day``, if any."""
    day_of_year = day % _YEAR_DAYS
    if kind == _HAZE:
        winter = (1.0 + _season(day_of_year, 15.0)) * 0.5
        chance = (0.09 if north else 0.04) * winter**2 + 0.003
    elif kind == _DUST:
        if not dusty:
            return None
        spring = max(0.0, _season(day_of_year, 100.0))
        chance = 0.05 * spring**4
    else:
        summer = max(0.0, _season(day_of_year, 180.0))
        chance = 0.06 * summer**3
    if uniform(seed, region_key, kind, day) >= chance:
        return None
    start = day + uniform(seed, region_key, kind, day, 1)
    if kind == _HAZE:
        length = 2.0 + 4.0 * uniform(seed, region_key, kind, day, 2)
        amplitude = (1.0 + 2.5 * uniform(seed, region_key, kind, day, 3) ** 2) * (
            1.0 if north else 0.6
        )
    elif kind == _DUST:
        length = 1.0 + 2.0 * uniform(seed, region_key, kind, day, 2)
        amplitude = 2.0 + 4.0 * uniform(seed, region_key, kind, day, 3)
    else:
        length = 2.0 + 3.0 * uniform(seed, region_key, kind, day, 2)
        amplitude = 0.3 + 0.5 * uniform(seed, region_key, kind, day, 3)
    return start, length, amplitude


def _episode(seed: int, profile: AirProfile, kind: int, days: float) -> float:
    return _regional_episode(seed, profile.region_key, profile.north, profile.dusty, kind, days)


def _regional_episode(
    seed: int, region_key: int, north: bool, dusty: bool, kind: int, days: float
) -> float:
    """Extra factor of an episode kind in a region at ``days`` (since 1970, UTC): 0 outside
    any episode. Episodes build up slowly and are swept away by a front: 80 % rise, 20 %
    fall."""
    total = 0.0
    today = math.floor(days)
    for day in range(today - _MAX_EPISODE_DAYS, today + 1):
        episode = _episode_start(seed, region_key, kind, day, north, dusty)
        if episode is None:
            continue
        start, length, amplitude = episode
        x = (days - start) / length
        if 0.0 <= x < 1.0:
            if x < 0.8:
                envelope = math.sin(0.5 * math.pi * x / 0.8) ** 2
            else:
                envelope = math.cos(0.5 * math.pi * (x - 0.8) / 0.2) ** 2
            total += amplitude * envelope
    return total


def _pm_season_amplitude(region: str, north: bool) -> float:
    return 0.45 if north else (0.3 if region == "plateau" else 0.4)


@lru_cache(maxsize=4096)
def _pm25_norm(seed: int, region: str, north: bool, dusty: bool) -> float:
    """Long-run mean of PM2.5's seasonal and episode factors in a region (eight years, two
    samples a day), so that a station's annual mean is its profile's level."""
    region_key = key_of(region)
    amplitude = _pm_season_amplitude(region, north)
    first_day = (REFERENCE_YEAR - 4 - 1970) * _YEAR_DAYS
    total, steps = 0.0, int(16 * _YEAR_DAYS)
    for step in range(steps):
        days = first_day + step * 0.5
        haze = _regional_episode(seed, region_key, north, dusty, _HAZE, days)
        dust = _regional_episode(seed, region_key, north, dusty, _DUST, days)
        season = 1.0 + amplitude * _season(days % _YEAR_DAYS, 15.0)
        total += season * (1.0 + haze) * (1.0 + 0.3 * dust)
    return total / steps


# City weather: stagnant days raise every primary pollutant, windy days clear them.
_WEATHER_SIGMAS = (0.38, 0.18)
_WEATHER_BIAS = 0.5 * SMOOTH_VARIANCE * sum(s * s for s in _WEATHER_SIGMAS)
_STATION_SIGMA = 0.12


def _weather(seed: int, city_key: int, hours: float, channel: int) -> float:
    """Log of the city's weather factor (mean of exp() ≈ 1)."""
    key = city_key * 4 + channel
    return (
        _WEATHER_SIGMAS[0] * smooth(seed, key, hours, 24.0)
        + _WEATHER_SIGMAS[1] * smooth(seed, key, hours, 6.0)
        - _WEATHER_BIAS
    )


def air_values(station: Station, ts: datetime, seed: int = DEFAULT_SEED) -> dict[str, float]:
    """PM2.5, PM10, SO2, NO2, O3 (µg/m³) and CO (mg/m³) of an air station at ``ts`` (aware).

    Deterministic: the same station, instant and seed always give the same values."""
    profile = air_profile(station)
    epoch = ts.timestamp()
    hours = epoch / 3600.0
    days = epoch / 86400.0
    day_of_year = days % _YEAR_DAYS
    solar_hour = (hours + profile.solar_offset_h) % 24.0
    years = days / _YEAR_DAYS + 1970.0 - (REFERENCE_YEAR + 0.5)
    minute = int(epoch // 60)

    stagnation = _weather(seed, profile.city_key, hours, 0)
    sunshine = _weather(seed, profile.city_key, hours, 1)

    def station_noise(parameter: int) -> float:
        z = normal(seed, profile.key, parameter, minute)
        return math.exp(_STATION_SIGMA * z - 0.5 * _STATION_SIGMA**2)

    haze = _episode(seed, profile, _HAZE, days)
    dust = _episode(seed, profile, _DUST, days)
    norm = _pm25_norm(seed, profile.region, profile.north, profile.dusty)
    season_pm = 1.0 + _pm_season_amplitude(profile.region, profile.north) * _season(
        day_of_year, 15.0
    )
    trend = (1.0 + PM25_TREND_PER_YEAR) ** years
    pm_weather = math.exp(stagnation)

    pm25 = (
        profile.pm25
        * trend
        * season_pm
        * (1.0 + haze)
        * (1.0 + 0.3 * dust)
        / norm
        * _diurnal(_DIURNAL_PM, solar_hour)
        * pm_weather
        * station_noise(1)
    )
    spring_dust = 0.2 * max(0.0, _season(day_of_year, 100.0)) if profile.dusty else 0.0
    pm10 = (
        pm25 * (profile.pm10_ratio + spring_dust) * (1.0 + dust) / (1.0 + 0.3 * dust)
    ) * station_noise(2)
    winter = _season(day_of_year, 15.0)
    gas_weather = math.exp(0.7 * stagnation)
    no2 = (
        profile.no2
        * (0.98**years)
        * (1.0 + (0.3 if profile.north else 0.2) * winter)
        * (1.0 + 0.4 * haze)
        * _diurnal(_DIURNAL_NO2, solar_hour)
        * gas_weather
        * station_noise(3)
    )
    so2 = (
        profile.so2
        * trend
        * (1.0 + (0.55 if profile.north else 0.2) * winter)
        * (1.0 + 0.5 * haze)
        * _diurnal(_DIURNAL_SO2, solar_hour)
        * gas_weather
        * station_noise(4)
    )
    co = (
        profile.co
        * trend
        * (1.0 + (0.35 if profile.north else 0.2) * winter)
        * (1.0 + 0.5 * haze)
        * _diurnal(_DIURNAL_CO, solar_hour)
        * gas_weather
        * station_noise(5)
    )
    ozone_episode = _episode(seed, profile, _OZONE, days)
    o3 = (
        profile.o3
        * (1.01**years)
        * (1.0 + 0.4 * _season(day_of_year, profile.o3_peak_day))
        * (1.0 + ozone_episode)
        * _diurnal(_DIURNAL_O3, solar_hour)
        * math.exp(0.6 * sunshine)
        / (1.0 + 0.3 * haze)  # haze dims the sunshine
        * station_noise(6)
    )
    values = {"pm25": pm25, "pm10": pm10, "so2": so2, "no2": no2, "co": co, "o3": o3}
    return {p: round(v, _DECIMALS[p]) for p, v in values.items()}


# --- water ---------------------------------------------------------------------------------
# Value of each item at a class index 0..6: index k is the Class k limit (GB 3838-2002
# Table 1), so an index in (k-1, k] falls in Class k; 6 is well beyond Class V.
_ITEM_SCALES: dict[str, tuple[float, ...]] = {
    "do": (9.5, 7.5, 6.0, 5.0, 3.0, 2.0, 1.0),
    "codmn": (0.8, 2.0, 4.0, 6.0, 10.0, 15.0, 22.0),
    "nh3_n": (0.03, 0.15, 0.5, 1.0, 1.5, 2.0, 3.0),
    "tp_river": (0.005, 0.02, 0.1, 0.2, 0.3, 0.4, 0.6),
    "tp_lake": (0.003, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3),
}
# Seasonal swing of an item's class index: (amplitude, day of the worst value).
_ITEM_SEASONS = {
    "do": (0.35, 200.0),  # warm water holds less oxygen
    "codmn": (0.25, 200.0),  # summer runoff
    "tp": (0.3, 210.0),  # runoff and, in lakes, algae
    "nh3_n": (0.3, 30.0),  # nitrification slows in cold water
}
_WATER_TREND_PER_YEAR = -0.05  # class index: water has been getting better
_SECTION_NUMBER = re.compile(r"^W-[A-Z]+-(\d+)$")


def reports_class_only(section: Station) -> bool:
    """Whether a section reports only its class (a manual section's monthly result) rather
    than the measured items: every third section of a waterbody (W-…-003, -006, …)."""
    match = _SECTION_NUMBER.match(section.station_id)
    if match:
        return int(match.group(1)) % 3 == 0
    return uniform(key_of(section.station_id), 11) < 0.25


def _interpolate(scale: tuple[float, ...], index: float) -> float:
    index = min(max(index, 0.0), 6.0)
    low = min(int(index), 5)
    return scale[low] + (scale[low + 1] - scale[low]) * (index - low)


@lru_cache(maxsize=4096)
def _section_profile(station_id: str, name: str, seed: int) -> tuple[float, dict[str, float]]:
    """(typical quality index, offset of each item's index) of a section."""
    key = key_of(station_id)
    known = SECTION_BY_NAME.get(name)
    quality = known.quality if known else 1.5 + 2.0 * uniform(seed, key, 1)
    lake = known is not None and known.waterbody == "lake"
    items = ("do", "codmn", "nh3_n", "tp")
    # The deciding item: phosphorus in most lakes; any of the four in rivers.
    deciding_key = key_of(name)
    if lake and uniform(deciding_key, 2) < 0.8:
        deciding = "tp"
    else:
        deciding = items[int(uniform(deciding_key, 3) * len(items))]
    offsets = {
        item: 0.0 if item == deciding else -(0.3 + 0.9 * uniform(deciding_key, 4, key_of(item)))
        for item in items
    }
    return quality, offsets


def water_quality(section: Station, ts: datetime, seed: int = DEFAULT_SEED) -> dict[str, float]:
    """Dissolved oxygen, permanganate index, ammonia nitrogen, total phosphorus (mg/L) and
    pH of a surface-water section at ``ts``, whatever the section reports."""
    quality, offsets = _section_profile(section.station_id, section.name, seed)
    key = key_of(section.station_id)
    epoch = ts.timestamp()
    hours = epoch / 3600.0
    day_of_year = (epoch / 86400.0) % _YEAR_DAYS
    years = epoch / 86400.0 / _YEAR_DAYS + 1970.0 - (REFERENCE_YEAR + 0.5)
    minute = int(epoch // 60)
    lake = section.waterbody == "lake"
    values: dict[str, float] = {}
    for item in ("do", "codmn", "nh3_n", "tp"):
        amplitude, worst_day = _ITEM_SEASONS[item]
        if item == "nh3_n" and (section.latitude or 0.0) > 40.0:
            amplitude += 0.2  # ice cover in the northeast
        index = (
            quality
            + offsets[item]
            + amplitude * _season(day_of_year, worst_day)
            + _WATER_TREND_PER_YEAR * years
            + 0.3 * smooth(seed, key * 8 + key_of(item) % 8, hours, 72.0)
            + 0.12 * normal(seed, key, key_of(item), minute)
        )
        scale = _ITEM_SCALES[f"tp_{'lake' if lake else 'river'}" if item == "tp" else item]
        values[item] = _interpolate(scale, index)
    summer = max(0.0, _season(day_of_year, 200.0))
    ph = (
        7.3
        + 0.6 * uniform(seed, key, 5)
        + (0.35 * summer if lake else 0.0)  # algae take up CO2
        + 0.08 * normal(seed, key, 6, minute)
    )
    values["ph"] = min(max(ph, 6.5), 8.9)
    return {item: round(v, _WATER_DECIMALS[item]) for item, v in values.items()}


def water_values(section: Station, ts: datetime, seed: int = DEFAULT_SEED) -> dict[str, float]:
    """What a surface-water section reports at ``ts``: its items (mg/L; pH), or for a section
    that reports only a class, ``{"water_class": 1..6}`` (6 = worse than Class V) by GB
    3838-2002's single-factor rule."""
    items = water_quality(section, ts, seed)
    if not reports_class_only(section):
        return items
    derived = water_class(items, "lake" if section.waterbody == "lake" else "river")
    assert derived is not None  # the items always include assessed ones
    return {"water_class": float(derived.water_class)}


def station_values(station: Station, ts: datetime, seed: int = DEFAULT_SEED) -> dict[str, float]:
    """Air values of an air station, water values of a water section."""
    if station.kind == "air":
        return air_values(station, ts, seed)
    return water_values(station, ts, seed)
