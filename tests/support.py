"""Helpers for tests that run against the private PostgreSQL and Mosquitto."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self

import paho.mqtt.client as mqtt
import psycopg

from core import PROJECT_ROOT


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> Any:
    """Poll until ``predicate()`` is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def count(database_url: str, sql: str, params: Iterable[Any] = ()) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql, tuple(params)).fetchone()
    assert row is not None
    return int(row[0])


class ModuleProcess:
    """One ``python -m <module>`` process of ours, logging to ``log_path``."""

    module = ""

    def __init__(
        self, env: dict[str, str], log_path: Path | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        path = self.log_path or Path(os.devnull)
        with open(path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env=self.env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def terminate(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=timeout)

    def stop_quietly(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Worker(ModuleProcess):
    """One ``python -m ingest`` process with its own client id."""

    module = "ingest"

    def __init__(
        self,
        database_url: str,
        mqtt_url: str,
        client_id: str = "test-ingest",
        log_path: Path | None = None,
        **settings: str,
    ) -> None:
        super().__init__(
            {
                **os.environ,
                "AIRWATER_DATABASE_URL": database_url,
                "AIRWATER_MQTT_URL": mqtt_url,
                "AIRWATER_INGEST_CLIENT_ID": client_id,
                "AIRWATER_METRICS_PORT": "0",
                "AIRWATER_DB_RETRY_MAX_S": "1",
                **{f"AIRWATER_{k.upper()}": v for k, v in settings.items()},
            },
            log_path,
        )


class Publisher:
    """A QoS-1 publisher that waits for every PUBACK; keeps its in-flight window small."""

    def __init__(
        self,
        port: int,
        client_id: str = "test-publisher",
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.max_inflight_messages_set(50)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        # CONNACK comes on the loop's thread (later with a password to check): until then
        # a publish would fail with "not currently connected"
        deadline = time.monotonic() + 10
        while not self.client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.01)

    def publish(self, station_id: str, payload: Any, qos: int = 1) -> mqtt.MQTTMessageInfo:
        body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        return self.client.publish(f"stations/{station_id}/readings", body, qos=qos)

    def publish_all(self, messages: Iterable[tuple[str, Any]]) -> int:
        infos = [self.publish(station_id, payload) for station_id, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=120)
            assert info.is_published()
        return len(infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


PROBE_STATION = "PROBE-0"


def wait_until_consuming(
    database_url: str, publisher: Publisher, batch_window_s: float = 0.2, timeout: float = 60
) -> None:
    """Publish probe readings, one at a time, until one is stored: the worker is subscribed
    and writing. Probe rows are removed afterwards."""
    probe_ts = 946684800  # 2000-01-01, far from any test data
    deadline = time.monotonic() + timeout
    while True:
        probe_ts += 3600
        publisher.publish(PROBE_STATION, {"ts": probe_ts, "pm25": 1.0}).wait_for_publish(10)
        try:
            wait_for(
                lambda: count(
                    database_url,
                    "SELECT count(*) FROM readings WHERE station_id = %s",
                    (PROBE_STATION,),
                ),
                timeout=batch_window_s + 1.0,
                interval=0.05,
            )
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError("the ingest worker never consumed a probe") from None
    with psycopg.connect(database_url) as conn:
        for table in ("readings", "readings_daily", "latest_readings", "aggregation_queue"):
            conn.execute(f"DELETE FROM {table} WHERE station_id = %s", (PROBE_STATION,))


def settle(database_url: str) -> int:
    """Run the aggregation stage until everything committed so far is reflected in the
    derived levels (what `airwater aggregate` does continuously); returns queue rows."""
    from ingest.aggregation import settle as settle_on

    with psycopg.connect(database_url, autocommit=True) as conn:
        return settle_on(conn)


# Derived levels recomputed from `readings` with SQL written independently of
# storage/aggregation.py (hours: the readings_hourly view of 0008 is checked too).
# An hour an active 'invalidate' review names is not valid (whatever its data); a value its
# station flagged counts only in the hours of an active 'accept' review.
_NOT_REVIEWED = """NOT EXISTS (
    SELECT 1 FROM reviews v
    WHERE v.station_id = r.station_id AND v.action = 'invalidate' AND v.restored_at IS NULL
      AND r.parameter = ANY(v.parameters)
      AND date_trunc('hour', r.ts) >= v.from_ts AND date_trunc('hour', r.ts) < v.to_ts)"""
_COUNTS = """(r.flag = 'valid' OR EXISTS (
    SELECT 1 FROM reviews a
    WHERE a.station_id = r.station_id AND a.action = 'accept' AND a.restored_at IS NULL
      AND r.parameter = ANY(a.parameters)
      AND date_trunc('hour', r.ts) >= a.from_ts AND date_trunc('hour', r.ts) < a.to_ts))"""
_HOURLY_FROM_READINGS = f"""
SELECT r.station_id, r.parameter, date_trunc('hour', r.ts AT TIME ZONE 'UTC') AS hour,
       round(avg(r.value)::numeric, 6), round(min(r.value)::numeric, 6),
       round(max(r.value)::numeric, 6), count(*),
       count(*) * greatest(s.reading_interval_s, coalesce(max(c.coverage_s), 0)) >= 45 * 60
       AND bool_and({_NOT_REVIEWED})
FROM readings r JOIN stations s USING (station_id)
LEFT JOIN hourly_coverage c ON c.station_id = r.station_id AND c.parameter = r.parameter
                           AND c.bucket = date_trunc('hour', r.ts)
WHERE {_COUNTS}
GROUP BY 1, 2, 3, s.reading_interval_s
"""
_HOURLY_STORED = """
SELECT station_id, parameter, bucket AT TIME ZONE 'UTC', round(mean::numeric, 6),
       round(min::numeric, 6), round(max::numeric, 6), count, valid
FROM readings_hourly
"""
# PM10 and PM2.5 also as '<p>_dust_excluded': without the hours of active sand-dust events
# of the station's city.
_DAILY = f"""
WITH measured AS (
    SELECT r.station_id, r.parameter, s.timezone, s.city_code, date_trunc('hour', r.ts) AS hour,
           avg(r.value) AS mean,
           count(*) * greatest(s.reading_interval_s, coalesce(max(c.coverage_s), 0))
               >= 45 * 60 AND bool_and({_NOT_REVIEWED}) AS valid
    FROM readings r JOIN stations s USING (station_id)
    LEFT JOIN hourly_coverage c ON c.station_id = r.station_id AND c.parameter = r.parameter
                               AND c.bucket = date_trunc('hour', r.ts)
    WHERE {_COUNTS}
    GROUP BY 1, 2, 3, 4, 5, s.reading_interval_s
), hourly AS (
    SELECT station_id, parameter, timezone, hour, mean, valid FROM measured
    UNION ALL
    SELECT m.station_id, m.parameter || '_dust_excluded', m.timezone, m.hour, m.mean, m.valid
    FROM measured m
    WHERE m.parameter IN ('pm10', 'pm25')
      AND NOT EXISTS (SELECT 1 FROM dust_events e
                      WHERE e.withdrawn_at IS NULL AND m.city_code = ANY(e.city_codes)
                        AND m.hour >= e.from_ts AND m.hour < e.to_ts)
)
SELECT h.station_id, h.parameter, (h.hour AT TIME ZONE h.timezone)::date AS day,
       avg(h.mean) FILTER (WHERE h.valid) AS mean,
       count(*) FILTER (WHERE h.valid) AS valid_hours, count(*) AS hours,
       count(*) FILTER (WHERE h.valid) >= CASE WHEN h.parameter IN
           ('pm25', 'pm10', 'so2', 'no2', 'co', 'o3', 'pm25_dust_excluded',
            'pm10_dust_excluded') THEN 20 ELSE 1 END AS valid,
       max(h.mean) FILTER (WHERE h.valid) AS max
FROM hourly h
GROUP BY 1, 2, 3
UNION ALL
-- O3 daily maximum 8-hour (HJ 663, STANDARDS.md §3a): the windows of 8 hours starting at an
-- hour S of the day whose last hour (S + 7 h) starts in the day too, each hour counted in the
-- windows starting 0 … 7 hours before it; a window is valid with >= 6 valid hours; the day's
-- value is the largest valid window, valid with >= 14 valid windows or with a value above
-- 160 (the Grade II 8-hour limit of every GB 3095 version)
SELECT w.station_id, 'o3_8h', w.day,
       max(w.mean) FILTER (WHERE w.valid_hours >= 6),
       count(*) FILTER (WHERE w.valid_hours >= 6), count(*),
       count(*) FILTER (WHERE w.valid_hours >= 6) >= 14
           OR coalesce(max(w.mean) FILTER (WHERE w.valid_hours >= 6) > 160, false),
       max(w.mean) FILTER (WHERE w.valid_hours >= 6)
FROM (
    SELECT h.station_id, (h.hour AT TIME ZONE h.timezone)::date AS day,
           h.hour - k * interval '1 hour' AS start,
           avg(h.mean) FILTER (WHERE h.valid) AS mean,
           count(*) FILTER (WHERE h.valid) AS valid_hours
    FROM hourly h CROSS JOIN generate_series(0, 7) k
    WHERE h.parameter = 'o3'
      AND ((h.hour - k * interval '1 hour') AT TIME ZONE h.timezone)::date
          = (h.hour AT TIME ZONE h.timezone)::date
      AND ((h.hour + (7 - k) * interval '1 hour') AT TIME ZONE h.timezone)::date
          = (h.hour AT TIME ZONE h.timezone)::date
    GROUP BY 1, 2, 3
) w
GROUP BY 1, 2, 3
"""
# The stage stores a dust-excluded day only where an active event overlaps the station's local
# day (elsewhere the measured day stands for it, which the city and yearly comparisons check);
# a day whose every hour an event excluded is stored empty (hours 0), and has no row here.
_DAILY_FROM_READINGS = """
SELECT d.station_id, d.parameter, d.day, round(d.mean::numeric, 6), d.valid_hours, d.hours,
       d.valid
FROM recomputed_daily d JOIN stations s USING (station_id)
WHERE d.parameter NOT LIKE '%%dust_excluded'
   OR EXISTS (SELECT 1 FROM dust_events e
              WHERE e.withdrawn_at IS NULL AND s.city_code = ANY(e.city_codes)
                AND e.from_ts < ((d.day + 1)::timestamp AT TIME ZONE s.timezone)
                AND e.to_ts > (d.day::timestamp AT TIME ZONE s.timezone))
"""
_DAILY_STORED = """
SELECT station_id, parameter, day, round(mean::numeric, 6), valid_hours, hours, valid
FROM readings_daily WHERE hours > 0
"""
_CITY_DAILY = """
SELECT s.city_code, d.parameter, d.day, avg(d.mean) AS mean, count(*) AS stations
FROM recomputed_daily d JOIN stations s USING (station_id)
WHERE d.valid AND s.kind = 'air' AND s.city_code IS NOT NULL
GROUP BY 1, 2, 3
"""
_CITY_DAILY_FROM_READINGS = """
SELECT city_code, parameter, day, round(mean::numeric, 6), stations FROM recomputed_city_daily c
"""
_CITY_DAILY_STORED = """
SELECT city_code, parameter, day, round(mean::numeric, 6), stations FROM city_daily
"""
_STATION_YEARLY_FROM_READINGS = """
SELECT d.station_id, d.parameter, extract(year FROM d.day)::int,
       round(avg(d.mean)::numeric, 6), count(*),
       array_agg(extract(month FROM d.day)::int ORDER BY d.day)
FROM recomputed_daily d JOIN stations s USING (station_id)
WHERE d.valid AND s.kind = 'air'
GROUP BY 1, 2, 3
"""
# valid_days_by_month as the months of the valid days, to compare with the array above
_STATION_YEARLY_STORED = """
SELECT station_id, parameter, year, round(mean::numeric, 6), valid_days,
       (SELECT array_agg(m ORDER BY m) FROM generate_subscripts(valid_days_by_month, 1) m,
               generate_series(1, valid_days_by_month[m]))
FROM station_yearly
"""
_CITY_YEARLY_FROM_READINGS = """
SELECT city_code, parameter, extract(year FROM day)::int, round(avg(mean)::numeric, 6),
       count(*), max(stations)
FROM recomputed_city_daily c
GROUP BY 1, 2, 3
"""
_CITY_YEARLY_STORED = """
SELECT city_code, parameter, year, round(mean::numeric, 6), valid_days, stations
FROM city_yearly
"""
_LATEST_FROM_READINGS = """
SELECT DISTINCT ON (station_id, parameter) station_id, parameter, ts, value
FROM readings ORDER BY station_id, parameter, ts DESC
"""
_LATEST_STORED = "SELECT station_id, parameter, ts, value FROM latest_readings"


# Each city-day's daily AQI inputs: the mean over its air stations of each one's valid daily
# means, O3 daily maximum 1-hour ('o3_1h': the largest valid hour of a valid O3 day) and
# 8-hour ('o3_8h')
_CITY_DAY_AQI_INPUTS_FROM_READINGS = """
SELECT s.city_code, d.day,
       CASE WHEN d.parameter = 'o3' THEN 'o3_1h' ELSE d.parameter END,
       avg(CASE WHEN d.parameter = 'o3' THEN d.max ELSE d.mean END)
FROM recomputed_daily d JOIN stations s USING (station_id)
WHERE d.valid AND s.kind = 'air' AND s.city_code IS NOT NULL
  AND d.parameter IN ('pm25', 'pm10', 'so2', 'no2', 'co', 'o3', 'o3_8h')
GROUP BY 1, 2, 3
"""
_CITY_DAY_AQI_STORED = """
SELECT city_code, day, aqi, version, primary_pollutants, beyond_index, not_computable, missing
FROM city_daily_aqi
"""


def _assert_city_day_aqis_match(conn: psycopg.Connection) -> None:
    """city_daily_aqi holds the HJ 633 daily AQI (standards.aqi) of the city-day inputs
    recomputed from `readings`. Summation order moves a mean by an ulp, which may cross a
    breakpoint or a rounding half: the stored AQI must lie between the AQIs of the inputs
    scaled by 1 ∓ 1e-9 (the AQI does not decrease with a concentration), and its other fields
    must match when those two agree."""
    from standards.aqi import daily_aqi

    inputs: dict[tuple[str, Any], dict[str, float]] = {}
    for city_code, day, key, value in conn.execute(_CITY_DAY_AQI_INPUTS_FROM_READINGS):
        inputs.setdefault((city_code, day), {})[key] = value
    expected = {}
    for (city_code, day), values in inputs.items():
        low = daily_aqi({k: v * (1 - 1e-9) for k, v in values.items()}, day)
        high = daily_aqi({k: v * (1 + 1e-9) for k, v in values.items()}, day)
        if low.aqi is None and low.not_computable is None:
            continue
        expected[(city_code, day)] = (low, high)
    stored = {(row[0], row[1]): row[2:] for row in conn.execute(_CITY_DAY_AQI_STORED)}
    missing_days = sorted(set(expected) - set(stored))
    extra_days = sorted(set(stored) - set(expected))
    assert not missing_days and not extra_days, (
        f"city daily AQI days differ from readings: missing {missing_days[:5]}, "
        f"extra {extra_days[:5]}"
    )
    for key, (low, high) in expected.items():
        aqi, version, primary, beyond, not_computable, missing = stored[key]
        assert version == low.version, (key, version, low.version)
        assert (not_computable is None) == (low.not_computable is None), (key, not_computable)
        if low.aqi is None or high.aqi is None:
            assert aqi is None, (key, aqi)
            continue
        assert aqi is not None and low.aqi <= aqi <= high.aqi, (key, aqi, low.aqi, high.aqi)
        judged = [(r.aqi, list(r.primary_pollutants), r.beyond_index) for r in (low, high)]
        if judged[0] == judged[1]:
            assert (aqi, primary, beyond) == judged[0], (key, aqi, primary, beyond)
        assert missing == list(low.missing), (key, missing, low.missing)


def assert_rollups_match_readings(database_url: str, settled: bool = True) -> int:
    """Every derived level equals a recomputation from `readings` (after the aggregation
    stage has reflected everything, unless ``settled`` is False); returns the hours."""
    if settled:
        settle(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        # the recomputations are costed far above their run time (generate_subscripts):
        # compiling them would take seconds each, running them takes milliseconds
        conn.execute("SET jit = off")
        # the daily and city-daily recomputations once, for every level built on them
        conn.execute(f"CREATE TEMP TABLE recomputed_daily AS {_DAILY}")
        conn.execute(f"CREATE TEMP TABLE recomputed_city_daily AS {_CITY_DAILY}")
        conn.execute("ANALYZE recomputed_daily; ANALYZE recomputed_city_daily")
        for name, recomputed, kept in (
            ("hourly", _HOURLY_FROM_READINGS, _HOURLY_STORED),
            ("station-day", _DAILY_FROM_READINGS, _DAILY_STORED),
            ("city-day", _CITY_DAILY_FROM_READINGS, _CITY_DAILY_STORED),
            ("station-year", _STATION_YEARLY_FROM_READINGS, _STATION_YEARLY_STORED),
            ("city-year", _CITY_YEARLY_FROM_READINGS, _CITY_YEARLY_STORED),
            ("latest", _LATEST_FROM_READINGS, _LATEST_STORED),
        ):
            missing = conn.execute(
                f"SELECT * FROM ({recomputed}) a EXCEPT SELECT * FROM ({kept}) b"
            ).fetchall()
            extra = conn.execute(
                f"SELECT * FROM ({kept}) a EXCEPT SELECT * FROM ({recomputed}) b"
            ).fetchall()
            assert not missing and not extra, (
                f"{name} level differs from readings: missing {missing[:5]}, extra {extra[:5]}"
            )
        _assert_city_day_aqis_match(conn)
        hourly = conn.execute("SELECT count(*) FROM readings_hourly").fetchone()
    assert hourly is not None
    return int(hourly[0])


# --- fault-injection helpers (tests/test_faults.py) ------------------------------------------


class TrackingPublisher(Publisher):
    """A Publisher that records when the broker PUBACKed each message id. Publishing goes on
    while the broker is away: paho keeps unacknowledged QoS-1 messages and sends them again
    after it reconnects (``wait_for_publish`` would raise for those, so use ``acked``)."""

    def __init__(self, port: int, client_id: str = "test-tracking-publisher") -> None:
        self._lock = threading.Lock()
        self.acked_at: dict[int, float] = {}  # mid -> time.monotonic() of its PUBACK
        super().__init__(port, client_id)
        self.client.on_publish = self._on_publish

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, reason: object, props: object
    ) -> None:
        with self._lock:
            self.acked_at[mid] = time.monotonic()

    def acked(self, mids: Iterable[int]) -> int:
        """How many of ``mids`` the broker has acknowledged."""
        with self._lock:
            return sum(1 for mid in mids if mid in self.acked_at)


def rss_mib(pid: int) -> float:
    """Resident set size of a process, in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def scrape_metrics(port: int) -> dict[str, float]:
    """A Prometheus text endpoint on 127.0.0.1 as {metric name: value summed over labels}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        name = name.split("{", 1)[0]
        values[name] = values.get(name, 0.0) + float(value)
    return values


def wait_until_stable(
    read: Callable[[], int], quiet_s: float = 2.0, timeout: float = 60.0, what: str = "value"
) -> int:
    """Poll ``read()`` until it has not changed for ``quiet_s`` seconds; returns the value."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} still changing after {timeout} s")
        time.sleep(0.2)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
    return value


_TOTALS = re.compile(
    r"totals: (?P<stored>\d+) readings stored, (?P<duplicates>\d+) duplicates, "
    r"(?P<dead_letters>\d+) dead letters"
)


def worker_totals(log_path: Path) -> list[dict[str, int]]:
    """The last totals line of each run of an ingest worker whose log is ``log_path`` (one
    entry per start; a run killed with SIGKILL reports its last 10-second totals)."""
    runs: list[dict[str, int]] = []
    for line in log_path.read_text(errors="replace").splitlines():
        if "ingest worker" in line and " started:" in line:
            runs.append({"stored": 0, "duplicates": 0, "dead_letters": 0})
        found = _TOTALS.search(line)
        if found and runs:
            runs[-1] = {k: int(v) for k, v in found.groupdict().items()}
    return runs


def record_fault_figures(figures: dict[str, Any]) -> None:
    """Print a fault test's figures and, when AIRWATER_FAULT_REPORT names a file, append
    them to it as one JSON line (RELIABILITY.md is written from those lines)."""
    line = json.dumps(figures, sort_keys=False, default=str)
    print(f"fault figures: {line}")
    target = os.environ.get("AIRWATER_FAULT_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as report:
            report.write(line + "\n")
