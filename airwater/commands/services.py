"""The long-running services as subcommands: ``airwater ingest`` (= ``python -m ingest``)."""

from __future__ import annotations

import argparse

from airwater.commands.common import Subcommands
from core.settings import Settings


def add_parser(commands: Subcommands) -> None:
    ingest = commands.add_parser("ingest", help="run one ingest worker (same as python -m ingest)")
    ingest.set_defaults(handler=cmd_ingest)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.__main__ import main as ingest_main

    return ingest_main([])
