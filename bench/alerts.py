"""Breach latency: from the publish of a breaching reading to the webhook's arrival, while
the pipeline ingests a sustained background load.

    .venv/bin/python bench/alerts.py --rate 10000 --seconds 30

Starts a private PostgreSQL+TimescaleDB and Mosquitto, the ingest worker (``python -m
ingest``), the aggregation stage (``python -m ingest.aggregation``, ``--stages``, as deployed:
it competes for the same cores) and the alert delivery worker (``python -m alerts``), a local
webhook receiver, and background publishers at ``--rate`` readings/s (batch payloads). Every
``--probe-every`` seconds a probe station publishes a breaching reading (and then a clearing
one); the time to its ``firing`` webhook is one sample. Prints p50/p95/p99/max and the load
actually ingested.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import paho.mqtt.client as mqtt
import psycopg
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from airwater.embedded import MosquittoServer, PostgresServer, free_port  # noqa: E402
from schemas.stations import Station  # noqa: E402
from storage.migrate import migrate  # noqa: E402
from storage.stations import upsert_stations  # noqa: E402

console = Console()
LOAD_STATIONS = 100
PROBE_STATIONS = 20
SECRET = "bench-webhook-secret-0123456789"


def client(client_id: str, port: int) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(50)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def background_load(
    port: int,
    index: int,
    rate: float,
    seconds: float,
    per_message: int,
    stop: mp.synchronize.Event,
    sent: mp.sharedctypes.Synchronized,
) -> None:
    """Publish ``rate`` readings/s of ordinary values (never breaching) until told to stop."""
    c = client(f"bench-load-{index}", port)
    # each publisher writes its own years, each station one reading per hour: all new rows,
    # all in the past (future timestamps would be dead-lettered)
    start_ts = int(datetime(2000 + 4 * index, 1, 1, tzinfo=UTC).timestamp())
    t0, published = time.monotonic(), 0
    messages_per_s = rate / per_message
    while not stop.is_set() and time.monotonic() - t0 < seconds:
        due = int((time.monotonic() - t0) * messages_per_s)
        while published < due:
            station = f"LOAD-{(published % LOAD_STATIONS):03d}"
            first_hour = (published // LOAD_STATIONS) * per_message
            readings = [
                {"ts": start_ts + 3600 * (first_hour + k), "pm25": 20 + (k % 30)}
                for k in range(per_message)
            ]
            c.publish(f"stations/{station}/readings", json.dumps({"readings": readings}), qos=1)
            published += 1
        time.sleep(0.005)
    with sent.get_lock():
        sent.value += published * per_message
    c.disconnect()
    c.loop_stop()


class Receiver(BaseHTTPRequestHandler):
    arrivals: ClassVar[dict[str, float]] = {}
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        arrived = time.time()
        event = json.loads(body)
        if event.get("kind") == "firing":
            observed = datetime.fromisoformat(event["observed_at"].replace("Z", "+00:00"))
            key = f"{event['station_id']}@{int(observed.timestamp())}"
            with self.lock:
                self.arrivals.setdefault(key, arrived)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=10_000, help="background readings/s")
    parser.add_argument("--seconds", type=float, default=30, help="length of the load")
    parser.add_argument("--per-message", type=int, default=10, help="readings per message")
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--probe-every", type=float, default=0.5, help="seconds between probes")
    parser.add_argument("--workers", type=int, default=1, help="ingest workers")
    parser.add_argument(
        "--stages", type=int, default=1, help="aggregation stages beside them (default 1)"
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="airwater-bench-alerts-"))
    postgres = PostgresServer(work / "postgres")
    broker = MosquittoServer(work / "mosquitto")
    processes: list[subprocess.Popen[bytes]] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        postgres.start()
        broker.start()
        with psycopg.connect(postgres.url) as conn:
            migrate(conn)
            upsert_stations(
                conn,
                [
                    Station(station_id=f"LOAD-{i:03d}", name=f"load {i}")
                    for i in range(LOAD_STATIONS)
                ]
                + [
                    Station(station_id=f"PROBE-{i:02d}", name=f"probe {i}")
                    for i in range(PROBE_STATIONS)
                ],
            )
            conn.execute(
                "INSERT INTO alert_subscriptions (name, target, parameter, scope, comparator,"
                " threshold, clear_threshold, channel, webhook_url, webhook_secret)"
                " VALUES ('bench', 'reading', 'pm25', 'all', '>', 500, 100, 'webhook', %s, %s)",
                (f"http://127.0.0.1:{httpd.server_port}/hook", SECRET),
            )
            conn.commit()
        env = {
            **os.environ,
            "AIRWATER_DATABASE_URL": postgres.url,
            "AIRWATER_MQTT_URL": broker.url,
            "AIRWATER_METRICS_PORT": "0",
            "AIRWATER_WEBHOOK_ALLOW": '["127.0.0.0/8"]',
        }
        logs = work / "logs"
        logs.mkdir()
        for i in range(args.workers):
            with open(logs / f"ingest-{i}.log", "wb") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "ingest"],
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env={**env, "AIRWATER_INGEST_CLIENT_ID": f"bench-ingest-{i}"},
                    )
                )
        for i in range(args.stages):
            with open(logs / f"aggregate-{i}.log", "wb") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "ingest.aggregation"],
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                )
        with open(logs / "alerts.log", "wb") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "alerts"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        time.sleep(3)  # the workers subscribe; the shared subscription exists from here on

        stop, sent = mp.Event(), mp.Value("q", 0)
        ctx_procs = [
            mp.Process(
                target=background_load,
                args=(
                    broker.port,
                    i,
                    args.rate / args.publishers,
                    args.seconds,
                    args.per_message,
                    stop,
                    sent,
                ),
            )
            for i in range(args.publishers)
        ]
        for p in ctx_procs:
            p.start()
        probe = client("bench-probe", broker.port)
        sent_at: dict[str, float] = {}
        t0 = time.monotonic()
        n = 0
        base = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp())
        with console.status("publishing load and probes…"):
            while time.monotonic() - t0 < args.seconds:
                station = f"PROBE-{n % PROBE_STATIONS:02d}"
                ts = base + 7200 * (n // PROBE_STATIONS)
                key = f"{station}@{ts}"
                sent_at[key] = time.time()
                probe.publish(
                    f"stations/{station}/readings", json.dumps({"ts": ts, "pm25": 600}), qos=1
                )
                time.sleep(args.probe_every / 2)
                probe.publish(
                    f"stations/{station}/readings", json.dumps({"ts": ts + 3600, "pm25": 10}), qos=1
                )
                time.sleep(args.probe_every / 2)
                n += 1
            load_end = time.monotonic()
            stop.set()
            for p in ctx_procs:
                p.join(timeout=60)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(Receiver.arrivals) < len(sent_at):
                time.sleep(0.2)
        with psycopg.connect(postgres.url) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM readings WHERE station_id LIKE 'LOAD-%%'"
            ).fetchone()
            dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        latencies = [Receiver.arrivals[k] - sent_at[k] for k in sent_at if k in Receiver.arrivals]
        missing = len(sent_at) - len(latencies)
        table = Table(title="breach latency: publish → webhook received")
        for column in (
            "samples",
            "missing",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "load published/s",
            "load stored",
        ):
            table.add_column(column, justify="right")
        if latencies:
            ms = [x * 1000 for x in latencies]
            table.add_row(
                str(len(ms)),
                str(missing),
                f"{statistics.median(ms):.0f}",
                f"{percentile(ms, 95):.0f}",
                f"{percentile(ms, 99):.0f}",
                f"{max(ms):.0f}",
                f"{sent.value / (load_end - t0):,.0f}",
                f"{stored[0] if stored else 0:,}",
            )
        console.print(table)
        console.print(f"dead letters: {dead[0] if dead else 0}")
        console.print(
            f"background: {args.rate:,.0f} readings/s asked, {args.per_message} per "
            f"message, {args.publishers} publishers, {args.workers} ingest worker(s), "
            f"{args.stages} aggregation stage(s); logs in {logs}"
        )
        return 0 if latencies and not missing else 1
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        httpd.shutdown()
        broker.stop()
        postgres.stop()


if __name__ == "__main__":
    sys.exit(main())
