"""`airwater run` (the README's run command without the set-up step) and the worker's
metrics endpoint."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request

import psycopg

from airwater import PROJECT_ROOT
from airwater.embedded import free_port
from schemas.stations import Station
from storage.stations import upsert_stations
from tests.support import Publisher, wait_for


def test_run_starts_private_services_ingests_and_stops_cleanly(tmp_path):
    metrics_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRWATER_")}
    env.update(
        AIRWATER_DATA_DIR=str(tmp_path / "data"),
        AIRWATER_METRICS_PORT=str(metrics_port),
        AIRWATER_HTTP_PORT=str(http_port),
    )
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        run = subprocess.Popen(
            [sys.executable, "-m", "airwater.cli", "run"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        banner = wait_for(
            lambda: re.search(
                r"database\s+(postgresql://\S+).*?broker\s+mqtt://127\.0\.0\.1:(\d+)",
                log_path.read_text(),
                re.S,
            ),
            timeout=90,
            what="the run banner",
        )
        database_url, broker_port = banner.group(1), int(banner.group(2))
        with psycopg.connect(database_url) as conn:
            upsert_stations(conn, [Station(station_id="110000-A001", name="Dongsi")])
        publisher = Publisher(broker_port)
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
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 0
        assert (tmp_path / "data" / "postgres" / "pgdata" / "PG_VERSION").exists()
        assert not (tmp_path / "data" / "postgres" / "pgdata" / "postmaster.pid").exists()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
            subprocess.run(["pkill", "-f", str(tmp_path / "data")], check=False)


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None
