"""The progress display of an import (values or rows per second, ETA), on stderr: of files
(``airwater import``) and of readings held in memory (the simulators' backfill)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _PerSecond(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            f"{speed:,.0f} {self.unit}/s" if speed else f"… {self.unit}/s",
            style="progress.data.speed",
        )


def import_progress(enabled: bool, unit: str = "values") -> Progress:
    """A progress display counting ``unit`` (values, rows); shows nothing unless ``enabled``."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} " + unit),
        _PerSecond(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def advancer(progress: Progress, task: TaskID, overall: TaskID) -> Callable[[int, str], None]:
    """Advances a file's bar and the overall one by n values, with a note on the file's."""

    def advance(n: int, note: str) -> None:
        progress.update(task, advance=n, note=note)
        progress.update(overall, advance=n)

    return advance
