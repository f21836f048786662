"""The MQTT messages a simulated station sends (README, "Payload contract"): topics, single
readings, 24-hour batches, and the malformed payloads of the fault injection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

import orjson

from schemas.stations import Station
from simulators.model import DEFAULT_SEED, station_values

_CLASS_TEXT = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "劣V"}


def readings_topic(station_id: str) -> str:
    return f"stations/{station_id}/readings"


def status_topic(station_id: str) -> str:
    """Retained ``online``/``offline``; ``offline`` is also the station's last will."""
    return f"stations/{station_id}/status"


ONLINE, OFFLINE = b"online", b"offline"


def reading_document(
    station: Station, ts: datetime, values: Mapping[str, float]
) -> dict[str, object]:
    """One reading as the contract writes it: ISO 8601 time with the station's offset; a
    reported water class as its Roman numeral (``"III"``, ``"劣V"``)."""
    document: dict[str, object] = {
        "ts": ts.astimezone(ZoneInfo(station.timezone)).isoformat(timespec="seconds")
    }
    for parameter, value in values.items():
        document[parameter] = _CLASS_TEXT[int(value)] if parameter == "water_class" else value
    return document


def reading_payload(station: Station, ts: datetime, seed: int = DEFAULT_SEED) -> bytes:
    """The single-reading message a station publishes at ``ts`` (aware)."""
    return orjson.dumps(reading_document(station, ts, station_values(station, ts, seed)))


def batch_payload(
    station: Station, timestamps: Iterable[datetime], seed: int = DEFAULT_SEED
) -> bytes:
    """A batch message ``{"readings": [...]}`` of the station's readings at ``timestamps``."""
    return orjson.dumps(
        {
            "readings": [
                reading_document(station, ts, station_values(station, ts, seed))
                for ts in timestamps
            ]
        }
    )


class Malformation(StrEnum):
    """The ways a faulty station garbles a message; each yields exactly one dead letter (with
    the reason of the same name) and stores nothing."""

    MALFORMED_JSON = "malformed_json"
    TIMESTAMP_MISSING = "timestamp_missing"
    NEGATIVE_VALUE = "negative_value"
    SENTINEL_VALUE = "sentinel_value"
    NON_NUMERIC_VALUE = "non_numeric_value"
    UNKNOWN_PARAMETER = "unknown_parameter"


def malformed_payload(station: Station, ts: datetime, kind: Malformation) -> bytes:
    """A broken message of ``kind``; unique per station and instant (dead letters are kept
    once per distinct payload)."""
    parameter = "pm25" if station.kind == "air" else "do"
    when = ts.astimezone(ZoneInfo(station.timezone)).isoformat(timespec="seconds")
    if kind is Malformation.MALFORMED_JSON:
        whole = orjson.dumps({"ts": when, parameter: 12.5})
        return whole[: len(whole) - 6]  # cut off mid-message, as by a dropped link
    documents: dict[Malformation, dict[str, object]] = {
        Malformation.TIMESTAMP_MISSING: {"at": when, parameter: 12.5},
        Malformation.NEGATIVE_VALUE: {"ts": when, parameter: -3.5},
        Malformation.SENTINEL_VALUE: {"ts": when, parameter: -999},
        Malformation.NON_NUMERIC_VALUE: {"ts": when, parameter: "n/a"},
        Malformation.UNKNOWN_PARAMETER: {"ts": when, "pm1": 8.0},
    }
    return orjson.dumps(documents[kind])
