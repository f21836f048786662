"""Compliance reports flattened to rows (one CSV line each) and to trend points, shared by
the CLI and the REST API so that both exports have the same columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TextIO

from schemas.reports import (
    AirAnnual,
    AirReport,
    AirTrendPoint,
    WaterReport,
    WaterSection,
    WaterTrendPoint,
)

AirLevel = Literal["national", "city", "station", "all"]

AIR_CSV_COLUMNS: tuple[str, ...] = (
    *(name for name in AirAnnual.model_fields if name != "coverage"),
    "year",
    "standard",
    "coverage_expected",
    "coverage_observed",
    "coverage_percent",
    "coverage_valid",
    "coverage_reasons",
)
WATER_CSV_COLUMNS: tuple[str, ...] = (
    "year",
    *(name for name in WaterSection.model_fields if name != "annual_means"),
)


def air_rows(report: AirReport, level: AirLevel) -> list[AirAnnual]:
    """The national value, then the cities and/or stations ``level`` asks for."""
    rows = [report.national]
    if level in ("city", "all"):
        rows += report.cities
    if level in ("station", "all"):
        rows += report.stations
    return rows


def flat_air(row: AirAnnual, report: AirReport) -> dict[str, Any]:
    """One CSV line of an air report: the row's fields with its coverage spread out."""
    data = row.model_dump(exclude={"coverage"})
    data.update(
        year=report.year,
        standard=report.standard,
        coverage_expected=row.coverage.expected,
        coverage_observed=row.coverage.observed,
        coverage_percent=row.coverage.percent_complete,
        coverage_valid=row.coverage.valid,
        coverage_reasons="; ".join(row.coverage.reasons),
    )
    return data


def flat_water(section: WaterSection, report: WaterReport) -> dict[str, Any]:
    """One CSV line of a water report: a section and its annual class (annual means left out)."""
    return {
        "year": report.year,
        **section.model_dump(exclude={"annual_means"}),
        "deciding_parameters": " ".join(section.deciding_parameters),
    }


def air_csv_rows(reports: Iterable[AirReport], level: AirLevel) -> list[dict[str, Any]]:
    return [flat_air(row, report) for report in reports for row in air_rows(report, level)]


def water_csv_rows(reports: Iterable[WaterReport]) -> list[dict[str, Any]]:
    return [flat_water(section, report) for report in reports for section in report.sections]


def write_csv(out: TextIO, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Header then one line per row; None is written as an empty field."""
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    write_csv(buffer, columns, rows)
    return buffer.getvalue()


def air_trend_point(report: AirReport) -> AirTrendPoint:
    """The year's point of a multi-year air trend, taken from its report."""
    return AirTrendPoint(
        year=report.year,
        national_annual_mean=report.national.annual_mean,
        national_valid=report.national.coverage.valid,
        share_cities_meeting_grade_ii=report.share_cities_meeting_grade_ii,
        standard=report.standard,
        annual_limit=report.annual_limit,
    )


def water_trend_point(report: WaterReport) -> WaterTrendPoint:
    """The year's point of a multi-year water trend, taken from its report."""
    return WaterTrendPoint(
        year=report.year,
        excellent_share=report.excellent_share,
        worse_than_v_share=report.worse_than_v_share,
        sections_assessed=report.sections_assessed,
    )
