"""The annual surface-water report: the GB 3838-2002 class of every section from its monthly
values (storage.compliance), the class distribution, the Class I–III share against the 2027
target, the worse-than-V share and the basin grades."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import psycopg

from schemas.reports import BasinGrade, WaterReport, WaterSection, WaterTrendPoint
from standards.assessment import share_published
from standards.targets import SURFACE_WATER_2027
from standards.water import (
    BASIN_MIN_SECTIONS,
    CLASS_NAMES,
    Waterbody,
    basin_class_few_sections,
    basin_grade,
    excellent_share,
    median_class,
    water_class,
    worse_than_v_share,
)
from storage.aggregation import as_of as aggregation_as_of
from storage.compliance import water_sections, water_years

ANNUAL_CLASS_RULE = (
    "Sections reporting parameters: monthly mean of each item, annual mean of the monthly "
    "means, then GB 3838-2002 single-factor class (water temperature, total nitrogen and "
    "fecal coliform not assessed). Sections reporting only a class: the worst class reported "
    "in each month, annual class = median of the monthly classes (the worse one when the "
    "median falls between two)."
)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class SectionYear:
    """A section's year as the aggregation stage keeps it (storage.aggregation)."""

    water_class: int | None
    method: Literal["parameters", "reported_class", "none"]
    deciding: list[str]
    months_with_data: int
    annual_means: dict[str, float]
    monthly_means: dict[str, list[float | None]]


def section_year(
    months: Sequence[tuple[str, int, float, float]], waterbody: str | None
) -> SectionYear:
    """The class of a section's year from its items' months: (item, month 1..12, monthly mean,
    worst daily value). Items: monthly mean of each, annual mean of the monthly means, then
    the GB 3838-2002 single-factor class; a section reporting only a class: the median of
    the worst class reported in each month."""
    monthly: dict[str, list[float | None]] = defaultdict(lambda: [None] * 12)
    class_months: list[float] = []
    for parameter, month, mean, worst in months:
        if parameter == "water_class":
            class_months.append(worst)
        monthly[parameter][month - 1] = mean
    means = {
        p: statistics.fmean(v for v in values if v is not None)
        for p, values in monthly.items()
        if p != "water_class"
    }
    body: Waterbody = "lake" if waterbody == "lake" else "river"
    derived = water_class(means, body) if means else None
    method: Literal["parameters", "reported_class", "none"]
    if derived is not None:
        cls, deciding, method = derived.water_class, list(derived.deciding), "parameters"
    elif class_months:
        cls, deciding, method = median_class(class_months), [], "reported_class"
    else:
        cls, deciding, method = None, [], "none"
    return SectionYear(
        water_class=cls,
        method=method,
        deciding=deciding,
        months_with_data=len({month for _, month, _, _ in months}),
        annual_means=means,
        monthly_means=dict(monthly),
    )


def water_report(conn: psycopg.Connection, year: int) -> WaterReport:
    """Annual class of every surface-water section (kept by the aggregation stage), the
    class distribution, the Class I–III share against the 2027 target and the basin grades."""
    as_of = aggregation_as_of(conn)
    years = {row.station_id: row for row in water_years(conn, year)}
    sections = []
    for row in water_sections(conn):
        found = years.get(row.station_id)
        cls = found.water_class if found else None
        sections.append(
            WaterSection(
                station_id=row.station_id,
                name=row.name,
                basin=row.basin,
                waterbody=row.waterbody,
                water_class=cls,
                class_name=CLASS_NAMES[cls] if cls else None,
                deciding_parameters=found.deciding if found else [],
                method=found.method if found else "none",  # type: ignore[arg-type]
                months_with_data=found.months_with_data if found else 0,
                annual_means={p: round(v, 6) for p, v in sorted(found.annual_means.items())}
                if found
                else {},
            )
        )

    classes = [s.water_class for s in sections if s.water_class is not None]
    share = excellent_share(classes) if classes else None
    target = SURFACE_WATER_2027.value
    return WaterReport(
        year=year,
        as_of=as_of,
        standard="GB 3838-2002",
        sections_assessed=len(classes),
        distribution={CLASS_NAMES[c]: classes.count(c) for c in range(1, 7)},
        excellent_share=_round(share),
        excellent_share_target=target,
        # judged as published, one decimal (standards.targets)
        meets_target=None if share is None else SURFACE_WATER_2027.is_met(share_published(share)),
        worse_than_v_share=_round(worse_than_v_share(classes)) if classes else None,
        annual_class_rule=ANNUAL_CLASS_RULE,
        basins=_basins(sections),
        sections=sections,
    )


def _basins(sections: list[WaterSection]) -> list[BasinGrade]:
    """Each basin's grade from its sections' classes (at least BASIN_MIN_SECTIONS sections)
    or its class from the sections' averaged items (fewer)."""
    by_basin: dict[str, list[WaterSection]] = defaultdict(list)
    for section in sections:
        if section.basin and section.water_class is not None:
            by_basin[section.basin].append(section)
    grades = []
    method: Literal["share", "averaged_items"]
    for basin, members in sorted(by_basin.items()):
        classes = [s.water_class for s in members if s.water_class is not None]
        if len(members) >= BASIN_MIN_SECTIONS:
            grade, water_class_of_basin, method = basin_grade(classes), None, "share"
        else:
            body: Waterbody = "lake" if all(s.waterbody == "lake" for s in members) else "river"
            averaged = basin_class_few_sections([s.annual_means for s in members], body)
            grade, method = None, "averaged_items"
            water_class_of_basin = averaged.water_class if averaged else None
        grades.append(
            BasinGrade(
                basin=basin,
                sections=len(members),
                excellent_share=round(excellent_share(classes), 2),
                worse_than_v_share=round(worse_than_v_share(classes), 2),
                grade=grade,
                water_class=water_class_of_basin,
                method=method,
            )
        )
    return grades


def water_trend_point(report: WaterReport) -> WaterTrendPoint:
    """The year's point of a multi-year water trend, taken from its report."""
    return WaterTrendPoint(
        year=report.year,
        excellent_share=report.excellent_share,
        worse_than_v_share=report.worse_than_v_share,
        sections_assessed=report.sections_assessed,
    )
