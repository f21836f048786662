"""Parsing of the MQTT reading payloads (DESIGN.md, "MQTT contract") into records.

Parsing checks syntax and shape only; what needs the station (its timezone, whether it
exists, its waterbody) is checked by ``ingest.validate``.
"""

from __future__ import annotations

import math
import re
import reprlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import orjson

from standards.parameters import CATALOGUE, canonical_parameter, conversion_factor
from standards.water import parse_water_class


class Reason(StrEnum):
    """Machine-readable reasons a payload or one of its readings is dead-lettered."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_SHAPE = "invalid_shape"
    UNKNOWN_STATION = "unknown_station"
    INACTIVE_STATION = "inactive_station"
    STATION_MISMATCH = "station_mismatch"
    UNKNOWN_PARAMETER = "unknown_parameter"
    UNKNOWN_UNIT = "unknown_unit"
    NON_NUMERIC_VALUE = "non_numeric_value"
    INVALID_WATER_CLASS = "invalid_water_class"
    NEGATIVE_VALUE = "negative_value"
    SENTINEL_VALUE = "sentinel_value"
    TIMESTAMP_MISSING = "timestamp_missing"
    TIMESTAMP_INVALID = "timestamp_invalid"
    TIMESTAMP_FUTURE = "timestamp_future"
    OUT_OF_RANGE = "out_of_range"  # beyond the parameter's plausible range
    STORAGE_REJECTED = "storage_rejected"  # the database refused it; its message is the detail
    PROCESSING_FAILED = "processing_failed"  # our own code raised on it (a bug, kept for replay)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why (code) and what (sentence) of one dead letter."""

    reason: Reason
    detail: str


class PayloadError(Exception):
    """The whole payload is unusable."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)


@dataclass(slots=True)
class Record:
    """Values measured at one instant; ``ts`` is naive when the payload gave no offset."""

    ts: datetime
    values: dict[str, float]


@dataclass(slots=True)
class ParsedPayload:
    records: list[Record] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


META_KEYS = frozenset({"ts", "station_id", "station"})
SENML_KEYS = frozenset({"bn", "bt", "bu", "bv", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t"})
# RFC 8428 §4.5.3: times below 2**28 are relative to now.
SENML_RELATIVE_LIMIT = 2**28
EARLIEST_TS = datetime(1990, 1, 1, tzinfo=UTC)

# Dead-letter sentences quote what a station sent through this: a bounded repr, so that a
# value nested 1,000 deep (RecursionError in repr) or 200 KB long never reaches a sentence.
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother = 3, 80, 80
_QUOTE.maxlist = _QUOTE.maxdict = 6


def quote(raw: object) -> str:
    """A short, storable repr of a value taken from a payload, for a dead letter's detail."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw.bit_length() > 128:
        return f"<integer of {raw.bit_length()} bits>"  # repr refuses over 4300 digits
    return _QUOTE.repr(raw)


def parse_payload(payload: bytes, station_id: str, max_bytes: int = 256 * 1024) -> ParsedPayload:
    """Records of one MQTT payload published to ``stations/{station_id}/readings``.

    Raises PayloadError when the payload as a whole is unusable; readings that are bad on
    their own are returned as rejections next to the good records.
    """
    if len(payload) > max_bytes:
        raise PayloadError(
            Reason.PAYLOAD_TOO_LARGE, f"payload of {len(payload)} bytes exceeds {max_bytes}"
        )
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(Reason.MALFORMED_JSON, f"not valid JSON: {exc}") from None
    parsed = ParsedPayload()
    if isinstance(document, list):
        _parse_senml(document, station_id, parsed)
    elif isinstance(document, dict):
        _check_named_station(document, station_id)
        if "readings" in document:
            batch = document["readings"]
            if not isinstance(batch, list):
                raise PayloadError(Reason.INVALID_SHAPE, '"readings" must be an array')
            for key in document:
                if key != "readings" and key not in META_KEYS:
                    parsed.rejections.append(
                        Rejection(
                            Reason.INVALID_SHAPE,
                            f'batch: key {quote(key)} outside "readings" is not read',
                        )
                    )
            for position, item in enumerate(batch):
                if not isinstance(item, dict):
                    parsed.rejections.append(
                        Rejection(Reason.INVALID_SHAPE, f"readings[{position}] is not an object")
                    )
                    continue
                _check_named_station(item, station_id)
                _parse_reading(item, parsed, f"readings[{position}]")
        else:
            _parse_reading(document, parsed, "reading")
    else:
        raise PayloadError(Reason.INVALID_SHAPE, "payload must be a JSON object or a SenML array")
    if not parsed.records and not parsed.rejections:
        raise PayloadError(Reason.INVALID_SHAPE, "payload holds no readings")
    return parsed


def _check_named_station(document: dict[str, object], station_id: str) -> None:
    for key in ("station_id", "station"):
        named = document.get(key)
        if named is not None and named != station_id:
            raise PayloadError(
                Reason.STATION_MISMATCH,
                f"payload names station {quote(named)} but was published for {station_id!r}",
            )


def parse_timestamp(raw: object) -> datetime:
    """ISO 8601 text or epoch seconds; naive when the text has no offset. ValueError if bad."""
    if isinstance(raw, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueError("timestamp is not finite")
        try:
            return datetime.fromtimestamp(raw, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"epoch {quote(raw)} out of range") from exc
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:  # its message repeats the whole text, however long
            raise ValueError("not an ISO 8601 date-time") from None
    raise ValueError(f"timestamp must be ISO 8601 text or epoch seconds, got {type(raw).__name__}")


def parse_number(raw: object) -> float:
    """A finite float from a JSON number or numeric text; ValueError otherwise."""
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"{quote(raw)} is not a number")
    try:
        if isinstance(raw, int | float):
            value = float(raw)
        elif isinstance(raw, str):
            value = float(raw.strip())
        else:
            raise ValueError(f"{type(raw).__name__} is not a number")
    except OverflowError:  # an int beyond the float range
        raise ValueError(f"{quote(raw)} is out of range") from None
    if not math.isfinite(value):
        raise ValueError(f"{quote(raw)} is not a finite number")
    return value


def _parse_reading(document: dict[str, object], parsed: ParsedPayload, where: str) -> None:
    if "ts" not in document:
        parsed.rejections.append(Rejection(Reason.TIMESTAMP_MISSING, f'{where} has no "ts"'))
        return
    try:
        ts = parse_timestamp(document["ts"])
    except (ValueError, TypeError) as exc:
        parsed.rejections.append(
            Rejection(Reason.TIMESTAMP_INVALID, f"{where}: ts {quote(document['ts'])}: {exc}")
        )
        return
    values: dict[str, float] = {}
    rejected_before = len(parsed.rejections)
    for key, raw in document.items():
        if key in META_KEYS:
            continue
        parameter = canonical_parameter(key)
        if parameter is None:
            parsed.rejections.append(
                Rejection(Reason.UNKNOWN_PARAMETER, f"{where}: unknown parameter {quote(key)}")
            )
            continue
        rejection = _store_value(values, parameter, raw, where)
        if rejection is not None:
            parsed.rejections.append(rejection)
    if values:
        parsed.records.append(Record(ts, values))
    elif len(parsed.rejections) == rejected_before:
        parsed.rejections.append(Rejection(Reason.INVALID_SHAPE, f"{where} holds no values"))


def _store_value(
    values: dict[str, float], parameter: str, raw: object, where: str
) -> Rejection | None:
    if parameter == "water_class":
        water_class = parse_water_class(raw)
        if water_class is None:
            return Rejection(
                Reason.INVALID_WATER_CLASS,
                f"{where}: water_class {quote(raw)} is not I..V or worse",
            )
        values[parameter] = float(water_class)
        return None
    try:
        values[parameter] = parse_number(raw)
    except (ValueError, TypeError) as exc:
        return Rejection(Reason.NON_NUMERIC_VALUE, f"{where}: {parameter}: {exc}")
    return None


def _parse_senml(pack: list[object], station_id: str, parsed: ParsedPayload) -> None:
    """RFC 8428 SenML JSON: resolve base fields, group values by time into records."""
    base_name, base_time, base_unit, base_value = "", 0.0, "", 0.0
    now = time.time()
    by_time: dict[datetime, Record] = {}
    for position, entry in enumerate(pack):
        where = f"senml[{position}]"
        if not isinstance(entry, dict) or not SENML_KEYS.intersection(entry):
            parsed.rejections.append(Rejection(Reason.INVALID_SHAPE, f"{where} is not a record"))
            continue
        try:
            # RFC 8428 §4.3: names and units are strings; str() of a list would invent a name
            for key in ("bn", "bu", "n", "u"):
                if key in entry and not isinstance(entry[key], str):
                    raise ValueError(f"{key} {quote(entry[key])} is not a string")
            if "bn" in entry:
                base_name = str(entry["bn"])
            if "bt" in entry:
                base_time = parse_number(entry["bt"])
            if "bu" in entry:
                base_unit = str(entry["bu"])
            if "bv" in entry:
                base_value = parse_number(entry["bv"])
        except ValueError as exc:
            parsed.rejections.append(Rejection(Reason.INVALID_SHAPE, f"{where}: field: {exc}"))
            continue
        if not any(k in entry for k in ("v", "vs", "vb", "vd", "s")):
            continue  # a record carrying only base fields
        full_name = base_name + str(entry.get("n", ""))
        prefix, parameter_name = _split_senml_name(full_name)
        if prefix and station_id not in _NAME_SEPARATORS.split(prefix):
            raise PayloadError(
                Reason.STATION_MISMATCH,
                f"{where}: name {quote(full_name)} does not belong to station {station_id!r}",
            )
        parameter = canonical_parameter(parameter_name)
        if parameter is None:
            parsed.rejections.append(
                Rejection(
                    Reason.UNKNOWN_PARAMETER, f"{where}: unknown parameter {quote(full_name)}"
                )
            )
            continue
        try:
            t = base_time + parse_number(entry.get("t", 0))
            ts = datetime.fromtimestamp(now + t if t < SENML_RELATIVE_LIMIT else t, tz=UTC)
        except (ValueError, OverflowError, OSError) as exc:
            parsed.rejections.append(Rejection(Reason.TIMESTAMP_INVALID, f"{where}: time: {exc}"))
            continue
        unit = str(entry.get("u", base_unit))
        value = _senml_value(entry, parameter, unit, base_value, where)
        if isinstance(value, Rejection):
            parsed.rejections.append(value)
            continue
        record = by_time.get(ts)
        if record is None:
            record = by_time[ts] = Record(ts, {})
            parsed.records.append(record)
        elif parameter in record.values:
            # a repeated (name, time) must not overwrite silently: it becomes a record of its
            # own, and the writer keeps the first value as for any repeated reading
            parsed.records.append(Record(ts, {parameter: value}))
            continue
        record.values[parameter] = value


def _senml_value(
    entry: dict[str, object], parameter: str, unit: str, base_value: float, where: str
) -> float | Rejection:
    if parameter == "water_class":
        raw = entry.get("vs", entry.get("v"))
        water_class = parse_water_class(raw)
        if water_class is None:
            return Rejection(Reason.INVALID_WATER_CLASS, f"{where}: water_class {quote(raw)}")
        return float(water_class)
    if "v" not in entry:
        return Rejection(Reason.NON_NUMERIC_VALUE, f"{where}: {parameter} has no numeric v")
    try:
        value = base_value + parse_number(entry["v"])
    except ValueError as exc:
        return Rejection(Reason.NON_NUMERIC_VALUE, f"{where}: {parameter}: {exc}")
    if not unit:
        return value if math.isfinite(value) else _out_of_range(parameter, where)
    factor = conversion_factor(unit, CATALOGUE[parameter])
    if factor is None:
        return Rejection(
            Reason.UNKNOWN_UNIT,
            f"{where}: unit {quote(unit)} cannot be converted to {CATALOGUE[parameter].unit}",
        )
    # 12 significant digits hide the binary noise of the conversion (3e-8 kg/m3 -> 30 ug/m3)
    converted = value if factor == 1.0 else float(f"{value * factor:.12g}")
    # bv + v, or the conversion, can leave the float range although each part was finite
    return converted if math.isfinite(converted) else _out_of_range(parameter, where)


def _out_of_range(parameter: str, where: str) -> Rejection:
    return Rejection(Reason.NON_NUMERIC_VALUE, f"{where}: {parameter}: value overflows a float")


_NAME_SEPARATORS = re.compile(r"[/:]")


def _split_senml_name(full_name: str) -> tuple[str, str]:
    """('urn:dev:110000-A001:', 'pm25') from 'urn:dev:110000-A001:pm25'."""
    cut = max(full_name.rfind("/"), full_name.rfind(":"))
    return full_name[: cut + 1], full_name[cut + 1 :]
