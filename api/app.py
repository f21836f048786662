"""The FastAPI application."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import Counter, Histogram, make_asgi_app
from psycopg_pool import ConnectionPool

from api.errors import install_error_handlers
from api.headers import SecurityHeaders
from api.limits import BodyLimit, RateLimit, TokenBuckets
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
    publications,
    quality,
    readings,
    review,
    stations,
    status,
)
from api.stage_metrics import COLLECTOR
from core.db import make_pool
from core.settings import Settings, get_settings
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

Limits: each API key (each client address for requests without a valid key) has a token
bucket of `AIRWATER_API_RATE_BURST` requests refilled at `AIRWATER_API_RATE_PER_S` a second;
beyond it the answer is 429 `/problems/rate-limited` with `Retry-After` in seconds
(`/health`, `/ready` and `/metrics` are not limited). A request body over
`AIRWATER_API_MAX_BODY_BYTES` is refused with 413 `/problems/payload-too-large`.
"""
# Browsers may send these on a cross-origin call when AIRWATER_CORS_ORIGINS allows its origin.
CORS_METHODS = ["GET", "POST", "PATCH", "DELETE"]
CORS_HEADERS = ["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID"]


ROUTES = (
    health,
    stations,
    readings,
    aggregates,
    quality,
    aqi,
    compliance,
    status,
    review,
    publications,
    ingest,
    dead_letters,
    keys,
    alerts,
    dashboard,
)


def create_app(settings: Settings | None = None, pool: ConnectionPool | None = None) -> FastAPI:
    """The API with its routes and middleware; it opens (and closes) its own pool unless
    given one."""
    settings = settings or get_settings()
    app = FastAPI(
        title="airwater",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=_lifespan(settings, pool),
    )
    app.state.settings = settings
    if pool is not None:
        app.state.pool = pool
    install_error_handlers(app)
    for module in ROUTES:
        app.include_router(module.router)
    app.mount("/metrics", make_asgi_app())
    _add_middleware(app, settings)
    return app


def _lifespan(
    settings: Settings, pool: ConnectionPool | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Open a pool of the API's own for the app's life, unless one is given."""

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
        COLLECTOR.pool = app.state.pool
        yield
        if own_pool:
            app.state.pool.close()

    return lifespan


async def _measure(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Count the request and time it, by route."""
    started = time.perf_counter()
    response = await call_next(request)
    route = getattr(request.scope.get("route"), "path", "unmatched")
    REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    LATENCY.labels(route).observe(time.perf_counter() - started)
    return response


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # Starlette runs the middleware added last first: CORS, security headers, metrics, body
    # limit, rate limit, then the routes.
    app.state.rate_limiter = TokenBuckets(settings.api_rate_per_s, settings.api_rate_burst)
    app.add_middleware(RateLimit, buckets=app.state.rate_limiter)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    app.middleware("http")(_measure)
    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:  # without it no response carries Access-Control-Allow-Origin
        app.add_middleware(
            CORSMiddleware,
            allow_origins=exact_origins(settings.cors_origins),
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=["Retry-After"],
            allow_credentials=False,  # keys travel in headers, never in cookies
            max_age=600,
        )


def exact_origins(origins: list[str]) -> list[str]:
    """The configured CORS origins, each ``scheme://host[:port]``; a wildcard or an origin
    with a path (which never equals a browser's Origin header) is a configuration error."""
    for origin in origins:
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or "*" in origin
            or origin != f"{parts.scheme}://{parts.netloc}"
        ):
            raise ValueError(
                f"AIRWATER_CORS_ORIGINS must list exact origins like https://example.org, "
                f"got {origin!r}"
            )
    return origins
