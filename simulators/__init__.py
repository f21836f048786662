"""Station simulators: a national network of air stations and water sections that publishes
realistic readings over MQTT (with faults on demand) or backfills past years in bulk.

Run ``python -m simulators --help``.
"""

from simulators.backfill import BackfillResult, backfill, backfill_period, backfill_via_mqtt
from simulators.live import Faults, LiveRunner
from simulators.model import (
    AIR_PARAMETERS,
    DEFAULT_SEED,
    WATER_ITEMS,
    air_values,
    reports_class_only,
    station_values,
    water_quality,
    water_values,
)
from simulators.network import build_network
from simulators.payloads import batch_payload, reading_payload

__all__ = [
    "AIR_PARAMETERS",
    "DEFAULT_SEED",
    "WATER_ITEMS",
    "BackfillResult",
    "Faults",
    "LiveRunner",
    "air_values",
    "backfill",
    "backfill_period",
    "backfill_via_mqtt",
    "batch_payload",
    "build_network",
    "reading_payload",
    "reports_class_only",
    "station_values",
    "water_quality",
    "water_values",
]
