"""Generated requests from the OpenAPI schema (schemathesis): no 5xx, errors as problem+json.

Driven through Hypothesis directly: schemathesis's pytest plugin does not load under the
pytest this project uses.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from api import create_app
from tests.conftest import ADMIN_KEY

EXAMPLES_PER_OPERATION = 30


def test_generated_requests_never_get_a_server_error(api_settings, api_pool, database_url):
    # no rate limit in the way: a 429 would pass the checks while no route is exercised
    unlimited = api_settings.model_copy(update={"api_rate_per_s": 1e9, "api_rate_burst": 10**9})
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(unlimited, api_pool))
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/ready":
            continue  # 503 is its documented answer here: the test settings have no broker

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: schemathesis.Case) -> None:
            if case.operation.path == "/v1/alerts/stream":
                # endless by design: bound every generated case to 0.05 s (other fields
                # fuzzed), time for the stream's first poll of the outbox with those filters
                case.query = {**(case.query or {}), "timeout_s": 0.05}
            response = case.call(headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            where = f"{case.method} {case.formatted_path} {case.query} {case.body!r}"
            assert response.status_code < 500, f"{where}: {response.text}"
            if response.status_code >= 400:
                content_type = response.headers.get("content-type") or [""]
                assert content_type[0].startswith("application/problem+json"), where
                assert response.json()["type"].startswith("/problems/"), where

        no_server_error()
        checked.append(operation.label)
    assert len(checked) >= 8, checked
