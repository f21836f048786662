"""Bulk import of reading files (``airwater import``): long CSV, Parquet, the wide hourly
layout of the national air network, and station lists.

Readings go through the ingest rules (unknown / inactive station, unknown parameter,
non-numeric, sentinel, negative, future or too-early timestamp → dead letters with a reason)
and through ``storage.writer.write_batch``, in batches of about ``batch_rows`` readings.
Each batch's transaction also advances the file's row in the ``imports`` journal, so an
interrupted import resumes after the last committed batch and a finished file is skipped.
The hot path works on raw bytes and tuples: no per-row model objects.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ingest.validate import (
    SENTINELS,
    WATER_KINDS,
    StationDirectory,
    StationInfo,
    out_of_range,
    stations_of,
)
from schemas.payloads import EARLIEST_TS, Reason, Rejection
from schemas.stations import Station
from standards.parameters import CATALOGUE, canonical_parameter, implausible
from standards.water import water_class
from storage.writer import DeadLetter, ReadingRow, prepare_connection, write_isolating

log = logging.getLogger(__name__)

Format = Literal["long", "parquet", "wide", "stations"]
FORMATS: tuple[Format, ...] = ("long", "parquet", "wide", "stations")
SOURCE = "import"
DEFAULT_BATCH_ROWS = 100_000
# A wide-layout day file (~1,700 stations x 24 h x 6 pollutants ≈ 245 k readings) is written
# in one transaction: every batch recomputes the daily rollup of each station-day it touches,
# so cutting a day into three batches would recompute each day three times.
WIDE_MAX_BATCH_ROWS = 400_000
# Rejections stored one by one per file and reason; the rest are counted in one summary
# dead letter at the end of the file (an unknown station column would otherwise write
# hundreds of thousands of rows).
MAX_DEAD_LETTERS_PER_REASON = 1000
MAX_FUTURE = timedelta(minutes=10)
NETWORK_TZ = ZoneInfo("Asia/Shanghai")

# The wide layout's `type` rows: hourly pollutant values are readings (CO in mg/m³, the
# others in µg/m³ — the stored units); the 24-hour, 8-hour and AQI rows are derived.
WIDE_HOURLY = {
    b"PM2.5": "pm25",
    b"PM10": "pm10",
    b"SO2": "so2",
    b"NO2": "no2",
    b"O3": "o3",
    b"CO": "co",
}
WIDE_DERIVED = frozenset(
    {
        b"PM2.5_24h",
        b"PM10_24h",
        b"SO2_24h",
        b"NO2_24h",
        b"O3_24h",
        b"O3_8h",
        b"O3_8h_24h",
        b"CO_24h",
        b"AQI",
    }
)

# Station-list headers, English and the national list's Chinese, → Station fields.
STATION_HEADERS = {
    "station_id": "station_id",
    "station": "station_id",
    "code": "station_id",
    "station_code": "station_id",
    "监测点编码": "station_id",
    "name": "name",
    "station_name": "name",
    "监测点名称": "name",
    "city": "city",
    "城市": "city",
    "city_code": "city_code",
    "城市代码": "city_code",
    "province": "province",
    "省份": "province",
    "longitude": "longitude",
    "lon": "longitude",
    "lng": "longitude",
    "经度": "longitude",
    "latitude": "latitude",
    "lat": "latitude",
    "纬度": "latitude",
}


class ImportFileError(Exception):
    """A file that cannot be imported at all (unreadable, unknown layout)."""


# --- counting ------------------------------------------------------------------------------
@dataclass
class FileCounts:
    """What one file became; cumulative over runs when read back from the journal."""

    rows: int = 0  # data rows done (header excluded)
    offset: int = 0  # bytes done (text formats)
    stored: int = 0
    duplicates: int = 0
    empty: int = 0
    derived_skipped: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


@dataclass
class ImportSummary:
    """What one ``airwater import`` run did (counts of this run, not of earlier runs)."""

    files: int = 0
    files_imported: int = 0
    files_already_imported: int = 0
    files_failed: list[str] = field(default_factory=list)
    stations_created: int = 0
    stations_updated: int = 0
    stations_rejected: int = 0
    values: int = 0  # cells / rows read
    stored: int = 0
    duplicates: int = 0
    empty: int = 0
    derived_skipped: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    jobs: int = 1
    # files are imported by up to ``jobs`` threads at once
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def readings_per_s(self) -> float:
        return (self.stored + self.duplicates) / self.seconds if self.seconds else 0.0


@dataclass
class _Batch:
    readings: list[ReadingRow]
    dead_letters: list[DeadLetter]
    rows_end: int
    offset_end: int
    values: int  # cells / rows of the file this batch covers
    empty: int = 0
    derived_skipped: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    last: bool = False


# --- format detection ----------------------------------------------------------------------
def detect_format(path: Path) -> Format:
    """The layout of ``path``, from its extension and its header."""
    with path.open("rb") as f:
        head = f.read(4)
        if head == b"PAR1" or path.suffix.lower() == ".parquet":
            return "parquet"
        f.seek(0)
        first = f.readline()
    try:
        header = [c.strip().lower() for c in _decode_header(first)]
    except UnicodeDecodeError:
        raise ImportFileError(f"{path}: not UTF-8 text, nor Parquet") from None
    if header[:3] == ["date", "hour", "type"]:
        return "wide"
    if {"parameter", "ts", "value"} <= set(header) and (
        "station" in header or "station_id" in header
    ):
        return "long"
    if sum(1 for c in header if STATION_HEADERS.get(c) in ("station_id", "name")) == 2:
        return "stations"
    raise ImportFileError(
        f"{path}: unknown layout (header {','.join(header)[:200]!r}); expected "
        "station,parameter,ts,value or date,hour,type,<station codes> or a station list"
    )


def _decode_header(line: bytes) -> list[str]:
    text = line.decode("utf-8-sig").rstrip("\r\n")
    return next(csv.reader([text]), [])


def file_identity(path: Path) -> tuple[bytes, int]:
    """(sha256 of the content, size in bytes)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.digest(), size


def count_values(path: Path, fmt: Format) -> int:
    """Values (cells of readings, or rows) of a file, for the progress bar."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    last = b"\n"
    with path.open("rb") as f:
        header = f.readline()
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"
    if fmt == "wide":
        return lines * max(len(header.split(b",")) - 3, 0)
    return lines


# --- validation shared by the readers ------------------------------------------------------
class _Rejector:
    """Collects rejections: counted always, stored one by one up to a cap per reason."""

    def __init__(self, topic: str, counts: FileCounts) -> None:
        self.topic = topic
        # cumulative over earlier runs (journal), so the cap falls on the same rows
        self.seen = Counter(counts.rejected)
        self.batch_rejected: Counter[str] = Counter()
        self.dead_letters: list[DeadLetter] = []

    def __call__(
        self,
        reason: str,
        station_id: str | None,
        payload: bytes,
        detail: str,
        received_at: datetime,
    ) -> None:
        self.seen[reason] += 1
        self.batch_rejected[reason] += 1
        if self.seen[reason] <= MAX_DEAD_LETTERS_PER_REASON:
            self.dead_letters.append(
                DeadLetter(
                    self.topic, station_id, payload, reason, detail[:1000], received_at, SOURCE
                )
            )

    def take(self) -> tuple[list[DeadLetter], Counter[str]]:
        taken = self.dead_letters, self.batch_rejected
        self.dead_letters, self.batch_rejected = [], Counter()
        return taken

    def summaries(self, received_at: datetime) -> list[DeadLetter]:
        """One dead letter per reason for the rejections over the cap (end of file)."""
        return [
            DeadLetter(
                self.topic,
                None,
                b"",
                reason,
                f"{n - MAX_DEAD_LETTERS_PER_REASON} further {reason} rejections in this file "
                f"(the first {MAX_DEAD_LETTERS_PER_REASON} are stored one by one)",
                received_at,
                SOURCE,
            )
            for reason, n in sorted(self.seen.items())
            if n > MAX_DEAD_LETTERS_PER_REASON
        ]


def _refused_row(
    topic: str, index: int, rows: Sequence[ReadingRow], rejection: Rejection
) -> DeadLetter:
    """The dead letter of a reading the database refused, as a long-CSV row of its own
    (the wide layout's source line holds a whole station column)."""
    station_id, parameter, ts, value, received_at = rows[0]
    row = f"{station_id},{parameter},{ts.isoformat()},{value!r}"
    return DeadLetter(
        topic,
        station_id,
        row.encode(),
        rejection.reason,
        f"{row}: {rejection.detail}",
        received_at,
        SOURCE,
    )


def _station_problem(info: StationInfo | None, station_id: str) -> tuple[str, str] | None:
    if info is None:
        return Reason.UNKNOWN_STATION, f"station {station_id!r} is not registered"
    if not info.active:
        return Reason.INACTIVE_STATION, f"station {station_id!r} is deactivated"
    return None


def _value_problem(parameter: str, value: float) -> tuple[str, str] | None:
    if value != value or value in (float("inf"), float("-inf")):
        return Reason.NON_NUMERIC_VALUE, f"{parameter} = {value} is not a number"
    if value in SENTINELS:
        return Reason.SENTINEL_VALUE, f"{parameter} = {value:g} is a no-data marker"
    if value < 0 and not CATALOGUE[parameter].may_be_negative:
        return Reason.NEGATIVE_VALUE, f"{parameter} = {value:g} is negative"
    if (bounds := implausible(parameter, value)) is not None:
        rejection = out_of_range(parameter, value, bounds)
        return rejection.reason, rejection.detail
    return None


def _time_problem(ts: datetime, latest: datetime) -> tuple[str, str] | None:
    if ts > latest:
        return Reason.TIMESTAMP_FUTURE, f"ts {ts.isoformat()} is in the future"
    if ts < EARLIEST_TS:
        return Reason.TIMESTAMP_INVALID, f"ts {ts.isoformat()} is before {EARLIEST_TS.date()}"
    return None


# --- readers: each yields batches that end on a row boundary -------------------------------
Reader = Callable[[Path, StationDirectory, FileCounts, _Rejector, int], Iterator[_Batch]]


def _read_wide(
    path: Path,
    stations: StationDirectory,
    counts: FileCounts,
    reject: _Rejector,
    batch_rows: int,
) -> Iterator[_Batch]:
    """date,hour,type,<station codes>…: hour H (local time of the station) is the hour
    starting at H:00; one value per station column."""
    with path.open("rb") as f:
        header_line = f.readline()
        codes = [c.strip() for c in _decode_header(header_line)[3:]]
        columns: list[tuple[str, StationInfo | None]] = [(c, stations.get(c)) for c in codes]
        if counts.offset:
            f.seek(counts.offset)
        offset = counts.offset or len(header_line)
        row_no = counts.rows
        received_at = datetime.now(UTC)
        latest = received_at + MAX_FUTURE
        readings: list[ReadingRow] = []
        empty = skipped = values = 0
        local_hours: dict[tuple[bytes, bytes], datetime | None] = {}
        for line in f:
            offset += len(line)
            row_no += 1
            parts = line.rstrip(b"\r\n").split(b",")
            cells = parts[3:]
            values += len(cells)
            kind = parts[2].strip() if len(parts) > 2 else b""
            parameter = WIDE_HOURLY.get(kind)
            if parameter is None:
                if kind in WIDE_DERIVED:
                    skipped += len(cells)
                    continue
                for code, raw in zip(codes, cells, strict=False):
                    if raw.strip():
                        reject(
                            Reason.UNKNOWN_PARAMETER,
                            code,
                            b"%s,%s,%s,%s=%s" % (parts[0], parts[1], kind, code.encode(), raw),
                            f"row {row_no}: type {kind.decode(errors='replace')!r} is neither an "
                            "hourly pollutant nor a derived value",
                            received_at,
                        )
                continue
            key = (parts[0], parts[1])
            if key not in local_hours:
                local_hours[key] = _wide_local_hour(parts[0], parts[1])
            local = local_hours[key]
            by_tz: dict[ZoneInfo, datetime] = {}
            for (code, info), raw in zip(columns, cells, strict=False):
                if not raw or raw.isspace():
                    empty += 1
                    continue
                problem = _station_problem(info, code)
                if problem is None and local is None:
                    problem = (
                        Reason.TIMESTAMP_INVALID,
                        f"date {parts[0].decode(errors='replace')!r} hour "
                        f"{parts[1].decode(errors='replace')!r} is not a day and hour 0-23",
                    )
                ts: datetime | None = None
                if problem is None:
                    assert info is not None and local is not None
                    ts = by_tz.get(info.timezone)
                    if ts is None:
                        ts = by_tz[info.timezone] = local.replace(tzinfo=info.timezone)
                    problem = _time_problem(ts, latest)
                value = 0.0
                if problem is None:
                    try:
                        value = float(raw)
                    except ValueError:
                        problem = (
                            Reason.NON_NUMERIC_VALUE,
                            f"{parameter} = {raw[:40].decode(errors='replace')!r} is not a number",
                        )
                    else:
                        problem = _value_problem(parameter, value)
                if problem is not None:
                    reject(
                        problem[0],
                        code,
                        b"%s,%s,%s,%s=%s" % (parts[0], parts[1], kind, code.encode(), raw),
                        f"row {row_no}, column {code}: {problem[1]}",
                        received_at,
                    )
                    continue
                assert ts is not None
                readings.append((code, parameter, ts, value, received_at))
            if len(readings) >= WIDE_MAX_BATCH_ROWS:
                dead, rejected = reject.take()
                yield _Batch(readings, dead, row_no, offset, values, empty, skipped, rejected)
                readings, empty, skipped, values = [], 0, 0, 0
                received_at = datetime.now(UTC)
        dead, rejected = reject.take()
        dead += reject.summaries(received_at)
        yield _Batch(readings, dead, row_no, offset, values, empty, skipped, rejected, last=True)


def _wide_local_hour(date: bytes, hour: bytes) -> datetime | None:
    try:
        day = datetime.strptime(date.strip().decode(), "%Y%m%d")
        h = int(hour)
    except (ValueError, UnicodeDecodeError):
        return None
    if not 0 <= h <= 23:
        return None
    return day.replace(hour=h)


class _LongRows:
    """Validation of long-form rows (station, parameter, ts, value), shared by CSV and
    Parquet. Consecutive rows of one water section and instant form one sample; its class
    is derived (GB 3838 single factor) when the file does not give it, as ingest does."""

    def __init__(self, stations: StationDirectory, reject: _Rejector) -> None:
        self.stations = stations
        self.reject = reject
        self.readings: list[ReadingRow] = []
        self.empty = 0
        self._station_cache: dict[Any, tuple[str, StationInfo | None] | None] = {}
        self._parameters: dict[Any, str | None] = {}
        self._times: dict[tuple[Any, ZoneInfo], datetime | None] = {}
        self._sample: tuple[str, datetime] | None = None
        self._sample_values: dict[str, float] = {}
        self._sample_waterbody = "river"
        self.received_at = datetime.now(UTC)
        self.latest = self.received_at + MAX_FUTURE

    def new_batch(self) -> None:
        self.readings = []
        self.empty = 0
        self.received_at = datetime.now(UTC)
        self.latest = self.received_at + MAX_FUTURE
        if len(self._times) > 200_000:
            self._times.clear()

    def at_sample_boundary(self, station: Any, ts: Any) -> bool:
        """Whether a batch may end before this row (it does not continue a water sample)."""
        if self._sample is None:
            return True
        cached = self._station_cache.get(station)
        return cached is None or cached[0] != self._sample[0]

    def add(
        self, row_no: int, station: Any, parameter: Any, ts: Any, value: Any, raw: bytes
    ) -> None:
        if value is None or value == b"" or value == "":
            self.empty += 1
            return
        cached = self._station_cache.get(station)
        if cached is None:
            station_id = station.decode(errors="replace") if isinstance(station, bytes) else station
            station_id = str(station_id).strip()
            cached = (station_id, self.stations.get(station_id))
            if cached[1] is not None or len(self._station_cache) < 100_000:
                self._station_cache[station] = cached
        station_id, info = cached
        problem = _station_problem(info, station_id)
        if problem is not None:
            self.reject(
                problem[0], station_id[:64], raw, f"row {row_no}: {problem[1]}", self.received_at
            )
            return
        assert info is not None
        name = self._parameters.get(parameter, "")
        if name == "":
            text = parameter.decode(errors="replace") if isinstance(parameter, bytes) else parameter
            name = self._parameters[parameter] = canonical_parameter(str(text))
        if name is None:
            self.reject(
                Reason.UNKNOWN_PARAMETER,
                station_id,
                raw,
                f"row {row_no}: parameter {parameter!r} is not in the catalogue",
                self.received_at,
            )
            return
        key = (ts, info.timezone)
        when = self._times.get(key, _MISSING)
        if when is _MISSING:
            when = self._times[key] = _parse_ts(ts, info.timezone)
        if when is None:
            self.reject(
                Reason.TIMESTAMP_INVALID,
                station_id,
                raw,
                f"row {row_no}: ts {ts!r} is not ISO 8601 nor epoch seconds",
                self.received_at,
            )
            return
        problem = _time_problem(when, self.latest)
        if problem is None:
            try:
                number = float(value)
            except (ValueError, TypeError):
                problem = (Reason.NON_NUMERIC_VALUE, f"{name} = {value!r} is not a number")
            else:
                problem = _value_problem(name, number)
        if problem is not None:
            self.reject(
                problem[0], station_id, raw, f"row {row_no}: {problem[1]}", self.received_at
            )
            return
        if info.kind in WATER_KINDS:
            if self._sample != (station_id, when):
                self.end_sample()
                self._sample = (station_id, when)
                self._sample_waterbody = "lake" if info.waterbody == "lake" else "river"
            self._sample_values[name] = number
        self.readings.append((station_id, name, when, number, self.received_at))

    def end_sample(self) -> None:
        """Add the derived water class of the sample just read, if the file gave none."""
        if self._sample is not None and "water_class" not in self._sample_values:
            derived = water_class(self._sample_values, self._sample_waterbody)  # type: ignore[arg-type]
            if derived is not None:
                station_id, when = self._sample
                self.readings.append(
                    (station_id, "water_class", when, float(derived.water_class), self.received_at)
                )
        self._sample = None
        self._sample_values = {}


_MISSING: Any = object()


def _parse_ts(raw: Any, tz: ZoneInfo) -> datetime | None:
    """An aware timestamp: ISO 8601 (naive = the station's timezone) or epoch seconds."""
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=tz)
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    text = text.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (ValueError, OverflowError, OSError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _read_long_csv(
    path: Path,
    stations: StationDirectory,
    counts: FileCounts,
    reject: _Rejector,
    batch_rows: int,
) -> Iterator[_Batch]:
    with path.open("rb") as f:
        header_line = f.readline()
        header = [c.strip().lower() for c in _decode_header(header_line)]
        station_col = header.index("station" if "station" in header else "station_id")
        parameter_col, ts_col, value_col = (header.index(c) for c in ("parameter", "ts", "value"))
        width = max(station_col, parameter_col, ts_col, value_col) + 1
        if counts.offset:
            f.seek(counts.offset)
        offset = counts.offset or len(header_line)
        row_no = counts.rows
        rows = _LongRows(stations, reject)
        values = 0
        for line in f:
            stripped = line.rstrip(b"\r\n")
            parts = stripped.split(b",")
            if b'"' in stripped:
                parts = [
                    c.encode() for c in next(csv.reader([stripped.decode(errors="replace")]), [])
                ]
            if len(parts) < width:
                if not stripped.strip():
                    offset += len(line)
                    row_no += 1
                    continue
                parts += [b""] * (width - len(parts))
            station = parts[station_col].strip()
            if len(rows.readings) >= batch_rows and rows.at_sample_boundary(station, parts[ts_col]):
                rows.end_sample()
                dead, rejected = reject.take()
                yield _Batch(rows.readings, dead, row_no, offset, values, rows.empty, 0, rejected)
                values = 0
                rows.new_batch()
            offset += len(line)
            row_no += 1
            values += 1
            if not station:
                reject(
                    Reason.INVALID_SHAPE,
                    None,
                    stripped,
                    f"row {row_no}: no station",
                    rows.received_at,
                )
                continue
            rows.add(
                row_no,
                station,
                parts[parameter_col].strip(),
                parts[ts_col],
                parts[value_col].strip(),
                stripped,
            )
        rows.end_sample()
        dead, rejected = reject.take()
        dead += reject.summaries(rows.received_at)
        yield _Batch(
            rows.readings, dead, row_no, offset, values, rows.empty, 0, rejected, last=True
        )


def _read_parquet(
    path: Path,
    stations: StationDirectory,
    counts: FileCounts,
    reject: _Rejector,
    batch_rows: int,
) -> Iterator[_Batch]:
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    names = [n.lower() for n in source.schema_arrow.names]
    station_name = "station" if "station" in names else "station_id"
    missing = {station_name, "parameter", "ts", "value"} - set(names)
    if missing:
        raise ImportFileError(f"{path}: Parquet columns {sorted(missing)} missing")
    wanted = [source.schema_arrow.names[names.index(c)] for c in (station_name, "parameter")]
    wanted += [source.schema_arrow.names[names.index(c)] for c in ("ts", "value")]
    row_no = 0
    rows = _LongRows(stations, reject)
    values = 0
    for record_batch in source.iter_batches(batch_size=65_536, columns=wanted):
        n = record_batch.num_rows
        if row_no + n <= counts.rows:
            row_no += n
            continue
        columns = [record_batch.column(i).to_pylist() for i in range(4)]
        start = max(counts.rows - row_no, 0)
        row_no += start
        for station, parameter, ts, value in zip(*(c[start:] for c in columns), strict=True):
            if len(rows.readings) >= batch_rows and rows.at_sample_boundary(station, ts):
                rows.end_sample()
                dead, rejected = reject.take()
                yield _Batch(rows.readings, dead, row_no, 0, values, rows.empty, 0, rejected)
                values = 0
                rows.new_batch()
            row_no += 1
            values += 1
            if value is not None and not isinstance(value, int | float | str):
                value = str(value)
            raw = f"{station},{parameter},{ts},{value}".encode()
            if station is None:
                reject(
                    Reason.INVALID_SHAPE, None, raw, f"row {row_no}: no station", rows.received_at
                )
                continue
            rows.add(row_no, station, parameter, ts, value, raw)
    rows.end_sample()
    dead, rejected = reject.take()
    dead += reject.summaries(rows.received_at)
    yield _Batch(rows.readings, dead, row_no, 0, values, rows.empty, 0, rejected, last=True)


READERS: dict[Format, Reader] = {
    "long": _read_long_csv,
    "parquet": _read_parquet,
    "wide": _read_wide,
}


# --- station lists -------------------------------------------------------------------------
def derived_city_code(city: str) -> str:
    """A stable code for a city known only by name: ``CN-`` and 8 hex digits of the SHA-256
    of the name. Never a GB/T 2260 code (those are six digits), the same on every machine."""
    return "CN-" + hashlib.sha256(city.strip().encode()).hexdigest()[:8]


def read_station_list(path: Path) -> tuple[list[Station], list[str]]:
    """Air stations of a station list (English or the national list's Chinese headers,
    UTF-8 with or without BOM) and the problems of rows that could not be read."""
    from pydantic import ValidationError

    from simulators.geography import CITIES

    code_by_name = {c.name.lower(): c.code for c in CITIES}
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    fields = [STATION_HEADERS.get(h.strip().lower()) for h in header]
    stations: list[Station] = []
    problems: list[str] = []
    for line, cells in enumerate(reader, start=2):
        row = {f: c.strip() for f, c in zip(fields, cells, strict=False) if f and c and c.strip()}
        if not row:
            continue
        city = row.get("city")
        if city and "city_code" not in row:
            row["city_code"] = code_by_name.get(city.lower()) or derived_city_code(city)
        try:
            stations.append(Station.model_validate({**row, "kind": "air"}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            problems.append(f"row {line}: {where}: {first['msg']}")
    return stations, problems


# Create, or update what a station list knows; keeps what it does not say (timezone,
# interval, active, province when absent).
_UPSERT_LISTED_STATION = """
INSERT INTO stations (station_id, name, kind, city, city_code, province, latitude, longitude)
VALUES (%(station_id)s, %(name)s, 'air', %(city)s, %(city_code)s, %(province)s,
        %(latitude)s, %(longitude)s)
ON CONFLICT (station_id) DO UPDATE SET
    name = excluded.name, city = coalesce(excluded.city, stations.city),
    city_code = coalesce(excluded.city_code, stations.city_code),
    province = coalesce(excluded.province, stations.province),
    latitude = coalesce(excluded.latitude, stations.latitude),
    longitude = coalesce(excluded.longitude, stations.longitude),
    updated_at = now()
WHERE stations.kind = 'air'
RETURNING (xmax = 0) AS created
"""


def import_station_list(conn: psycopg.Connection, stations: Sequence[Station]) -> tuple[int, int]:
    """Create or update air stations; returns (created, updated)."""
    created = updated = 0
    with conn.transaction(), conn.cursor() as cur:
        for station in stations:
            cur.execute(_UPSERT_LISTED_STATION, station.model_dump())
            row = cur.fetchone()
            if row is None:
                continue
            if row[0]:
                created += 1
            else:
                updated += 1
    return created, updated


# --- the journal ---------------------------------------------------------------------------
_JOURNAL_OPEN = """
INSERT INTO imports (sha256, size, name, format) VALUES (%s, %s, %s, %s)
ON CONFLICT (sha256) DO UPDATE SET updated_at = now()
RETURNING rows_done, bytes_done, readings_stored, duplicates, empty_cells, derived_skipped,
          rejected, finished_at
"""
_JOURNAL_ADVANCE = """
UPDATE imports SET rows_done = %(rows)s, bytes_done = %(offset)s,
    readings_stored = readings_stored + %(stored)s, duplicates = duplicates + %(duplicates)s,
    empty_cells = empty_cells + %(empty)s, derived_skipped = derived_skipped + %(skipped)s,
    rejected = %(rejected)s, updated_at = now(),
    finished_at = CASE WHEN %(last)s THEN now() END
WHERE sha256 = %(sha256)s
"""


def _open_journal(
    conn: psycopg.Connection, sha256: bytes, size: int, name: str, fmt: Format
) -> tuple[FileCounts, datetime | None]:
    with conn.transaction():
        row = conn.execute(_JOURNAL_OPEN, (sha256, size, name, fmt)).fetchone()
    assert row is not None
    counts = FileCounts(
        rows=row[0],
        offset=row[1],
        stored=row[2],
        duplicates=row[3],
        empty=row[4],
        derived_skipped=row[5],
        rejected=Counter(row[6]),
    )
    return counts, row[7]


_BULK_SESSION = "SET LOCAL work_mem = '128MB'; SET LOCAL jit = off"


# --- the run -------------------------------------------------------------------------------
class _PerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            f"{speed:,.0f} values/s" if speed else "… values/s", style="progress.data.speed"
        )


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} values"),
        _PerSecond(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def _loader(database_url: str) -> Callable[[], dict[str, StationInfo]]:
    def load() -> dict[str, StationInfo]:
        with psycopg.connect(database_url) as conn:
            return stations_of(conn)

    return load


def import_files(
    database_url: str,
    paths: Sequence[Path],
    fmt: Format | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    show_progress: bool = False,
    on_batch: Callable[[ImportSummary], object] | None = None,
    jobs: int = 1,
) -> ImportSummary:
    """Import ``paths`` (station lists first, then readings), resuming files the journal
    shows unfinished and skipping finished ones. With ``jobs`` > 1, that many files are
    written at once, each over its own connection (the database does most of the work, and
    it can use another core)."""
    summary = ImportSummary(files=len(paths), jobs=max(1, jobs))
    started = time.perf_counter()
    planned: list[tuple[Path, Format]] = []
    for path in paths:
        try:
            planned.append((path, fmt or detect_format(path)))
        except (OSError, ImportFileError) as exc:
            log.error("cannot import %s: %s", path, exc)
            summary.files_failed.append(str(path))
    planned.sort(key=lambda p: p[1] != "stations")  # stable: registry before readings
    directory = StationDirectory(_loader(database_url), min_reload_s=30.0)
    with psycopg.connect(database_url) as conn, _progress(show_progress) as progress:
        prepare_connection(conn)
        readings_files: list[tuple[Path, Format, bytes, int, FileCounts, int]] = []
        for path, file_format in planned:
            try:
                if file_format == "stations":
                    _import_stations_file(conn, path, summary)
                    directory.expire()
                    continue
                sha256, size = file_identity(path)
                counts, finished_at = _open_journal(conn, sha256, size, path.name, file_format)
                if finished_at is not None:
                    log.info(
                        "%s: already imported (%s, %d readings stored then); skipped",
                        path,
                        finished_at.isoformat(timespec="seconds"),
                        counts.stored,
                    )
                    summary.files_already_imported += 1
                    continue
                total = count_values(path, file_format)
            except (OSError, ImportFileError, UnicodeDecodeError, ValueError) as exc:
                log.error("cannot import %s: %s", path, exc)
                summary.files_failed.append(str(path))
                continue
            readings_files.append((path, file_format, sha256, size, counts, total))
        overall = progress.add_task("all files", total=sum(f[5] for f in readings_files), note="")

        def import_one(item: tuple[Path, Format, bytes, int, FileCounts, int]) -> None:
            path, file_format, sha256, _, counts, total = item
            if counts.rows:
                log.info("%s: resuming after row %d", path, counts.rows)
            task = progress.add_task(path.name[-40:], total=total, note="")
            own = summary.jobs > 1
            file_conn = psycopg.connect(database_url) if own else conn
            try:
                if own:
                    prepare_connection(file_conn)
                _import_readings_file(
                    file_conn,
                    path,
                    file_format,
                    sha256,
                    counts,
                    directory,
                    batch_rows,
                    summary,
                    _advancer(progress, task, overall),
                    on_batch,
                )
            except (OSError, ImportFileError, UnicodeDecodeError, ValueError) as exc:
                file_conn.rollback()
                log.error("cannot import %s: %s", path, exc)
                with summary.lock:
                    summary.files_failed.append(str(path))
                return
            finally:
                if own:
                    file_conn.close()
            with summary.lock:
                summary.files_imported += 1
            progress.update(task, completed=total, visible=not own)

        if summary.jobs == 1:
            for item in readings_files:
                import_one(item)
        else:
            with ThreadPoolExecutor(summary.jobs, thread_name_prefix="import") as pool:
                for done in [pool.submit(import_one, item) for item in readings_files]:
                    done.result()
    summary.seconds = time.perf_counter() - started
    return summary


def _advancer(progress: Progress, task: TaskID, overall: TaskID) -> Callable[[int, str], None]:
    def advance(n: int, note: str) -> None:
        progress.update(task, advance=n, note=note)
        progress.update(overall, advance=n)

    return advance


def _import_stations_file(conn: psycopg.Connection, path: Path, summary: ImportSummary) -> None:
    stations, problems = read_station_list(path)
    for problem in problems[:20]:
        log.warning("%s: %s", path, problem)
    created, updated = import_station_list(conn, stations)
    summary.stations_created += created
    summary.stations_updated += updated
    summary.stations_rejected += len(problems)
    summary.files_imported += 1
    log.info(
        "%s: station list: %d created, %d updated, %d rows rejected",
        path,
        created,
        updated,
        len(problems),
    )


def _import_readings_file(
    conn: psycopg.Connection,
    path: Path,
    file_format: Format,
    sha256: bytes,
    counts: FileCounts,
    directory: StationDirectory,
    batch_rows: int,
    summary: ImportSummary,
    advance: Callable[[int, str], object],
    on_batch: Callable[[ImportSummary], object] | None,
) -> None:
    reject = _Rejector(f"import/{path.name}", counts)
    if counts.rows:
        advance(counts.rows if file_format != "wide" else 0, "resumed")
    batches = READERS[file_format](path, directory, counts, reject, batch_rows)
    file_stored = file_duplicates = 0
    # The next batch is parsed (in Python) while the database writes this one.
    with ThreadPoolExecutor(1, thread_name_prefix="import-read") as reader:

        def fetch() -> Future[_Batch | None]:
            return reader.submit(next, batches, None)

        upcoming: Future[_Batch | None] | None = fetch()
        while upcoming is not None and (batch := upcoming.result()) is not None:
            upcoming = fetch() if not batch.last else None
            for attempt in range(1, 6):
                try:
                    with conn.transaction():
                        # The writer's daily refresh tests each touched day against
                        # new_readings; with default work_mem a bulk batch's set does not fit
                        # in a hash and the test turns quadratic (minutes per batch). JIT
                        # only adds compile time here.
                        conn.execute(_BULK_SESSION)
                        result = write_isolating(
                            conn,
                            batch.readings,
                            batch.dead_letters,
                            (),
                            part_ends=None,
                            refused=partial(_refused_row, reject.topic),
                            bulk=True,
                        )
                        refused = Counter(r.dead_letter.reason for r in result.refused)
                        rejected = counts.rejected + batch.rejected + refused
                        conn.execute(
                            _JOURNAL_ADVANCE,
                            {
                                "rows": batch.rows_end,
                                "offset": batch.offset_end,
                                "stored": result.inserted,
                                "duplicates": result.duplicates,
                                "empty": batch.empty,
                                "skipped": batch.derived_skipped,
                                "rejected": Jsonb(dict(rejected)),
                                "last": batch.last,
                                "sha256": sha256,
                            },
                        )
                    break
                except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                    # another job wrote overlapping rows in another order; the batch rolled
                    # back whole, so it is written again
                    if attempt == 5:
                        raise
                    log.info("%s: batch collided with another job; writing it again", path)
                    time.sleep(0.1 * attempt)
            counts.rejected = rejected
            file_stored += result.inserted
            file_duplicates += result.duplicates
            with summary.lock:
                summary.values += batch.values
                summary.stored += result.inserted
                summary.duplicates += result.duplicates
                summary.empty += batch.empty
                summary.derived_skipped += batch.derived_skipped
                summary.rejected.update(batch.rejected + refused)
            advance(
                batch.values,
                f"new {file_stored:,} · dup {file_duplicates:,}"
                f" · rejected {counts.rejected.total():,}",
            )
            if on_batch is not None:
                on_batch(summary)
            if batch.last:
                break
    log.info(
        "%s: %d readings stored, %d already stored, %d rejected",
        path,
        file_stored,
        file_duplicates,
        counts.rejected.total(),
    )
