"""Data review: why an operator takes data out, and the sand-dust rule of the national
assessment. Pure rules, no I/O.

- A review invalidates whole hours: the range an operator gives is widened to the UTC hours
  it touches (an hourly value is the unit HJ 663 judges).
- Sand-dust (MEE supplementary rule of 2016 on the assessment of ambient air quality, in
  force from 2017): the PM10 and PM2.5 data of periods affected by sand-dust weather are
  removed in data review, and the rest is used for the assessment and the ranking. Both
  statistics are kept: as measured (``pm25``) and with the event hours excluded
  (``pm25_dust_excluded``); targets, attainment and ranking use the excluded ones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Reason codes of a review and the sentence an operator reads.
REVIEW_REASONS: dict[str, str] = {
    "calibration": "analyser being calibrated (zero/span check or multi-point calibration)",
    "maintenance": "scheduled maintenance of the station or analyser",
    "instrument_fault": "instrument fault (pump, sensor, heater, flow)",
    "power_or_communication_loss": "power failure or loss of communication",
    "outlier": "value judged not representative by the reviewer",
    "other": "other reason, explained in the comment",
    "verified": "value verified by the reviewer: the station's own flag is overruled",
}
# What a review does to the hours it names: take them out, or make the values their station
# flagged (HJ 212 data flags) count.
REVIEW_ACTIONS = ("invalidate", "accept")
REASONS_NEEDING_COMMENT = frozenset({"other"})

# The longest range one review or dust event may span: a year of hours, so one action can
# never rewrite a whole history by a typo.
MAX_RANGE = timedelta(days=366)

# Particulate statistics with the sand-dust hours excluded, by the measured parameter.
DUST_PARAMETERS = ("pm10", "pm25")
DUST_EXCLUDED: dict[str, str] = {p: f"{p}_dust_excluded" for p in DUST_PARAMETERS}
MEASURED_OF: dict[str, str] = {v: k for k, v in DUST_EXCLUDED.items()}


def whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) widened to the whole UTC hours it touches (aware datetimes), in UTC."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    first = start.replace(minute=0, second=0, microsecond=0)
    last = end.replace(minute=0, second=0, microsecond=0)
    if last < end:
        last += timedelta(hours=1)
    return first, last


def assessed_series(parameter: str) -> str:
    """The daily series the assessment judges for ``parameter``: the dust-excluded one of
    PM10 and PM2.5, the parameter itself otherwise."""
    return DUST_EXCLUDED.get(parameter, parameter)
