"""The reports layer: rows from storage and rules from standards, made into the models the
API, the dashboard and the CLI give out (schemas.reports, schemas.series, schemas.aqi_api),
with one coverage object and one CSV/JSON content negotiation."""

from reports.air import AIR_REPORT_PARAMETERS, air_report, air_trend_point
from reports.aqi import (
    daily_aqi_history,
    daily_aqis,
    hourly_aqi_history,
    hourly_aqis,
    latest_aqi,
    station_subject,
)
from reports.coverage import PERCENT_DIGITS, coverage, coverage_of
from reports.export import (
    AIR_CSV_COLUMNS,
    CSV_MEDIA_TYPE,
    READINGS_CSV_COLUMNS,
    WATER_CSV_COLUMNS,
    AirLevel,
    air_csv_rows,
    air_rows,
    csv_text,
    readings_csv_header,
    readings_csv_lines,
    wants_csv,
    water_csv_rows,
    write_csv,
)
from reports.series import (
    RULES,
    aggregate_series,
    city_aggregates,
    reading,
    station_aggregates,
    unit_of,
)
from reports.water import water_report, water_trend_point

__all__ = [
    "AIR_CSV_COLUMNS",
    "AIR_REPORT_PARAMETERS",
    "CSV_MEDIA_TYPE",
    "PERCENT_DIGITS",
    "READINGS_CSV_COLUMNS",
    "RULES",
    "WATER_CSV_COLUMNS",
    "AirLevel",
    "aggregate_series",
    "air_csv_rows",
    "air_report",
    "air_rows",
    "air_trend_point",
    "city_aggregates",
    "coverage",
    "coverage_of",
    "csv_text",
    "daily_aqi_history",
    "daily_aqis",
    "hourly_aqi_history",
    "hourly_aqis",
    "latest_aqi",
    "reading",
    "readings_csv_header",
    "readings_csv_lines",
    "station_aggregates",
    "station_subject",
    "unit_of",
    "wants_csv",
    "water_csv_rows",
    "water_report",
    "water_trend_point",
    "write_csv",
]
