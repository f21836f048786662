"""The FastAPI application."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Histogram, make_asgi_app
from psycopg_pool import ConnectionPool

from airwater.settings import Settings, get_settings
from api.errors import install_error_handlers
from api.routes import (
    aggregates,
    alerts,
    aqi,
    compliance,
    dashboard,
    dead_letters,
    health,
    ingest,
    keys,
    readings,
    stations,
)
from storage.db import make_pool
from storage.writer import prepare_connection

REQUESTS = Counter("airwater_api_requests", "API requests", ["method", "route", "status"])
LATENCY = Histogram("airwater_api_request_seconds", "API request latency", ["route"])

DESCRIPTION = """
Operator API of airwater: stations, readings, aggregates with coverage, AQI (HJ 633),
compliance against GB 3095 / GB 3838 and the national targets, HTTP ingest, API keys.

Authenticate with `Authorization: Bearer aw_<id>_<secret>` (or `X-API-Key`). Scopes: `read`,
`ingest`, `admin` (admin may do everything). Errors are RFC 9457 `application/problem+json`
with a stable `type`. Times are ISO 8601 with offset; concentrations in µg/m³ (CO mg/m³),
water items in mg/L.
"""


def create_app(settings: Settings | None = None, pool: ConnectionPool | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_pool = pool is None
        if pool is None:
            if settings.database_url is None:
                raise RuntimeError("AIRWATER_DATABASE_URL is not set")
            app.state.pool = make_pool(
                settings.database_url, max_size=10, configure=prepare_connection, name="api"
            )
            app.state.pool.open()
        else:
            app.state.pool = pool
        yield
        if own_pool:
            app.state.pool.close()

    app = FastAPI(title="airwater", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    if pool is not None:
        app.state.pool = pool
    install_error_handlers(app)
    for module in (
        health,
        stations,
        readings,
        aggregates,
        aqi,
        compliance,
        ingest,
        dead_letters,
        keys,
        alerts,
        dashboard,
    ):
        router = module.router
        app.include_router(router)
    app.mount("/metrics", make_asgi_app())

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - started)
        return response

    return app
