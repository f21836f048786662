"""The long-running services as subcommands: ``airwater ingest`` (= ``python -m ingest``),
``airwater hj212`` (= ``python -m ingest.hj212``)."""

from __future__ import annotations

import argparse

from airwater.commands.common import Subcommands
from core.settings import Settings


def add_parser(commands: Subcommands) -> None:
    ingest = commands.add_parser("ingest", help="run one ingest worker (same as python -m ingest)")
    ingest.set_defaults(handler=cmd_ingest)
    gateway = commands.add_parser(
        "hj212",
        help="run the HJ 212-2017 TCP gateway for stations and data loggers (same as python -m "
        "ingest.hj212; AIRWATER_HJ212_HOST/PORT, default 0.0.0.0:9212)",
    )
    gateway.add_argument("--port", type=int, help="overrides AIRWATER_HJ212_PORT (0: a free one)")
    gateway.set_defaults(handler=cmd_hj212)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.__main__ import main as ingest_main

    return ingest_main([])


def cmd_hj212(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.hj212 import main as gateway_main

    return gateway_main([] if args.port is None else ["--port", str(args.port)])
