"""`airwater run` (the README's run command without the set-up step) and the worker's
metrics endpoint."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from airwater.embedded import free_port
from core import PROJECT_ROOT
from reports import air_report
from schemas.stations import Station
from storage.stations import upsert_stations
from tests.support import Publisher, wait_for

BEIJING = ZoneInfo("Asia/Shanghai")


def test_run_starts_private_services_ingests_and_stops_cleanly(tmp_path):
    metrics_port, http_port = free_port(), free_port()
    env, log_path, run = _start_run(tmp_path, metrics_port, http_port)
    try:
        database_url, broker_port = _banner(log_path)
        # the demo's broker refuses anonymous clients; the station gets its own account
        assert _connected(Publisher(broker_port, "anonymous")) is None
        publisher = _logged_in_station(env, database_url, broker_port)
        try:

            def stored() -> int:
                publisher.publish(
                    "110000-A001", {"ts": "2026-03-01T08:00:00+08:00", "pm25": 35.0}
                ).wait_for_publish(5)
                with psycopg.connect(database_url) as conn:
                    row = conn.execute("SELECT count(*) FROM readings").fetchone()
                return row[0] if row else 0

            assert wait_for(stored, timeout=60, interval=0.5, what="a reading stored") == 1
            # the same reading once more: a duplicate, counted, not stored
            assert stored() == 1
        finally:
            publisher.close()

        def metrics() -> str | None:
            text = _get(f"http://127.0.0.1:{metrics_port}/metrics")
            if text and re.search(r"^airwater_ingest_readings_duplicate_total [1-9]", text, re.M):
                return text
            return None

        text = wait_for(metrics, timeout=20, what="the duplicate in the metrics")
        assert re.search(r"^airwater_ingest_readings_stored_total 1\.0$", text, re.M)
        assert re.search(r"^airwater_ingest_messages_received_total [2-9]", text, re.M)
        admin_key = (tmp_path / "data" / "admin-key").read_text().strip()
        assert admin_key in log_path.read_text(), "the admin key is printed"
        health = wait_for(
            lambda: _get(f"http://127.0.0.1:{http_port}/health"), timeout=30, what="the API"
        )
        assert '"ok"' in health
        request = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/v1/stations/110000-A001",
            headers={"Authorization": f"Bearer {admin_key}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert b"Dongsi" in response.read()

        def derived() -> int:
            with psycopg.connect(database_url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM readings_daily"
                    " WHERE station_id = '110000-A001' AND parameter = 'pm25'"
                ).fetchone()
            return row[0] if row else 0

        # the run's aggregation stage reflects the reading; the API's /metrics says so
        assert wait_for(derived, timeout=30, interval=0.5, what="the stage's daily row") == 1
        stage = wait_for(
            lambda: _get(f"http://127.0.0.1:{http_port}/metrics"), timeout=10, what="metrics"
        )
        assert re.search(r"^airwater_aggregation_backlog \d", stage, re.M)
        assert re.search(r"^airwater_aggregation_lag_seconds \d", stage, re.M)
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 0
        assert (tmp_path / "data" / "postgres" / "pgdata" / "PG_VERSION").exists()
        assert not (tmp_path / "data" / "postgres" / "pgdata" / "postmaster.pid").exists()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
            subprocess.run(["pkill", "-f", str(tmp_path / "data")], check=False)


def test_run_restarts_a_killed_component_and_keeps_the_rest_running(tmp_path):
    http_port = free_port()
    env, log_path, run = _start_run(tmp_path, 0, http_port)
    try:
        database_url, broker_port = _banner(log_path)
        ingest_pid = _logged_pid(log_path, r"started ingest \(pid (\d+)\)")
        api_pid = _logged_pid(log_path, r"started api \(pid (\d+)\)")
        wait_for(lambda: _get(f"http://127.0.0.1:{http_port}/health"), timeout=30, what="the API")

        os.kill(ingest_pid, signal.SIGKILL)
        restarted = wait_for(
            lambda: re.search(r"restarted ingest \(pid (\d+), restart 1\)", log_path.read_text()),
            timeout=30,
            what="the ingest worker's restart",
        )
        new_ingest_pid = int(restarted.group(1))
        text = log_path.read_text()
        assert re.search(
            r"ingest exited with signal SIGKILL after [\d.]+ s; restart 1 in 1 s", text
        )
        assert new_ingest_pid != ingest_pid and _alive(new_ingest_pid)
        # the others kept their process: nothing else restarted, the API answers as before
        assert re.findall(r"restarted (\w+)", text) == ["ingest"]
        children = {int(pid) for pid in _child_pids(run.pid)}
        assert {new_ingest_pid, api_pid} <= children and ingest_pid not in children
        assert len(children) == 6  # mosquitto, ingest, aggregate, alerts, api, hj212
        assert '"ok"' in (_get(f"http://127.0.0.1:{http_port}/health") or "")

        # the new worker ingests
        publisher = _logged_in_station(env, database_url, broker_port)
        try:

            def stored() -> int:
                publisher.publish(
                    "110000-A001", {"ts": "2026-03-01T08:00:00+08:00", "pm25": 35.0}
                ).wait_for_publish(5)
                return _count(database_url, "SELECT count(*) FROM readings")

            assert wait_for(stored, timeout=60, interval=0.5, what="a reading stored") == 1
        finally:
            publisher.close()
        assert _alive(api_pid)
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 0
        assert not _alive(new_ingest_pid) and not _alive(api_pid)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
            subprocess.run(["pkill", "-f", str(tmp_path / "data")], check=False)


def _start_run(
    tmp_path: Path, metrics_port: int, http_port: int
) -> tuple[dict[str, str], Path, subprocess.Popen[bytes]]:
    """`airwater run --no-simulate` with its data under ``tmp_path``: (env, log, process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRWATER_")}
    env.update(
        AIRWATER_DATA_DIR=str(tmp_path / "data"),
        AIRWATER_METRICS_PORT=str(metrics_port),
        AIRWATER_HTTP_PORT=str(http_port),
        AIRWATER_HJ212_PORT=str(free_port()),
    )
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        run = subprocess.Popen(
            [sys.executable, "-m", "airwater.cli", "run", "--no-simulate"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a failed test can kill the whole group
        )
    return env, log_path, run


def _banner(log_path: Path) -> tuple[str, int]:
    """The database URL and broker port the run prints once it is up."""
    banner = wait_for(
        lambda: re.search(
            r"database\s+(postgresql://\S+).*?broker\s+mqtt://127\.0\.0\.1:(\d+)",
            log_path.read_text(),
            re.S,
        ),
        timeout=90,
        what="the run banner",
    )
    return banner.group(1), int(banner.group(2))


def _logged_in_station(env: dict[str, str], database_url: str, broker_port: int) -> Publisher:
    """Station 110000-A001 registered, given broker credentials and logged in with them."""
    with psycopg.connect(database_url) as conn:
        upsert_stations(conn, [Station(station_id="110000-A001", name="Dongsi")])
    issued = subprocess.run(
        [*AIRWATER, "stations", "credentials", "issue", "110000-A001"],
        env={**env, "AIRWATER_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "broker reloaded" in issued.stderr
    password = issued.stdout.strip().split(",", 1)[1]
    return wait_for(
        lambda: _connected(Publisher(broker_port, "110000-A001", "110000-A001", password)),
        timeout=15,
        what="the station's login",
    )


def _logged_pid(log_path: Path, pattern: str) -> int:
    found = re.search(pattern, log_path.read_text())
    assert found, f"no line matching {pattern!r} in the run's log"
    return int(found.group(1))


def _child_pids(pid: int) -> list[str]:
    return subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()


def _alive(pid: int | str) -> bool:
    try:  # a zombie waiting for its parent or init to reap it has stopped running
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


AIRWATER = [sys.executable, "-m", "airwater.cli"]


def _connected(publisher: Publisher) -> Publisher | None:
    """The publisher once the broker accepted it, or None (closed) if it was refused."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not publisher.client.is_connected():
        time.sleep(0.05)
    if publisher.client.is_connected():
        return publisher
    publisher.client.loop_stop()
    return None


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def test_run_with_the_simulated_network_backfills_since_last_year_and_publishes_live(tmp_path):
    http_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRWATER_")}
    env.update(
        AIRWATER_DATA_DIR=str(tmp_path / "data"),
        AIRWATER_METRICS_PORT="0",
        AIRWATER_HTTP_PORT=str(http_port),
        AIRWATER_HJ212_PORT=str(free_port()),
    )
    this_year = time.localtime().tm_year
    last_year = this_year - 1
    log_path = tmp_path / "run.log"

    def start(log_path: Path) -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                # one city: its 3 air stations (and the 40 water sections every network has)
                # are backfilled and publish like a larger network's, in half the time of two
                [sys.executable, "-m", "airwater.cli", "run", "--cities", "1"],
                env=env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so a failed test can kill the whole group
            )

    run = start(log_path)
    try:
        banner = wait_for(
            lambda: re.search(r"database\s+(postgresql://\S+)", log_path.read_text()),
            timeout=120,
            what="the run banner",
        )
        database_url = banner.group(1)

        def national_mean() -> float | None:
            with psycopg.connect(database_url) as conn:
                return air_report(conn, last_year).national.annual_mean

        mean = wait_for(national_mean, timeout=180, interval=0.5, what="last year backfilled")
        assert 15 < mean < 60
        # and this year up to the current hour, where the live readings take over
        period = wait_for(
            lambda: re.search(
                rf"backfill {last_year}-01-01 00:00 to (\S+ \S+) \(Beijing time\)",
                log_path.read_text(),
            ),
            timeout=30,
            what="the backfill's period",
        )
        end = datetime.strptime(period.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=BEIJING)
        assert timedelta(0) <= datetime.now(UTC) - end < timedelta(hours=1)
        days_so_far = (end.date() - date(this_year, 1, 1)).days

        def this_year_valid_days() -> int | None:
            with psycopg.connect(database_url) as conn:
                stations = air_report(conn, this_year).stations
            fewest = min((s.valid_days for s in stations), default=0)
            # a station-year may lose up to 9 days to an outage, the odd day to gaps
            return fewest if len(stations) == 3 and fewest >= 0.9 * days_so_far - 10 else None

        wait_for(this_year_valid_days, timeout=120, interval=0.5, what="this year backfilled")
        # live: readings of today arrive over MQTT from the simulated stations
        wait_for(
            lambda: (
                _count(
                    database_url,
                    "SELECT count(*) FROM readings WHERE ts > now() - interval '1 day'",
                )
                > 0
            ),
            timeout=90,
            interval=0.5,
            what="live readings",
        )
        page = wait_for(
            lambda: _get(f"http://127.0.0.1:{http_port}/?year={last_year}"),
            timeout=30,
            what="the dashboard",
        )
        assert 'data-testid="national-mean"' in page
        wait_for(
            lambda: "finished with exit code 0" in log_path.read_text(),
            timeout=120,
            what="the backfill to finish",
        )
        with psycopg.connect(database_url) as conn:
            before = conn.execute(
                "SELECT count(*) FROM readings WHERE ts < %s", (f"{last_year + 1}-01-01",)
            ).fetchone()
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=90) == 0
        # a second start resumes on the same data: nothing is backfilled twice
        log_path = tmp_path / "run-2.log"
        run = start(log_path)
        banner = wait_for(
            lambda: re.search(r"database\s+(postgresql://\S+)", log_path.read_text()),
            timeout=120,
            what="the second banner",
        )
        wait_for(
            lambda: "finished with exit code 0" in log_path.read_text(),
            timeout=120,
            what="the second backfill to finish",
        )
        with psycopg.connect(banner.group(1)) as conn:
            after = conn.execute(
                "SELECT count(*) FROM readings WHERE ts < %s", (f"{last_year + 1}-01-01",)
            ).fetchone()
        assert after == before
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=90) == 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
            subprocess.run(["pkill", "-f", str(tmp_path / "data")], check=False)


def _count(database_url: str, sql: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def test_workers_do_not_outlive_a_killed_run(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRWATER_")}
    env.update(
        AIRWATER_DATA_DIR=str(tmp_path / "data"),
        AIRWATER_METRICS_PORT="0",
        AIRWATER_HTTP_PORT=str(free_port()),
        AIRWATER_HJ212_PORT=str(free_port()),
    )
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        run = subprocess.Popen(
            [sys.executable, "-m", "airwater.cli", "run", "--no-simulate"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "airwater is running" in log_path.read_text(), timeout=90, what="the run banner"
        )
        children = _child_pids(run.pid)
        assert len(children) == 6  # mosquitto, ingest, aggregate, alerts, api, hj212
        run.kill()
        run.wait()

        def gone() -> bool:
            return not any(_alive(pid) for pid in children)

        wait_for(gone, timeout=30, what="the workers to stop with their parent")
        # the next start finds the database the killed run left behind, and carries on
        with open(log_path, "ab") as log:
            run = subprocess.Popen(
                [sys.executable, "-m", "airwater.cli", "run", "--no-simulate"],
                env=env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(
            lambda: log_path.read_text().count("airwater is running") == 2,
            timeout=90,
            what="the second start",
        )
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-f", str(tmp_path / "data")], check=False)
