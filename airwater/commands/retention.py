"""``airwater retention``: drop old raw readings a chunk at a time."""

from __future__ import annotations

import argparse

from airwater.commands.common import Subcommands, console, database
from core.settings import Settings


def add_parser(commands: Subcommands) -> None:
    retention = commands.add_parser(
        "retention",
        help="drop raw readings older than an age, whole chunks at a time (drop_chunks); the "
        "derived levels (daily values, annual statistics) and so the reports are kept. Run it "
        "from cron.",
    )
    retention.add_argument(
        "--older-than", required=True, help="age of readings to drop, e.g. '5 years'"
    )
    retention.add_argument("--dry-run", action="store_true", help="list, do not drop")
    retention.set_defaults(handler=cmd_retention)


# drop_chunks removes whole chunks whose every row is older than the cutoff (TimescaleDB, any
# licence); the derived levels, which the reports read, are plain tables and stay (hours are
# grouped from the readings, so they go with them).
def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from storage.retention import drop_old_chunks, old_chunks

    age = args.older_than
    with database(settings) as url, connect(url, autocommit=True) as conn:
        chunks = (old_chunks if args.dry_run else drop_old_chunks)(conn, "readings", age)
    verb = "would drop" if args.dry_run else "dropped"
    console.print(f"readings: {verb} {len(chunks)} chunk(s) older than {age}")
    return 0
