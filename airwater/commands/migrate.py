"""``airwater migrate``: apply pending database migrations."""

from __future__ import annotations

import argparse

from airwater.commands.common import Subcommands, console, database
from core.settings import Settings


def add_parser(commands: Subcommands) -> None:
    migrate = commands.add_parser(
        "migrate",
        help="apply pending database migrations, then bring the derived levels up to date "
        "(with a progress bar when a migration queued a rebuild)",
    )
    migrate.set_defaults(handler=cmd_migrate)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from airwater.commands.aggregate import settle_with_progress
    from core.db import connect
    from storage.migrate import migrate

    with database(settings) as url, connect(url) as conn:
        applied = migrate(conn)
        console.print(
            f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}"
        )
        conn.autocommit = True
        settle_with_progress(conn)
    return 0
