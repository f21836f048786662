"""``airwater publish``: publish a finished year's annual report (air or water), compare the
published years with their current figures (a revision for each that changed), list them —
the same actions as the API's /v1/publications."""

from __future__ import annotations

import argparse
import getpass
import json

from airwater.commands.common import Subcommands, console, database
from core.settings import Settings


def add_parser(commands: Subcommands) -> None:
    publish = commands.add_parser(
        "publish",
        help="publish a finished year (air or water) and keep its figures; later changes "
        "become revisions with their difference",
        description="air|water --year Y: publish the year's annual report as revision 1 (the "
        "year must have ended, Beijing date). check: compare every published year with its "
        "current figures and add a revision to each that changed (the aggregation stage does "
        "this on its own every AIRWATER_PUBLICATION_CHECK_S). list: the published years and "
        "their revisions (JSON lines).",
    )
    publish.add_argument("action", choices=["air", "water", "check", "list"])
    publish.add_argument("--year", type=int, help="the year to publish (air, water)")
    publish.add_argument(
        "--by",
        default=None,
        help="who acts, as the audit log names them (default cli:<your user name>)",
    )
    publish.set_defaults(handler=cmd_publish)


def _print(model: object) -> None:
    print(json.dumps(model.model_dump(mode="json"), ensure_ascii=False))  # type: ignore[attr-defined]


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from reports import publications
    from reports.refusal import Refused

    if args.action in ("air", "water") and args.year is None:
        console.print(f"[red]refused[/red]: `airwater publish {args.action}` needs --year")
        return 2
    actor = args.by or f"cli:{getpass.getuser()}"
    with database(settings) as url, connect(url, autocommit=True) as conn:
        try:
            if args.action == "check":
                revised = publications.check_revisions(conn, actor)
                for revision in revised:
                    console.print(
                        f"{revision.kind} {revision.year}: revision {revision.revision}, "
                        f"{revision.changes} value(s) changed"
                    )
                    _print(revision)
                if not revised:
                    console.print("no published figure changed")
            elif args.action == "list":
                for found in publications.publications(conn):
                    _print(publications.history(conn, found.kind, found.year))
            else:
                done = publications.publish(conn, args.action, args.year, actor)
                console.print(f"{done.kind} {done.year} published (revision {done.revision})")
                _print(done)
        except Refused as exc:
            console.print(f"[red]refused[/red] ({exc.kind}): {exc.detail}")
            return 2
    return 0
