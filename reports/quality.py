"""Automatic quality flags as the API gives them: a station's flagged hours, and the flags
its readings and hourly values carry (standards.quality, judged when read, never stored).

Each question fetches the station's hours of the range plus the thresholds' look-back and
look-ahead, so that the flags of the range's first and last hours are the ones a longer
range would give them."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta

import psycopg

from schemas.series import FlaggedHour, QualityFlagOut
from standards.parameters import CATALOGUE
from standards.quality import (
    FlagsByHour,
    QualityFlag,
    QualityThresholds,
    hour_flags,
    parameters_judged_with,
)
from storage.quality import station_hours
from storage.series import StoredReading

HOUR = timedelta(hours=1)


def hour_of(ts: datetime) -> datetime:
    """The start of the UTC hour ``ts`` lies in (the bucket of readings_hourly)."""
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def flags_out(flags: Iterable[QualityFlag]) -> list[QualityFlagOut]:
    """Flags as the API gives them: code and message."""
    return [QualityFlagOut(code=flag.code, message=flag.message) for flag in flags]


def _judged(
    conn: psycopg.Connection,
    station_id: str,
    parameters: Collection[str] | None,
    start: datetime,
    end: datetime,
    thresholds: QualityThresholds,
) -> tuple[dict[tuple[str, datetime], float], FlagsByHour]:
    """The hourly means of the look-around window and the flags of the hours of
    ``parameters`` (None: all) starting in [start, end)."""
    judged = None if parameters is None else parameters_judged_with(parameters)
    first = hour_of(start)
    window = (
        first - thresholds.lookback_hours * HOUR,
        end + thresholds.lookahead_hours * HOUR,
    )
    hours = station_hours(conn, station_id, judged, *window)
    flags = {
        (parameter, bucket): flags
        for (parameter, bucket), flags in hour_flags(hours, thresholds, window).items()
        if (parameters is None or parameter in parameters) and first <= bucket < end
    }
    return {(parameter, bucket): mean for parameter, bucket, mean in hours}, flags


def flags_of_hours(
    conn: psycopg.Connection,
    station_id: str,
    parameters: Collection[str] | None,
    start: datetime,
    end: datetime,
    thresholds: QualityThresholds,
) -> FlagsByHour:
    """The flags of the station's hours of ``parameters`` (None: all) that start in
    [start, end), keyed by (parameter, UTC hour start); flagged hours only."""
    return _judged(conn, station_id, parameters, start, end, thresholds)[1]


def station_flags(
    conn: psycopg.Connection,
    station_id: str,
    start: datetime,
    end: datetime,
    thresholds: QualityThresholds,
    parameters: Collection[str] | None = None,
) -> list[FlaggedHour]:
    """The station's hours starting in [start, end) that carry a flag, of ``parameters``
    (None: all), by hour then parameter: parameter, hour, hourly mean, unit, flags."""
    means, flagged = _judged(conn, station_id, parameters, start, end, thresholds)
    return [
        FlaggedHour(
            parameter=parameter,
            hour=bucket.astimezone(UTC),
            value=means[parameter, bucket],
            unit=CATALOGUE[parameter].unit if parameter in CATALOGUE else "",
            flags=flags_out(flags),
        )
        for (parameter, bucket), flags in sorted(
            flagged.items(), key=lambda item: (item[0][1], item[0][0])
        )
    ]


def reading_flags(
    conn: psycopg.Connection,
    station_id: str,
    rows: Sequence[StoredReading],
    thresholds: QualityThresholds,
) -> FlagsByHour:
    """The flags of the hours ``rows`` (readings of the station) lie in; a reading
    inherits the flags of its (parameter, UTC hour). One query for all the rows."""
    if not rows:
        return {}
    times = [row[2] for row in rows]
    return flags_of_hours(
        conn,
        station_id,
        {row[1] for row in rows},
        min(times),
        hour_of(max(times)) + HOUR,
        thresholds,
    )


def flags_of_reading(flags: FlagsByHour, parameter: str, ts: datetime) -> list[QualityFlag]:
    """The flags a reading of ``parameter`` at ``ts`` inherits from its hour."""
    return flags.get((parameter, hour_of(ts)), [])
