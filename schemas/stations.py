"""The station as it crosses a boundary: registry files, the API, the database."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

StationKind = Literal["air", "surface_water", "sea", "groundwater"]
STATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Station(BaseModel):
    """A monitoring station or water section."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    station_id: str = Field(pattern=STATION_ID_PATTERN, examples=["110000-A001"])
    name: str = Field(min_length=1, max_length=200)
    kind: StationKind = "air"
    waterbody: Literal["river", "lake"] | None = None
    basin: str | None = Field(default=None, description="river basin of a water section")
    city: str | None = None
    city_code: str | None = None
    province: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    timezone: str = "Asia/Shanghai"
    reading_interval_s: int = Field(default=3600, ge=1, le=86400)
    active: bool = True

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r}") from None
        return value

    @field_validator("waterbody", "basin", "city", "city_code", "province", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


FIELDS = tuple(Station.model_fields)


class StationFileError(ValueError):
    """A registry file that cannot be imported; says which row and why."""


# Station-file headers → Station fields: the fields' own names, and the spellings of the
# national station list (English and Chinese).
STATION_HEADERS: dict[str, str] = {
    **{field: field for field in FIELDS},
    "station": "station_id",
    "code": "station_id",
    "station_code": "station_id",
    "监测点编码": "station_id",
    "station_name": "name",
    "监测点名称": "name",
    "城市": "city",
    "城市代码": "city_code",
    "省份": "province",
    "lon": "longitude",
    "lng": "longitude",
    "经度": "longitude",
    "lat": "latitude",
    "纬度": "latitude",
}

StationRow = tuple[int, dict[str, Any]]  # (line or position, Station field -> value)


def station_rows(path: Path) -> tuple[list[StationRow], list[str]]:
    """The rows of a station file — CSV with a header (UTF-8, BOM or not) or a JSON array —
    as Station fields, empty cells left out; and the CSV columns no field matches."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StationFileError(f"{path}: not valid JSON: {exc}") from None
        if isinstance(rows, dict) and "stations" in rows:
            rows = rows["stations"]
        if not isinstance(rows, list):
            raise StationFileError(f"{path}: expected a JSON array of stations")
        return list(enumerate(rows, start=1)), []
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    fields = [STATION_HEADERS.get(h.lower()) for h in header]
    numbered = []
    for line, cells in enumerate(reader, start=2):
        row = {f: c.strip() for f, c in zip(fields, cells, strict=False) if f and c.strip()}
        if row:
            numbered.append((line, row))
    return numbered, [h for h, f in zip(header, fields, strict=True) if f is None]


def read_station_file(path: Path) -> list[Station]:
    """Stations of a registry file (``airwater stations import``): every column a Station
    field, every row valid, or StationFileError saying which row and why."""
    rows, unknown = station_rows(path)
    if unknown:
        raise StationFileError(f"{path}: unknown columns {sorted(unknown)}; known: {FIELDS}")
    stations = []
    for where, row in rows:
        try:
            stations.append(Station.model_validate(row))
        except ValidationError as exc:
            raise StationFileError(f"{path}: row {where}: {first_error(exc)}") from None
    return stations


def first_error(exc: ValidationError) -> str:
    """``field: message`` of the first error of a Station validation."""
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
