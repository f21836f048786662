"""What every subcommand shares: the console for messages (stderr) and the database check."""

from __future__ import annotations

import argparse
from typing import TypeAlias

from rich.console import Console

from core.settings import Settings

console = Console(stderr=True, soft_wrap=True)

# `airwater`'s subcommand group, which each module's add_parser adds itself to.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def require_database(settings: Settings) -> str:
    """AIRWATER_DATABASE_URL, or exit 2 with a message saying how to set it."""
    if settings.database_url is None:
        console.print(
            "[red]AIRWATER_DATABASE_URL is not set[/red] (or use `airwater run`, "
            "which starts a private database)"
        )
        raise SystemExit(2)
    return settings.database_url
