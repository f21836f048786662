"""Data review as it crosses the API: reviews (invalidations and their restores), sand-dust
events and the audit log (pydantic models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ReasonCode = Literal[
    "calibration",
    "maintenance",
    "instrument_fault",
    "power_or_communication_loss",
    "outlier",
    "other",
    "verified",
]
ReviewAction = Literal["invalidate", "accept"]
AuditAction = Literal[
    "invalidate", "accept", "restore", "dust_event", "dust_withdrawn", "publish", "revision"
]


class ReviewIn(BaseModel):
    """Take some parameters of a station out of every figure over a time range."""

    parameters: list[str] = Field(min_length=1, max_length=20, examples=[["pm25", "pm10"]])
    from_: datetime = Field(alias="from", description="start (inclusive), ISO 8601 with offset")
    to: datetime = Field(description="end (exclusive); widened to whole hours")
    action: ReviewAction = Field(
        default="invalidate",
        description="invalidate: take the hours out of every figure; accept: make the values "
        "their station flagged (HJ 212 data flags) count",
    )
    reason: ReasonCode | None = Field(
        default=None, description="required to invalidate; accept: 'verified' by default"
    )
    comment: str = Field(default="", max_length=2000, description="required for 'other'")

    model_config = {"populate_by_name": True}


class RestoreIn(BaseModel):
    comment: str = Field(default="", max_length=2000)


class Review(BaseModel):
    review_id: int
    station_id: str
    action: ReviewAction
    parameters: list[str]
    from_: datetime = Field(serialization_alias="from", description="first hour taken out")
    to: datetime = Field(description="end of the last hour taken out (exclusive)")
    reason: ReasonCode
    reason_text: str
    comment: str
    hours: int = Field(description="parameter-hours with data the review took out")
    created_by: str
    created_at: datetime
    active: bool
    restored_by: str | None = None
    restored_at: datetime | None = None
    restore_comment: str | None = None


class DustEventIn(BaseModel):
    """A sand-dust event over cities or provinces (GB/T 2260 codes)."""

    areas: list[str] = Field(
        min_length=1,
        max_length=400,
        examples=[["110000", "130000"]],
        description="city codes, or province codes (ending in 0000) standing for their cities",
    )
    from_: datetime = Field(alias="from")
    to: datetime
    evidence: str = Field(min_length=1, max_length=4000, description="e.g. the bulletin")

    model_config = {"populate_by_name": True}


class DustEvent(BaseModel):
    event_id: int
    areas: list[str]
    city_codes: list[str] = Field(description="the air network's cities the areas stood for")
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    evidence: str
    created_by: str
    created_at: datetime
    active: bool
    withdrawn_by: str | None = None
    withdrawn_at: datetime | None = None


class AuditEntry(BaseModel):
    audit_id: int
    at: datetime
    actor: str = Field(description="the API key's name, or the command line's user")
    action: AuditAction
    station_id: str | None = None
    areas: list[str] | None = None
    parameters: list[str] | None = None
    from_: datetime | None = Field(default=None, serialization_alias="from")
    to: datetime | None = None
    reason: str | None = None
    comment: str | None = None
    hours: int | None = Field(default=None, description="parameter-hours with data touched")
    review_id: int | None = None
    event_id: int | None = None
    detail: dict[str, Any] | None = None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_after: int | None = Field(description="pass as ?after= for the next page; null: done")
