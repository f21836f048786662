"""CSV and JSON export: the one content negotiation of every CSV-capable endpoint, and the
CSV lines of the compliance reports and of a station's readings (the CLI writes the same
columns as the REST API)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any, Literal, TextIO

from reports.quality import flags_of_reading
from reports.series import unit_of
from schemas.assessment import AirAssessment, AssessedArea, PeriodFigures, Status
from schemas.reports import AirAnnual, AirReport, WaterReport, WaterSection
from standards.assessment import STATISTICS
from standards.quality import FlagsByHour
from storage.series import StoredReading

CSV_MEDIA_TYPE = "text/csv"
JSON_MEDIA_TYPE = "application/json"

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
AssessmentLevel = Literal["national", "province", "city", "station", "all"]
_FIGURES = (
    *(s.key for s in STATISTICS),
    "attains",
    "index",
    "largest_contributor",
    "good_day_share",
    "heavy_days",
)
ASSESSMENT_CSV_COLUMNS: tuple[str, ...] = (
    "year",
    "provisional",
    "period_start",
    "period_end",
    "standard",
    "level",
    "id",
    "name",
    "province",
    "rank",
    "rank_in_province",
    *_FIGURES,
    "not_assessed",
    *(f"same_period_{name}" for name in _FIGURES if name != "attains"),
    "pm25_change_percent",
    "index_change_percent",
    "pm25_rest_of_year_must_average",
    "pm25_rest_of_year_comparator",
)
STATUS_CSV_COLUMNS: tuple[str, ...] = ("year", "provisional", "period_end", "figure", "value")
# quality_flags: the codes of the reading's hour's automatic quality flags, joined by ";"
READINGS_CSV_COLUMNS = (
    "station_id",
    "parameter",
    "ts",
    "value",
    "unit",
    "flag",
    "flag_reason",
    "quality_flags",
)


# --- content negotiation ----------------------------------------------------------------


def _quality(accept: str, media_type: str) -> float:
    """q of the most specific media range of ``accept`` that matches ``media_type`` (RFC 9110
    §12.5.1); 0 when none does."""
    kind = media_type.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        media_range, *params = (p.strip() for p in part.split(";"))
        media_range = media_range.lower()
        if media_range == media_type:
            specificity = 2
        elif media_range == f"{kind}/*":
            specificity = 1
        elif media_range == "*/*":
            specificity = 0
        else:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = max(best, (specificity, q))
    return best[1]


def wants_csv(accept: str | None, output_format: str | None) -> bool:
    """CSV when ``?format=csv``, or when the Accept header prefers text/csv to JSON (by
    q-value; a tie is JSON); JSON otherwise. ``?format=`` wins over Accept."""
    if output_format is not None:
        return output_format == "csv"
    if not accept:
        return False
    return _quality(accept, CSV_MEDIA_TYPE) > _quality(accept, JSON_MEDIA_TYPE)


# --- writing ----------------------------------------------------------------------------


def write_csv(out: TextIO, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Header then one line per row; None is written as an empty field."""
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    """The CSV of ``rows`` as one string, header first."""
    buffer = io.StringIO()
    write_csv(buffer, columns, rows)
    return buffer.getvalue()


# --- compliance reports -----------------------------------------------------------------


def air_rows(report: AirReport, level: AirLevel) -> list[AirAnnual]:
    """The national value, then the cities and/or stations ``level`` asks for."""
    rows = [report.national]
    if level in ("city", "all"):
        rows += report.cities
    if level in ("station", "all"):
        rows += report.stations
    return rows


def _flat_air(row: AirAnnual, report: AirReport) -> dict[str, Any]:
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


def _flat_water(section: WaterSection, report: WaterReport) -> dict[str, Any]:
    """One CSV line of a water report: a section and its annual class (annual means left out)."""
    return {
        "year": report.year,
        **section.model_dump(exclude={"annual_means"}),
        "deciding_parameters": " ".join(section.deciding_parameters),
    }


def air_csv_rows(reports: Iterable[AirReport], level: AirLevel) -> list[dict[str, Any]]:
    """The CSV lines (AIR_CSV_COLUMNS) of air reports, year after year."""
    return [_flat_air(row, report) for report in reports for row in air_rows(report, level)]


def water_csv_rows(reports: Iterable[WaterReport]) -> list[dict[str, Any]]:
    """The CSV lines (WATER_CSV_COLUMNS) of water reports: one per section and year."""
    return [_flat_water(section, report) for report in reports for section in report.sections]


# --- the six-pollutant assessment and the status ---------------------------------------


def _figures(figures: PeriodFigures | None) -> dict[str, Any]:
    if figures is None:
        return {}
    row: dict[str, Any] = {s.key: s.published for s in figures.statistics}
    row.update(
        attains=figures.attains,
        index=figures.index.value if figures.index else None,
        largest_contributor=figures.index.largest_contributor if figures.index else None,
        good_day_share=figures.aqi_days.good_day_share if figures.aqi_days else None,
        heavy_days=figures.aqi_days.heavy_days if figures.aqi_days else None,
    )
    return row


def _flat_area(area: AssessedArea, report: AirAssessment) -> dict[str, Any]:
    rest = area.pm25_rest_of_year
    row: dict[str, Any] = {
        "year": report.year,
        "provisional": report.provisional,
        "period_start": report.period_start,
        "period_end": report.period_end,
        "standard": report.standard,
        "level": area.level,
        "id": area.id,
        "name": area.name,
        "province": area.province,
        "rank": area.rank,
        "rank_in_province": area.rank_in_province,
        **_figures(area.period),
        "not_assessed": "; ".join(area.period.not_assessed),
        **{f"same_period_{k}": v for k, v in _figures(area.same_period).items() if k != "attains"},
        "pm25_change_percent": area.change_percent.get("pm25_mean"),
        "index_change_percent": area.change_percent.get("index"),
        "pm25_rest_of_year_must_average": rest.must_average if rest else None,
        "pm25_rest_of_year_comparator": rest.comparator if rest else None,
    }
    return row


def assessment_csv_rows(report: AirAssessment, level: AssessmentLevel) -> list[dict[str, Any]]:
    """The CSV lines (ASSESSMENT_CSV_COLUMNS): the nation, then the provinces, cities
    (ranked) and/or stations ``level`` asks for."""
    areas = [report.national]
    if level in ("province", "all"):
        areas += report.provinces
    if level in ("city", "all"):
        areas += report.cities
    if level in ("station", "all"):
        areas += report.stations
    return [_flat_area(area, report) for area in areas]


def status_csv_rows(status: Status) -> list[dict[str, Any]]:
    """The CSV lines (STATUS_CSV_COLUMNS) of a status: one figure per line."""
    figures: dict[str, Any] = {
        f"air_{k}": v
        for k, v in status.air.model_dump(exclude={"best", "worst", "pm25_rest_of_year"}).items()
    }
    rest = status.air.pm25_rest_of_year
    if rest is not None:
        figures["air_pm25_rest_of_year_must_average"] = rest.must_average
        figures["air_pm25_rest_of_year_comparator"] = rest.comparator
        figures["air_pm25_rest_of_year_days_left"] = rest.days_left
    figures.update({f"water_{k}": v for k, v in status.water.model_dump().items()})
    for city in status.air.best:
        figures[f"air_rank_{city.rank}"] = f"{city.name} ({city.city_code}) {city.index}"
    return [
        {
            "year": status.year,
            "provisional": status.provisional,
            "period_end": status.period_end,
            "figure": name,
            "value": value,
        }
        for name, value in figures.items()
    ]


# --- readings ---------------------------------------------------------------------------


def readings_csv_header() -> bytes:
    """The header line of a readings CSV (READINGS_CSV_COLUMNS)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(READINGS_CSV_COLUMNS)
    return buffer.getvalue().encode()


def readings_csv_lines(rows: Iterable[StoredReading], flags: FlagsByHour | None = None) -> bytes:
    """CSV lines of stored readings: times in UTC with offset, values in their stored unit,
    and the codes of the quality flags each inherits from its hour in ``flags``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for station_id, parameter, ts, value, flag, flag_reason in rows:
        quality = flags_of_reading(flags, parameter, ts) if flags else []
        writer.writerow(
            (
                station_id,
                parameter,
                ts.astimezone(UTC).isoformat(),
                value,
                unit_of(parameter),
                flag,
                flag_reason,
                ";".join(f.code for f in quality),
            )
        )
    return buffer.getvalue().encode()
