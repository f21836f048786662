"""The reader of the national air network's wide hourly layout: ``date,hour,type,<station
codes>…``, one value per station column; hour H (local time of the station) is the hour
starting at H:00."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.importer.batches import MAX_FUTURE, Batch, FileCounts, Rejector
from ingest.importer.files import decode_header
from ingest.rules import (
    non_numeric,
    station_rejection,
    timestamp_rejection,
    unknown_parameter,
    value_rejection,
)
from ingest.validate import StationDirectory, StationInfo
from schemas.payloads import Reason, Rejection
from storage.writer import ReadingRow

# A wide-layout day file (~1,700 stations x 24 h x 6 pollutants ≈ 245 k readings) is written
# in one transaction: every batch recomputes the daily rollup of each station-day it touches,
# so cutting a day into three batches would recompute each day three times.
WIDE_MAX_BATCH_ROWS = 400_000

# The `type` rows: hourly pollutant values are readings (CO in mg/m³, the others in µg/m³ —
# the stored units); the 24-hour, 8-hour and AQI rows are derived.
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

Column = tuple[str, StationInfo | None]


def read_wide(
    path: Path,
    stations: StationDirectory,
    counts: FileCounts,
    reject: Rejector,
    batch_rows: int,
) -> Iterator[Batch]:
    """Batches of whole rows, from where the journal says the last run stopped."""
    with path.open("rb") as f:
        header_line = f.readline()
        codes = [c.strip() for c in decode_header(header_line)[3:]]
        columns: list[Column] = [(c, stations.get(c)) for c in codes]
        if counts.offset:
            f.seek(counts.offset)
        offset = counts.offset or len(header_line)
        row_no = counts.rows
        received_at = datetime.now(UTC)
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
                else:
                    _reject_type_row(reject, row_no, parts, codes, received_at)
                continue
            key = (parts[0], parts[1])
            if key not in local_hours:
                local_hours[key] = _wide_local_hour(parts[0], parts[1])
            row = _WideRow(row_no, parts, parameter, local_hours[key], received_at)
            empty += row.read(columns, reject, readings)
            if len(readings) >= WIDE_MAX_BATCH_ROWS:
                dead, rejected = reject.take()
                yield Batch(readings, dead, row_no, offset, values, empty, skipped, rejected)
                readings, empty, skipped, values = [], 0, 0, 0
                received_at = datetime.now(UTC)
        dead, rejected = reject.take()
        dead += reject.summaries(received_at)
        yield Batch(readings, dead, row_no, offset, values, empty, skipped, rejected, last=True)


def _reject_type_row(
    reject: Rejector, row_no: int, parts: list[bytes], codes: list[str], received_at: datetime
) -> None:
    kind = parts[2].strip() if len(parts) > 2 else b""
    rejection = unknown_parameter(kind.decode(errors="replace"))
    rejection = Rejection(
        rejection.reason,
        f"{rejection.detail}: a type row is an hourly pollutant or a derived value",
    )
    for code, raw in zip(codes, parts[3:], strict=False):
        if raw.strip():
            payload = b"%s,%s,%s,%s=%s" % (parts[0], parts[1], kind, code.encode(), raw)
            reject(rejection, f"row {row_no}", code, payload, received_at)


class _WideRow:
    """One hourly pollutant row: a value per station column, each through the rules."""

    def __init__(
        self,
        row_no: int,
        parts: list[bytes],
        parameter: str,
        local: datetime | None,
        received_at: datetime,
    ) -> None:
        self.row_no = row_no
        self.parts = parts
        self.parameter = parameter
        self.local = local
        self.received_at = received_at
        self.by_tz: dict[ZoneInfo, datetime] = {}

    def read(self, columns: list[Column], reject: Rejector, readings: list[ReadingRow]) -> int:
        """Append the row's accepted readings; returns its empty cells."""
        empty = 0
        for (code, info), raw in zip(columns, self.parts[3:], strict=False):
            if not raw or raw.isspace():
                empty += 1
                continue
            accepted = self._check(code, info, raw)
            if isinstance(accepted, Rejection):
                payload = b"%s,%s,%s,%s=%s" % (
                    self.parts[0],
                    self.parts[1],
                    self.parts[2].strip(),
                    code.encode(),
                    raw,
                )
                where = f"row {self.row_no}, column {code}"
                reject(accepted, where, code, payload, self.received_at)
                continue
            ts, value = accepted
            readings.append((code, self.parameter, ts, value, self.received_at))
        return empty

    def _check(
        self, code: str, info: StationInfo | None, raw: bytes
    ) -> tuple[datetime, float] | Rejection:
        problem = station_rejection(code, None if info is None else info.active)
        if problem is not None:
            return problem
        assert info is not None
        if self.local is None:
            return Rejection(
                Reason.TIMESTAMP_INVALID,
                f"date {self.parts[0].decode(errors='replace')!r} hour "
                f"{self.parts[1].decode(errors='replace')!r} is not a day and hour 0-23",
            )
        ts = self.by_tz.get(info.timezone)
        if ts is None:
            ts = self.by_tz[info.timezone] = self.local.replace(tzinfo=info.timezone)
        problem = timestamp_rejection(ts, self.received_at, MAX_FUTURE)
        if problem is not None:
            return problem
        try:
            value = float(raw)
        except ValueError:
            return non_numeric(self.parameter, raw[:40])
        problem = value_rejection(self.parameter, value, ts)
        return (ts, value) if problem is None else problem


def _wide_local_hour(date: bytes, hour: bytes) -> datetime | None:
    try:
        day = datetime.strptime(date.strip().decode(), "%Y%m%d")
        h = int(hour)
    except (ValueError, UnicodeDecodeError):
        return None
    if not 0 <= h <= 23:
        return None
    return day.replace(hour=h)
