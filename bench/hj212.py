"""HJ 212-2017 gateway benchmark: uploads per second and connections held.

The gateway (``python -m ingest.hj212``) runs as a subprocess against a private
PostgreSQL+TimescaleDB (started like ``bench/ingest.py`` does), with ``--stations`` air
stations that each have an MN and a password. An asyncio client then measures:

1. uploads per second: ``--concurrency`` station connections, each sending hourly uploads
   (CN=2061, the six air pollutants, consecutive hours) and waiting for each 9014 data
   response before the next, as a data logger does; then the same with each station sending
   ``--pipeline`` uploads without waiting and reading their replies after. Uploads/s,
   readings/s and reply latency (p50/p95/p99, from the write of an upload to its reply).
2. connections held: ``--active`` stations upload lock-step on a quiet gateway, then
   ``--idle`` idle TCP connections are opened and held, and the same stations upload again
   while they are held; the gateway's RSS (``/proc/<pid>/status``) and open sockets before,
   while held and after they are closed. The benchmark raises its RLIMIT_NOFILE soft limit to
   the hard limit first (the gateway inherits it) and says if that caps ``--idle``.
3. the check: every answered upload is stored exactly once (readings counted per station),
   nothing unanswered, no dead letter, and the gateway's own count of stored uploads agrees.

CPU used by the gateway, PostgreSQL, this client and everything else on the machine is
measured per phase (``bench.ingest.CpuMeter``); the load average is printed at both ends.

Run from the project root:  .venv/bin/python -m bench.hj212 [--stations 200 --idle 5000]

AIRWATER_DATABASE_URL points the benchmark at an existing database instead; it TRUNCATEs the
readings, derived-level, queue and dead-letter tables there, so it refuses without ``--yes``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

# ``python bench/hj212.py`` puts bench/ first on sys.path, where bench/ingest.py would shadow
# the project's ``ingest`` package: look up the project root instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.ingest import DATA_TABLES, CpuMeter, children_of, code_state  # noqa: E402
from bench.stage import percentile  # noqa: E402
from core.hj212_secret import hash_password, new_password  # noqa: E402
from standards import hj212  # noqa: E402

# The six air pollutants of an hourly upload: factor code → a base value in its unit.
POLLUTANTS = {
    "a34004": 35.0,  # PM2.5 µg/m3
    "a34002": 60.0,  # PM10 µg/m3
    "a21026": 8.0,  # SO2 µg/m3
    "a21004": 30.0,  # NO2 µg/m3
    "a21005": 0.8,  # CO mg/m3
    "a05024": 90.0,  # O3 µg/m3
}
STATION_PREFIX = "BENCH-HJ"
FIRST_HOUR = datetime(2025, 1, 1, 0, 0)  # DataTime of every station's first upload (local)
REPLY_TIMEOUT_S = 60.0  # an upload unanswered this long counts as unanswered
CONNECT_WINDOW = 100  # idle connections being opened at once (the gateway's backlog is 100)
FD_MARGIN = 256  # descriptors kept free for everything else (database, log, client)


# --------------------------------------------------------------------------------------------
# Stations and frames
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchStation:
    index: int
    station_id: str
    mn: str
    password: str


def make_stations(n: int) -> list[BenchStation]:
    return [
        BenchStation(i, f"{STATION_PREFIX}{i:05d}", f"BENCHMN{i:05d}", new_password())
        for i in range(n)
    ]


def value_of(code: str, station: int, hour: int) -> float:
    base = POLLUTANTS[code]
    return round(base * (0.5 + ((station * 7919 + hour * 104729) % 1000) / 1000), 3)


def upload_frame(station: BenchStation, hour: int) -> tuple[str, bytes]:
    """(QN, frame) of one hourly upload (CN=2061, Flag=5: asks for a data response)."""
    data_time = FIRST_HOUR + timedelta(hours=hour)
    qn = f"{data_time:%Y%m%d%H%M%S}{station.index % 1000:03d}"
    items = ";".join(
        f"{code}-Avg={value_of(code, station.index, hour):g},{code}-Flag=N" for code in POLLUTANTS
    )
    segment = (
        f"QN={qn};ST={hj212.AMBIENT_AIR};CN={hj212.HOURLY_DATA};PW={station.password};"
        f"MN={station.mn};Flag=5;CP=&&DataTime={data_time:%Y%m%d%H%M%S};{items}&&"
    )
    return qn, hj212.encode_frame(segment)


# --------------------------------------------------------------------------------------------
# Machine and process figures
# --------------------------------------------------------------------------------------------
def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_sockets(pid: int) -> int:
    """Sockets a process has open (listening socket included)."""
    count = 0
    with suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
    return count


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


def raise_fd_limit() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; returns (soft before, now)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------
@dataclass
class Run:
    """What one timed phase measured."""

    label: str
    connections: int
    uploads: int = 0  # answered
    unanswered: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def per_s(self) -> float:
        return self.uploads / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        return percentile(self.latencies_ms, p) if self.latencies_ms else float("nan")


async def read_reply(reader: asyncio.StreamReader, qn: str) -> bool:
    """Read one reply frame; True if it is the data response (9014) of upload ``qn``."""
    reply = await asyncio.wait_for(reader.readuntil(hj212.TRAILER), REPLY_TIMEOUT_S)
    return b"CN=9014" in reply and f"QN={qn};".encode() in reply


async def station_session(
    port: int,
    station: BenchStation,
    hours: list[int],
    window: int,
    run: Run,
    answered: dict[int, int],
) -> None:
    """One station's connection: its uploads ``window`` at a time (1: wait for each reply),
    each latency measured from the write of its batch to its reply."""
    frames = [upload_frame(station, h) for h in hours]  # built before the clock runs
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for start in range(0, len(frames), window):
            batch = frames[start : start + window]
            sent = time.perf_counter()
            writer.write(b"".join(frame for _, frame in batch))
            await writer.drain()
            for position, (qn, _) in enumerate(batch):
                try:
                    ok = await read_reply(reader, qn)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    # this one, the rest of the batch, and what was never sent
                    run.unanswered += len(frames) - start - position
                    return
                run.latencies_ms.append((time.perf_counter() - sent) * 1000)
                if ok:
                    run.uploads += 1
                    answered[station.index] = answered.get(station.index, 0) + 1
                else:
                    run.unanswered += 1
    finally:
        writer.close()
        with suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def open_idle(port: int, m: int) -> tuple[list[asyncio.StreamWriter], int]:
    """Open ``m`` idle connections, CONNECT_WINDOW at a time; (writers, failures)."""
    window = asyncio.Semaphore(CONNECT_WINDOW)
    writers: list[asyncio.StreamWriter] = []
    failed = 0

    async def one() -> None:
        nonlocal failed
        async with window:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
            except (OSError, TimeoutError):
                failed += 1
                return
            writers.append(writer)

    await asyncio.gather(*(one() for _ in range(m)))
    return writers, failed


async def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()
    for writer in writers:
        with suppress(ConnectionError, OSError):
            await writer.wait_closed()


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stack = ExitStack()
        self.database_url = ""
        self.postmaster_pid: int | None = None
        self.workdir = Path()
        self.stations = make_stations(args.stations)
        self.next_hour = [0] * args.stations
        self.answered: dict[int, int] = {}
        self.runs: list[Run] = []
        self.held: list[str] = []
        self.checks: list[str] = []
        self.notes: list[str] = []
        self.failed = False
        self.gateway: subprocess.Popen[bytes] | None = None
        self.gateway_log = Path()
        self.port = 0

    def say(self, text: str) -> None:
        print(text, flush=True)

    # --- services ------------------------------------------------------------------------
    def start_database(self) -> None:
        env_db = os.environ.get("AIRWATER_DATABASE_URL")
        if env_db and not self.args.yes:
            raise SystemExit(
                "AIRWATER_DATABASE_URL is set: the benchmark would TRUNCATE "
                f"{', '.join(DATA_TABLES)} there. Pass --yes to allow it, or unset it to use "
                "a private database."
            )
        self.workdir = Path(tempfile.mkdtemp(prefix="airwater-hj212-"))
        if not self.args.keep:
            self.stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        if env_db:
            self.database_url = env_db
        else:
            from airwater.embedded import PostgresServer

            pg = PostgresServer(self.workdir / "postgres")
            pg.start()
            self.stack.callback(pg.stop, "fast")
            self.database_url = pg.url
            self.postmaster_pid = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
        self.say(f"database {self.database_url}\nwork dir {self.workdir}")

    def prepare_database(self) -> None:
        """Migrate, empty the data tables, register the stations with MN and password."""
        from schemas.stations import Station
        from storage.hj212 import Hj212Error, issue, set_mn
        from storage.migrate import migrate
        from storage.stations import upsert_stations

        started = time.perf_counter()
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            migrate(conn)
            conn.execute(f"TRUNCATE {', '.join(DATA_TABLES)}")
            upsert_stations(
                conn,
                [
                    Station(station_id=s.station_id, name=f"HJ 212 bench {s.index}", kind="air")
                    for s in self.stations
                ],
            )
            for s in self.stations:
                set_mn(conn, s.station_id, s.mn)
                try:
                    issue(conn, s.station_id, hash_password(s.password), replace=False)
                except Hj212Error:  # a database of an earlier run (--yes): rotate
                    issue(conn, s.station_id, hash_password(s.password), replace=True)
        self.say(
            f"{len(self.stations)} air stations with MN and password "
            f"({time.perf_counter() - started:.1f} s with the migration)"
        )

    def start_gateway(self) -> None:
        self.port = free_port()
        self.gateway_log = self.workdir / "hj212.log"
        env = {
            **os.environ,
            "AIRWATER_DATABASE_URL": self.database_url,
            "AIRWATER_HJ212_HOST": "127.0.0.1",
            "AIRWATER_HJ212_PORT": str(self.port),
        }
        with open(self.gateway_log, "ab") as log:
            self.gateway = subprocess.Popen(
                [sys.executable, "-m", "ingest.hj212"],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.stack.callback(self.stop_gateway)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.gateway.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        "the gateway did not start:\n" + self.gateway_log.read_text()[-3000:]
                    ) from None
                time.sleep(0.1)
        self.say(f"gateway pid {self.gateway.pid} on 127.0.0.1:{self.port}")

    def stop_gateway(self) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.send_signal(signal.SIGTERM)
            try:
                self.gateway.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.gateway.kill()
                self.gateway.wait()

    @property
    def gateway_pid(self) -> int:
        assert self.gateway is not None
        return self.gateway.pid

    def cpu_groups(self) -> dict[str, Callable[[], list[int]]]:
        gateway = self.gateway_pid
        groups: dict[str, Callable[[], list[int]]] = {"gateway": lambda: [gateway]}
        if self.postmaster_pid is not None:
            pm = self.postmaster_pid
            groups["postgres"] = lambda: [pm, *children_of(pm)]
        groups["client"] = lambda: [os.getpid()]
        return groups

    # --- uploads -------------------------------------------------------------------------
    def hours_of(self, station: BenchStation, n: int) -> list[int]:
        first = self.next_hour[station.index]
        self.next_hour[station.index] = first + n
        return list(range(first, first + n))

    def uploads(
        self, label: str, stations: list[BenchStation], total: int, window: int, note: str = ""
    ) -> Run:
        """``total`` uploads shared by one connection per station, ``window`` at a time."""
        run = Run(label, len(stations), note=note)
        q, r = divmod(total, len(stations))
        shares = [(s, self.hours_of(s, q + (1 if i < r else 0))) for i, s in enumerate(stations)]
        meter = CpuMeter(self.cpu_groups())

        async def all_stations() -> None:
            await asyncio.gather(
                *(
                    station_session(self.port, s, hours, window, run, self.answered)
                    for s, hours in shares
                    if hours
                )
            )

        meter.start()
        started = time.perf_counter()
        asyncio.run(all_stations())
        run.seconds = time.perf_counter() - started
        ours = meter.stop()
        run.cpu = {**ours, "other processes": meter.others(ours)}
        self.runs.append(run)
        self.say(
            f"{label}: {run.uploads:,} uploads in {run.seconds:.2f} s = {run.per_s:,.0f}/s, "
            f"p50 {run.pct(50):.1f} ms, p99 {run.pct(99):.1f} ms"
            + (f", {run.unanswered} UNANSWERED" if run.unanswered else "")
        )
        return run

    def throughput(self) -> None:
        a = self.args
        chosen = self.stations[: a.concurrency]
        self.uploads(
            f"lock-step, {a.concurrency} stations", chosen, a.uploads, 1,
            "each waits for its 9014 before the next upload",
        )  # fmt: skip
        if a.pipeline > 1:
            self.uploads(
                f"pipelined ×{a.pipeline}, {a.concurrency} stations", chosen, a.uploads,
                a.pipeline, f"{a.pipeline} uploads written, then their {a.pipeline} replies read",
            )  # fmt: skip

    # --- connections held -----------------------------------------------------------------
    def connections_held(self) -> None:
        a = self.args
        pid = self.gateway_pid
        active = self.stations[-a.active :]  # not the stations of the throughput runs
        total = a.active * a.active_uploads
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        idle = a.idle
        if soft != resource.RLIM_INFINITY and idle + FD_MARGIN > soft:
            idle = max(0, soft - FD_MARGIN)
            self.notes.append(
                f"RLIMIT_NOFILE (soft {soft}, hard {hard}) caps the idle connections at "
                f"{idle:,} of the {a.idle:,} asked"
            )
        sockets_quiet, rss_quiet = open_sockets(pid), rss_kib(pid)
        quiet = self.uploads(
            f"{a.active} active stations, no idle connections", active, total, 1, "quiet gateway"
        )

        async def hold() -> tuple[int, int, float, int, int, Run, bool, float]:
            started = time.perf_counter()
            writers, failed = await open_idle(self.port, idle)
            opened_s = time.perf_counter() - started
            # the gateway has accepted them all when its socket count has grown by as many
            deadline = time.monotonic() + 30
            while open_sockets(pid) < sockets_quiet + len(writers) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            sockets_held, rss_held_before = open_sockets(pid), rss_kib(pid)
            run = Run(
                f"{a.active} active stations, {len(writers):,} idle connections held",
                a.active,
                note="while held",
            )
            meter = CpuMeter(self.cpu_groups())
            meter.start()
            t0 = time.perf_counter()
            await asyncio.gather(
                *(
                    station_session(
                        self.port, s, self.hours_of(s, a.active_uploads), 1, run, self.answered
                    )
                    for s in active
                )
            )
            run.seconds = time.perf_counter() - t0
            ours = meter.stop()
            run.cpu = {**ours, "other processes": meter.others(ours)}
            rss_held = max(rss_held_before, rss_kib(pid))
            # the held connections are still open at the gateway (none was closed for idling)
            still_open = all(not w.is_closing() for w in writers) and open_sockets(
                pid
            ) >= sockets_quiet + len(writers)
            t1 = time.perf_counter()
            await close_all(writers)
            closed_s = time.perf_counter() - t1
            return len(writers), failed, opened_s, sockets_held, rss_held, run, still_open, closed_s

        held, failed, opened_s, sockets_held, rss_held, run, still_open, closed_s = asyncio.run(
            hold()
        )
        self.runs.append(run)
        self.say(
            f"{run.label}: {run.uploads:,} uploads, p50 {run.pct(50):.1f} ms, "
            f"p99 {run.pct(99):.1f} ms"
            + (f", {run.unanswered} UNANSWERED" if run.unanswered else "")
        )
        deadline = time.monotonic() + 30
        while open_sockets(pid) > sockets_quiet and time.monotonic() < deadline:
            time.sleep(0.1)
        sockets_after, rss_after = open_sockets(pid), rss_kib(pid)
        per_conn = (rss_held - rss_quiet) / held if held else 0.0
        self.held = [
            f"| idle connections opened | {held:,} of {idle:,} ({failed} failed) "
            f"in {opened_s:.2f} s = {held / opened_s if opened_s else 0:,.0f}/s |",
            f"| gateway sockets: quiet / held / after closing | {sockets_quiet:,} / "
            f"{sockets_held:,} / {sockets_after:,} |",
            f"| gateway RSS: quiet / held / after closing | {rss_quiet / 1024:,.1f} / "
            f"{rss_held / 1024:,.1f} / {rss_after / 1024:,.1f} MiB "
            f"({per_conn:,.1f} KiB per held connection) |",
            f"| held connections all still open after the uploads | "
            f"{'yes' if still_open else 'NO'} |",
            f"| closing them | {closed_s:.2f} s |",
            f"| active upload p99: quiet → held | {quiet.pct(99):.1f} → {run.pct(99):.1f} ms |",
        ]
        if not still_open or failed:
            self.failed = True

    # --- the check ------------------------------------------------------------------------
    def check(self) -> None:
        answered = sum(self.answered.values())
        unanswered = sum(r.unanswered for r in self.runs)
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT station_id, count(*), count(DISTINCT ts) FROM readings"
                " WHERE station_id LIKE %s GROUP BY station_id",
                (STATION_PREFIX + "%",),
            ).fetchall()
            dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        stored = {sid: (n, hours) for sid, n, hours in rows}
        n_params = len(POLLUTANTS)
        wrong = [
            s.station_id
            for s in self.stations
            if stored.get(s.station_id, (0, 0)) != (n_params * self.answered.get(s.index, 0),
                                                   self.answered.get(s.index, 0))
        ]  # fmt: skip
        readings = sum(n for n, _ in stored.values())
        exact = not wrong and readings == n_params * answered
        self.checks.append(
            f"answered uploads {answered:,} × {n_params} pollutants = {n_params * answered:,} "
            f"readings expected, {readings:,} stored: "
            + ("every answered upload stored exactly once" if exact else
               f"MISMATCH at {len(wrong)} stations, e.g. {wrong[:3]}")
        )  # fmt: skip
        self.checks.append(f"unanswered uploads: {unanswered}")
        self.checks.append(f"dead letters: {dead[0] if dead else '?'}")
        self.stop_gateway()
        counts = re.findall(r"frames: (\{.*\})", self.gateway_log.read_text(errors="replace"))
        stored_by_gateway = re.search(r"'stored': (\d+)", counts[-1]) if counts else None
        gateway_says = int(stored_by_gateway.group(1)) if stored_by_gateway else -1
        self.checks.append(
            f"gateway counted {gateway_says:,} stored uploads"
            + (" (agrees)" if gateway_says == answered else f" (DIFFERS from {answered:,})")
        )
        if not exact or unanswered or (dead and dead[0]) or gateway_says != answered:
            self.failed = True

    # --- report --------------------------------------------------------------------------
    def report(self) -> None:
        a = self.args
        self.say("")
        self.say(
            f"== HJ 212 gateway: {a.stations} stations, {len(POLLUTANTS)} pollutants an upload"
        )
        self.say(
            "| run | connections | uploads | s | uploads/s | readings/s | p50 ms | p95 ms "
            "| p99 ms | CPU (share of one core) | note |"
        )
        self.say("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
        for r in self.runs:
            cpu = ", ".join(
                f"{name} {100 * used / r.seconds:.0f} %"
                for name, used in r.cpu.items()
                if r.seconds
            )
            self.say(
                f"| {r.label} | {r.connections:,} | {r.uploads:,} | {r.seconds:.2f} "
                f"| {r.per_s:,.0f} | {r.per_s * len(POLLUTANTS):,.0f} | {r.pct(50):.1f} "
                f"| {r.pct(95):.1f} | {r.pct(99):.1f} | {cpu} | {r.note} |"
            )
        if self.held:
            self.say("")
            self.say("| connections held | |")
            self.say("| --- | --- |")
            for line in self.held:
                self.say(line)
        self.say("")
        for line in self.checks:
            self.say(f"check: {line}")
        for line in self.notes:
            self.say(f"note: {line}")
        self.say(f"machine: {load_text()}")
        self.say("result: " + ("FAILED" if self.failed else "ok"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hj212", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stations", type=int, default=200, help="air stations with MN and PW")
    parser.add_argument(
        "--concurrency", type=int, default=50, help="station connections uploading at once"
    )
    parser.add_argument(
        "--uploads", type=int, default=5000, help="uploads of each throughput run (all stations)"
    )
    parser.add_argument(
        "--pipeline", type=int, default=10,
        help="uploads a station writes before reading their replies (1: no pipelined run)",
    )  # fmt: skip
    parser.add_argument("--idle", type=int, default=5000, help="idle connections held")
    parser.add_argument(
        "--active", type=int, default=5, help="stations uploading while the idle ones are held"
    )
    parser.add_argument(
        "--active-uploads", type=int, default=100, help="uploads of each active station"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (database, log)")
    parser.add_argument(
        "--yes", action="store_true", help="allow TRUNCATE of the data tables at "
        "AIRWATER_DATABASE_URL",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if min(args.stations, args.concurrency, args.uploads, args.pipeline, args.active) < 1:
        parser.error("--stations, --concurrency, --uploads, --pipeline, --active must be ≥ 1")
    if args.idle < 0 or args.active_uploads < 1:
        parser.error("--idle must be ≥ 0 and --active-uploads ≥ 1")
    if args.concurrency > args.stations or args.active > args.stations:
        parser.error("--concurrency and --active are at most --stations (one station each)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soft_before, soft = raise_fd_limit()  # before the gateway starts: it inherits the limit
    bench = Bench(args)
    bench.say(
        f"airwater HJ 212 gateway benchmark: {args.stations} stations, {args.concurrency} "
        f"connections, {args.uploads:,} uploads a run, {args.idle:,} idle connections; "
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    )
    bench.say(f"code: {code_state()}")
    bench.say(f"machine: {load_text()}; RLIMIT_NOFILE soft {soft_before} → {soft}")
    with bench.stack:
        bench.start_database()
        bench.prepare_database()
        bench.start_gateway()
        bench.throughput()
        bench.connections_held()
        bench.check()
        bench.report()
    return 1 if bench.failed else 0


if __name__ == "__main__":
    sys.exit(main())
