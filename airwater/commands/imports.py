"""``airwater import``: bulk import of reading files and station lists, and its summary."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from airwater.commands.common import Subcommands, console, database
from core.settings import Settings

if TYPE_CHECKING:
    from ingest.importer import ImportSummary

DESCRIPTION = (
    "Import readings through the ingest rules and the batch writer. "
    "Formats (detected from the extension and the header): "
    "long CSV with header station,parameter,ts,value (station_id accepted; ts ISO 8601, "
    "without offset = the station's timezone; parameters as in the catalogue, aliases "
    "such as PM2.5 accepted; values in the stored unit); Parquet with the same columns; "
    "the wide hourly layout of the national air network, one file per day "
    "(date,hour,type,<station codes>…: date YYYYMMDD, hour 0-23 in the station's local "
    "time (Asia/Shanghai), hour H = the hour starting at H:00; type rows PM2.5, PM10, "
    "SO2, NO2, O3 (µg/m³) and CO (mg/m³) are readings, *_24h, *_8h and AQI rows are "
    "derived and skipped, an empty cell is no reading); a station list "
    "(code,name,city,longitude,latitude or 监测点编码,监测点名称,城市,经度,纬度), which "
    "creates or updates air stations and is imported before the readings. "
    "Rejected readings become dead letters (source 'import') with a reason. A journal "
    "(table imports) keyed by each file's SHA-256 makes a re-run skip finished files and "
    "resume an interrupted one after its last committed batch. Exit code 1 if a file "
    "could not be read; bad rows never stop the import."
)


def add_parser(commands: Subcommands) -> None:
    importer = commands.add_parser(
        "import",
        help="bulk import of reading files and station lists (resumable, idempotent)",
        description=DESCRIPTION,
    )
    importer.add_argument("files", nargs="+", metavar="FILE")
    importer.add_argument(
        "--format",
        choices=["long", "parquet", "wide", "stations"],
        help="the layout of every FILE (default: detected per file)",
    )
    importer.add_argument(
        "--batch-rows",
        type=int,
        default=100_000,
        help="readings per transaction for long CSV and Parquet (default 100000); a wide "
        "day file is written in one transaction",
    )
    importer.add_argument(
        "--jobs",
        type=int,
        default=min(4, os.cpu_count() or 1),
        metavar="N",
        help="files written at once, each over its own database connection (default: the "
        "cores, at most 4); 1 = one file after the other",
    )
    importer.add_argument(
        "--no-progress", action="store_true", help="no progress bar (logs and summary only)"
    )
    importer.add_argument(
        "--no-settle",
        action="store_true",
        help="return as soon as the readings are stored, leaving the derived levels (daily "
        "values, annual statistics) to a running `airwater aggregate`; by default the import "
        "brings them up to date before it returns",
    )
    importer.set_defaults(handler=cmd_import)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 1 if a file could not be read, 130 if interrupted (a re-run resumes)."""
    with database(settings) as database_url:
        return _import(args, database_url)


def _import(args: argparse.Namespace, database_url: str) -> int:
    from ingest.importer import import_files

    try:
        summary = import_files(
            database_url,
            [Path(p) for p in args.files],
            fmt=args.format,
            batch_rows=args.batch_rows,
            show_progress=not args.no_progress and console.is_terminal,
            jobs=args.jobs,
        )
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/yellow]: every committed batch is kept; run the same "
            "command again to resume"
        )
        return 130
    console.print(summary_table(summary))
    if not args.no_settle:
        import psycopg

        from airwater.commands.aggregate import settle_with_progress

        with psycopg.connect(database_url, autocommit=True) as conn:
            settle_with_progress(conn)
    for failed in summary.files_failed:
        console.print(f"[red]not imported:[/red] {failed}")
    return 1 if summary.files_failed else 0


def summary_table(summary: ImportSummary) -> Table:
    """What an import did: files, stations, readings stored and refused (by reason), speed."""
    table = Table("", "count", title="import summary", title_justify="left")
    table.add_row("files", f"{summary.files:,}")
    table.add_row("  imported now", f"{summary.files_imported:,}")
    table.add_row("  already imported (skipped)", f"{summary.files_already_imported:,}")
    table.add_row("  unreadable", f"{len(summary.files_failed):,}")
    if summary.stations_created or summary.stations_updated or summary.stations_rejected:
        table.add_row("stations created", f"{summary.stations_created:,}")
        table.add_row("stations updated", f"{summary.stations_updated:,}")
        table.add_row("station rows rejected", f"{summary.stations_rejected:,}")
    table.add_row("readings stored", f"{summary.stored:,}")
    table.add_row("duplicates (already stored)", f"{summary.duplicates:,}")
    table.add_row("empty cells (no reading)", f"{summary.empty:,}")
    table.add_row("derived values skipped (*_24h, *_8h, AQI)", f"{summary.derived_skipped:,}")
    table.add_row("dead letters (rejected readings)", f"{summary.rejected.total():,}")
    for reason, n in summary.rejected.most_common():
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row(
        "time",
        f"{summary.seconds:,.1f} s ({summary.readings_per_s:,.0f} readings/s, "
        f"{summary.jobs} job(s))",
    )
    return table
