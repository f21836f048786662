"""HJ 212-2017 framing, data segment and replies (standards/hj212.py): pure, no services."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from standards import hj212
from standards.hj212 import (
    FrameReader,
    PollutantValue,
    SegmentError,
    crc16,
    data_response,
    encode_frame,
    needs_response,
    parse_segment,
    request_response,
)
from standards.parameters import CATALOGUE

# HJ 212-2017's own framing example, as quoted in https://whycan.com/viewtopic.php?id=3594
STANDARD_SEGMENT = (
    "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;"
    "Flag=5;CP=&&RtdInterval=30&&"
)
STANDARD_FRAME = b"##0101" + STANDARD_SEGMENT.encode() + b"1C80\r\n"
# A real station's water upload with its CRC 6E80,
# https://forum.wareexpress.com/forum.php?goto=lastpost&mod=redirect&tid=6952
STATION_SEGMENT = (
    "QN=20210320163101890;ST=32;CN=2011;PW=123456;MN=81733553213013;Flag=4;"
    "CP=&&DataTime=20210320013400;w00000-Rtd=181.682,w00000-Flag=N;"
    "w21001-SampleTime=20210320005400,w21001-Rtd=45.160,w21001-Flag=N;"
    "w21011-SampleTime=20210320013400,w21011-Rtd=1.970,w21011-Flag=N;"
    "w21003-SampleTime=20210320013400,w21003-Rtd=53.131,w21003-Flag=N;"
    "w01018-SampleTime=20210320013400,w01018-Rtd=194.200,w01018-Flag=N;"
    "w01001-SampleTime=20210320013406,w01001-Rtd=7.496,w01001-Flag=N&&"
)
AIR_HOURLY = (
    "QN=20260301090000123;ST=22;CN=2061;PW=123456;MN=110000A001;Flag=5;"
    "CP=&&DataTime=20260301080000;"
    "a34004-Min=30.1,a34004-Avg=35.2,a34004-Max=41.0,a34004-Flag=N;"
    "a34002-Avg=61.0,a34002-Flag=N;a21026-Avg=8,a21026-Flag=N;a21004-Avg=42,a21004-Flag=N;"
    "a21005-Avg=0.8,a21005-Flag=N;a05024-Avg=--,a05024-Flag=D&&"
)
WATER_HOURLY = (
    "QN=20260301120000001;ST=21;CN=2061;PW=123456;MN=W320100001;Flag=4;"
    "CP=&&DataTime=20260301110000;w01001-Avg=7.62,w01001-Flag=N;w01009-Avg=8.1,w01009-Flag=N;"
    "w01019-Avg=3.2,w01019-Flag=N;w21003-Avg=0.31,w21003-Flag=M;w21011-Avg=0.08,w21011-Flag=N&&"
)


def test_crc_matches_the_standards_example():
    assert crc16(STANDARD_SEGMENT.encode()) == 0x1C80


def test_crc_matches_a_published_station_frame():
    assert crc16(STATION_SEGMENT.encode()) == 0x6E80


def test_crc_is_not_crc16_modbus():
    # CRC-16/MODBUS of the standard's example is 0x0759; HJ 212's algorithm gives 0x1C80.
    assert crc16(STANDARD_SEGMENT.encode()) != 0x0759


def test_encode_frame_reproduces_the_standards_example_byte_for_byte():
    assert encode_frame(STANDARD_SEGMENT) == STANDARD_FRAME


def test_encode_frame_refuses_non_ascii_and_oversized_segments():
    with pytest.raises(UnicodeEncodeError):
        encode_frame("QN=1;MN=站")
    with pytest.raises(ValueError):
        encode_frame("x" * 10_000)


def test_round_trip_encode_then_read():
    results = FrameReader().feed(encode_frame(AIR_HOURLY))
    assert [(r.segment, r.reason) for r in results] == [(AIR_HOURLY, None)]


def test_frame_split_byte_by_byte_is_read_once_complete():
    reader = FrameReader()
    frame = encode_frame(WATER_HOURLY)
    collected = []
    for i in range(len(frame)):
        got = reader.feed(frame[i : i + 1])
        if i < len(frame) - 1:
            assert got == []
        collected += got
    assert [r.segment for r in collected] == [WATER_HOURLY]
    assert reader.buffered == 0


def test_two_frames_in_one_read_are_both_returned_in_order():
    results = FrameReader().feed(encode_frame(AIR_HOURLY) + STANDARD_FRAME)
    assert [r.segment for r in results] == [AIR_HOURLY, STANDARD_SEGMENT]


def test_garbage_before_a_frame_is_reported_once_and_the_frame_still_read():
    results = FrameReader().feed(b"\x00\xffHELLO#" + STANDARD_FRAME)
    assert [(r.reason, r.segment) for r in results] == [
        ("bad_header", None),
        (None, STANDARD_SEGMENT),
    ]
    assert results[0].raw == b"\x00\xffHELLO"


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"##01a1" + STANDARD_SEGMENT.encode() + b"1C80\r\n", "bad_length"),
        (b"##0100" + STANDARD_SEGMENT.encode() + b"1C80\r\n", "length_mismatch"),
        (b"##0101" + STANDARD_SEGMENT.encode() + b"1C81\r\n", "bad_crc"),
        (b"##0101" + STANDARD_SEGMENT.encode() + b"1CZ0\r\n", "bad_crc"),
        (b"##0002\xff\xfe" + b"%04X\r\n" % crc16(b"\xff\xfe"), "bad_encoding"),
    ],
)
def test_each_bad_frame_is_reported_with_its_reason_and_the_next_frame_survives(frame, reason):
    results = FrameReader().feed(frame + STANDARD_FRAME)
    assert [(r.reason, r.segment) for r in results] == [
        (reason, None),
        (None, STANDARD_SEGMENT),
    ]


def test_lower_case_crc_is_accepted():
    frame = b"##0101" + STANDARD_SEGMENT.encode() + b"1c80\r\n"
    assert [r.segment for r in FrameReader().feed(frame)] == [STANDARD_SEGMENT]


def test_declared_length_above_the_configured_maximum_is_oversized():
    reader = FrameReader(max_length=100)
    results = reader.feed(STANDARD_FRAME + encode_frame("QN=1"))
    assert [(r.reason, r.segment) for r in results] == [("oversized", None), (None, "QN=1")]


def test_half_a_frame_at_close_is_truncated():
    reader = FrameReader()
    assert reader.feed(STANDARD_FRAME[:50]) == []
    closed = reader.close()
    assert [(r.reason, r.raw) for r in closed] == [("truncated", STANDARD_FRAME[:50])]
    assert reader.buffered == 0


def test_close_after_complete_frames_reports_nothing():
    reader = FrameReader()
    reader.feed(STANDARD_FRAME)
    assert reader.close() == []


def test_trickled_garbage_is_reported_once_and_never_grows_the_buffer():
    reader = FrameReader()
    reports = []
    for _ in range(100_000):
        reports += reader.feed(b"x")
        assert reader.buffered <= 1
    assert [r.reason for r in reports] == ["bad_header"]
    assert [r.segment for r in reader.feed(STANDARD_FRAME)] == [STANDARD_SEGMENT]


def test_a_lying_length_holds_at_most_one_maximal_frame():
    reader = FrameReader(max_length=500)
    reader.feed(b"##0500")
    for _ in range(2000):
        reader.feed(b"y")
        assert reader.buffered <= reader.max_buffer
    assert reader.max_buffer == 512


def test_refused_frame_preview_is_bounded():
    results = FrameReader().feed(b"##9999" + b"z" * 9999 + b"0000\r\n")
    assert results[0].reason == "bad_crc"
    assert len(results[0].raw) == hj212.PREVIEW_BYTES


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=64))
def test_reader_never_raises_on_arbitrary_bytes(data, chunk):
    reader = FrameReader()
    for i in range(0, len(data), chunk):
        for result in reader.feed(data[i : i + chunk]):
            assert result.ok == (result.segment is not None)
        assert reader.buffered <= reader.max_buffer
    reader.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000).filter(lambda b: b"##" not in b), st.integers(1, 64))
def test_valid_frame_after_garbage_without_header_is_recovered(garbage, chunk):
    stream = garbage + STANDARD_FRAME
    reader = FrameReader()
    results = []
    for i in range(0, len(stream), chunk):
        results += reader.feed(stream[i : i + chunk])
    assert results[-1].segment == STANDARD_SEGMENT
    assert all(not r.ok for r in results[:-1])


def test_air_hourly_upload_is_parsed():
    segment = parse_segment(AIR_HOURLY)
    assert (segment.qn, segment.st, segment.cn, segment.mn, segment.pw) == (
        "20260301090000123",
        "22",
        "2061",
        "110000A001",
        "123456",
    )
    assert segment.flag == 5 and needs_response(segment.flag)
    assert segment.data_time == datetime(2026, 3, 1, 8, 0, 0)
    assert segment.values[:3] == (
        PollutantValue("a34004", "Min", 30.1, "N"),
        PollutantValue("a34004", "Avg", 35.2, "N"),
        PollutantValue("a34004", "Max", 41.0, "N"),
    )
    assert segment.values[-1] == PollutantValue("a05024", "Avg", None, "D")
    assert hj212.COMMANDS[segment.cn].primary == "Avg"


def test_water_upload_maps_to_stored_parameters():
    segment = parse_segment(WATER_HOURLY)
    stored = {hj212.stored_value(v.code, v.value) for v in segment.values if v.value is not None}
    assert stored == {("ph", 7.62), ("do", 8.1), ("codmn", 3.2), ("nh3_n", 0.31), ("tp", 0.08)}
    nh3 = next(v for v in segment.values if v.code == "w21003")
    assert nh3.flag == "M" and not hj212.DATA_FLAGS["M"].valid


def test_published_station_frame_parses_with_sample_times_kept_aside():
    segment = parse_segment(STATION_SEGMENT)
    assert segment.cn == "2011" and hj212.COMMANDS["2011"].primary == "Rtd"
    assert segment.data_time == datetime(2021, 3, 20, 1, 34, 0)
    assert PollutantValue("w21003", "Rtd", 53.131, "N") in segment.values
    assert ("w21003-SampleTime", "20210320013400") in segment.cp_fields


def test_standards_example_keeps_non_factor_cp_items():
    segment = parse_segment(STANDARD_SEGMENT)
    assert segment.values == () and segment.data_time is None
    assert segment.cp_fields == (("RtdInterval", "30"),)


def test_split_packet_carries_pnum_and_pno():
    text = "QN=1;ST=22;CN=2061;PW=1;MN=M;Flag=7;PNUM=3;PNO=2;CP=&&a34004-Avg=1&&"
    segment = parse_segment(text)
    assert (segment.pnum, segment.pno) == (3, 2) and hj212.is_split(segment.flag)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("QN=1;ST=22;CN=2061;PW=1;Flag=4;CP=&&&&", "missing_field"),
        ("QN=1;ST=22;CN=2061;PW=1;MN=M;Flag=4", "missing_field"),
        ("QN=1;ST=22;CN=2061;PW=1;MN=M;Flag=6;CP=&&&&", "missing_field"),
        ("QN=1;ST=xx;CN=2061;PW=1;MN=M;Flag=4;CP=&&&&", "bad_field"),
        ("QN=1;ST=22;CN=2061;PW=1;MN=M;Flag=999;CP=&&&&", "bad_field"),
        ("QN=1;QN=2;ST=22;CN=2061;PW=1;MN=M;Flag=4;CP=&&&&", "bad_field"),
        ("QN=1;ST=22;CN=2061;PW=1;MN=M;Flag=4;CP=&&a34004-Avg=1", "bad_cp"),
        ("QN=1;ST=22;CN=2061;PW=1;MN=M;Flag=4;CP=&&a34004-Avg&&", "bad_cp"),
        ("QN=1;ST=22;CN=2061;PW=1;MN=M;Flag=4;CP=&&a1-Avg=1,a1-Avg=2&&", "bad_cp"),
        ("QN=1;ST=22;CN=2061;PW=1;MN=M;Flag=4;CP=&&DataTime=2026030108&&", "bad_datatime"),
        ("QN=1;ST=22;CN=2061;PW=1;MN=M;Flag=4;CP=&&DataTime=20260231080000&&", "bad_datatime"),
    ],
)
def test_malformed_segments_are_refused_with_a_reason(text, reason):
    with pytest.raises(SegmentError) as caught:
        parse_segment(text)
    assert caught.value.reason == reason


def test_non_numeric_values_become_none():
    text = "QN=1;ST=22;CN=2011;PW=1;MN=M;Flag=4;CP=&&a1-Rtd=nan;a2-Rtd=1_0;a3-Rtd=-1.5e2&&"
    assert [v.value for v in parse_segment(text).values] == [None, None, -150.0]


@pytest.mark.parametrize(
    ("flag", "ack", "split", "version"),
    [(4, False, False, 1), (5, True, False, 1), (7, True, True, 1), (0, False, False, 0)],
)
def test_flag_bits(flag, ack, split, version):
    assert needs_response(flag) is ack
    assert hj212.is_split(flag) is split
    assert hj212.protocol_version(flag) == version


def test_data_response_is_the_2017_9014_reply():
    reply = data_response("20160801085857223", "91", "010000A8900016F000169DC0", "123456")
    assert reply == (
        "QN=20160801085857223;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&"
    )
    assert parse_segment(reply).flag == hj212.FLAG_2017_NO_ACK


def test_request_response_carries_qnrtn():
    reply = request_response("20160801085857223", "91", "010000A8900016F000169DC0", "123456", 1)
    assert reply == (
        "QN=20160801085857223;ST=91;CN=9011;PW=123456;MN=010000A8900016F000169DC0;"
        "Flag=4;CP=&&QnRtn=1&&"
    )
    assert hj212.QN_RTN[9].name_en == "The CRC check failed."
    with pytest.raises(ValueError):
        request_response("1", "91", "M", "P", 42)


def test_replies_refuse_echoed_values_that_would_inject_fields():
    with pytest.raises(ValueError):
        data_response("1", "91", "M;CN=1072", "P")


def test_every_code_maps_to_a_catalogue_parameter_in_its_unit():
    missing = set()
    for entry in hj212.PARAMETER_CODES.values():
        parameter = CATALOGUE.get(entry.parameter)
        if parameter is None:
            missing.add(entry.parameter)
        else:
            assert parameter.unit == entry.stored_unit, entry.code
    assert missing == set()


def test_tables_cover_the_commands_systems_and_flags_we_use():
    assert set(hj212.COMMANDS) == {"2011", "2051", "2061", "2031", "9011", "9012", "9013", "9014"}
    assert set(hj212.SYSTEM_CODES) == {"21", "22", "91"}
    assert set(hj212.DATA_FLAGS) == set("NFMSDCTB")
    assert {c for c, f in hj212.DATA_FLAGS.items() if f.valid} == {"N", "S"}


def test_sender_of_a_segment_that_does_not_parse_is_found_only_when_well_formed():
    assert hj212.sender_of("QN=1;ST=22;CN=2061;PW=abc123;MN=AIR0001;Flag=5;CP=&&DataTime=x&&") == (
        "AIR0001",
        "abc123",
    )
    assert hj212.sender_of("QN=1;PW=abc;Flag=5;CP=&&MN=AIR0001&&") is None  # MN only inside CP
    assert hj212.sender_of("QN=1;PW=a;MN=" + "A" * 40 + ";CP=&&&&") is None  # MN too long
    assert hj212.sender_of("MN=A1;PW=" + "x" * 40) is None  # PW too long
