"""The missing-data timer: a ``silence`` subscription fires ``no_data`` when a station in
its scope has sent nothing for ``for_minutes``; its next reading resolves it (in ingest)."""

from __future__ import annotations

import logging

import psycopg

log = logging.getLogger(__name__)

_SILENCE_LOCK = 0x53494C45

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


def check_silence(conn: psycopg.Connection) -> int:
    """Fire ``no_data`` for every newly silent station; returns the events added."""
    added = 0
    with conn.transaction(), conn.cursor() as cur:
        # several delivery workers may run the timer: one at a time, or no_data doubles
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SILENCE_LOCK,))
        for sub_id, station_id, channel, minutes, last in cur.execute(SILENT_STATIONS).fetchall():
            cur.execute(
                "INSERT INTO alert_state (subscription_id, station_id, state, updated_at)"
                " VALUES (%s, %s, 'firing', now()) ON CONFLICT (subscription_id, station_id)"
                " DO UPDATE SET state = 'firing', pending_since = NULL, pending_count = 0,"
                " updated_at = now()",
                (sub_id, station_id),
            )
            cur.execute(
                "INSERT INTO alert_events (subscription_id, station_id, kind, target,"
                " observed_at, threshold, channel) VALUES (%s, %s, 'no_data', 'silence', %s,"
                " %s, %s)",
                (sub_id, station_id, last, minutes, channel),
            )
            added += 1
            log.info("station %s silent for %d min (subscription %s)", station_id, minutes, sub_id)
        if added:
            cur.execute("SELECT pg_notify('alert_events', '')")
    return added
