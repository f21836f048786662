"""Run a command as replica N of a scaled service, N being the lowest slot no live replica holds.

``docker compose up --scale ingest=3`` starts three containers from one definition, and each
ingest worker needs an MQTT client id of its own. An id made from the container's hostname
(its random container id) would change whenever compose recreates the container, and the
worker's persistent session would stay behind under the old id: Mosquitto goes on queueing
that session's share of the shared subscription ``$share/ingest/...`` until the session
expires, and those readings never reach the database. So the replicas share a small volume and
each holds an exclusive lock on ``DIR/NAME-N.lock`` for as long as it runs; a restarted or
recreated replica takes the freed slot back, and with it the client id and session of the one
it replaces. The kernel drops the lock when the process ends, even on ``kill -9``.

    python replica_slot.py --dir /var/lib/airwater/slots --name ingest \\
        --set AIRWATER_INGEST_CLIENT_ID=airwater-ingest-{slot} -- python -m ingest

The command runs in this process (exec), holding the lock; ``AIRWATER_REPLICA_SLOT`` is set to
N, and every ``--set VAR=TEMPLATE`` to TEMPLATE with ``{slot}`` replaced by N.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from pathlib import Path


class NoFreeSlot(RuntimeError):
    """Every slot up to the maximum is held by a live replica."""


def claim_slot(directory: Path, name: str, max_slots: int) -> tuple[int, int]:
    """Lock the lowest free slot; returns (slot, file descriptor that holds the lock)."""
    directory.mkdir(parents=True, exist_ok=True)
    for slot in range(1, max_slots + 1):
        fd = os.open(directory / f"{name}-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return slot, fd
    raise NoFreeSlot(f"all {max_slots} slots of {name!r} in {directory} are held")


def _assignment(text: str) -> tuple[str, str]:
    variable, sep, template = text.partition("=")
    if not sep or not variable:
        raise argparse.ArgumentTypeError(f"expected VAR=TEMPLATE, got {text!r}")
    return variable, template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="replica_slot.py",
        description="Run COMMAND as replica N of NAME, N being the lowest slot that no live "
        "replica holds (an exclusive lock on DIR/NAME-N.lock, kept until COMMAND ends).",
    )
    parser.add_argument("--dir", type=Path, required=True, help="folder shared by the replicas")
    parser.add_argument("--name", required=True, help="service name, e.g. ingest")
    parser.add_argument("--max", type=int, default=64, help="highest slot (default 64)")
    parser.add_argument(
        "--set",
        type=_assignment,
        action="append",
        default=[],
        metavar="VAR=TEMPLATE",
        help="set VAR to TEMPLATE with {slot} replaced by N (repeatable)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    if args.max < 1:
        parser.error("--max must be at least 1")
    try:
        slot, fd = claim_slot(args.dir, args.name, args.max)
    except (NoFreeSlot, OSError) as exc:
        print(f"replica_slot: {exc}", file=sys.stderr)
        return 1
    # The lock belongs to the open file: keep it open across exec, in the command's process.
    os.set_inheritable(fd, True)
    env = dict(os.environ, AIRWATER_REPLICA_SLOT=str(slot))
    for variable, template in args.set:
        env[variable] = template.replace("{slot}", str(slot))
    shown = " ".join(f"{variable}={env[variable]}" for variable, _ in args.set)
    print(f"replica_slot: {args.name} replica {slot} {shown}".rstrip(), file=sys.stderr)
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        print(f"replica_slot: cannot run {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main())
