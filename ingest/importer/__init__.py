"""Bulk import of readings (``airwater import``): long CSV, Parquet, the national air
network's wide hourly layout, station lists — and readings held in memory (the simulators'
backfill). Every reading goes through the intake rules and the intake pipeline; the
``imports`` journal makes a file's import resumable."""

from ingest.importer.files import FORMATS, Format, ImportFileError, detect_format
from ingest.importer.memory import Reading, RowsImported, hourly_readings_stored, import_readings
from ingest.importer.progress import import_progress
from ingest.importer.run import DEFAULT_BATCH_ROWS, ImportSummary, import_files
from ingest.importer.station_list import derived_city_code, read_station_list, register_stations

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "FORMATS",
    "Format",
    "ImportFileError",
    "ImportSummary",
    "Reading",
    "RowsImported",
    "derived_city_code",
    "detect_format",
    "hourly_readings_stored",
    "import_files",
    "import_progress",
    "import_readings",
    "read_station_list",
    "register_stations",
]
