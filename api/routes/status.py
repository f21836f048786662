"""/v1/status: where the country stands in a year (so far) — the front page's figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import Conn, ReadAccess
from api.routes.compliance import (
    FIRST_YEAR,
    LAST_YEAR,
    Accept,
    OutputFormat,
    begun,
    csv_response,
    csv_responses,
)
from reports import STATUS_CSV_COLUMNS, csv_text, status, status_csv_rows, today_in_china, wants_csv
from schemas.assessment import Status

router = APIRouter(prefix="/v1", tags=["compliance"])


@router.get("/status", response_model=Status, responses=csv_responses(",".join(STATUS_CSV_COLUMNS)))
def status_of_year(
    conn: Conn,
    _: ReadAccess,
    year: Annotated[
        int | None,
        Query(ge=FIRST_YEAR, le=LAST_YEAR, description="calendar year; default the current one"),
    ] = None,
    output_format: OutputFormat = None,
    accept: Accept = None,
) -> Status | Response:
    """Where the country stands in a year, so far for the current one (provisional): national
    PM2.5 against the same period of the previous year (change in %) and the 28 µg/m³ target,
    what the rest of the year must average, good days and heavily polluted days, the cities
    attaining all six pollutants, the best and worst cities by comprehensive index, and the
    surface-water Class I–III share against the same months and 90 %. CSV: one figure a line."""
    chosen = begun(year if year is not None else today_in_china().year)
    found = status(conn, chosen)
    if wants_csv(accept, output_format):
        return csv_response(
            csv_text(STATUS_CSV_COLUMNS, status_csv_rows(found)), f"status-{chosen}.csv"
        )
    return found
