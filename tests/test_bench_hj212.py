"""The HJ 212 gateway benchmark at very small sizes: it runs end to end against the gateway
subprocess, prints its figures, and its check finds every answered upload stored once.
Timings are printed, never asserted."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest

from airwater.embedded import PostgresServer
from bench import hj212

DATABASE = "bench_hj212"


@pytest.fixture()
def bench_database(postgres: PostgresServer) -> Iterator[str]:
    """A database of its own on the session's server: the benchmark migrates and fills it."""
    with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    yield f"postgresql://postgres@127.0.0.1:{postgres.port}/{DATABASE}"
    with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def test_small_run_prints_its_figures_and_stores_every_answered_upload_once(
    bench_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIRWATER_DATABASE_URL", bench_database)
    sizes = ["--stations", "5", "--concurrency", "5", "--uploads", "20", "--pipeline", "4"]
    held = ["--idle", "50", "--active", "2", "--active-uploads", "5"]
    code = hj212.main([*sizes, *held, "--yes"])
    out = capsys.readouterr().out
    assert code == 0, out

    number = r"[\d,]+(?:\.\d+)?"
    rows = {
        "lock-step, 5 stations": 20,
        "pipelined ×4, 5 stations": 20,
        "2 active stations, no idle connections": 10,
        "2 active stations, 50 idle connections held": 10,
    }
    for label, uploads in rows.items():
        # connections, uploads, s, uploads/s, readings/s, p50, p95, p99
        pattern = rf"\| {re.escape(label)} \| \d+ \| {uploads} \|" + rf" {number} \|" * 6
        assert re.search(pattern, out), label
    assert "| idle connections opened | 50 of 50 (0 failed)" in out
    sockets = re.search(
        r"gateway sockets: quiet / held / after closing \| (\d+) / (\d+) / (\d+) \|", out
    )
    assert sockets is not None
    quiet, held_count, after = (int(g) for g in sockets.groups())
    assert held_count == quiet + 50 and after == quiet
    assert re.search(rf"\| gateway RSS: quiet / held / after closing \| {number} / ", out)
    assert "| held connections all still open after the uploads | yes |" in out
    # 20 + 20 + 10 + 10 uploads answered, six readings each, in the database exactly once
    assert (
        "check: answered uploads 60 × 6 pollutants = 360 readings expected, 360 stored: "
        "every answered upload stored exactly once" in out
    )
    assert "check: unanswered uploads: 0" in out
    assert "check: gateway counted 60 stored uploads (agrees)" in out
    with psycopg.connect(bench_database) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (station_id, ts)) FROM readings"
        ).fetchone()
    assert row == (360, 60)
