"""The missing-data timer: a ``silence`` subscription fires ``no_data`` when a station in
its scope has sent nothing for ``for_minutes``; its next reading resolves it (in ingest)."""

from __future__ import annotations

import logging

import psycopg

from storage.alert_events import append_no_data_event, notify_new_events
from storage.alert_observations import silent_stations
from storage.alert_state import set_firing, take_silence_timer_lock

log = logging.getLogger(__name__)


def check_silence(conn: psycopg.Connection) -> int:
    """Fire ``no_data`` for every newly silent station; returns the events added."""
    added = 0
    with conn.transaction(), conn.cursor() as cur:
        # several delivery workers may run the timer: one at a time, or no_data doubles
        take_silence_timer_lock(cur)
        for sub_id, station_id, channel, minutes, last in silent_stations(cur):
            set_firing(cur, sub_id, station_id)
            append_no_data_event(cur, sub_id, station_id, last, minutes, channel)
            added += 1
            log.info("station %s silent for %d min (subscription %s)", station_id, minutes, sub_id)
        if added:
            notify_new_events(cur)
    return added
