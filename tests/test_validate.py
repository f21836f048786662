"""Validation of one message against the station registry (no services needed)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest.validate import (
    MAX_DEAD_LETTERS_PER_MESSAGE,
    Outcome,
    StationDirectory,
    StationInfo,
    Validator,
)

RECEIVED = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
STATIONS = {
    "110000-A001": StationInfo("110000-A001", ZoneInfo("Asia/Shanghai"), "air", None, True),
    "W-RIVER": StationInfo("W-RIVER", ZoneInfo("Asia/Shanghai"), "surface_water", "river", True),
    "W-LAKE": StationInfo("W-LAKE", ZoneInfo("Asia/Shanghai"), "surface_water", "lake", True),
}


def validate(station_id: str, payload: object, **options: object) -> Outcome:
    loads: list[int] = []

    def load() -> dict[str, StationInfo]:
        loads.append(1)
        return dict(STATIONS)

    validator = Validator(StationDirectory(load), **options)  # type: ignore[arg-type]
    outcome = Outcome()
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    validator.add_message(outcome, f"stations/{station_id}/readings", body, RECEIVED)
    return outcome


def reasons(outcome: Outcome) -> list[str]:
    return [d.reason for d in outcome.dead_letters]


def test_reading_exactly_at_the_future_limit_is_kept_one_second_later_is_not():
    limit = RECEIVED + timedelta(minutes=10)
    at_limit = validate("110000-A001", {"ts": limit.isoformat(), "pm25": 1})
    beyond = validate("110000-A001", {"ts": (limit + timedelta(seconds=1)).isoformat(), "pm25": 1})
    assert len(at_limit.readings) == 1 and not at_limit.dead_letters
    assert beyond.readings == [] and reasons(beyond) == ["timestamp_future"]


def test_future_limit_is_a_setting():
    ts = (RECEIVED + timedelta(hours=1)).isoformat()
    assert validate("110000-A001", {"ts": ts, "pm25": 1}, max_future=timedelta(hours=2)).readings


def test_naive_timestamp_is_local_time_of_the_station():
    outcome = validate("110000-A001", {"ts": "2026-03-01T08:00:00", "pm25": 12.5})
    assert outcome.readings == [
        ("110000-A001", "pm25", datetime(2026, 3, 1, 0, 0, tzinfo=UTC), 12.5, RECEIVED)
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [(-999, "sentinel_value"), (-9999, "sentinel_value"), (-0.1, "negative_value")],
)
def test_no_data_markers_and_negative_concentrations_are_rejected(value, reason):
    outcome = validate(
        "110000-A001", {"ts": "2026-03-01T08:00:00+08:00", "pm25": value, "pm10": 40}
    )
    assert reasons(outcome) == [reason]
    assert [r[1] for r in outcome.readings] == ["pm10"]


def test_zero_is_a_valid_concentration_and_water_temperature_may_be_negative():
    outcome = validate(
        "W-RIVER", {"ts": "2026-01-10T08:00:00+08:00", "nh3_n": 0, "water_temp": -0.5}
    )
    assert not outcome.dead_letters
    assert {r[1]: r[3] for r in outcome.readings} == {
        "nh3_n": 0.0,
        "water_temp": -0.5,
        "water_class": 1.0,
    }


def test_total_phosphorus_class_depends_on_the_waterbody():
    payload = {"ts": "2026-03-01T08:00:00+08:00", "tp": 0.05}
    river = {r[1]: r[3] for r in validate("W-RIVER", payload).readings}
    lake = {r[1]: r[3] for r in validate("W-LAKE", payload).readings}
    assert river["water_class"] == 2.0  # rivers: 0.05 <= 0.1 -> Class II
    assert lake["water_class"] == 3.0  # lakes: 0.025 < 0.05 <= 0.05 -> Class III


def test_reported_class_is_kept_rather_than_derived():
    outcome = validate(
        "W-RIVER", {"ts": "2026-03-01T08:00:00+08:00", "nh3_n": 1.8, "water_class": "II"}
    )
    assert {r[1]: r[3] for r in outcome.readings}["water_class"] == 2.0


def test_air_station_gets_no_water_class():
    outcome = validate("110000-A001", {"ts": "2026-03-01T08:00:00+08:00", "pm25": 1})
    assert [r[1] for r in outcome.readings] == ["pm25"]


def test_unknown_station_is_dead_lettered_unless_auto_registration_is_on():
    payload = {"ts": "2026-03-01T08:00:00+08:00", "pm25": 10}
    assert reasons(validate("440100-A009", payload)) == ["unknown_station"]
    outcome = validate("440100-A009", payload, auto_register=True)
    assert outcome.new_stations == [("440100-A009", "auto-registered 440100-A009", "air")]
    assert len(outcome.readings) == 1


def test_topic_with_an_invalid_station_id_is_rejected():
    outcome = validate("bad id;drop", {"ts": "2026-03-01T08:00:00+08:00", "pm25": 10})
    assert reasons(outcome) == ["invalid_shape"]
    assert outcome.dead_letters[0].station_id is None


def test_oversized_payload_is_rejected_before_parsing():
    big = json.dumps({"ts": "2026-03-01T08:00:00+08:00", "pm25": 1, "padding": "x" * 2048}).encode()
    outcome = validate("110000-A001", big, max_payload_bytes=1024)
    assert reasons(outcome) == ["payload_too_large"]


def test_directory_reloads_at_most_once_per_interval_for_unknown_ids():
    calls = []

    def load() -> dict[str, StationInfo]:
        calls.append(1)
        return dict(STATIONS)

    directory = StationDirectory(load, min_reload_s=60)
    assert directory.get("nope") is None
    assert directory.get("nope-2") is None
    assert directory.get("110000-A001") is not None
    assert len(calls) == 1


def test_directory_with_a_max_age_sees_a_deactivated_station(monkeypatch):
    registry = dict(STATIONS)
    directory = StationDirectory(lambda: dict(registry), max_age_s=30)
    clock = [1000.0]
    monkeypatch.setattr("ingest.validate.time.monotonic", lambda: clock[0])
    assert directory.get("110000-A001").active
    registry["110000-A001"] = StationInfo(
        "110000-A001", ZoneInfo("Asia/Shanghai"), "air", None, False
    )
    clock[0] += 29
    assert directory.get("110000-A001").active  # cached
    clock[0] += 2
    assert not directory.get("110000-A001").active  # older than 30 s: reloaded


# --- found by the fuzzer (tests/test_fuzz.py) --------------------------------------------


def test_batch_of_80000_empty_readings_writes_a_bounded_number_of_dead_letters():
    payload = b'{"readings": [' + b"{}," * 80_000 + b"{}]}"
    outcome = validate("110000-A001", payload)
    assert len(outcome.dead_letters) == MAX_DEAD_LETTERS_PER_MESSAGE
    assert set(reasons(outcome)) == {"timestamp_missing"}
    last = outcome.dead_letters[-1].detail
    assert last == "79902 further rejections of this payload (timestamp_missing 79902)"


def test_topic_postgresql_cannot_store_is_quoted_in_the_dead_letter():
    outcome = Outcome()
    validator = Validator(StationDirectory(lambda: dict(STATIONS)))
    validator.add_message(outcome, "stations/a\x00b/readings", b"{}", RECEIVED)
    (dead,) = outcome.dead_letters
    assert dead.reason == "invalid_shape"
    assert dead.topic == "'stations/a\\x00b/readings'"
    assert "\x00" not in dead.detail


@pytest.mark.parametrize(
    ("station_id", "parameter", "limit"),
    [
        ("110000-A001", "pm25", 10_000.0),
        ("110000-A001", "pm10", 20_000.0),
        ("110000-A001", "so2", 57_000.0),
        ("110000-A001", "no2", 20_500.0),
        ("110000-A001", "co", 1_250.0),
        ("110000-A001", "o3", 21_400.0),
        ("W-RIVER", "ph", 14.0),
        ("W-RIVER", "do", 50.0),
        ("W-RIVER", "water_temp", 60.0),
        ("W-RIVER", "fecal_coliform", 1e11),
    ],
)
def test_value_at_the_plausible_limit_is_kept_one_step_beyond_is_out_of_range(
    station_id, parameter, limit
):
    ts = "2026-03-01T08:00:00+08:00"
    at_limit = validate(station_id, {"ts": ts, parameter: limit})
    beyond = validate(station_id, {"ts": ts, parameter: math.nextafter(limit, math.inf)})
    assert (parameter, limit) in [(r[1], r[3]) for r in at_limit.readings]
    assert not at_limit.dead_letters
    assert reasons(beyond) == ["out_of_range"]
    assert parameter not in [r[1] for r in beyond.readings]
    detail = beyond.dead_letters[0].detail
    assert "outside the plausible range" in detail and f"..{limit:g} " in detail


def test_sand_dust_pm10_near_ten_thousand_is_stored():
    outcome = validate("110000-A001", {"ts": "2021-03-15T08:00:00+08:00", "pm10": 9985})
    assert [r[3] for r in outcome.readings] == [9985.0] and not outcome.dead_letters


def test_water_temperature_below_its_range_and_huge_values_are_out_of_range():
    ts = "2026-03-01T08:00:00+08:00"
    assert not validate("W-RIVER", {"ts": ts, "water_temp": -5}).dead_letters
    assert reasons(validate("W-RIVER", {"ts": ts, "water_temp": -5.1})) == ["out_of_range"]
    odd = {"ts": ts, "pm25": 1e308, "pm10": 5e-324, "so2": -0.0, "no2": 1e-9, "co": 9e-10}
    outcome = validate("110000-A001", odd)
    assert reasons(outcome) == ["out_of_range", "out_of_range", "out_of_range"]
    assert sorted((r[1], r[3]) for r in outcome.readings) == [("no2", 1e-9), ("so2", 0.0)]
    details = [d.detail for d in outcome.dead_letters]
    assert "is outside the plausible range 0..10000 ug/m3" in details[0]
    assert (
        "pm10 = 4.94066e-324 at 2026-03-01T08:00:00+08:00 is below any instrument's "
        in (details[1])
    )


def test_a_bug_of_the_validator_dead_letters_the_message_only(monkeypatch):
    def broken(*args: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr("ingest.rules.water_class", broken)
    outcome = validate("W-RIVER", {"ts": "2026-03-01T08:00:00+08:00", "do": 6.0})
    assert outcome.readings == [] and reasons(outcome) == ["processing_failed"]
    assert outcome.dead_letters[0].detail == "validation failed: KeyError: \"'a bug'\""
