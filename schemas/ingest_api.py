"""Response models of the REST API's HTTP ingest and dead-letter routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class RejectedPart(BaseModel):
    """A payload, or one reading of it, that was dead-lettered."""

    reason: str = Field(
        description="machine-readable reason code, as stored in the dead letter",
        examples=["negative_value"],
    )
    detail: str = Field(examples=["reading: pm10 = -1 at 2026-03-01T08:00:00+08:00 is negative"])


class IngestResult(BaseModel):
    """What became of one HTTP-ingested payload."""

    station_id: str
    received_at: datetime = Field(description="receive time, ISO 8601 with offset")
    stored: int = Field(description="readings (one per parameter and time) newly stored")
    duplicates: int = Field(
        description="readings already stored (a re-sent payload); the first value is kept"
    )
    rejected: list[RejectedPart] = Field(
        description="parts dead-lettered with their reason (also listed at /v1/dead-letters)"
    )


class DeadLetterOut(BaseModel):
    """A rejected payload (or one rejected reading of it) as it was received; repeats of the
    same rejection (same topic, payload, reason and detail) are counted on one letter."""

    id: int
    received_at: datetime = Field(
        description="first arrival, ISO 8601 with offset (the order of the list)"
    )
    source: str = Field(description="mqtt or http", examples=["mqtt"])
    topic: str = Field(
        description="MQTT topic; for HTTP ingest http:stations/{station_id}/readings",
        examples=["stations/110000-A001/readings"],
    )
    station_id: str | None
    reason: str = Field(description="machine-readable reason code", examples=["malformed_json"])
    detail: str = Field(description="the reason in one human sentence")
    payload: str = Field(description="the payload: UTF-8 text, or base64 when it is not UTF-8")
    encoding: Literal["utf-8", "base64"]
    payload_bytes: int = Field(description="size of the payload as received")
    occurrences: int = Field(
        ge=1,
        description="times this rejection was received (each delivery counts, a broker's "
        "redelivery of an already stored message included)",
        examples=[25],
    )
    first_seen: datetime = Field(description="first arrival (= received_at)")
    last_seen: datetime = Field(description="latest arrival")
