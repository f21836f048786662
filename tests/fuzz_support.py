"""Payload fuzzing, shared by tests/test_fuzz.py (bounded) and bench/fuzz.py (full run).

Strategies produce ``(topic, payload bytes)`` messages: every payload shape of DESIGN.md's MQTT
contract (one reading, batch, water class, water parameters, SenML), hostile raw bytes (odd
encodings, deep nesting, huge numbers, NaN literals, NUL, surrogates) and byte mutations of
valid payloads. ``check_message`` runs one message through ``Validator.add_message`` and asserts
the contract: no exception escapes, and the message ends as reading rows or dead letters,
every dead letter with a reason and a sentence PostgreSQL can store.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from ingest.validate import (
    MAX_DEAD_LETTERS_PER_MESSAGE,
    Outcome,
    StationDirectory,
    StationInfo,
    Validator,
)
from schemas.payloads import EARLIEST_TS, Reason
from standards.parameters import ALIASES, CATALOGUE

SHANGHAI = ZoneInfo("Asia/Shanghai")
AIR = "110000-A001"
RIVER = "W-YANGTZE-01"
LAKE = "W-TAIHU-01"
URUMQI = "650000-A001"
CLOSED = "999999-OFF"
UNKNOWN = "330000-X999"
# The registry of tests/conftest.py, so a sample can also go through the real database.
FUZZ_STATIONS = {
    AIR: StationInfo(AIR, SHANGHAI, "air", None, True),
    RIVER: StationInfo(RIVER, SHANGHAI, "surface_water", "river", True),
    LAKE: StationInfo(LAKE, SHANGHAI, "surface_water", "lake", True),
    URUMQI: StationInfo(URUMQI, ZoneInfo("Asia/Urumqi"), "air", None, True),
    CLOSED: StationInfo(CLOSED, SHANGHAI, "air", None, False),
}
MAX_DETAIL_CHARS = 2000
REASONS = frozenset(Reason)

# --- values -------------------------------------------------------------------------------

EPOCH = 1772323200  # 2026-03-01T00:00:00Z
PARAMETER_NAMES = sorted(CATALOGUE) + sorted(ALIASES) + ["PM2.5", "NH3-N", "CODMn", "pm99", "radon"]
UNITS = [
    "ug/m3",
    "µg/m3",
    "μg/m3",
    "mg/m3",
    "kg/m3",
    "g/m3",
    "mg/L",
    "ug/L",
    "pH",
    "Cel",
    "1/L",
    "/",
    "",
    "ppm",
    "K",
    "%RH",
    "furlongs",
    "UG/M3 ",
]
WATER_CLASSES = ["I", "II", "III", "IV", "V", "劣V", "Ⅲ", "Class II", "Ⅳ类", 1, 6, 7, "VII", 0, 2.5]
HUGE_NUMBERS = [1e308, -1e308, 1.7976931348623157e308, 5e-324, 2**63, -(2**63), 2**64, 10**30]
SENTINEL_NUMBERS = [-999, -9999, -99999, -999.9, -99.9, 0, -0.0, -0.1]

finite_numbers = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(min_value=0, max_value=1000)
    | st.sampled_from(HUGE_NUMBERS + SENTINEL_NUMBERS)
)
numeric_text = st.sampled_from(
    ["35.2", " 7 ", "1e-3", "NaN", "-inf", "Infinity", "1e400", "", "abc", "1_000", "３５", "0x10"]
)
values = finite_numbers | numeric_text | st.none() | st.booleans() | st.sampled_from(WATER_CLASSES)


def _iso(ts: datetime) -> str:
    return ts.isoformat()


recent = st.datetimes(
    min_value=datetime(2025, 11, 1), max_value=datetime(2026, 12, 31), timezones=st.none()
)
timestamps = st.one_of(
    recent.map(lambda ts: _iso(ts.replace(tzinfo=UTC))),
    recent.map(_iso),  # naive: the station's timezone
    recent.map(lambda ts: _iso(ts.replace(tzinfo=SHANGHAI))),
    recent.map(lambda ts: int(ts.replace(tzinfo=UTC).timestamp())),
    recent.map(lambda ts: ts.replace(tzinfo=UTC).timestamp()),
    st.datetimes(timezones=st.none() | st.just(UTC)).map(_iso),  # year 1 .. 9999
    st.sampled_from(
        [
            "0001-01-01T00:00:00",
            "9999-12-31T23:59:59",
            "9999-12-31T23:59:59-12:00",
            "0001-01-01T00:00:00+14:00",
            "2026-02-30T00:00:00",
            "2026-03-01T25:00:00+08:00",
            "yesterday",
            "",
            1e20,
            -1e20,
            2**28,
            -1,
            0,
            10**30,
            True,
        ]
    ),
)
hostile_text = st.sampled_from(
    [
        "'; DROP TABLE readings; --",
        "$1",
        "%s",
        "%(lo)s",
        "{}",
        "{0}",
        "../../etc/passwd",
        "pm25\x00",
        "\x00",
        "ｐｍ２５",  # fullwidth lookalike
        "рm25",  # Cyrillic р
        "pm25\u200b",  # zero-width space
        "x" * 10_000,
        "\ud800",
        "🙂",
    ]
)
parameter_names = st.sampled_from(PARAMETER_NAMES) | hostile_text | st.text(max_size=12)
units = st.sampled_from(UNITS) | hostile_text

# --- payload shapes -----------------------------------------------------------------------

air_reading = st.fixed_dictionaries(
    {"ts": timestamps},
    optional={
        "pm25": values,
        "pm10": values,
        "so2": values,
        "no2": values,
        "co": values,
        "o3": values,
        "PM2.5": values,
    },
)
water_class_reading = st.fixed_dictionaries(
    {"ts": timestamps, "water_class": st.sampled_from(WATER_CLASSES) | values}
)
water_parameter_reading = st.fixed_dictionaries(
    {"ts": timestamps},
    optional={
        "do": values,
        "codmn": values,
        "nh3_n": values,
        "tp": values,
        "ph": values,
        "water_temp": values,
        "fecal_coliform": values,
    },
)
odd_reading = st.dictionaries(
    parameter_names | st.sampled_from(["ts", "station_id", "station"]), values, max_size=6
)
station_names = st.sampled_from([AIR, RIVER, LAKE, "110000-A002", "", None, 110000]) | hostile_text
reading = (
    air_reading
    | water_class_reading
    | water_parameter_reading
    | odd_reading
    | st.builds(lambda r, s: {**r, "station_id": s}, air_reading, station_names)
)
batch = st.builds(
    lambda readings, extra: {"readings": readings, **extra},
    st.lists(reading, max_size=8),
    st.dictionaries(st.sampled_from(["station_id", "station", "pm25", "note"]), values, max_size=2),
)

senml_times = st.one_of(
    st.integers(min_value=-3600, max_value=3600),  # relative to now
    st.just(EPOCH) | st.integers(min_value=EPOCH - 86400 * 30, max_value=EPOCH + 86400 * 300),
    st.sampled_from([2**28 - 1, 2**28, -(2**40), 1e20, -1e20, 1e308, "noon", None, True]),
)
senml_base = st.fixed_dictionaries(
    {},
    optional={
        "bn": st.sampled_from([f"urn:dev:{AIR}:", f"{AIR}/", f"{RIVER}:", "urn:dev:mac:00ff:", ""])
        | hostile_text
        | st.just(["not", "a", "name"]),
        "bt": senml_times,
        "bu": units | st.just(3),
        "bv": finite_numbers | st.just("x"),
        "bver": st.integers(min_value=0, max_value=20),
    },
)
senml_record = st.builds(
    lambda base, fields: {**base, **fields},
    senml_base,
    st.fixed_dictionaries(
        {},
        optional={
            "n": parameter_names | st.just(7),
            "u": units,
            "v": values,
            "vs": st.sampled_from(WATER_CLASSES[:9]) | values,
            "vb": st.booleans(),
            "vd": st.just("aGVsbG8"),
            "s": finite_numbers,
            "t": senml_times,
        },
    ),
)
senml_pack: st.SearchStrategy[list[object]] = st.lists(
    senml_record | st.sampled_from([1, "pm25", None, [], {}]), max_size=8
)
# A SenML pack that repeats its records (same name, same time): RFC 8428 duplicates.
duplicated_senml = senml_pack.filter(bool).map(lambda pack: pack + pack)

documents = st.one_of(reading, batch, senml_pack, duplicated_senml)

# Well-formed payloads with plausible values, so that a fair share is stored.
past = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 11, 1))
good_ts = past.map(_iso) | past.map(lambda ts: int(ts.replace(tzinfo=UTC).timestamp()))
concentration = st.floats(min_value=0, max_value=800) | st.integers(min_value=0, max_value=500)
good_air = st.fixed_dictionaries(
    {"ts": good_ts, "pm25": concentration},
    optional={"pm10": concentration, "no2": concentration, "co": st.floats(0, 10)},
)
good_water = st.fixed_dictionaries(
    {"ts": good_ts},
    optional={
        "do": st.floats(0, 15),
        "codmn": st.floats(0, 20),
        "nh3_n": st.floats(0, 3),
        "tp": st.floats(0, 0.5),
        "water_class": st.sampled_from(WATER_CLASSES[:9]),
    },
).filter(lambda reading: len(reading) > 1)
good_senml = st.builds(
    lambda bt, rows: [
        {"bn": f"urn:dev:{AIR}:", "bt": bt, "bu": "ug/m3", **rows[0]},
        *rows[1:],
    ],
    past.map(lambda ts: int(ts.replace(tzinfo=UTC).timestamp())),
    st.lists(
        st.fixed_dictionaries(
            {
                "n": st.sampled_from(["pm25", "pm10", "no2", "PM2.5"]),
                "v": concentration,
                "t": st.integers(min_value=0, max_value=86400),
            },
            optional={"u": st.sampled_from(["ug/m3", "mg/m3", "kg/m3"])},
        ),
        min_size=1,
        max_size=6,
    ),
)
good_messages = st.one_of(
    st.tuples(st.just(f"stations/{AIR}/readings"), good_air.map(lambda r: encode(r))),
    st.tuples(
        st.sampled_from([f"stations/{AIR}/readings", f"stations/{URUMQI}/readings"]),
        st.lists(good_air, min_size=1, max_size=5).map(lambda b: encode({"readings": b})),
    ),
    st.tuples(
        st.sampled_from([f"stations/{RIVER}/readings", f"stations/{LAKE}/readings"]),
        good_water.map(lambda r: encode(r)),
    ),
    st.tuples(st.just(f"stations/{AIR}/readings"), good_senml.map(lambda p: encode(p))),
)


def encode(document: object) -> bytes:
    """JSON as a station would send it; the hostile ``\\ud800`` text is kept as an escape."""
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "backslashreplace")


# --- hostile raw bytes --------------------------------------------------------------------

SAMPLE = {"ts": "2026-03-01T08:00:00+08:00", "pm25": 35.2, "pm10": 61.0}
SAMPLE_TEXT = json.dumps(SAMPLE)


def _nested(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


RAW_PAYLOADS: list[bytes] = [
    b"",
    b" ",
    b"null",
    b"{",
    b"[",
    b"}",
    b'{"ts": NaN, "pm25": 1}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": NaN}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": Infinity}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": -Infinity}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": 1e400}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": ' + b"1" + b"0" * 5000 + b"}",
    b'{"ts": ' + b"9" * 5000 + b', "pm25": 1}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": 1e-400}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": -0}',
    b'[{"n": "pm25", "v": 1e400}]',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": "\\ud800"}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "\\ud800": 1}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "\\udc00\\ud800": 1}',
    b'{"ts": "\\u0000", "pm25": 1}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm25\\u0000": 1}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": 1}\x00',
    b'\x00{"ts": "2026-03-01T08:00:00+08:00", "pm25": 1}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm25": 1, "pm25": 2}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "pm\xc0\xb2\x35": 1}',  # overlong '2'
    b'{"ts": "2026-03-01T08:00:00+08:00", "\xc0\xaf": 1}',  # overlong '/'
    b'{"ts": "2026-03-01T08:00:00+08:00", "\xed\xa0\x80": 1}',  # UTF-8 encoded surrogate
    b'{"ts": "2026-03-01T08:00:00+08:00", "\xf4\x90\x80\x80": 1}',  # beyond U+10FFFF
    b'{"ts": "2026-03-01T08:00:00+08:00", "\xff": 1}',
    SAMPLE_TEXT.encode("latin-1"),
    '{"ts": "2026-03-01T08:00:00+08:00", "µg": 1}'.encode("latin-1"),
    SAMPLE_TEXT.encode("utf-16"),
    SAMPLE_TEXT.encode("utf-16-le"),
    SAMPLE_TEXT.encode("utf-16-be"),
    SAMPLE_TEXT.encode("utf-32"),
    SAMPLE_TEXT.encode("utf-32-le"),
    SAMPLE_TEXT.encode("utf-8-sig"),
]
# Expensive to parse (up to 0.3 s each): checked once each, never drawn by the strategies.
HEAVY_PAYLOADS: list[bytes] = [
    _nested(100_000),
    _nested(100_000, '{"a":', "}"),
    _nested(1023),
    _nested(1024),
    _nested(1025),
    b'{"ts": ' + _nested(1020) + b', "pm25": 1}',
    b'{"ts": "2026-03-01T08:00:00+08:00", "water_class": ' + _nested(1020) + b"}",
    b'{"station_id": ' + _nested(1020) + b', "ts": 0, "pm25": 1}',
    b'[{"bn": ' + _nested(1020) + b', "n": "pm25", "v": 1}]',
    b'[{"n": ' + _nested(1020) + b', "v": 1}]',
    b'[{"n": "pm25", "u": ' + _nested(1020) + b', "v": 1}]',
    b'{"readings": ' + _nested(1020) + b"}",
    b'{"readings": [' + b"{}," * 80_000 + b"{}]}",
    b'{"readings": [' + b"1," * 120_000 + b"1]}",
    b"[" + b"{}," * 80_000 + b"{}]",
    b'{"readings": [' + b'{"ts": 0, "radon": 1},' * 9000 + b"{}]}",
    b" " * (256 * 1024),
    b" " * (256 * 1024 + 1),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid payload with bytes flipped, inserted, deleted, or cut off."""
    raw = bytearray(encode(draw(documents)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        at = draw(st.integers(min_value=0, max_value=max(len(raw) - 1, 0)))
        if kind == "flip" and raw:
            raw[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "insert":
            raw[at:at] = draw(
                st.binary(min_size=1, max_size=4)
                | st.sampled_from([b"\x00", b"\xff", b"\xc0\x80", b"\\ud800", b"[", b"{", b'"'])
            )
        elif kind == "delete" and raw:
            del raw[at : at + draw(st.integers(min_value=1, max_value=4))]
        elif kind == "truncate":
            del raw[at:]
        elif kind == "splice":
            raw[at:at] = draw(st.sampled_from(RAW_PAYLOADS))
    return bytes(raw)


topic_station_ids = st.sampled_from(
    [AIR, AIR, AIR, RIVER, LAKE, URUMQI, CLOSED, UNKNOWN, "", "a/b", "bad id;drop", "x" * 65]
) | hostile_text.filter(lambda text: "\ud800" not in text)
topics = st.one_of(
    topic_station_ids.map(lambda station_id: f"stations/{station_id}/readings"),
    st.sampled_from(["stations//readings", "stations/readings", "readings", "", "/" * 10]),
)
# about a quarter each: well-formed, every shape with odd values, mutated bytes, raw bytes
messages = st.one_of(
    st.tuples(topics, st.sampled_from(RAW_PAYLOADS) | st.binary(max_size=64)),
    st.tuples(topics, mutated()),
    st.tuples(topics, documents.map(encode)),
    good_messages.map(tuple),  # mapped, so that one_of does not flatten it into 4 branches
)


# --- the contract -------------------------------------------------------------------------


def fuzz_validator() -> Validator:
    return Validator(StationDirectory(lambda: dict(FUZZ_STATIONS), min_reload_s=3600))


@dataclass(slots=True)
class Tally:
    """What a fuzz run has seen."""

    payloads: int = 0
    accepted_payloads: int = 0  # at least one reading row
    readings: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    dead_lettered_payloads: int = 0
    exceptions: Counter[str] = field(default_factory=Counter)


def check_message(
    validator: Validator, topic: str, payload: bytes, tally: Tally | None = None
) -> Outcome:
    """Validate one message and assert the contract; returns what it became."""
    received_at = datetime.now(UTC)
    outcome = Outcome()
    try:
        validator.add_message(outcome, topic, payload, received_at)
    except Exception as exc:
        if tally is not None:
            tally.payloads += 1
            tally.exceptions[type(exc).__name__] += 1
        raise
    if tally is not None:
        tally.payloads += 1
        tally.readings += len(outcome.readings)
        tally.accepted_payloads += bool(outcome.readings)
        tally.dead_lettered_payloads += bool(outcome.dead_letters)
        tally.dead_letters.update(d.reason for d in outcome.dead_letters)
    assert outcome.readings or outcome.dead_letters, f"{payload[:200]!r} became nothing"
    assert len(outcome.dead_letters) <= MAX_DEAD_LETTERS_PER_MESSAGE
    latest = received_at + validator.max_future
    for station_id, parameter, ts, value, received in outcome.readings:
        assert topic == f"stations/{station_id}/readings"
        assert FUZZ_STATIONS[station_id].active
        assert parameter in CATALOGUE
        assert type(value) is float and math.isfinite(value), value
        assert ts.tzinfo is not None and EARLIEST_TS <= ts <= latest, ts
        assert received == received_at
    for dead in outcome.dead_letters:
        assert dead.reason in REASONS, dead.reason
        assert dead.detail, "every dead letter carries a sentence"
        # PostgreSQL text holds neither NUL nor lone surrogates; the sentence stays short
        assert "\x00" not in dead.detail and "\x00" not in dead.topic
        dead.detail.encode("utf-8")
        dead.topic.encode("utf-8")
        assert len(dead.detail) <= MAX_DETAIL_CHARS, len(dead.detail)
        assert dead.payload == payload
        assert dead.topic == topic or "\x00" in topic or len(topic) > 300
        assert dead.station_id is None or dead.station_id in topic
        assert len(dead.fingerprint) == 32
    return outcome


def is_accounted(outcome: Outcome) -> bool:
    return bool(outcome.readings or outcome.dead_letters)


ACCEPTED_SAMPLE = [
    (f"stations/{AIR}/readings", encode(SAMPLE)),
    (f"stations/{RIVER}/readings", encode({"ts": 1772323200, "do": 6.1, "tp": 0.08})),
]
RECEIVED_WINDOW = timedelta(minutes=10)
