"""The alert state machine of one (subscription, station): pure, no I/O.

ok ──breach──▶ pending ──held for_minutes and for_readings──▶ firing (event "firing")
pending ──no breach──▶ ok;  firing ──value back beyond clear_threshold──▶ ok (event "resolved")
Between the threshold and the clear threshold a firing alert stays firing (hysteresis), so
noise around a limit does not flap.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class Rule:
    comparator: str
    threshold: float
    clear_threshold: float | None = None
    for_minutes: int = 0
    for_readings: int = 1

    def breaches(self, value: float) -> bool:
        return COMPARATORS[self.comparator](value, self.threshold)

    def cleared(self, value: float) -> bool:
        """Back on the good side of the clear threshold (the threshold itself by default)."""
        clear = self.threshold if self.clear_threshold is None else self.clear_threshold
        return not COMPARATORS[self.comparator](value, clear)


@dataclass(frozen=True)
class AlertState:
    state: str = "ok"  # ok | pending | firing
    pending_since: datetime | None = None
    pending_count: int = 0
    last_ts: datetime | None = None
    last_value: float | None = None


def step(
    current: AlertState, rule: Rule, ts: datetime, value: float
) -> tuple[AlertState, str | None]:
    """The state after a value observed at ``ts``, and the event it causes (or None).

    A value older than the newest one seen is ignored (late data never re-opens an alert);
    a value for the same time (an hourly or daily mean updated by a later reading) is
    re-evaluated without counting as another reading.
    """
    if current.last_ts is not None and ts < current.last_ts:
        return current, None
    repeated = current.last_ts == ts
    seen = replace(current, last_ts=ts, last_value=value)
    if current.state == "firing":
        if rule.cleared(value):
            return AlertState(last_ts=ts, last_value=value), "resolved"
        return seen, None
    if not rule.breaches(value):
        return AlertState(last_ts=ts, last_value=value), None
    since = current.pending_since if current.state == "pending" else ts
    count = (
        current.pending_count
        if repeated and current.state == "pending"
        else (current.pending_count + 1 if current.state == "pending" else 1)
    )
    assert since is not None
    held = ts - since >= timedelta(minutes=rule.for_minutes)
    if held and count >= rule.for_readings:
        return replace(seen, state="firing", pending_since=since, pending_count=count), "firing"
    return replace(seen, state="pending", pending_since=since, pending_count=count), None
