"""What the alert rules judge: the values a batch's new readings (in the temporary table
``new_readings`` of the ingest transaction) give each active subscription in whose scope
their station lies, and the stations that have gone silent.

A station is in a subscription's scope when the scope is ``all``, names the station, its
city code or its province."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

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

# Stations in scope whose newest reading arrived longer ago than the subscription allows
# (or never), and whose silence alert is not already firing.
SILENT_STATIONS = """
SELECT s.subscription_id, st.station_id, s.channel, s.for_minutes, last.received_at
FROM alert_subscriptions s
JOIN stations st ON st.active AND (
        s.scope = 'all'
        OR (s.scope IN ('station', 'stations') AND st.station_id = ANY (s.scope_values))
        OR (s.scope = 'city' AND st.city_code = ANY (s.scope_values))
        OR (s.scope = 'province' AND st.province = ANY (s.scope_values)))
LEFT JOIN LATERAL (SELECT max(received_at) AS received_at FROM latest_readings l
                   WHERE l.station_id = st.station_id) last ON true
LEFT JOIN alert_state a ON a.subscription_id = s.subscription_id
                       AND a.station_id = st.station_id
WHERE s.active AND s.target = 'silence'
  AND coalesce(last.received_at, s.created_at) < now() - make_interval(mins => s.for_minutes)
  AND coalesce(a.state, 'ok') <> 'firing'
ORDER BY s.subscription_id, st.station_id
"""


def values_of_new_rows(cur: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
    """(subscription_id, station_id, observed_at, value, day) of every value the new rows
    give a subscription: the rows themselves (reading, water_class), the valid hourly means of
    their hours (hourly_mean), the valid daily means of their station-local days (daily_mean,
    with the day), and the newest row of each station (silence, value None)."""
    return cur.execute(VALUES_OF_NEW_ROWS).fetchall()


def daily_means_for_aqi(
    cur: psycopg.Cursor[Any], pollutants: Sequence[str]
) -> list[tuple[Any, ...]]:
    """(subscription_id, station_id, day, start of the day, parameter, mean) of the valid daily
    means of ``pollutants`` on every station-local day the new rows of a pollutant touched,
    for each daily_aqi subscription whose scope holds the station."""
    return cur.execute(DAILY_MEANS_FOR_AQI, {"pollutants": list(pollutants)}).fetchall()


def silent_stations(cur: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
    """(subscription_id, station_id, channel, for_minutes, last received_at or None) of every
    active station newly silent for an active silence subscription."""
    return cur.execute(SILENT_STATIONS).fetchall()
