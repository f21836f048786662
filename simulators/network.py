"""The simulated national network: air stations in real prefecture-level cities and
surface-water sections on real rivers and lakes, the same for the same seed and counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from schemas.stations import Station
from simulators.geography import (
    CITIES,
    CITY_BY_CODE,
    SECTIONS,
    WATERBODY_WEIGHTS,
    City,
    Section,
)
from simulators.model import DEFAULT_SEED
from simulators.noise import key_of, uniform

DEFAULT_CITIES = 30
DEFAULT_STATIONS_PER_CITY = 3
DEFAULT_SECTIONS = 40
DEFAULT_INTERVAL_S = 60
# The cities are taken in an order that keeps the mean of their typical PM2.5 near this level
# (µg/m³), so that a network of any size has a national annual mean like the country's: about
# 30 in 2025 (episodes and weather add a little), with the model's trend of -3.5 % a year.
NATIONAL_PM25_LEVEL = 29.0
# Where the national annual PM2.5 of a simulated network lands in the reference year 2025.
NATIONAL_PM25_RANGE = (28.0, 32.0)
FIRST_CITY = "110000"  # the capital
_CANDIDATES = 3  # the seed picks among the best few at each step
_REGION_PENALTY = 2.0  # µg/m³ per city already taken from a region: spread over the country


def city_order(seed: int = DEFAULT_SEED) -> list[City]:
    """All built-in cities in the order a network takes them: the capital first, then at each
    step one of the few cities that keep the running mean PM2.5 closest to the national level
    while spreading over the regions (north, south, west), chosen by the seed."""
    order = [CITY_BY_CODE[FIRST_CITY]]
    remaining = [c for c in CITIES if c.code != FIRST_CITY]
    regions = Counter(c.region for c in order)
    while remaining:
        total, count = sum(c.pm25 for c in order), len(order) + 1

        def score(city: City, total: float = total, count: int = count) -> tuple[float, str]:
            gap = abs((total + city.pm25) / count - NATIONAL_PM25_LEVEL)
            return gap + _REGION_PENALTY * regions[city.region], city.code

        ranked = sorted(remaining, key=score)
        choice = int(uniform(seed, 101, len(order)) * min(_CANDIDATES, len(ranked)))
        city = ranked[choice]
        order.append(city)
        remaining.remove(city)
        regions[city.region] += 1
    return order


def section_order(seed: int = DEFAULT_SEED) -> list[tuple[str, Section]]:
    """All built-in sections as (station id, section) in the order a network takes them:
    waterbodies interleaved by their weight (smooth weighted round-robin), each waterbody's
    sections in an order chosen by the seed; ids count up per waterbody."""
    queues = {
        code: sorted(
            (s for s in SECTIONS if s.waterbody_code == code),
            key=lambda s: (uniform(seed, 202, key_of(s.name)), s.name),
        )
        for code in WATERBODY_WEIGHTS
    }
    credit = dict.fromkeys(WATERBODY_WEIGHTS, 0)
    numbers: Counter[str] = Counter()
    order = []
    while any(queues.values()):
        open_codes = [code for code in WATERBODY_WEIGHTS if queues[code]]
        for code in open_codes:
            credit[code] += WATERBODY_WEIGHTS[code]
        code = max(open_codes, key=lambda c: credit[c])
        credit[code] -= sum(WATERBODY_WEIGHTS[c] for c in open_codes)
        numbers[code] += 1
        order.append((f"W-{code}-{numbers[code]:03d}", queues[code].pop(0)))
    return order


def _offset(seed: int, station_id: str, axis: int, spread: float) -> float:
    return round(spread * (uniform(seed, 303, key_of(station_id), axis) - 0.5), 4)


def air_stations(
    cities: Iterable[City], stations_per_city: int, seed: int, reading_interval_s: int
) -> list[Station]:
    stations = []
    for city in cities:
        for number in range(1, stations_per_city + 1):
            station_id = f"{city.code}-A{number:03d}"
            stations.append(
                Station(
                    station_id=station_id,
                    name=f"{city.name} No. {number}",
                    kind="air",
                    city=city.name,
                    city_code=city.code,
                    province=city.province,
                    latitude=round(city.latitude + _offset(seed, station_id, 1, 0.12), 4),
                    longitude=round(city.longitude + _offset(seed, station_id, 2, 0.12), 4),
                    reading_interval_s=reading_interval_s,
                )
            )
    return stations


def water_sections(
    sections: Iterable[tuple[str, Section]], reading_interval_s: int
) -> list[Station]:
    return [
        Station(
            station_id=station_id,
            name=section.name,
            kind="surface_water",
            waterbody="lake" if section.waterbody == "lake" else "river",
            basin=section.basin,
            city=section.city,
            city_code=section.city_code,
            province=section.province,
            latitude=section.latitude,
            longitude=section.longitude,
            reading_interval_s=reading_interval_s,
        )
        for station_id, section in sections
    ]


def build_network(
    seed: int = DEFAULT_SEED,
    cities: int = DEFAULT_CITIES,
    stations_per_city: int = DEFAULT_STATIONS_PER_CITY,
    sections: int = DEFAULT_SECTIONS,
    reading_interval_s: int = DEFAULT_INTERVAL_S,
) -> list[Station]:
    """The stations of a simulated national network: ``cities`` × ``stations_per_city`` air
    stations (ids like ``110000-A001``) and ``sections`` surface-water sections (ids like
    ``W-YANGTZE-001``), all registered with ``reading_interval_s``.

    The same arguments always give the same network; a larger count only adds stations."""
    if not 0 <= cities <= len(CITIES):
        raise ValueError(f"cities must be 0..{len(CITIES)} (the built-in table), not {cities}")
    if not 0 <= sections <= len(SECTIONS):
        raise ValueError(f"sections must be 0..{len(SECTIONS)}, not {sections}")
    if stations_per_city < 1 or stations_per_city > 999:
        raise ValueError("stations per city must be 1..999")
    return air_stations(
        city_order(seed)[:cities], stations_per_city, seed, reading_interval_s
    ) + water_sections(section_order(seed)[:sections], reading_interval_s)
