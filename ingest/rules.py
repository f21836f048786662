"""The intake rules of one reading, as pure functions with one wording each: the station
(known, active), the timestamp (not in the future, not before 1990), the value (a number,
no sentinel, not negative, plausible) and the water class derived from a sample. Used by
the message validator and by the importer's row checks alike."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta

from schemas.payloads import EARLIEST_TS, Reason, Rejection, parse_number, quote
from standards.parameters import CATALOGUE, RESOLUTION_FLOOR, PlausibleRange, implausible
from standards.water import water_class

# Values analysers and loggers write for "no data"; they must never reach a mean.
SENTINELS = frozenset({-999.0, -9999.0, -99999.0, -999.9, -99.9})
WATER_KINDS = frozenset({"surface_water", "sea", "groundwater"})


def station_rejection(station_id: str, active: bool | None) -> Rejection | None:
    """Why readings of this station are refused, or None; ``active`` is the registry's
    flag, None for a station that is not registered."""
    if active is None:
        return Rejection(Reason.UNKNOWN_STATION, f"station {station_id!r} is not registered")
    if not active:
        return Rejection(Reason.INACTIVE_STATION, f"station {station_id!r} is deactivated")
    return None


def timestamp_rejection(
    ts: datetime, received_at: datetime, max_future: timedelta
) -> Rejection | None:
    """Why an (aware) reading time is refused: later than ``max_future`` after its receipt,
    or before 1990; None when it is acceptable."""
    if ts > received_at + max_future:
        return Rejection(
            Reason.TIMESTAMP_FUTURE,
            f"ts {ts.isoformat()} is more than {max_future} ahead of "
            f"the receive time {received_at.isoformat()}",
        )
    if ts < EARLIEST_TS:
        return Rejection(
            Reason.TIMESTAMP_INVALID, f"ts {ts.isoformat()} is before {EARLIEST_TS.date()}"
        )
    return None


def value_rejection(parameter: str, value: float, ts: datetime) -> Rejection | None:
    """Why a value (in the stored unit) of a catalogued parameter at ``ts`` is refused: not
    finite, a no-data marker, negative, or implausible; None when it is acceptable."""
    if not math.isfinite(value):
        return non_numeric(parameter, value)
    if value in SENTINELS:
        return Rejection(
            Reason.SENTINEL_VALUE,
            f"{parameter} = {value:g} at {ts.isoformat()} is a no-data marker",
        )
    if value < 0 and not CATALOGUE[parameter].may_be_negative:
        return Rejection(
            Reason.NEGATIVE_VALUE, f"{parameter} = {value:g} at {ts.isoformat()} is negative"
        )
    bounds = implausible(parameter, value)
    if bounds is not None:
        return out_of_range(parameter, value, bounds, ts)
    return None


def out_of_range(
    parameter: str, value: float, bounds: PlausibleRange, ts: datetime | None = None
) -> Rejection:
    """The rejection of a value beyond its parameter's plausible range."""
    when = "" if ts is None else f" at {ts.isoformat()}"
    if bounds.low <= value <= bounds.high:
        return Rejection(
            Reason.OUT_OF_RANGE,
            f"{parameter} = {value:g}{when} is below any instrument's resolution "
            f"({RESOLUTION_FLOOR:g} {CATALOGUE[parameter].unit}) without being 0",
        )
    return Rejection(
        Reason.OUT_OF_RANGE,
        f"{parameter} = {value:g}{when} is outside the plausible range "
        f"{bounds.low:g}..{bounds.high:g} {CATALOGUE[parameter].unit} ({bounds.basis})",
    )


def unknown_parameter(name: object) -> Rejection:
    """The rejection of a parameter name outside the catalogue (as the payload parser words
    it)."""
    return Rejection(Reason.UNKNOWN_PARAMETER, f"unknown parameter {quote(name)}")


def non_numeric(parameter: str, raw: object) -> Rejection:
    """The rejection of a value that is not a finite number (as the payload parser words
    it); ``raw`` as read (bytes are taken as UTF-8 text)."""
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    try:
        parse_number(raw)
        why = f"{quote(raw)} is not a number"
    except (ValueError, TypeError) as exc:
        why = str(exc)
    return Rejection(Reason.NON_NUMERIC_VALUE, f"{parameter}: {why}")


def derived_water_class(values: Mapping[str, float], waterbody: str | None) -> float | None:
    """The GB 3838 single-factor class (1..6) of a water sample's accepted values, when the
    sample gives no class itself and its items allow one; None otherwise."""
    if "water_class" in values:
        return None
    derived = water_class(values, "lake" if waterbody == "lake" else "river")
    return None if derived is None else float(derived.water_class)
