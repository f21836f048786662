"""Alert evaluation inside the ingest transaction: an event exists if and only if the
readings that caused it are committed.

Called by the batch writer (``after_write``) once the batch's new rows are inserted and kept
in the temporary table ``new_readings``. The derived tables are maintained afterwards by the
aggregation stage, so they are stale here and never read: the hourly and daily means of the
touched hours and days are computed from ``readings`` (storage.alert_observations), after
the day locks that make concurrent writers of one station-day judge one after the other
(taken only when a mean subscription is active).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from alerts.rules import AlertState, Rule, step
from standards.alert_presets import GB3095_24H_GRADE_II
from standards.aqi import daily_aqi
from standards.limits import limit_set_in_force
from storage.aggregation import daily_max_8h_rule
from storage.alert_events import append_events, notify_new_events
from storage.alert_observations import (
    MEAN_TARGETS,
    Span,
    daily_aqi_inputs,
    lock_days,
    values_of_new_rows,
)
from storage.alert_state import create_states, lock_states, save_states
from storage.alert_subscriptions import active_subscriptions

log = logging.getLogger(__name__)

# The pollutants whose new rows change a day's AQI (O3: its daily maximum 1-hour and 8-hour)
AQI_POLLUTANTS = ("pm25", "pm10", "so2", "no2", "co", "o3")
# The O3 daily maximum 8-hour rule, as the aggregation stage keeps the days by it
O3_RULE = daily_max_8h_rule()


@dataclass(frozen=True)
class Observation:
    observed_at: datetime
    value: float | None
    day: date | None


def _threshold(sub: dict[str, Any], day: date | None, observed_at: datetime) -> float | None:
    if sub["threshold_rule"] == GB3095_24H_GRADE_II:
        on = day or observed_at.date()
        return limit_set_in_force(on).limit(sub["parameter"], "24h", 2)
    threshold = sub["threshold"]
    return None if threshold is None else float(threshold)


Pair = tuple[int, str]  # (subscription_id, station_id)


def evaluate_batch(cur: psycopg.Cursor[Any]) -> int:
    """Judge the batch's new values against every active subscription; returns events added."""
    subscriptions = active_subscriptions(cur.connection)
    if not subscriptions:
        return 0
    observations = _new_observations(cur, subscriptions)
    if not observations:
        return 0
    pairs = sorted(observations)
    states = _locked_states(cur, pairs)
    saved, events = [], []
    for pair in pairs:
        state, pair_events = _judge(
            subscriptions[pair[0]], pair, states.get(pair, AlertState()), observations[pair]
        )
        events.extend(pair_events)
        saved.append(
            (
                state.state,
                state.pending_since,
                state.pending_count,
                state.last_ts,
                state.last_value,
                pair[0],
                pair[1],
            )
        )
    save_states(cur, saved)
    if events:
        append_events(cur, events)
        notify_new_events(cur)
    return len(events)


def _new_observations(
    cur: psycopg.Cursor[Any], subscriptions: dict[int, dict[str, Any]]
) -> dict[Pair, list[Observation]]:
    """The batch's new values for each subscription and station it watches, with the daily
    AQI of the days they touch when a subscription watches it.

    With a subscription of a mean (hourly, daily, daily AQI) active, the day locks come
    first: the statements reading the means start after the previous holder of each lock
    committed, and see its readings. Without one, no lock is taken and ``readings`` is not
    read. A subscription created since ``subscriptions`` were read judges from the next
    batch on."""
    targets = {s["target"] for s in subscriptions.values()}
    span: Span = (None, None)
    if targets & MEAN_TARGETS:
        span = lock_days(cur, AQI_POLLUTANTS)
    observations: dict[Pair, list[Observation]] = defaultdict(list)
    for sub_id, station_id, observed_at, value, day in values_of_new_rows(cur, targets, span):
        if sub_id in subscriptions:
            observations[(sub_id, station_id)].append(Observation(observed_at, value, day))
    if "daily_aqi" in targets:
        _add_daily_aqi(cur, subscriptions, observations, span)
    return observations


def _locked_states(cur: psycopg.Cursor[Any], pairs: list[Pair]) -> dict[Pair, AlertState]:
    """The alert state of each pair (created ``ok`` when new), locked until the commit."""
    subscription_ids, station_ids = [p[0] for p in pairs], [p[1] for p in pairs]
    create_states(cur, subscription_ids, station_ids)
    return {
        (row[0], row[1]): AlertState(row[2], row[3], row[4], row[5], row[6])
        for row in lock_states(cur, subscription_ids, station_ids)
    }


def _judge(
    sub: dict[str, Any], pair: Pair, state: AlertState, observations: list[Observation]
) -> tuple[AlertState, list[tuple[Any, ...]]]:
    """Step the pair's state through its observations, oldest first; returns the new state
    and the events (rows of storage.alert_events.append_events) it fired."""
    events: list[tuple[Any, ...]] = []
    for obs in sorted(observations, key=lambda o: o.observed_at):
        event, threshold = None, None
        if sub["target"] == "silence":
            if state.state == "firing":  # data again: the silence is over
                state, event = AlertState(last_ts=obs.observed_at), "resolved"
        else:
            threshold = _threshold(sub, obs.day, obs.observed_at)
            if threshold is None or obs.value is None:
                continue
            rule = Rule(
                sub["comparator"],
                threshold,
                sub["clear_threshold"],
                sub["for_minutes"],
                sub["for_readings"],
            )
            state, event = step(state, rule, obs.observed_at, obs.value)
        if event is not None:
            events.append(
                (
                    pair[0],
                    pair[1],
                    event,
                    sub["target"],
                    sub["parameter"],
                    obs.value,
                    threshold,
                    obs.observed_at,
                    sub["channel"],
                )
            )
    return state, events


def _add_daily_aqi(
    cur: psycopg.Cursor[Any],
    subscriptions: dict[int, dict[str, Any]],
    observations: dict[Pair, list[Observation]],
    span: Span,
) -> None:
    """The daily AQI of each day the new rows touched, from the same inputs as the API's
    (storage.aqi_queries): daily means, the O3 daily maximum 1-hour and 8-hour mean. A day
    whose AQI is not computable (standards.aqi) is not judged."""
    days: dict[tuple[int, str, date], dict[str, Any]] = {}
    for sub_id, station_id, day, observed_at, input_key, value in daily_aqi_inputs(
        cur, AQI_POLLUTANTS, span, O3_RULE
    ):
        if sub_id not in subscriptions:
            continue
        entry = days.setdefault((sub_id, station_id, day), {"at": observed_at, "inputs": {}})
        entry["inputs"][input_key] = value
    for (sub_id, station_id, day), entry in days.items():
        result = daily_aqi(entry["inputs"], day)
        if result.aqi is not None:
            observations[(sub_id, station_id)].append(
                Observation(entry["at"], float(result.aqi), day)
            )
