"""The aggregation stage as the benchmarks run and watch it: ``python -m ingest.aggregation``
processes beside the ingest path, and its lag (``now() - the oldest queued change``) sampled
on a connection of its own."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
LAG_SAMPLE_S = 0.5  # the lag is sampled this often
# storage.aggregation.PENDING on the database's clock (queued_at is the writing transaction's
# now()): seconds since the oldest change not yet reflected, 0 when nothing is pending.
LAG_NOW = """
SELECT coalesce(extract(epoch FROM clock_timestamp() - min(queued_at)), 0)::float8, count(*)
FROM aggregation_queue
"""


def percentile(samples: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (NaN without samples)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


class LagSampler:
    """Samples the stage's lag (LAG_NOW) every LAG_SAMPLE_S on its own connection, in a
    thread, between start() and stop(); a failure is kept in ``error``, not raised."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.samples: list[float] = []  # seconds
        self.most_queued = 0  # queue rows at the fullest sample
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-sampler", daemon=True)

    def _run(self) -> None:
        try:
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                while not self._stop.wait(LAG_SAMPLE_S):
                    row = conn.execute(LAG_NOW).fetchone()
                    assert row is not None
                    self.samples.append(float(row[0]))
                    self.most_queued = max(self.most_queued, int(row[1]))
        except Exception as exc:  # reported with the figures; the run goes on
            self.error = exc

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def pct(self, p: float) -> float:
        return percentile(self.samples, p)


@dataclass(frozen=True)
class Drained:
    """What a drain of the queue on one connection did."""

    rows: int  # queue rows reflected
    station_days: int  # station-days recomputed (summed over batches)
    batches: int
    seconds: float

    @property
    def station_days_per_s(self) -> float:
        return self.station_days / self.seconds if self.seconds > 0 else 0.0


def drain(database_url: str) -> Drained:
    """Run the stage on a connection of this process until the queue is empty (what
    ``airwater aggregate --until-empty`` does), timed."""
    from ingest.aggregation import Batch, Stage

    days = batches = 0

    def count(batch: Batch, _remaining: int) -> None:
        nonlocal days, batches
        days += batch.days
        batches += 1

    with psycopg.connect(database_url, autocommit=True) as conn:
        stage = Stage(conn)
        started = time.perf_counter()
        rows = stage.drain(count)
        seconds = time.perf_counter() - started
    return Drained(rows, days, batches, seconds)


def record_rules(database_url: str) -> None:
    """Record the rules the derived levels are kept by (in ``aggregation_rules``, which the
    benchmarks do not truncate), so that a stage started later does not queue every station
    again; reflects what that queues on an empty database."""
    from ingest.aggregation import Stage

    with psycopg.connect(database_url, autocommit=True) as conn:
        stage = Stage(conn)
        stage.check_rules()
        stage.drain()


@contextmanager
def stage_processes(
    database_url: str, count: int, logs: Path, label: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` aggregation stages (``python -m ingest.aggregation``), running (each has
    logged that it runs); SIGTERM and wait at the end. Logs in ``logs/stage-<label>-<i>.log``."""
    paths = [logs / f"stage-{label}-{i}.log" for i in range(count)]
    env = {**os.environ, "AIRWATER_DATABASE_URL": database_url}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for path in paths:
            with open(path, "wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "ingest.aggregation"],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 60
        while not all("stage running" in p.read_text(errors="replace") for p in paths):
            for stage in procs:
                if stage.poll() is not None:
                    raise RuntimeError(
                        f"an aggregation stage exited ({stage.returncode}); see {paths}"
                    )
            if time.monotonic() > deadline:
                raise RuntimeError(f"the aggregation stages did not start in 60 s; see {paths}")
            time.sleep(0.1)
        yield procs
    finally:
        for stage in procs:
            if stage.poll() is None:
                stage.send_signal(signal.SIGTERM)
        for stage in procs:
            try:
                stage.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stage.kill()
                stage.wait()
