"""``python -m simulators``: the simulated national network on the command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import date
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Literal, TypeAlias

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Column, Table

from core.settings import Settings
from schemas.stations import FIELDS, Station
from simulators.model import DEFAULT_SEED, reports_class_only
from simulators.network import (
    DEFAULT_CITIES,
    DEFAULT_INTERVAL_S,
    DEFAULT_SECTIONS,
    DEFAULT_STATIONS_PER_CITY,
    build_network,
)

if TYPE_CHECKING:
    from simulators.hj212 import Hj212Runner

console = Console(stderr=True, soft_wrap=True)

# The subcommand group each _add_*_parser adds its subcommand to.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

DESCRIPTION = """\
Simulated air and surface-water stations of a national network, publishing realistic
readings over MQTT (and faults on demand), or backfilling past years in bulk.

Air stations sit in real prefecture-level cities (ids like 110000-A001), water sections on
the Yangtze, Yellow, Pearl, Huai, Hai, Songhua and Liao rivers and the Taihu, Chaohu and
Dianchi lakes (ids like W-YANGTZE-001). The same seed and counts give the same network and
the same values.

Configuration comes from the environment: AIRWATER_DATABASE_URL (register, backfill) and
AIRWATER_MQTT_URL (run, backfill --via-mqtt)."""

EPILOG = """\
examples:
  python -m simulators network --cities 5 --format csv > stations.csv
  python -m simulators register
  python -m simulators run --interval 60
  python -m simulators run --cities 2 --stations-per-city 2 --sections 2 --interval 1 \\
      --malformed 0.05 --duplicates 0.05 --late 0.02 --silent 1 --skewed 1 --skew-minutes 15
  python -m simulators run --protocol mixed --hj212-credentials hj212-stations.json
  python -m simulators backfill --year 2025
  python -m simulators backfill --year 2025 --to 2026-11-01
  python -m simulators backfill --from 2025-01-01 --to now
  python -m simulators backfill --year 2025 --cities 2 --sections 2 --via-mqtt"""


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a rate between 0 and 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _until(text: str) -> date | Literal["now"]:
    """A day (YYYY-MM-DD) or ``now``."""
    if text == "now":
        return "now"
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a day (YYYY-MM-DD) or now") from None


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def _interval(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 86400:
        raise argparse.ArgumentTypeError("the interval is 1..86400 seconds")
    return value


def _network_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("network")
    group.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="network and values (default %(default)s)"
    )
    group.add_argument(
        "--cities",
        type=_count,
        default=DEFAULT_CITIES,
        help="cities with air stations, 0..42 (default %(default)s)",
    )
    group.add_argument(
        "--stations-per-city",
        type=int,
        default=DEFAULT_STATIONS_PER_CITY,
        metavar="K",
        help="air stations in each city (default %(default)s)",
    )
    group.add_argument(
        "--sections",
        type=_count,
        default=DEFAULT_SECTIONS,
        help="surface-water sections, 0..61 (default %(default)s)",
    )
    return parent


def _interval_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--interval",
        type=_interval,
        default=DEFAULT_INTERVAL_S,
        metavar="S",
        help=f"{what} (default %(default)s s); registered as the stations' reading_interval_s",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    network = _network_options()
    _add_network_parser(commands, network)
    _add_register_parser(commands, network)
    _add_run_parser(commands, network)
    _add_backfill_parser(commands, network)
    return parser


def _add_network_parser(commands: Subcommands, network: argparse.ArgumentParser) -> None:
    show = commands.add_parser(
        "network",
        parents=[network],
        help="print the network's stations",
        description="Print the stations of the network; csv and json can be imported with "
        "`airwater stations import FILE`.",
    )
    show.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _interval_option(show, "reading interval written in csv/json")


def _add_register_parser(commands: Subcommands, network: argparse.ArgumentParser) -> None:
    register = commands.add_parser(
        "register",
        parents=[network],
        help="create or update the network's stations in the database",
        description="Upsert the network's stations into AIRWATER_DATABASE_URL.",
    )
    _interval_option(register, "the interval at which the stations publish live")


def _add_run_parser(commands: Subcommands, network: argparse.ArgumentParser) -> None:
    run = commands.add_parser(
        "run",
        parents=[network],
        help="publish live readings over MQTT",
        description="Every station publishes its current reading to stations/{id}/readings "
        "(QoS 1) every interval, staggered over the interval, over its own MQTT connection "
        "(client id = station id), with a retained status (online; last will offline). "
        "Runs until Ctrl-C or SIGTERM, which announce offline and disconnect cleanly.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="faults: rates are chances per regular publish; the faulty message is sent "
        "in addition\nto the regular reading. Expected outcomes at the ingest:\n"
        "  --malformed   dead letter (malformed_json, timestamp_missing, negative_value, …)\n"
        "  --duplicates  a duplicate (the first value stays)\n"
        "  --late        stored in its old hour; the latest value is not replaced\n"
        "  --silent      last will: stations/{id}/status = offline (retained)\n"
        "  --skewed      stored if the clock is behind or < 10 min ahead; beyond 10 min\n"
        "                ahead dead-lettered timestamp_future",
    )
    _interval_option(run, "seconds between a station's readings")
    run.add_argument(
        "--duration", type=_positive, metavar="S", help="stop after S seconds (default: never)"
    )
    run.add_argument(
        "--credentials",
        type=Path,
        metavar="FILE",
        help="station passwords: JSON {station_id: password} or CSV station_id,password; "
        "the user name is the station id (default: the credentials of AIRWATER_MQTT_URL)",
    )
    run.add_argument(
        "--register", action="store_true", help="upsert the stations first (needs the database)"
    )
    _hj212_options(run)
    _fault_options(run)


def _hj212_options(run: argparse.ArgumentParser) -> None:
    group = run.add_argument_group(
        "HJ 212",
        "stations with an MN and password in --hj212-credentials can speak HJ 212-2017 to\n"
        "the gateway instead: one TCP connection each, an hourly upload (CN=2061, the means\n"
        "of the hour's readings) at the top of every hour, sent again until answered",
    )
    group.add_argument(
        "--protocol",
        choices=("mqtt", "hj212", "mixed"),
        default="mqtt",
        help="mqtt: every station over MQTT (default); hj212: only the stations in "
        "--hj212-credentials, over HJ 212; mixed: those over HJ 212, the others over MQTT",
    )
    group.add_argument(
        "--hj212-credentials",
        type=Path,
        metavar="FILE",
        help='JSON {station_id: {"mn": MN, "password": PW}} (`airwater stations hj212 '
        "assign|issue`)",
    )
    group.add_argument(
        "--hj212-host", default="127.0.0.1", help="the gateway's address (default %(default)s)"
    )
    group.add_argument(
        "--hj212-port",
        type=int,
        metavar="PORT",
        help="the gateway's port (default: AIRWATER_HJ212_PORT, 9212)",
    )


def _fault_options(run: argparse.ArgumentParser) -> None:
    faults = run.add_argument_group("faults")
    faults.add_argument(
        "--malformed", type=_rate, default=0.0, metavar="RATE", help="broken payloads"
    )
    faults.add_argument(
        "--duplicates", type=_rate, default=0.0, metavar="RATE", help="re-send an old message"
    )
    faults.add_argument(
        "--late", type=_rate, default=0.0, metavar="RATE", help="a reading hours old"
    )
    faults.add_argument(
        "--late-hours",
        type=_positive,
        nargs=2,
        default=(1.0, 12.0),
        metavar=("LOW", "HIGH"),
        help="age of a late reading (default 1 12)",
    )
    faults.add_argument(
        "--silent",
        type=_count,
        default=0,
        metavar="N",
        help="stations that go silent: stop publishing and drop the link without DISCONNECT",
    )
    faults.add_argument(
        "--silent-after",
        type=float,
        metavar="S",
        help="when they go silent (default: after three intervals)",
    )
    faults.add_argument(
        "--silent-for", type=_positive, metavar="S", help="come back after S s (default: never)"
    )
    faults.add_argument(
        "--skewed", type=_count, default=0, metavar="N", help="stations with a skewed clock"
    )
    faults.add_argument(
        "--skew-minutes",
        type=float,
        default=15.0,
        metavar="M",
        help="their clock offset, minutes (negative: behind; default %(default)s)",
    )


def _add_backfill_parser(commands: Subcommands, network: argparse.ArgumentParser) -> None:
    fill = commands.add_parser(
        "backfill",
        parents=[network],
        help="generate past periods: hourly air, weekly/monthly water",
        description="Generate the readings of a past period (hourly air values; water items "
        "weekly, water classes monthly; ~2 %% of hours and the odd day missing) and store "
        "them through the ingest writer in large batches on one connection. Idempotent "
        "(a repeated reading is a duplicate) and resumable (batches already stored are "
        "skipped). The stations are registered first if missing.",
    )
    period = fill.add_mutually_exclusive_group(required=True)
    period.add_argument("--year", type=int, help="from 1 January of this year (Beijing time)")
    period.add_argument(
        "--from",
        dest="start",
        type=date.fromisoformat,
        metavar="DATE",
        help="from this day, YYYY-MM-DD (Beijing time)",
    )
    fill.add_argument(
        "--to",
        type=_until,
        metavar="DATE|now",
        help="until this day, exclusive, or `now`: up to the start of the current hour, where "
        "live readings take over (default: the next 1 January; never beyond now)",
    )
    fill.add_argument(
        "--batch-rows",
        type=int,
        default=50_000,
        metavar="N",
        help="readings per transaction (default %(default)s)",
    )
    fill.add_argument(
        "--restart",
        action="store_true",
        help="write every batch even if already stored (all duplicates then)",
    )
    fill.add_argument(
        "--via-mqtt",
        action="store_true",
        help="publish through the broker instead, a 24-hour batch message per station and "
        "day (for small networks; the ingest worker stores them)",
    )
    fill.add_argument(
        "--credentials", type=Path, metavar="FILE", help="station passwords (with --via-mqtt)"
    )
    _interval_option(fill, "interval for stations registered by the backfill")


def _network(args: argparse.Namespace) -> list[Station]:
    return build_network(
        seed=args.seed,
        cities=args.cities,
        stations_per_city=args.stations_per_city,
        sections=args.sections,
        reading_interval_s=args.interval,
    )


def _database_url(settings: Settings) -> str:
    if settings.database_url is None:
        console.print("[red]AIRWATER_DATABASE_URL is not set[/red]")
        raise SystemExit(2)
    return settings.database_url


def _check_mqtt(settings: Settings) -> None:
    if settings.mqtt_url is None:
        console.print("[red]AIRWATER_MQTT_URL is not set[/red]")
        raise SystemExit(2)


def _credentials(path: Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    from simulators.connections import CredentialsError, load_credentials

    try:
        return load_credentials(path)
    except (CredentialsError, OSError) as exc:
        console.print(f"[red]cannot read credentials:[/red] {exc}")
        raise SystemExit(2) from None


def _register(settings: Settings, stations: list[Station], only_missing: bool = False) -> None:
    from core.db import connect
    from ingest.importer import register_stations

    with connect(_database_url(settings)) as conn:
        created, updated = register_stations(conn, stations, only_missing)
    console.print(f"stations: {created} created, {updated} updated")


def cmd_network(args: argparse.Namespace, settings: Settings) -> int:
    stations = _network(args)
    out = Console(soft_wrap=True)
    if args.format == "json":
        print(json.dumps([s.model_dump() for s in stations], ensure_ascii=False, indent=1))
    elif args.format == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(s.model_dump() for s in stations)
    else:
        table = Table("name", "kind", "city", "province", "basin", "reports")
        table.columns[0:0] = [Column("station_id", no_wrap=True)]
        for s in stations:
            reports = "air" if s.kind == "air" else "class" if reports_class_only(s) else "items"
            table.add_row(s.station_id, s.name, s.kind, s.city, s.province, s.basin or "", reports)
        out.print(table)
    return 0


def cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    _register(settings, _network(args))
    return 0


def _hj212_runner(
    args: argparse.Namespace, settings: Settings, stations: list[Station]
) -> Hj212Runner | None:
    """The HJ 212 loggers of ``--protocol hj212|mixed`` (None for mqtt)."""
    from simulators.hj212 import Hj212CredentialsError, Hj212Runner, load_hj212_credentials

    if args.protocol == "mqtt":
        return None
    if args.hj212_credentials is None:
        console.print(f"[red]--protocol {args.protocol} needs --hj212-credentials[/red]")
        raise SystemExit(2)
    try:
        identities = load_hj212_credentials(args.hj212_credentials)
    except (Hj212CredentialsError, OSError) as exc:
        console.print(f"[red]cannot read HJ 212 credentials:[/red] {exc}")
        raise SystemExit(2) from None
    runner = Hj212Runner(
        stations,
        identities,
        args.hj212_host,
        settings.hj212_port if args.hj212_port is None else args.hj212_port,
        interval_s=args.interval,
        seed=args.seed,
    )
    ignored = sorted(set(identities) - set(runner.loggers))
    if ignored:
        console.print(
            f"[yellow]not over HJ 212[/yellow] (not in the network, or a section that "
            f"reports only its class): {', '.join(ignored[:10])}"
        )
    return runner


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from simulators.live import Faults, LiveRunner

    stations = _network(args)
    loggers = _hj212_runner(args, settings, stations)
    if args.protocol != "hj212":
        _check_mqtt(settings)
    if args.register:
        _register(settings, stations)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if loggers is not None:
        console.print(
            f"{len(loggers.loggers)} stations sending hourly HJ 212 uploads to "
            f"{loggers.host}:{loggers.port}"
        )
        if args.protocol == "hj212":
            loggers.run(stop, duration_s=args.duration)
            console.print(f"HJ 212: {loggers.stats}")
            return 0
        stations = [s for s in stations if s.station_id not in loggers.loggers]
    try:
        faults = Faults(
            malformed=args.malformed,
            duplicates=args.duplicates,
            late=args.late,
            late_hours=tuple(sorted(args.late_hours)),
            silent=args.silent,
            silent_after_s=args.silent_after,
            silent_for_s=args.silent_for,
            skewed=args.skewed,
            skew_minutes=args.skew_minutes,
        )
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    runner = LiveRunner(
        settings,
        stations,
        interval_s=args.interval,
        faults=faults,
        seed=args.seed,
        credentials=_credentials(args.credentials),
    )
    console.print(
        f"{len(stations)} stations publishing every {args.interval} s to {settings.mqtt}"
        " — Ctrl-C stops"
    )
    beside: threading.Thread | None = None
    if loggers is not None:  # mixed: the loggers on their own thread, stopped with the rest
        beside = threading.Thread(
            target=loggers.run, args=(stop, args.duration), name="hj212", daemon=True
        )
        beside.start()
    runner.run(stop, duration_s=args.duration)
    stop.set()
    if beside is not None and loggers is not None:
        beside.join(timeout=10)
        console.print(f"HJ 212: {loggers.stats}")
    console.print(f"sent {dict(runner.stats.sent)}; missed while offline {runner.stats.skipped}")
    return 0


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from simulators.backfill import NETWORK_TZ, backfill, backfill_period, backfill_via_mqtt

    stations = _network(args)
    try:
        start, end = backfill_period(args.year, args.start, args.to)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    console.print(
        f"backfill {start.astimezone(NETWORK_TZ):%Y-%m-%d %H:%M} to "
        f"{end.astimezone(NETWORK_TZ):%Y-%m-%d %H:%M} (Beijing time), {len(stations)} stations"
    )
    if args.via_mqtt:
        _check_mqtt(settings)
        console.print(
            "[yellow]note:[/yellow] through the broker, an hourly reading makes a valid hour "
            "only for stations registered with a reading interval of 2700 s or more"
        )
        result = backfill_via_mqtt(
            settings,
            stations,
            start,
            end,
            seed=args.seed,
            credentials=_credentials(args.credentials),
            show_progress=True,
        )
        console.print(
            f"published {result.published:,} readings in {result.batches} days "
            f"in {result.seconds:.1f} s ({result.rows_per_s:,.0f} readings/s)"
        )
        return 0
    from core.db import connect

    _register(settings, stations, only_missing=True)
    with connect(_database_url(settings)) as conn:
        result = backfill(
            conn,
            stations,
            start,
            end,
            seed=args.seed,
            batch_rows=args.batch_rows,
            resume=not args.restart,
            show_progress=True,
        )
    console.print(
        f"stored {result.inserted:,} new readings, {result.duplicates:,} duplicates; "
        f"{result.batches_skipped} batches ({result.skipped:,} readings) already stored; "
        f"{result.seconds:.1f} s, {result.rows_per_s:,.0f} readings/s"
    )
    return 0


COMMANDS = {
    "network": cmd_network,
    "register": cmd_register,
    "run": cmd_run,
    "backfill": cmd_backfill,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    try:
        return COMMANDS[args.command](args, Settings())
    except ValueError as exc:  # bad counts for the network, bad settings
        console.print(f"[red]{exc}[/red]")
        return 2
    except KeyboardInterrupt:  # the batch in progress is rolled back; a re-run resumes
        console.print("[yellow]interrupted[/yellow] — run the same command again to resume")
        return 130
