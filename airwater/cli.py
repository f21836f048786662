"""The ``airwater`` command: one subcommand per job, each in its module of
``airwater.commands``."""

from __future__ import annotations

import argparse
import logging
import sys

from airwater.commands import (
    aggregate,
    imports,
    migrate,
    publish,
    report,
    retention,
    review,
    run,
    services,
    stations,
)
from core.settings import Settings

# In the order `airwater --help` lists them.
COMMANDS = (
    run,
    migrate,
    services,
    aggregate,
    report,
    publish,
    review,
    imports,
    retention,
    stations,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airwater",
        description="Air and surface-water monitoring against the Chinese standards and the "
        "national targets. Configuration: AIRWATER_* environment variables "
        "(AIRWATER_DATABASE_URL, AIRWATER_MQTT_URL, …).",
    )
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(args.handler(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
