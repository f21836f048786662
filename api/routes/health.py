"""/health (the process is up) and /ready (database and broker reachable)."""

from __future__ import annotations

import socket

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from schemas.api import Health, Readiness
from storage.health import database_answers

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    detail: dict[str, str] = {}
    database = broker = False
    try:
        with request.app.state.pool.connection(timeout=2) as conn:
            database = database_answers(conn)
    except Exception as exc:  # any failure means "not ready"; say which
        detail["database"] = type(exc).__name__
    if settings.mqtt_url is None:
        detail["broker"] = "AIRWATER_MQTT_URL is not set"
    else:
        target = settings.mqtt
        try:
            with socket.create_connection((target.host, target.port), timeout=2):
                broker = True
        except OSError as exc:
            detail["broker"] = str(exc)
    body = Readiness(
        status="ready" if database and broker else "not ready",
        database=database,
        broker=broker,
        detail=detail,
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ready" else 503)
