"""The ``airwater`` command: one subcommand per job."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from airwater.settings import Settings

console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("airwater")


def _require_database(settings: Settings) -> str:
    if settings.database_url is None:
        console.print(
            "[red]AIRWATER_DATABASE_URL is not set[/red] (or use `airwater run`, "
            "which starts a private database)"
        )
        raise SystemExit(2)
    return settings.database_url


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import connect
    from storage.migrate import migrate

    with connect(_require_database(settings)) as conn:
        applied = migrate(conn)
    console.print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


def cmd_stations_import(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.stations import StationFileError, read_station_file
    from storage.db import connect
    from storage.stations import upsert_stations

    try:
        stations = read_station_file(Path(args.file))
    except (StationFileError, OSError) as exc:
        console.print(f"[red]cannot import:[/red] {exc}")
        return 1
    with connect(_require_database(settings)) as conn:
        created, updated = upsert_stations(conn, stations)
    console.print(f"{args.file}: {created} station(s) created, {updated} updated")
    return 0


def cmd_stations_list(args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import connect
    from storage.stations import list_stations

    with connect(_require_database(settings)) as conn:
        stations = list_stations(conn, kind=args.kind, city_code=args.city_code)
    table = Table("station_id", "name", "kind", "city", "province", "timezone", "active")
    for s in stations:
        table.add_row(
            s.station_id,
            s.name,
            s.kind,
            s.city or "",
            s.province or "",
            s.timezone,
            "yes" if s.active else "no",
        )
    out = Console()
    if not out.is_terminal:
        out = Console(width=240)
    out.print(table)
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Start what is missing (private database and broker), migrate, run the components."""
    from airwater.embedded import MosquittoServer, PostgresServer
    from storage.db import connect
    from storage.migrate import migrate

    started: list[PostgresServer | MosquittoServer] = []
    children: list[subprocess.Popen[bytes]] = []
    env = dict(os.environ)
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if settings.database_url is None:
            postgres = PostgresServer(settings.data_dir / "postgres")
            postgres.start()
            started.append(postgres)
            env["AIRWATER_DATABASE_URL"] = postgres.url
        if settings.mqtt_url is None:
            mosquitto = MosquittoServer(settings.data_dir / "mosquitto")
            mosquitto.start()
            started.append(mosquitto)
            env["AIRWATER_MQTT_URL"] = mosquitto.url
        with connect(env["AIRWATER_DATABASE_URL"]) as conn:
            applied = migrate(conn)
        log.info("database ready (%d migration(s) applied)", len(applied))
        for module in ("ingest",):
            children.append(subprocess.Popen([sys.executable, "-m", module], env=env))
        console.print(
            "[bold green]airwater is running[/bold green]\n"
            f"  database  {env['AIRWATER_DATABASE_URL']}\n"
            f"  broker    {env['AIRWATER_MQTT_URL']}  (publish to stations/<id>/readings)\n"
            f"  metrics   http://127.0.0.1:{settings.metrics_port}/metrics\n"
            "Press Ctrl-C to stop."
        )
        while not stop_requested:
            for child in children:
                if child.poll() is not None:
                    log.error("%s exited with %s; stopping", child.args, child.returncode)
                    stop_requested = True
            time.sleep(0.5)
    finally:
        console.print("stopping…")
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        for service in reversed(started):
            service.stop()
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.__main__ import main as ingest_main

    return ingest_main([])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airwater",
        description="Air and surface-water monitoring against the Chinese standards and the "
        "national targets. Configuration: AIRWATER_* environment variables "
        "(AIRWATER_DATABASE_URL, AIRWATER_MQTT_URL, …).",
    )
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run everything for a demo: private database and broker "
        "(unless AIRWATER_DATABASE_URL / AIRWATER_MQTT_URL are set), "
        "migrations, the ingest worker",
    )
    run.set_defaults(handler=cmd_run)

    migrate = sub.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(handler=cmd_migrate)

    ingest = sub.add_parser("ingest", help="run one ingest worker (same as python -m ingest)")
    ingest.set_defaults(handler=cmd_ingest)

    stations = sub.add_parser("stations", help="the station registry")
    stations_sub = stations.add_subparsers(dest="stations_command", required=True, metavar="ACTION")
    importer = stations_sub.add_parser(
        "import",
        help="create or update stations from a CSV (header: station_id,name,kind,"
        "waterbody,city,city_code,province,latitude,longitude,timezone,reading_interval_s,"
        "active) or a JSON array file",
    )
    importer.add_argument("file", help="a .csv or .json file")
    importer.set_defaults(handler=cmd_stations_import)
    lister = stations_sub.add_parser("list", help="list stations")
    lister.add_argument("--kind", choices=["air", "surface_water", "sea", "groundwater"])
    lister.add_argument("--city-code")
    lister.set_defaults(handler=cmd_stations_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(args.handler(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
