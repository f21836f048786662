"""End-to-end ingest benchmark: MQTT publish -> ingest worker -> committed rows.

Publishes N readings (default 200,000) through a broker to ``python -m ingest`` and measures
readings/s from the first publish to the moment ``SELECT count(*) FROM readings`` reaches N.
In the same run it measures the two limits the pipeline sits between:

* raw COPY: N rows COPYed (binary) straight into the ``readings`` hypertable;
* raw broker: the same messages (same payload shapes, same count) published through the same
  broker to a plain paho subscriber that only counts them (QoS 1, MQTT v5, auto-ack).

Both are reported next to the pipeline, as a share of the slower one. Publishing uses several
publisher processes, each with a small in-flight window, because one paho publisher is slower
than the subscriber side. With ``--profile`` one more pipeline run is recorded with py-spy (all
threads of the worker, wall-clock including waits) or pyinstrument (main thread only), and the
top frames are printed and saved.

The pipeline's figure is the commit path (readings stored, their station-days queued). The
aggregation stage (``python -m ingest.aggregation``, ``--stages`` processes) runs beside the
workers in every pipeline run, and its lag is reported: ``now() - the oldest queued change``
sampled every 0.5 s from the first publish until the queue is empty (p50, p99, max), and the
time from the publishers' last PUBACK (and from the last reading stored) to an empty queue.
One more run publishes the same readings paced at ``--rate`` readings/s (default 10,000): the
stage's lag at a steady rate rather than under a burst.

Run it from the project root:  .venv/bin/python bench/ingest.py --readings 200000

By default a private PostgreSQL+TimescaleDB and a private Mosquitto are started in a temporary
folder and stopped at the end. AIRWATER_DATABASE_URL / AIRWATER_MQTT_URL point the benchmark at
existing services instead; it then TRUNCATEs the readings, derived-level, queue and dead-letter
tables and registers its own stations, so it refuses to run against them without ``--yes``.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

# ``python bench/ingest.py`` puts bench/ first on sys.path, where this file would shadow the
# project's ``ingest`` package: look up the project root instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table  # noqa: E402

from bench.stage import (  # noqa: E402
    LAG_SAMPLE_S,
    LagSampler,
    percentile,
    record_rules,
    stage_processes,
)
from core.settings import MqttTarget  # noqa: E402
from storage.aggregation import STAGE_TABLES  # noqa: E402

console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

# Raw readings, everything the aggregation stage keeps, dead letters.
DATA_TABLES = ("readings", *STAGE_TABLES, "dead_letters")
CST = timezone(timedelta(hours=8))
PROBE_STATION = "BENCH-PROBE"
READINGS_TOPIC = "stations/{}/readings"
MAX_QUEUED = 20_000  # messages a publisher hands to paho ahead of its PUBACKs


# --------------------------------------------------------------------------------------------
# The workload: stations, hourly readings, MQTT messages
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """N pm25 readings spread over ``stations`` air stations, one per station and hour."""

    readings: int
    stations: int
    base: datetime  # first hour, UTC

    @property
    def station_ids(self) -> list[str]:
        return [f"BENCH-A{i:04d}" for i in range(self.stations)]

    def per_station(self) -> list[int]:
        q, r = divmod(self.readings, self.stations)
        return [q + (1 if i < r else 0) for i in range(self.stations)]

    def messages(self, k: int) -> int:
        return sum(math.ceil(n / k) for n in self.per_station())


def make_workload(readings: int, stations: int) -> Workload:
    hours = math.ceil(readings / stations)
    # Hourly timestamps in the past (a reading more than 10 min ahead is dead-lettered), on a
    # fixed grid so runs are comparable; further back only for very long runs.
    base = datetime(2025, 1, 1, tzinfo=UTC)
    latest_start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    latest_start -= timedelta(hours=hours + 48)
    return Workload(readings, stations, min(base, latest_start))


def value_of(station: int, hour: int) -> float:
    return round(5 + ((station * 7919 + hour * 104729) % 2000) / 20, 1)


def iso_hours(base: datetime, count: int) -> list[str]:
    """ISO 8601 texts in China Standard Time, as a station would send them."""
    return [(base + timedelta(hours=h)).astimezone(CST).isoformat() for h in range(count)]


def build_messages(
    workload: Workload, station_indexes: list[int], k: int
) -> list[tuple[str, bytes]]:
    """(topic, payload) of the given stations, ``k`` readings a message, interleaved by station
    in time order. k == 1 is the single-reading shape ``{"ts": …, "pm25": …}``, k > 1 the batch
    shape ``{"readings": [{"ts": …, "pm25": …}, …]}`` with k consecutive hours."""
    counts = workload.per_station()
    ids = workload.station_ids
    stamps = iso_hours(workload.base, max(counts))
    rounds = max(math.ceil(counts[i] / k) for i in station_indexes) if station_indexes else 0
    messages: list[tuple[str, bytes]] = []
    for chunk in range(rounds):
        for i in station_indexes:
            first = chunk * k
            last = min(first + k, counts[i])
            if first >= last:
                continue
            topic = READINGS_TOPIC.format(ids[i])
            if k == 1:
                document: Any = {"ts": stamps[first], "pm25": value_of(i, first)}
            else:
                document = {
                    "readings": [
                        {"ts": stamps[h], "pm25": value_of(i, h)} for h in range(first, last)
                    ]
                }
            messages.append((topic, orjson.dumps(document)))
    return messages


def reading_rows(workload: Workload) -> list[tuple[str, str, datetime, float, datetime]]:
    """The rows the pipeline would store, for the raw COPY and the writer-only run."""
    received_at = datetime.now(UTC)
    stamps = [workload.base + timedelta(hours=h) for h in range(max(workload.per_station()))]
    rows: list[tuple[str, str, datetime, float, datetime]] = []
    for i, (station_id, n) in enumerate(
        zip(workload.station_ids, workload.per_station(), strict=True)
    ):
        rows.extend((station_id, "pm25", stamps[h], value_of(i, h), received_at) for h in range(n))
    rows.sort(key=lambda r: r[2])  # arrival order: hour by hour
    return rows


# --------------------------------------------------------------------------------------------
# CPU accounting from /proc (seconds of CPU per component during a timed window)
# --------------------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def children_of(parent: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            pids.append(int(entry))
    return pids


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (from /proc/stat)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (sum(fields[:8]) - fields[3] - fields[4]) / _TICK


class CpuMeter:
    """CPU seconds used by named groups of processes between start() and stop(), and by
    everything else on the machine ("other processes": another job disturbs the figures)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.before: dict[str, dict[int, float]] = {}
        self.busy_before = 0.0
        self.busy = 0.0
        self.used: dict[str, float] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        return {name: {pid: proc_cpu(pid) for pid in pids()} for name, pids in self.groups.items()}

    def start(self) -> None:
        self.before = self._sample()
        self.busy_before = machine_busy()

    def stop(self) -> dict[str, float]:
        self.busy = machine_busy() - self.busy_before
        after = self._sample()
        self.used = {
            name: sum(cpu - self.before[name].get(pid, 0.0) for pid, cpu in after[name].items())
            for name in self.groups
        }
        return self.used

    def others(self, ours: dict[str, float]) -> float:
        """Busy CPU of the machine not accounted for by ``ours`` (the groups and whatever
        our children reported themselves)."""
        return max(0.0, self.busy - sum(ours.values()))


class TimingCursor(psycopg.Cursor):
    """A cursor that adds up the wall time of each statement, named by its target table;
    set as ``conn.cursor_factory`` to see where ``write_batch`` spends its time."""

    timings: ClassVar[dict[str, float]] = {}

    @staticmethod
    def _label(query: object) -> str:
        text = query if isinstance(query, str) else str(query)
        found = re.search(r"(COPY|INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", text)
        return " ".join(found.groups()) if found else " ".join(text.split())[:40]

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().execute(query, params, **kwargs)
        finally:
            label = self._label(query)
            self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - started

    @contextmanager
    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            with super().copy(statement, params, **kwargs) as copy:
                yield copy
        finally:
            label = self._label(statement) + " (with the client's row encoding)"
            self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# MQTT load generator and raw subscriber (separate processes)
# --------------------------------------------------------------------------------------------
def paho_client(client_id: str, auth: tuple[str | None, str | None]) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
    )
    if auth[0]:
        client.username_pw_set(auth[0], auth[1])
    return client


def _publisher_process(
    index: int,
    host: str,
    port: int,
    auth: tuple[str | None, str | None],
    workload: Workload,
    station_indexes: list[int],
    k: int,
    window: int,
    ready: Any,
    go: Any,
    results: Any,
    duration: float = 0.0,
) -> None:
    """Publish this process's share at QoS 1 with at most ``window`` messages in flight;
    ``duration`` > 0 paces it evenly over that many seconds (else as fast as it can)."""
    messages = build_messages(workload, station_indexes, k)
    per_s = len(messages) / duration if duration > 0 else 0.0
    client = paho_client(f"bench-pub-{os.getpid()}-{index}", auth)
    client.max_inflight_messages_set(window)  # paho queues the rest and sends on PUBACK
    client.max_queued_messages_set(0)
    connected = threading.Event()
    done = threading.Event()
    acked = 0

    def on_connect(*_: Any) -> None:
        connected.set()

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1
        if acked >= len(messages):
            done.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect(host, port, keepalive=60)
    client.loop_start()
    connected.wait(30)
    ready.put(index)
    go.wait()
    cpu0 = sum(os.times()[:2])
    started = time.time()
    for sent, (topic, payload) in enumerate(messages):
        # paho queues what exceeds the window; keep that queue well below the 65,535 message
        # ids (ids wrap and queued messages would overwrite each other). A plain counter
        # check: a semaphore per message costs a quarter of the publisher's rate.
        if sent - acked >= MAX_QUEUED:
            while sent - acked >= MAX_QUEUED // 2:
                time.sleep(0.001)
        if per_s:  # on an absolute schedule: a late wake-up is caught up, not carried over
            ahead = started + sent / per_s - time.time()
            if ahead > 0:
                time.sleep(ahead)
        client.publish(topic, payload, qos=1)
    ok = done.wait(timeout=1800) if messages else True
    finished = time.time()
    results.put(
        {
            "index": index,
            "start": started,
            "end": finished,
            "messages": acked,
            "cpu": sum(os.times()[:2]) - cpu0,
            "ok": ok,
        }
    )
    client.disconnect()
    client.loop_stop()


def _subscriber_process(
    host: str,
    port: int,
    auth: tuple[str | None, str | None],
    topic: str,
    count: Any,
    last: Any,
    ready: Any,
    stop: Any,
    results: Any,
) -> None:
    """Counts messages, nothing else (QoS 1, auto-ack, receive maximum 65535)."""
    client = paho_client(f"bench-raw-sub-{os.getpid()}", auth)
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = 65535

    def on_connect(c: mqtt.Client, *_: Any) -> None:
        c.subscribe(topic, qos=1)

    def on_subscribe(*_: Any) -> None:
        ready.set()

    def on_message(*_: Any) -> None:
        count.value += 1
        last.value = time.time()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(host, port, keepalive=60, clean_start=True, properties=props)
    cpu0 = sum(os.times()[:2])
    client.loop_start()
    stop.wait()
    results.put({"cpu": sum(os.times()[:2]) - cpu0})
    client.disconnect()
    client.loop_stop()


@dataclass
class PublishResult:
    started: float  # wall clock of the go signal
    publish_end: float  # last PUBACK of all publishers
    messages: int
    cpu: float
    ok: bool

    @property
    def seconds(self) -> float:
        return self.publish_end - self.started


class Publishers:
    """``--publishers`` processes, each with a slice of the stations, ready before ``go()``."""

    def __init__(self, ctx: Any, bench: Bench, k: int, rate: float = 0.0) -> None:
        """``rate`` > 0: all publishers together pace the workload at that many readings/s."""
        self.ctx = ctx
        self.ready = ctx.Queue()
        self.results = ctx.Queue()
        self.go_event = ctx.Event()
        n = bench.args.publishers
        target = bench.mqtt
        self.processes = [
            ctx.Process(
                target=_publisher_process,
                args=(
                    i,
                    target.host,
                    target.port,
                    (target.username, target.password),
                    bench.workload,
                    list(range(i, bench.workload.stations, n)),
                    k,
                    bench.args.window,
                    self.ready,
                    self.go_event,
                    self.results,
                    bench.workload.readings / rate if rate > 0 else 0.0,
                ),
                daemon=True,
            )
            for i in range(n)
        ]
        self.started_at = 0.0

    def __enter__(self) -> Publishers:
        for p in self.processes:
            p.start()
        for _ in self.processes:
            self.ready.get(timeout=120)
        return self

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def go(self) -> float:
        self.started_at = time.time()
        self.go_event.set()
        return self.started_at

    def collect(self) -> PublishResult:
        rows = [self.results.get(timeout=1800) for _ in self.processes]
        return PublishResult(
            started=self.started_at,
            publish_end=max(r["end"] for r in rows),
            messages=sum(r["messages"] for r in rows),
            cpu=sum(r["cpu"] for r in rows),
            ok=all(r["ok"] for r in rows),
        )

    def __exit__(self, exc_type: object, *exc: object) -> None:
        for p in self.processes:
            p.join(timeout=1 if exc_type else 30)
            if p.is_alive():
                p.kill()
                p.join()


# --------------------------------------------------------------------------------------------
# The aggregation stage's lag
# --------------------------------------------------------------------------------------------
@dataclass
class StageLag:
    """The stage's lag during one pipeline run: ``now() - oldest queued change`` every
    LAG_SAMPLE_S from the first publish until the queue was empty (0 while it was empty)."""

    samples: list[float]  # seconds
    most_queued: int  # queue rows at the fullest sample
    after_publish: float | None  # s from the publishers' last PUBACK to an empty queue
    after_stored: float | None  # s from the last reading stored to an empty queue
    cpu: float  # CPU seconds of the stage process(es) from the first publish to the end

    def pct(self, p: float) -> float:
        return percentile(self.samples, p)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class Figure:
    name: str
    readings: int
    seconds: float
    messages: int | None = None
    note: str = ""
    cpu: dict[str, float] = field(default_factory=dict)
    publish: PublishResult | None = None
    kind: str = ""  # "copy", "broker", "pipeline" for the verdict; "paced", "profiled"
    k: int = 0
    lag: StageLag | None = None
    rate_offered: float = 0.0  # readings/s the publishers were paced at (0: unpaced)

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds > 0 else float("nan")

    @property
    def message_rate(self) -> float | None:
        if self.messages is None or self.seconds <= 0:
            return None
        return self.messages / self.seconds


def cpu_text(cpu: dict[str, float], seconds: float) -> str:
    """CPU of each component as a share of one core over the window."""
    parts = [
        f"{name} {100 * used / seconds:.0f}%" for name, used in cpu.items() if used > 0.05 * seconds
    ]
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workload = make_workload(args.readings, args.stations)
        self.figures: list[Figure] = []
        self.stack = ExitStack()
        self.database_url = ""
        self.mqtt_url = ""
        self.postmaster_pid: int | None = None
        self.broker_pid: int | None = None
        self.out_dir = Path(args.out_dir).resolve()
        self.ctx = mp.get_context("spawn")
        self.run_id = f"{os.getpid()}"
        self.profile_summary = ""
        self.writer_steps: dict[int, tuple[float, dict[str, float]]] = {}
        self.notes: list[str] = []

    @property
    def mqtt(self) -> MqttTarget:
        return MqttTarget(self.mqtt_url)

    # --- services ------------------------------------------------------------------------
    def start_services(self) -> None:
        from airwater.embedded import MosquittoServer, PostgresServer

        env_db = os.environ.get("AIRWATER_DATABASE_URL")
        env_mqtt = os.environ.get("AIRWATER_MQTT_URL")
        if (env_db or env_mqtt) and not self.args.yes:
            raise SystemExit(
                "AIRWATER_DATABASE_URL/AIRWATER_MQTT_URL are set: the benchmark would TRUNCATE "
                f"{', '.join(DATA_TABLES)} there. Pass --yes to allow it, or unset them to use "
                "private services."
            )
        workdir = Path(tempfile.mkdtemp(prefix="airwater-bench-"))
        if not self.args.keep:
            self.stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if env_db:
            self.database_url = env_db
        else:
            pg = PostgresServer(workdir / "postgres")
            with console.status("starting a private PostgreSQL+TimescaleDB"):
                pg.start()
            self.stack.callback(pg.stop, "fast")
            self.database_url = pg.url
            pid_file = pg.pgdata / "postmaster.pid"
            self.postmaster_pid = int(pid_file.read_text().split()[0])
        if env_mqtt:
            self.mqtt_url = env_mqtt
        else:
            broker = MosquittoServer(workdir / "mosquitto")
            broker.start()
            self.stack.callback(broker.stop)
            self.mqtt_url = broker.url
            assert broker.process is not None
            self.broker_pid = broker.process.pid
        console.print(f"database {self.database_url}\nbroker   {self.mqtt_url}\nwork dir {workdir}")

    def prepare_database(self) -> None:
        from schemas.stations import Station
        from storage.migrate import migrate
        from storage.stations import upsert_stations

        with psycopg.connect(self.database_url) as conn:
            migrate(conn)
            stations = [
                Station(station_id=sid, name=f"bench station {i}", kind="air")
                for i, sid in enumerate([*self.workload.station_ids, PROBE_STATION])
            ]
            upsert_stations(conn, stations)
        self.truncate()
        # after the TRUNCATE: a stage finding other rules queues every station, now empty
        record_rules(self.database_url)

    def truncate(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(DATA_TABLES)}")

    def cpu_groups(
        self, worker_pids: list[int] | None = None, stage_pids: list[int] | None = None
    ) -> dict[str, Callable[[], list[int]]]:
        groups: dict[str, Callable[[], list[int]]] = {}
        if worker_pids:
            groups["worker"] = lambda: list(worker_pids)
        if stage_pids:
            groups["aggregation"] = lambda: list(stage_pids)
        if self.broker_pid is not None:
            pid = self.broker_pid
            groups["mosquitto"] = lambda: [pid]
        if self.postmaster_pid is not None:
            pm = self.postmaster_pid
            groups["postgres"] = lambda: [pm, *children_of(pm)]
        groups["bench"] = lambda: [os.getpid()]
        return groups

    def progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>12}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )

    # --- limit A: raw COPY ---------------------------------------------------------------
    def raw_copy(self) -> None:
        rows = reading_rows(self.workload)
        self.truncate()
        meter = CpuMeter(self.cpu_groups())
        with psycopg.connect(self.database_url) as conn, self.progress() as bar:
            task = bar.add_task("raw COPY into readings", total=len(rows), rate="")
            meter.start()
            started = time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY readings (station_id, parameter, ts, value, received_at)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["text", "text", "timestamptz", "float8", "timestamptz"])
                for n, row in enumerate(rows, 1):
                    copy.write_row(row)
                    if n % 20000 == 0:
                        bar.update(task, completed=n)
            conn.commit()
            seconds = time.perf_counter() - started
            cpu = meter.stop()
            cpu["other processes"] = meter.others(cpu)
            bar.update(task, completed=len(rows), rate=f"{len(rows) / seconds:,.0f}/s")
            stored = conn.execute("SELECT count(*) FROM readings").fetchone()
        assert stored is not None and stored[0] == len(rows), stored
        self.figures.append(
            Figure(
                "A. raw COPY into readings",
                len(rows),
                seconds,
                note="one binary COPY + COMMIT",
                cpu=cpu,
                kind="copy",
            )
        )
        self.truncate()

    # --- components without MQTT (for the where-does-the-time-go section) ----------------
    def writer_only(self, k: int) -> None:
        from storage.writer import prepare_connection, write_batch

        rows = reading_rows(self.workload)
        size = self.args.batch_messages * k
        self.truncate()
        TimingCursor.timings.clear()
        with psycopg.connect(self.database_url) as conn, self.progress() as bar:
            prepare_connection(conn)
            conn.cursor_factory = TimingCursor
            task = bar.add_task(
                f"write_batch only ({size:,}-row batches)", total=len(rows), rate=""
            )
            started = time.perf_counter()
            for first in range(0, len(rows), size):
                write_batch(conn, rows[first : first + size])
                bar.update(task, completed=min(first + size, len(rows)))
            seconds = time.perf_counter() - started
            bar.update(task, rate=f"{len(rows) / seconds:,.0f}/s")
        steps = dict(TimingCursor.timings)
        steps["COMMIT and Python between statements"] = seconds - sum(steps.values())
        self.writer_steps[size] = (seconds, steps)
        self.figures.append(
            Figure(
                f"   storage.writer.write_batch, {size:,}-row batches",
                len(rows),
                seconds,
                note="no MQTT: COPY to staging, INSERT … ON CONFLICT + queue, commit",
            )
        )
        self.truncate()

    def validator_only(self, k: int) -> None:
        from zoneinfo import ZoneInfo

        from ingest.validate import Outcome, StationDirectory, StationInfo, Validator

        tz = ZoneInfo("Asia/Shanghai")
        infos = {sid: StationInfo(sid, tz, "air", None, True) for sid in self.workload.station_ids}
        validator = Validator(StationDirectory(lambda: infos))
        messages = build_messages(self.workload, list(range(self.workload.stations)), k)
        batch = self.args.batch_messages
        readings = 0
        started = time.perf_counter()
        for first in range(0, len(messages), batch):
            outcome = Outcome()
            for topic, payload in messages[first : first + batch]:
                validator.add_message(
                    outcome, topic, payload, datetime.fromtimestamp(time.time(), tz=UTC)
                )
            readings += len(outcome.readings)
        seconds = time.perf_counter() - started
        assert readings == self.workload.readings, readings
        self.figures.append(
            Figure(
                f"   ingest.validate.Validator, {k} reading(s)/message",
                readings,
                seconds,
                messages=len(messages),
                note="no MQTT, no database: parse + validate only",
            )
        )

    # --- limit B: raw broker -------------------------------------------------------------
    def raw_broker(self, k: int) -> None:
        expected = self.workload.messages(k)
        ctx = self.ctx
        count = ctx.Value("q", 0, lock=False)
        last = ctx.Value("d", 0.0, lock=False)
        ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
        target = self.mqtt
        topic = f"$share/bench-raw-{self.run_id}/stations/+/readings"
        subscriber = ctx.Process(
            target=_subscriber_process,
            args=(
                target.host,
                target.port,
                (target.username, target.password),
                topic,
                count,
                last,
                ready,
                stop,
                results,
            ),
            daemon=True,
        )
        subscriber.start()
        try:
            if not ready.wait(60):
                raise RuntimeError("the raw subscriber did not subscribe")
            with Publishers(ctx, self, k) as pubs, self.progress() as bar:
                meter = CpuMeter(self.cpu_groups())
                task = bar.add_task(f"B. raw broker, {k}/message", total=expected, rate="")
                meter.start()
                t0 = pubs.go()
                deadline = time.monotonic() + self.args.timeout
                while count.value < expected and time.monotonic() < deadline:
                    time.sleep(0.1)
                    n = count.value
                    bar.update(task, completed=n, rate=f"{n / (time.time() - t0):,.0f} msg/s")
                cpu = meter.stop()
                published = pubs.collect()
            received = count.value
            seconds = last.value - t0
        finally:
            stop.set()
            sub_cpu = results.get(timeout=30)["cpu"] if subscriber.is_alive() else 0.0
            subscriber.join(timeout=30)
            if subscriber.is_alive():
                subscriber.kill()
        cpu = {"subscriber": sub_cpu, **cpu, "publishers": published.cpu}
        cpu["other processes"] = meter.others(cpu)
        note = "" if received == expected else f"INCOMPLETE: {received:,} of {expected:,}"
        self.figures.append(
            Figure(
                f"B. raw broker, {k} reading(s)/message",
                self.workload.readings * received // expected,
                seconds,
                messages=received,
                note=note,
                cpu=cpu,
                publish=published,
                kind="broker",
                k=k,
            )
        )

    def publish_only(self, k: int) -> None:
        """The load generator against the broker with no subscriber: its own ceiling."""
        expected = self.workload.messages(k)
        with Publishers(self.ctx, self, k) as pubs, self.progress() as bar:
            task = bar.add_task(f"publishers alone, {k}/message", total=1, rate="")
            meter = CpuMeter(self.cpu_groups())
            meter.start()
            pubs.go()
            published = pubs.collect()
            cpu = meter.stop()
            cpu["publishers"] = published.cpu
            cpu["other processes"] = meter.others(cpu)
            bar.update(task, completed=1, rate=f"{published.messages / published.seconds:,.0f}/s")
        self.figures.append(
            Figure(
                f"   publishers alone, {k} reading(s)/message",
                self.workload.readings * published.messages // expected,
                published.seconds,
                messages=published.messages,
                note=f"{self.args.publishers} processes, window {self.args.window}, no subscriber",
                cpu=cpu,
                publish=published,
            )
        )

    # --- the pipeline --------------------------------------------------------------------
    def worker_env(self, client_id: str, group: str) -> dict[str, str]:
        return {
            **os.environ,
            "AIRWATER_DATABASE_URL": self.database_url,
            "AIRWATER_MQTT_URL": self.mqtt_url,
            "AIRWATER_METRICS_PORT": "0",
            "AIRWATER_INGEST_CLIENT_ID": client_id,
            "AIRWATER_INGEST_SHARE_GROUP": group,
            "AIRWATER_INGEST_BATCH_MESSAGES": str(self.args.batch_messages),
            "AIRWATER_INGEST_BATCH_MS": str(self.args.batch_ms),
        }

    def start_worker(
        self, client_id: str, group: str, log_path: Path, pyinstrument_out: Path | None
    ) -> subprocess.Popen:
        command = [sys.executable, "-m", "ingest"]
        if pyinstrument_out is not None:
            command = [
                *(sys.executable, "-m", "pyinstrument", "--renderer", "text", "--no-color"),
                *("-o", str(pyinstrument_out), "-m", "ingest"),
            ]
        with open(log_path, "wb") as log:
            return subprocess.Popen(
                command,
                env=self.worker_env(client_id, group),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_until_consuming(self, workers: list[subprocess.Popen], logs: list[Path]) -> None:
        """Every worker has subscribed; then probe readings (year 2000) are published until
        one is stored, and removed."""
        deadline = time.monotonic() + 60
        while not all("subscribing to" in log.read_text(errors="replace") for log in logs):
            for w in workers:
                if w.poll() is not None:
                    raise RuntimeError(f"an ingest worker exited ({w.returncode}); see {logs}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the ingest workers did not connect within 60 s; see {logs}")
            time.sleep(0.1)
        target = self.mqtt
        client = paho_client(f"bench-probe-{self.run_id}", (target.username, target.password))
        client.connect(target.host, target.port)
        client.loop_start()
        try:
            ts = 946684800
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                while True:
                    ts += 3600
                    info = client.publish(
                        READINGS_TOPIC.format(PROBE_STATION),
                        orjson.dumps({"ts": ts, "pm25": 1.0}),
                        qos=1,
                    )
                    info.wait_for_publish(10)
                    time.sleep(0.3)
                    row = conn.execute("SELECT count(*) FROM readings").fetchone()
                    if row and row[0] > 0:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("the ingest worker did not consume within 60 s")
                time.sleep(self.args.batch_ms / 1000 + 0.5)  # let the last probes land
                conn.execute(f"TRUNCATE {', '.join(DATA_TABLES)}")
        finally:
            client.disconnect()
            client.loop_stop()

    def stop_workers(self, workers: list[subprocess.Popen], client_ids: list[str]) -> None:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=120)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        # Workers keep persistent sessions; drop them so the broker stops queueing for them.
        target = self.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        for client_id in client_ids:
            client = paho_client(client_id, (target.username, target.password))
            with suppress(OSError):
                client.connect(target.host, target.port, clean_start=True, properties=props)
                client.loop_start()
                time.sleep(0.2)
                client.disconnect()
                client.loop_stop()

    @contextmanager
    def workers(self, label: str, pyinstrument: bool = False) -> Iterator[list[subprocess.Popen]]:
        count = self.args.workers
        group = f"bench-{label}-{self.run_id}"
        client_ids = [f"bench-ingest-{label}-{self.run_id}-{i}" for i in range(count)]
        logs = [self.out_dir / f"worker-{label}-{i}.log" for i in range(count)]
        procs: list[subprocess.Popen] = []
        try:
            for i, (client_id, log) in enumerate(zip(client_ids, logs, strict=True)):
                out = self.out_dir / f"profile-{label}.txt" if pyinstrument and i == 0 else None
                procs.append(self.start_worker(client_id, group, log, out))
            with console.status(f"starting {count} ingest worker(s) ({label})"):
                self.wait_until_consuming(procs, logs)
            yield procs
        finally:
            self.stop_workers(procs, client_ids)

    def start_py_spy(self, pid: int, out: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                *("record", "--pid", str(pid), "--format", "raw", "--threads", "--idle"),
                *("--nonblocking", "--rate", str(self.args.profile_rate), "-o", str(out)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop_py_spy(self, spy: subprocess.Popen) -> None:
        spy.send_signal(signal.SIGINT)
        try:
            _, err = spy.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        if spy.returncode not in (0, -signal.SIGINT):
            console.print(f"[yellow]py-spy: {err.decode(errors='replace')[-500:]}")

    def wait_until_drained(self, conn: psycopg.Connection, bar: Progress) -> float | None:
        """Wall clock at which the aggregation queue was first seen empty (polled every
        0.1 s), None if it was not empty within ``--timeout``."""
        from storage.aggregation import pending

        queued = most = pending(conn)[1]
        task = bar.add_task("aggregation queue drained", total=max(most, 1), rate="")
        deadline = time.monotonic() + self.args.timeout
        while queued and time.monotonic() < deadline:
            time.sleep(0.1)
            queued = pending(conn)[1]
            most = max(most, queued)
            bar.update(task, total=most, completed=most - queued)
        bar.update(task, completed=max(most, 1), rate="" if queued else "empty")
        return None if queued else time.time()

    def pipeline(self, k: int, profiler: str | None = None, rate: float = 0.0) -> None:
        """Publish the workload through ``python -m ingest`` (with the aggregation stages
        running) until every reading is stored; ``rate`` > 0 paces the publishers."""
        label = (
            f"k{k}" + (f"-{profiler}" if profiler else "") + (f"-rate{rate:.0f}" if rate else "")
        )
        total = self.workload.readings
        raw_profile = self.out_dir / f"profile-{label}.raw.txt"
        self.truncate()
        spy: subprocess.Popen | None = None
        lag: StageLag | None = None
        with (
            self.workers(label, pyinstrument=profiler == "pyinstrument") as procs,
            stage_processes(
                self.database_url, self.args.stages, self.out_dir, label
            ) as stage_procs,
            Publishers(self.ctx, self, k, rate) as pubs,
            psycopg.connect(self.database_url, autocommit=True) as conn,
        ):
            if profiler == "py-spy":
                # attached only now, so the profile covers little besides the measured run
                spy = self.start_py_spy(procs[0].pid, raw_profile)
                time.sleep(0.5)
            stage_pids = [p.pid for p in stage_procs]
            with self.progress() as bar:
                meter = CpuMeter(self.cpu_groups([p.pid for p in procs], stage_pids))
                stage_meter = CpuMeter({"aggregation": lambda: list(stage_pids)})
                sampler = LagSampler(self.database_url) if stage_procs else None
                name = "pipeline" + (f" ({profiler})" if profiler else "")
                if rate:
                    name += f" at {rate:,.0f}/s"
                task = bar.add_task(f"{name}, {k}/message", total=total, rate="")
                meter.start()
                stage_meter.start()
                t0 = pubs.go()
                if sampler is not None:
                    sampler.start()
                deadline = time.monotonic() + self.args.timeout + (total / rate if rate else 0)
                stored = 0
                while stored < total and time.monotonic() < deadline:
                    time.sleep(0.1)
                    row = conn.execute("SELECT count(*) FROM readings").fetchone()
                    stored = int(row[0]) if row else 0
                    bar.update(task, completed=stored, rate=f"{stored / (time.time() - t0):,.0f}/s")
                    if any(p.poll() is not None for p in procs):
                        break
                end = time.time()
                cpu = meter.stop()
                drained_at = self.wait_until_drained(conn, bar) if sampler is not None else None
                stage_cpu = stage_meter.stop()["aggregation"]
                if sampler is not None:
                    sampler.stop()
            if spy is not None:
                self.stop_py_spy(spy)
            published = pubs.collect()
            dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
            if sampler is not None:
                if sampler.error is not None:
                    self.notes.append(f"{label}: the lag sampler failed: {sampler.error!r}")
                lag = StageLag(
                    samples=sampler.samples,
                    most_queued=sampler.most_queued,
                    after_publish=None
                    if drained_at is None
                    else max(0.0, drained_at - published.publish_end),
                    after_stored=None if drained_at is None else max(0.0, drained_at - end),
                    cpu=stage_cpu,
                )
                if any(p.poll() is not None for p in stage_procs):
                    self.notes.append(f"{label}: an aggregation stage exited during the run")
        notes = []
        if stored != total:
            notes.append(f"INCOMPLETE: {stored:,} of {total:,}")
        if dead and dead[0]:
            notes.append(f"{dead[0]} dead letters")
        notes.append(f"publishers done after {published.seconds:.1f} s")
        if lag is not None and lag.after_stored is None:
            notes.append(f"aggregation queue not empty within {self.args.timeout:.0f} s")
        workers = f", {self.args.workers} workers" if self.args.workers > 1 else ""
        paced = f", paced at {rate:,.0f} readings/s" if rate else ""
        self.figures.append(
            Figure(
                f"C. pipeline, {k} reading(s)/message{workers}{paced}"
                + (f" under {profiler}" if profiler else ""),
                stored,
                end - t0,
                messages=self.workload.messages(k) if stored == total else None,
                note="; ".join(notes),
                cpu={
                    **cpu,
                    "publishers": published.cpu,
                    "other processes": meter.others({**cpu, "publishers": published.cpu}),
                },
                publish=published,
                kind="profiled" if profiler else ("paced" if rate else "pipeline"),
                k=k,
                lag=lag,
                rate_offered=rate,
            )
        )
        if profiler == "py-spy" and raw_profile.exists():
            summary = summarise_py_spy(raw_profile.read_text(), self.args.profile_top)
            (self.out_dir / f"profile-{label}.summary.txt").write_text(summary)
            self.profile_summary = summary
        elif profiler == "pyinstrument":
            out = self.out_dir / f"profile-{label}.txt"
            if out.exists():
                self.profile_summary = out.read_text()
        self.truncate()

    # --- report --------------------------------------------------------------------------
    def report(self) -> None:
        table = Table(title=f"airwater ingest benchmark — {self.workload.readings:,} readings")
        table.add_column("figure")
        table.add_column("readings/s", justify="right")
        table.add_column("messages/s", justify="right")
        table.add_column("seconds", justify="right")
        table.add_column("CPU (share of one core) / notes")
        for f in self.figures:
            mrate = f.message_rate
            extra = cpu_text(f.cpu, f.seconds)
            if f.publish is not None and not f.name.lstrip().startswith("publishers"):
                extra = (extra + "; " if extra else "") + (
                    f"publishers {f.publish.messages / f.publish.seconds:,.0f} msg/s"
                )
            table.add_row(
                f.name,
                f"{f.rate:,.0f}",
                "" if mrate is None else f"{mrate:,.0f}",
                f"{f.seconds:.2f}",
                "; ".join(x for x in (extra, f.note) if x),
            )
        console.print(table)

        copy = next((f for f in self.figures if f.kind == "copy"), None)
        verdict = Table(title="pipeline against the slower limit (aim ≥ 50 %)")
        for column in ("readings/message", "pipeline", "raw COPY", "raw broker", "slower", "share"):
            verdict.add_column(column, justify="right")
        for k in self.args.readings_per_message:
            pipe = next((f for f in self.figures if f.kind == "pipeline" and f.k == k), None)
            broker = next((f for f in self.figures if f.kind == "broker" and f.k == k), None)
            limits = [f.rate for f in (copy, broker) if f is not None]
            if pipe is None or not limits:
                continue
            slower = min(limits)
            share = 100 * pipe.rate / slower
            verdict.add_row(
                str(k),
                f"{pipe.rate:,.0f}",
                f"{copy.rate:,.0f}" if copy else "-",
                f"{broker.rate:,.0f}" if broker else "-",
                f"{slower:,.0f}",
                f"[{'green' if share >= 50 else 'red'}]{share:.0f} %",
            )
        console.print(verdict)
        self.report_lag()
        disturbed = [
            f"{f.name.strip()} ({100 * f.cpu['other processes'] / f.seconds:.0f}%)"
            for f in self.figures
            if f.seconds > 0 and f.cpu.get("other processes", 0.0) > 0.15 * f.seconds
        ]
        if disturbed:
            console.print(
                "[yellow]Other processes on this machine used more than 15 % of a core during: "
                + "; ".join(disturbed)
                + ". Those figures are low; run again on a quiet machine."
            )
        else:
            console.print("Other processes used less than 15 % of a core during every run.")
        for size, (seconds, steps) in self.writer_steps.items():
            steps_table = Table(title=f"where write_batch spends its time ({size:,}-row batches)")
            steps_table.add_column("step")
            steps_table.add_column("seconds", justify="right")
            steps_table.add_column("share", justify="right")
            for step, used in sorted(steps.items(), key=lambda item: -item[1]):
                steps_table.add_row(step, f"{used:.2f}", f"{100 * used / seconds:.0f} %")
            console.print(steps_table)
        if self.profile_summary:
            console.print(self.profile_summary)
        for note in self.notes:
            console.print(f"[yellow]{note}")
        console.print(f"logs and profiles in {self.out_dir}")

    def report_lag(self) -> None:
        runs = [f for f in self.figures if f.lag is not None]
        if not runs:
            if self.args.stages == 0:
                console.print("No aggregation stage ran (--stages 0): commit path only.")
            return
        table = Table(
            title=f"aggregation stage lag ({self.args.stages} stage(s)): now − oldest queued "
            f"change, every {LAG_SAMPLE_S:g} s from the first publish until the queue is empty"
        )
        for column in ("run", "offered", "stored readings/s", "samples", "lag p50", "lag p99",
                       "lag max", "most queued", "empty after last PUBACK",
                       "empty after last stored", "stage process CPU"):  # fmt: skip
            table.add_column(column, justify="left" if column == "run" else "right")

        def seconds(value: float | None) -> str:
            return "not empty" if value is None else f"{value:.2f} s"

        for f in runs:
            lag = f.lag
            assert lag is not None
            span = f.seconds + (lag.after_stored or 0.0)
            table.add_row(
                f"{f.k}/message" + (" (profiled)" if f.kind == "profiled" else ""),
                f"{f.rate_offered:,.0f}/s" if f.rate_offered else "unpaced",
                f"{f.rate:,.0f}",
                str(len(lag.samples)),
                f"{lag.pct(50):.2f} s" if lag.samples else "–",
                f"{lag.pct(99):.2f} s" if lag.samples else "–",
                f"{max(lag.samples):.2f} s" if lag.samples else "–",
                f"{lag.most_queued:,}",
                seconds(lag.after_publish),
                seconds(lag.after_stored),
                f"{100 * lag.cpu / span:.0f} %" if span > 0 else "",
            )
        console.print(table)


# --------------------------------------------------------------------------------------------
# py-spy raw output -> top frames per thread
# --------------------------------------------------------------------------------------------
PROJECT_DIRS = ("ingest/", "storage/", "schemas/", "standards/")
IDLE_LEAVES = ("wait (threading.py", "select (selectors.py", "_wait_for_tstate_lock")


def _frame_function(frame: str) -> str:
    """'name (file.py:12)' -> 'name (file.py)'."""
    if frame.endswith(")") and ":" in frame:
        return frame[: frame.rfind(":")] + ")"
    return frame


def _thread_role(stack: list[str]) -> str:
    text = ";".join(stack)
    if "_thread_main" in text or "loop_forever" in text:
        return "paho network thread (receive, on_message, acks out)"
    if "run (ingest/worker.py" in text or "main (ingest/__main__.py" in text:
        return "main thread (collect, validate, write, ack)"
    return "other threads"


def summarise_py_spy(raw: str, top: int = 15) -> str:
    """Top frames of a ``py-spy record --format raw --threads --idle`` capture, per thread:
    self time by function and inclusive time of the project's own lines."""
    per_role: dict[str, dict[str, Counter[str]]] = defaultdict(
        lambda: {"self": Counter(), "incl": Counter(), "total": Counter()}
    )
    for line in raw.splitlines():
        stack_text, _, number = line.rpartition(" ")
        if not stack_text or not number.isdigit():
            continue
        frames = [f for f in stack_text.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        count = int(number)
        role = _thread_role(frames)
        data = per_role[role]
        data["total"]["all"] += count
        data["self"][_frame_function(frames[-1])] += count
        for frame in set(frames):
            if frame.split("(", 1)[-1].startswith(PROJECT_DIRS):
                data["incl"][frame] += count
    lines = ["py-spy profile of the ingest worker (wall clock, idle included)", ""]
    for role in sorted(per_role, key=lambda r: -per_role[r]["total"]["all"]):
        data = per_role[role]
        total = data["total"]["all"]
        idle = sum(n for name, n in data["self"].items() if any(i in name for i in IDLE_LEAVES))
        if idle >= 0.99 * total:
            lines.append(f"## {role}: {total} samples, all idle (waiting)\n")
            continue
        lines.append(f"## {role}: {total} samples")
        lines.append("self time by function:")
        for name, n in data["self"].most_common(top):
            lines.append(f"  {100 * n / total:5.1f} %  {name}")
        lines.append("inclusive time of project lines:")
        for name, n in data["incl"].most_common(top):
            lines.append(f"  {100 * n / total:5.1f} %  {name}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/ingest.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Figures: A = raw COPY limit, B = raw broker limit (publish -> plain subscriber), "
        "C = pipeline (publish -> python -m ingest -> committed, the aggregation stage running "
        "beside it; its lag in a table of its own). Indented rows are components measured "
        "without the rest, to show where the time goes.",
    )
    parser.add_argument("--readings", type=int, default=200_000, help="N (default 200,000)")
    parser.add_argument("--stations", type=int, default=100, help="air stations (default 100)")
    parser.add_argument(
        "--readings-per-message",
        type=int,
        nargs="+",
        default=[10, 1],
        metavar="K",
        help="payload sizes to run, readings per MQTT message (default: 10 1)",
    )
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes (default 2)")
    parser.add_argument(
        "--window", type=int, default=50, help="QoS-1 in-flight window per publisher (default 50)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="ingest worker processes on the shared subscription (default 1)",
    )
    parser.add_argument(
        "--batch-messages", type=int, default=1000, help="worker batch size (default 1000)"
    )
    parser.add_argument("--batch-ms", type=int, default=200, help="worker batch time (default 200)")
    parser.add_argument(
        "--stages",
        type=int,
        default=1,
        help="aggregation stage processes running during every pipeline run (default 1; "
        "0 = commit path only, no lag figures)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[10_000],
        metavar="R",
        help="paced pipeline runs: the publishers spread the N readings evenly at R "
        "readings/s, with the first K (default: 10000; skip with --skip paced)",
    )
    parser.add_argument(
        "--profile",
        choices=["py-spy", "pyinstrument", "none"],
        default="py-spy"
        if shutil.which("py-spy", path=str(Path(sys.executable).parent))
        else "none",
        help="profile one extra pipeline run of the first K (default: py-spy when installed "
        "in this environment)",
    )
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples/s")
    parser.add_argument("--profile-top", type=int, default=15, help="frames listed per thread")
    parser.add_argument(
        "--skip",
        nargs="+",
        default=[],
        choices=["copy", "broker", "pipeline", "paced", "components", "publishers"],
        help="parts to leave out",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run (default 600)")
    parser.add_argument(
        "--out-dir",
        default=str(ROOT / "data" / "bench"),
        help="worker logs and profiles (default data/bench)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the private services' folder")
    parser.add_argument(
        "--yes", action="store_true", help="allow TRUNCATE on services named by AIRWATER_* URLs"
    )
    args = parser.parse_args(argv)
    if min(args.readings, args.stations, args.publishers, args.window, args.workers) < 1:
        parser.error("--readings, --stations, --publishers, --window, --workers must be positive")
    if args.stages < 0 or any(r <= 0 for r in args.rate):
        parser.error("--stages must be ≥ 0 and --rate positive")
    if any(k < 1 for k in args.readings_per_message):
        parser.error("--readings-per-message must be positive")
    return args


def code_state() -> str:
    """The commit benchmarked, and which files of the measured path differ from it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown commit"
    dirty = git("status", "--porcelain", "--", "ingest", "storage", "schemas", "standards")
    changed = [line[3:] for line in dirty.splitlines() if line.strip()]
    return commit + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    bench.out_dir.mkdir(parents=True, exist_ok=True)
    console.print(
        f"airwater ingest benchmark: {args.readings:,} readings, {args.stations} stations, "
        f"{args.stages} aggregation stage(s), {os.cpu_count()} CPUs, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    console.print(f"code: {code_state()}")
    with bench.stack:
        bench.start_services()
        bench.prepare_database()
        if "copy" not in args.skip:
            bench.raw_copy()
        for k in args.readings_per_message:
            if "publishers" not in args.skip:
                bench.publish_only(k)
            if "broker" not in args.skip:
                bench.raw_broker(k)
            if "components" not in args.skip:
                bench.validator_only(k)
                bench.writer_only(k)
            if "pipeline" not in args.skip:
                bench.pipeline(k)
        if "paced" not in args.skip:
            for rate in args.rate:
                bench.pipeline(args.readings_per_message[0], rate=rate)
        if args.profile != "none" and "pipeline" not in args.skip:
            bench.pipeline(args.readings_per_message[0], profiler=args.profile)
        bench.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
