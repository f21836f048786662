"""API hardening: rate limit per key, body size limit, strict CORS, no stack traces in
responses, constant-time key comparison, security headers."""

from __future__ import annotations

import hmac
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from api import auth, create_app
from api.limits import BodyLimit, BodyTooLarge, TokenBuckets
from api.routes import stations as station_routes
from tests.conftest import ADMIN_KEY

BEIJING = "110000-A001"
LIMIT = 1024  # the smallest body limit the settings allow
ALLOWED_ORIGIN = "https://dashboard.example.org"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def make_client(api_settings, api_pool) -> Iterator:
    """Factory: a TestClient on an app built with changed settings, on a hand-moved clock."""
    clients: list[TestClient] = []

    def make(**changes: Any) -> tuple[TestClient, Clock]:
        app = create_app(api_settings.model_copy(update=changes), api_pool)
        clock = Clock()
        app.state.rate_limiter.clock = clock
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client, clock

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/problems/{kind}"
    assert problem["status"] == status
    return problem


# --- rate limit -----------------------------------------------------------------------------


def test_burst_is_served_and_the_next_request_gets_429_with_retry_after(make_client):
    client, clock = make_client(api_rate_per_s=0.5, api_rate_burst=3)
    for _ in range(3):
        assert client.get("/v1/stations", headers=bearer(ADMIN_KEY)).status_code == 200
    refused = client.get("/v1/stations", headers=bearer(ADMIN_KEY))
    problem = assert_problem(refused, 429, "rate-limited")
    assert refused.headers["Retry-After"] == "2"  # one token at 0.5/s
    assert "this API key" in problem["detail"]
    clock.now += 1.5
    assert client.get("/v1/stations", headers=bearer(ADMIN_KEY)).headers["Retry-After"] == "1"


def test_after_waiting_retry_after_the_key_is_served_again(make_client):
    client, clock = make_client(api_rate_per_s=0.25, api_rate_burst=1)
    assert client.get("/v1/stations", headers=bearer(ADMIN_KEY)).status_code == 200
    refused = client.get("/v1/stations", headers=bearer(ADMIN_KEY))
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert wait == 4
    clock.now += wait - 1
    assert client.get("/v1/stations", headers=bearer(ADMIN_KEY)).status_code == 429
    clock.now += 1
    assert client.get("/v1/stations", headers=bearer(ADMIN_KEY)).status_code == 200
    assert client.get("/v1/stations", headers=bearer(ADMIN_KEY)).status_code == 429


def test_retry_after_waits_for_real_time_too(make_client):
    client, _ = make_client(api_rate_per_s=20.0, api_rate_burst=1)
    client.app.state.rate_limiter.clock = time.monotonic
    assert client.get("/v1/stations", headers=bearer(ADMIN_KEY)).status_code == 200
    refused = client.get("/v1/stations", headers=bearer(ADMIN_KEY))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    time.sleep(float(refused.headers["Retry-After"]))
    assert client.get("/v1/stations", headers=bearer(ADMIN_KEY)).status_code == 200


def test_each_key_has_its_own_bucket(make_client, make_key):
    first, second = make_key("read"), make_key("read")
    client, _ = make_client(api_rate_per_s=1.0, api_rate_burst=2)
    assert [client.get("/v1/stations", headers=bearer(first)).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert client.get("/v1/stations", headers={"X-API-Key": first}).status_code == 429
    assert client.get("/v1/stations", headers=bearer(second)).status_code == 200
    assert client.get("/v1/stations", headers=bearer(ADMIN_KEY)).status_code == 200


def test_requests_without_a_valid_key_share_their_client_address_bucket(make_client, make_key):
    reader = make_key("read")
    client, _ = make_client(api_rate_per_s=1.0, api_rate_burst=3, public_read=True)
    assert client.get("/v1/stations").status_code == 200
    made_up = [f"aw_k{n:07x}_not-a-secret" for n in range(5)]
    answers = [client.get("/v1/stations", headers=bearer(token)).status_code for token in made_up]
    assert answers == [401, 401, 429, 429, 429]
    problem = assert_problem(client.get("/v1/stations"), 429, "rate-limited")
    assert "this client address" in problem["detail"]
    assert client.get("/v1/stations", headers={"X-API-Key": "garbage"}).status_code == 429
    # the address's bucket, and one for the valid key: made-up keys got none
    assert client.get("/v1/stations", headers=bearer(reader)).status_code == 200
    assert len(client.app.state.rate_limiter) == 2


def test_dashboard_and_documents_are_limited_by_client_address(make_client):
    client, _ = make_client(api_rate_per_s=1.0, api_rate_burst=2)
    assert client.get("/").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert_problem(client.get("/static/plotly.min.js"), 429, "rate-limited")
    assert_problem(client.get("/no/such/page"), 429, "rate-limited")


def test_health_ready_and_metrics_are_never_limited(make_client):
    client, _ = make_client(api_rate_per_s=1.0, api_rate_burst=1)
    assert client.get("/v1/stations").status_code == 401
    assert client.get("/v1/stations").status_code == 429
    for _ in range(5):
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 503  # the test settings have no broker
        assert client.get("/metrics/").status_code == 200
        assert client.get("/metrics", follow_redirects=False).status_code != 429


def test_idle_buckets_are_forgotten_and_their_number_is_capped():
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=2.0, burst=4, max_buckets=3, clock=clock)
    for key in ("a", "b", "c", "d"):
        assert buckets.take(key) == 0.0
    assert len(buckets) == 3  # over the cap the least recently used went: a
    clock.now += 1.75  # not yet refilled: 4 tokens at 2/s take 2 s
    assert buckets.take("e") == 0.0
    assert len(buckets) == 3  # b went for e
    clock.now += 0.25
    assert buckets.take("e") == 0.0
    assert len(buckets) == 1  # c and d have refilled: the same as new buckets


def test_a_bucket_serves_exactly_its_burst_to_concurrent_threads():
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often, inside take if it were unguarded
    try:
        buckets = TokenBuckets(rate_per_s=1e-9, burst=1000, clock=Clock())
        served = []

        def hammer() -> None:
            served.extend(1 for _ in range(500) if buckets.take("key") == 0.0)

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(served) == 1000


# --- body size ------------------------------------------------------------------------------


def reading_of_size(size: int) -> bytes:
    """A valid one-reading payload padded with JSON whitespace to exactly ``size`` bytes."""
    body = json.dumps({"ts": "2026-03-01T08:00:00+08:00", "pm25": 35.2}).encode()
    return body + b" " * (size - len(body))


def chunks(body: bytes, size: int = 100) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def dead_letters(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_at_the_limit_is_served_and_one_byte_more_gets_413(make_client, database_url, chunked):
    client, _ = make_client(api_max_body_bytes=LIMIT)

    def post(body: bytes):
        return client.post(
            "/v1/readings",
            params={"station_id": BEIJING},
            content=chunks(body) if chunked else body,
            headers={"Content-Type": "application/json", **bearer(ADMIN_KEY)},
        )

    at_limit = post(reading_of_size(LIMIT))
    assert at_limit.status_code == 200, at_limit.text
    assert at_limit.json()["stored"] == 1
    refused = post(reading_of_size(LIMIT + 1))
    problem = assert_problem(refused, 413, "payload-too-large")
    assert str(LIMIT) in problem["detail"]
    assert dead_letters(database_url) == 0  # refused before the route: nothing kept


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_json_body_over_the_limit_is_413_not_a_parse_error(make_client, chunked):
    client, _ = make_client(api_max_body_bytes=LIMIT)
    body = json.dumps({"station_id": "X-1", "name": "x" * LIMIT}).encode()
    refused = client.post(
        "/v1/stations",
        content=chunks(body) if chunked else body,
        headers={"Content-Type": "application/json", **bearer(ADMIN_KEY)},
    )
    assert_problem(refused, 413, "payload-too-large")


async def run_asgi(app, headers: list[tuple[bytes, bytes]], body_parts: list[bytes]) -> dict:
    """Drive ``app`` with one request whose body arrives in ``body_parts``; what happened."""
    seen: dict[str, Any] = {"received": 0, "status": None}
    parts = list(body_parts)

    async def receive() -> Message:
        seen["received"] += 1
        chunk = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(parts)}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/readings",
        "raw_path": b"/v1/readings",
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
    }
    await app(scope, receive, send)
    return seen


class ReadsWholeBody:
    """An inner app that reads the body to its end and answers 200 with its size."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


def test_declared_length_over_the_limit_is_refused_before_reading():
    inner = ReadsWholeBody()
    seen = anyio.run(run_asgi, BodyLimit(inner, LIMIT), [(b"content-length", b"1025")], [b"x"])
    assert seen == {"received": 0, "status": 413}
    assert not inner.called


def test_streamed_body_is_counted_across_chunks():
    parts = [b"x" * 500, b"x" * 500, b"x" * 24]
    inner = ReadsWholeBody()
    assert anyio.run(run_asgi, BodyLimit(inner, LIMIT), [], parts)["status"] == 200
    with pytest.raises(BodyTooLarge) as raised:  # the app's exception handlers answer 413
        anyio.run(run_asgi, BodyLimit(ReadsWholeBody(), LIMIT), [], [*parts, b"x"])
    assert raised.value.status_code == 413


@pytest.fixture()
def served(api_settings, api_pool) -> Iterator[str]:
    """The app with a 1024-byte body limit behind a real uvicorn on loopback: its base URL."""
    app = create_app(api_settings.model_copy(update={"api_max_body_bytes": LIMIT}), api_pool)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_real_server_counts_a_chunked_body_and_refuses_a_long_declared_one(served):
    with httpx.Client(base_url=served, trust_env=False, headers=bearer(ADMIN_KEY)) as client:

        def post(content: Any, **headers: str) -> httpx.Response:
            return client.post(
                "/v1/readings",
                params={"station_id": BEIJING},
                content=content,
                headers={"Content-Type": "application/json", **headers},
            )

        assert post(chunks(reading_of_size(LIMIT), 7)).status_code == 200
        streamed = post(chunks(reading_of_size(LIMIT + 1), 7))
        assert_problem(streamed, 413, "payload-too-large")
        declared = post(b"x" * (LIMIT + 1))
        assert_problem(declared, 413, "payload-too-large")
        assert declared.headers["Connection"] == "close"
        assert client.get("/health").status_code == 200  # the server took no harm


# --- CORS -----------------------------------------------------------------------------------


def preflight(client: TestClient, origin: str):
    return client.options(
        "/v1/stations",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


def test_cors_answers_only_the_configured_origin(make_client):
    client, _ = make_client(cors_origins=[ALLOWED_ORIGIN])
    allowed = preflight(client, ALLOWED_ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    read = client.get("/v1/stations", headers={"Origin": ALLOWED_ORIGIN, **bearer(ADMIN_KEY)})
    assert read.headers["access-control-allow-origin"] == ALLOWED_ORIGIN

    other = "https://evil.example.com"
    assert "access-control-allow-origin" not in preflight(client, other).headers
    read = client.get("/v1/stations", headers={"Origin": other, **bearer(ADMIN_KEY)})
    assert read.status_code == 200
    assert "access-control-allow-origin" not in read.headers


def test_a_browser_may_read_retry_after_of_a_cross_origin_429(make_client):
    client, _ = make_client(cors_origins=[ALLOWED_ORIGIN], api_rate_burst=1)
    headers = {"Origin": ALLOWED_ORIGIN, **bearer(ADMIN_KEY)}
    client.get("/v1/stations", headers=headers)
    refused = client.get("/v1/stations", headers=headers)
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert refused.headers["access-control-expose-headers"] == "Retry-After"


def test_without_configured_origins_there_are_no_cors_headers(make_client):
    client, _ = make_client(cors_origins=[])
    answer = preflight(client, ALLOWED_ORIGIN)
    assert answer.status_code == 405
    assert not [name for name in answer.headers if name.startswith("access-control-")]
    read = client.get("/v1/stations", headers={"Origin": ALLOWED_ORIGIN, **bearer(ADMIN_KEY)})
    assert not [name for name in read.headers if name.startswith("access-control-")]


@pytest.mark.parametrize(
    "origin", ["*", "https://*.example.org", "https://example.org/", "example.org"]
)
def test_a_wildcard_or_malformed_origin_is_refused_at_startup(api_settings, api_pool, origin):
    with pytest.raises(ValueError, match="exact origins"):
        create_app(api_settings.model_copy(update={"cors_origins": [origin]}), api_pool)


# --- errors, keys, headers ------------------------------------------------------------------


def test_unexpected_error_is_a_500_problem_without_the_trace(make_client, monkeypatch, caplog):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("connection to 10.0.0.7 failed: password=hunter2")

    monkeypatch.setattr(station_routes, "list_stations", broken)
    client, _ = make_client()
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = client.get("/v1/stations", headers=bearer(ADMIN_KEY))
    problem = assert_problem(response, 500, "internal-error")
    assert problem["detail"] == "internal error; it has been logged"
    for leak in ("hunter2", "10.0.0.7", "RuntimeError", "Traceback", "list_stations", ".py"):
        assert leak not in response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    [record] = [r for r in caplog.records if r.name == "api.errors"]
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])
    assert "GET /v1/stations" in record.getMessage()


def test_keys_are_compared_in_constant_time(api, make_key, monkeypatch):
    reader = make_key("read")
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert api.get("/v1/stations", headers=bearer(reader)).status_code == 200
    secret = reader.split("_", 2)[2]
    assert (reader.encode(), ADMIN_KEY.encode()) in compared  # the bootstrap key first
    assert any(b == auth.secret_hash(secret) for _, b in compared)
    compared.clear()
    assert api.get("/v1/stations", headers=bearer(ADMIN_KEY)).status_code == 200
    assert compared == [(ADMIN_KEY.encode(), ADMIN_KEY.encode())]


def test_responses_carry_security_headers(api):
    for path in ("/health", "/", "/v1/stations", "/static/plotly.min.js"):
        response = api.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["Referrer-Policy"] == "no-referrer", path
