"""The readers of long-form rows (station, parameter, ts, value): CSV on raw bytes, and
Parquet. Each row goes through the intake rules; consecutive rows of one water section and
instant form one sample, whose class is derived (GB 3838 single factor) when the file does
not give it, as for MQTT."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ingest.importer.batches import MAX_FUTURE, Batch, FileCounts, Rejector
from ingest.importer.files import ImportFileError, decode_header
from ingest.rules import (
    WATER_KINDS,
    derived_water_class,
    non_numeric,
    station_rejection,
    timestamp_rejection,
    unknown_parameter,
    value_rejection,
)
from ingest.validate import StationDirectory, StationInfo
from schemas.payloads import Reason, Rejection
from standards.parameters import canonical_parameter
from storage.writer import ReadingRow

_MISSING: Any = object()


class LongRows:
    """The rules applied to long-form rows of one batch, with caches of what repeats
    (stations, parameter names, timestamps)."""

    def __init__(self, stations: StationDirectory, reject: Rejector) -> None:
        self.stations = stations
        self.reject = reject
        self.readings: list[ReadingRow] = []
        self.empty = 0
        self._station_cache: dict[Any, tuple[str, StationInfo | None] | None] = {}
        self._parameters: dict[Any, str | None] = {}
        self._times: dict[tuple[Any, ZoneInfo], datetime | None] = {}
        self._sample: tuple[str, datetime] | None = None
        self._sample_values: dict[str, float] = {}
        self._sample_waterbody: str | None = None
        self.received_at = datetime.now(UTC)

    def new_batch(self) -> None:
        self.readings = []
        self.empty = 0
        self.received_at = datetime.now(UTC)
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
        """Check one row (cells as read: bytes, or Parquet values) and keep or reject it."""
        if value is None or value == b"" or value == "":
            self.empty += 1
            return
        station_id, info = self._station(station)
        accepted = self._check(info, station_id, parameter, ts, value)
        if isinstance(accepted, Rejection):
            self.reject(accepted, f"row {row_no}", station_id[:64], raw, self.received_at)
            return
        assert info is not None
        name, when, number = accepted
        if info.kind in WATER_KINDS:
            if self._sample != (station_id, when):
                self.end_sample()
                self._sample = (station_id, when)
                self._sample_waterbody = info.waterbody
            self._sample_values[name] = number
        self.readings.append((station_id, name, when, number, self.received_at))

    def _check(
        self, info: StationInfo | None, station_id: str, parameter: Any, ts: Any, value: Any
    ) -> tuple[str, datetime, float] | Rejection:
        problem = station_rejection(station_id, None if info is None else info.active)
        if problem is not None:
            return problem
        assert info is not None
        name = self._parameter(parameter)
        if name is None:
            text = parameter.decode(errors="replace") if isinstance(parameter, bytes) else parameter
            return unknown_parameter(text)
        key = (ts, info.timezone)
        when = self._times.get(key, _MISSING)
        if when is _MISSING:
            when = self._times[key] = parse_ts(ts, info.timezone)
        if when is None:
            return Rejection(
                Reason.TIMESTAMP_INVALID, f"ts {ts!r} is not ISO 8601 nor epoch seconds"
            )
        problem = timestamp_rejection(when, self.received_at, MAX_FUTURE)
        if problem is not None:
            return problem
        try:
            number = float(value)
        except (ValueError, TypeError):
            return non_numeric(name, value)
        problem = value_rejection(name, number, when)
        return (name, when, number) if problem is None else problem

    def _station(self, station: Any) -> tuple[str, StationInfo | None]:
        cached = self._station_cache.get(station)
        if cached is None:
            station_id = station.decode(errors="replace") if isinstance(station, bytes) else station
            station_id = str(station_id).strip()
            cached = (station_id, self.stations.get(station_id))
            if cached[1] is not None or len(self._station_cache) < 100_000:
                self._station_cache[station] = cached
        return cached

    def _parameter(self, parameter: Any) -> str | None:
        name = self._parameters.get(parameter, "")
        if name == "":
            text = parameter.decode(errors="replace") if isinstance(parameter, bytes) else parameter
            name = self._parameters[parameter] = canonical_parameter(str(text))
        return name

    def end_sample(self) -> None:
        """Add the derived water class of the sample just read, if the file gave none."""
        if self._sample is not None:
            derived = derived_water_class(self._sample_values, self._sample_waterbody)
            if derived is not None:
                station_id, when = self._sample
                self.readings.append((station_id, "water_class", when, derived, self.received_at))
        self._sample = None
        self._sample_values = {}


def parse_ts(raw: Any, tz: ZoneInfo) -> datetime | None:
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


def _no_station(rows: LongRows, row_no: int, raw: bytes) -> None:
    rows.reject(
        Rejection(Reason.INVALID_SHAPE, "no station"), f"row {row_no}", None, raw, rows.received_at
    )


def _last_batch(rows: LongRows, row_no: int, offset: int, values: int) -> Batch:
    rows.end_sample()
    dead, rejected = rows.reject.take()
    dead += rows.reject.summaries(rows.received_at)
    return Batch(rows.readings, dead, row_no, offset, values, rows.empty, 0, rejected, last=True)


def _cut(rows: LongRows, row_no: int, offset: int, values: int) -> Batch:
    rows.end_sample()
    dead, rejected = rows.reject.take()
    batch = Batch(rows.readings, dead, row_no, offset, values, rows.empty, 0, rejected)
    rows.new_batch()
    return batch


def read_long_csv(
    path: Path,
    stations: StationDirectory,
    counts: FileCounts,
    reject: Rejector,
    batch_rows: int,
) -> Iterator[Batch]:
    """Batches of a ``station,parameter,ts,value`` CSV (columns in any order), read as raw
    bytes, from where the journal says the last run stopped."""
    with path.open("rb") as f:
        header_line = f.readline()
        header = [c.strip().lower() for c in decode_header(header_line)]
        station_col = header.index("station" if "station" in header else "station_id")
        parameter_col, ts_col, value_col = (header.index(c) for c in ("parameter", "ts", "value"))
        width = max(station_col, parameter_col, ts_col, value_col) + 1
        if counts.offset:
            f.seek(counts.offset)
        offset = counts.offset or len(header_line)
        row_no = counts.rows
        rows = LongRows(stations, reject)
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
                yield _cut(rows, row_no, offset, values)
                values = 0
            offset += len(line)
            row_no += 1
            values += 1
            if not station:
                _no_station(rows, row_no, stripped)
                continue
            parameter, value = parts[parameter_col].strip(), parts[value_col].strip()
            rows.add(row_no, station, parameter, parts[ts_col], value, stripped)
        yield _last_batch(rows, row_no, offset, values)


def read_parquet(
    path: Path,
    stations: StationDirectory,
    counts: FileCounts,
    reject: Rejector,
    batch_rows: int,
) -> Iterator[Batch]:
    """Batches of a Parquet file with columns station (or station_id), parameter, ts,
    value, from the row where the journal says the last run stopped."""
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    names = [n.lower() for n in source.schema_arrow.names]
    station_name = "station" if "station" in names else "station_id"
    missing = {station_name, "parameter", "ts", "value"} - set(names)
    if missing:
        raise ImportFileError(f"{path}: Parquet columns {sorted(missing)} missing")
    wanted = [
        source.schema_arrow.names[names.index(c)]
        for c in (station_name, "parameter", "ts", "value")
    ]
    row_no = 0
    rows = LongRows(stations, reject)
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
                yield _cut(rows, row_no, 0, values)
                values = 0
            row_no += 1
            values += 1
            if value is not None and not isinstance(value, int | float | str):
                value = str(value)
            raw = f"{station},{parameter},{ts},{value}".encode()
            if station is None:
                _no_station(rows, row_no, raw)
                continue
            rows.add(row_no, station, parameter, ts, value, raw)
    yield _last_batch(rows, row_no, 0, values)
