"""``airwater aggregate``: the aggregation stage (ingest.aggregation) — run it, or bring the
derived levels up to date once with a progress bar (also what ``airwater migrate`` does)."""

from __future__ import annotations

import argparse
import os

import psycopg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from airwater.commands.common import Subcommands, console, database
from core.settings import Settings


def add_parser(commands: Subcommands) -> None:
    aggregate = commands.add_parser(
        "aggregate",
        help="run the aggregation stage: reflect what ingest and imports queue in every "
        "derived level (station-day, city-day, station/city-year, water section-years)",
    )
    aggregate.add_argument(
        "--until-empty",
        action="store_true",
        help="reflect what is queued now, with a progress bar, then exit",
    )
    aggregate.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus metrics here (0: off)"
    )
    aggregate.set_defaults(handler=cmd_aggregate)


def cmd_aggregate(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as url:
        if args.until_empty:
            with psycopg.connect(url, autocommit=True) as conn:
                settle_with_progress(conn)
            return 0
        from ingest.aggregation import main

        # the stage reads its settings from the environment: give it the database chosen here
        os.environ["AIRWATER_DATABASE_URL"] = url
        return main(["--metrics-port", str(args.metrics_port)])


def settle_with_progress(conn: psycopg.Connection) -> int:
    """Run the stage on ``conn`` until its queue is empty, showing the queue drain."""
    from ingest.aggregation import Stage
    from storage.aggregation import pending

    stage = Stage(conn)
    stage.check_rules()
    queued = pending(conn)[1]
    if not queued:
        return 0
    columns = (
        TextColumn("[bold]deriving levels"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("changes"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("derive", total=queued)

        def advance(batch: object, remaining: int) -> None:
            total = max(queued, progress.tasks[0].completed + remaining)
            done = total - remaining
            progress.update(task, total=total, completed=done)

        reflected = stage.drain(advance)
    console.print(f"derived levels up to date: {reflected} queued change(s) reflected")
    return reflected
