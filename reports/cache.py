"""Annual reports computed once and served from storage.report_cache while still exact."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg

from schemas.reports import AirReport, WaterReport
from storage.report_cache import cached_report, current_snapshot, store_report

# The code a report depends on: a cache entry made by other rules or report code is ignored.
_RULE_SOURCES = (
    "reports/air.py",
    "reports/coverage.py",
    "reports/water.py",
    "storage/compliance.py",
    "standards/limits.py",
    "standards/parameters.py",
    "standards/targets.py",
    "standards/validity.py",
    "standards/water.py",
    "schemas/reports.py",
)


def _rules_fingerprint() -> str:
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for name in _RULE_SOURCES:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]


RULES_FINGERPRINT = _rules_fingerprint()
Report = TypeVar("Report", AirReport, WaterReport)


def cached(
    conn: psycopg.Connection,
    kind: str,
    year: int,
    model: type[Report],
    compute: Callable[[], Report],
) -> Report:
    """The stored report of ``kind`` and ``year`` while it is still exact, else ``compute()``
    (stored for the next call when the connection may write)."""
    body = cached_report(conn, kind, year, RULES_FINGERPRINT)
    if body is not None:
        return model.model_validate_json(body)
    snapshot = current_snapshot(conn)  # before computing: a change made meanwhile is seen
    report = compute()
    store_report(conn, kind, year, RULES_FINGERPRINT, snapshot, report.model_dump_json())
    return report
