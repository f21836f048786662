"""The station as it crosses a boundary: registry files, the API, the database."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Literal
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


def read_station_file(path: Path) -> list[Station]:
    """Stations from a CSV (header row with Station's field names) or a JSON array file."""
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
        numbered = list(enumerate(rows, start=1))
    else:
        reader = csv.DictReader(text.splitlines())
        unknown = set(reader.fieldnames or ()) - set(FIELDS)
        if unknown:
            raise StationFileError(f"{path}: unknown columns {sorted(unknown)}; known: {FIELDS}")
        numbered = [
            (line, {k: v for k, v in row.items() if v not in (None, "")})
            for line, row in enumerate(reader, start=2)
        ]
    stations = []
    for where, row in numbered:
        try:
            stations.append(Station.model_validate(row))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise StationFileError(f"{path}: row {where}: {field}: {first['msg']}") from None
    return stations
