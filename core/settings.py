"""All configuration, read once from ``AIRWATER_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import PROJECT_ROOT


class MqttTarget:
    """A parsed ``mqtt://user:password@host:port`` (``mqtts://`` for TLS)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None

    def __repr__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"MqttTarget({scheme}://{user}{self.host}:{self.port})"


class Settings(BaseSettings):
    """Every knob of airwater; environment variables are ``AIRWATER_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="AIRWATER_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql://user@host:port/db; unset = embedded private cluster (demo)",
    )
    mqtt_url: str | None = Field(
        default=None, description="mqtt://user:password@host:port; unset = embedded Mosquitto"
    )
    mqtt_ca_file: Path | None = Field(
        default=None,
        description="CA certificate that signs the broker's TLS certificate (mqtts://); "
        "unset = the system's trust store",
    )
    http_port: int = 8080
    data_dir: Path = PROJECT_ROOT / "data"
    broker_auth_dir: Path | None = Field(
        default=None,
        description="where `airwater stations credentials` writes Mosquitto's password and "
        "ACL files generated from the registry; unset = <data_dir>/mosquitto",
    )
    broker_pid_file: Path | None = Field(
        default=None,
        description="Mosquitto's pid file, signalled (SIGHUP) to reload the generated files; "
        "unset = <broker_auth_dir>/mosquitto.pid",
    )

    # HJ 212-2017 gateway (ingest.hj212)
    hj212_host: str = Field(default="0.0.0.0", description="address the gateway listens on")
    hj212_port: int = Field(default=9212, ge=0, le=65535, description="0: a free port")
    hj212_idle_s: float = Field(
        default=600, gt=0, description="a connection silent this long is closed"
    )
    hj212_commands: list[str] = Field(
        default=["2061"],
        description="uploads stored (2061 hourly, 2051 minute, 2011 real-time, 2031 daily); "
        "the others are answered and counted, not stored: a station's hourly values and its "
        "minute values of the same hours would be counted twice",
    )

    # ingest
    ingest_client_id: str = "airwater-ingest-1"
    ingest_share_group: str = "ingest"
    ingest_batch_messages: int = Field(default=1000, ge=1, le=65535)
    ingest_batch_ms: int = Field(default=200, ge=1)
    ingest_stop_grace_s: float = Field(
        default=10.0,
        gt=0,
        description="on SIGTERM with the database away: how long to retry the held batch "
        "before exiting without acknowledging it (the broker redelivers it)",
    )
    mqtt_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=60)
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    max_future_s: int = Field(default=600, ge=0, description="readings later than now+this die")
    auto_register_stations: bool = False
    metrics_port: int = Field(default=9108, ge=0, description="0 disables the metrics server")
    db_retry_max_s: float = Field(default=10.0, gt=0)

    # API
    admin_key: SecretStr | None = Field(
        default=None,
        description="bootstrap admin API key (≥ 24 characters); create real keys with it",
    )
    public_read: bool = Field(default=False, description="read endpoints without a key")
    api_page_max: int = Field(default=1000, ge=1)
    api_rate_per_s: float = Field(
        default=50.0,
        gt=0,
        description="sustained requests per second per API key (or per "
        "client address without a key); beyond it: 429 with Retry-After",
    )
    api_rate_burst: int = Field(default=200, ge=1, description="requests allowed in a burst")
    api_max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="larger request bodies get 413"
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="origins allowed to call the API from a browser (JSON list); empty = "
        "no cross-origin access",
    )

    # automatic quality flags of hourly values (standards.quality.QualityThresholds, whose
    # defaults these repeat; tests/test_quality_rules.py keeps the two equal)
    quality_stuck_hours: int = Field(
        default=12, ge=2, le=168, description="hours of one repeated hourly mean flagged 'stuck'"
    )
    quality_spike_factor: float = Field(
        default=4.0,
        gt=1,
        le=1000,
        description="an hour above this many times the median of the previous window's hours "
        "(and a parameter's floor above it) is flagged 'spike'",
    )
    quality_spike_window_hours: int = Field(
        default=24,
        ge=1,
        le=168,
        description="hours before an hour whose median a spike is judged against",
    )
    quality_spike_min_hours: int = Field(
        default=12, ge=1, le=168, description="values the spike window needs for a judgement"
    )
    quality_zero_run_hours: int = Field(
        default=6, ge=2, le=168, description="hours of zeros flagged 'zero_run' (PM, NO2, CO)"
    )

    @model_validator(mode="after")
    def _spike_window_holds_its_minimum(self) -> Settings:
        if self.quality_spike_min_hours > self.quality_spike_window_hours:
            raise ValueError(
                "AIRWATER_QUALITY_SPIKE_MIN_HOURS must not exceed "
                "AIRWATER_QUALITY_SPIKE_WINDOW_HOURS"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _postgres_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("AIRWATER_DATABASE_URL must be a postgresql:// URL")
        return value

    # alerts
    webhook_allow: list[str] = Field(
        default_factory=list,
        description="CIDRs or host names webhooks may reach even if loopback/private "
        "(e.g. 127.0.0.0/8 in tests); public addresses are always allowed",
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_max_response_bytes: int = Field(default=65536, ge=1024)
    # 12 attempts from 1 s doubling (capped at 300 s) span about 20 minutes of outage
    delivery_max_attempts: int = Field(default=12, ge=1)
    delivery_backoff_s: float = Field(default=1.0, gt=0, description="first retry delay")
    # bounded: a failed attempt stores now() + the delay, which must stay a timestamp
    delivery_backoff_max_s: float = Field(default=300.0, gt=0, le=86_400)
    delivery_concurrency: int = Field(default=8, ge=1)
    silence_check_s: float = Field(default=30.0, gt=0)
    publication_check_s: float = Field(
        default=30.0,
        gt=0,
        description="the aggregation stage compares published years with their current "
        "figures at most this often, once the queue is drained (reports.publications)",
    )

    @field_validator("admin_key")
    @classmethod
    def _strong_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("AIRWATER_ADMIN_KEY must have at least 24 characters")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_scheme(cls, value: str | None) -> str | None:
        if value is not None:
            MqttTarget(value)
        return value

    @property
    def auth_dir(self) -> Path:
        return self.broker_auth_dir or self.data_dir / "mosquitto"

    @property
    def mqtt(self) -> MqttTarget:
        if self.mqtt_url is None:
            raise RuntimeError("AIRWATER_MQTT_URL is not set")
        return MqttTarget(self.mqtt_url)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
