"""The station simulators: a deterministic national network, realistic values, payloads the
ingest accepts, live mode against a real broker and worker (faults included), and backfill
through the bulk writer."""

from __future__ import annotations

import itertools
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import psycopg
import pytest

from airwater.embedded import MosquittoServer
from core import PROJECT_ROOT
from core.settings import Settings
from ingest.validate import Outcome, StationDirectory, StationInfo, Validator
from reports import air_report, water_report
from schemas.stations import Station
from simulators import (
    AIR_PARAMETERS,
    WATER_ITEMS,
    air_values,
    batch_payload,
    build_network,
    reading_payload,
    reports_class_only,
    water_quality,
    water_values,
)
from simulators.backfill import (
    backfill,
    backfill_period,
    backfill_via_mqtt,
    expected_rows,
)
from simulators.cli import build_parser
from simulators.cli import main as cli_main
from simulators.connections import load_credentials
from simulators.geography import CITY_BY_CODE, SECTIONS
from simulators.live import Faults, LiveRunner, Sent
from simulators.network import NATIONAL_PM25_RANGE
from simulators.payloads import Malformation, malformed_payload, readings_topic
from standards.water import water_class
from storage.stations import upsert_stations
from tests.support import Publisher, count, settle, wait_for, wait_until_consuming

BEIJING = ZoneInfo("Asia/Shanghai")
NETWORK = build_network()
SMALL = {"cities": 2, "stations_per_city": 2, "sections": 2}


def _station(network: list[Station], city_code: str) -> Station:
    return next(s for s in network if s.city_code == city_code and s.kind == "air")


def _beijing_station() -> Station:
    return _station(build_network(cities=42, stations_per_city=1, sections=0), "110000")


def _hours(year: int, step: int = 1) -> list[datetime]:
    start = datetime(year, 1, 1, tzinfo=BEIJING)
    return [start + timedelta(hours=h) for h in range(0, 8760, step)]


# --- the network --------------------------------------------------------------------------
def test_network_is_deterministic_with_unique_well_formed_stations():
    assert build_network() == NETWORK
    assert build_network(seed=7) != NETWORK
    air = [s for s in NETWORK if s.kind == "air"]
    water = [s for s in NETWORK if s.kind == "surface_water"]
    assert (len(air), len(water)) == (30 * 3, 40)
    assert len({s.station_id for s in NETWORK}) == len(NETWORK)
    for station in NETWORK:
        assert Station.model_validate(station.model_dump()) == station
        assert station.reading_interval_s == 60
    for station in air:
        city = CITY_BY_CODE[station.city_code or ""]  # a real GB/T 2260 code of the table
        assert re.fullmatch(rf"{city.code}-A00[1-3]", station.station_id)
        assert (station.city, station.province) == (city.name, city.province)
        assert abs(station.latitude - city.latitude) < 0.1
    assert len({s.city_code for s in air}) == 30
    for section in water:
        assert re.fullmatch(r"W-[A-Z]+-\d{3}", section.station_id)
        known = next(s for s in SECTIONS if s.name == section.name)
        assert section.station_id.startswith(f"W-{known.waterbody_code}-")
        assert section.waterbody == ("lake" if known.waterbody_code in {
            "TAIHU", "CHAOHU", "DIANCHI"} else "river")  # fmt: skip
    assert {s.basin for s in water} >= {
        "Yangtze", "Yellow River", "Pearl River", "Huai River", "Hai River", "Songhua River",
        "Liao River", "Taihu", "Chaohu", "Dianchi",
    }  # fmt: skip
    class_only = [s for s in water if reports_class_only(s)]
    assert 0 < len(class_only) < len(water) / 2


def test_network_spans_the_country_and_grows_by_adding_stations():
    air = [s for s in NETWORK if s.kind == "air"]
    assert any(s.latitude > 40 for s in air)
    assert any(s.latitude < 26 for s in air)
    assert any(s.longitude < 105 for s in air)
    small = build_network(**SMALL)
    assert [s.station_id for s in small] == [
        "110000-A001", "110000-A002", "310000-A001", "310000-A002",
        "W-YANGTZE-001", "W-YELLOW-001",
    ]  # fmt: skip
    ids = {s.station_id for s in NETWORK}
    assert {s.station_id for s in small} <= ids
    with pytest.raises(ValueError, match="cities"):
        build_network(cities=43)


# --- values ---------------------------------------------------------------------------------
def test_air_values_are_deterministic_non_negative_and_plausible():
    station = NETWORK[0]
    ts = datetime(2025, 1, 15, 8, tzinfo=BEIJING)
    assert air_values(station, ts) == air_values(station, ts)
    assert air_values(station, ts, seed=1) != air_values(station, ts)
    for station in NETWORK[::7]:
        if station.kind != "air":
            continue
        for hour in _hours(2025, step=97):
            values = air_values(station, hour)
            assert set(values) == set(AIR_PARAMETERS)
            assert all(v >= 0 for v in values.values())
            assert values["pm25"] < 1000 and values["pm10"] < 2000
            assert values["pm10"] >= values["pm25"] * 0.8
            assert values["co"] < 15 and values["so2"] < 300
            assert values["no2"] < 400 and values["o3"] < 500


def test_air_values_have_a_diurnal_cycle_in_local_time():
    station = _beijing_station()
    by_hour: dict[int, list[dict[str, float]]] = {h: [] for h in range(24)}
    for ts in _hours(2025, step=5):  # 5 and 24 are coprime: every hour of the day is sampled
        by_hour[ts.hour].append(air_values(station, ts))

    def mean(parameter: str, hour: int) -> float:
        return statistics.fmean(v[parameter] for v in by_hour[hour])

    assert mean("pm25", 22) > 1.2 * mean("pm25", 15)  # night peak, afternoon mixing
    assert mean("pm25", 8) > mean("pm25", 15)  # morning rush hour
    assert mean("no2", 8) > 1.2 * mean("no2", 14) and mean("no2", 20) > 1.2 * mean("no2", 14)
    assert mean("o3", 15) > 3 * mean("o3", 5)  # afternoon photochemistry


def test_air_values_have_a_seasonal_cycle_and_northern_cities_are_dirtier():
    station = _beijing_station()

    def monthly(parameter: str, month: int) -> float:
        start = datetime(2025, month, 1, tzinfo=BEIJING)
        return statistics.fmean(
            air_values(station, start + timedelta(hours=h))[parameter] for h in range(0, 720, 5)
        )

    assert monthly("pm25", 1) > 1.8 * monthly("pm25", 7)  # heating season, inversions
    assert monthly("o3", 6) > 1.6 * monthly("o3", 12)  # summer ozone
    everywhere = build_network(cities=42, stations_per_city=1, sections=0)

    def annual(city_code: str) -> float:
        city = _station(everywhere, city_code)
        return statistics.fmean(air_values(city, ts)["pm25"] for ts in _hours(2025, step=7))

    assert annual("130100") > 2.5 * annual("460100")  # Shijiazhuang, Haikou
    assert annual("110000") > annual("440100")  # Beijing, Guangzhou


def test_default_network_national_pm25_is_in_the_configured_range():
    cities: dict[str, list[float]] = {}
    for station in NETWORK:
        if station.kind == "air":
            samples = [air_values(station, ts)["pm25"] for ts in _hours(2025, step=23)]
            cities.setdefault(station.city_code or "", []).append(statistics.fmean(samples))
    national = statistics.fmean(statistics.fmean(v) for v in cities.values())
    low, high = NATIONAL_PM25_RANGE
    assert low <= national <= high


def test_pollution_episodes_are_multi_day_and_set_by_the_seed():
    station = _beijing_station()

    def episode_days(seed: int) -> list[date]:
        days = []
        start = datetime(2025, 11, 1, tzinfo=BEIJING)
        for d in range(120):  # November to February
            day = start + timedelta(days=d)
            hours = [air_values(station, day + timedelta(hours=h), seed)["pm25"] for h in range(24)]
            if statistics.fmean(hours) > 75:  # over the Grade II 24-hour limit
                days.append(day.date())
        return days

    days = episode_days(2026)
    runs = sum(1 for a, b in itertools.pairwise(days) if b - a == timedelta(days=1))
    assert len(days) >= 5 and runs >= 2  # several days, some of them consecutive
    assert episode_days(99) != days


def test_water_values_are_classes_two_to_four_with_summer_low_oxygen():
    sections = [s for s in NETWORK if s.kind == "surface_water"]
    classes = Counter()
    for section in sections:
        body = "lake" if section.waterbody == "lake" else "river"
        means = {
            item: statistics.fmean(
                water_quality(section, datetime(2025, m, 10, 10, tzinfo=BEIJING))[item]
                for m in range(1, 13)
            )
            for item in WATER_ITEMS
        }
        assert all(v >= 0 for v in means.values()) and 6.5 <= means["ph"] <= 8.9
        derived = water_class(means, body)
        assert derived is not None
        classes[derived.water_class] += 1
        reported = water_values(section, datetime(2025, 5, 10, tzinfo=BEIJING))
        if reports_class_only(section):
            assert list(reported) == ["water_class"] and 1 <= reported["water_class"] <= 6
        else:
            assert set(reported) == set(WATER_ITEMS)
    assert classes[2] + classes[3] + classes[4] >= 0.85 * len(sections)
    assert 0.75 <= (classes[1] + classes[2] + classes[3]) / len(sections) <= 0.95

    def oxygen(month: int) -> float:
        ts = datetime(2025, month, 15, 10, tzinfo=BEIJING)
        return statistics.fmean(water_quality(s, ts)["do"] for s in sections)

    assert oxygen(1) > oxygen(7) + 0.5


# --- payloads ---------------------------------------------------------------------------------
def _validator(stations: list[Station]) -> Validator:
    infos = {
        s.station_id: StationInfo(s.station_id, ZoneInfo(s.timezone), s.kind, s.waterbody, True)
        for s in stations
    }
    return Validator(StationDirectory(lambda: infos))


def test_every_payload_a_station_publishes_passes_the_validator():
    validator = _validator(NETWORK)
    received = datetime.now(UTC)
    outcome = Outcome()
    expected = 0
    for station in NETWORK:
        for ts in (received, received - timedelta(days=200, hours=5)):
            validator.add_message(
                outcome, readings_topic(station.station_id), reading_payload(station, ts), received
            )
            if station.kind == "air":
                expected += len(AIR_PARAMETERS)
            else:  # items and the derived class, or the class alone
                expected += 1 if reports_class_only(station) else len(WATER_ITEMS) + 1
        day = [received - timedelta(days=3, hours=h) for h in range(24)]
        validator.add_message(
            outcome, readings_topic(station.station_id), batch_payload(station, day), received
        )
        expected += 24 * (len(AIR_PARAMETERS) if station.kind == "air" else 0)
        if station.kind != "air":
            expected += 24 * (1 if reports_class_only(station) else len(WATER_ITEMS) + 1)
    assert outcome.dead_letters == []
    assert len(outcome.readings) == expected


@pytest.mark.parametrize("kind", list(Malformation))
def test_each_malformed_payload_is_one_dead_letter_with_its_reason(kind):
    validator = _validator(NETWORK)
    for station in (NETWORK[0], NETWORK[-1]):
        outcome = Outcome()
        now = datetime.now(UTC)
        payload = malformed_payload(station, now, kind)
        validator.add_message(outcome, readings_topic(station.station_id), payload, now)
        assert outcome.readings == []
        assert [d.reason for d in outcome.dead_letters] == [kind.value]


def test_command_line_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("network", "register", "run", "backfill"):
        assert command in out
    with pytest.raises(SystemExit):
        cli_main(["run", "--help"])
    out = capsys.readouterr().out
    for flag in ("--malformed", "--duplicates", "--late", "--silent", "--skewed", "--interval"):
        assert flag in out


def test_credentials_files_map_station_ids_to_passwords(tmp_path):
    as_json = tmp_path / "c.json"
    as_json.write_text('{"110000-A001": "s1", "W-YANGTZE-001": "s2"}')
    as_csv = tmp_path / "c.csv"
    as_csv.write_text("station_id,password\n110000-A001,s1\nW-YANGTZE-001,s2\n")
    assert (
        load_credentials(as_json)
        == load_credentials(as_csv)
        == {
            "110000-A001": "s1",
            "W-YANGTZE-001": "s2",
        }
    )


# --- against the database and the broker -----------------------------------------------------
@pytest.fixture()
def small_network(database_url: str) -> list[Station]:
    """The small network (2 cities × 2 stations + 2 sections) registered, publishing every
    second; the conftest stations stay (the probe station is among them)."""
    stations = build_network(**SMALL, reading_interval_s=1)
    with psycopg.connect(database_url) as conn:
        upsert_stations(conn, stations)
    return stations


def _only(database_url: str, stations: list[Station]) -> None:
    """Leave only ``stations`` registered, so reports show nothing else."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "DELETE FROM stations WHERE station_id <> ALL(%s)", ([s.station_id for s in stations],)
        )
        upsert_stations(conn, stations)


def _run_in_thread(runner: LiveRunner) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    assert runner.ready.wait(30)
    return stop, thread


def _start_worker(make_worker, database_url: str, broker: MosquittoServer) -> None:
    make_worker().start()
    probe = Publisher(broker.port, client_id="simulator-test-probe")
    try:
        wait_until_consuming(database_url, probe)
    finally:
        probe.close()


def test_live_mode_stores_readings_from_every_station(
    small_network, database_url, make_worker, broker
):
    _start_worker(make_worker, database_url, broker)
    runner = LiveRunner(Settings(mqtt_url=broker.url), small_network, interval_s=1)
    stop, thread = _run_in_thread(runner)
    ids = [s.station_id for s in small_network]
    try:
        wait_for(
            lambda: (
                count(
                    database_url,
                    "SELECT count(DISTINCT station_id) FROM readings WHERE station_id = ANY(%s)",
                    (ids,),
                )
                == len(ids)
            ),
            timeout=20,
            what="readings from every station",
        )
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    parameters = count(
        database_url,
        "SELECT count(DISTINCT parameter) FROM readings WHERE station_id = ANY(%s)",
        (ids,),
    )
    assert parameters == len(AIR_PARAMETERS) + len(WATER_ITEMS) + 1  # + the derived class


def test_silent_station_leaves_a_retained_offline_status_by_last_will(broker):
    stations = build_network(cities=1, stations_per_city=3, sections=0, reading_interval_s=1)
    journal: list[Sent] = []
    runner = LiveRunner(
        Settings(mqtt_url=broker.url),
        stations,
        interval_s=0.5,
        faults=Faults(silent=1, silent_after_s=1.0),
        journal=journal,
    )
    stop, thread = _run_in_thread(runner)
    try:
        wait_for(lambda: runner.stats.silenced, timeout=10, what="a station to go silent")
        (silent,) = runner.silent_ids
        statuses = wait_for(
            lambda: (s := _retained_statuses(broker.port)).get(silent) == b"offline" and s,
            timeout=10,
            what="the last will",
        )
        others = [s.station_id for s in stations if s.station_id != silent]
        assert all(statuses[station_id] == b"online" for station_id in others)
        before = Counter(sent.station_id for sent in journal)
        time.sleep(1.5)
        after = Counter(sent.station_id for sent in journal)
        assert after[silent] == before[silent]  # it stopped publishing
        assert all(after[station_id] > before[station_id] for station_id in others)
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    # a clean stop announces offline for the others (no last will needed)
    assert set(_retained_statuses(broker.port).values()) == {b"offline"}


def _retained_statuses(port: int) -> dict[str, bytes]:
    """Retained stations/+/status messages as a fresh subscriber sees them."""
    seen: dict[str, bytes] = {}
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
    )
    client.on_message = lambda c, u, m: seen.__setitem__(m.topic.split("/")[1], bytes(m.payload))
    client.connect("127.0.0.1", port)
    client.subscribe("stations/+/status", qos=1)
    client.loop_start()
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()
    return seen


def test_faults_end_as_dead_letters_duplicates_and_late_readings(
    small_network, database_url, make_worker, broker
):
    _start_worker(make_worker, database_url, broker)
    journal: list[Sent] = []
    faults = Faults(malformed=0.5, duplicates=0.5, late=0.5, skewed=1, skew_minutes=30)
    runner = LiveRunner(
        Settings(mqtt_url=broker.url), small_network, interval_s=1, faults=faults, journal=journal
    )
    stop, thread = _run_in_thread(runner)
    time.sleep(4)
    stop.set()
    thread.join(15)
    sent = runner.stats.sent
    assert all(sent[kind] > 0 for kind in ("reading", "skewed", "duplicate", "late", "malformed"))
    # What the contract says each message becomes: the same validation, offline.
    expected = Outcome()
    validator = _validator(small_network)
    for message in journal:
        validator.add_message(expected, message.topic, message.payload, datetime.now(UTC))
    stored_keys = {(r[0], r[1], r[2]) for r in expected.readings}
    reasons = Counter(d.reason for d in expected.dead_letters)
    assert sum(reasons[kind.value] for kind in Malformation) == sent["malformed"]
    assert reasons["timestamp_future"] >= sent["skewed"]  # 30 min ahead: all refused
    ids = [s.station_id for s in small_network]

    def stored() -> tuple[int, dict[str, int]]:
        with psycopg.connect(database_url) as conn:
            readings = conn.execute(
                "SELECT count(*) FROM readings WHERE station_id = ANY(%s)", (ids,)
            ).fetchone()
            dead: dict[str, int] = dict(
                conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY 1").fetchall()
            )
        assert readings is not None
        return readings[0], dead

    wait_for(
        lambda: stored() == (len(stored_keys), dict(reasons)),
        timeout=20,
        what=f"{len(stored_keys)} readings and dead letters {dict(reasons)}",
    )
    # duplicates changed nothing; late readings sit in their old hours
    assert len(expected.readings) > len(stored_keys)
    late_hours = count(
        database_url,
        "SELECT count(*) FROM readings WHERE station_id = ANY(%s)"
        " AND ts < now() - interval '50 min'",
        (ids,),
    )
    assert late_hours >= sent["late"]


def test_stations_connect_with_their_own_credentials(tmp_path):
    passwords = tmp_path / "mosquitto" / "passwd"
    passwords.parent.mkdir()
    stations = build_network(cities=1, stations_per_city=2, sections=0, reading_interval_s=1)
    good, refused = (s.station_id for s in stations)
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), good, "s3cret"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), refused, "other"], check=True)
    broker = MosquittoServer(
        tmp_path / "mosquitto", extra_config=f"allow_anonymous false\npassword_file {passwords}\n"
    )
    broker.start()
    try:
        runner = LiveRunner(
            Settings(mqtt_url=broker.url),
            stations,
            interval_s=1,
            credentials={good: "s3cret", refused: "wrong"},
        )
        stop, thread = _run_in_thread(runner)
        try:
            wait_for(lambda: runner.stats.sent["reading"] >= 2, timeout=10, what="publishes")
            links = runner.connections.links
            assert links[good].connected and not links[refused].connected
            assert "authori" in (links[refused].refusal or "").lower()
        finally:
            stop.set()
            thread.join(15)
    finally:
        broker.stop()


# --- backfill ---------------------------------------------------------------------------------
def _simulators(database_url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRWATER_")}
    env["AIRWATER_DATABASE_URL"] = database_url
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-m", "simulators", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_backfill_of_a_month_is_idempotent_and_resumable(database_url):
    network = ("--cities", "2", "--stations-per-city", "2", "--sections", "2")
    period = ("--year", "2025", "--to", "2025-02-01")
    stations = build_network(**SMALL)
    expected = expected_rows(stations, *backfill_period(2025, to=date(2025, 2, 1)))
    # 4 stations × 744 hours × 6, less ~2 % gaps; water weekly items, monthly classes
    assert 0.95 * 4 * 744 * 6 < expected < 4 * 744 * 6 + 100
    first = _simulators(database_url, "backfill", *network, *period)
    assert f"stored {expected:,} new readings, 0 duplicates" in first
    readings = "SELECT count(*) FROM readings"
    assert count(database_url, readings) == expected
    second = _simulators(database_url, "backfill", *network, *period)
    assert "stored 0 new readings" in second and f"({expected:,} readings) already stored" in second
    again = _simulators(database_url, "backfill", *network, *period, "--restart")
    assert f"stored 0 new readings, {expected:,} duplicates" in again
    assert count(database_url, readings) == expected
    # every hour that has its reading is a valid hour (an hourly value covers the hour),
    # although the stations are registered as publishing every minute live
    assert count(database_url, "SELECT count(*) FROM readings_hourly WHERE NOT valid") == 0
    intervals = "SELECT min(reading_interval_s) FROM stations WHERE station_id LIKE %s"
    assert count(database_url, intervals, ("%-A%",)) == 60


def test_backfill_to_now_ends_at_the_start_of_the_current_hour():
    now = datetime(2026, 12, 5, 23, 42, 14, tzinfo=UTC)
    start, end = backfill_period(start=date(2025, 1, 1), to="now", now=now)
    assert start == datetime(2025, 1, 1, tzinfo=BEIJING)
    assert end == datetime(2026, 12, 5, 23, tzinfo=UTC)  # live readings carry on from there
    # a day goes on ending the period there, capped at the current hour
    assert backfill_period(2025, to=date(2025, 2, 1), now=now)[1] == datetime(
        2025, 2, 1, tzinfo=BEIJING
    )
    assert backfill_period(2026, to=date(2027, 1, 1), now=now)[1] == end
    args = build_parser().parse_args(["backfill", "--from", "2025-01-01", "--to", "now"])
    assert args.to == "now"


def test_backfill_command_to_now_stores_every_hour_up_to_the_current_one(database_url):
    network = ("--cities", "1", "--stations-per-city", "1", "--sections", "1")
    since = (datetime.now(BEIJING) - timedelta(days=2)).date().isoformat()
    output = _simulators(database_url, "backfill", *network, "--from", since, "--to", "now")
    period = re.search(r"backfill (\S+ \S+) to (\S+ \S+) \(Beijing time\)", output)
    assert period, output
    start, end = (
        datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=BEIJING)
        for text in period.groups()
    )
    assert start == datetime.fromisoformat(since).replace(tzinfo=BEIJING)
    assert timedelta(0) <= datetime.now(UTC) - end < timedelta(hours=1)
    expected = expected_rows(build_network(cities=1, stations_per_city=1, sections=1), start, end)
    assert f"stored {expected:,} new readings, 0 duplicates" in output
    newest = "SELECT count(*) FROM readings WHERE ts >= %s"
    assert count(database_url, newest, (end,)) == 0


def test_backfill_command_refuses_a_to_that_is_neither_a_day_nor_now(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["backfill", "--from", "2025-01-01", "--to", "tomorrow"])
    assert exit_info.value.code == 2
    assert "'tomorrow': a day (YYYY-MM-DD) or now" in capsys.readouterr().err


def test_backfilled_year_gives_valid_station_years_and_a_national_mean_in_range(database_url):
    stations = build_network(cities=2, stations_per_city=1, sections=2)
    _only(database_url, stations)
    with psycopg.connect(database_url) as conn:
        result = backfill(conn, stations, *backfill_period(2025))
    assert result.inserted == result.planned > 2 * 8760 * 6 * 0.95
    # the backfill stores and queues (committed as the connection closes, as in `simulators
    # backfill`); the station-days and the yearly levels are the aggregation stage's
    assert settle(database_url) > 0
    with psycopg.connect(database_url) as conn:
        air = air_report(conn, 2025)
        water = water_report(conn, 2025)
    assert [s.id for s in air.stations] == ["110000-A001", "310000-A001"]
    for station in air.stations:
        assert station.coverage.valid, station.coverage.reasons
        assert station.valid_days >= 324
    low, high = NATIONAL_PM25_RANGE
    assert air.national.coverage.valid and low <= air.national.annual_mean <= high
    assert air.national.cities == 2
    assert [s.method for s in water.sections] == ["parameters", "parameters"]
    assert all(s.months_with_data == 12 and s.water_class in (2, 3, 4) for s in water.sections)


def test_backfill_through_the_broker_stores_a_day_per_message(database_url, make_worker, broker):
    stations = build_network(cities=1, stations_per_city=1, sections=1, reading_interval_s=3600)
    _only(database_url, [*stations, Station(station_id="PROBE-0", name="probe")])
    _start_worker(make_worker, database_url, broker)
    start, end = backfill_period(2025, to=date(2025, 1, 8))
    result = backfill_via_mqtt(Settings(mqtt_url=broker.url), stations, start, end)
    expected = expected_rows(stations, start, end)
    assert result.published == expected and result.batches == 7
    wait_for(
        lambda: count(database_url, "SELECT count(*) FROM readings") == expected,
        timeout=20,
        what=f"{expected} readings",
    )
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    settle(database_url)  # the worker queued the station-days for the aggregation stage
    assert count(database_url, "SELECT count(*) FROM readings_daily WHERE valid") >= 7 * 6


def test_station_sends_its_recent_readings_again_after_the_broker_restarts(broker):
    """A restarted broker may have acknowledged readings it never delivered; a station sends
    the last RESEND_WINDOW_S seconds again once it is back (ingest stores each once)."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from simulators.connections import StationConnections

    (station,) = build_network(cities=1, stations_per_city=1, sections=0)
    sid = station.station_id
    seen: list[bytes] = []
    listener = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id="resend-listener",
        protocol=mqtt.MQTTv5,
    )
    listener.on_message = lambda c, u, m: seen.append(bytes(m.payload))
    listener.on_connect = lambda c, u, f, r, p: c.subscribe(f"stations/{sid}/readings", qos=1)
    expiry = Properties(PacketTypes.CONNECT)
    expiry.SessionExpiryInterval = 300
    listener.connect("127.0.0.1", broker.port, clean_start=False, properties=expiry)
    listener.loop_start()
    connections = StationConnections(Settings(mqtt_url=broker.url), [station])
    try:
        wait_for(listener.is_connected, timeout=10, what="the listener")
        time.sleep(0.3)
        assert connections.open(10) == 1
        infos = [
            connections.publish(sid, f"stations/{sid}/readings", f"r{i}".encode()) for i in range(3)
        ]
        assert connections.wait_published([i for i in infos if i is not None], 10)
        wait_for(lambda: len(seen) == 3, timeout=10, what="the first copies")
        broker.restart()

        def resent() -> bool:
            connections.poll(0.05)
            # QoS 1 is at least once: a copy more is allowed, one fewer is the failure
            return set(seen) == {b"r0", b"r1", b"r2"} and min(Counter(seen).values()) >= 2

        wait_for(resent, timeout=60, interval=0.0, what="the readings sent again")
    finally:
        connections.close()
        listener.disconnect()
        listener.loop_stop()
