"""The national-scale benchmark at 1 % scale: it runs end to end, prints its figures, and the
data it imported gives a national air and water report. Timings are printed, never asserted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from airwater.embedded import PostgresServer
from bench import national
from reports import air_report, water_report

DATABASE = "bench_national"


@pytest.fixture()
def bench_database(postgres: PostgresServer) -> Iterator[str]:
    """A database of its own on the session's server: the benchmark migrates and fills it."""
    with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    yield f"postgresql://postgres@127.0.0.1:{postgres.port}/{DATABASE}"
    with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def test_one_percent_run_prints_its_figures_and_gives_a_national_report(
    bench_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIRWATER_DATABASE_URL", bench_database)
    folders = ["--out-dir", str(tmp_path), "--files-dir", str(tmp_path)]
    # 5 calls per timed query (the benchmark itself takes 20 for its p95): every figure is
    # printed from the same code, its value is not asserted
    timing = ["--live-seconds", "3", "--repeats", "5"]
    code = national.main(["--scale", "0.01", "--yes", *folders, *timing])
    out = capsys.readouterr().out
    assert code == 0

    network = national.build_network(0.01, 2025, 8)
    assert (len(network.stations), len(network.sections)) == (17, 36)
    assert len(list((tmp_path / "air").glob("china_sites_2025*.csv"))) == 365
    header = (tmp_path / "air" / "china_sites_20250101.csv").read_text().splitlines()[:4]
    assert header[0] == "date,hour,type," + ",".join(s.code for s in network.stations)
    assert [line.split(",")[2] for line in header[1:]] == ["AQI", "PM2.5", "PM2.5_24h"]

    # the figures: the rates (import, then the stage draining what it queued), every timed
    # query with p50 and p95 (quiet and during live ingest), the lag, the sizes
    assert re.search(r"\| raw COPY into readings \(air\) \| [\d,]+ \|", out)
    assert re.search(r"\| (airwater import|write_batch), air", out)
    assert re.search(r"import / raw COPY: \d+ %", out)
    assert re.search(
        r"\| aggregation stage after the air (import|load) \(station-days\) \| [\d,]+ \|", out
    )
    assert re.search(r"import \+ stage / raw COPY: \d+ %", out)
    for query in ("air_report (national, pm25)", "water_report (national)", "one station's year"):
        assert re.search(re.escape(query) + r".*\| [\d.]+ \| [\d.]+ \|", out), query
    assert "GET /v1/compliance/air" in out
    live = [line for line in out.splitlines() if "readings/s of live ingest |" in line]
    assert any(line.startswith("| air_report (national, pm25) 2025") for line in live), out
    assert any(line.startswith("| GET /v1/compliance/water?year=2025") for line in live), out
    assert re.search(r"live: stage lag .* p50 [\d.]+ s, p99 [\d.]+ s", out)
    assert re.search(r"live: ingest during the timed reports .*: [\d,]+ readings in", out)
    assert re.search(r"size: readings per million rows: [\d.,]+ MiB", out)
    for table in national.SIZED_TABLES:
        assert re.search(rf"\| {table} \| [\d,]+ \| [\d.,]+ MiB \|", out), table
    assert re.search(
        r"size: everything \(readings \+ derived\) per million readings: [\d.,]+ MiB", out
    )

    bench_year = (
        datetime(2025, 1, 1, tzinfo=national.BEIJING),
        datetime(2026, 1, 1, tzinfo=national.BEIJING),
    )
    with psycopg.connect(bench_database) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM readings WHERE parameter = 'pm25' AND ts >= %s AND ts < %s",
            bench_year,
        ).fetchone()
        pending = conn.execute("SELECT count(*) FROM aggregation_queue").fetchone()
        report = air_report(conn, 2025)
        water = water_report(conn, 2025)
        current = air_report(conn, datetime.now(national.BEIJING).year)
    assert stored is not None and stored[0] == int((national.pm25_values(network, 8) >= 0).sum())
    assert pending == (0,)  # the stage reflected everything, the live ingest included
    assert len(report.stations) == 17 and len(report.cities) == 3
    assert report.national.annual_mean is not None and report.national.cities == 3
    assert 10 < report.national.annual_mean < 60
    assert water.sections_assessed == 36
    assert water.excellent_share is not None
    # the current year's report has the days written before the live phase (none on 1 January)
    assert current.as_of <= datetime.now(UTC)
    if datetime.now(national.BEIJING).timetuple().tm_yday > 1:
        assert sum(1 for s in current.stations if s.annual_mean is not None) == 17
