"""Payload fuzzing, the full run: generated and mutated MQTT payloads through the parser and
the validator, with the contract of tests/fuzz_support.py checked on every one.

    .venv/bin/python -m bench.fuzz --examples 100000

Every payload must end as reading rows or dead letters with a reason, and no exception may
escape. Prints the payloads tried, how many were (partly) accepted, the dead letters by reason,
the exceptions and contract failures (both must be 0), and the time taken; exits 1 on any
failure. The bounded part of the same harness runs in the test suite (tests/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import hypothesis  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.fuzz_support import (  # noqa: E402
    AIR,
    HEAVY_PAYLOADS,
    LAKE,
    RAW_PAYLOADS,
    Tally,
    check_message,
    fuzz_validator,
    messages,
)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=100_000, help="generated messages")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed, to replay")
    args = parser.parse_args(argv)
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
