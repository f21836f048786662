"""``airwater stations``: the station registry (import, list) and, under ``credentials``, the
stations' broker accounts."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from airwater.commands import credentials
from airwater.commands.common import Subcommands, console, database
from core.settings import Settings


def add_parser(commands: Subcommands) -> None:
    stations = commands.add_parser("stations", help="the station registry")
    actions = stations.add_subparsers(dest="stations_command", required=True, metavar="ACTION")
    importer = actions.add_parser(
        "import",
        help="create or update stations from a CSV (header: station_id,name,kind,"
        "waterbody,city,city_code,province,latitude,longitude,timezone,reading_interval_s,"
        "active) or a JSON array file",
    )
    importer.add_argument("file", help="a .csv or .json file")
    importer.set_defaults(handler=cmd_stations_import)
    lister = actions.add_parser("list", help="list stations")
    lister.add_argument("--kind", choices=["air", "surface_water", "sea", "groundwater"])
    lister.add_argument("--city-code")
    lister.set_defaults(handler=cmd_stations_list)
    credentials.add_parser(actions)


def cmd_stations_import(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from schemas.stations import StationFileError, read_station_file
    from storage.stations import upsert_stations

    try:
        stations = read_station_file(Path(args.file))
    except (StationFileError, OSError) as exc:
        console.print(f"[red]cannot import:[/red] {exc}")
        return 1
    with database(settings) as url, connect(url) as conn:
        created, updated = upsert_stations(conn, stations)
    console.print(f"{args.file}: {created} station(s) created, {updated} updated")
    return 0


def cmd_stations_list(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from storage.stations import list_stations

    with database(settings) as url, connect(url) as conn:
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
