"""Six-pollutant assessment at national scale: the latency of ``air_assessment`` and
``status`` (reports.assessment) and of their API routes, on the levels the aggregation stage
keeps, filled directly — no raw readings, no import, no stage.

The workload:

* 339 prefecture-level cities × 5 air stations (1,695), each city in one of the 31
  province-level divisions (the 42 real cities of ``simulators.geography`` first, then numbered
  stand-ins "City 043" … with code 9xxxx0, provinces in turn), and 3,641 surface-water
  sections (river or lake, ten basins), registered with ``storage.stations.upsert_stations``;
* daily values of every station for every day of last year and of this year before
  ``--today`` (the day in progress is not kept yet), seeded (numpy): per city a level of each
  series (PM2.5 from the real city's annual mean or 15–44 µg/m³), a seasonal cycle (winter
  high; O3 summer high), the city's weather (AR(1) in log space, shared by the primary
  pollutants) and station and day noise; ≈ 3 % of city-days missing at every station
  (outages) and 1 % more station-days. Only what the stage keeps is stored, with binary COPY:
  - ``city_daily``: the mean of the city's stations' daily values of pm25, pm10, so2, no2, co,
    o3_8h and o3 (daily mean of hours), with the stations behind it;
  - ``station_yearly`` and ``city_yearly`` of the six series for both years (the year in
    progress: the days so far): mean, valid days, the HJ 663 percentile (linear, as
    ``percentile_cont``), days above the GB 3095 Grade II limit in force that day, valid days
    by month, the most stations behind a city's day;
  - ``city_daily_aqi`` of every city-day with data: the daily AQI from the city's daily
    values on the HJ 633 breakpoints of the version in force that day ('HJ 633-2012' before
    2026-03-01, then 'HJ 633-2026'), primary pollutants and missing ``{}``;
  - ``water_yearly`` of every section for both years from eight items' monthly means
    (``reports.water.section_year``, as the stage computes it): class, deciding items,
    months with data (this year: the months whose sampling day, the 10th, has passed),
    annual and monthly means.

Timed after one warm-up call, ``--repeats`` calls each (fewer, but at least three, once a
call has had ``--budget`` seconds), p50/p95/max in ms: ``air_assessment`` of this year so far
(with and without the stations), of last year (a whole year: the kept yearly rows),
``status`` of this year and its water part, and through the whole API (FastAPI's TestClient
on ``create_app``, as bench/national.py): ``GET /v1/status?year=…`` and
``GET /v1/compliance/air/assessment?year=…`` as JSON and CSV. The API dates the year in
progress by the real Beijing day, so ``--today`` defaults to it. ``--profile``: where the time
of ``status`` goes (pyinstrument); ``--explain``: the plans of the queries a year so far adds.
Printed: the fill, the row count and size of each table, the figures, a few checks of the
results and a one-line summary for BENCHMARKS.md.

Run from the project root:  .venv/bin/python -m bench.assessment [--profile] [--explain]
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from bench.national import (  # noqa: E402
    CLASS_SHARES,
    DECIDING_ITEMS,
    Latency,
    WaterSection,
    _item_value,
)
from reports import today_in_china  # noqa: E402
from reports.water import SectionYear, section_year  # noqa: E402
from schemas.stations import Station  # noqa: E402
from simulators.geography import CITIES  # noqa: E402
from standards.aqi import AQI_VERSIONS, IAQI_LEVELS, aqi_version_in_force  # noqa: E402
from standards.assessment import STATISTICS  # noqa: E402
from standards.limits import limit_set_in_force  # noqa: E402
from standards.review import DUST_EXCLUDED  # noqa: E402

console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

N_CITIES = 339
STATIONS_PER_CITY = 5
N_SECTIONS = 3641
# The province-level divisions the real cities lie in (31): the stand-ins take them in turn.
PROVINCES = tuple(sorted({c.province for c in CITIES}))
# The daily series the stage keeps per city: the six of the assessment and O3 daily means.
DAILY_SERIES = ("pm25", "pm10", "so2", "no2", "co", "o3_8h", "o3")
YEARLY_SERIES = DAILY_SERIES[:6]
PERCENTILE_RANKS = {
    s.series: float(s.rank) for s in STATISTICS if s.kind == "percentile" and s.rank
}
CITY_DAY_MISSING = 0.03  # a city-day missing at every station (outage, transmission)
STATION_DAY_MISSING = 0.01  # and a station-day missing on its own
# The tables filled here (emptied first), and what the row counts are given for.
FILLED_TABLES = ("city_daily", "city_daily_aqi", "station_yearly", "city_yearly", "water_yearly")
COUNTED_TABLES = ("stations", *FILLED_TABLES, "aggregation_queue")
# Items of a section's monthly means: the five deciding ones of national practice besides pH,
# DO and fluoride (a subset of the 21 of GB 3838 Table 1 assessed for national sections).
WATER_ITEMS = ("ph", "do", "codmn", "cod", "bod5", "nh3_n", "tp", "fluoride")
WATER_SAMPLING_DAY = 10  # a section's month has its sample once the 10th has passed
BASINS = ("Yangtze", "Yellow River", "Pearl River", "Huai River", "Hai River",
          "Songhua River", "Liao River", "Taihu", "Chaohu", "Dianchi")  # fmt: skip
MIN_CALLS = 3  # timed calls of each, whatever --budget says


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class City:
    code: str
    name: str
    province: str
    latitude: float
    longitude: float
    pm25: float  # typical annual PM2.5, µg/m³


@dataclass
class Network:
    cities: list[City]
    stations: list[Station]  # air, STATIONS_PER_CITY a city in city order
    sections: list[WaterSection]

    @property
    def city_of_station(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.cities)), STATIONS_PER_CITY)


def build_network(seed: int) -> Network:
    rng = np.random.default_rng(seed)
    cities = []
    for i in range(N_CITIES):
        if i < len(CITIES):
            real = CITIES[i]
            cities.append(
                City(real.code, real.name, real.province, real.latitude, real.longitude, real.pm25)
            )
        else:
            cities.append(
                City(
                    f"9{i + 1:04d}0",
                    f"City {i + 1:03d}",
                    PROVINCES[i % len(PROVINCES)],
                    round(float(rng.uniform(21, 46)), 3),
                    round(float(rng.uniform(86, 127)), 3),
                    round(float(rng.uniform(15, 44)), 1),
                )
            )
    stations = [
        Station(
            station_id=f"{c.code}-A{k + 1:02d}",
            name=f"{c.name} site {k + 1}",
            kind="air",
            city=c.name,
            city_code=c.code,
            province=c.province,
            latitude=round(c.latitude + float(rng.uniform(-0.1, 0.1)), 4),
            longitude=round(c.longitude + float(rng.uniform(-0.1, 0.1)), 4),
        )
        for c in cities
        for k in range(STATIONS_PER_CITY)
    ]
    classes = rng.choice(6, size=N_SECTIONS, p=CLASS_SHARES) + 1
    sections = []
    for i in range(N_SECTIONS):
        basin = BASINS[i % len(BASINS)]
        c = cities[i % N_CITIES]
        sections.append(
            WaterSection(
                station_id=f"W-N{i + 1:05d}",
                name=f"{basin} section {i + 1}",
                basin=basin,
                waterbody="lake" if basin in ("Taihu", "Chaohu", "Dianchi") else "river",
                city=c.name,
                city_code=c.code,
                province=c.province,
                latitude=round(c.latitude + float(rng.uniform(-0.3, 0.3)), 4),
                longitude=round(c.longitude + float(rng.uniform(-0.3, 0.3)), 4),
                quality=float(classes[i] - 1 + rng.uniform(0.15, 0.95)),
            )
        )
    return Network(cities, stations, sections)


def section_stations(network: Network) -> list[Station]:
    return [
        Station(
            station_id=s.station_id,
            name=s.name,
            kind="surface_water",
            waterbody=s.waterbody,  # type: ignore[arg-type]
            basin=s.basin,
            city=s.city,
            city_code=s.city_code,
            province=s.province,
            latitude=s.latitude,
            longitude=s.longitude,
            reading_interval_s=86400,
        )
        for s in network.sections
    ]


# --------------------------------------------------------------------------------------------
# Daily values and what the stage keeps of them
# --------------------------------------------------------------------------------------------
@dataclass
class AirDays:
    days: list[date]
    station: np.ndarray  # (series, stations, days), NaN: no valid daily value
    city: np.ndarray  # (series, cities, days), NaN: no station had one
    city_stations: np.ndarray  # (cities, days): stations behind the city's value

    @property
    def years(self) -> np.ndarray:
        return np.array([d.year for d in self.days])

    @property
    def months(self) -> np.ndarray:
        return np.array([d.month for d in self.days])


def _weather(rng: np.random.Generator, days: int, cities: int, sd: float) -> np.ndarray:
    """A multiplicative day-to-day factor of each city (AR(1) in log space, mean 1)."""
    phi = 0.7
    out = np.empty((days, cities))
    x = np.zeros(cities)
    for d in range(days):
        x = phi * x + rng.normal(0, sd, cities)
        out[d] = x
    return np.exp(out - sd**2 / (2 * (1 - phi**2)))


def air_days(network: Network, first: date, last: date, seed: int) -> AirDays:
    """Daily values of every station and city, ``first`` … ``last`` (see the module)."""
    rng = np.random.default_rng(seed + 1)
    days = [first + timedelta(days=d) for d in range((last - first).days + 1)]
    n_days, n_cities = len(days), len(network.cities)
    city_of = network.city_of_station
    n_stations = len(city_of)
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=np.float64)
    winter = np.cos(2 * np.pi * (doy - 10) / 365.25)  # 1 in early January
    summer = np.cos(2 * np.pi * (doy - 175) / 365.25)  # 1 in late June
    haze = _weather(rng, n_days, n_cities, 0.35)  # shared by the primary pollutants
    sun = _weather(rng, n_days, n_cities, 0.15)  # O3
    pm25 = np.array([c.pm25 for c in network.cities])
    o3_8h = rng.uniform(85, 125, n_cities)
    bases = {
        "pm25": (pm25, 0.45 * winter, haze),
        "pm10": (pm25 * rng.uniform(1.5, 2.0, n_cities), 0.35 * winter, haze),
        "so2": (rng.lognormal(np.log(9), 0.4, n_cities), 0.5 * winter, haze),
        "no2": (rng.uniform(15, 38, n_cities), 0.3 * winter, haze**0.6),
        "co": (rng.uniform(0.5, 1.1, n_cities), 0.35 * winter, haze**0.7),  # mg/m³
        "o3_8h": (o3_8h, 0.35 * summer, sun),
        "o3": (o3_8h * rng.uniform(0.55, 0.7, n_cities), 0.35 * summer, sun),
    }
    station = np.empty((len(DAILY_SERIES), n_stations, n_days))
    for k, series in enumerate(DAILY_SERIES):
        base, season, weather = bases[series]
        level = base[None, :] * (1 + season[:, None]) * weather  # (days, cities)
        factor = rng.lognormal(-(0.08**2) / 2, 0.08, n_stations)
        noise = rng.lognormal(-(0.1**2) / 2, 0.1, (n_days, n_stations))
        values = level[:, city_of] * factor[None, :] * noise
        station[k] = np.round(values.T, 3 if series == "co" else 1)
    outage = rng.random((n_cities, n_days)) < CITY_DAY_MISSING
    missing = outage[city_of] | (rng.random((n_stations, n_days)) < STATION_DAY_MISSING)
    station[:, missing] = np.nan
    grouped = station.reshape(len(DAILY_SERIES), n_cities, STATIONS_PER_CITY, n_days)
    present = ~np.isnan(grouped)
    count = present.sum(axis=2)  # (series, cities, days)
    total = np.where(present, grouped, 0.0).sum(axis=2)
    city = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return AirDays(days, station, city, count[0])


@dataclass(frozen=True)
class Yearly:
    """The kept yearly statistics of one series of each station or city (arrays over them)."""

    series: str
    mean: np.ndarray
    valid_days: np.ndarray
    percentile: np.ndarray  # NaN: none
    days_over_limit: np.ndarray
    by_month: np.ndarray  # (entities, 12)


def _limits_by_day(days: Sequence[date], series: str) -> np.ndarray:
    pollutant, period = ("o3", "8h") if series == "o3_8h" else (series, "24h")
    sets = {d: limit_set_in_force(d) for d in days}
    return np.array([sets[d].limit(pollutant, period, 2) or np.inf for d in days])


def yearly(values: np.ndarray, air: AirDays, year: int) -> list[Yearly]:
    """Statistics of ``values`` (series, entities, days) over the days of ``year`` held."""
    chosen = air.years == year
    days = [d for d, keep in zip(air.days, chosen, strict=True) if keep]
    months = air.months[chosen]
    out = []
    for k, series in enumerate(YEARLY_SERIES):
        v = values[k][:, chosen]
        present = ~np.isnan(v)
        valid = present.sum(axis=1)
        mean = np.where(present, v, 0.0).sum(axis=1) / np.maximum(valid, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an entity without a day
            pct = np.nanpercentile(v, PERCENTILE_RANKS[series], axis=1)
        over = (np.nan_to_num(v, nan=-1.0) > _limits_by_day(days, series)[None, :]).sum(axis=1)
        by_month = np.stack([(present & (months == m)).sum(axis=1) for m in range(1, 13)], 1)
        out.append(Yearly(series, mean, valid, pct, over, by_month))
    return out


def daily_aqi(air: AirDays) -> tuple[np.ndarray, list[str]]:
    """(cities, days) daily AQI (ceiling of the largest IAQI; -1: no value) and each day's
    HJ 633 version, from the cities' daily values."""
    inputs = {  # breakpoint table of each series
        "pm25": "pm25_24h", "pm10": "pm10_24h", "so2": "so2_24h", "no2": "no2_24h",
        "co": "co_24h", "o3_8h": "o3_8h",
    }  # fmt: skip
    versions = [aqi_version_in_force(d) for d in air.days]
    names = [v.name for v in versions]
    aqi = np.full(air.city.shape[1:], -1.0)
    for version in AQI_VERSIONS:
        on = np.array([v is version for v in versions])
        if not on.any():
            continue
        best = np.full((air.city.shape[1], int(on.sum())), -1.0)
        for series, table in inputs.items():
            values = air.city[DAILY_SERIES.index(series)][:, on]
            points = version.breakpoints[table]
            iaqi = np.interp(values, points, IAQI_LEVELS[: len(points)])
            best = np.fmax(best, np.where(np.isnan(values), -1.0, iaqi))
        aqi[:, on] = best
    return np.where(aqi >= 0, np.ceil(aqi), -1), names


def water_years(
    network: Network, year: int, months: int, seed: int, drift: float
) -> list[SectionYear]:
    """Each section's year from its eight items' monthly means of January … ``months``;
    ``drift``: the spread of a section's change of quality against its base year."""
    rng = np.random.default_rng(seed + 2 + year)
    out = []
    for s in network.sections:
        deciding = DECIDING_ITEMS[int(rng.integers(len(DECIDING_ITEMS)))]
        quality = max(0.05, s.quality + float(rng.normal(0, drift)))
        rows = []
        for month in range(1, months + 1):
            month_q = max(0.05, quality + float(rng.normal(0, 0.15)))
            for item in WATER_ITEMS:
                q = month_q if item == deciding else max(0.05, month_q - rng.uniform(0.6, 2.5))
                value = _item_value(item, q, s.waterbody, rng)
                rows.append((item, month, value, value))
        out.append(section_year(rows, s.waterbody))
    return out


def water_months(year: int, today: date) -> int:
    """Months of ``year`` whose sampling day has passed on ``today``."""
    if year < today.year:
        return 12
    return today.month if today.day > WATER_SAMPLING_DAY else today.month - 1


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------
def _f(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.today: date = args.today
        self.year = self.today.year
        self.stack = ExitStack()
        self.database_url = ""
        self.network = build_network(args.seed)
        self.latencies: list[Latency] = []
        self.fill: list[tuple[str, int, float]] = []  # table, rows, seconds
        self.counts: list[tuple[str, int, int]] = []  # table, rows, bytes
        self.checks: list[str] = []
        self.notes: list[str] = []

    def say(self, text: str = "") -> None:
        console.print(text, markup=False)

    def progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description:<30}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )

    # --- the database --------------------------------------------------------------------
    def start(self) -> None:
        url = self.args.database_url or os.environ.get("AIRWATER_DATABASE_URL")
        if url and not self.args.yes:
            raise SystemExit(
                f"{url}: the benchmark would empty {', '.join(FILLED_TABLES)} there and "
                "register its stations. Pass --yes to allow it, or leave --database-url and "
                "AIRWATER_DATABASE_URL unset to use a private database."
            )
        if url:
            self.database_url = url
        else:
            base = Path(self.args.work_dir) if self.args.work_dir else None
            if base is not None:
                base.mkdir(parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix="airwater-assessment-", dir=base))
            if not self.args.keep:
                self.stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            from airwater.embedded import PostgresServer

            pg = PostgresServer(workdir / "postgres")
            pg.start()
            self.stack.callback(pg.stop, "fast")
            self.database_url = pg.url
            self.say(f"work dir {workdir}")
        self.say(f"database {self.database_url}")
        from storage.migrate import migrate

        with psycopg.connect(self.database_url) as conn:
            migrate(conn)
            conn.execute(f"TRUNCATE {', '.join(FILLED_TABLES)}")
            conn.commit()

    def register(self) -> None:
        from storage.stations import upsert_stations

        started = time.perf_counter()
        with psycopg.connect(self.database_url) as conn:
            air = upsert_stations(conn, self.network.stations)
            water = upsert_stations(conn, section_stations(self.network))
            others = conn.execute(
                "SELECT count(*) FROM stations WHERE station_id <> ALL(%s)",
                ([s.station_id for s in self.network.stations]
                 + [s.station_id for s in self.network.sections],),
            ).fetchone()  # fmt: skip
        if others and others[0]:
            self.notes.append(f"{others[0]:,} other stations were registered before: counted too")
        seconds = time.perf_counter() - started
        self.fill.append(("stations (upsert_stations)", sum(air) + sum(water), seconds))
        self.say(
            f"registered {len(self.network.stations):,} air stations in "
            f"{len(self.network.cities)} cities ({len(PROVINCES)} provinces) and "
            f"{len(self.network.sections):,} water sections in {seconds:.1f} s"
        )

    # --- the kept levels -----------------------------------------------------------------
    def generate(self) -> None:
        started = time.perf_counter()
        first = date(self.year - 1, 1, 1)
        last = self.today - timedelta(days=1)
        self.air = air_days(self.network, first, last, self.args.seed)
        self.aqi, self.aqi_versions = daily_aqi(self.air)
        self.station_years = {y: yearly(self.air.station, self.air, y) for y in self.years}
        self.city_years = {y: yearly(self.air.city, self.air, y) for y in self.years}
        self.water = {
            y: water_years(
                self.network,
                y,
                water_months(y, self.today),
                self.args.seed,
                0.0 if y == self.year - 1 else 0.2,
            )
            for y in self.years
        }
        self.say(
            f"generated {len(self.air.days)} days ({first} … {last}) of "
            f"{len(DAILY_SERIES)} daily series and the yearly levels of {len(self.years)} years "
            f"in {time.perf_counter() - started:.1f} s"
        )

    @property
    def years(self) -> list[int]:
        return [self.year - 1, self.year]

    def city_daily_rows(self) -> Iterator[tuple[Any, ...]]:
        codes = [c.code for c in self.network.cities]
        for k, series in enumerate(DAILY_SERIES):
            count = self.air.city_stations  # every series misses the same days
            cities, days = np.nonzero(count > 0)
            means = self.air.city[k][cities, days].tolist()
            for c, d, mean, n in zip(
                cities.tolist(), days.tolist(), means, count[cities, days].tolist(), strict=True
            ):
                yield codes[c], series, self.air.days[d], mean, n
                if series in DUST_EXCLUDED:  # no sand-dust event: the excluded series is the same
                    yield codes[c], DUST_EXCLUDED[series], self.air.days[d], mean, n

    def yearly_rows(self, city: bool) -> Iterator[tuple[Any, ...]]:
        most: list[list[int]] = []
        if city:
            keys = [c.code for c in self.network.cities]
            found = self.city_years
            most = [
                self.air.city_stations[:, self.air.years == y].max(axis=1).tolist()
                for y in self.years
            ]
        else:
            keys = [s.station_id for s in self.network.stations]
            found = self.station_years
        for position, year in enumerate(self.years):
            for stats in found[year]:
                for i, key in enumerate(keys):
                    valid = int(stats.valid_days[i])
                    if not valid:
                        continue
                    row: tuple[Any, ...] = (
                        stats.series, year, key, float(stats.mean[i]), valid,
                        _f(stats.percentile[i]), int(stats.days_over_limit[i]),
                        stats.by_month[i].tolist(),
                    )  # fmt: skip
                    rows = [row]
                    if stats.series in DUST_EXCLUDED:  # no sand-dust event: the same figures
                        rows.append((DUST_EXCLUDED[stats.series], *row[1:]))
                    for one in rows:
                        yield (*one, int(most[position][i])) if city else one

    def aqi_rows(self) -> Iterator[tuple[Any, ...]]:
        codes = [c.code for c in self.network.cities]
        cities, days = np.nonzero(self.aqi >= 0)
        for c, d, aqi in zip(
            cities.tolist(), days.tolist(), self.aqi[cities, days].tolist(), strict=True
        ):
            yield codes[c], self.air.days[d], int(aqi), self.aqi_versions[d], [], False, None, []

    def water_rows(self) -> Iterator[tuple[Any, ...]]:
        for year in self.years:
            for s, found in zip(self.network.sections, self.water[year], strict=True):
                yield (
                    year, s.station_id, found.water_class, found.method, found.deciding,
                    found.months_with_data, found.annual_means, found.monthly_means,
                )  # fmt: skip

    def copy_all(self) -> None:
        n_city_days = int((self.air.city_stations > 0).sum())
        tables: list[tuple[str, str, list[str], Callable[[], Iterator[tuple[Any, ...]]], int]] = [
            (
                "city_daily",
                "city_code, parameter, day, mean, stations",
                ["text", "text", "date", "float8", "int4"],
                self.city_daily_rows,
                n_city_days * (len(DAILY_SERIES) + len(DUST_EXCLUDED)),
            ),
            (
                "city_daily_aqi",
                "city_code, day, aqi, version, primary_pollutants, beyond_index, "
                "not_computable, missing",
                ["text", "date", "int4", "text", "text[]", "bool", "text", "text[]"],
                self.aqi_rows,
                int((self.aqi >= 0).sum()),
            ),
            (
                "station_yearly",
                "parameter, year, station_id, mean, valid_days, percentile, days_over_limit, "
                "valid_days_by_month",
                ["text", "int4", "text", "float8", "int4", "float8", "int4", "int4[]"],
                partial(self.yearly_rows, False),
                sum(
                    int((s.valid_days > 0).sum()) for y in self.years for s in self.station_years[y]
                ),
            ),
            (
                "city_yearly",
                "parameter, year, city_code, mean, valid_days, percentile, days_over_limit, "
                "valid_days_by_month, stations",
                ["text", "int4", "text", "float8", "int4", "float8", "int4", "int4[]", "int4"],
                partial(self.yearly_rows, True),
                sum(int((s.valid_days > 0).sum()) for y in self.years for s in self.city_years[y]),
            ),
            (
                "water_yearly",
                "year, station_id, water_class, method, deciding, months_with_data, "
                "annual_means, monthly_means",
                ["int4", "text", "int4", "text", "text[]", "int4", "jsonb", "jsonb"],
                self.water_rows,
                len(self.network.sections) * len(self.years),
            ),
        ]
        with psycopg.connect(self.database_url) as conn, self.progress() as bar:
            for table, columns, types, rows, total in tables:
                task = bar.add_task(f"COPY {table}", total=total)
                started = time.perf_counter()
                written = 0
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
                ):
                    copy.set_types(types)
                    for row in rows():
                        copy.write_row(row)
                        written += 1
                        if written % 50_000 == 0:
                            bar.update(task, completed=written)
                conn.commit()
                bar.update(task, completed=written)
                self.fill.append((table, written, time.perf_counter() - started))
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute("VACUUM ANALYZE")
            self.notes.append(
                f"VACUUM ANALYZE after the fill: {time.perf_counter() - started:.1f} s"
            )

    def count_rows(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for table in COUNTED_TABLES:
                row = conn.execute(
                    f"SELECT (SELECT count(*) FROM {table}), pg_total_relation_size(%s)", (table,)
                ).fetchone()
                assert row is not None
                self.counts.append((table, int(row[0]), int(row[1])))

    # --- latencies -----------------------------------------------------------------------
    def latencies_storage(self) -> None:
        from reports import air_assessment, status
        from reports.assessment import water_status
        from standards.assessment import Period, year_period

        year, today = self.year, self.today
        period, _ = year_period(year, today)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            now = air_assessment(conn, year, today)
            last = air_assessment(conn, year - 1, today, with_stations=False)
            found = status(conn, year, today)
            pm25 = found.air
            last_pm25 = next(
                s.published for s in last.national.period.statistics if s.key == "pm25_mean"
            )
            self.checks += [
                f"air {year} ({now.period_start} … {now.period_end}, {now.standard}): "
                f"{len(now.cities)} cities, {now.cities_assessed} assessed, "
                f"{now.cities_attaining} attaining all six, {len(now.provinces)} provinces, "
                f"{len(now.stations):,} stations; national PM2.5 {pm25.pm25} µg/m³ "
                f"(same period {pm25.pm25_same_period}, {pm25.pm25_change_percent} %), "
                f"good days {pm25.good_day_share} %",
                f"air {year - 1} (whole year): {last.cities_assessed} cities assessed, "
                f"{last.cities_attaining} attaining, national PM2.5 {last_pm25} µg/m³",
                f"water {found.water.months}: {found.water.sections_assessed:,} sections, "
                f"Class I–III {found.water.excellent_share} % (same months "
                f"{found.water.same_period_excellent_share} %)",
            ]
            whole = Period(date(year - 1, 1, 1), date(year - 1, 12, 31))
            self.measure(
                [
                    (
                        f"air_assessment({year}, so far), with stations",
                        partial(air_assessment, conn, year, today),
                        f"{period.days} days: city statistics of both periods from city_daily",
                    ),
                    (
                        f"air_assessment({year}, so far), without stations",
                        partial(air_assessment, conn, year, today, with_stations=False),
                        "",
                    ),
                    (
                        f"air_assessment({year - 1}, whole year), with stations",
                        partial(air_assessment, conn, year - 1, today),
                        f"kept yearly rows ({year - 2}, its same period, has none: nothing filled)",
                    ),
                    (
                        f"status({year}, so far)",
                        partial(status, conn, year, today),
                        "air_assessment without stations + water_status",
                    ),
                    (
                        f"  of which water_status({year}, so far)",
                        partial(water_status, conn, period),
                        f"{found.water.months}: classes from the monthly means, both years",
                    ),
                    (
                        f"water_status({year - 1}, whole year)",
                        partial(water_status, conn, whole),
                        "kept annual classes",
                    ),
                ]
            )

    def measure(self, calls: Sequence[tuple[str, Callable[[], object], str]]) -> None:
        """Each call once to warm up, then ``--repeats`` times, or fewer (at least
        MIN_CALLS) once ``--budget`` seconds have gone on it."""
        repeats, budget = self.args.repeats, self.args.budget
        with self.progress() as bar:
            for label, fn, note in calls:
                task = bar.add_task(label.strip()[:30], total=repeats)
                fn()
                found = Latency(label, note=note)
                deadline = time.perf_counter() + budget
                while len(found.samples) < repeats and (
                    len(found.samples) < MIN_CALLS or time.perf_counter() < deadline
                ):
                    started = time.perf_counter()
                    fn()
                    found.samples.append(time.perf_counter() - started)
                    bar.advance(task)
                self.latencies.append(found)

    @contextmanager
    def api(self) -> Iterator[Callable[..., Any]]:
        """The whole API through FastAPI's TestClient, on a pool of its own (as
        bench/national.py): yields ``get(path, **params)``, which asserts a 200."""
        from fastapi.testclient import TestClient
        from pydantic import SecretStr

        from api import create_app
        from core.db import make_pool
        from core.settings import Settings
        from storage.writer import prepare_connection

        key = secrets.token_urlsafe(32)
        settings = Settings(
            database_url=self.database_url,
            mqtt_url="mqtt://127.0.0.1:1",
            admin_key=SecretStr(key),
            metrics_port=0,
            api_rate_per_s=10_000,
            api_rate_burst=10_000,
        )
        pool = make_pool(self.database_url, max_size=2, configure=prepare_connection, name="bench")
        pool.open()
        try:
            with TestClient(create_app(settings, pool)) as client:
                client.headers["Authorization"] = f"Bearer {key}"

                def get(path: str, **params: str) -> Any:
                    response = client.get(path, params=params)
                    assert response.status_code == 200, response.text[:2000]
                    return response

                yield get
        finally:
            pool.close()

    def latencies_api(self) -> None:
        real = today_in_china()
        if self.year > real.year:
            self.notes.append(f"API not timed: {self.year} has not begun in Beijing ({real})")
            return
        if real != self.today:
            self.notes.append(
                f"the API dates {self.year} by the real Beijing day {real}, not --today "
                f"{self.today}: its period differs from the storage calls'"
            )
        year = str(self.year)
        with self.api() as get:
            sizes = {
                "status": len(get("/v1/status", year=year).content),
                "json": len(get("/v1/compliance/air/assessment", year=year).content),
                "csv": len(get("/v1/compliance/air/assessment", year=year, format="csv").content),
            }
            self.measure(
                [
                    (
                        f"GET /v1/status?year={year}",
                        partial(get, "/v1/status", year=year),
                        f"{sizes['status'] / 1024:,.0f} KiB",
                    ),
                    (
                        f"GET /v1/compliance/air/assessment?year={year} (JSON)",
                        partial(get, "/v1/compliance/air/assessment", year=year),
                        f"{sizes['json'] / 2**20:,.1f} MiB: every level, with the stations",
                    ),
                    (
                        f"GET /v1/compliance/air/assessment?year={year}&format=csv",
                        partial(get, "/v1/compliance/air/assessment", year=year, format="csv"),
                        f"{sizes['csv'] / 1024:,.0f} KiB: national and city rows",
                    ),
                ]
            )

    def explain(self) -> None:
        """EXPLAIN (ANALYZE, BUFFERS) of what a year so far reads beyond the kept rows: the
        cities' statistics of the period and their AQI days; printed (top) and kept."""
        from standards.assessment import (
            GOOD_DAY_MAX_AQI,
            HEAVY_DAY_MIN_AQI,
            SERIES,
            year_period,
        )
        from storage.assessment import CITY_AQI_DAYS, CITY_PERIOD_STATISTICS

        period, _ = year_period(self.year, self.today)
        fractions = {
            s.series: s.rank / 100 for s in STATISTICS if s.kind == "percentile" and s.rank
        }
        statements = (
            (
                "CITY_PERIOD_STATISTICS",
                CITY_PERIOD_STATISTICS,
                {
                    "series": list(SERIES),
                    "fraction_series": list(fractions),
                    "fraction": list(fractions.values()),
                    "start": period.start,
                    "end": period.end,
                },
            ),
            (
                "CITY_AQI_DAYS",
                CITY_AQI_DAYS,
                {
                    "start": period.start,
                    "end": period.end,
                    "good_max": GOOD_DAY_MAX_AQI,
                    "heavy_min": HEAVY_DAY_MIN_AQI,
                },
            ),
        )
        out = Path(self.args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "assessment-explain.txt"
        with (
            psycopg.connect(self.database_url, autocommit=True) as conn,
            open(path, "w", encoding="utf-8") as f,
        ):
            for name, sql, params in statements:
                plan = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)]
                f.write(f"== {name} ({period.start} … {period.end})\n" + "\n".join(plan) + "\n\n")
                self.say()
                self.say(f"== EXPLAIN ANALYZE {name} ({period.start} … {period.end}), top:")
                self.say("\n".join(p for p in plan[:12] if "Buffers" not in p))
                self.say(next((p for p in plan if p.startswith("Execution Time")), ""))
        self.say(f"plans in {path}")

    def profile(self) -> None:
        """pyinstrument over ``--profile-calls`` calls of status: printed and kept."""
        from pyinstrument import Profiler

        from reports import status

        calls = self.args.profile_calls
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            status(conn, self.year, self.today)  # warm
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for _ in range(calls):
                status(conn, self.year, self.today)
            profiler.stop()
        tree = profiler.output_text(unicode=True, color=False)
        flat = profiler.output_text(unicode=True, color=False, flat=True)
        out = Path(self.args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "assessment-profile-status.txt"
        path.write_text(tree + "\n\n== flat (self time)\n" + flat, encoding="utf-8")
        self.say()
        self.say(f"== pyinstrument: status({self.year}, {self.today}) × {calls} (full: {path})")
        self.say(tree)
        self.say("== flat, self time (top 20)")
        self.say("\n".join(flat.splitlines()[:26]))

    # --- report --------------------------------------------------------------------------
    def report(self) -> None:
        n = self.network
        self.say()
        self.say(
            f"== Assessment at national scale: {len(n.cities)} cities, {len(n.stations):,} "
            f"air stations, {len(n.sections):,} sections; this year {self.year} up to "
            f"{self.today} (Beijing), last year {self.year - 1} whole"
        )
        self.say("| fill | rows | s | rows/s |")
        self.say("| --- | ---: | ---: | ---: |")
        for table, rows, seconds in self.fill:
            self.say(f"| {table} | {rows:,} | {seconds:.1f} | {rows / seconds:,.0f} |")
        self.say()
        self.say("| table | rows | size |")
        self.say("| --- | ---: | ---: |")
        for table, rows, size in self.counts:
            self.say(f"| {table} | {rows:,} | {size / 2**20:,.1f} MiB |")
        self.say()
        self.say("| call (after one warm-up) | calls | p50 ms | p95 ms | max ms | |")
        self.say("| --- | ---: | ---: | ---: | ---: | --- |")
        for lat in self.latencies:
            self.say(
                f"| {lat.label} | {len(lat.samples)} | {lat.pct(50):,.1f} | {lat.pct(95):,.1f} "
                f"| {max(lat.samples) * 1000:,.1f} | {lat.note} |"
            )
        self.say()
        for line in self.checks:
            self.say(f"check: {line}")
        for line in self.notes:
            self.say(f"note: {line}")
        self.say()
        self.say("summary: " + self.summary())

    def summary(self) -> str:
        def fig(prefix: str) -> str:
            lat = next((x for x in self.latencies if x.label.startswith(prefix)), None)
            return "–" if lat is None else f"{lat.pct(50):.0f}/{lat.pct(95):.0f}"

        y = self.year
        assessment = f"GET /v1/compliance/air/assessment?year={y}"
        counts = sorted({len(x.samples) for x in self.latencies})
        calls = "–" if not counts else "–".join(str(c) for c in {counts[0], counts[-1]})
        return (
            f"assessment, {len(self.network.cities)} cities / {len(self.network.stations):,} "
            f"stations / {len(self.network.sections):,} sections, {y} to {self.today} "
            f"(p50/p95 ms, {calls} calls each): air_assessment so far "
            f"{fig(f'air_assessment({y}, so far), with')} with stations, "
            f"{fig(f'air_assessment({y}, so far), without')} without; whole {y - 1} "
            f"{fig(f'air_assessment({y - 1}')}; status {fig(f'status({y}')} (water part "
            f"{fig('  of which water_status')}); GET /v1/status {fig('GET /v1/status')}, "
            f"GET …/air/assessment JSON {fig(assessment + ' (')}, CSV {fig(assessment + '&')}"
        )


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="The levels are filled directly (binary COPY), not computed by the stage: a few "
        "minutes in all on two cores.",
    )
    parser.add_argument(
        "--today",
        type=_day,
        default=today_in_china(),
        help="the day the year in progress is assessed to (YYYY-MM-DD; default today in "
        "Beijing, which is what the API uses); data are filled up to the day before",
    )
    parser.add_argument(
        "--repeats", type=int, default=20, help="timed calls of each at most (default 20)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=30,
        help=f"seconds of timed calls of each, after which no more are made once it has "
        f"{MIN_CALLS} (default 30: a slow call is timed fewer than --repeats times)",
    )
    parser.add_argument("--seed", type=int, default=15, help="of the generated values (default 15)")
    parser.add_argument(
        "--database-url",
        help="use this database (needs --yes: it empties the filled tables); default a private "
        "PostgreSQL+TimescaleDB in a temporary folder",
    )
    parser.add_argument("--yes", action="store_true", help="allow emptying the tables there")
    parser.add_argument("--skip-api", action="store_true", help="time the storage calls only")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print where status's time goes (pyinstrument, --profile-calls calls)",
    )
    parser.add_argument(
        "--profile-calls", type=int, default=3, help="status calls profiled (default 3)"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of the period statistics and AQI-days queries",
    )
    parser.add_argument("--work-dir", help="make the private database's folder in here")
    parser.add_argument("--keep", action="store_true", help="keep the private database's folder")
    parser.add_argument(
        "--out-dir", default=str(ROOT / "data" / "bench"), help="where the profile is written"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.profile_calls < 1:
        parser.error("--repeats and --profile-calls must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    console.print(
        f"airwater assessment benchmark: today {args.today}, {os.cpu_count()} CPUs, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        markup=False,
    )
    with bench.stack:
        bench.start()
        bench.register()
        bench.generate()
        bench.copy_all()
        bench.count_rows()
        bench.latencies_storage()
        if not args.skip_api:
            bench.latencies_api()
        bench.report()
        if args.explain:
            bench.explain()
        if args.profile:
            bench.profile()
    return 0


if __name__ == "__main__":
    sys.exit(main())
