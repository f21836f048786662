"""Parsing of the MQTT reading payloads (DESIGN.md, "MQTT contract"): pure, no services."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.payloads import (
    ParsedPayload,
    PayloadError,
    Reason,
    Record,
    Rejection,
    parse_number,
    parse_payload,
    parse_timestamp,
)

STATION = "110000-A001"
OTHER_STATION = "110000-A002"
TS = "2026-03-01T08:00:00+08:00"
BEIJING = timezone(timedelta(hours=8))
TS_AWARE = datetime(2026, 3, 1, 8, 0, tzinfo=BEIJING)
EPOCH = 1772323200  # 2026-03-01T00:00:00Z
EPOCH_UTC = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def parse(document: object, station_id: str = STATION) -> ParsedPayload:
    return parse_payload(json.dumps(document).encode(), station_id)


def payload_error(document: object, station_id: str = STATION) -> Rejection:
    with pytest.raises(PayloadError) as caught:
        parse(document, station_id)
    return caught.value.rejection


def reasons(parsed: ParsedPayload) -> list[Reason]:
    return [rejection.reason for rejection in parsed.rejections]


# --- one reading -------------------------------------------------------------------------


def test_single_reading_becomes_one_record_with_every_value():
    parsed = parse({"ts": TS, "pm25": 35.2, "pm10": 61.0})
    assert parsed == ParsedPayload([Record(TS_AWARE, {"pm25": 35.2, "pm10": 61.0})], [])


def test_single_reading_naming_its_own_station_is_accepted():
    parsed = parse({"ts": TS, "station_id": STATION, "station": STATION, "o3": 80})
    assert parsed.records == [Record(TS_AWARE, {"o3": 80.0})]
    assert parsed.rejections == []


def test_integer_values_become_floats():
    value = parse({"ts": TS, "so2": 7}).records[0].values["so2"]
    assert value == 7.0
    assert type(value) is float


def test_numeric_text_is_read_as_a_number():
    assert parse({"ts": TS, "pm25": " 35.2 ", "co": "1e-1"}).records[0].values == {
        "pm25": 35.2,
        "co": 0.1,
    }


def test_negative_values_pass_the_parser_for_validation_to_judge():
    assert parse({"ts": TS, "water_temp": -1.5, "pm25": -3}).records[0].values == {
        "water_temp": -1.5,
        "pm25": -3.0,
    }


@pytest.mark.parametrize(
    ("key", "parameter"),
    [
        ("PM2.5", "pm25"),
        ("pm2_5", "pm25"),
        ("PM10", "pm10"),
        ("NH3-N", "nh3_n"),
        ("Dissolved_Oxygen", "do"),
        ("CODMn", "codmn"),
        ("total_phosphorus", "tp"),
        ("class", "water_class"),
    ],
)
def test_aliases_and_case_map_to_the_stored_parameter(key, parameter):
    parsed = parse({"ts": TS, key: 3})
    assert parsed.records == [Record(TS_AWARE, {parameter: 3.0})]


def test_naive_timestamp_stays_naive_for_the_station_timezone():
    parsed = parse({"ts": "2026-03-01T09:00:00", "pm25": 40})
    assert parsed.records[0].ts == datetime(2026, 3, 1, 9, 0)
    assert parsed.records[0].ts.tzinfo is None


def test_epoch_seconds_become_utc():
    parsed = parse({"ts": EPOCH, "pm25": 41})
    assert parsed.records[0].ts == EPOCH_UTC
    assert parsed.records[0].ts.utcoffset() == timedelta(0)


def test_z_suffix_is_utc():
    ts = parse({"ts": "2026-03-01T11:00:00Z", "pm25": 42.5}).records[0].ts
    assert ts == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert ts.utcoffset() == timedelta(0)


def test_offset_is_kept():
    ts = parse({"ts": TS, "pm25": 1}).records[0].ts
    assert ts.utcoffset() == timedelta(hours=8)
    assert ts == EPOCH_UTC


# --- batch -------------------------------------------------------------------------------


def test_batch_gives_one_record_per_reading():
    parsed = parse(
        {
            "readings": [
                {"ts": "2026-03-01T09:00:00", "pm25": 40},
                {"ts": EPOCH, "pm25": 41},
                {"ts": "2026-03-01T11:00:00Z", "pm25": 42.5, "pm10": 70},
            ]
        }
    )
    assert parsed == ParsedPayload(
        [
            Record(datetime(2026, 3, 1, 9, 0), {"pm25": 40.0}),
            Record(EPOCH_UTC, {"pm25": 41.0}),
            Record(datetime(2026, 3, 1, 11, 0, tzinfo=UTC), {"pm25": 42.5, "pm10": 70.0}),
        ],
        [],
    )


def test_bad_reading_in_a_batch_does_not_reject_the_good_ones():
    parsed = parse(
        {
            "readings": [
                {"ts": TS, "pm25": 30},
                {"ts": "not a time", "pm25": 31},
                {"pm25": 32},
                "pm25=33",
                {"ts": EPOCH, "pm25": "high", "pm10": 60},
                {"ts": EPOCH + 3600, "radon": 1},
            ]
        }
    )
    assert parsed.records == [
        Record(TS_AWARE, {"pm25": 30.0}),
        Record(EPOCH_UTC, {"pm10": 60.0}),
    ]
    assert reasons(parsed) == [
        Reason.TIMESTAMP_INVALID,
        Reason.TIMESTAMP_MISSING,
        Reason.INVALID_SHAPE,
        Reason.NON_NUMERIC_VALUE,
        Reason.UNKNOWN_PARAMETER,
    ]


def test_rejections_say_where_in_the_batch_the_bad_reading_is():
    parsed = parse({"readings": [{"ts": TS, "pm25": 1}, {"ts": TS, "pm25": "x"}]})
    assert parsed.rejections[0].detail.startswith("readings[1]: pm25:")


def test_batch_readings_that_are_not_an_array_reject_the_payload():
    assert payload_error({"readings": {"ts": TS, "pm25": 1}}).reason is Reason.INVALID_SHAPE


def test_empty_batch_rejects_the_payload():
    assert payload_error({"readings": []}).reason is Reason.INVALID_SHAPE


def test_batch_keys_outside_readings_are_rejected_not_dropped():
    parsed = parse({"station_id": STATION, "pm25": 5, "readings": [{"ts": TS, "pm25": 1}]})
    assert parsed.records == [Record(TS_AWARE, {"pm25": 1.0})]
    assert reasons(parsed) == [Reason.INVALID_SHAPE]
    assert "'pm25'" in parsed.rejections[0].detail


def test_reading_with_a_timestamp_but_no_values_is_rejected():
    parsed = parse({"readings": [{"ts": TS}, {"ts": TS, "pm25": 1}]})
    assert parsed.records == [Record(TS_AWARE, {"pm25": 1.0})]
    assert parsed.rejections == [Rejection(Reason.INVALID_SHAPE, "readings[0] holds no values")]


# --- water -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "stored"),
    [("III", 3.0), ("Ⅱ", 2.0), ("劣V", 6.0), ("Class IV", 4.0), (5, 5.0), ("worse than V", 6.0)],
)
def test_reported_water_class_is_stored_as_1_to_6(reported, stored):
    parsed = parse({"ts": TS, "water_class": reported}, "W-YANGTZE-01")
    assert parsed == ParsedPayload([Record(TS_AWARE, {"water_class": stored})], [])


@pytest.mark.parametrize("reported", ["VII", 0, 7, 2.5, True, None, "good", [3]], ids=repr)
def test_invalid_water_class_is_rejected(reported):
    parsed = parse({"ts": TS, "water_class": reported, "do": 6.1})
    assert parsed.records == [Record(TS_AWARE, {"do": 6.1})]
    assert reasons(parsed) == [Reason.INVALID_WATER_CLASS]


def test_water_parameters_are_parsed_as_values_without_deriving_the_class():
    parsed = parse({"ts": TS, "do": 6.1, "codmn": 3.2, "nh3_n": 0.31, "tp": 0.08, "ph": 7.4})
    assert parsed == ParsedPayload(
        [Record(TS_AWARE, {"do": 6.1, "codmn": 3.2, "nh3_n": 0.31, "tp": 0.08, "ph": 7.4})], []
    )


# --- whole-payload errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"{'ts': 1}", b"\xff\xfe", b'{"ts": NaN, "pm25": 1}', b"[1e400]", b"pm25=3"],
    ids=repr,
)
def test_malformed_json_rejects_the_payload(raw):
    with pytest.raises(PayloadError) as caught:
        parse_payload(raw, STATION)
    assert caught.value.rejection.reason is Reason.MALFORMED_JSON


def test_payload_over_the_size_limit_is_rejected_before_parsing():
    raw = json.dumps({"ts": TS, "pm25": 1}).encode()
    with pytest.raises(PayloadError) as caught:
        parse_payload(raw, STATION, max_bytes=len(raw) - 1)
    assert caught.value.rejection.reason is Reason.PAYLOAD_TOO_LARGE
    assert str(len(raw)) in caught.value.rejection.detail


def test_payload_exactly_at_the_size_limit_is_accepted():
    raw = json.dumps({"ts": TS, "pm25": 1}).encode()
    assert parse_payload(raw, STATION, max_bytes=len(raw)).records == [
        Record(TS_AWARE, {"pm25": 1.0})
    ]


def test_default_size_limit_is_256_kib():
    padding = "x" * (256 * 1024)
    with pytest.raises(PayloadError) as caught:
        parse_payload(json.dumps({"ts": TS, "note": padding}).encode(), STATION)
    assert caught.value.rejection.reason is Reason.PAYLOAD_TOO_LARGE


@pytest.mark.parametrize("document", [42, "pm25", None, True, 1.5], ids=repr)
def test_json_scalar_is_an_invalid_shape(document):
    assert payload_error(document).reason is Reason.INVALID_SHAPE


def test_only_a_timestamp_is_an_invalid_shape():
    assert parse({"ts": TS}).rejections == [
        Rejection(Reason.INVALID_SHAPE, "reading holds no values")
    ]


def test_empty_object_has_no_timestamp():
    assert reasons(parse({})) == [Reason.TIMESTAMP_MISSING]


@pytest.mark.parametrize(
    "document",
    [
        {"ts": TS, "station_id": OTHER_STATION, "pm25": 1},
        {"ts": TS, "station": OTHER_STATION, "pm25": 1},
        {"ts": TS, "station_id": 110000, "pm25": 1},
        {"station_id": OTHER_STATION, "readings": [{"ts": TS, "pm25": 1}]},
        {"readings": [{"ts": TS, "pm25": 1}, {"ts": TS, "station": OTHER_STATION, "pm25": 2}]},
    ],
    ids=["single-station_id", "single-station", "single-number", "batch", "batch-item"],
)
def test_payload_naming_another_station_is_rejected(document):
    rejection = payload_error(document)
    assert rejection.reason is Reason.STATION_MISMATCH
    assert STATION in rejection.detail


# --- reading-level rejections ------------------------------------------------------------


def test_unknown_parameter_is_rejected_and_the_known_ones_kept():
    parsed = parse({"ts": TS, "pm25": 1, "radon": 3})
    assert parsed.records == [Record(TS_AWARE, {"pm25": 1.0})]
    assert parsed.rejections == [
        Rejection(Reason.UNKNOWN_PARAMETER, "reading: unknown parameter 'radon'")
    ]


@pytest.mark.parametrize(
    "value",
    [None, "NaN", "nan", "abc", "", True, False, "Infinity", "-inf", "1e400", [1], {"v": 1}],
    ids=repr,
)
def test_non_numeric_value_is_rejected(value):
    parsed = parse({"ts": TS, "pm25": value, "pm10": 50})
    assert parsed.records == [Record(TS_AWARE, {"pm10": 50.0})]
    assert reasons(parsed) == [Reason.NON_NUMERIC_VALUE]
    assert "pm25" in parsed.rejections[0].detail


def test_missing_timestamp_is_rejected():
    parsed = parse({"pm25": 1})
    assert parsed == ParsedPayload([], [Rejection(Reason.TIMESTAMP_MISSING, 'reading has no "ts"')])


@pytest.mark.parametrize(
    "ts",
    [
        None,
        True,
        "",
        "yesterday",
        "2026-13-01T00:00:00",
        "2026-02-30T00:00:00",
        "2026-03-01T25:00:00+08:00",
        "2026-03-01T08:00:00+25:00",
        1e20,
        -1e20,
        {"iso": TS},
        [EPOCH],
    ],
    ids=repr,
)
def test_invalid_timestamp_is_rejected(ts):
    parsed = parse({"ts": ts, "pm25": 1})
    assert parsed.records == []
    assert reasons(parsed) == [Reason.TIMESTAMP_INVALID]


# --- SenML (RFC 8428) --------------------------------------------------------------------


def test_senml_pack_resolves_base_fields_and_groups_by_time():
    pack = [
        {"bn": f"urn:dev:station:{STATION}:", "bt": EPOCH, "bu": "ug/m3", "n": "pm25", "v": 35},
        {"n": "pm10", "v": 61.5},
        {"n": "co", "u": "mg/m3", "v": 1.2},
        {"n": "pm25", "v": 36, "t": 3600},
    ]
    parsed = parse(pack)
    assert parsed == ParsedPayload(
        [
            Record(EPOCH_UTC, {"pm25": 35.0, "pm10": 61.5, "co": 1.2}),
            Record(EPOCH_UTC + timedelta(hours=1), {"pm25": 36.0}),
        ],
        [],
    )
    assert parsed.records[0].ts.utcoffset() == timedelta(0)


def test_senml_base_value_is_added_to_each_value():
    pack = [
        {"bn": f"{STATION}/", "bt": EPOCH, "bv": 10, "n": "pm25", "v": 2.5},
        {"n": "no2", "v": 5},
    ]
    assert parse(pack).records == [Record(EPOCH_UTC, {"pm25": 12.5, "no2": 15.0})]


def test_senml_base_fields_may_stand_in_their_own_record():
    pack = [{"bn": f"urn:dev:{STATION}:", "bt": EPOCH, "bu": "kg/m3"}, {"n": "pm25", "v": 3.5e-8}]
    assert parse(pack).records == [Record(EPOCH_UTC, {"pm25": 35.0})]


@pytest.mark.parametrize(
    ("parameter", "unit", "value", "stored"),
    [
        ("pm25", "ug/m3", 35.2, 35.2),
        ("pm25", "µg/m3", 35.2, 35.2),
        ("pm25", "kg/m3", 3.5e-8, 35.0),
        ("pm25", "kg/m3", 3e-8, 30.0),
        ("pm10", "mg/m3", 0.061, 61.0),
        ("so2", "g/m3", 1e-5, 10.0),
        ("co", "mg/m3", 1.2, 1.2),
        ("co", "ug/m3", 1200, 1.2),
        ("co", "kg/m3", 1.2e-6, 1.2),
        ("codmn", "mg/L", 3.2, 3.2),
        ("hg", "ug/L", 0.05, 0.00005),
        ("ph", "pH", 7.4, 7.4),
        ("water_temp", "Cel", 18.5, 18.5),
        ("fecal_coliform", "1/L", 2000, 2000.0),
    ],
)
def test_senml_units_are_converted_to_the_stored_unit(parameter, unit, value, stored):
    parsed = parse([{"bn": f"{STATION}:", "bt": EPOCH, "n": parameter, "u": unit, "v": value}])
    assert parsed.rejections == []
    assert parsed.records[0].values[parameter] == pytest.approx(stored, rel=1e-12)


def test_senml_kg_per_m3_is_converted_to_exactly_35_ug_per_m3():
    parsed = parse([{"n": "pm25", "u": "kg/m3", "v": 3.5e-8, "t": EPOCH}])
    assert parsed.records[0].values == {"pm25": 35.0}


def test_senml_value_without_unit_is_taken_in_the_stored_unit():
    assert parse([{"n": "pm25", "v": 35.2, "t": EPOCH}]).records[0].values == {"pm25": 35.2}


def test_senml_record_unit_overrides_the_base_unit():
    pack = [{"bu": "kg/m3", "bt": EPOCH, "n": "pm25", "u": "ug/m3", "v": 35.2}]
    assert parse(pack).records[0].values == {"pm25": 35.2}


@pytest.mark.parametrize(
    ("parameter", "unit"),
    [("pm25", "Cel"), ("pm25", "ppm"), ("co", "%RH"), ("ph", "mg/L"), ("water_temp", "K")],
)
def test_senml_unknown_unit_is_rejected(parameter, unit):
    pack = [{"bt": EPOCH, "n": parameter, "u": unit, "v": 3}, {"n": "no2", "v": 20}]
    parsed = parse(pack)
    assert parsed.records == [Record(EPOCH_UTC, {"no2": 20.0})]
    assert reasons(parsed) == [Reason.UNKNOWN_UNIT]


def test_senml_relative_time_is_counted_from_now():
    before = datetime.now(UTC)
    parsed = parse([{"n": "pm25", "v": 1, "t": -60}, {"n": "pm10", "v": 2}])
    after = datetime.now(UTC)
    earlier, now = (record.ts for record in parsed.records)
    assert before - timedelta(seconds=61) <= earlier <= after - timedelta(seconds=59)
    assert before - timedelta(seconds=1) <= now <= after
    assert now - earlier == timedelta(seconds=60)


def test_senml_time_just_below_2_pow_28_is_relative_and_at_it_absolute():
    relative = parse([{"n": "pm25", "v": 1, "t": 2**28 - 1}]).records[0].ts
    assert relative > datetime.now(UTC) + timedelta(days=365 * 8)
    absolute = parse([{"n": "pm25", "v": 1, "t": 2**28}]).records[0].ts
    assert absolute == datetime.fromtimestamp(2**28, UTC)
    assert absolute.year == 1978


def test_senml_water_class_as_text_or_number():
    pack = [{"bt": EPOCH, "n": "water_class", "vs": "Ⅲ"}, {"n": "water_class", "v": 4, "t": 60}]
    assert parse(pack, "W-TAIHU-01").records == [
        Record(EPOCH_UTC, {"water_class": 3.0}),
        Record(EPOCH_UTC + timedelta(minutes=1), {"water_class": 4.0}),
    ]


def test_senml_invalid_water_class_is_rejected():
    parsed = parse([{"bt": EPOCH, "n": "water_class", "vs": "VII"}])
    assert reasons(parsed) == [Reason.INVALID_WATER_CLASS]


@pytest.mark.parametrize(
    "pack",
    [
        [{"bn": f"urn:dev:{OTHER_STATION}:", "bt": EPOCH, "n": "pm25", "v": 3}],
        [{"n": f"{OTHER_STATION}/pm25", "v": 3, "t": EPOCH}],
        [{"bn": f"urn:dev:{STATION}1:", "bt": EPOCH, "n": "pm25", "v": 3}],
        [{"bn": f"urn:dev:X{STATION}:", "bt": EPOCH, "n": "pm25", "v": 3}],
        [{"bn": "urn:dev:mac:0024befffe804ff1:", "bt": EPOCH, "n": "pm25", "v": 3}],
        [{"n": "pm25", "v": 3, "t": EPOCH}, {"n": f"{OTHER_STATION}:pm10", "v": 3, "t": EPOCH}],
    ],
    ids=["bn", "n", "id-with-suffix", "id-with-prefix", "device-urn", "second-record"],
)
def test_senml_name_of_another_station_rejects_the_payload(pack):
    assert payload_error(pack).reason is Reason.STATION_MISMATCH


@pytest.mark.parametrize(
    "base_name",
    [f"urn:dev:{STATION}:", f"{STATION}/", f"{STATION}:", f"urn:dev:station:{STATION}:", ""],
)
def test_senml_name_with_this_station_or_no_prefix_is_accepted(base_name):
    parsed = parse([{"bn": base_name, "bt": EPOCH, "n": "pm25", "v": 3}])
    assert parsed.records == [Record(EPOCH_UTC, {"pm25": 3.0})]


def test_senml_unknown_parameter_is_rejected():
    parsed = parse([{"bt": EPOCH, "n": "radon", "v": 3}, {"n": "PM2.5", "v": 4}])
    assert parsed.records == [Record(EPOCH_UTC, {"pm25": 4.0})]
    assert reasons(parsed) == [Reason.UNKNOWN_PARAMETER]


@pytest.mark.parametrize(
    "entry",
    [
        {"n": "pm25", "vs": "35"},
        {"n": "pm25", "vb": True},
        {"n": "pm25", "v": "abc"},
        {"n": "pm25", "v": None},
        {"n": "pm25", "v": True},
        {"n": "pm25", "v": "NaN"},
    ],
    ids=repr,
)
def test_senml_non_numeric_value_is_rejected(entry):
    parsed = parse([{**entry, "t": EPOCH}, {"n": "pm10", "v": 5, "t": EPOCH}])
    assert parsed.records == [Record(EPOCH_UTC, {"pm10": 5.0})]
    assert reasons(parsed) == [Reason.NON_NUMERIC_VALUE]


@pytest.mark.parametrize(
    "pack",
    [
        [{"bv": 1e308, "n": "pm25", "v": 1e308, "t": EPOCH}],
        [{"n": "pm25", "u": "kg/m3", "v": 1e300, "t": EPOCH}],
    ],
    ids=["bv+v", "conversion"],
)
def test_senml_value_that_overflows_is_rejected_not_stored_as_infinity(pack):
    parsed = parse(pack)
    assert parsed.records == []
    assert reasons(parsed) == [Reason.NON_NUMERIC_VALUE]


@pytest.mark.parametrize("t", ["noon", None, True, 1e20, -1e20], ids=repr)
def test_senml_invalid_time_is_rejected(t):
    parsed = parse([{"n": "pm25", "v": 3, "t": t}, {"n": "pm10", "v": 5, "t": EPOCH}])
    assert parsed.records == [Record(EPOCH_UTC, {"pm10": 5.0})]
    assert reasons(parsed) == [Reason.TIMESTAMP_INVALID]


def test_senml_base_time_overflowing_with_time_is_rejected():
    parsed = parse([{"bt": 1e308, "n": "pm25", "v": 3, "t": 1e308}])
    assert reasons(parsed) == [Reason.TIMESTAMP_INVALID]


def test_senml_invalid_base_field_is_an_invalid_shape():
    parsed = parse([{"bt": "yesterday", "n": "pm25", "v": 3}, {"bt": EPOCH, "n": "pm10", "v": 5}])
    assert parsed.records == [Record(EPOCH_UTC, {"pm10": 5.0})]
    assert reasons(parsed) == [Reason.INVALID_SHAPE]


@pytest.mark.parametrize("entry", [1, "pm25", None, [], {}, {"pm25": 3}], ids=repr)
def test_senml_entry_that_is_not_a_record_is_an_invalid_shape(entry):
    parsed = parse([entry, {"n": "pm10", "v": 5, "t": EPOCH}])
    assert parsed.records == [Record(EPOCH_UTC, {"pm10": 5.0})]
    assert reasons(parsed) == [Reason.INVALID_SHAPE]


@pytest.mark.parametrize("pack", [[], [{"bn": f"{STATION}:", "bt": EPOCH}]], ids=repr)
def test_senml_pack_without_values_rejects_the_payload(pack):
    assert payload_error(pack).reason is Reason.INVALID_SHAPE


# --- every reason the parser gives -------------------------------------------------------

REASON_EXAMPLES: list[tuple[bytes, Reason]] = [
    (b"{", Reason.MALFORMED_JSON),
    (b" " * 300_000, Reason.PAYLOAD_TOO_LARGE),
    (b"42", Reason.INVALID_SHAPE),
    (b'{"ts": 0, "station": "elsewhere", "pm25": 1}', Reason.STATION_MISMATCH),
    (b'{"ts": 0, "radon": 1}', Reason.UNKNOWN_PARAMETER),
    (b'{"ts": 0, "pm25": null}', Reason.NON_NUMERIC_VALUE),
    (b'{"ts": 0, "water_class": "VII"}', Reason.INVALID_WATER_CLASS),
    (b'{"pm25": 1}', Reason.TIMESTAMP_MISSING),
    (b'{"ts": "soon", "pm25": 1}', Reason.TIMESTAMP_INVALID),
    (b'[{"n": "pm25", "u": "ppm", "v": 1}]', Reason.UNKNOWN_UNIT),
]
# Decided by ingest.validate with the station registry and the clock, not by the parser.
VALIDATION_REASONS = {
    Reason.UNKNOWN_STATION,
    Reason.INACTIVE_STATION,
    Reason.NEGATIVE_VALUE,
    Reason.SENTINEL_VALUE,
    Reason.TIMESTAMP_FUTURE,
    Reason.OUT_OF_RANGE,
    Reason.PROCESSING_FAILED,
}
# Decided by the writer, when the database refuses a reading (tests/test_poison.py).
WRITER_REASONS = {Reason.STORAGE_REJECTED}


@pytest.mark.parametrize(("raw", "reason"), REASON_EXAMPLES, ids=lambda x: str(x)[:24])
def test_parser_gives_the_reason(raw, reason):
    try:
        parsed = parse_payload(raw, STATION)
    except PayloadError as exc:
        assert exc.rejection.reason is reason
    else:
        assert reasons(parsed) == [reason]


def test_every_reason_not_left_to_validation_is_reachable_from_the_parser():
    assert {reason for _, reason in REASON_EXAMPLES} == set(
        Reason
    ) - VALIDATION_REASONS - WRITER_REASONS


def test_payload_error_carries_the_rejection_and_its_sentence():
    error = PayloadError(Reason.MALFORMED_JSON, "not valid JSON")
    assert error.rejection == Rejection(Reason.MALFORMED_JSON, "not valid JSON")
    assert str(error) == "not valid JSON"


# --- parse_timestamp and parse_number ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (TS, TS_AWARE),
        ("2026-03-01T08:00:00", datetime(2026, 3, 1, 8, 0)),
        ("2026-03-01 08:00:00", datetime(2026, 3, 1, 8, 0)),
        ("2026-03-01T00:00:00Z", EPOCH_UTC),
        ("2026-03-01T08:00:00.250+08:00", TS_AWARE + timedelta(milliseconds=250)),
        (EPOCH, EPOCH_UTC),
        (EPOCH + 0.5, EPOCH_UTC + timedelta(milliseconds=500)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
    ],
    ids=repr,
)
def test_parse_timestamp(raw, expected):
    parsed = parse_timestamp(raw)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "raw",
    [None, True, False, "", "now", math.nan, math.inf, -math.inf, 1e20, 10**30, [EPOCH], b"x"],
    ids=repr,
)
def test_parse_timestamp_raises_value_error_for_what_is_no_timestamp(raw):
    with pytest.raises(ValueError):
        parse_timestamp(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(3, 3.0), (-2, -2.0), (35.2, 35.2), ("35.2", 35.2), (" 7 ", 7.0), ("1e-3", 0.001), (0, 0.0)],
    ids=repr,
)
def test_parse_number(raw, expected):
    value = parse_number(raw)
    assert value == expected
    assert type(value) is float


@pytest.mark.parametrize(
    "raw",
    [
        None,
        True,
        False,
        "",
        "abc",
        "nan",
        "NaN",
        "inf",
        "-Infinity",
        "1e400",
        math.nan,
        math.inf,
        10**400,
        [1],
        {"v": 1},
        b"1",
    ],
    ids=lambda raw: repr(raw)[:16],
)
def test_parse_number_raises_value_error_for_what_is_no_finite_number(raw):
    with pytest.raises(ValueError):
        parse_number(raw)


# --- properties --------------------------------------------------------------------------

PAYLOAD_KEYS = st.sampled_from(
    [
        "ts",
        "pm25",
        "PM2.5",
        "co",
        "do",
        "tp",
        "water_class",
        "readings",
        "station_id",
        "station",
        "bn",
        "bt",
        "bu",
        "bv",
        "n",
        "u",
        "v",
        "vs",
        "t",
    ]
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 1e300, 2**28, EPOCH, 3.5e-8])
    | st.text(max_size=20)
    | st.sampled_from(
        [TS, "2026-03-01T08:00:00", "III", "劣V", "³", "9" * 5000, "ug/m3", "kg/m3", "NaN"]
    )
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(PAYLOAD_KEYS | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=15,
)
READING_SHAPED = st.dictionaries(PAYLOAD_KEYS, JSON_SCALARS, max_size=5).map(
    lambda fields: {"ts": TS, **fields}
)
SENML_SHAPED = st.dictionaries(PAYLOAD_KEYS, JSON_SCALARS, min_size=1, max_size=5)
PAYLOAD_SHAPED = (
    READING_SHAPED
    | st.builds(lambda batch: {"readings": batch}, st.lists(READING_SHAPED, max_size=4))
    | st.lists(SENML_SHAPED, max_size=5)
)


PROPERTY_SETTINGS = settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _parses_or_rejects_as_a_whole(raw: bytes) -> None:
    try:
        parsed = parse_payload(raw, STATION)
    except PayloadError as exc:
        assert isinstance(exc.rejection.reason, Reason)
        return
    assert isinstance(parsed, ParsedPayload)
    assert parsed.records or parsed.rejections
    for record in parsed.records:
        assert isinstance(record.ts, datetime)
        assert record.values
        assert all(type(v) is float and math.isfinite(v) for v in record.values.values())


@PROPERTY_SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_payload_error_only(raw):
    _parses_or_rejects_as_a_whole(raw)


@PROPERTY_SETTINGS
@given(JSON_VALUES)
def test_arbitrary_json_parses_or_raises_payload_error_only(document):
    _parses_or_rejects_as_a_whole(json.dumps(document).encode())


@PROPERTY_SETTINGS
@given(PAYLOAD_SHAPED)
def test_payload_shaped_json_parses_or_raises_payload_error_only(document):
    _parses_or_rejects_as_a_whole(json.dumps(document).encode())


# --- found by the fuzzer (tests/test_fuzz.py) --------------------------------------------

NESTED_1020 = b"[" * 1020 + b"]" * 1020


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"ts": ' + NESTED_1020 + b', "pm25": 1}', Reason.TIMESTAMP_INVALID),
        (b'{"ts": 0, "water_class": ' + NESTED_1020 + b"}", Reason.INVALID_WATER_CLASS),
        (b'{"ts": 0, "pm25": ' + NESTED_1020 + b"}", Reason.NON_NUMERIC_VALUE),
        (b'[{"bn": ' + NESTED_1020 + b', "n": "pm25", "v": 1}]', Reason.INVALID_SHAPE),
        (b'[{"n": ' + NESTED_1020 + b', "v": 1}]', Reason.INVALID_SHAPE),
    ],
    ids=["ts", "water_class", "value", "senml-bn", "senml-n"],
)
def test_value_nested_1020_deep_is_rejected_not_a_recursion_error(raw, reason):
    parsed = parse_payload(raw, STATION)
    assert reasons(parsed) == [reason]
    assert len(parsed.rejections[0].detail) < 300


def test_station_nested_1020_deep_is_a_mismatch_with_a_short_sentence():
    with pytest.raises(PayloadError) as caught:
        parse_payload(b'{"station_id": ' + NESTED_1020 + b', "ts": 0, "pm25": 1}', STATION)
    assert caught.value.rejection.reason is Reason.STATION_MISMATCH
    assert len(caught.value.rejection.detail) < 300


@pytest.mark.parametrize(
    "document",
    [
        {"ts": TS, "x" * 10_000: 1},
        {"ts": "2" * 10_000, "pm25": 1},
        {"ts": TS, "station_id": "x" * 10_000, "pm25": 1},
        [{"n": "pm25", "u": "x" * 10_000, "v": 1}],
    ],
    ids=["parameter", "ts", "station", "unit"],
)
def test_10_kb_strings_are_quoted_short_in_the_sentence(document):
    try:
        details = [r.detail for r in parse(document).rejections]
    except PayloadError as exc:
        details = [exc.rejection.detail]
    assert details and all(len(detail) < 300 for detail in details)


@pytest.mark.parametrize("field", ["bn", "bu", "n", "u"])
def test_senml_name_or_unit_that_is_not_a_string_is_an_invalid_shape(field):
    parsed = parse([{"n": "pm25", "v": 3, "t": EPOCH, field: ["not", "a", "name"]}])
    assert parsed.records == []
    assert reasons(parsed) == [Reason.INVALID_SHAPE]


def test_senml_repeated_name_and_time_keeps_both_values_in_order_not_the_last_only():
    # the writer stores the first and counts the second as a duplicate, as for a batch
    pack = [{"n": "pm25", "v": 1, "t": EPOCH}, {"n": "pm25", "v": 2, "t": EPOCH}]
    assert parse(pack).records == [
        Record(EPOCH_UTC, {"pm25": 1.0}),
        Record(EPOCH_UTC, {"pm25": 2.0}),
    ]
