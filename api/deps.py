"""Dependencies written once and reused by every route: a database connection and the
caller's scopes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool, PoolTimeout

from api.auth import API_KEY_HEADER, Principal, identify
from api.errors import ApiError
from core.settings import Settings
from standards.quality import QualityThresholds

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer aw_<id>_<secret>")
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="aw_<id>_<secret>")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _unavailable(exc: Exception) -> ApiError:
    return ApiError(503, f"database unavailable: {type(exc).__name__}")


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    try:
        with pool.connection(timeout=10) as conn:
            yield conn
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise _unavailable(exc) from None


SettingsDep = Annotated[Settings, Depends(get_settings)]
Conn = Annotated[psycopg.Connection, Depends(get_conn)]


def _principal(
    request: Request,
    # the two security schemes document the headers in OpenAPI; identify reads them
    bearer_scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key_scheme: Annotated[str | None, Depends(_api_key)],
) -> Principal | None:
    try:
        caller = identify(request.scope)  # already known when the rate limit looked it up
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise _unavailable(exc) from None
    if caller.key_rejected:
        raise ApiError(
            401,
            "the API key is unknown or revoked",
            "invalid-key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return caller.principal


def require(scope: str):  # type: ignore[no-untyped-def]
    """Dependency: the caller must hold ``scope`` (401 without a key, 403 without the scope)."""

    def check(
        principal: Annotated[Principal | None, Depends(_principal)], settings: SettingsDep
    ) -> Principal | None:
        if principal is None:
            if scope == "read" and settings.public_read:
                return None
            raise ApiError(
                401,
                f"an API key with scope '{scope}' is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not principal.allows(scope):
            raise ApiError(403, f"the API key lacks scope '{scope}'")
        return principal

    return check


ReadAccess = Annotated[Principal | None, Depends(require("read"))]
IngestAccess = Annotated[Principal | None, Depends(require("ingest"))]
ReviewAccess = Annotated[Principal | None, Depends(require("review"))]
AdminAccess = Annotated[Principal | None, Depends(require("admin"))]


def quality_thresholds(settings: SettingsDep) -> QualityThresholds:
    """The thresholds of the automatic quality flags, from the AIRWATER_QUALITY_* settings
    (the readings, hourly values, flags endpoints and the review page judge with them)."""
    return QualityThresholds(
        stuck_hours=settings.quality_stuck_hours,
        spike_factor=settings.quality_spike_factor,
        spike_window_hours=settings.quality_spike_window_hours,
        spike_min_hours=settings.quality_spike_min_hours,
        zero_run_hours=settings.quality_zero_run_hours,
    )


Thresholds = Annotated[QualityThresholds, Depends(quality_thresholds)]
