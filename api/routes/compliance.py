"""/v1/compliance: annual air and surface-water reports against GB 3095 / GB 3838 and the
national targets, for one year or a range, as JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from api.deps import Conn, ReadAccess
from api.errors import ApiError, problem_responses
from reports import (
    AIR_CSV_COLUMNS,
    ASSESSMENT_CSV_COLUMNS,
    CSV_MEDIA_TYPE,
    WATER_CSV_COLUMNS,
    AirLevel,
    AssessmentLevel,
    air_assessment,
    air_csv_rows,
    air_report,
    air_trend_point,
    assessment_csv_rows,
    csv_text,
    today_in_china,
    wants_csv,
    water_csv_rows,
    water_report,
    water_trend_point,
)
from reports.publications import published_air_report, published_water_report
from reports.refusal import Refused
from schemas.assessment import AirAssessment
from schemas.reports import AirCompliance, AirReport, WaterCompliance, WaterReport

router = APIRouter(prefix="/v1/compliance", tags=["compliance"])

FIRST_YEAR, LAST_YEAR = 1990, 2100
MAX_YEARS = 20

Year = Annotated[
    int,
    Query(ge=FIRST_YEAR, le=LAST_YEAR, description="the (first) calendar year", examples=[2025]),
]
ToYear = Annotated[
    int | None,
    Query(
        ge=FIRST_YEAR,
        le=LAST_YEAR,
        description=f"last year of a range (≥ year, at most {MAX_YEARS} years); "
        "adds a year-by-year trend",
    ),
]
OutputFormat = Annotated[
    Literal["json", "csv"] | None,
    Query(alias="format", description="json or csv; overrides the Accept header"),
]
Accept = Annotated[str | None, Header(include_in_schema=False)]
Version = Annotated[
    Literal["current", "published"],
    Query(
        description="current (default): from the kept levels now; published: as the year was "
        "published (/v1/publications), its latest revision unless revision is given; the "
        "revision is named in the X-Airwater-Revision header"
    ),
]
RevisionNumber = Annotated[
    int | None,
    Query(ge=1, le=1_000_000, description="with version=published and one year: the revision"),
]
REVISION_HEADER = "X-Airwater-Revision"


def csv_responses(csv_columns: str, *problems: int) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {
                CSV_MEDIA_TYPE: {
                    "schema": {"type": "string"},
                    "example": csv_columns + "\n",
                }
            },
            "description": "JSON by default; CSV with Accept: text/csv or ?format=csv",
        },
        **problem_responses(401, 403, 422, *problems),
    }


def _check_revision(version: str, revision: int | None, years: list[int]) -> None:
    """A revision only with version=published and one year, else a validation error."""
    reason = None
    if revision is not None and version != "published":
        reason = "a revision is read with version=published"
    elif revision is not None and len(years) > 1:
        reason = "a revision is read for one year (without to)"
    if reason is not None:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "revision"),
                    "msg": reason,
                    "type": "value_error",
                    "input": revision,
                }
            ]
        )


def _published_air(
    conn: Conn, years: list[int], parameter: str, revision: int | None
) -> tuple[list[AirReport], list[int]]:
    try:
        found = [published_air_report(conn, y, parameter, revision) for y in years]
    except Refused as exc:
        raise ApiError(404, exc.detail, "not-published") from None
    return [report for report, _ in found], [number for _, number in found]


def _published_water(
    conn: Conn, years: list[int], revision: int | None
) -> tuple[list[WaterReport], list[int]]:
    try:
        found = [published_water_report(conn, y, revision) for y in years]
    except Refused as exc:
        raise ApiError(404, exc.detail, "not-published") from None
    return [report for report, _ in found], [number for _, number in found]


def _revision_header(numbers: list[int] | None) -> dict[str, str]:
    """The revision of each year read as published, in the order of the years."""
    return {} if numbers is None else {REVISION_HEADER: ", ".join(map(str, numbers))}


def _years(year: int, to: int | None) -> list[int]:
    """The years of the request; a bad range is a validation error naming query.to."""
    last = year if to is None else to
    reason = None
    if last < year:
        reason = f"must not be before year ({year})"
    elif last - year + 1 > MAX_YEARS:
        reason = (
            f"a range covers at most {MAX_YEARS} years (year {year} → to ≤ {year + MAX_YEARS - 1})"
        )
    if reason is not None:
        raise RequestValidationError(
            [{"loc": ("query", "to"), "msg": reason, "type": "value_error", "input": to}]
        )
    return list(range(year, last + 1))


def csv_response(text: str, filename: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        text,
        media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})},
    )


def _span(years: list[int]) -> str:
    return str(years[0]) if len(years) == 1 else f"{years[0]}-{years[-1]}"


@router.get(
    "/air", response_model=AirCompliance, responses=csv_responses(",".join(AIR_CSV_COLUMNS), 404)
)
def air_compliance(
    conn: Conn,
    _: ReadAccess,
    response: Response,
    year: Year,
    to: ToYear = None,
    parameter: Annotated[
        Literal["pm25", "pm10", "so2", "no2"], Query(description="the pollutant judged")
    ] = "pm25",
    level: Annotated[
        AirLevel,
        Query(
            description="CSV only: rows after the national one — city (default), station, "
            "all (cities then stations) or national alone; JSON always holds every level"
        ),
    ] = "city",
    output_format: OutputFormat = None,
    accept: Accept = None,
    version: Version = "current",
    revision: RevisionNumber = None,
) -> AirCompliance | Response:
    """Annual air quality (HJ 663 aggregation of the daily rollups) of every station, every
    city and the nation: annual mean with valid days and coverage, the HJ 663 percentile, days
    over the 24-hour limit, the Grade II annual limit in force (GB 3095-2012 or 2026) and, for
    PM2.5, the gaps to the national targets of 28 µg/m³ (2027) and 25 µg/m³ (2035). With
    version=published: as the year was published (404 for a year not published)."""
    years = _years(year, to)
    _check_revision(version, revision, years)
    numbers = None
    if version == "published":
        reports, numbers = _published_air(conn, years, parameter, revision)
    else:
        reports = [air_report(conn, y, parameter) for y in years]
    headers = _revision_header(numbers)
    if wants_csv(accept, output_format):
        return csv_response(
            csv_text(AIR_CSV_COLUMNS, air_csv_rows(reports, level)),
            f"air-{parameter}-{_span(years)}.csv",
            headers,
        )
    response.headers.update(headers)
    trend = [air_trend_point(r) for r in reports] if len(reports) > 1 else []
    return AirCompliance(reports=reports, trend=trend)


def begun(year: int, field: str = "year") -> int:
    """``year``, or a validation error naming query.year when it has not begun (Beijing)."""
    today = today_in_china()
    if year > today.year:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", field),
                    "msg": f"{year} has not begun (today is {today.isoformat()} in Beijing)",
                    "type": "value_error",
                    "input": year,
                }
            ]
        )
    return year


@router.get(
    "/air/assessment",
    response_model=AirAssessment,
    responses=csv_responses(",".join(ASSESSMENT_CSV_COLUMNS)),
)
def air_assessment_of_year(
    conn: Conn,
    _: ReadAccess,
    year: Year,
    level: Annotated[
        AssessmentLevel,
        Query(
            description="CSV only: rows after the national one — city (default, ranked), "
            "province, station, all, or national alone; JSON always holds every level"
        ),
    ] = "city",
    output_format: OutputFormat = None,
    accept: Accept = None,
) -> AirAssessment | Response:
    """The six-pollutant assessment (HJ 663) of every station, city, province and the nation
    for a year — so far and provisional for the year in progress — beside the same calendar
    days of the previous year: SO2/NO2 annual mean and P98, PM10/PM2.5 annual mean and P95,
    CO P95, O3 P90 of daily maximum 8-hour means, each published (GB/T 8170) and judged
    against Grade II; attainment (all six), the comprehensive index with each pollutant's
    share, the national and provincial ranking, good days (AQI ≤ 100) and heavily polluted
    days (AQI > 200), the change against the same period in %, and what PM2.5 must average
    for the rest of the year."""
    report = air_assessment(conn, begun(year))
    if wants_csv(accept, output_format):
        return csv_response(
            csv_text(ASSESSMENT_CSV_COLUMNS, assessment_csv_rows(report, level)),
            f"air-assessment-{year}.csv",
        )
    return report


@router.get(
    "/water",
    response_model=WaterCompliance,
    responses=csv_responses(",".join(WATER_CSV_COLUMNS), 404),
)
def water_compliance(
    conn: Conn,
    _: ReadAccess,
    response: Response,
    year: Year,
    to: ToYear = None,
    output_format: OutputFormat = None,
    accept: Accept = None,
    version: Version = "current",
    revision: RevisionNumber = None,
) -> WaterCompliance | Response:
    """Annual class of every surface-water section (GB 3838-2002 single factor), the class
    distribution, the Class I–III ("excellent") share against the 90 % target for 2027, the
    worse-than-Class-V share and the basin grades. CSV: one line per section and year. With
    version=published: as the year was published (404 for a year not published)."""
    years = _years(year, to)
    _check_revision(version, revision, years)
    numbers = None
    if version == "published":
        reports, numbers = _published_water(conn, years, revision)
    else:
        reports = [water_report(conn, y) for y in years]
    headers = _revision_header(numbers)
    if wants_csv(accept, output_format):
        return csv_response(
            csv_text(WATER_CSV_COLUMNS, water_csv_rows(reports)),
            f"water-{_span(years)}.csv",
            headers,
        )
    response.headers.update(headers)
    trend = [water_trend_point(r) for r in reports] if len(reports) > 1 else []
    return WaterCompliance(reports=reports, trend=trend)
