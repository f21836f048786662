"""What a file to import is: its layout (from extension and header), its identity in the
journal (content hash, size) and its size in values (for the progress bar)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Literal

from schemas.stations import STATION_HEADERS

Format = Literal["long", "parquet", "wide", "stations"]
FORMATS: tuple[Format, ...] = ("long", "parquet", "wide", "stations")


class ImportFileError(Exception):
    """A file that cannot be imported at all (unreadable, unknown layout)."""


def detect_format(path: Path) -> Format:
    """The layout of ``path``, from its extension and its header."""
    with path.open("rb") as f:
        head = f.read(4)
        if head == b"PAR1" or path.suffix.lower() == ".parquet":
            return "parquet"
        f.seek(0)
        first = f.readline()
    try:
        header = [c.strip().lower() for c in decode_header(first)]
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


def decode_header(line: bytes) -> list[str]:
    """The cells of a CSV header line (UTF-8, with or without BOM)."""
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
