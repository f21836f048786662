"""The aggregation stage: the second half of the pipeline. The commit path stores raw readings
and queues the station-days they touched; this stage brings every derived level up to date
from the queue: station-day (HJ 663 validity, from the hours of the raw readings; for O3 also
the daily maximum 8-hour mean, kept as parameter 'o3_8h'), the latest values, city-day, the
city's daily AQI (HJ 633), station-year and city-year statistics (air) and section-years
(water).

One batch is one transaction (storage.aggregation): claim queue rows with SKIP LOCKED, lock
the station-years and city-years they touch, recompute each touched key from the level below.
A batch killed at any point leaves its rows in the queue and nothing half-written; a batch
run twice writes the same rows. Several stages may run at once (each claims other rows and
waits only for keys another holds). ``airwater aggregate`` (= ``python -m ingest.aggregation``)
runs it; ``airwater run`` and docker-compose start one.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import logging
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from prometheus_client import Counter, Gauge, Histogram, start_http_server

import reports.water
from core.settings import Settings
from reports.publications import check_revisions
from reports.water import section_year
from schemas.payloads import Reason
from standards import aqi, limits, validity, water
from standards.aqi import daily_aqi
from standards.limits import days_judged
from standards.parameters import CATALOGUE
from standards.review import DUST_EXCLUDED
from standards.validity import ANNUAL_PERCENTILE, HOURLY_MIN_MINUTES
from storage import aggregation as levels
from storage.text import storable_text
from storage.writer import DeadLetter, is_refusal, write_batch

log = logging.getLogger(__name__)

HOURLY_MIN_S = HOURLY_MIN_MINUTES * 60
# Station-day rows and whole-station rows (registry changes, rebuilds) claimed per batch. A
# batch recomputes each station-year and city-year it touches from all their days, so after an
# import of a year the batches must be large: 5,000 made the national year take 127 batches
# (2,030 station-days/s); live ingest queues far fewer per batch either way.
BATCH_DAYS = 50_000
BATCH_STATIONS = 2

BATCHES = Counter("airwater_aggregate_batches", "Aggregation batches committed")
CHANGES = Counter("airwater_aggregate_changes", "Queue rows reflected in the derived levels")
STATION_DAYS = Counter("airwater_aggregate_station_days", "Station-days recomputed")
BATCH_SECONDS = Histogram(
    "airwater_aggregate_batch_seconds",
    "Time to recompute and commit one batch",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LAG_SECONDS = Histogram(
    "airwater_aggregate_lag_seconds",
    "From a change's transaction to the commit that reflects it (oldest of each batch)",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
SET_ASIDE = Counter(
    "airwater_aggregate_set_aside", "Queued changes the database refused, kept as dead letters"
)
BACKLOG = Gauge("airwater_aggregate_backlog", "Changes queued and not yet reflected")


def daily_values() -> list[tuple[str, str, str]]:
    """The daily values the stage keeps of the air pollutants, as (kept parameter, pollutant,
    GB 3095 period of its limit): each air parameter's daily mean ("24h") and the O3 daily
    maximum 8-hour mean ("o3_8h", period "8h"), and the PM10 and PM2.5 daily means with the
    sand-dust hours excluded (standards.review.DUST_EXCLUDED)."""
    air = [p.name for p in CATALOGUE.values() if p.medium == "air"]
    return (
        [(p, p, "24h") for p in air]
        + [(levels.O3_DAILY_MAX_8H, "o3", "8h")]
        + [(excluded, measured, "24h") for measured, excluded in DUST_EXCLUDED.items()]
    )


def yearly_rules() -> levels.YearlyRules:
    """The HJ 663 percentile of every kept daily value (ANNUAL_PERCENTILE names the period of
    the daily value: O3's 90th is of the daily maximum 8-hour means, not of the 'o3' daily
    means) and the Grade II limit of its period of every GB 3095 version by date (the oldest
    version also judges the days before it)."""
    fractions = {}
    daily_limits = []
    for kept, pollutant, period in daily_values():
        percentile = ANNUAL_PERCENTILE.get(pollutant)
        if percentile is not None and percentile[0] == period:
            fractions[kept] = percentile[1] / 100
        for first, last, limit_set in days_judged():
            daily_limits.append((kept, first, last, limit_set.limit(pollutant, period, 2)))
    return levels.YearlyRules(fractions, daily_limits)


def rules_fingerprint(rules: levels.YearlyRules, o3_rule: levels.DailyMax8hRule) -> str:
    """What the kept levels depend on beyond the readings: the yearly rules, the O3 daily
    maximum 8-hour rule, the validity, class and AQI rules (their source)."""
    digest = hashlib.sha256(repr(rules.params()).encode())
    digest.update(repr(o3_rule.params()).encode())
    for module in (limits, validity, water, reports.water, aqi):
        digest.update(inspect.getsource(module).encode())
    digest.update(str(HOURLY_MIN_S).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Batch:
    """What one batch reflected: queue rows, station-days, the oldest change among them."""

    rows: int
    days: int
    oldest: datetime | None
    seconds: float


class Stage:
    """Runs batches on one connection (``storage.aggregation.prepare_connection`` done)."""

    def __init__(self, conn: psycopg.Connection, batch_days: int = BATCH_DAYS) -> None:
        self.conn = conn
        self.batch_days = batch_days
        self.rules = yearly_rules()
        self.o3_rule = levels.daily_max_8h_rule()
        levels.prepare_connection(conn)

    def check_rules(self) -> bool:
        """Queue every station again when the kept levels were made by other rules than
        these (validity, limits, percentiles, water classes); True when it did."""
        fingerprint = rules_fingerprint(self.rules, self.o3_rule)
        kept = levels.rules_fingerprint(self.conn, "derived")
        if kept == fingerprint:
            return False
        # none kept: a new database, or one the 0008 migration queued whole already
        rebuild = kept is not None
        if rebuild:
            log.info("the rules of the derived levels changed: every station is queued again")
        levels.record_rules(self.conn, "derived", fingerprint, rebuild)
        return rebuild

    def run_batch(self, stations: int = BATCH_STATIONS) -> Batch:
        """Reflect one batch of the queue; an empty queue gives a batch of 0 rows. A batch the
        database refuses for its data (a value whose sum overflows, say: the intake's ranges
        keep such values out, direct SQL does not) does not stop the stage: its rows are
        taken one at a time, and one refused alone is set aside as a dead letter."""
        try:
            return self._batch(self.batch_days, stations)
        except Exception as exc:
            if not is_refusal(exc, self.conn):
                raise
            log.warning("an aggregation batch was refused (%s); taking its rows one by one", exc)
        for limit, wide in ((0, 1), (1, 0)):
            try:
                batch = self._batch(limit, wide)
            except Exception as exc:
                if not is_refusal(exc, self.conn):
                    raise
                return self._set_aside(limit, wide, exc)
            if batch.rows:
                return batch
        return Batch(0, 0, None, 0.0)

    def _batch(self, limit: int, stations: int) -> Batch:
        started = time.perf_counter()
        conn = self.conn
        with conn.transaction():
            claimed = levels.claim(conn, limit, stations)
            if not claimed.rows:
                return Batch(0, 0, None, time.perf_counter() - started)
            levels.refresh_station_days(conn, HOURLY_MIN_S, self.o3_rule)
            levels.refresh_station_years(conn, self.rules)
            levels.refresh_cities(conn, self.rules)
            self._refresh_city_day_aqis()
            self._refresh_water()
        seconds = time.perf_counter() - started
        BATCHES.inc()
        CHANGES.inc(claimed.rows)
        STATION_DAYS.inc(claimed.days)
        BATCH_SECONDS.observe(seconds)
        if claimed.oldest is not None:
            LAG_SECONDS.observe(max(0.0, (datetime.now(UTC) - claimed.oldest).total_seconds()))
        return Batch(claimed.rows, claimed.days, claimed.oldest, seconds)

    def _set_aside(self, limit: int, stations: int, exc: Exception) -> Batch:
        """Take the queue row the database refused out of the queue, as a dead letter (topic
        ``aggregation``) that says which station-day and why; its levels stay as they were."""
        conn = self.conn
        with conn.transaction():
            levels.claim(conn, limit, stations)
            rows = levels.claimed_rows(conn)
            letters = [
                DeadLetter(
                    topic="aggregation",
                    station_id=station_id,
                    payload=f"{station_id},{parameter or '*'},{day or '*'}".encode(),
                    reason=Reason.STORAGE_REJECTED,
                    detail=storable_text(f"the aggregation stage could not derive it: {exc}"),
                    received_at=datetime.now(UTC),
                    source="aggregation",
                )
                for station_id, parameter, day in rows
            ]
            write_batch(conn, (), letters)
        for letter in letters:
            log.error("set aside %s: %s", letter.payload.decode(), letter.detail)
        SET_ASIDE.inc(len(letters))
        return Batch(len(letters), 0, None, 0.0)

    def _refresh_city_day_aqis(self) -> None:
        """The daily AQI (HJ 633, version in force that day) of every city-day of the batch,
        from the same inputs as the API's (their city-year locks are held)."""
        rows = []
        for (city_code, day), inputs in levels.city_day_aqi_inputs(self.conn).items():
            result = daily_aqi(inputs, day)
            if result.aqi is None and result.not_computable is None:
                continue  # no input this version reads (2026: an O3 1-hour maximum only)
            rows.append(
                levels.CityDayAqi(
                    city_code,
                    day,
                    result.aqi,
                    result.version,
                    list(result.primary_pollutants),
                    result.beyond_index,
                    result.not_computable,
                    list(result.missing),
                )
            )
        levels.save_city_day_aqis(self.conn, rows)

    def _refresh_water(self) -> None:
        months: dict[tuple[int, str], list[tuple[str, int, float, float]]] = defaultdict(list)
        bodies: dict[tuple[int, str], str | None] = {}
        for row in levels.water_months(self.conn):
            key = (row.year, row.station_id)
            bodies[key] = row.waterbody
            if row.parameter is not None and row.month is not None:
                assert row.mean is not None and row.worst is not None
                months[key].append((row.parameter, row.month, row.mean, row.worst))
        kept = []
        for key, waterbody in bodies.items():
            year = section_year(months[key], waterbody)
            kept.append(
                levels.WaterYearRow(
                    key[0],
                    key[1],
                    year.water_class,
                    year.method,
                    year.deciding,
                    year.months_with_data,
                    year.annual_means,
                    year.monthly_means,
                )
            )
        levels.save_water_years(self.conn, kept)

    def drain(self, progress: Callable[[Batch, int], Any] | None = None) -> int:
        """Run batches until the queue is empty (what others queue meanwhile included);
        ``progress(batch, remaining)`` after each. Returns the queue rows reflected."""
        total = 0
        while True:
            batch = self.run_batch()
            if not batch.rows:
                return total
            total += batch.rows
            if progress is not None:
                progress(batch, levels.pending(self.conn)[1])


def settle(conn: psycopg.Connection) -> int:
    """Reflect everything queued so far, on ``conn`` (tests, the migration, the importer's
    ``--settle``): returns the queue rows reflected."""
    return Stage(conn).drain()


def _check_publications(conn: psycopg.Connection) -> None:
    """Revise the published years whose figures the reflected changes altered. A lost
    database goes to the loop's retry; any other failure is logged and the stage goes on, so
    that a fault in the check never stops the derived levels from being kept."""
    try:
        check_revisions(conn)
    except psycopg.OperationalError:
        raise
    except Exception:
        log.exception("checking the published years failed; trying again at the next check")


def run(settings: Settings, stop: threading.Event, poll_s: float = 0.2) -> int:
    """The stage's loop: batches while there is work, a poll every ``poll_s`` when there is
    none; a lost database is waited for (1 s doubling to 30 s) and the loop goes on."""
    assert settings.database_url is not None
    delay = 1.0
    while not stop.is_set():
        try:
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                stage = Stage(conn)
                stage.check_rules()
                log.info("aggregation stage running (batches of up to %d days)", BATCH_DAYS)
                delay = 1.0
                last_report = 0.0
                last_publication_check = 0.0
                while not stop.is_set():
                    batch = stage.run_batch()
                    if time.monotonic() - last_report > 5 or not batch.rows:
                        BACKLOG.set(levels.pending(conn)[1])
                        last_report = time.monotonic()
                    if (
                        not batch.rows
                        and time.monotonic() - last_publication_check
                        >= settings.publication_check_s
                    ):
                        last_publication_check = time.monotonic()
                        _check_publications(conn)
                    if batch.rows:
                        log.debug(
                            "reflected %d changes (%d station-days) in %.3f s",
                            batch.rows,
                            batch.days,
                            batch.seconds,
                        )
                    elif stop.wait(poll_s):
                        break
        except psycopg.OperationalError as exc:
            log.warning("database unavailable (%s); retrying in %.0f s", exc, delay)
            if stop.wait(delay):
                break
            delay = min(delay * 2, 30.0)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airwater aggregate",
        description="Run the aggregation stage: reflect the changes the ingest workers and "
        "imports queue in every derived level (station-day, city-day, station- and city-year "
        "statistics, water section-years, latest values). Several may run at once. "
        "Configured by AIRWATER_DATABASE_URL.",
    )
    parser.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus metrics here (0: off)"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    if settings.database_url is None:
        parser.error("AIRWATER_DATABASE_URL must be set (or use `airwater run`)")
    if args.metrics_port:
        start_http_server(args.metrics_port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return run(settings, stop)


if __name__ == "__main__":
    sys.exit(main())
