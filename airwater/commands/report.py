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

from airwater.commands.common import Subcommands, console, database
from core.settings import Settings
from reports import air_rows
from schemas.assessment import AirAssessment, PeriodFigures, Status
from schemas.reports import AirReport, WaterReport
from standards.water import CLASS_NAMES

if TYPE_CHECKING:
    from psycopg import Connection


def add_parser(commands: Subcommands) -> None:
    report = commands.add_parser(
        "report",
        help="annual compliance reports (HJ 663 aggregation, GB 3095 / GB 3838)",
        description="air / water: the annual PM2.5 (or --parameter) and water reports; "
        "assessment: the six-pollutant assessment of every city (attainment, comprehensive "
        "index and ranking, good days, same period of the previous year); status: where the "
        "country stands in the year, as the dashboard's front page. A year in progress is "
        "reported over its days so far (provisional) and says so.",
    )
    report.add_argument("kind", choices=["air", "water", "assessment", "status"])
    report.add_argument(
        "--year", type=int, help="the (first) year (default: the current year in Beijing)"
    )
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
        choices=["national", "province", "city", "station", "all"],
        help="rows to show besides the national value (default city; province: assessment only)",
    )
    report.add_argument(
        "--published",
        action="store_true",
        help="air, water: the figures as published (`airwater publish`), not as computed now",
    )
    report.add_argument(
        "--revision", type=int, help="with --published: this revision (default the latest)"
    )
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from reports import today_in_china
    from storage.aggregation import pending

    today = today_in_china()
    first = args.year if args.year is not None else today.year
    years = list(range(first, (args.to or first) + 1))
    if years[-1] > today.year:
        console.print(f"[red]{years[-1]} has not begun[/red] (today is {today} in Beijing)")
        return 2
    if (args.published or args.revision is not None) and args.kind not in ("air", "water"):
        console.print("[red]--published and --revision are for air and water reports[/red]")
        return 2
    with database(settings) as url, connect(url) as conn:
        if args.published or args.revision is not None:
            return _report_published(conn, years, args)
        if today.year in years and args.format == "table":
            console.print(
                f"[yellow]{today.year} is in progress[/yellow]: its figures cover 1 January – "
                f"{today:%d %B} (Beijing) and are provisional"
            )
        if args.kind == "air":
            _report_air(conn, years, args)
        elif args.kind == "water":
            _report_water(conn, years, args)
        elif args.kind == "assessment":
            _report_assessment(conn, years, args)
        else:
            _report_status(conn, years, args)
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


def _report_published(conn: Connection, years: list[int], args: argparse.Namespace) -> int:
    """The air or water report as a revision published it; exit 2 when it was not."""
    from reports import AIR_CSV_COLUMNS, WATER_CSV_COLUMNS, air_csv_rows, water_csv_rows, write_csv
    from reports.publications import published_air_report, published_water_report
    from reports.refusal import Refused

    try:
        if args.kind == "air":
            found_air = [
                published_air_report(conn, y, args.parameter, args.revision) for y in years
            ]
            reports_air = [report for report, _ in found_air]
            numbers = [number for _, number in found_air]
        else:
            found_water = [published_water_report(conn, y, args.revision) for y in years]
            reports_water = [report for report, _ in found_water]
            numbers = [number for _, number in found_water]
    except Refused as exc:
        console.print(f"[red]not published[/red]: {exc.detail}")
        return 2
    for year, number in zip(years, numbers, strict=True):
        console.print(f"{args.kind} {year}: as published, revision {number}")
    if args.kind == "air":
        if args.format == "json":
            _print_json(reports_air, [])
        elif args.format == "csv":
            write_csv(sys.stdout, AIR_CSV_COLUMNS, air_csv_rows(reports_air, args.level))
        else:
            for report in reports_air:
                _print_air(report, args.level)
    elif args.format == "json":
        _print_json(reports_water, [])
    elif args.format == "csv":
        write_csv(sys.stdout, WATER_CSV_COLUMNS, water_csv_rows(reports_water))
    else:
        for water in reports_water:
            _print_water(water)
    return 0


def _report_assessment(conn: Connection, years: list[int], args: argparse.Namespace) -> None:
    from reports import (
        ASSESSMENT_CSV_COLUMNS,
        AssessmentLevel,
        air_assessment,
        assessment_csv_rows,
        write_csv,
    )

    level: AssessmentLevel = args.level
    for year in years:
        found = air_assessment(conn, year, with_stations=level in ("station", "all"))
        if args.format == "json":
            print(json.dumps(found.model_dump(mode="json"), ensure_ascii=False, indent=2))
        elif args.format == "csv":
            write_csv(sys.stdout, ASSESSMENT_CSV_COLUMNS, assessment_csv_rows(found, level))
        else:
            _print_assessment(found)


def _report_status(conn: Connection, years: list[int], args: argparse.Namespace) -> None:
    from reports import STATUS_CSV_COLUMNS, status, status_csv_rows, write_csv

    for year in years:
        found = status(conn, year)
        if args.format == "json":
            print(json.dumps(found.model_dump(mode="json"), ensure_ascii=False, indent=2))
        elif args.format == "csv":
            write_csv(sys.stdout, STATUS_CSV_COLUMNS, status_csv_rows(found))
        else:
            _print_status(found)


def _published(figures: PeriodFigures | None, key: str) -> float | None:
    if figures is None:
        return None
    return next((s.published for s in figures.statistics if s.key == key), None)


def _print_assessment(report: AirAssessment) -> None:
    out = Console() if Console().is_terminal else Console(width=220)
    so_far = " so far (provisional)" if report.provisional else ""
    out.print(
        f"[bold]Six-pollutant assessment {report.year}{so_far}[/bold] — "
        f"{report.period_start} … {report.period_end} against {report.same_period_start} … "
        f"{report.same_period_end}; Grade II of {report.standard}; cities attaining all six: "
        f"{report.cities_attaining} of {report.cities_assessed} assessed"
    )
    columns = ("pm25_mean", "pm10_mean", "so2_mean", "no2_mean", "co_p95", "o3_8h_p90")
    table = Table(
        "rank", "city", "province", *columns, "index", "largest", "attains", "good days %",
        "PM2.5 vs same period %",
    )  # fmt: skip
    for area in [report.national, *report.cities]:
        index = area.period.index
        aqi = area.period.aqi_days
        table.add_row(
            _fmt(area.rank),
            area.name,
            area.province or "",
            *(_fmt(_published(area.period, key)) for key in columns),
            _fmt(index.value, 2) if index else "–",
            index.largest_contributor if index else "",
            "not assessed" if area.period.attains is None else _fmt(area.period.attains),
            _fmt(aqi.good_day_share if aqi else None),
            _fmt(area.change_percent.get("pm25_mean")),
            style=None if area.period.attains is not None or area.level != "city" else "dim",
        )
    out.print(table)
    out.print("; ".join(report.rules[-1:]))


def _print_status(found: Status) -> None:
    out = Console() if Console().is_terminal else Console(width=200)
    air, water = found.air, found.water
    so_far = " so far (provisional)" if found.provisional else ""
    out.print(f"[bold]Where the country stands: {found.year}{so_far}[/bold] ({found.period_end})")
    out.print(
        f"national PM2.5 {_fmt(air.pm25)} µg/m³ (same period {_fmt(air.pm25_same_period)}, "
        f"{_fmt(air.pm25_change_percent)} %); target below {air.pm25_target:g}: "
        f"{_fmt(air.pm25_below_target)}"
    )
    rest = air.pm25_rest_of_year
    if rest is not None and rest.must_average is not None:
        out.print(
            f"the remaining {rest.days_left} days must average {rest.comparator} "
            f"{rest.must_average:g} µg/m³" + ("" if rest.reachable else " (cannot be met)")
        )
    out.print(
        f"good days {_fmt(air.good_day_share)} % (same period "
        f"{_fmt(air.good_day_share_same_period)} %); heavily polluted city-days "
        f"{_fmt(air.heavy_days)} ({_fmt(air.heavy_days_same_period)})"
    )
    out.print(
        f"cities attaining all six pollutants: {air.cities_attaining} of "
        f"{air.cities_assessed} assessed"
    )
    out.print(
        f"surface water {water.months}: Class I–III {_fmt(water.excellent_share)} % of "
        f"{water.sections_assessed} sections (same months {_fmt(water.same_period_excellent_share)}"
        f" %), target {water.target:g} %"
    )
    ranking = Table("rank", "city", "province", "index", "largest", "PM2.5", title="best / worst")
    for city in [*air.best, *air.worst]:
        ranking.add_row(
            str(city.rank), city.name, city.province or "", _fmt(city.index, 2),
            city.largest_contributor, _fmt(city.pm25),
        )  # fmt: skip
    out.print(ranking)


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
