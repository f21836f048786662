"""Request limits as pure ASGI middleware: a token bucket per caller (429 with Retry-After)
and a cap on the request body (413), both answered as problem+json."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import anyio.to_thread
import psycopg
from psycopg_pool import PoolTimeout
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import identify, presented_token
from api.errors import problem

# Probes and scrapes must answer even when a caller is over its limit.
UNLIMITED_PATHS = frozenset({"/health", "/ready"})
UNLIMITED_PREFIX = "/metrics"
# At about 150 bytes a bucket, the most memory a flood of distinct callers can take: ~15 MB.
MAX_BUCKETS = 100_000


class TokenBuckets:
    """One token bucket per caller key: ``burst`` tokens, refilled at ``rate_per_s`` tokens
    a second, one token per request. Thread-safe; memory is bounded by forgetting buckets
    that have refilled (a full bucket is the same as a new one) and, beyond ``max_buckets``,
    the least recently used."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        max_buckets: int = MAX_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_buckets = max_buckets
        self.clock = clock
        self._refill_s = burst / rate_per_s  # time in which an empty bucket fills up
        # key -> (tokens, when last updated); least recently updated first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 if there was one, else the seconds until there is
        one (a refused request takes nothing)."""
        with self._lock:
            now = self.clock()
            self._forget_refilled(now)
            tokens, updated = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - updated) * self.rate_per_s)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate_per_s
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget_refilled(self, now: float) -> None:
        while self._buckets:
            _, (_, updated) = next(iter(self._buckets.items()))
            if now - updated < self._refill_s:
                break
            self._buckets.popitem(last=False)


def retry_after(wait_s: float) -> int:
    """The Retry-After header's whole seconds for a wait: rounded up, at least 1."""
    return max(1, math.ceil(wait_s))


def is_unlimited(path: str) -> bool:
    return path in UNLIMITED_PATHS or path == UNLIMITED_PREFIX or path.startswith("/metrics/")


class RateLimit:
    """429 for a caller over its token bucket: the authenticated API key's id, or the client
    address for a request without a key or with a key that is not valid (so that made-up keys
    cannot each get a fresh bucket)."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_unlimited(scope["path"]):
            await self.app(scope, receive, send)
            return
        key, who = await self._caller_key(scope)
        wait = self.buckets.take(key)
        if wait == 0.0:
            await self.app(scope, receive, send)
            return
        seconds = retry_after(wait)
        response = problem(
            429,
            f"{who} is over {self.buckets.burst} requests in a burst or "
            f"{self.buckets.rate_per_s:g} a second; retry in {seconds} s",
            Request(scope),
            "rate-limited",
            headers={"Retry-After": str(seconds)},
        )
        await response(scope, receive, send)

    async def _caller_key(self, scope: Scope) -> tuple[str, str]:
        """(bucket key, how the problem names the caller)."""
        if presented_token(Headers(scope=scope)) is not None:
            try:
                # the key lookup is a blocking query; the dependencies reuse its result
                caller = await anyio.to_thread.run_sync(identify, scope)
            except (PoolTimeout, psycopg.OperationalError):
                caller = None  # the route's own authentication answers 503
            if caller is not None and caller.principal is not None:
                return f"key:{caller.principal.key_id}", "this API key"
        client = scope.get("client")
        address = client[0] if client else "unknown"
        return f"address:{address}", "this client address"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body without Content-Length outgrows the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


class BodyLimit:
    """413 for a request body over ``max_bytes``: refused before reading when Content-Length
    says so, else counted while the route reads it (chunked transfer)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = problem(
                413,
                f"the request body of {declared} bytes exceeds {self.max_bytes} bytes",
                Request(scope),
                # the connection still holds the unread body; do not keep it alive
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # the app's exception handlers turn it into the 413 problem
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted_receive, send)


def _content_length(scope: Scope) -> int | None:
    try:
        return int(Headers(scope=scope)["content-length"])
    except (KeyError, ValueError):
        return None
