"""What every subcommand shares: the console for messages (stderr) and the database it works
on (AIRWATER_DATABASE_URL, or the demo's private one under the data folder)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeAlias

from rich.console import Console

from airwater.embedded import PostgresServer
from core.settings import Settings

console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("airwater")

# `airwater`'s subcommand group, which each module's add_parser adds itself to.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The URL of the database a command works on: AIRWATER_DATABASE_URL if set, else the
    demo's private database under the data folder — the running demo's server, or one started
    for the command and stopped when it is done. Exit 2 with a message if there is neither."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    server = PostgresServer(settings.data_dir / "postgres")
    if not server.exists:
        console.print(
            "[red]no database[/red]: AIRWATER_DATABASE_URL is not set and there is no demo "
            f"database in {server.folder} yet; start the demo once with `airwater run` "
            "(it makes one there) or set AIRWATER_DATABASE_URL"
        )
        raise SystemExit(2)
    if server.attach():
        log.info("database: the running demo's, %s (data in %s)", server.url, server.pgdata)
        yield server.url
        return
    server.start()
    log.info(
        "database: the demo's, %s (data in %s), started for this command and stopped after it",
        server.url,
        server.pgdata,
    )
    try:
        yield server.url
    finally:
        server.stop()
