"""Time series as they leave the API: readings of a station and aggregates of a station or a
city with their coverage, and the query values both endpoints accept."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, PlainSerializer, PlainValidator
from pydantic.json_schema import WithJsonSchema

from schemas.reports import CoverageOut
from standards.parameters import CATALOGUE, canonical_parameter
from standards.quality import FLAG_CODES

Period = Literal["hourly", "daily", "monthly", "annual"]
Flag = Literal["valid", "suspect", "invalid"]
ReadingFormat = Literal["json", "csv"]

_OFFSET_EXAMPLE = "2026-03-01T08:00:00+08:00"


def _offset_hint(value: str) -> str:
    # an unencoded '+' in a query string arrives as a space
    return " (write '+' as %2B in a URL)" if " " in value.strip() else ""


def _require_offset(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"needs a UTC offset, e.g. {_OFFSET_EXAMPLE} or 2026-03-01T00:00:00Z")
    return value


def _iso(value: datetime) -> str:
    return value.isoformat()


# A point in time with its UTC offset, written as ISO 8601 with the offset it carries
# ("+00:00" for UTC, "+08:00" for a Beijing local midnight).
Timestamp = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2026-03-01T00:00:00+00:00"]}
    ),
]

# A query datetime that must carry its offset: a naive one is ambiguous.
AwareInstant = Annotated[datetime, AfterValidator(_require_offset)]


def _parse_date_or_instant(value: object) -> date | datetime:
    if isinstance(value, datetime):
        return _require_offset(value)
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date (YYYY-MM-DD) or an ISO 8601 datetime with offset")
    text = value.strip()
    try:
        if len(text) <= 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "must be a date (YYYY-MM-DD) or an ISO 8601 datetime with offset, "
            f"e.g. {_OFFSET_EXAMPLE}{_offset_hint(value)}"
        ) from None
    return _require_offset(parsed)


# A calendar date (the station's local day) or, where hours are asked for, a datetime with
# offset.
DateOrInstant = Annotated[
    date | datetime,
    PlainValidator(_parse_date_or_instant),
    WithJsonSchema({"type": "string", "examples": ["2026-03-01", _OFFSET_EXAMPLE]}),
]


def _known_parameter(value: str) -> str:
    name = canonical_parameter(value)
    if name is None:
        raise ValueError(f"unknown parameter {value!r}; known: {', '.join(CATALOGUE)}")
    return name


# A parameter of standards.parameters.CATALOGUE; aliases such as "PM2.5" are accepted.
ParameterName = Annotated[str, AfterValidator(_known_parameter)]


class QualityFlagOut(BaseModel):
    """An automatic quality flag (standards.quality): it marks a value for a person to
    look at and changes no figure."""

    code: str = Field(
        description=f"one of {', '.join(FLAG_CODES)}", examples=["stuck", "pm25_above_pm10"]
    )
    message: str = Field(
        description="one sentence naming the numbers",
        examples=["the same value 35.0 ug/m3 for 14 consecutive hours (threshold 12)"],
    )


_QUALITY_FLAGS = (
    "automatic quality flags of the station's UTC hour (stuck value, spike, PM2.5 above "
    "PM10, out of range, run of zeros); they change no figure until a person acts"
)


class Reading(BaseModel):
    """One stored reading."""

    station_id: str
    parameter: str = Field(examples=["pm25"])
    ts: Timestamp = Field(description="time of the reading, ISO 8601 in UTC (+00:00)")
    value: float = Field(description="in the reading's unit")
    unit: str = Field(examples=["ug/m3"])
    flag: Flag
    flag_reason: str | None = None
    quality_flags: list[QualityFlagOut] = Field(
        default_factory=list, description=f"{_QUALITY_FLAGS}; empty when none"
    )


class AggregateValue(BaseModel):
    """The value of one period with the data behind it."""

    period_start: Timestamp = Field(
        description="start of the period: the UTC hour for hourly values, local midnight "
        "(with the station's or city's offset) for daily, monthly and annual values"
    )
    mean: float | None = Field(
        description="given even when the coverage says the period is not valid; null when "
        "no valid value stands behind it (e.g. a day without a valid hour)"
    )
    min: float | None = Field(description="smallest of the values averaged")
    max: float | None = Field(description="largest of the values averaged")
    coverage: CoverageOut
    quality_flags: list[QualityFlagOut] | None = Field(
        default=None,
        description=f"{_QUALITY_FLAGS}; empty when none; null where they do not apply "
        "(daily, monthly and annual values, and cities)",
    )


class AggregateSeries(BaseModel):
    """Hourly, daily, monthly or annual values of one parameter for a station or a city."""

    level: Literal["station", "city"]
    id: str = Field(description="station id or city code", examples=["110000-A001"])
    name: str | None
    parameter: str
    unit: str
    period: Period
    timezone: str = Field(description="IANA timezone of the local days, e.g. Asia/Shanghai")
    rule: str = Field(description="how each value and its validity are computed")
    as_of: datetime = Field(
        description="every reading committed before this instant is reflected (the "
        "aggregation stage's progress)"
    )
    items: list[AggregateValue] = Field(description="periods with data, oldest first")


class FlaggedHour(BaseModel):
    """A station's hour of one parameter that carries automatic quality flags."""

    parameter: str = Field(examples=["pm25"])
    hour: Timestamp = Field(description="start of the UTC hour, ISO 8601 (+00:00)")
    value: float = Field(description="the hourly mean, in ``unit``")
    unit: str = Field(examples=["ug/m3"])
    flags: list[QualityFlagOut]


class StationFlags(BaseModel):
    """The flagged hours of a station in [start, end), oldest first."""

    station_id: str
    start: Timestamp = Field(description="first instant included")
    end: Timestamp = Field(description="first instant excluded")
    items: list[FlaggedHour] = Field(description="flagged hours, by hour then parameter")
