"""Payload fuzzing, the full run: generated and mutated MQTT payloads through the parser and
the validator, with the contract of tests/fuzz_support.py checked on every one.

    .venv/bin/python -m bench.fuzz --examples 100000

Every payload must end as reading rows or dead letters with a reason, and no exception may
escape. Prints the payloads tried, how many were (partly) accepted, the dead letters by reason,
the exceptions and contract failures (both must be 0), and the time taken; exits 1 on any
failure. The bounded part of the same harness runs in the test suite (tests/test_fuzz.py).

Through the database:

    .venv/bin/python -m bench.fuzz --through-database 100000

sends that many payloads (the edge corpus, the hostile raw payloads, then generated ones)
through the real pipeline: a private PostgreSQL+TimescaleDB and Mosquitto in a temporary
folder, one ``python -m ingest`` worker, a QoS-1 publisher with a small in-flight window. Each
message is then accounted for against the validator run in process (the oracle): all its
readings stored, its dead letters kept with its topic and payload, nothing else, nothing twice;
once the aggregation stage has drained the queue (in process, after the run) every derived
level equals a recomputation, and the worker is alive, started once. Prints the figures and
exits 1 if anything is unaccounted for. AIRWATER_DATABASE_URL / AIRWATER_MQTT_URL (a broker on
127.0.0.1) point it at existing services instead, only with ``--yes``: it TRUNCATEs the
readings, derived-level, queue and dead-letter tables there and registers the fuzz stations.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import hypothesis  # noqa: E402
import psycopg  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from core.settings import MqttTarget  # noqa: E402
from storage.aggregation import STAGE_TABLES  # noqa: E402
from tests.fuzz_support import (  # noqa: E402
    AIR,
    HEAVY_PAYLOADS,
    LAKE,
    RAW_PAYLOADS,
    Tally,
    check_message,
    fuzz_registry,
    fuzz_validator,
    messages,
    plan_corpus,
    run_through_pipeline,
    summary,
)
from tests.support import Publisher, Worker, wait_until_consuming, worker_totals  # noqa: E402

# Raw readings, everything the aggregation stage keeps, dead letters.
DATA_TABLES = ("readings", *STAGE_TABLES, "dead_letters")


def run(examples: int, seed: int | None) -> tuple[Tally, list[str]]:
    validator = fuzz_validator()
    tally = Tally()
    failures: list[str] = []

    def check(topic: str, payload: bytes) -> None:
        try:
            check_message(validator, topic, payload, tally)
        except AssertionError as exc:
            tally.exceptions["contract violated"] += 1
            failures.append(f"{topic[:60]!r} {payload[:120]!r}: {exc}")
        except Exception as exc:  # counted by check_message
            where = traceback.extract_tb(exc.__traceback__)[-1]
            failures.append(
                f"{topic[:60]!r} {payload[:120]!r}: {type(exc).__name__} {exc} "
                f"at {where.filename}:{where.lineno}"
            )

    for payload in RAW_PAYLOADS + HEAVY_PAYLOADS:
        for station_id in (AIR, LAKE):
            check(f"stations/{station_id}/readings", payload)

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(messages)
    def fuzz(message: tuple[str, bytes]) -> None:
        check(*message)

    (fuzz if seed is None else hypothesis.seed(seed)(fuzz))()
    return tally, failures


def through_database(
    size: int, seed: int | None, window: int, allow_existing: bool, keep: bool
) -> int:
    """Send ``size`` payloads through the real pipeline and account for each; the exit code."""
    from airwater.embedded import MosquittoServer, PostgresServer
    from storage.migrate import migrate
    from storage.stations import upsert_stations

    env_db = os.environ.get("AIRWATER_DATABASE_URL")
    env_mqtt = os.environ.get("AIRWATER_MQTT_URL")
    if (env_db or env_mqtt) and not allow_existing:
        raise SystemExit(
            "AIRWATER_DATABASE_URL/AIRWATER_MQTT_URL are set: the run would TRUNCATE "
            f"{', '.join(DATA_TABLES)} there. Pass --yes to allow it, or unset them."
        )
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="airwater-fuzz-"))
        if not keep:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if env_db:
            database_url = env_db
        else:
            postgres = PostgresServer(workdir / "postgres")
            postgres.start()
            stack.callback(postgres.stop, "fast")
            database_url = postgres.url
        if env_mqtt:
            mqtt_url = env_mqtt
        else:
            broker = MosquittoServer(workdir / "mosquitto")
            broker.start()
            stack.callback(broker.stop)
            mqtt_url = broker.url
        target = MqttTarget(mqtt_url)
        if target.host not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"the broker must listen on 127.0.0.1, not {target.host}")
        with psycopg.connect(database_url) as conn:
            migrate(conn)
            conn.execute(f"TRUNCATE {', '.join(DATA_TABLES)}")
            conn.commit()
            upsert_stations(conn, fuzz_registry())

        seed = random.randrange(2**32) if seed is None else seed  # printed, to replay
        started = time.perf_counter()
        # the oracle's outcome must hold until the last message is received: generous
        horizon = timedelta(seconds=1800 + size / 25)
        corpus = plan_corpus(size, seed, horizon)
        planned = time.perf_counter() - started
        print(f"corpus: {len(corpus.messages):,} payloads planned in {planned:.0f} s", flush=True)

        worker = Worker(database_url, mqtt_url, "fuzz-ingest", log_path=workdir / "worker.log")
        worker.start()
        stack.callback(worker.stop_quietly)
        publisher = Publisher(
            target.port, f"fuzz-publisher-{os.getpid()}", target.username, target.password
        )
        stack.callback(publisher.close)
        wait_until_consuming(database_url, publisher)
        try:
            accounting = run_through_pipeline(database_url, publisher, worker, corpus, window)
        except AssertionError as exc:  # the worker stalled or the broker stopped acking
            print(f"seed {seed}: the run did not settle: {exc}")
            return 1
        print(f"seed                          {seed}")
        print(f"{'corpus and oracle':<30}{planned:>10.1f} s  (generated, validated twice)")
        print(summary(accounting, corpus))
        code = worker.terminate()
        totals = worker_totals(workdir / "worker.log")[-1]
        print(
            f"worker totals at its stop (exit {code}): {totals['stored']:,} readings stored"
            f" (probes included), {totals['duplicates']:,} repeated keys not stored again,"
            f" {totals['dead_letters']:,} dead letters written"
        )
        if keep:
            print(f"work folder (database, broker, worker.log) kept: {workdir}")
        return 1 if accounting.problems or code != 0 else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=100_000, help="generated messages")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed, to replay")
    parser.add_argument(
        "--through-database",
        type=int,
        metavar="N",
        help="send N payloads through broker, worker and database, and account for each",
    )
    parser.add_argument(
        "--window", type=int, default=50, help="messages awaiting their PUBACK, at most"
    )
    parser.add_argument(
        "--yes", action="store_true", help="allow TRUNCATE on AIRWATER_DATABASE_URL's tables"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (with the worker's log)"
    )
    args = parser.parse_args(argv)
    if args.through_database is not None:
        return through_database(args.through_database, args.seed, args.window, args.yes, args.keep)
    started = time.perf_counter()
    tally, failures = run(args.examples, args.seed)
    elapsed = time.perf_counter() - started
    exceptions = sum(tally.exceptions.values())
    print(f"payloads            {tally.payloads:>10,}")
    print(f"  accepted          {tally.accepted_payloads:>10,}  (at least one reading stored)")
    print(f"  reading rows      {tally.readings:>10,}")
    print(f"  dead-lettered     {tally.dead_lettered_payloads:>10,}  (at least one dead letter)")
    print(f"dead letters        {sum(tally.dead_letters.values()):>10,}")
    for reason, n in tally.dead_letters.most_common():
        print(f"  {reason:<17} {n:>10,}")
    print(f"exceptions          {exceptions:>10,}")
    for kind, n in tally.exceptions.most_common():
        print(f"  {kind:<17} {n:>10,}")
    print(f"elapsed             {elapsed:>10.1f} s  ({tally.payloads / elapsed:,.0f} payloads/s)")
    for failure in failures[:20]:
        print("FAIL", failure)
    return 1 if exceptions else 0


if __name__ == "__main__":
    sys.exit(main())
