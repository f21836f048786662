"""Published years: an admin publishes a finished year's annual report (air and/or water) and
its figures are kept as they were; a later change that would alter them (a late reading, a
review action, a registry change) adds a revision with the difference, so that what was
published never changes silently. Reports can be read as published (any revision) or current.

A refused action changes nothing and says why (Refused: not_found → 404,
invalid → 422, conflict → 409)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from reports.air import AIR_REPORT_PARAMETERS, air_report
from reports.assessment import today_in_china
from reports.refusal import Refused
from reports.water import water_report
from schemas.publications import (
    Change,
    Publication,
    PublicationHistory,
    PublicationKind,
    PublishedFigures,
    Revision,
)
from schemas.reports import AirReport, WaterReport
from storage import publications as stored
from storage.review import append_audit

log = logging.getLogger(__name__)

KINDS: tuple[PublicationKind, ...] = ("air", "water")
# The stations a kind's report is made of (aggregation_queue and the registry).
STATION_KIND = {"air": "air", "water": "surface_water"}
# Fields of a report that change with every reading of it, not with its figures.
VOLATILE = frozenset({"as_of"})
# The field that names an item of a list of stations, cities, sections or basins.
LIST_KEYS = ("id", "station_id", "basin")
# Changes written into an audit entry (the revision itself keeps them all).
AUDIT_CHANGES = 50


@dataclass(frozen=True)
class _Current:
    figures: dict[str, Any]
    as_of: datetime


def _kind(kind: str) -> PublicationKind:
    if kind not in KINDS:
        raise Refused("invalid", f"unknown kind {kind!r}: one of {list(KINDS)}")
    return kind


def _without_volatile(report: AirReport | WaterReport) -> dict[str, Any]:
    return report.model_dump(mode="json", exclude=set(VOLATILE))


def current_figures(conn: psycopg.Connection, kind: PublicationKind, year: int) -> _Current:
    """The year's figures as the kept levels give them now (air: every report parameter)."""
    if kind == "air":
        reports = [air_report(conn, year, parameter) for parameter in AIR_REPORT_PARAMETERS]
        return _Current(
            {r.parameter: _without_volatile(r) for r in reports}, min(r.as_of for r in reports)
        )
    report = water_report(conn, year)
    return _Current(_without_volatile(report), report.as_of)


def _stamp(conn: psycopg.Connection, kind: PublicationKind, year: int) -> str:
    if kind == "air":
        return stored.air_year_stamp(conn, year)
    return stored.water_year_stamp(conn, year)


# --- the difference of two revisions' figures ---------------------------------------------

_ABSENT = object()


def _list_key(items: list[Any]) -> str | None:
    """The key naming each item of a list of objects, when every item has it."""
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in LIST_KEYS:
        if all(key in item for item in items):
            return key
    return None


def _keyed(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return {str(item[key]): item for item in items}


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """Keys of both, in the order of the first, then the second's new ones."""
    seen = dict.fromkeys(first)
    seen.update(dict.fromkeys(second))
    return list(seen)


def difference(published: Any, current: Any, path: str = "") -> list[dict[str, Any]]:
    """Every value that differs between two report trees, as {path, published, current}:
    objects are walked key by key, lists of stations, cities, sections and basins item by
    item by their id (``stations[110000-A001]``); other lists are values. A key or item
    present on one side only is a change whose other side is null."""
    if isinstance(published, dict) and isinstance(current, dict):
        changes: list[dict[str, Any]] = []
        for key in _union(published, current):
            changes += difference(
                published.get(key, _ABSENT), current.get(key, _ABSENT), f"{path}.{key}"
            )
        return changes
    if isinstance(published, list) and isinstance(current, list):
        list_key = _list_key(published + current)
        if list_key is not None:
            old, new = _keyed(published, list_key), _keyed(current, list_key)
            changes = []
            for item in _union(old, new):
                changes += difference(
                    old.get(item, _ABSENT), new.get(item, _ABSENT), f"{path}[{item}]"
                )
            return changes
    if published == current and type(published) is type(current):
        return []
    return [
        {
            "path": path.removeprefix("."),
            "published": None if published is _ABSENT else published,
            "current": None if current is _ABSENT else current,
        }
    ]


# --- publishing and revising ----------------------------------------------------------------


def _revision_out(row: dict[str, Any]) -> Revision:
    changes = row["difference"]
    return Revision(
        kind=row["kind"],
        year=row["year"],
        revision=row["revision"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        cause=row["cause"],
        as_of=row["as_of"],
        changes=len(changes or []),
        difference=None if changes is None else [Change(**c) for c in changes],
    )


def _ended(year: int, today: date) -> None:
    if year > today.year:
        raise Refused("invalid", f"{year} has not begun (today is {today.isoformat()} in Beijing)")
    if year == today.year:
        raise Refused(
            "invalid",
            f"{year} is in progress (today is {today.isoformat()} in Beijing): a year is "
            "published once it has ended",
        )


def _settled(conn: psycopg.Connection, kind: PublicationKind, year: int) -> bool:
    return not stored.queued_changes_in_year(conn, STATION_KIND[kind], year)


def publish(
    conn: psycopg.Connection, kind: str, year: int, actor: str, today: date | None = None
) -> Revision:
    """Publish a year that has ended (Beijing date): its current figures become revision 1,
    with an audit entry. Refused when already published (conflict), when the year has not
    ended (invalid), or while changes to it wait for the aggregation stage (conflict)."""
    checked = _kind(kind)
    _ended(year, today or today_in_china())
    with conn.transaction():
        stored.lock_publication(conn, checked, year)
        found = stored.latest_revision(conn, checked, year)
        if found is not None:
            raise Refused(
                "conflict",
                f"{checked} {year} was published at {found['created_at'].isoformat()} by "
                f"{found['created_by']} (latest revision {found['revision']}); later changes "
                "become revisions",
            )
        if not _settled(conn, checked, year):
            raise Refused(
                "conflict",
                f"changes to {year} still wait for the aggregation stage; publish once it has "
                "reflected them",
            )
        stamp = _stamp(conn, checked, year)  # before the figures: a later change is seen
        current = current_figures(conn, checked, year)
        row = stored.insert_revision(
            conn, checked, year, 1, actor, "publish", current.as_of, current.figures, None
        )
        stored.save_stamp(conn, checked, year, stamp)
        append_audit(
            conn,
            {
                "actor": actor,
                "action": "publish",
                "comment": f"{checked} {year} published (revision 1)",
                "detail": {"kind": checked, "year": year, "revision": 1},
            },
        )
    return _revision_out(row)


def _check_year(
    conn: psycopg.Connection, kind: PublicationKind, year: int, actor: str
) -> Revision | None:
    """Compare one published year with its current figures; a new revision if they differ."""
    with conn.transaction():
        stored.lock_publication(conn, kind, year)
        if not _settled(conn, kind, year):
            return None  # checked again once the stage has caught up
        stamp = _stamp(conn, kind, year)
        if stamp == stored.checked_stamp(conn, kind, year):
            return None
        latest = stored.latest_revision(conn, kind, year)
        assert latest is not None  # only published years are checked
        current = current_figures(conn, kind, year)
        changes = difference(latest["figures"], current.figures)
        stored.save_stamp(conn, kind, year, stamp)
        if not changes:
            return None
        number = latest["revision"] + 1
        row = stored.insert_revision(
            conn, kind, year, number, actor, "revision", current.as_of, current.figures, changes
        )
        append_audit(
            conn,
            {
                "actor": actor,
                "action": "revision",
                "comment": f"{kind} {year} revision {number}: {len(changes)} value(s) changed",
                "detail": {
                    "kind": kind,
                    "year": year,
                    "revision": number,
                    "changes": len(changes),
                    "difference": changes[:AUDIT_CHANGES],
                },
            },
        )
    log.info("%s %s: revision %d, %d value(s) changed", kind, year, number, len(changes))
    return _revision_out(row)


def check_revisions(conn: psycopg.Connection, actor: str = "system") -> list[Revision]:
    """Compare every published year with its current figures and add a revision (with an
    audit entry) to each whose figures changed since its latest revision; returns the new
    revisions. A year whose kept levels did not change since its last check costs one query;
    one with changes still queued for the aggregation stage waits for the next check."""
    revisions = []
    for row in stored.published_years(conn):
        found = _check_year(conn, row["kind"], row["year"], actor)
        if found is not None:
            revisions.append(found)
    return revisions


# --- reading ----------------------------------------------------------------------------------


def publications(conn: psycopg.Connection) -> list[Publication]:
    """Every published (kind, year), by year."""
    return [Publication(**row) for row in stored.published_years(conn)]


def history(conn: psycopg.Connection, kind: str, year: int) -> PublicationHistory:
    """Every revision of a published year with the difference each made."""
    checked = _kind(kind)
    rows = stored.revisions_of_year(conn, checked, year)
    if not rows:
        raise Refused("not_found", f"{checked} {year} is not published")
    return PublicationHistory(kind=checked, year=year, revisions=[_revision_out(r) for r in rows])


def _stored_revision(
    conn: psycopg.Connection, kind: PublicationKind, year: int, number: int | None
) -> dict[str, Any]:
    if number is None:
        row = stored.latest_revision(conn, kind, year)
        if row is None:
            raise Refused("not_found", f"{kind} {year} is not published")
        return row
    row = stored.revision(conn, kind, year, number)
    if row is None:
        latest = stored.latest_revision(conn, kind, year)
        if latest is None:
            raise Refused("not_found", f"{kind} {year} is not published")
        raise Refused(
            "not_found",
            f"{kind} {year} has no revision {number} (revisions 1 to {latest['revision']})",
        )
    return row


def _air_reports(row: dict[str, Any]) -> dict[str, AirReport]:
    return {
        parameter: AirReport.model_validate({**figures, "as_of": row["as_of"]})
        for parameter, figures in row["figures"].items()
    }


def published(
    conn: psycopg.Connection, kind: str, year: int, number: int | None = None
) -> PublishedFigures:
    """The figures of revision ``number`` (default the latest) of a published year."""
    checked = _kind(kind)
    row = _stored_revision(conn, checked, year, number)
    return PublishedFigures(
        kind=checked,
        year=year,
        revision=row["revision"],
        created_at=row["created_at"],
        cause=row["cause"],
        air=_air_reports(row) if checked == "air" else None,
        water=WaterReport.model_validate({**row["figures"], "as_of": row["as_of"]})
        if checked == "water"
        else None,
    )


def published_air_report(
    conn: psycopg.Connection, year: int, parameter: str = "pm25", number: int | None = None
) -> tuple[AirReport, int]:
    """The air report of ``parameter`` as revision ``number`` (default the latest) published
    it, and that revision's number."""
    row = _stored_revision(conn, "air", year, number)
    reports = _air_reports(row)
    if parameter not in reports:
        raise Refused("not_found", f"air {year} was published without {parameter}")
    return reports[parameter], int(row["revision"])


def published_water_report(
    conn: psycopg.Connection, year: int, number: int | None = None
) -> tuple[WaterReport, int]:
    """The water report as revision ``number`` (default the latest) published it."""
    row = _stored_revision(conn, "water", year, number)
    report = WaterReport.model_validate({**row["figures"], "as_of": row["as_of"]})
    return report, int(row["revision"])
