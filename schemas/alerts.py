"""Alert subscriptions, presets and events as they cross the API boundary (issue 5).

Rules that involve one field only live here as validators; rules between fields (a preset
filled in, a PATCH merged onto the stored subscription) are alerts.subscriptions'."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from standards.alert_presets import PRESETS, THRESHOLD_RULE_TARGETS
from standards.parameters import CATALOGUE

Target = Literal["reading", "hourly_mean", "daily_mean", "daily_aqi", "water_class", "silence"]
AreaScope = Literal["station", "stations", "city", "province", "all"]
Comparator = Literal[">", ">=", "<", "<="]
Channel = Literal["webhook", "mqtt", "stream"]
EventKind = Literal["firing", "resolved", "no_data"]
DeliveryState = Literal["pending", "delivered", "dead"]

# targets whose value is a measured parameter chosen by the subscriber
PARAMETER_TARGETS = frozenset({"reading", "hourly_mean", "daily_mean"})
MQTT_TOPIC_PREFIX = "alerts/"
SECRET_MIN_LENGTH = 16
# a NUL cannot be stored in a text column: refuse it as a validation error, not a 400
_NO_NUL = r"^[^\x00]*$"
ScopeValue = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_NO_NUL)]

# columns the API writes; the route reads and writes them by these names
SUBSCRIPTION_FIELDS = (
    "name",
    "preset",
    "target",
    "parameter",
    "scope",
    "scope_values",
    "comparator",
    "threshold",
    "threshold_rule",
    "clear_threshold",
    "for_minutes",
    "for_readings",
    "channel",
    "webhook_url",
    "webhook_secret",
    "mqtt_topic",
    "active",
)


def value_unit(target: str, parameter: str | None) -> str | None:
    """The unit of a subscription's threshold and of an event's value."""
    if target == "daily_aqi":
        return "AQI"
    if target == "silence" or parameter is None:
        return None
    known = CATALOGUE.get(parameter)
    return known.unit if known else None


class SubscriptionFields(BaseModel):
    """Every field a subscriber may send; each is optional here, the create model makes
    the essential ones required."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=_NO_NUL, examples=["Dongsi PM2.5"]
    )
    preset: str | None = Field(
        default=None,
        description="a ready-made rule by name (GET /v1/alerts/presets): fills target, "
        "parameter, comparator, threshold, threshold_rule, clear_threshold and for_minutes; "
        "fields sent explicitly override it",
        examples=["pm25_24h_grade_ii"],
    )
    target: Target | None = Field(
        default=None,
        description="what is watched: a reading, an hourly or daily mean of `parameter`, the "
        "daily AQI (HJ 633), the water class (GB 3838: 1..5 = Class I..V, 6 = worse than V) "
        "or silence (no reading for `for_minutes`)",
    )
    parameter: str | None = Field(
        default=None,
        description="a parameter of the catalogue (e.g. pm25, nh3_n); required for reading, "
        "hourly_mean and daily_mean; always water_class for water_class; none for daily_aqi "
        "and silence",
        examples=["pm25"],
    )
    scope: AreaScope | None = Field(
        default=None,
        description="where: one station, a list of stations, cities (by city code, e.g. "
        "110000), provinces (by name), or all stations",
    )
    scope_values: list[ScopeValue] | None = Field(
        default=None,
        max_length=1000,
        description="station ids, city codes or provinces of the scope; empty for `all`",
        examples=[["110000-A001"]],
    )
    comparator: Comparator | None = Field(
        default=None, description="breach when value <comparator> threshold"
    )
    threshold: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="in the unit of the parameter (µg/m³, CO mg/m³, mg/L), AQI or class",
        examples=[75],
    )
    threshold_rule: str | None = Field(
        default=None,
        description="a threshold taken from the standard in force on the day instead of a "
        f"number: one of {sorted(THRESHOLD_RULE_TARGETS)}",
    )
    clear_threshold: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="hysteresis: a firing alert resolves only once the value is back beyond "
        "this (for > and >=: at most the threshold; for < and <=: at least); default: the "
        "threshold",
    )
    for_minutes: int | None = Field(
        default=None,
        ge=0,
        le=10080,
        description="fire only after the breach has lasted this long; for silence: the "
        "silence length (default 60)",
    )
    for_readings: int | None = Field(
        default=None, ge=1, le=10000, description="fire only after this many values in breach"
    )
    channel: Channel | None = Field(
        default=None, description="how: webhook, MQTT publish, or only the live stream"
    )
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        description="http(s) URL; loopback, private and link-local addresses are refused "
        "unless the server's webhook allow-list admits them",
        examples=["https://ops.example.com/airwater-hook"],
    )
    webhook_secret: str | None = Field(
        default=None,
        min_length=SECRET_MIN_LENGTH,
        max_length=200,
        pattern=_NO_NUL,
        description="HMAC-SHA256 key of the webhook signature; write-only, never returned",
    )
    mqtt_topic: str | None = Field(
        default=None,
        max_length=200,
        description="topic to publish to; must start with `alerts/`, no wildcards; default "
        "(null): `alerts/{kind}/{station_id}` of each event",
        examples=["alerts/beijing/pm25"],
    )
    active: bool | None = None

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESETS:
            raise ValueError(f"unknown preset; one of {sorted(PRESETS)}")
        return value

    @field_validator("parameter")
    @classmethod
    def _known_parameter(cls, value: str | None) -> str | None:
        if value is not None and value not in CATALOGUE:
            raise ValueError("not a parameter of the catalogue")
        return value

    @field_validator("threshold_rule")
    @classmethod
    def _known_rule(cls, value: str | None) -> str | None:
        if value is not None and value not in THRESHOLD_RULE_TARGETS:
            raise ValueError(f"unknown threshold rule; one of {sorted(THRESHOLD_RULE_TARGETS)}")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            parts = urlsplit(value)
            host = parts.hostname
            parts.port  # noqa: B018 -- raises ValueError on a port out of range
        except ValueError:
            raise ValueError("not a URL") from None
        if parts.scheme not in ("http", "https"):
            raise ValueError("only http and https URLs are allowed")
        if not host or any(c.isspace() or c == "\x00" for c in value):
            raise ValueError("not a URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("credentials in the URL are not allowed; use webhook_secret")
        return value

    @field_validator("mqtt_topic")
    @classmethod
    def _alerts_topic(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(MQTT_TOPIC_PREFIX) or len(value) == len(MQTT_TOPIC_PREFIX):
            raise ValueError(f"must start with '{MQTT_TOPIC_PREFIX}' and name a topic under it")
        if "+" in value or "#" in value or "\x00" in value:
            raise ValueError("wildcards (+, #) and NUL are not allowed in a topic to publish to")
        return value


class SubscriptionCreate(SubscriptionFields):
    """A new subscription: a name, where, and either a preset or target + threshold."""

    name: str = Field(min_length=1, max_length=200, pattern=_NO_NUL, examples=["Dongsi PM2.5"])
    scope: AreaScope = Field(
        description="where: one station, a list of stations, cities (by city code, e.g. "
        "110000), provinces (by name), or all stations"
    )


class SubscriptionPatch(SubscriptionFields):
    """Fields of a subscription to change. A field not sent keeps its value, except that
    fields which no longer fit a changed target, scope or channel are cleared."""


class Subscription(BaseModel):
    """A subscription as stored; the webhook secret is never shown."""

    subscription_id: int
    name: str
    owner_key_id: str | None = Field(description="the API key that owns it; null: bootstrap admin")
    preset: str | None
    target: Target
    parameter: str | None
    unit: str | None = Field(description="unit of threshold and clear_threshold")
    scope: AreaScope
    scope_values: list[str]
    comparator: Comparator
    threshold: float | None
    threshold_rule: str | None
    clear_threshold: float | None
    for_minutes: int
    for_readings: int
    channel: Channel
    webhook_url: str | None
    webhook_secret_set: bool = Field(description="whether a webhook secret is stored")
    mqtt_topic: str | None
    active: bool
    created_at: datetime = Field(description="ISO 8601 with offset")


class AlertPreset(BaseModel):
    """A ready-made rule from the standards."""

    name: str
    description: str
    target: Target
    parameter: str | None
    unit: str | None
    comparator: Comparator
    threshold: float | None
    threshold_rule: str | None
    clear_threshold: float | None
    for_minutes: int


class AlertEvent(BaseModel):
    """One event of the outbox: a breach starting (firing), ending (resolved) or a silent
    station (no_data), and how far its delivery has got."""

    event_id: int = Field(description="increasing; also the server-sent event id")
    idempotency_key: UUID = Field(description="sent with every delivery attempt of this event")
    kind: EventKind
    subscription_id: int
    station_id: str
    target: str
    parameter: str | None
    unit: str | None = Field(description="unit of value and threshold")
    value: float | None
    threshold: float | None
    observed_at: datetime | None = Field(
        description="time of the value that caused it, ISO 8601 with offset"
    )
    created_at: datetime = Field(description="ISO 8601 with offset")
    delivery_state: DeliveryState
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
