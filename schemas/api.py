"""Request and response models of the REST API that are not reports or stations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.stations import StationKind

Scope = Literal["read", "ingest", "review", "admin"]


class StationPatch(BaseModel):
    """Fields of a station to change; the id cannot change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: StationKind | None = None
    waterbody: Literal["river", "lake"] | None = None
    basin: str | None = None
    city: str | None = None
    city_code: str | None = None
    province: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    timezone: str | None = None
    reading_interval_s: int | None = Field(default=None, ge=1, le=86400)
    active: bool | None = None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["Beijing bureau dashboard"])
    scopes: list[Scope] = Field(min_length=1, examples=[["read"]])


class KeyOut(BaseModel):
    key_id: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreated(KeyOut):
    token: str = Field(description="the whole key; shown only in this response")


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    database: bool
    broker: bool
    detail: dict[str, str] = Field(default_factory=dict)
