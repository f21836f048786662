"""The annual surface-water report: the GB 3838-2002 class of every section from its monthly
values (storage.compliance), the class distribution, the Class I–III share against the 2027
target, the worse-than-V share and the basin grades."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date
from typing import Literal

import psycopg

from reports.cache import cached
from schemas.reports import BasinGrade, WaterReport, WaterSection, WaterTrendPoint
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
from storage.compliance import water_item_months, water_sections

ANNUAL_CLASS_RULE = (
    "Sections reporting parameters: monthly mean of each item, annual mean of the monthly "
    "means, then GB 3838-2002 single-factor class (water temperature, total nitrogen and "
    "fecal coliform not assessed). Sections reporting only a class: the worst class reported "
    "in each month, annual class = median of the monthly classes (the worse one when the "
    "median falls between two)."
)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def water_report(conn: psycopg.Connection, year: int) -> WaterReport:
    """Annual class of every surface-water section, the class distribution, the Class I–III
    share against the 2027 target and the basin grades."""
    return cached(conn, "water", year, WaterReport, lambda: compute_water_report(conn, year))


def compute_water_report(conn: psycopg.Connection, year: int) -> WaterReport:
    """The water report of ``year`` computed from the rollups, without the cache."""
    item_months: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    class_months: dict[str, list[float]] = defaultdict(list)
    months_seen: dict[str, set[date]] = defaultdict(set)
    for item in water_item_months(conn, date(year, 1, 1), date(year, 12, 31)):
        months_seen[item.station_id].update(item.months)
        if item.parameter == "water_class":
            class_months[item.station_id].extend(item.worst)
        else:
            item_months[item.station_id][item.parameter].extend(item.means)

    sections = []
    for row in water_sections(conn):
        body: Waterbody = "lake" if row.waterbody == "lake" else "river"
        means = {p: statistics.fmean(v) for p, v in item_months[row.station_id].items()}
        derived = water_class(means, body) if means else None
        method: Literal["parameters", "reported_class", "none"]
        if derived is not None:
            cls, deciding, method = derived.water_class, list(derived.deciding), "parameters"
        elif class_months[row.station_id]:
            cls, deciding, method = median_class(class_months[row.station_id]), [], "reported_class"
        else:
            cls, deciding, method = None, [], "none"
        sections.append(
            WaterSection(
                station_id=row.station_id,
                name=row.name,
                basin=row.basin,
                waterbody=row.waterbody,
                water_class=cls,
                class_name=CLASS_NAMES[cls] if cls else None,
                deciding_parameters=deciding,
                method=method,
                months_with_data=len(months_seen[row.station_id]),
                annual_means={p: round(v, 6) for p, v in sorted(means.items())},
            )
        )

    classes = [s.water_class for s in sections if s.water_class is not None]
    share = excellent_share(classes) if classes else None
    target = SURFACE_WATER_2027.value
    return WaterReport(
        year=year,
        standard="GB 3838-2002",
        sections_assessed=len(classes),
        distribution={CLASS_NAMES[c]: classes.count(c) for c in range(1, 7)},
        excellent_share=_round(share),
        excellent_share_target=target,
        meets_target=None if share is None else share >= target,
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
