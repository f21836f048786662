"""``airwater stations``: the station registry (import, list); under ``credentials``, the
stations' broker accounts; under ``hj212``, the identity of stations that speak HJ 212 (MN and
password)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from airwater.commands import credentials
from airwater.commands.common import Subcommands, console, database
from core.settings import Settings

if TYPE_CHECKING:
    from psycopg import Connection


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
    add_hj212_parser(actions)


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


# --- hj212: MN and password of stations that speak HJ 212-2017 over TCP ----------------------


def add_hj212_parser(station_actions: Subcommands) -> None:
    hj212 = station_actions.add_parser(
        "hj212",
        help="identity of stations that speak HJ 212-2017 over TCP: the data logger's device "
        "number (MN) and its password (PW), of which only a hash is kept",
    )
    actions = hj212.add_subparsers(dest="hj212_command", required=True, metavar="ACTION")
    assign = actions.add_parser("assign", help="give a station its data logger's MN")
    assign.add_argument("station_id", metavar="STATION_ID")
    assign.add_argument("mn", metavar="MN", help="1 to 24 letters, digits, _ or -")
    assign.set_defaults(handler=cmd_hj212_assign)
    for name, text in (
        ("issue", "issue passwords to stations that have none (or were revoked)"),
        ("rotate", "replace stations' passwords (the old ones stop working at once)"),
        ("revoke", "revoke stations' passwords"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("station_ids", nargs="+", metavar="STATION_ID")
        action.set_defaults(handler=cmd_hj212_change)
    actions.add_parser(
        "list", help="stations with an MN or a password (never the passwords)"
    ).set_defaults(handler=cmd_hj212_list)


def cmd_hj212_assign(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from storage.hj212 import Hj212Error, set_mn

    with database(settings) as url, connect(url) as conn:
        try:
            set_mn(conn, args.station_id, args.mn)
        except Hj212Error as exc:
            console.print(f"[red]refused:[/red] {exc} (nothing was changed)")
            return 1
    console.print(f"{args.station_id}: HJ 212 MN {args.mn}")
    return 0


def cmd_hj212_change(args: argparse.Namespace, settings: Settings) -> int:
    """``issue``, ``rotate`` (new passwords, printed once as station_id,password lines) and
    ``revoke``; all stations or none: exit 1, nothing changed, if the registry refuses one."""
    from core.db import connect
    from storage.hj212 import Hj212Error

    with database(settings) as url, connect(url) as conn:
        try:
            with conn.transaction():
                if args.hj212_command == "revoke":
                    _revoke_hj212(conn, args.station_ids)
                    return 0
                passwords = _issue_hj212(conn, args.station_ids, args.hj212_command == "rotate")
        except Hj212Error as exc:
            console.print(f"[red]refused:[/red] {exc} (nothing was changed)")
            return 1
    for station_id, password in passwords.items():
        print(f"{station_id},{password}")
    console.print(
        f"{len(passwords)} HJ 212 password(s) above: shown once, only their hashes are kept"
    )
    return 0


def _issue_hj212(conn: Connection, station_ids: list[str], rotate: bool) -> dict[str, str]:
    from core.hj212_secret import hash_password, new_password
    from storage.hj212 import issue

    passwords: dict[str, str] = {}
    for station_id in dict.fromkeys(station_ids):
        password = new_password()
        issue(conn, station_id, hash_password(password), replace=rotate)
        passwords[station_id] = password
    return passwords


def _revoke_hj212(conn: Connection, station_ids: list[str]) -> None:
    from storage.hj212 import revoke

    missing = [i for i in dict.fromkeys(station_ids) if not revoke(conn, i)]
    if missing:
        console.print(f"[yellow]no HJ 212 password to revoke:[/yellow] {', '.join(missing)}")


def cmd_hj212_list(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from storage.hj212 import identities

    with database(settings) as url, connect(url) as conn:
        rows = identities(conn)
    table = Table("station_id", "MN", "issued", "rotated", "revoked", "gateway accepts")
    for row in rows:
        table.add_row(
            row.station_id,
            row.mn or "",
            f"{row.created_at:%Y-%m-%d %H:%M}" if row.created_at else "",
            f"{row.rotated_at:%Y-%m-%d %H:%M}" if row.rotated_at else "",
            f"{row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "",
            "yes" if row.usable else "no",
        )
    Console(width=200).print(table)
    return 0
