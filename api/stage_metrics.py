"""The aggregation stage's backlog and lag on the API's ``/metrics``, read from the database
at scrape time: whichever process runs the stage, and however many, the queue tells."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

from storage.aggregation import pending


class StageCollector(Collector):
    """Collects from the pool of the app created last (one per process outside tests)."""

    pool: ConnectionPool | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.pool is None:
            return
        try:
            with self.pool.connection(timeout=2) as conn:
                oldest, queued = pending(conn)
        except Exception:  # the database is down: /ready says so; metrics stay served
            return
        lag = 0.0 if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        yield GaugeMetricFamily(
            "airwater_aggregation_backlog",
            "Changes committed by ingest and imports, not yet reflected in the derived levels",
            value=queued,
        )
        yield GaugeMetricFamily(
            "airwater_aggregation_lag_seconds",
            "Age of the oldest change not yet reflected (0: the derived levels are current)",
            value=lag,
        )


COLLECTOR = StageCollector()
REGISTRY.register(COLLECTOR)
