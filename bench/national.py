"""National-scale benchmark: a year of hourly PM2.5 for China's air network and a year of
monthly surface-water data, imported, then the national reports timed.

The workload (at ``--scale 1``):

* 1,734 air stations in 339 prefecture-level cities, one year of hourly PM2.5 (≈ 15.2 M
  readings) in the wide layout of China's national hourly data: one file per day,
  ``china_sites_YYYYMMDD.csv`` with header ``date,hour,type,<station code>,…`` and, per hour,
  an ``AQI``, a ``PM2.5`` and a ``PM2.5_24h`` row (only PM2.5 rows are readings; the derived
  rows are skipped by the importer), plus the station list ``code,name,city,longitude,
  latitude``. The first 43 cities are the real ones of ``simulators.geography``; the others
  are numbered stand-ins (code 9xxxx0, "City 044") with the same spread of PM2.5 levels.
* 3,641 surface-water sections, twelve monthly samples of the 21 GB 3838 items assessed for
  national sections, as CSV long form ``station,parameter,ts,value`` (≈ 917 k readings), with
  a registry file for ``airwater stations import``.

Measured in one run, on private services started like ``bench/ingest.py`` does:

* raw COPY: the same PM2.5 readings, binary ``COPY readings … FROM STDIN`` + COMMIT;
* import: ``airwater import --no-settle`` of the files (as a subprocess, wall clock: the commit
  path, raw readings and their queued station-days), or, where this checkout has no ``import``
  command yet, the files parsed here and stored with ``storage.writer.write_batch`` (labelled
  as such);
* the aggregation stage draining what each import queued (``ingest.aggregation.Stage`` on one
  connection, as ``airwater import`` does when it settles): seconds and station-days/s;
* p50/p95 over ``--repeats`` calls of ``air_report`` (national PM2.5) and ``water_report`` for
  the year (storage call and ``GET /v1/compliance/…``), and of one station's year of hourly
  readings (the query behind ``GET /v1/stations/{id}/readings``, storage and API), on a quiet
  database;
* the same reports while ingest goes on (``--live-rate`` readings/s of current-time PM2.5 for
  the network's stations, stored with ``write_batch`` by a separate process, one aggregation
  stage ``python -m ingest.aggregation`` running): for the benchmark's year and for the
  current year, into which the last ``--live-days`` days (from the generated values) and one
  water sample per section are written first, so that its report has every station, city and
  section; the stage's lag during that phase;
* size on disk of ``readings`` and of every derived level and the queue, in MiB and MiB per
  million raw readings (before the live phase).

Run from the project root:  .venv/bin/python -m bench.national [--scale 0.01]
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing as mp
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psycopg  # noqa: E402

from bench.stage import Drained, LagSampler, drain, record_rules, stage_processes  # noqa: E402
from simulators.geography import CITIES  # noqa: E402
from standards.water import DO_LOWER_LIMITS, TP_LIMITS, UPPER_LIMITS  # noqa: E402
from storage.aggregation import STAGE_TABLES  # noqa: E402

NATIONAL_STATIONS = 1734
NATIONAL_CITIES = 339
NATIONAL_SECTIONS = 3641
BEIJING = ZoneInfo("Asia/Shanghai")
# Raw readings, everything the aggregation stage keeps, dead letters.
DATA_TABLES = ("readings", *STAGE_TABLES, "dead_letters")
# Sized after the load: the raw readings, the derived levels, the queue.
SIZED_TABLES = ("readings", *STAGE_TABLES)
SIZE_AIM_MIB_PER_MILLION = 150  # raw readings and every derived level, per million readings
AIR_REPORT_AIM_MS = 50  # p95 of the national air report (issue 14), also during live ingest
WATER_REPORT_AIM_MS = 100
LIVE_WARMUP_S = 2.0  # the live writer and the stage run this long before the timed calls
LIVE_TICK_S = 0.2  # the live writer stores one batch this often
MISSING = -1  # a blank cell of the wide layout
HOUR_GAP_RATE = 0.003  # blank PM2.5 cells, about what the national files have on good days
# The 21 items of GB 3838-2002 Table 1 assessed for national sections (water temperature,
# total nitrogen and fecal coliform are reported but not assessed).
WATER_ITEMS = (
    "ph", "do", "codmn", "cod", "bod5", "nh3_n", "tp", "cu", "zn", "fluoride", "se", "as",
    "hg", "cd", "cr6", "pb", "cn", "phenol", "petroleum", "las", "sulfide",
)  # fmt: skip
DECIDING_ITEMS = ("codmn", "cod", "bod5", "nh3_n", "tp", "do")
# Annual class distribution of the sections (I, II, III, IV, V, worse than V): about the
# national bulletins' shape, ~89 % in Class I–III.
CLASS_SHARES = (0.08, 0.50, 0.31, 0.07, 0.02, 0.02)
PM25_24H_BREAKPOINTS = (0, 35, 75, 115, 150, 250, 350, 500)
IAQI_LEVELS = (0, 50, 100, 150, 200, 300, 400, 500)


# --------------------------------------------------------------------------------------------
# The network and its data
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AirStation:
    code: str
    name: str
    city: str
    city_code: str
    province: str
    latitude: float
    longitude: float
    city_index: int


@dataclass(frozen=True)
class WaterSection:
    station_id: str
    name: str
    basin: str
    waterbody: str
    city: str
    city_code: str
    province: str
    latitude: float
    longitude: float
    quality: float  # class index of its worst item: (1, 2] = Class II, …


@dataclass
class Network:
    year: int
    stations: list[AirStation]
    city_levels: np.ndarray  # typical annual PM2.5 of each city, µg/m³
    sections: list[WaterSection]

    @property
    def days(self) -> int:
        return (date(self.year + 1, 1, 1) - date(self.year, 1, 1)).days


def _counts(total: int, parts: int) -> list[int]:
    q, r = divmod(total, parts)
    return [q + (1 if i < r else 0) for i in range(parts)]


def build_network(scale: float, year: int, seed: int) -> Network:
    """``scale`` × the national network: stations spread over cities as evenly as the real
    network is on average (5.1 a city), the same for the same arguments."""
    rng = np.random.default_rng(seed)
    n_stations = max(1, round(NATIONAL_STATIONS * scale))
    n_cities = max(1, min(n_stations, round(NATIONAL_CITIES * scale)))
    n_sections = max(1, round(NATIONAL_SECTIONS * scale))
    cities = []
    for i in range(n_cities):
        if i < len(CITIES):
            real = CITIES[i]
            cities.append(
                (real.name, real.code, real.province, real.latitude, real.longitude, real.pm25)
            )
        else:
            cities.append(
                (
                    f"City {i + 1:03d}",
                    f"9{i + 1:04d}0",
                    "Synthetic",
                    round(float(rng.uniform(21, 46)), 3),
                    round(float(rng.uniform(86, 127)), 3),
                    round(float(rng.uniform(15, 44)), 1),
                )
            )
    stations = []
    number = 1001
    for c, count in enumerate(_counts(n_stations, n_cities)):
        name, code, province, lat, lon, _ = cities[c]
        for k in range(count):
            stations.append(
                AirStation(
                    code=f"{number}A",
                    name=f"{name} site {k + 1}",
                    city=name,
                    city_code=code,
                    province=province,
                    latitude=round(lat + float(rng.uniform(-0.1, 0.1)), 4),
                    longitude=round(lon + float(rng.uniform(-0.1, 0.1)), 4),
                    city_index=c,
                )
            )
            number += 1
    classes = rng.choice(6, size=n_sections, p=CLASS_SHARES) + 1
    basins = ("Yangtze", "Yellow River", "Pearl River", "Huai River", "Hai River",
              "Songhua River", "Liao River", "Taihu", "Chaohu", "Dianchi")  # fmt: skip
    sections = []
    for i in range(n_sections):
        basin = basins[i % len(basins)]
        name, code, province, lat, lon, _ = cities[i % n_cities]
        sections.append(
            WaterSection(
                station_id=f"W-N{i + 1:05d}",
                name=f"{basin} section {i + 1}",
                basin=basin,
                waterbody="lake" if basin in ("Taihu", "Chaohu", "Dianchi") else "river",
                city=name,
                city_code=code,
                province=province,
                latitude=round(lat + float(rng.uniform(-0.3, 0.3)), 4),
                longitude=round(lon + float(rng.uniform(-0.3, 0.3)), 4),
                quality=float(classes[i] - 1 + rng.uniform(0.15, 0.95)),
            )
        )
    levels = np.array([c[5] for c in cities], dtype=np.float64)
    return Network(year, stations, levels, sections)


def pm25_values(network: Network, seed: int) -> np.ndarray:
    """Hourly PM2.5 (µg/m³, integers as in the national files), shape (days, 24, stations);
    MISSING for a blank cell. City level × season (winter high) × the city's weather (AR(1) in
    log space, day to day) × a diurnal cycle × station and hour noise."""
    rng = np.random.default_rng(seed + 1)
    days, n = network.days, len(network.stations)
    city_of = np.array([s.city_index for s in network.stations])
    n_cities = len(network.city_levels)
    doy = np.arange(days)
    season = 1 + 0.45 * np.cos(2 * np.pi * (doy - 10) / days)
    weather = np.empty((days, n_cities))
    x = np.zeros(n_cities)
    for d in range(days):
        x = 0.7 * x + rng.normal(0, 0.35, n_cities)
        weather[d] = x
    weather = np.exp(weather - 0.35**2 / (2 * (1 - 0.7**2)))
    diurnal = 1 + 0.15 * np.cos(2 * np.pi * (np.arange(24) - 21) / 24)
    station_factor = rng.lognormal(0, 0.08, n)
    level = network.city_levels[city_of] * station_factor  # (n,)
    daily = season[:, None] * weather[:, city_of] * level[None, :]  # (days, n)
    values = np.empty((days, 24, n), dtype=np.int16)
    for d in range(days):
        noise = rng.lognormal(-(0.15**2) / 2, 0.15, (24, n))
        hour = np.clip(np.rint(daily[d][None, :] * diurnal[:, None] * noise), 1, 999)
        hour[rng.random((24, n)) < HOUR_GAP_RATE] = MISSING
        values[d] = hour.astype(np.int16)
    return values


def derived_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PM2.5_24h (mean of the last 24 hours with data) and its AQI, as in the national files."""
    flat = values.reshape(-1, values.shape[2]).astype(np.float64)
    present = flat >= 0
    sums = np.cumsum(np.where(present, flat, 0), axis=0)
    counts = np.cumsum(present, axis=0)
    shifted_sums = np.vstack([np.zeros((24, flat.shape[1])), sums[:-24]])
    shifted_counts = np.vstack([np.zeros((24, flat.shape[1])), counts[:-24]])
    n: np.ndarray = counts - shifted_counts
    mean24 = np.where(n > 0, (sums - shifted_sums) / np.maximum(n, 1), -1)
    aqi = np.ceil(np.interp(mean24, PM25_24H_BREAKPOINTS, IAQI_LEVELS))
    mean24 = np.rint(mean24)
    return mean24.reshape(values.shape), np.where(mean24 < 0, -1, aqi).reshape(values.shape)


def _cells(row: np.ndarray) -> str:
    return ",".join("" if v < 0 else str(v) for v in row.tolist())


def write_air_files(network: Network, values: np.ndarray, folder: Path) -> list[Path]:
    """One ``china_sites_YYYYMMDD.csv`` a day, and ``stations.csv``; returns the day files."""
    folder.mkdir(parents=True, exist_ok=True)
    mean24, aqi = derived_rows(values)
    codes = ",".join(s.code for s in network.stations)
    files = []
    first = date(network.year, 1, 1)
    for d in range(network.days):
        day = first + timedelta(days=d)
        path = folder / f"china_sites_{day:%Y%m%d}.csv"
        lines = [f"date,hour,type,{codes}"]
        for h in range(24):
            stamp = f"{day:%Y%m%d},{h}"
            lines.append(f"{stamp},AQI,{_cells(aqi[d, h].astype(np.int64))}")
            lines.append(f"{stamp},PM2.5,{_cells(values[d, h])}")
            lines.append(f"{stamp},PM2.5_24h,{_cells(mean24[d, h].astype(np.int64))}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(path)
    with open(folder / "stations.csv", "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["code", "name", "city", "longitude", "latitude"])
        for s in network.stations:
            writer.writerow([s.code, s.name, s.city, s.longitude, s.latitude])
    return files


def write_air_registry(network: Network, path: Path) -> Path:
    """The air stations with their city codes, for ``airwater stations import``."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["station_id", "name", "kind", "city", "city_code", "province", "latitude",
             "longitude", "reading_interval_s"]
        )  # fmt: skip
        for s in network.stations:
            writer.writerow(
                [s.code, s.name, "air", s.city, s.city_code, s.province, s.latitude,
                 s.longitude, 3600]
            )  # fmt: skip
    return path


def _item_value(item: str, quality: float, waterbody: str, rng: np.random.Generator) -> float:
    """A monthly value of ``item`` for a section whose item sits at class index ``quality``."""
    if item == "ph":
        return round(float(rng.uniform(6.8, 8.4)), 2)
    if item == "do":
        limits: tuple[float, ...] = DO_LOWER_LIMITS
        k = min(math.ceil(quality), 6)
        hi = 9.0 if k == 1 else limits[k - 2]
        lo = limits[k - 1] if k <= 5 else 1.0
        return round(hi - (hi - lo) * (quality - (k - 1)) * float(rng.uniform(0.9, 1.0)), 3)
    limits = (
        TP_LIMITS["lake" if waterbody == "lake" else "river"]
        if item == "tp"
        else (UPPER_LIMITS[item])
    )
    k = math.ceil(quality)
    if k > 5:
        value = limits[4] * (1 + (quality - 5))
    else:
        lo = 0.0 if k <= 1 else limits[k - 2]
        value = lo + (limits[k - 1] - lo) * (quality - (k - 1))
    return float(f"{value * float(rng.uniform(0.9, 1.0)):.4g}")


def water_samples(
    network: Network, year: int, months: Sequence[int], rng: np.random.Generator
) -> Iterator[tuple[str, str, datetime, float]]:
    """(section, item, ts, value): one sample of each of the 21 assessed items in each of
    ``months``, on the 10th at 10:00 Beijing time."""
    for s in network.sections:
        deciding = DECIDING_ITEMS[int(rng.integers(len(DECIDING_ITEMS)))]
        for month in months:
            ts = datetime(year, month, 10, 10, tzinfo=BEIJING)
            month_q = max(0.05, s.quality + float(rng.normal(0, 0.15)))
            for item in WATER_ITEMS:
                q = (
                    month_q
                    if item == deciding
                    else max(0.05, month_q - float(rng.uniform(0.6, 2.5)))
                )
                yield s.station_id, item, ts, _item_value(item, q, s.waterbody, rng)


def write_water_files(network: Network, folder: Path, seed: int) -> tuple[Path, Path, int]:
    """(registry CSV, readings CSV long form, readings written): one sample a month, the 10th
    at 10:00 Beijing time, of the 21 assessed items."""
    rng = np.random.default_rng(seed + 2)
    folder.mkdir(parents=True, exist_ok=True)
    registry = folder / "water_sections.csv"
    with open(registry, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["station_id", "name", "kind", "waterbody", "basin", "city", "city_code",
             "province", "latitude", "longitude", "reading_interval_s"]
        )  # fmt: skip
        for s in network.sections:
            # one sample stands for its hour and day (a sample, not a series of readings)
            writer.writerow(
                [s.station_id, s.name, "surface_water", s.waterbody, s.basin, s.city,
                 s.city_code, s.province, s.latitude, s.longitude, 86400]
            )  # fmt: skip
    readings = folder / "water_readings.csv"
    count = 0
    with open(readings, "w", newline="", encoding="utf-8") as out:
        out.write("station,parameter,ts,value\n")
        for station_id, item, ts, value in water_samples(network, network.year, range(1, 13), rng):
            out.write(f"{station_id},{item},{ts.isoformat()},{value}\n")
            count += 1
    return registry, readings, count


# --------------------------------------------------------------------------------------------
# Rows for the database
# --------------------------------------------------------------------------------------------
def hour_starts(year: int, days: int) -> list[datetime]:
    """UTC instants of the local (Beijing) hours of the year, day-major."""
    first = datetime(year, 1, 1, tzinfo=BEIJING)
    return [(first + timedelta(hours=i)).astimezone(UTC) for i in range(days * 24)]


def air_rows_of_day(
    network: Network, values: np.ndarray, day: int, stamps: list[datetime], received: datetime
) -> Iterator[tuple[str, str, datetime, float, datetime]]:
    codes = [s.code for s in network.stations]
    for h in range(24):
        ts = stamps[day * 24 + h]
        for code, value in zip(codes, values[day, h].tolist(), strict=True):
            if value >= 0:
                yield code, "pm25", ts, float(value), received


def parse_wide_file(
    path: Path, received: datetime
) -> list[tuple[str, str, datetime, float, datetime]]:
    """PM2.5 rows of one national wide file (hours in Beijing time); derived rows skipped."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        codes = header[3:]
        for record in reader:
            if record[2] != "PM2.5":
                continue
            d = record[0]
            local = datetime(int(d[:4]), int(d[4:6]), int(d[6:8]), int(record[1]), tzinfo=BEIJING)
            ts = local.astimezone(UTC)
            for code, cell in zip(codes, record[3:], strict=True):
                if cell:
                    rows.append((code, "pm25", ts, float(cell), received))
    return rows


def parse_water_file(
    path: Path, received: datetime
) -> list[tuple[str, str, datetime, float, datetime]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [
            (
                r["station"],
                r["parameter"],
                datetime.fromisoformat(r["ts"]),
                float(r["value"]),
                received,
            )
            for r in csv.DictReader(f)
        ]


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
@dataclass
class Rate:
    label: str
    rows: int
    seconds: float
    note: str = ""

    @property
    def per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class Latency:
    label: str
    samples: list[float] = field(default_factory=list)  # seconds
    aim_ms: float | None = None
    note: str = ""

    def pct(self, p: float) -> float:
        return float(np.percentile(np.array(self.samples) * 1000, p))


def timed(
    fn: Callable[[], object], repeats: int, label: str, aim_ms: float | None, note: str = ""
) -> Latency:
    fn()  # warm-up: plans, caches, connections
    result = Latency(label, aim_ms=aim_ms, note=note)
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        result.samples.append(time.perf_counter() - started)
    return result


def mib(n: float | None) -> str:
    return "–" if n is None else f"{n / 2**20:,.1f} MiB"


@dataclass(frozen=True)
class Size:
    """One relation on disk (a hypertable: its chunks summed)."""

    table: str
    rows: int
    table_bytes: int  # heap and TOAST
    index_bytes: int
    total_bytes: int
    chunks: str = ""  # a hypertable's chunk count and sizes

    def per_million(self, readings: int) -> float:
        return self.total_bytes * 1_000_000 / readings if readings else 0.0


def _live_writer(
    database_url: str, station_ids: list[str], rate: float, stop: Any, written: Any, ready: Any
) -> None:
    """Store ``rate`` readings/s of PM2.5 at the current time for ``station_ids`` (in turn,
    each reading at its own microsecond) with ``write_batch``, a batch every LIVE_TICK_S,
    until ``stop`` is set; counts the rows stored in ``written``. Its own process, so that
    its Python does not share the timed calls' interpreter."""
    from storage.writer import prepare_connection, write_batch

    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        ready.set()
        started = time.monotonic()
        sent = 0
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate)
            if due > sent:
                now = datetime.now(UTC)
                rows = [
                    (
                        station_ids[n % len(station_ids)],
                        "pm25",
                        now - timedelta(microseconds=n - sent),
                        float(20 + n % 40),
                        now,
                    )
                    for n in range(sent, due)
                ]
                written.value += write_batch(conn, rows).inserted
                sent = due
            stop.wait(LIVE_TICK_S)


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stack = ExitStack()
        self.database_url = ""
        self.rates: list[Rate] = []
        self.latencies: list[Latency] = []
        self.sizes: list[Size] = []
        self.live: list[str] = []
        self.notes: list[str] = []
        self.checks: list[str] = []
        self.network = build_network(args.scale, args.year, args.seed)
        self.values: np.ndarray | None = None
        self.air_files: list[Path] = []
        self.files_dir = Path()
        self.water_files: tuple[Path, Path, int] | None = None

    def say(self, text: str) -> None:
        print(text, flush=True)

    # --- services ------------------------------------------------------------------------
    def start_services(self) -> None:
        env_db = os.environ.get("AIRWATER_DATABASE_URL")
        if env_db and not self.args.yes:
            raise SystemExit(
                "AIRWATER_DATABASE_URL is set: the benchmark would TRUNCATE "
                f"{', '.join(DATA_TABLES)} there. Pass --yes to allow it, or unset it to use "
                "a private database."
            )
        workdir = Path(tempfile.mkdtemp(prefix="airwater-national-"))
        if not self.args.keep:
            self.stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        self.files_dir = Path(self.args.files_dir) if self.args.files_dir else workdir / "files"
        if env_db:
            self.database_url = env_db
        else:
            from airwater.embedded import PostgresServer

            pg = PostgresServer(workdir / "postgres")
            pg.start()
            self.stack.callback(pg.stop, "fast")
            self.database_url = pg.url
        self.say(f"database {self.database_url}\nwork dir {workdir}")

    def prepare_database(self) -> None:
        from storage.migrate import migrate

        with psycopg.connect(self.database_url) as conn:
            migrate(conn)
            license_row = conn.execute("SHOW timescaledb.license").fetchone()
            self.notes.append(f"timescaledb.license = {license_row[0] if license_row else '?'}")
        self.truncate()
        # after the TRUNCATE: a stage finding other rules queues every station, now empty
        record_rules(self.database_url)

    # --- the files -----------------------------------------------------------------------
    def generate(self) -> None:
        n = self.network
        started = time.perf_counter()
        self.values = pm25_values(n, self.args.seed)
        self.air_files = write_air_files(n, self.values, self.files_dir / "air")
        write_air_registry(n, self.files_dir / "air_registry.csv")
        self.water_files = write_water_files(n, self.files_dir / "water", self.args.seed)
        readings = int((self.values >= 0).sum())
        cities = len({s.city_code for s in n.stations})
        self.say(
            f"generated {len(n.stations):,} air stations in {cities} cities, {readings:,} "
            f"hourly PM2.5 readings in {len(self.air_files)} daily files; "
            f"{len(n.sections):,} water sections, {self.water_files[2]:,} readings "
            f"({time.perf_counter() - started:.1f} s)"
        )
        self.air_readings = readings

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "AIRWATER_DATABASE_URL": self.database_url}
        done = subprocess.run(
            [sys.executable, "-m", "airwater.cli", "--log-level", "WARNING", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"airwater {' '.join(argv[:2])} … failed:\n{done.stderr[-3000:]}")
        return done

    def register_stations(self) -> None:
        """Water sections through ``airwater stations import``; air stations come with the
        station list of the import, or from the full registry when the writer path loads."""
        assert self.water_files is not None
        self.cli("stations", "import", str(self.water_files[0]))
        if not self.use_importer:
            self.cli("stations", "import", str(self.files_dir / "air_registry.csv"))

    def count(self, sql: str) -> int:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def truncate(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(DATA_TABLES)}")
            # the import journal would skip files it has seen: every run imports afresh
            if conn.execute("SELECT to_regclass('imports')").fetchone() != (None,):
                conn.execute("TRUNCATE imports")

    # --- raw COPY ------------------------------------------------------------------------
    def raw_copy(self) -> None:
        assert self.values is not None
        n = self.network
        stamps = hour_starts(n.year, n.days)
        received = datetime.now(UTC)
        self.truncate()
        with psycopg.connect(self.database_url) as conn:
            started = time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY readings (station_id, parameter, ts, value, received_at)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["text", "text", "timestamptz", "float8", "timestamptz"])
                for d in range(n.days):
                    for row in air_rows_of_day(n, self.values, d, stamps, received):
                        copy.write_row(row)
            conn.commit()
            seconds = time.perf_counter() - started
        stored = self.count("SELECT count(*) FROM readings")
        assert stored == self.air_readings, (stored, self.air_readings)
        self.rates.append(
            Rate("raw COPY into readings (air)", stored, seconds, "one binary COPY + COMMIT")
        )
        self.say(f"raw COPY: {stored:,} rows in {seconds:.1f} s = {stored / seconds:,.0f} rows/s")
        self.truncate()

    # --- import --------------------------------------------------------------------------
    @property
    def use_importer(self) -> bool:
        return not self.args.fallback_loader and self.importer_available()

    @staticmethod
    def importer_available() -> bool:
        from airwater.cli import build_parser

        for action in build_parser()._subparsers._group_actions:  # type: ignore[union-attr]
            if "import" in getattr(action, "choices", {}):
                return True
        return False

    def load(self) -> None:
        assert self.water_files is not None
        air = [str(p) for p in self.air_files]
        water = str(self.water_files[1])
        if self.use_importer:
            self.load_with_importer(air, water)
        else:
            self.notes.append(
                ("--fallback-loader" if self.args.fallback_loader else
                 "`airwater import` is not in this checkout")
                + ": the files were parsed by the benchmark and stored with "
                f"storage.writer.write_batch ({self.args.batch_rows:,}-row batches)"
            )  # fmt: skip
            self.load_with_writer()

    def load_with_importer(self, air: list[str], water: str) -> None:
        station_list = str(self.files_dir / "air" / "stations.csv")
        started = time.perf_counter()
        # the commit path only: the derived levels are timed apart (settle)
        self.cli("import", "--no-settle", station_list, *air)
        seconds = time.perf_counter() - started
        stored = self.count("SELECT count(*) FROM readings")
        self.rates.append(
            Rate(
                "airwater import, air (wide daily files)",
                stored,
                seconds,
                f"{len(air)} files + station list, --no-settle, subprocess wall clock",
            )
        )
        self.say(f"import air: {stored:,} rows in {seconds:.1f} s = {stored / seconds:,.0f} rows/s")
        self.settle("air import", stored, seconds)
        started = time.perf_counter()
        # default batches (100,000 readings, each its own station-day)
        self.cli("import", "--no-settle", water)
        seconds = time.perf_counter() - started
        water_rows = self.count("SELECT count(*) FROM readings") - stored
        self.rates.append(
            Rate("airwater import, water (CSV long form)", water_rows, seconds, "--no-settle")
        )
        self.say(f"import water: {water_rows:,} rows in {seconds:.1f} s")
        self.settle("water import", water_rows, seconds)

    def settle(self, what: str, readings: int, load_seconds: float) -> Drained:
        """Time the aggregation stage reflecting everything queued (by ``what``, which
        stored ``readings`` in ``load_seconds``) in every derived level."""
        drained = drain(self.database_url)
        self.rates.append(
            Rate(
                f"aggregation stage after the {what} (station-days)",
                drained.station_days,
                drained.seconds,
                f"{drained.rows:,} queue rows in {drained.batches:,} batches, one stage",
            )
        )
        total = load_seconds + drained.seconds
        self.rates.append(
            Rate(
                f"{what} + stage: readings until every level reflects them",
                readings,
                total,
                "load and drain back to back",
            )
        )
        self.say(
            f"settle after the {what}: {drained.station_days:,} station-days in "
            f"{drained.seconds:.1f} s = {drained.station_days_per_s:,.0f} station-days/s"
        )
        return drained

    def load_with_writer(self) -> None:
        from storage.writer import prepare_connection, write_batch

        assert self.water_files is not None
        received = datetime.now(UTC)
        batch = self.args.batch_rows
        with psycopg.connect(self.database_url) as conn:
            prepare_connection(conn)
            for label, what, paths, parse in (
                ("write_batch, air (parsed wide files)", "air load", self.air_files,
                 parse_wide_file),
                ("write_batch, water (parsed CSV)", "water load", [self.water_files[1]],
                 parse_water_file),
            ):  # fmt: skip
                stored = 0
                started = time.perf_counter()
                pending: list[Any] = []
                for path in paths:
                    pending.extend(parse(path, received))
                    while len(pending) >= batch:
                        stored += write_batch(conn, pending[:batch]).inserted
                        del pending[:batch]
                if pending:
                    stored += write_batch(conn, pending).inserted
                seconds = time.perf_counter() - started
                self.rates.append(Rate(label, stored, seconds, f"{batch:,}-row batches"))
                self.say(
                    f"{label}: {stored:,} rows in {seconds:.1f} s = {stored / seconds:,.0f} rows/s"
                )
                self.settle(what, stored, seconds)

    # --- latencies -----------------------------------------------------------------------
    def latencies_storage(self) -> None:
        from reports import air_report, water_report
        from storage.series import reading_chunks, readings_of_station

        year, repeats = self.args.year, self.args.repeats
        station = self.network.stations[len(self.network.stations) // 2].code
        start = datetime(year, 1, 1, tzinfo=BEIJING)
        end = datetime(year + 1, 1, 1, tzinfo=BEIJING)
        # not autocommit: the export's server-side cursor needs a transaction, as in the API
        with psycopg.connect(self.database_url) as conn:
            report = air_report(conn, year)
            self.checks.append(
                f"air report {year}: national PM2.5 {report.national.annual_mean} µg/m³ from "
                f"{report.national.cities} of {len(report.cities)} cities; "
                f"{len(report.stations)} stations; as of {report.as_of:%Y-%m-%d %H:%M:%S %Z}"
            )
            self.national_mean = report.national.annual_mean
            self.cities_assessed = report.cities_assessed
            water = water_report(conn, year)
            self.checks.append(
                f"water report {year}: {water.sections_assessed} sections assessed, Class I–III "
                f"{water.excellent_share} %"
            )
            self.sections_assessed = water.sections_assessed

            def station_year() -> int:
                with conn.transaction():
                    return sum(len(c) for c in reading_chunks(conn, station, "pm25", start, end))

            def station_year_all_parameters() -> int:
                with conn.transaction():
                    return sum(len(c) for c in reading_chunks(conn, station, None, start, end))

            def first_page() -> int:
                return len(readings_of_station(conn, station, "pm25", start, end, None, 1001))

            year_rows = station_year()
            self.checks.append(f"station {station}: {year_rows:,} readings in {year}")
            self.latencies += [
                timed(
                    lambda: air_report(conn, year),
                    repeats,
                    "air_report (national, pm25)",
                    AIR_REPORT_AIM_MS,
                    "quiet database",
                ),
                timed(
                    station_year,
                    repeats,
                    "one station's year, pm25 (storage, all rows)",
                    100,
                    f"{year_rows:,} rows via reading_chunks",
                ),
                timed(
                    station_year_all_parameters,
                    repeats,
                    "one station's year, every parameter (storage)",
                    100,
                ),
                timed(
                    first_page, repeats, "one station's year, first page of 1,000 (storage)", 100
                ),
                timed(
                    lambda: water_report(conn, year),
                    repeats,
                    "water_report (national)",
                    WATER_REPORT_AIM_MS,
                    "quiet database",
                ),
            ]
            self.station = station

    @contextmanager
    def api(self) -> Iterator[Callable[..., Any]]:
        """The whole API (auth, limits, serialisation) through FastAPI's TestClient, on a
        pool of its own: yields ``get(path, **params)``, which asserts a 200."""
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
                    assert response.status_code == 200, response.text
                    return response

                yield get
        finally:
            pool.close()

    def latencies_api(self) -> None:
        year, repeats = self.args.year, self.args.repeats
        query = {"parameter": "pm25", "start": f"{year}-01-01T00:00:00+08:00",
                 "end": f"{year + 1}-01-01T00:00:00+08:00"}  # fmt: skip
        url = f"/v1/stations/{self.station}/readings"
        with self.api() as get:

            def whole_year_json() -> int:
                rows, cursor = 0, None
                while True:
                    page = get(
                        url, **query, limit="1000", **({"cursor": cursor} if cursor else {})
                    ).json()
                    rows += len(page["items"])
                    cursor = page.get("next_cursor")
                    if not cursor:
                        return rows

            self.latencies += [
                timed(
                    lambda: get(url, **query, format="csv"),
                    repeats,
                    "one station's year via API, CSV (one request)",
                    100,
                ),
                timed(
                    lambda: get(url, **query, limit="1000"),
                    repeats,
                    "one station's year via API, first JSON page (1,000)",
                    100,
                ),
                timed(
                    whole_year_json,
                    max(3, repeats // 4),
                    "one station's year via API, every JSON page",
                    None,
                ),
                timed(
                    lambda: get("/v1/compliance/air", year=str(year)),
                    repeats,
                    "GET /v1/compliance/air (JSON)",
                    AIR_REPORT_AIM_MS,
                    "quiet database",
                ),
                timed(
                    lambda: get("/v1/compliance/water", year=str(year)),
                    repeats,
                    "GET /v1/compliance/water (JSON)",
                    WATER_REPORT_AIM_MS,
                    "quiet database",
                ),
            ]

    # --- the reports while ingest goes on ------------------------------------------------
    def write_current_year(self, current: int, today: date) -> None:
        """The last ``--live-days`` days before today (within the current year) of PM2.5 for
        every station, from the generated values of the same days of the year, and one water
        sample of every section in the last month whose sampling day has passed; then the
        stage reflects them. A rerun finds them stored (first value wins)."""
        from storage.writer import prepare_connection, write_batch

        n = self.network
        first = max(date(current, 1, 1), today - timedelta(days=self.args.live_days))
        days = [first + timedelta(days=d) for d in range((today - first).days)]
        values = self.values if self.values is not None else pm25_values(n, self.args.seed)
        codes = [s.code for s in n.stations]
        received = datetime.now(UTC)
        air = water = 0
        started = time.perf_counter()
        with psycopg.connect(self.database_url) as conn:
            prepare_connection(conn)
            for day in days:
                index = min((day - date(current, 1, 1)).days, values.shape[0] - 1)
                local = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
                rows = [
                    (code, "pm25", (local + timedelta(hours=h)).astimezone(UTC), float(v), received)
                    for h in range(24)
                    for code, v in zip(codes, values[index, h].tolist(), strict=True)
                    if v >= 0
                ]
                air += write_batch(conn, rows, bulk=True).inserted
            # the 10th at 10:00 of this month once passed, else of the month before
            month = today.month if today.day > 10 else today.month - 1
            if month >= 1:
                rng = np.random.default_rng(self.args.seed + 3)
                samples = [
                    (station_id, item, ts, value, received)
                    for station_id, item, ts, value in water_samples(n, current, [month], rng)
                ]
                water = write_batch(conn, samples).inserted
        written = time.perf_counter() - started
        drained = drain(self.database_url)
        self.live.append(
            f"current year {current}: {air:,} PM2.5 readings of {len(days)} days "
            f"({first:%m-%d} to {today - timedelta(days=1):%m-%d}, the generated values of those "
            f"days of the year) and {water:,} water readings (one sample of every section"
            + (f", {current}-{month:02d}-10" if month >= 1 else "")
            + f") stored in {written:.1f} s, reflected by the stage in {drained.seconds:.1f} s "
            f"({drained.station_days:,} station-days)"
        )

    def latencies_live(self) -> None:
        """The national reports (storage call and API) while a separate process stores
        ``--live-rate`` readings/s at the current time and one aggregation stage runs; for the
        benchmark's year and for the current year."""
        from reports import air_report, water_report
        from storage.aggregation import pending

        year, repeats, rate = self.args.year, self.args.repeats, self.args.live_rate
        today = datetime.now(BEIJING).date()
        current = today.year
        years = [year]
        if current != year:
            if self.args.live_days > 0:
                self.write_current_year(current, today)
            years.append(current)
        else:
            self.live.append(f"the benchmark's year {year} is the current year: nothing added")
        ctx = mp.get_context("spawn")
        stop, ready = ctx.Event(), ctx.Event()
        written = ctx.Value("q", 0, lock=False)
        codes = [s.code for s in self.network.stations]
        out = Path(self.args.out_dir)
        label = f"during {rate:,.0f} readings/s of live ingest"
        with stage_processes(self.database_url, 1, out, "national-live") as stages:
            writer = ctx.Process(
                target=_live_writer,
                args=(self.database_url, codes, rate, stop, written, ready),
                daemon=True,
            )
            writer.start()
            sampler = LagSampler(self.database_url)
            try:
                if not ready.wait(60):
                    raise RuntimeError("the live writer did not connect within 60 s")
                time.sleep(LIVE_WARMUP_S)
                sampler.start()
                started, before = time.perf_counter(), written.value
                # autocommit: each statement sees the stage's latest commit, as a request would
                with psycopg.connect(self.database_url, autocommit=True) as conn:
                    for y in years:
                        which = " (current year)" if y == current and y != year else ""
                        self.latencies += [
                            timed(
                                partial(air_report, conn, y),
                                repeats,
                                f"air_report (national, pm25) {y}{which}",
                                AIR_REPORT_AIM_MS,
                                label,
                            ),
                            timed(
                                partial(water_report, conn, y),
                                repeats,
                                f"water_report (national) {y}{which}",
                                WATER_REPORT_AIM_MS,
                                label,
                            ),
                        ]
                    as_of = air_report(conn, current).as_of
                    lag_now = (datetime.now(UTC) - as_of).total_seconds()
                if "api" not in self.args.skip:
                    with self.api() as get:
                        for y in years:
                            which = " (current year)" if y == current and y != year else ""
                            self.latencies += [
                                timed(
                                    partial(get, "/v1/compliance/air", year=str(y)),
                                    repeats,
                                    f"GET /v1/compliance/air?year={y}{which} (JSON)",
                                    AIR_REPORT_AIM_MS,
                                    label,
                                ),
                                timed(
                                    partial(get, "/v1/compliance/water", year=str(y)),
                                    repeats,
                                    f"GET /v1/compliance/water?year={y}{which} (JSON)",
                                    WATER_REPORT_AIM_MS,
                                    label,
                                ),
                            ]
                timed_s = time.perf_counter() - started
                # the load goes on for at least --live-seconds, for enough lag samples
                time.sleep(max(0.0, self.args.live_seconds - timed_s))
                seconds = time.perf_counter() - started
                stored = written.value - before
            finally:
                stop.set()
                writer.join(timeout=60)
                if writer.is_alive():
                    writer.kill()
                elif writer.exitcode:
                    self.notes.append(f"the live writer exited with {writer.exitcode}")
                sampler.stop()
            stopped = time.perf_counter()
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                deadline = time.monotonic() + 600
                while pending(conn)[1] and time.monotonic() < deadline:
                    time.sleep(0.1)
                left = pending(conn)[1]
            settled = time.perf_counter() - stopped
            stage_alive = all(p.poll() is None for p in stages)
        self.rates.append(
            Rate(
                "live writer during the live phase (current time, write_batch)",
                stored,
                seconds,
                f"asked {rate:,.0f}/s, {len(codes):,} stations, a batch every {LIVE_TICK_S:g} s",
            )
        )
        self.live.append(
            f"ingest during the timed reports ({timed_s:.1f} s) and after them up to "
            f"--live-seconds: {stored:,} readings in {seconds:.1f} s = "
            f"{stored / seconds if seconds else 0:,.0f} readings/s (asked {rate:,.0f}), "
            f"current-time PM2.5 of {len(codes):,} stations, one aggregation stage running"
            + ("" if stage_alive else " (IT EXITED)")
        )
        self.live.append(
            f"stage lag (now − oldest queued change, every 0.5 s, {len(sampler.samples)} "
            f"samples): p50 {sampler.pct(50):.2f} s, p99 {sampler.pct(99):.2f} s, max "
            f"{max(sampler.samples, default=float('nan')):.2f} s, at most "
            f"{sampler.most_queued:,} queued; a report's as_of was {lag_now:.2f} s behind; "
            + (
                f"queue empty {settled:.2f} s after the writer stopped"
                if not left
                else f"{left:,} still queued {settled:.0f} s after the writer stopped"
            )
        )
        if sampler.error is not None:
            self.notes.append(f"the lag sampler failed: {sampler.error!r}")

    # --- sizes ---------------------------------------------------------------------------
    def measure_sizes(self) -> None:
        """Every relation of SIZED_TABLES after VACUUM ANALYZE: rows, heap, indexes."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            hypertables = {
                row[0]
                for row in conn.execute(
                    "SELECT hypertable_name FROM timescaledb_information.hypertables"
                )
            }
            for table in SIZED_TABLES:
                conn.execute(f"VACUUM ANALYZE {table}")
                counted = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                rows = int(counted[0]) if counted else 0
                if table in hypertables:
                    t, i, toast, total = conn.execute(
                        "SELECT sum(table_bytes), sum(index_bytes), sum(toast_bytes), "
                        "sum(total_bytes) FROM hypertable_detailed_size(%s)",
                        (table,),
                    ).fetchone() or (0, 0, 0, 0)
                    chunks = conn.execute(
                        "SELECT count(*), max(total_bytes), percentile_cont(0.5) WITHIN GROUP "
                        "(ORDER BY total_bytes) FROM chunks_detailed_size(%s)",
                        (table,),
                    ).fetchone() or (0, 0, 0)
                    self.sizes.append(
                        Size(
                            table,
                            rows,
                            int(t or 0) + int(toast or 0),
                            int(i or 0),
                            int(total or 0),
                            f"{chunks[0]} chunks, median {mib(chunks[2] or 0)}, "
                            f"largest {mib(chunks[1] or 0)}",
                        )
                    )
                else:
                    t, i, total = conn.execute(
                        "SELECT pg_table_size(%s), pg_indexes_size(%s), pg_total_relation_size(%s)",
                        (table, table, table),
                    ).fetchone() or (0, 0, 0)
                    self.sizes.append(Size(table, rows, int(t), int(i), int(total)))

    def explain(self) -> None:
        """EXPLAIN (ANALYZE, BUFFERS) of the report and series queries, into the out folder."""
        from storage.compliance import (
            AIR_STATIONS,
            CITY_YEARLY,
            STATION_YEARLY,
            WATER_SECTIONS,
            WATER_YEARLY,
        )
        from storage.series import READINGS_OF_STATION_IN_RANGE

        year = self.args.year
        yearly = {"parameter": "pm25", "year": year}
        series = {"station_id": self.station, "parameter": "pm25",
                  "start": datetime(year, 1, 1, tzinfo=BEIJING),
                  "end": datetime(year + 1, 1, 1, tzinfo=BEIJING),
                  "after_ts": None, "after_parameter": None, "limit": None}  # fmt: skip
        out = Path(self.args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with (
            psycopg.connect(self.database_url, autocommit=True) as conn,
            open(out / "national-explain.txt", "w", encoding="utf-8") as f,
        ):
            for name, sql, params in (
                ("STATION_YEARLY", STATION_YEARLY, yearly),
                ("CITY_YEARLY", CITY_YEARLY, yearly),
                ("AIR_STATIONS", AIR_STATIONS, {}),
                ("WATER_YEARLY", WATER_YEARLY, {"year": year}),
                ("WATER_SECTIONS", WATER_SECTIONS, {}),
                ("READINGS_OF_STATION_IN_RANGE", READINGS_OF_STATION_IN_RANGE, series),
            ):
                plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params or None).fetchall()
                f.write(f"== {name}\n" + "\n".join(r[0] for r in plan) + "\n\n")
        self.say(f"plans in {out / 'national-explain.txt'}")

    # --- report --------------------------------------------------------------------------
    def report(self) -> None:
        n = self.network
        self.say("")
        self.say(
            f"== National scale: scale {self.args.scale:g}, year {n.year}, "
            f"{len(n.stations):,} air stations, {len(n.sections):,} water sections"
        )
        self.say("| step | rows | s | rows/s | note |")
        self.say("| --- | ---: | ---: | ---: | --- |")
        for r in self.rates:
            self.say(f"| {r.label} | {r.rows:,} | {r.seconds:.1f} | {r.per_s:,.0f} | {r.note} |")
        copy = next((r for r in self.rates if r.label.startswith("raw COPY")), None)
        load = next((r for r in self.rates if "air" in r.label and r is not copy), None)
        settled = next(
            (r for r in self.rates if r.label.startswith("air ") and "+ stage" in r.label), None
        )
        if copy and load:
            share = 100 * load.per_s / copy.per_s
            self.say(
                f"import / raw COPY: {share:.0f} % "
                f"(aim ≥ 50 %: {'met' if share >= 50 else 'missed'}; the commit path)"
            )
            if settled:
                self.say(
                    f"import + stage / raw COPY: {100 * settled.per_s / copy.per_s:.0f} % "
                    "(until every derived level reflects the readings)"
                )
        self.say("")
        self.say(f"| query ({self.args.repeats} calls) | p50 ms | p95 ms | aim p95 | | while |")
        self.say("| --- | ---: | ---: | ---: | --- | --- |")
        for lat in self.latencies:
            aim = "" if lat.aim_ms is None else f"< {lat.aim_ms:.0f} ms"
            verdict = (
                "" if lat.aim_ms is None else ("met" if lat.pct(95) < lat.aim_ms else "missed")
            )
            self.say(
                f"| {lat.label} | {lat.pct(50):.1f} | {lat.pct(95):.1f} | {aim} | {verdict} "
                f"| {lat.note} |"
            )
        self.say("")
        for line in self.live:
            self.say(f"live: {line}")
        if self.sizes:
            self.report_sizes()
        for line in self.checks:
            self.say(f"check: {line}")
        for line in self.notes:
            self.say(f"note: {line}")

    def report_sizes(self) -> None:
        readings = next((s for s in self.sizes if s.table == "readings"), None)
        raw = readings.rows if readings else 0
        self.say("")
        self.say(f"| relation (after VACUUM ANALYZE; {raw:,} raw readings) | rows | total | "
                 "table | indexes | per million readings | |")  # fmt: skip
        self.say("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for s in self.sizes:
            self.say(
                f"| {s.table} | {s.rows:,} | {mib(s.total_bytes)} | {mib(s.table_bytes)} | "
                f"{mib(s.index_bytes)} | {mib(s.per_million(raw))} | {s.chunks} |"
            )
        derived = [s for s in self.sizes if s.table != "readings"]
        derived_bytes = sum(s.total_bytes for s in derived)
        if readings is not None:
            self.say(
                f"size: readings: table + indexes: {mib(readings.total_bytes)} (table "
                f"{mib(readings.table_bytes)}, indexes {mib(readings.index_bytes)}); "
                f"{readings.chunks}"
            )
            self.say(f"size: readings per million rows: {mib(readings.per_million(raw))} "
                     f"({raw:,} rows)")  # fmt: skip
        if raw:
            everything = (derived_bytes + (readings.total_bytes if readings else 0)) * 1e6 / raw
            self.say(
                f"size: derived levels and queue ({', '.join(s.table for s in derived)}): "
                f"{mib(derived_bytes)} = {mib(derived_bytes * 1e6 / raw)} per million readings"
            )
            verdict = "met" if everything <= SIZE_AIM_MIB_PER_MILLION * 2**20 else "missed"
            self.say(
                f"size: everything (readings + derived) per million readings: {mib(everything)} "
                f"(aim ≤ {SIZE_AIM_MIB_PER_MILLION} MiB: {verdict})"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the national network (1 = 1,734 stations, 339 cities, "
                        "3,641 sections; 0.01 runs in well under a minute)")  # fmt: skip
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--repeats", type=int, default=20, help="calls per timed query (≥ 20)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["copy", "load", "api", "explain", "sizes", "live"],
        help="parts to leave out (live: the reports timed while ingest goes on)",
    )
    parser.add_argument(
        "--live-rate",
        type=float,
        default=1000,
        help="readings/s stored at the current time while the reports are timed again "
        "(default 1,000)",
    )
    parser.add_argument(
        "--live-seconds",
        type=float,
        default=30,
        help="the live ingest lasts at least this long (from the first timed call), for the "
        "stage's lag samples (default 30)",
    )
    parser.add_argument(
        "--live-days",
        type=int,
        default=7,
        help="days before today written into the current year before the live phase, so that "
        "its report has every station and city (default 7; 0: none)",
    )
    parser.add_argument(
        "--fallback-loader",
        action="store_true",
        help="store with write_batch even when `airwater import` exists",
    )
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--files-dir", help="keep the generated files here (default: work dir)")
    parser.add_argument("--out-dir", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--keep", action="store_true", help="keep the work dir (database, files)")
    parser.add_argument(
        "--yes",
        action="store_true",
        help="allow TRUNCATE of the data tables at AIRWATER_DATABASE_URL",
    )
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    if args.live_rate <= 0 or args.live_days < 0 or args.live_seconds < 0:
        parser.error("--live-rate must be positive, --live-days and --live-seconds ≥ 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    print(
        f"airwater national benchmark: scale {args.scale:g}, {os.cpu_count()} CPUs, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    with bench.stack:
        bench.start_services()
        if "load" in args.skip:  # measure the data already there (same --scale and --seed)
            bench.station = bench.network.stations[len(bench.network.stations) // 2].code
            left = drain(bench.database_url)
            if left.rows:
                bench.notes.append(
                    f"--skip load: {left.rows:,} queued changes reflected first "
                    f"({left.seconds:.1f} s)"
                )
        else:
            bench.prepare_database()
            bench.generate()
            bench.register_stations()
            if "copy" not in args.skip:
                bench.raw_copy()
            bench.load()
        with psycopg.connect(bench.database_url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        bench.latencies_storage()
        if "api" not in args.skip:
            bench.latencies_api()
        if "explain" not in args.skip:
            bench.explain()
        if "sizes" not in args.skip:  # before the live phase adds the current year
            bench.measure_sizes()
        if "live" not in args.skip:
            bench.latencies_live()
        bench.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
