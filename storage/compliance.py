"""Compliance reports: HJ 663 aggregation in the database (station → city → nation) from
the daily rollups, judged by the standards in force for the period.

One Python API for the CLI and the REST API: ``air_report``, ``water_report`` and the trends.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar

import psycopg

from schemas.reports import (
    AirAnnual,
    AirReport,
    AirTrendPoint,
    BasinGrade,
    CoverageOut,
    WaterReport,
    WaterSection,
    WaterTrendPoint,
)
from standards.limits import LIMIT_SETS, complies, limit_set_for_period
from standards.parameters import CATALOGUE
from standards.targets import (
    NATIONAL_PM25_2027,
    NATIONAL_PM25_2035,
    SURFACE_WATER_2027,
    Target,
)
from standards.validity import ANNUAL_PERCENTILE, Coverage, annual_coverage
from standards.water import (
    CLASS_NAMES,
    Waterbody,
    basin_class_few_sections,
    basin_grade,
    excellent_share,
    water_class,
    worse_than_v_share,
)

AIR_REPORT_PARAMETERS = ("pm25", "pm10", "so2", "no2")
_MONTH_COUNTS = ", ".join(
    f"count(*) FILTER (WHERE extract(month FROM {{day}}) = {m})" for m in range(1, 13)
)
_LIMITS = """
limits AS (
    SELECT * FROM unnest(%(limit_from)s::date[], %(limit_to)s::date[], %(limit_value)s::float8[])
        AS l(d_from, d_to, value)
)"""

# HJ 663: a station's annual value is the mean of its valid daily means.
STATION_ANNUAL_STATISTICS = f"""
WITH {_LIMITS}
SELECT d.station_id, avg(d.mean), count(*),
       percentile_cont(%(fraction)s) WITHIN GROUP (ORDER BY d.mean),
       count(*) FILTER (WHERE d.mean > l.value),
       {_MONTH_COUNTS.format(day="d.day")}
FROM readings_daily d
JOIN stations s ON s.station_id = d.station_id AND s.kind = 'air'
JOIN limits l ON d.day BETWEEN l.d_from AND l.d_to
WHERE d.parameter = %(parameter)s AND d.valid AND d.day BETWEEN %(start)s AND %(end)s
GROUP BY d.station_id
"""

# HJ 663: a city's daily value is the mean of its stations' valid daily values; its annual
# value the mean of those daily values.
CITY_ANNUAL_STATISTICS = f"""
WITH {_LIMITS},
city_days AS (
    SELECT s.city_code, d.day, avg(d.mean) AS mean, count(*) AS stations
    FROM readings_daily d
    JOIN stations s ON s.station_id = d.station_id AND s.kind = 'air'
                   AND s.city_code IS NOT NULL
    WHERE d.parameter = %(parameter)s AND d.valid AND d.day BETWEEN %(start)s AND %(end)s
    GROUP BY s.city_code, d.day
)
SELECT c.city_code, avg(c.mean), count(*),
       percentile_cont(%(fraction)s) WITHIN GROUP (ORDER BY c.mean),
       count(*) FILTER (WHERE c.mean > l.value),
       {_MONTH_COUNTS.format(day="c.day")},
       max(c.stations)
FROM city_days c
JOIN limits l ON c.day BETWEEN l.d_from AND l.d_to
GROUP BY c.city_code
"""

AIR_STATIONS = """
SELECT station_id, name, city_code, city, province FROM stations WHERE kind = 'air'
ORDER BY station_id
"""

# Monthly value of an item: mean of its daily values; the class reported for a month: the
# worst one reported in it. One row per (section, item) with its months as arrays: a
# national year is ~80 k rows instead of ~900 k, and the annual means are still taken in
# Python (fmean) from exactly these monthly means.
WATER_ITEM_MONTHS = """
WITH months AS (
    SELECT d.station_id, d.parameter, date_trunc('month', d.day)::date AS month,
           avg(d.mean) AS mean, max(d.max) AS worst
    FROM readings_daily d
    JOIN stations s ON s.station_id = d.station_id AND s.kind = 'surface_water'
    WHERE d.valid AND d.day BETWEEN %(start)s AND %(end)s
    GROUP BY 1, 2, 3
)
SELECT station_id, parameter, array_agg(month), array_agg(mean), array_agg(worst)
FROM months
GROUP BY 1, 2
"""

WATER_SECTIONS = """
SELECT station_id, name, basin, waterbody FROM stations WHERE kind = 'surface_water'
ORDER BY station_id
"""

ANNUAL_CLASS_RULE = (
    "Sections reporting parameters: monthly mean of each item, annual mean of the monthly "
    "means, then GB 3838-2002 single-factor class (water temperature, total nitrogen and "
    "fecal coliform not assessed). Sections reporting only a class: the worst class reported "
    "in each month, annual class = median of the monthly classes (the worse one when the "
    "median falls between two)."
)


# A cached report is served only while no transaction that changed its year's daily rollups,
# or the station registry, has committed outside the snapshot the report was computed from
# (triggers in 0007_scale.sql stamp each writer's transaction id in report_changes).
CACHED_REPORT = """
SELECT c.body FROM report_cache c
WHERE c.kind = %(kind)s AND c.year = %(year)s AND c.rules = %(rules)s
  AND NOT EXISTS (
      SELECT 1 FROM report_changes ch
      WHERE ch.year IN (c.year, 0) AND NOT pg_visible_in_snapshot(ch.xid, c.snapshot))
"""

STORE_REPORT = """
INSERT INTO report_cache (kind, year, rules, snapshot, body)
VALUES (%(kind)s, %(year)s, %(rules)s, %(snapshot)s::pg_snapshot, %(body)s)
ON CONFLICT (kind, year) DO UPDATE SET
    rules = excluded.rules, snapshot = excluded.snapshot, body = excluded.body,
    computed_at = now()
"""

# The code a report depends on: a cache entry made by other rules or report code is ignored.
_RULE_SOURCES = (
    "storage/compliance.py",
    "standards/limits.py",
    "standards/parameters.py",
    "standards/targets.py",
    "standards/validity.py",
    "standards/water.py",
    "schemas/reports.py",
)


def _rules_fingerprint() -> str:
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for name in _RULE_SOURCES:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]


RULES_FINGERPRINT = _rules_fingerprint()
Report = TypeVar("Report", AirReport, WaterReport)


def _cached(
    conn: psycopg.Connection,
    kind: str,
    year: int,
    model: type[Report],
    compute: Callable[[], Report],
) -> Report:
    """The stored report of ``kind`` and ``year`` while it is still exact, else ``compute()``
    (stored for the next call when the connection may write)."""
    key = {"kind": kind, "year": year, "rules": RULES_FINGERPRINT}
    row = conn.execute(CACHED_REPORT, key).fetchone()
    if row is not None:
        return model.model_validate_json(row[0])
    snapshot = conn.execute("SELECT pg_current_snapshot()::text").fetchone()
    report = compute()
    try:
        with conn.transaction():
            conn.execute(
                STORE_REPORT,
                key
                | {"snapshot": snapshot[0] if snapshot else None, "body": report.model_dump_json()},
            )
    except psycopg.errors.ReadOnlySqlTransaction:
        pass  # a read-only transaction or a replica: computed each time
    return report


def _coverage(coverage: Coverage) -> CoverageOut:
    return CoverageOut(
        expected=coverage.expected,
        observed=coverage.observed,
        percent_complete=coverage.percent_complete,
        valid=coverage.valid,
        reasons=list(coverage.reasons),
    )


def _daily_limit_ranges(
    parameter: str, start: date, end: date
) -> tuple[dict[str, list[Any]], list[str]]:
    """Grade II 24-hour limit of each GB 3095 version in force during [start, end]."""
    ranges: dict[str, list[Any]] = {"limit_from": [], "limit_to": [], "limit_value": []}
    names = []
    for limit_set in LIMIT_SETS:
        d_from = max(start, limit_set.in_force_from)
        d_to = min(end, limit_set.in_force_to or end)
        value = limit_set.limit(parameter, "24h", 2)
        if d_from <= d_to and value is not None:
            ranges["limit_from"].append(d_from)
            ranges["limit_to"].append(d_to)
            ranges["limit_value"].append(value)
            names.append(limit_set.name)
    if not names:  # a period before the first version: judge by the oldest
        oldest = LIMIT_SETS[0]
        ranges = {
            "limit_from": [start],
            "limit_to": [end],
            "limit_value": [oldest.limit(parameter, "24h", 2)],
        }
        names = [oldest.name]
    return ranges, names


def _gaps(parameter: str, mean: float | None) -> tuple[float | None, float | None]:
    if parameter != "pm25" or mean is None:
        return None, None
    return (round(mean - NATIONAL_PM25_2027.value, 3), round(mean - NATIONAL_PM25_2035.value, 3))


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def air_report(conn: psycopg.Connection, year: int, parameter: str = "pm25") -> AirReport:
    """Annual air quality of every station, every city and the nation for ``year``."""
    if parameter not in AIR_REPORT_PARAMETERS:
        raise ValueError(f"annual report parameter must be one of {AIR_REPORT_PARAMETERS}")
    return _cached(
        conn, f"air:{parameter}", year, AirReport, lambda: _air_report(conn, year, parameter)
    )


def _air_report(conn: psycopg.Connection, year: int, parameter: str) -> AirReport:
    start, end = date(year, 1, 1), date(year, 12, 31)
    limit_set = limit_set_for_period(start, end)
    annual_limit = limit_set.limit(parameter, "annual", 2)
    ranges, daily_standards = _daily_limit_ranges(parameter, start, end)
    rank = ANNUAL_PERCENTILE[parameter][1]
    params = {"parameter": parameter, "start": start, "end": end, "fraction": rank / 100, **ranges}
    unit = CATALOGUE[parameter].unit

    def annual(
        level: Literal["station", "city"],
        key: str,
        name: str,
        row: Sequence[Any] | None,
        **extra: Any,
    ) -> AirAnnual:
        if row is None:
            mean, valid_days, pct, over, months = None, 0, None, 0, [0] * 12
        else:
            mean, valid_days, pct, over, *months = row[1:17]
        coverage = annual_coverage(dict(zip(range(1, 13), months, strict=True)), year)
        gap_28, gap_25 = _gaps(parameter, mean)
        return AirAnnual(
            level=level,
            id=key,
            name=name,
            parameter=parameter,
            unit=unit,
            annual_mean=_round(mean),
            valid_days=valid_days,
            percentile=_round(pct),
            percentile_rank=rank,
            days_over_24h_limit=over,
            annual_limit=annual_limit,
            meets_grade_ii=None
            if mean is None or annual_limit is None
            else complies(mean, annual_limit),
            gap_to_2027_target=gap_28,
            gap_to_2035_target=gap_25,
            coverage=_coverage(coverage),
            **extra,
        )

    with conn.cursor() as cur:
        station_rows = {r[0]: r for r in cur.execute(STATION_ANNUAL_STATISTICS, params)}
        city_rows = {r[0]: r for r in cur.execute(CITY_ANNUAL_STATISTICS, params)}
        stations_meta = cur.execute(AIR_STATIONS).fetchall()

    stations = []
    cities_meta: dict[str, dict[str, Any]] = {}
    for station_id, name, city_code, city, province in stations_meta:
        stations.append(
            annual(
                "station",
                station_id,
                name,
                station_rows.get(station_id),
                city_code=city_code,
                province=province,
            )
        )
        if city_code is not None:
            meta = cities_meta.setdefault(
                city_code, {"name": city or city_code, "province": province, "stations": 0}
            )
            meta["stations"] += 1
    cities = [
        annual(
            "city",
            code,
            meta["name"],
            city_rows.get(code),
            city_code=code,
            province=meta["province"],
            stations=city_rows[code][17] if code in city_rows else 0,
        )
        for code, meta in sorted(cities_meta.items())
    ]
    national = _national(cities, year, parameter, unit, rank, annual_limit)
    assessed = [c for c in cities if c.coverage.valid and c.annual_mean is not None]
    meeting = sum(1 for c in assessed if c.meets_grade_ii)
    return AirReport(
        year=year,
        period_start=start,
        period_end=end,
        parameter=parameter,
        unit=unit,
        standard=limit_set.name,
        daily_limit_standards=daily_standards,
        annual_limit=annual_limit,
        national=national,
        cities_assessed=len(assessed),
        cities_meeting_grade_ii=meeting,
        share_cities_meeting_grade_ii=round(100 * meeting / len(assessed), 2) if assessed else None,
        meets_2027_target=_met(NATIONAL_PM25_2027, parameter, national.annual_mean),
        meets_2035_target=_met(NATIONAL_PM25_2035, parameter, national.annual_mean),
        cities=cities,
        stations=stations,
    )


def _met(target: Target, parameter: str, mean: float | None) -> bool | None:
    return None if parameter != "pm25" or mean is None else target.is_met(mean)


def _national(
    cities: list[AirAnnual],
    year: int,
    parameter: str,
    unit: str,
    rank: float,
    annual_limit: float | None,
) -> AirAnnual:
    """National value = mean of the annual means of the cities with valid coverage."""
    valid = [c.annual_mean for c in cities if c.coverage.valid and c.annual_mean is not None]
    with_data = [c for c in cities if c.annual_mean is not None]
    reasons = []
    if len(valid) < len(cities):
        reasons.append(
            f"{len(cities) - len(valid)} of {len(cities)} cities have no valid "
            "annual mean and are left out"
        )
    mean = statistics.fmean(valid) if valid else None
    gap_28, gap_25 = _gaps(parameter, mean)
    return AirAnnual(
        level="national",
        id="national",
        name="National (cities with valid data)",
        parameter=parameter,
        unit=unit,
        annual_mean=_round(mean),
        valid_days=max((c.valid_days for c in with_data), default=0),
        percentile=None,
        percentile_rank=rank,
        days_over_24h_limit=None,
        annual_limit=annual_limit,
        meets_grade_ii=None
        if mean is None or annual_limit is None
        else complies(mean, annual_limit),
        gap_to_2027_target=gap_28,
        gap_to_2035_target=gap_25,
        cities=len(valid),
        coverage=CoverageOut(
            expected=len(cities),
            observed=len(valid),
            percent_complete=round(100 * len(valid) / len(cities), 2) if cities else 0.0,
            valid=bool(valid),
            reasons=reasons if valid else ["no city has a valid annual mean"],
        ),
    )


def _median_class(monthly_classes: Sequence[float]) -> int:
    ordered = sorted(monthly_classes)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return int(ordered[middle])
    return int(max(ordered[middle - 1], ordered[middle]))


def water_report(conn: psycopg.Connection, year: int) -> WaterReport:
    """Annual class of every surface-water section, the class distribution, the Class I–III
    share against the 2027 target and the basin grades."""
    return _cached(conn, "water", year, WaterReport, lambda: _water_report(conn, year))


def _water_report(conn: psycopg.Connection, year: int) -> WaterReport:
    params = {"start": date(year, 1, 1), "end": date(year, 12, 31)}
    item_months: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    class_months: dict[str, list[float]] = defaultdict(list)
    months_seen: dict[str, set[date]] = defaultdict(set)
    with conn.cursor() as cur:
        for station_id, parameter, months, means, worst in cur.execute(WATER_ITEM_MONTHS, params):
            months_seen[station_id].update(months)
            if parameter == "water_class":
                class_months[station_id].extend(worst)
            else:
                item_months[station_id][parameter].extend(means)
        sections_meta = cur.execute(WATER_SECTIONS).fetchall()

    sections = []
    for station_id, name, basin, waterbody in sections_meta:
        body: Waterbody = "lake" if waterbody == "lake" else "river"
        means = {p: statistics.fmean(v) for p, v in item_months[station_id].items()}
        derived = water_class(means, body) if means else None
        if derived is not None:
            cls, deciding, method = derived.water_class, list(derived.deciding), "parameters"
        elif class_months[station_id]:
            cls, deciding, method = _median_class(class_months[station_id]), [], "reported_class"
        else:
            cls, deciding, method = None, [], "none"
        sections.append(
            WaterSection(
                station_id=station_id,
                name=name,
                basin=basin,
                waterbody=waterbody,
                water_class=cls,
                class_name=CLASS_NAMES[cls] if cls else None,
                deciding_parameters=deciding,
                method=method,  # type: ignore[arg-type]
                months_with_data=len(months_seen[station_id]),
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
        excellent_share=_round(share, 2),
        excellent_share_target=target,
        meets_target=None if share is None else share >= target,
        worse_than_v_share=_round(worse_than_v_share(classes), 2) if classes else None,
        annual_class_rule=ANNUAL_CLASS_RULE,
        basins=_basins(sections, item_months),
        sections=sections,
    )


def _basins(
    sections: list[WaterSection], item_months: dict[str, dict[str, list[float]]]
) -> list[BasinGrade]:
    by_basin: dict[str, list[WaterSection]] = defaultdict(list)
    for section in sections:
        if section.basin and section.water_class is not None:
            by_basin[section.basin].append(section)
    grades = []
    for basin, members in sorted(by_basin.items()):
        classes = [s.water_class for s in members if s.water_class is not None]
        if len(members) >= 5:
            grades.append(
                BasinGrade(
                    basin=basin,
                    sections=len(members),
                    excellent_share=round(excellent_share(classes), 2),
                    worse_than_v_share=round(worse_than_v_share(classes), 2),
                    grade=basin_grade(classes),
                    water_class=None,
                    method="share",
                )
            )
        else:
            body: Waterbody = "lake" if all(s.waterbody == "lake" for s in members) else "river"
            averaged = basin_class_few_sections([s.annual_means for s in members], body)
            grades.append(
                BasinGrade(
                    basin=basin,
                    sections=len(members),
                    excellent_share=round(excellent_share(classes), 2),
                    worse_than_v_share=round(worse_than_v_share(classes), 2),
                    grade=None,
                    water_class=averaged.water_class if averaged else None,
                    method="averaged_items",
                )
            )
    return grades


def air_trend(
    conn: psycopg.Connection, years: Sequence[int], parameter: str = "pm25"
) -> list[AirTrendPoint]:
    """The national annual value and the share of cities meeting Grade II, year by year."""
    points = []
    for year in years:
        report = air_report(conn, year, parameter)
        points.append(
            AirTrendPoint(
                year=year,
                national_annual_mean=report.national.annual_mean,
                national_valid=report.national.coverage.valid,
                share_cities_meeting_grade_ii=report.share_cities_meeting_grade_ii,
                standard=report.standard,
                annual_limit=report.annual_limit,
            )
        )
    return points


def water_trend(conn: psycopg.Connection, years: Sequence[int]) -> list[WaterTrendPoint]:
    """The Class I–III and worse-than-V shares, year by year."""
    points = []
    for year in years:
        report = water_report(conn, year)
        points.append(
            WaterTrendPoint(
                year=year,
                excellent_share=report.excellent_share,
                worse_than_v_share=report.worse_than_v_share,
                sections_assessed=report.sections_assessed,
            )
        )
    return points
