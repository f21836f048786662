"""``airwater stations credentials``: the stations' broker accounts — issue, rotate, revoke,
list — and the broker's password and ACL files regenerated from the registry after each change."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from airwater.commands.common import Subcommands, console, database
from core.settings import Settings

if TYPE_CHECKING:
    from psycopg import Connection

# A change to the accounts: the new passwords by user ({} if none), or None if there was
# nothing to do (then the broker's files are left as they are).
Change = Callable[["Connection", argparse.Namespace], "dict[str, str] | None"]


def add_parser(station_actions: Subcommands) -> None:
    creds = station_actions.add_parser(
        "credentials",
        help="broker accounts of stations: each logs in with its station id and may publish "
        "only under stations/<its id>/; the broker's password and ACL files are regenerated "
        "from the registry and the broker reloaded (SIGHUP) without dropping other clients",
    )
    actions = creds.add_subparsers(dest="credentials_command", required=True, metavar="ACTION")
    for name, text in (
        ("issue", "issue credentials to stations that have none (or were revoked)"),
        ("rotate", "replace stations' passwords (the old ones stop working at once)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("station_ids", nargs="*", metavar="ID")
        action.add_argument(
            "--output",
            metavar="FILE",
            help="write the new passwords to FILE as JSON {station_id: password} (mode 0600, "
            "merged into an existing file) instead of printing station_id,password lines",
        )
        if name == "issue":
            action.add_argument(
                "--all-missing",
                action="store_true",
                help="every active station without credentials",
            )
        action.set_defaults(handler=cmd_issue)
    revoker = actions.add_parser("revoke", help="revoke stations' credentials")
    revoker.add_argument("station_ids", nargs="+", metavar="ID")
    revoker.set_defaults(handler=cmd_revoke)
    actions.add_parser("list", help="list broker accounts").set_defaults(handler=cmd_list)
    actions.add_parser(
        "sync",
        help="regenerate the broker's files from the registry (e.g. after stations were "
        "deactivated) and reload the broker",
    ).set_defaults(handler=cmd_sync)


def cmd_issue(args: argparse.Namespace, settings: Settings) -> int:
    """``issue`` and ``rotate``: new passwords, shown once or written to ``--output``."""
    return _change_and_sync(args, settings, _issue)


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    return _change_and_sync(args, settings, _revoke)


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    return _change_and_sync(args, settings, lambda conn, args: {})


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from storage.credentials import accounts

    with database(settings) as url, connect(url) as conn:
        table = Table("user", "role", "issued", "rotated", "revoked", "broker accepts")
        for a in accounts(conn):
            table.add_row(
                a.username,
                a.role,
                f"{a.issued_at:%Y-%m-%d %H:%M}",
                f"{a.rotated_at:%Y-%m-%d %H:%M}" if a.rotated_at else "",
                f"{a.revoked_at:%Y-%m-%d %H:%M}" if a.revoked_at else "",
                "yes" if a.usable else "no",
            )
    Console(width=200).print(table)
    return 0


def _issue(conn: Connection, args: argparse.Namespace) -> dict[str, str] | None:
    from airwater import broker_auth
    from storage.credentials import stations_without_credentials

    ids = list(args.station_ids)
    if getattr(args, "all_missing", False):
        ids += [i for i in stations_without_credentials(conn) if i not in ids]
    if not ids:
        console.print("no station to issue credentials for")
        return None
    rotate = args.credentials_command == "rotate"
    return broker_auth.issue(conn, ids, "station", replace=rotate)


def _revoke(conn: Connection, args: argparse.Namespace) -> dict[str, str]:
    from storage.credentials import revoke

    missing = [i for i in args.station_ids if not revoke(conn, i)]
    if missing:
        console.print(f"[yellow]no active credentials:[/yellow] {', '.join(missing)}")
    return {}


def _change_and_sync(args: argparse.Namespace, settings: Settings, change: Change) -> int:
    """Apply ``change``, regenerate the broker's files, reload it and say what happened;
    exit 1, nothing changed, if the registry refuses."""
    from airwater import broker_auth
    from core.db import connect
    from storage.credentials import CredentialError

    with database(settings) as url, connect(url) as conn:
        try:
            passwords = change(conn, args)
        except CredentialError as exc:
            console.print(f"[red]refused:[/red] {exc} (nothing was changed)")
            return 1
        if passwords is None:
            return 0
        result = broker_auth.sync(conn, settings)
    if passwords:
        _hand_over(passwords, args.output)
    console.print(
        f"broker files: {result.users} user(s) in {result.passwd}; "
        + ("broker reloaded (SIGHUP)" if result.reloaded else "no running broker signalled")
    )
    return 0


def _hand_over(passwords: dict[str, str], output: str | None) -> None:
    """New passwords to the operator, once: to a private file, or as user,password lines."""
    if output:
        write_passwords(Path(output), passwords)
        console.print(f"{len(passwords)} password(s) written to {output} (mode 0600)")
        return
    for user, password in passwords.items():
        print(f"{user},{password}")
    console.print(f"{len(passwords)} password(s) above: shown once, only their hashes are kept")


def write_passwords(path: Path, passwords: dict[str, str]) -> None:
    """user → password as JSON (the format `python -m simulators run --credentials` reads),
    readable by the owner only; merged into an existing file."""
    current: dict[str, str] = {}
    if path.exists():
        current = json.loads(path.read_text(encoding="utf-8"))
    current.update(passwords)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(current, out, indent=2, sort_keys=True)
        out.write("\n")
