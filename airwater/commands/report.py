"""``airwater report``: annual compliance reports as tables, CSV or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from airwater.commands.common import Subcommands, require_database
from core.settings import Settings
from reports import air_rows
from schemas.reports import AirReport, WaterReport
from standards.water import CLASS_NAMES

if TYPE_CHECKING:
    from psycopg import Connection


def add_parser(commands: Subcommands) -> None:
    report = commands.add_parser(
        "report", help="annual compliance reports (HJ 663 aggregation, GB 3095 / GB 3838)"
    )
    report.add_argument("kind", choices=["air", "water"])
    report.add_argument("--year", type=int, required=True, help="the (first) year")
    report.add_argument("--to", type=int, help="last year of a multi-year trend")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report.add_argument(
        "--parameter",
        default="pm25",
        choices=["pm25", "pm10", "so2", "no2"],
        help="air pollutant (default pm25)",
    )
    report.add_argument(
        "--level",
        default="city",
        choices=["national", "city", "station", "all"],
        help="air rows to show besides the national value (default city)",
    )
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from storage.aggregation import pending

    years = list(range(args.year, (args.to or args.year) + 1))
    with connect(require_database(settings)) as conn:
        if args.kind == "air":
            _report_air(conn, years, args)
        else:
            _report_water(conn, years, args)
        oldest, queued = pending(conn)
    if queued and args.format == "table":
        Console(stderr=True).print(
            f"[yellow]{queued:,} change(s) since {oldest:%Y-%m-%d %H:%M:%S %Z} are not yet "
            "reflected[/yellow]: is `airwater aggregate` running? (`airwater aggregate "
            "--until-empty` brings the figures up to date once)"
        )
    return 0


def _report_air(conn: Connection, years: list[int], args: argparse.Namespace) -> None:
    from reports import AIR_CSV_COLUMNS, air_csv_rows, air_report, air_trend_point, write_csv

    reports_air = [air_report(conn, y, args.parameter) for y in years]
    if args.format == "json":
        _print_json(
            reports_air, [air_trend_point(r) for r in reports_air] if len(years) > 1 else []
        )
    elif args.format == "csv":
        write_csv(sys.stdout, AIR_CSV_COLUMNS, air_csv_rows(reports_air, args.level))
    else:
        for report in reports_air:
            _print_air(report, args.level)


def _report_water(conn: Connection, years: list[int], args: argparse.Namespace) -> None:
    from reports import (
        WATER_CSV_COLUMNS,
        water_csv_rows,
        water_report,
        water_trend_point,
        write_csv,
    )

    reports_water = [water_report(conn, y) for y in years]
    if args.format == "json":
        trend = [water_trend_point(r) for r in reports_water] if len(years) > 1 else []
        _print_json(reports_water, trend)
    elif args.format == "csv":
        write_csv(sys.stdout, WATER_CSV_COLUMNS, water_csv_rows(reports_water))
    else:
        for water in reports_water:
            _print_water(water)


def _fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _print_air(report: AirReport, level: str) -> None:
    out = Console() if Console().is_terminal else Console(width=200)
    target = "" if report.parameter != "pm25" else "   targets: national < 28 (2027), < 25 (2035)"
    out.print(
        f"[bold]{report.parameter.upper()} {report.year}[/bold] — annual limits "
        f"{report.standard} (Grade II {_fmt(report.annual_limit, 0)} {report.unit}); "
        f"24-hour limits {', '.join(report.daily_limit_standards)}{target}"
    )
    table = Table(
        "level",
        "id",
        "name",
        "annual mean",
        "valid days",
        f"P{report.national.percentile_rank:g}",
        "days > 24h limit",
        "meets Grade II",
        "gap to 28",
        "gap to 25",
        "coverage",
    )
    for row in air_rows(report, level):  # type: ignore[arg-type]
        style = None if row.coverage.valid else "dim"
        table.add_row(
            row.level,
            row.id,
            row.name,
            _fmt(row.annual_mean),
            str(row.valid_days),
            _fmt(row.percentile),
            _fmt(row.days_over_24h_limit),
            _fmt(row.meets_grade_ii),
            _fmt(row.gap_to_2027_target),
            _fmt(row.gap_to_2035_target),
            ("valid" if row.coverage.valid else "; ".join(row.coverage.reasons[:2])),
            style=style,
        )
    out.print(table)
    out.print(
        f"cities meeting Grade II: {report.cities_meeting_grade_ii} of "
        f"{report.cities_assessed} assessed ({_fmt(report.share_cities_meeting_grade_ii)} %); "
        f"as of {report.as_of:%Y-%m-%d %H:%M:%S %Z}"
    )


def _print_water(report: WaterReport) -> None:
    out = Console() if Console().is_terminal else Console(width=200)
    out.print(
        f"[bold]Surface water {report.year}[/bold] ({report.standard}): "
        f"{report.sections_assessed} sections assessed, Class I–III "
        f"{_fmt(report.excellent_share)} % (target {report.excellent_share_target:g} % by "
        f"2027: {'met' if report.meets_target else 'not met'}), worse than V "
        f"{_fmt(report.worse_than_v_share)} %; as of {report.as_of:%Y-%m-%d %H:%M:%S %Z}"
    )
    dist = Table(*report.distribution.keys(), title="class distribution")
    dist.add_row(*(str(v) for v in report.distribution.values()))
    out.print(dist)
    if report.basins:
        out.print(_basins_table(report))
    sections = Table("section", "name", "basin", "class", "deciding", "method", "months")
    for s in report.sections:
        sections.add_row(
            s.station_id,
            s.name,
            s.basin or "",
            s.class_name or "–",
            ", ".join(s.deciding_parameters),
            s.method,
            str(s.months_with_data),
        )
    out.print(sections)


def _basins_table(report: WaterReport) -> Table:
    basins = Table(
        "basin", "sections", "I–III %", "worse than V %", "grade / class", title="basins"
    )
    for b in report.basins:
        basins.add_row(
            b.basin,
            str(b.sections),
            _fmt(b.excellent_share),
            _fmt(b.worse_than_v_share),
            b.grade or (f"Class {CLASS_NAMES[b.water_class]}" if b.water_class else "–"),
        )
    return basins


def _print_json(reports: Sequence[BaseModel], trend: Sequence[BaseModel]) -> None:
    """The same document as GET /v1/compliance/…: the reports and, for a range, the trend."""
    print(
        json.dumps(
            {
                "reports": [r.model_dump(mode="json") for r in reports],
                "trend": [t.model_dump(mode="json") for t in trend],
            },
            ensure_ascii=False,
            indent=2,
        )
    )
