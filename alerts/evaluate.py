"""Alert evaluation inside the ingest transaction: an event exists if and only if the
readings that caused it are committed.

Called by the batch writer after the rollups are refreshed, with the batch's new rows in the
temporary table ``new_readings``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from alerts.rules import AlertState, Rule, step
from standards.aqi import daily_aqi
from standards.limits import limit_set_in_force

log = logging.getLogger(__name__)

AQI_POLLUTANTS = ("pm25", "pm10", "so2", "no2", "co")

ACTIVE_SUBSCRIPTIONS = """
SELECT subscription_id, target, parameter, comparator, threshold, threshold_rule,
       clear_threshold, for_minutes, for_readings, channel
FROM alert_subscriptions WHERE active
"""

# (subscription, station) pairs whose station is in the subscription's scope and has new rows
_IN_SCOPE = """
in_scope AS (
    SELECT s.subscription_id, s.target, s.parameter, st.station_id, st.timezone
    FROM alert_subscriptions s
    JOIN stations st ON st.station_id IN (SELECT DISTINCT station_id FROM new_readings)
    WHERE s.active AND (
        s.scope = 'all'
        OR (s.scope IN ('station', 'stations') AND st.station_id = ANY (s.scope_values))
        OR (s.scope = 'city' AND st.city_code = ANY (s.scope_values))
        OR (s.scope = 'province' AND st.province = ANY (s.scope_values)))
)"""

# Values to judge: (subscription, station, observed_at, value, day)
VALUES_OF_NEW_ROWS = f"""
WITH {_IN_SCOPE}
SELECT i.subscription_id, i.station_id, n.ts, n.value, NULL::date
FROM in_scope i JOIN new_readings n ON n.station_id = i.station_id AND n.parameter = i.parameter
WHERE i.target IN ('reading', 'water_class')
UNION ALL
SELECT i.subscription_id, i.station_id, h.bucket, h.mean, NULL::date
FROM in_scope i
JOIN (SELECT DISTINCT station_id, parameter, time_bucket('1 hour', ts) AS bucket
      FROM new_readings) t ON t.station_id = i.station_id AND t.parameter = i.parameter
JOIN readings_hourly h ON h.station_id = t.station_id AND h.parameter = t.parameter
                      AND h.bucket = t.bucket AND h.valid
WHERE i.target = 'hourly_mean'
UNION ALL
SELECT i.subscription_id, i.station_id, d.day::timestamp AT TIME ZONE i.timezone, d.mean, d.day
FROM in_scope i
JOIN (SELECT DISTINCT n.station_id, n.parameter, (n.ts AT TIME ZONE st.timezone)::date AS day
      FROM new_readings n JOIN stations st ON st.station_id = n.station_id) t
     ON t.station_id = i.station_id AND t.parameter = i.parameter
JOIN readings_daily d ON d.station_id = t.station_id AND d.parameter = t.parameter
                     AND d.day = t.day AND d.valid
WHERE i.target = 'daily_mean'
UNION ALL
SELECT i.subscription_id, i.station_id, max(n.ts), NULL, NULL::date
FROM in_scope i JOIN new_readings n ON n.station_id = i.station_id
WHERE i.target = 'silence'
GROUP BY i.subscription_id, i.station_id
"""

# Daily means of the AQI pollutants on the days the batch touched, for daily_aqi rules
DAILY_MEANS_FOR_AQI = f"""
WITH {_IN_SCOPE}
SELECT i.subscription_id, i.station_id, t.day, t.day::timestamp AT TIME ZONE i.timezone,
       d.parameter, d.mean
FROM in_scope i
JOIN (SELECT DISTINCT n.station_id, (n.ts AT TIME ZONE st.timezone)::date AS day
      FROM new_readings n JOIN stations st ON st.station_id = n.station_id
      WHERE n.parameter = ANY (%(pollutants)s)) t ON t.station_id = i.station_id
JOIN readings_daily d ON d.station_id = t.station_id AND d.day = t.day AND d.valid
                     AND d.parameter = ANY (%(pollutants)s)
WHERE i.target = 'daily_aqi'
"""

LOCK_STATES = """
WITH pairs AS (SELECT * FROM unnest(%(subs)s::bigint[], %(stations)s::text[]) AS p(s, st))
SELECT a.subscription_id, a.station_id, a.state, a.pending_since, a.pending_count, a.last_ts,
       a.last_value
FROM alert_state a JOIN pairs ON a.subscription_id = pairs.s AND a.station_id = pairs.st
ORDER BY a.subscription_id, a.station_id
FOR UPDATE OF a
"""

CREATE_STATES = """
INSERT INTO alert_state (subscription_id, station_id, state)
SELECT s, st, 'ok' FROM unnest(%(subs)s::bigint[], %(stations)s::text[]) AS p(s, st)
ORDER BY s, st
ON CONFLICT DO NOTHING
"""

SAVE_STATE = """
UPDATE alert_state SET state = %s, pending_since = %s, pending_count = %s, last_ts = %s,
       last_value = %s, updated_at = now()
WHERE subscription_id = %s AND station_id = %s
"""

INSERT_EVENT = """
INSERT INTO alert_events (subscription_id, station_id, kind, target, parameter, value,
                          threshold, observed_at, channel)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


@dataclass(frozen=True)
class Observation:
    observed_at: datetime
    value: float | None
    day: date | None


def _threshold(sub: dict[str, Any], day: date | None, observed_at: datetime) -> float | None:
    if sub["threshold_rule"] == "gb3095_24h_grade_ii":
        on = day or observed_at.date()
        return limit_set_in_force(on).limit(sub["parameter"], "24h", 2)
    threshold = sub["threshold"]
    return None if threshold is None else float(threshold)


def evaluate_batch(cur: psycopg.Cursor[Any]) -> int:
    """Judge the batch's new values against every active subscription; returns events added."""
    subscriptions = {
        row["subscription_id"]: row
        for row in cur.connection.cursor(row_factory=dict_row).execute(ACTIVE_SUBSCRIPTIONS)
    }
    if not subscriptions:
        return 0
    observations: dict[tuple[int, str], list[Observation]] = defaultdict(list)
    for sub_id, station_id, observed_at, value, day in cur.execute(VALUES_OF_NEW_ROWS):
        observations[(sub_id, station_id)].append(Observation(observed_at, value, day))
    if any(s["target"] == "daily_aqi" for s in subscriptions.values()):
        _add_daily_aqi(cur, observations)
    if not observations:
        return 0

    pairs = sorted(observations)
    arrays = {"subs": [p[0] for p in pairs], "stations": [p[1] for p in pairs]}
    cur.execute(CREATE_STATES, arrays)
    states = {
        (row[0], row[1]): AlertState(row[2], row[3], row[4], row[5], row[6])
        for row in cur.execute(LOCK_STATES, arrays)
    }
    saved, events = [], []
    for pair in pairs:
        sub = subscriptions[pair[0]]
        state = states.get(pair, AlertState())
        for obs in sorted(observations[pair], key=lambda o: o.observed_at):
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
    cur.executemany(SAVE_STATE, saved)
    if events:
        cur.executemany(INSERT_EVENT, events)
        cur.execute("SELECT pg_notify('alert_events', '')")
    return len(events)


def _add_daily_aqi(
    cur: psycopg.Cursor[Any], observations: dict[tuple[int, str], list[Observation]]
) -> None:
    days: dict[tuple[int, str, date], dict[str, Any]] = {}
    for sub_id, station_id, day, observed_at, parameter, mean in cur.execute(
        DAILY_MEANS_FOR_AQI, {"pollutants": list(AQI_POLLUTANTS)}
    ):
        entry = days.setdefault((sub_id, station_id, day), {"at": observed_at, "means": {}})
        entry["means"][parameter] = mean
    for (sub_id, station_id, day), entry in days.items():
        result = daily_aqi(entry["means"], day)
        if result.aqi is not None:
            observations[(sub_id, station_id)].append(
                Observation(entry["at"], float(result.aqi), day)
            )
