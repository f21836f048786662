"""RFC 9457 problem+json for every error, with a stable ``type`` per kind of error."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.headers import SECURITY_HEADERS
from reports.refusal import Refused

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Invalid request"),
    429: ("rate-limited", "Too many requests"),
    503: ("unavailable", "Service unavailable"),
}


_REFUSAL_STATUS = {"not_found": 404, "invalid": 422, "conflict": 409}


class InvalidParam(BaseModel):
    name: str = Field(description="the field, e.g. query.limit or body.name")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(
        description="stable URI reference naming the kind of error",
        examples=["/problems/not-found"],
    )
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = Field(
        default=None, description="for validation errors: every bad field and why"
    )


class ApiError(Exception):
    """An error the API reports on purpose."""

    def __init__(
        self,
        status: int,
        detail: str,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _TITLES.get(status, ("error", "Error"))[0]
        self.headers = headers


def problem(
    status: int,
    detail: str | None,
    request: Request,
    slug: str | None = None,
    invalid_params: list[InvalidParam] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    default_slug, title = _TITLES.get(status, ("error", "Error"))
    body = Problem(
        type=f"/problems/{slug or default_slug}",
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        invalid_params=invalid_params,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.detail, request, exc.slug, headers=exc.headers)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> JSONResponse:
        # an action of the reports layer refused for its input; nothing was changed
        return problem(_REFUSAL_STATUS[exc.kind], exc.detail, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        params = [
            InvalidParam(name=_field_name(tuple(e["loc"])), reason=e["msg"]) for e in exc.errors()
        ]
        names = ", ".join(p.name for p in params)
        return problem(422, f"invalid {names}", request, invalid_params=params)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            exc.status_code, str(exc.detail), request, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(psycopg.DataError)
    async def _bad_value(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # a value the database cannot hold (NUL in text, out-of-range date): the caller's input
        return problem(
            400,
            f"a value in the request cannot be stored: {type(exc).__name__}",
            request,
            "invalid-value",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # never a stack trace in a response; the log keeps it
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # answered outside every middleware (Starlette's ServerErrorMiddleware): add the
        # security headers here
        return problem(
            500,
            "internal error; it has been logged",
            request,
            "internal-error",
            headers=SECURITY_HEADERS,
        )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the problem+json errors of a route."""
    return {
        status: {
            "model": Problem,
            "description": _TITLES.get(status, ("", "Error"))[1],
            "content": {PROBLEM_JSON: {}},
        }
        for status in statuses
    }
