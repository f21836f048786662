"""``airwater review``: take a station's bad hours out of the figures (and put them back),
record sand-dust events, read the audit log — the same actions as the API's review routes."""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import datetime

from airwater.commands.common import Subcommands, console, database
from core.settings import Settings
from standards.review import REVIEW_REASONS


def _when(text: str) -> datetime:
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if found.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset, e.g. {text}+08:00")
    return found


def add_parser(commands: Subcommands) -> None:
    review = commands.add_parser(
        "review",
        help="data review: invalidate or restore a station's hours with a reason, record "
        "sand-dust events, read the audit log (every action is kept there)",
    )
    review.add_argument(
        "--by",
        default=None,
        help="who acts, as the audit log names them (default cli:<your user name>)",
    )
    actions = review.add_subparsers(dest="action", required=True, metavar="ACTION")

    invalidate = actions.add_parser(
        "invalidate",
        help="take parameters of a station out of every figure over a time range (widened to "
        "whole hours); the aggregation stage recomputes what it touches",
    )
    invalidate.add_argument("station_id")
    invalidate.add_argument(
        "--parameter", "-p", action="append", required=True, help="e.g. pm25 (repeat for more)"
    )
    invalidate.add_argument("--from", dest="start", type=_when, required=True, help="ISO 8601")
    invalidate.add_argument("--to", dest="end", type=_when, required=True, help="ISO 8601")
    invalidate.add_argument(
        "--reason",
        required=True,
        choices=sorted(REVIEW_REASONS),
        help="; ".join(f"{code}: {text}" for code, text in REVIEW_REASONS.items()),
    )
    invalidate.add_argument("--comment", default="", help="what happened (required for other)")

    accept = actions.add_parser(
        "accept",
        help="overrule the station's own data flags (HJ 212: maintenance, calibration …): its "
        "flagged values in the range count, reason 'verified'",
    )
    accept.add_argument("station_id")
    accept.add_argument(
        "--parameter", "-p", action="append", required=True, help="e.g. pm25 (repeat for more)"
    )
    accept.add_argument("--from", dest="start", type=_when, required=True, help="ISO 8601")
    accept.add_argument("--to", dest="end", type=_when, required=True, help="ISO 8601")
    accept.add_argument("--comment", default="", help="how the values were verified")

    restore = actions.add_parser("restore", help="put the hours of a review back")
    restore.add_argument("review_id", type=int)
    restore.add_argument("--comment", default="")

    listing = actions.add_parser("list", help="a station's reviews, latest first")
    listing.add_argument("station_id")
    listing.add_argument("--active", action="store_true", help="only those not restored")

    dust = actions.add_parser(
        "dust",
        help="record a sand-dust event: the PM10/PM2.5 hours of the areas' air stations leave "
        "the dust-excluded statistics (targets, attainment, ranking)",
    )
    dust.add_argument(
        "--area",
        action="append",
        required=True,
        help="a city code, or a province code ending in 0000 (repeat for more)",
    )
    dust.add_argument("--from", dest="start", type=_when, required=True)
    dust.add_argument("--to", dest="end", type=_when, required=True)
    dust.add_argument("--evidence", required=True, help="what shows the event (bulletin, …)")

    withdraw = actions.add_parser("withdraw-dust", help="withdraw a dust event recorded in error")
    withdraw.add_argument("event_id", type=int)
    withdraw.add_argument("--comment", default="")

    actions.add_parser("dust-list", help="recorded sand-dust events, latest first")

    audit = actions.add_parser("audit", help="the audit log, oldest first (JSON lines)")
    audit.add_argument("--station", default=None, help="a station's entries (and its city's)")
    audit.add_argument("--after", type=int, default=0, help="entries after this audit_id")
    audit.add_argument("--limit", type=int, default=1000)
    review.set_defaults(handler=cmd_review)


def _print(model: object) -> None:
    print(json.dumps(model.model_dump(mode="json", by_alias=True), ensure_ascii=False))  # type: ignore[attr-defined]


def cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from reports import review
    from reports.refusal import Refused

    actor = args.by or f"cli:{getpass.getuser()}"
    with database(settings) as url, connect(url, autocommit=True) as conn:
        try:
            if args.action == "invalidate":
                done = review.invalidate(
                    conn,
                    args.station_id,
                    args.parameter,
                    args.start,
                    args.end,
                    args.reason,
                    args.comment,
                    actor,
                )
                console.print(
                    f"review {done.review_id}: {done.hours} hour(s) of "
                    f"{', '.join(done.parameters)} at {done.station_id} taken out "
                    f"[{done.from_.isoformat()}, {done.to.isoformat()}); the aggregation stage "
                    "recomputes the days it touches"
                )
                _print(done)
            elif args.action == "accept":
                done = review.invalidate(
                    conn,
                    args.station_id,
                    args.parameter,
                    args.start,
                    args.end,
                    None,
                    args.comment,
                    actor,
                    action="accept",
                )
                console.print(
                    f"review {done.review_id}: {done.hours} hour(s) of station-flagged "
                    f"{', '.join(done.parameters)} at {done.station_id} now count "
                    f"[{done.from_.isoformat()}, {done.to.isoformat()})"
                )
                _print(done)
            elif args.action == "restore":
                restored = review.restore(conn, args.review_id, actor, args.comment)
                console.print(f"review {restored.review_id} restored")
                _print(restored)
            elif args.action == "list":
                for item in review.reviews_of_station(conn, args.station_id, args.active):
                    _print(item)
            elif args.action == "dust":
                event = review.record_dust_event(
                    conn, args.area, args.start, args.end, args.evidence, actor
                )
                console.print(
                    f"dust event {event.event_id}: {len(event.city_codes)} city(ies), "
                    f"[{event.from_.isoformat()}, {event.to.isoformat()})"
                )
                _print(event)
            elif args.action == "withdraw-dust":
                _print(review.withdraw_dust_event(conn, args.event_id, actor, args.comment))
            elif args.action == "dust-list":
                for found in review.dust_events(conn):
                    _print(found)
            else:
                page = review.audit_page(conn, args.station, None, args.after, args.limit)
                for entry in page.items:
                    _print(entry)
        except Refused as exc:
            console.print(f"[red]refused[/red] ({exc.kind}): {exc.detail}")
            return 2
    return 0
