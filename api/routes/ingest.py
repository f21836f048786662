"""POST /v1/readings: HTTP ingest for stations that cannot speak MQTT, through the same
validation (ingest.validate.Validator) and the same intake pipeline (ingest.pipeline.store)
as MQTT."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from api.deps import Conn, IngestAccess, SettingsDep
from api.errors import PROBLEM_JSON, ApiError, Problem, problem_responses
from core.settings import Settings
from ingest.pipeline import store
from ingest.validate import Outcome, StationDirectory, Validator, load_stations
from schemas.ingest_api import IngestResult, RejectedPart
from schemas.payloads import Reason, Rejection
from schemas.stations import STATION_ID_PATTERN
from storage.writer import DeadLetter, ReadingRow, RefusedPart

router = APIRouter(prefix="/v1/readings", tags=["ingest"])

SOURCE = "http"
# Dead letters of HTTP ingest: the MQTT topic the payload stands for, marked as HTTP, so
# that the same bad payload sent both ways is kept once per way.
HTTP_TOPIC = "http:stations/{station_id}/readings"
ACCEPTED_MEDIA_TYPES = frozenset({"application/json", "application/senml+json"})
# A station deactivated or re-timezoned through the API reaches HTTP ingest within this.
STATIONS_MAX_AGE_S = 30.0


class PayloadRejectedProblem(Problem):
    """Problem details of a payload of which nothing was stored (422, 413); the extension
    members say what was dead-lettered and why. Other 422s (a bad ``station_id``) are plain
    validation problems."""

    station_id: str | None = None
    received_at: datetime | None = None
    stored: int | None = Field(default=None, description="always 0 for a rejected payload")
    duplicates: int | None = Field(default=None, description="always 0 for a rejected payload")
    rejected: list[RejectedPart] | None = Field(
        default=None, description="every dead letter written for the payload, with its reason"
    )


@dataclass(frozen=True, slots=True)
class RawBody:
    """The request body, or its first ``max_payload_bytes`` bytes when it is larger."""

    content: bytes
    declared_bytes: int | None
    oversized: bool


async def read_body(request: Request, settings: SettingsDep) -> RawBody:
    """Read at most max_payload_bytes + 1 bytes: an oversized body never fills the memory."""
    content_type = request.headers.get("content-type")
    if content_type is not None:
        media_type = content_type.split(";")[0].strip().lower()
        if media_type not in ACCEPTED_MEDIA_TYPES:
            raise ApiError(
                415,
                f"Content-Type {media_type!r} is not accepted; send application/json or "
                "application/senml+json",
            )
    limit = settings.max_payload_bytes
    try:
        declared: int | None = int(request.headers.get("content-length", ""))
    except ValueError:
        declared = None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    content = b"".join(chunks)
    if size > limit or (declared is not None and declared > limit):
        return RawBody(content[:limit], declared, True)
    return RawBody(content, declared, False)


def station_directory(request: Request) -> StationDirectory:
    """The app's station registry cache (created on first use), reloaded when stale."""
    state = request.app.state
    directory: StationDirectory | None = getattr(state, "station_directory", None)
    if directory is None:
        pool = state.pool
        directory = StationDirectory(lambda: load_stations(pool), max_age_s=STATIONS_MAX_AGE_S)
        state.station_directory = directory
    return directory


def _refusal(refused_body: DeadLetter) -> RefusedPart:
    """A reading the database refuses is a dead letter of the body; the others are stored."""

    def refused(index: int, rows: Sequence[ReadingRow], rejection: Rejection) -> DeadLetter:
        _, parameter, ts, value, _ = rows[0]
        return replace(
            refused_body,
            reason=rejection.reason,
            detail=f"{parameter} = {value:g} at {ts.isoformat()}: {rejection.detail}",
        )

    return refused


_READING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "one reading: ts (ISO 8601, or epoch seconds; no offset = the station's "
    "timezone) and parameter: value pairs (pm25, pm10, so2, no2, co, o3, … or water items "
    "do, codmn, nh3_n, tp, …, or water_class I..V)",
    "required": ["ts"],
    "properties": {
        "ts": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]},
        "station_id": {"type": "string", "description": "if given, must be the station posted"},
    },
    "additionalProperties": {"anyOf": [{"type": "number"}, {"type": "string"}]},
}
_SENML_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "SenML JSON (RFC 8428); units are converted to the stored unit",
    "items": {
        "type": "object",
        "properties": {
            key: {"type": kind}
            for key, kind in {
                "bn": "string",
                "bt": "number",
                "bu": "string",
                "bv": "number",
                "n": "string",
                "u": "string",
                "v": "number",
                "vs": "string",
                "t": "number",
            }.items()
        },
    },
}

_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "anyOf": [
                    _READING_SCHEMA,
                    {
                        "type": "object",
                        "description": "a batch of readings",
                        "required": ["readings"],
                        "properties": {"readings": {"type": "array", "items": _READING_SCHEMA}},
                    },
                    _SENML_SCHEMA,
                ]
            },
            "examples": {
                "reading": {"value": {"ts": "2026-03-01T08:00:00+08:00", "pm25": 35.2, "pm10": 61}},
                "batch": {
                    "value": {
                        "readings": [
                            {"ts": "2026-03-01T08:00:00+08:00", "pm25": 35.2},
                            {"ts": "2026-03-01T09:00:00+08:00", "pm25": 38.0},
                        ]
                    }
                },
                "water": {"value": {"ts": "2026-03-01T08:00:00+08:00", "do": 6.1, "nh3_n": 0.31}},
                "water class": {"value": {"ts": "2026-03-01T08:00:00+08:00", "water_class": "III"}},
            },
        },
        "application/senml+json": {
            "schema": _SENML_SCHEMA,
            "example": [
                {
                    "bn": "urn:dev:110000-A001:",
                    "bt": 1772323200,
                    "n": "pm25",
                    "u": "ug/m3",
                    "v": 35.2,
                },
                {"n": "pm10", "u": "ug/m3", "v": 61},
            ],
        },
    },
}
DESCRIPTION = f"""
Store readings of a station that cannot speak MQTT. The body is any MQTT payload shape
(one reading, a batch, water items or class, SenML) as ``application/json`` or
``application/senml+json``, at most ``AIRWATER_MAX_PAYLOAD_BYTES`` bytes; the station is
``?station_id=``. The payload goes through the same validation and writer as MQTT.

- **Idempotent**: a (station, parameter, ts) already stored counts as a duplicate and keeps
  its first value, so a payload can be re-sent safely after a timeout.
- **200**: something of the payload was stored (or was already stored); parts that were not
  are listed in ``rejected`` and kept as dead letters; a reading the database refuses
  (``storage_rejected``, with the database's message) is one of them, and the others are
  stored.
- **422** ``/problems/payload-rejected``: nothing of the payload could be stored (malformed
  JSON, wrong shape, unknown or deactivated station, every reading bad); the problem lists
  the rejections and each is kept as a dead letter.
- **413** ``/problems/payload-too-large``: the body exceeds the limit; its first
  ``AIRWATER_MAX_PAYLOAD_BYTES`` bytes are kept as a dead letter.
- Dead letters of HTTP ingest have source ``{SOURCE}`` and topic
  ``{HTTP_TOPIC}``. Errors of the request itself (key, scope, a missing or malformed
  ``station_id``, another Content-Type) store nothing.
"""


@router.post(
    "",
    response_model=IngestResult,
    description=DESCRIPTION,
    responses={
        **problem_responses(401, 403, 415, 503),
        413: {
            "model": PayloadRejectedProblem,
            "description": "Payload too large",
            "content": {PROBLEM_JSON: {}},
        },
        422: {
            "model": PayloadRejectedProblem,
            "description": "Nothing of the payload stored, or an invalid station_id",
            "content": {PROBLEM_JSON: {}},
        },
    },
    openapi_extra={"requestBody": _REQUEST_BODY},
)
def post_readings(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    _: IngestAccess,
    station_id: Annotated[
        str,
        Query(
            pattern=STATION_ID_PATTERN,
            description="the station the readings belong to (the MQTT topic's station)",
            examples=["110000-A001"],
        ),
    ],
    body: Annotated[RawBody, Depends(read_body)],
) -> IngestResult | JSONResponse:
    """Validate the payload, store what is valid and dead-letter the rest, in one
    transaction (ingest.pipeline.store); then say what was stored."""
    received_at = datetime.now(UTC)
    topic = HTTP_TOPIC.format(station_id=station_id)
    if body.oversized:
        outcome = Outcome(dead_letters=[_too_large(body, topic, station_id, received_at, settings)])
    else:
        outcome = _validated(request, settings, body, topic, station_id, received_at)
    refused_body = DeadLetter(topic, station_id, body.content, "", "", received_at, SOURCE)
    result = store(conn, outcome, refused=_refusal(refused_body))
    rejected = [
        RejectedPart(reason=d.reason, detail=d.detail)
        for d in [*outcome.dead_letters, *(r.dead_letter for r in result.refused)]
    ]
    if body.oversized or (result.inserted + result.duplicates == 0 and rejected):
        return _nothing_stored(request, station_id, received_at, rejected, body.oversized)
    return IngestResult(
        station_id=station_id,
        received_at=received_at,
        stored=result.inserted,
        duplicates=result.duplicates,
        rejected=rejected,
    )


def _too_large(
    body: RawBody, topic: str, station_id: str, received_at: datetime, settings: Settings
) -> DeadLetter:
    """The dead letter of an oversized body: its first max_payload_bytes bytes."""
    size = (
        f"{body.declared_bytes} bytes"
        if body.declared_bytes is not None
        else f"more than {settings.max_payload_bytes} bytes"
    )
    return DeadLetter(
        topic,
        station_id,
        body.content,
        Reason.PAYLOAD_TOO_LARGE,
        f"body of {size} exceeds {settings.max_payload_bytes}; "
        f"its first {len(body.content)} bytes are kept",
        received_at,
        SOURCE,
    )


def _validated(
    request: Request,
    settings: Settings,
    body: RawBody,
    topic: str,
    station_id: str,
    received_at: datetime,
) -> Outcome:
    """The body through the MQTT intake rules, as if published on the station's topic; its
    dead letters carry the HTTP topic."""
    validator = Validator(
        station_directory(request),
        max_payload_bytes=settings.max_payload_bytes,
        max_future=timedelta(seconds=settings.max_future_s),
        auto_register=settings.auto_register_stations,
        source=SOURCE,
    )
    outcome = Outcome()
    validator.add_message(outcome, f"stations/{station_id}/readings", body.content, received_at)
    outcome.dead_letters = [replace(d, topic=topic) for d in outcome.dead_letters]
    return outcome


def _nothing_stored(
    request: Request,
    station_id: str,
    received_at: datetime,
    rejected: list[RejectedPart],
    oversized: bool,
) -> JSONResponse:
    """The 413 or 422 problem of a payload of which nothing was stored."""
    status = 413 if oversized else 422
    slug = "payload-too-large" if oversized else "payload-rejected"
    problem = PayloadRejectedProblem(
        type=f"/problems/{slug}",
        title="Payload too large" if oversized else "Payload rejected",
        status=status,
        detail=f"nothing stored; {len(rejected)} dead letter(s), first: "
        f"{rejected[0].reason}: {rejected[0].detail}",
        instance=request.url.path,
        station_id=station_id,
        received_at=received_at,
        stored=0,
        duplicates=0,
        rejected=rejected,
    )
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
    )
