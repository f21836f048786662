"""Payload fuzzing, shared by tests/test_fuzz.py (bounded) and bench/fuzz.py (full run).

Strategies produce ``(topic, payload bytes)`` messages: every payload shape of DESIGN.md's MQTT
contract (one reading, batch, water class, water parameters, SenML), hostile raw bytes (odd
encodings, deep nesting, huge numbers, NaN literals, NUL, surrogates) and byte mutations of
valid payloads; besides, the edges: every plausible-range limit and one step beyond it, huge,
subnormal and signed-zero numbers, timestamps at the first and last microsecond of hypertable
chunks, at the earliest accepted instant and in the far future (``edge_messages``).
``check_message`` runs one message through ``Validator.add_message`` and asserts the contract:
no exception escapes, and the message ends as reading rows or dead letters, every dead letter
with a reason and a sentence PostgreSQL can store.

The last part sends a corpus through the real pipeline (MQTT broker, ``python -m ingest``,
TimescaleDB) and accounts for every message, with the in-process validator as the oracle:
``plan_corpus`` → ``publish_corpus`` → ``settle`` → ``account``.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count as counter
from types import SimpleNamespace
from typing import TypeVar
from unittest import mock
from zoneinfo import ZoneInfo

import hypothesis
import paho.mqtt.client as mqtt
import psycopg
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ingest.validate import (
    MAX_DEAD_LETTERS_PER_MESSAGE,
    Outcome,
    StationDirectory,
    StationInfo,
    Validator,
    stations_of,
)
from schemas import payloads as payload_parser
from schemas.payloads import EARLIEST_TS, Reason
from schemas.stations import Station
from standards.parameters import ALIASES, CATALOGUE, PLAUSIBLE
from tests.support import (
    PROBE_STATION,
    Publisher,
    Worker,
    assert_rollups_match_readings,
    wait_until_stable,
    worker_totals,
)

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
MAX_FLOAT = 1.7976931348623157e308
HALF_MAX = MAX_FLOAT / 2  # 8.98846567431158e307: twice it is MAX_FLOAT exactly
ABOVE_HALF_MAX = math.nextafter(HALF_MAX, math.inf)  # twice it overflows
HUGE_NUMBERS = [
    1e308,
    -1e308,
    MAX_FLOAT,
    -MAX_FLOAT,
    1e300,
    -1e300,
    8.98e307,
    HALF_MAX,
    -HALF_MAX,
    ABOVE_HALF_MAX,
    5e-324,
    2**63,
    -(2**63),
    2**64,
    10**30,
    2**1023,  # an int a float still holds
    10**309,  # an int no float holds
]
# Pairs of finite values at the edge of overflowing their sum (a rollup adds before it
# divides): the first two sums are finite, the others are not.
SUM_EDGE_PAIRS = [
    (8.98e307, 8.98e307),
    (HALF_MAX, HALF_MAX),
    (ABOVE_HALF_MAX, ABOVE_HALF_MAX),
    (MAX_FLOAT, 1e292),  # half an ulp of MAX_FLOAT: rounds up, to infinity
    (1e308, 1e308),
    (-1e308, -HALF_MAX),
]
MIN_NORMAL = 2.2250738585072014e-308
SUBNORMALS = [
    5e-324,  # the smallest
    -5e-324,
    1e-310,
    -1e-310,
    math.nextafter(MIN_NORMAL, 0),  # the largest subnormal
    MIN_NORMAL,
    math.nextafter(MIN_NORMAL, math.inf),
]
SIGNED_ZEROS = [0.0, -0.0]
SENTINEL_NUMBERS = [-999, -9999, -99999, -999.9, -99.9, 0, -0.0, -0.1]


def _limits(name: str) -> tuple[float, ...]:
    """A plausible range's limits and one float step beyond each, in the stored unit."""
    bounds = PLAUSIBLE[name]
    low, high = float(bounds.low), float(bounds.high)
    return (low, high, math.nextafter(high, math.inf), math.nextafter(low, -math.inf))


# For every parameter with a plausible range: low, high, just above high, just below low.
PLAUSIBLE_LIMITS: dict[str, tuple[float, ...]] = {name: _limits(name) for name in PLAUSIBLE}
EDGE_NUMBERS: list[float | int] = [
    *sorted({*HUGE_NUMBERS, *SUBNORMALS, *(v for lim in PLAUSIBLE_LIMITS.values() for v in lim)}),
    -0.0,  # equal to 0.0: a set keeps one of the two
]

finite_numbers = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(min_value=0, max_value=1000)
    | st.sampled_from(HUGE_NUMBERS + SENTINEL_NUMBERS)
    | st.sampled_from(EDGE_NUMBERS)
)
numeric_text = st.sampled_from(
    ["35.2", " 7 ", "1e-3", "NaN", "-inf", "Infinity", "1e400", "", "abc", "1_000", "３５", "0x10"]
)
values = finite_numbers | numeric_text | st.none() | st.booleans() | st.sampled_from(WATER_CLASSES)


def _iso(ts: datetime) -> str:
    return ts.isoformat()


# --- timestamps at the edges --------------------------------------------------------------
# schemas/migrations/0001_core.sql: `readings` in 7-day chunks (and, until 0008 made the hours
# a view, `readings_hourly` in 30-day chunks: those edges stay in the corpus, they cost
# nothing); TimescaleDB counts a timestamptz chunk from the Unix epoch.
READINGS_CHUNK = timedelta(days=7)
HOURLY_CHUNK = timedelta(days=30)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def chunk_start(ts: datetime, interval: timedelta) -> datetime:
    """The first instant of the chunk of ``interval`` that holds ``ts``."""
    return UNIX_EPOCH + interval * ((ts - UNIX_EPOCH) // interval)


def is_chunk_edge(ts: datetime, interval: timedelta) -> bool:
    """Whether ``ts`` is the first or the last microsecond of its chunk."""
    start = chunk_start(ts, interval)
    return ts == start or ts + MICROSECOND == start + interval


def _chunk_edges() -> list[datetime]:
    """First and last microsecond of the chunks around a few instants, for both intervals."""
    anchors = [
        EARLIEST_TS,
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime.fromtimestamp(EPOCH, tz=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
    ]
    edges: set[datetime] = set()
    for anchor in anchors:
        for interval in (READINGS_CHUNK, HOURLY_CHUNK):
            start = chunk_start(anchor, interval)
            edges.update(
                (start - MICROSECOND, start, start + interval - MICROSECOND, start + interval)
            )
    return sorted(edges)


CHUNK_EDGES = _chunk_edges()
FAR_FUTURE = [
    datetime(2100, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]
# Instants at the ends of what is accepted: the earliest (schemas.payloads.EARLIEST_TS) and
# just before it; the future is rejected relative to the receive time.
EDGE_INSTANTS = (
    sorted(
        {*CHUNK_EDGES, EARLIEST_TS, EARLIEST_TS - MICROSECOND, EARLIEST_TS - timedelta(seconds=1)}
    )
    + FAR_FUTURE
)
# What a station may write in "ts" for those instants, and a few more spellings of them
EDGE_TS_VALUES: list[object] = [
    *(_iso(ts) for ts in EDGE_INSTANTS),
    "1990-01-01T08:00:00",  # naive: Shanghai wall time of EARLIEST_TS exactly
    "1990-01-01T07:59:59.999999",  # one microsecond earlier
    "1990-01-01T00:00:00Z",
    "1989-12-31T23:59:59Z",
    int(EARLIEST_TS.timestamp()),
    int(EARLIEST_TS.timestamp()) - 1,
    "2100-01-01T00:00:00+08:00",
    "9999-12-31T23:59:59.999999Z",
    253402300799,  # 9999-12-31T23:59:59Z as epoch seconds
    253402300799.999999,
    253402300800,  # year 10000
]


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
    st.sampled_from(EDGE_TS_VALUES),
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

# Two readings of one hour whose values, each finite, (nearly) overflow the hour's sum.
sum_edge_batch = st.builds(
    lambda pair, parameter, hour: {
        "readings": [
            {"ts": _iso(hour), parameter: pair[0]},
            {"ts": _iso(hour + timedelta(minutes=30)), parameter: pair[1]},
        ]
    },
    st.sampled_from(SUM_EDGE_PAIRS),
    st.sampled_from(["pm25", "co", "do", "fecal_coliform"]),
    st.sampled_from(CHUNK_EDGES[:-1]).map(lambda ts: ts.replace(minute=0, second=0, microsecond=0)),
)

documents = st.one_of(reading, batch, senml_pack, duplicated_senml, sum_edge_batch)

# Well-formed payloads with plausible values, so that a fair share is stored.
past = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 11, 1))
PAST_CHUNK_EDGES = [
    ts for ts in CHUNK_EDGES if EARLIEST_TS <= ts <= datetime(2026, 11, 1, tzinfo=UTC)
]
good_ts = (
    past.map(_iso)
    | past.map(lambda ts: int(ts.replace(tzinfo=UTC).timestamp()))
    | st.sampled_from(PAST_CHUNK_EDGES).map(_iso)
)
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


def readings_topic(station_id: str) -> str:
    return f"stations/{station_id}/readings"


def _limit_message(name: str) -> st.SearchStrategy[tuple[str, bytes]]:
    """A reading of ``name`` at, or one step beyond, a limit of its plausible range."""
    stations = [AIR, URUMQI] if CATALOGUE[name].medium == "air" else [RIVER, LAKE]
    return st.tuples(
        st.sampled_from(stations).map(readings_topic),
        st.fixed_dictionaries({"ts": good_ts, name: st.sampled_from(PLAUSIBLE_LIMITS[name])}).map(
            lambda r: encode(r)
        ),
    )


limit_messages = st.sampled_from(sorted(PLAUSIBLE)).flatmap(_limit_message)
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
    limit_messages,
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


# --- the edges, every one of them, in every run ---------------------------------------------
EDGE_WEEK = datetime(2026, 6, 1, tzinfo=UTC)  # a week no other payload names: keys stay apart


def edge_messages() -> list[tuple[str, bytes]]:
    """Deterministic messages at the edges: each parameter at its plausible limits and one
    float step beyond (as a reading and as SenML in the stored unit), subnormal, signed-zero
    and huge values, pairs whose sum overflows, and every edge timestamp (chunk ends, the
    earliest accepted instant, the far future) in several spellings. Each reading key
    (station, parameter, ts) is used once, so the first-value-wins rule never hides one."""
    minutes = counter()

    def next_ts() -> datetime:
        return EDGE_WEEK + timedelta(minutes=next(minutes))

    out: list[tuple[str, bytes]] = []
    for name in sorted(PLAUSIBLE):
        station_id = AIR if CATALOGUE[name].medium == "air" else RIVER
        for value in PLAUSIBLE_LIMITS[name]:
            out.append((readings_topic(station_id), encode({"ts": _iso(next_ts()), name: value})))
            senml = {
                "bn": f"urn:dev:{station_id}:",
                "bt": next_ts().timestamp(),
                "n": name,
                "u": CATALOGUE[name].unit,
                "v": value,
            }
            out.append((readings_topic(station_id), encode([senml])))
    for value in [*SUBNORMALS, *SIGNED_ZEROS, *HUGE_NUMBERS]:
        out.append((readings_topic(AIR), encode({"ts": _iso(next_ts()), "pm25": value})))
        # water_temp may be negative; dissolved oxygen makes a derived water class
        out.append((readings_topic(LAKE), encode({"ts": _iso(next_ts()), "water_temp": value})))
        out.append((readings_topic(RIVER), encode({"ts": _iso(next_ts()), "do": value})))
    for first, second in SUM_EDGE_PAIRS:
        hour = next_ts().replace(minute=0) + timedelta(hours=1)
        for _ in range(60):
            next(minutes)  # the next pair in an hour of its own
        for station_id, name in ((AIR, "pm25"), (RIVER, "fecal_coliform")):
            batch_document = {
                "readings": [
                    {"ts": _iso(hour), name: first},
                    {"ts": _iso(hour + timedelta(minutes=30)), name: second},
                ]
            }
            out.append((readings_topic(station_id), encode(batch_document)))
    # the highest plausible coliform count, many times in one hour: a large but finite sum
    hour = next_ts().replace(minute=0) + timedelta(hours=1)
    out.append(
        (
            readings_topic(LAKE),
            encode(
                {
                    "readings": [
                        {"ts": _iso(hour + timedelta(minutes=m)), "fecal_coliform": 1e11}
                        for m in range(60)
                    ]
                }
            ),
        )
    )
    # every edge timestamp: one parameter per spelling, so that no key repeats
    for position, raw in enumerate(EDGE_TS_VALUES):
        value = 10 + position / 100
        out.append((readings_topic(AIR), encode({"ts": raw, "pm25": value})))
        out.append((readings_topic(URUMQI), encode({"ts": raw, "pm10": value})))
        out.append((readings_topic(LAKE), encode({"ts": raw, "do": 7.5})))
    for position, ts in enumerate(EDGE_INSTANTS):
        value = 20 + position / 100
        if ts.year < 9999:  # the Shanghai wall time of 9999-12-31T23:59Z is in year 10000
            naive_local = ts.astimezone(SHANGHAI).replace(tzinfo=None)
            out.append((readings_topic(AIR), encode({"ts": _iso(naive_local), "so2": value})))
        out.append((readings_topic(AIR), encode({"ts": ts.timestamp(), "o3": value})))
        pack = [{"bn": f"urn:dev:{AIR}:", "bt": ts.timestamp(), "n": "no2", "v": value}]
        out.append((readings_topic(AIR), encode(pack)))
    out.append(
        (
            readings_topic(AIR),
            encode({"readings": [{"ts": _iso(ts), "co": 1.5} for ts in EDGE_INSTANTS]}),
        )
    )
    return out


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
messages: st.SearchStrategy[tuple[str, bytes]] = st.one_of(
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
    validator: Validator,
    topic: str,
    payload: bytes,
    tally: Tally | None = None,
    received_at: datetime | None = None,
) -> Outcome:
    """Validate one message and assert the contract; returns what it became.
    ``received_at``: the receive time the rules judge by (default: now)."""
    received_at = received_at or datetime.now(UTC)
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


# --- through the database: the real pipeline, the validator as the oracle -----------------
# A message is published at QoS 1 to a broker, consumed by one `python -m ingest` worker and
# written to TimescaleDB; the same validator run in process says what must come of it.

# airwater.embedded's Mosquitto (message_size_limit) drops the connection of a client that
# publishes a larger message, and paho sends it again on every reconnect: not sent
BROKER_MESSAGE_LIMIT = 256 * 1024
# The last message of a run, on the probe station: once it is stored, so is everything before
MARKER_TS = datetime(2000, 2, 1, tzinfo=UTC)
# Dead letters the worker adds to a message whose readings the database refused
REFUSAL_REASONS = frozenset({Reason.STORAGE_REJECTED, Reason.PROCESSING_FAILED})

T = TypeVar("T")
ReadingKey = tuple[str, str, datetime]  # (station_id, parameter, ts): stored once


def draw(
    strategy: st.SearchStrategy[T], wanted: int, take: Callable[[T], bool], seed: int | None
) -> int:
    """Draw examples of ``strategy`` (hypothesis as a plain generator: no shrinking, no
    example database) and hand each to ``take`` until it has accepted ``wanted``; returns
    how many it accepted."""
    accepted = 0
    for round_ in range(20):
        if accepted >= wanted:
            break

        @settings(
            max_examples=(wanted - accepted) * 5 // 4 + 20,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def offer(example: T) -> None:
            nonlocal accepted
            if accepted < wanted and take(example):
                accepted += 1

        (offer if seed is None else hypothesis.seed(seed + round_)(offer))()
    return accepted


def routable(topic: str) -> bool:
    """Whether a broker takes ``topic`` from a publisher and routes it to the worker's
    ``stations/+/readings``: three levels, no wildcard, no control character or lone
    surrogate (Mosquitto drops the connection of a client that sends one)."""
    parts = topic.split("/")
    return (
        len(parts) == 3
        and parts[0] == "stations"
        and parts[2] == "readings"
        and parts[1].isprintable()
        and "+" not in parts[1]
        and "#" not in parts[1]
        and len(topic.encode("utf-8")) < 65536
    )


def oracle(validator: Validator, topic: str, payload: bytes, received_at: datetime) -> Outcome:
    """What the worker makes of a message it receives at ``received_at``: the validator in
    process, with SenML relative times resolved against the same instant (the parser reads
    the clock itself), and the contract of ``check_message`` asserted."""
    clock = SimpleNamespace(time=received_at.timestamp)
    with mock.patch.object(payload_parser, "time", clock):
        return check_message(validator, topic, payload, received_at=received_at)


@dataclass(frozen=True, slots=True)
class Expected:
    """A message to publish and what the pipeline must make of it."""

    topic: str
    payload: bytes
    digest: bytes  # sha256 of the payload, as the database computes it
    readings: tuple[tuple[ReadingKey, float], ...]
    dead_letter_reasons: tuple[str, ...]  # one per distinct dead letter (fingerprint)
    dead_letter_topic: str  # the topic as its dead letters keep it (quoted if unstorable)

    @classmethod
    def of(cls, topic: str, payload: bytes, outcome: Outcome) -> Expected:
        # dead_letters keeps one row per fingerprint (topic, payload, reason, detail)
        distinct = {dead.fingerprint: dead for dead in outcome.dead_letters}.values()
        return cls(
            topic,
            payload,
            hashlib.sha256(payload).digest(),
            tuple((row[:3], row[3]) for row in outcome.readings),
            tuple(sorted(str(dead.reason) for dead in distinct)),
            outcome.dead_letters[0].topic if outcome.dead_letters else topic,
        )

    def same_outcome(self, other: Expected) -> bool:
        return (self.readings, self.dead_letter_reasons) == (
            other.readings,
            other.dead_letter_reasons,
        )


class Corpus:
    """Messages to send through the pipeline, each with the outcome the oracle gives for
    every receive time from ``earliest`` to ``latest`` (checked at both ends: the future rule
    is monotonic in the receive time). A message the pipeline cannot be held to is not sent:
    ``not_sent`` counts them by why; the in-process fuzzing covers them."""

    def __init__(self, horizon: timedelta, validator: Validator | None = None) -> None:
        self.validator = validator or fuzz_validator()
        self.earliest = datetime.now(UTC)
        self.latest = self.earliest + horizon
        self.messages: list[Expected] = []
        self.not_sent: Counter[str] = Counter()
        self.failures: list[str] = []  # the oracle broke the contract on these
        self._seen: set[tuple[str, bytes]] = set()

    def offer(self, message: tuple[str, bytes]) -> bool:
        """Add ``message``; False if it is not sent (or broke the contract)."""
        topic, payload = message
        if not routable(topic):
            self.not_sent["topic not routed to stations/+/readings"] += 1
            return False
        if len(payload) > BROKER_MESSAGE_LIMIT:
            self.not_sent["over the broker's message size limit"] += 1
            return False
        sent = (topic, payload)
        if sent in self._seen:
            self.not_sent["repeated message"] += 1
            return False
        try:
            first = oracle(self.validator, topic, payload, self.earliest)
            last = oracle(self.validator, topic, payload, self.latest)
        except Exception as exc:  # an AssertionError is a broken contract, the rest a crash
            self.failures.append(f"{topic[:60]!r} {payload[:120]!r}: {type(exc).__name__} {exc}")
            return False
        expected = Expected.of(topic, payload, first)
        if not expected.same_outcome(Expected.of(topic, payload, last)):
            self.not_sent["outcome depends on the receive time"] += 1
            return False
        # dead letters are found by topic and payload: two topics that differ only beyond
        # the 300 characters a dead letter keeps would make two messages one
        kept_as = (expected.dead_letter_topic, payload)
        if kept_as != sent and kept_as in self._seen:
            self.not_sent["repeated message"] += 1
            return False
        self._seen.update((sent, kept_as))
        self.messages.append(expected)
        return True

    def add_fixed(self, payloads: Iterable[bytes], station_ids: Sequence[str]) -> None:
        for payload in payloads:
            for station_id in station_ids:
                self.offer((readings_topic(station_id), payload))


def plan_corpus(size: int, seed: int | None, horizon: timedelta, heavy: bool = True) -> Corpus:
    """``size`` messages: the fixed corpus (edge messages, hostile raw payloads and, with
    ``heavy``, the slow ones) and then messages drawn from ``messages``."""
    corpus = Corpus(horizon)
    for message in edge_messages():
        corpus.offer(message)
    # without ``heavy``, only the two at the size limit (cheap to parse)
    corpus.add_fixed(RAW_PAYLOADS + (HEAVY_PAYLOADS if heavy else HEAVY_PAYLOADS[-2:]), (AIR, LAKE))
    draw(messages, size - len(corpus.messages), corpus.offer, seed)
    return corpus


def publish_corpus(
    client: mqtt.Client, corpus: Sequence[Expected], window: int = 50
) -> dict[int, int]:
    """Publish every message at QoS 1, at most ``window`` awaiting their PUBACK (which also
    keeps paho's message ids from wrapping onto unacknowledged ones); returns the reason
    code of each message the broker refused, by its index."""
    free = threading.Semaphore(window)
    acked: list[tuple[int, int]] = []  # appended by paho's thread, read here

    def on_publish(
        client: mqtt.Client, userdata: object, mid: int, reason: object, properties: object
    ) -> None:
        acked.append((mid, getattr(reason, "value", 0)))
        free.release()

    in_flight: dict[int, int] = {}  # mid -> index
    refused: dict[int, int] = {}
    read = 0

    def take_acks() -> None:
        nonlocal read
        while read < len(acked):
            mid, code = acked[read]
            read += 1
            index = in_flight.pop(mid)
            if code >= 0x80:
                refused[index] = code

    previous = client.on_publish
    client.on_publish = on_publish
    try:
        for index, message in enumerate(corpus):
            if not free.acquire(timeout=120):
                raise AssertionError(f"no PUBACK for 120 s ({len(in_flight)} messages in flight)")
            info = client.publish(message.topic, message.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise AssertionError(
                    f"publishing message {index} failed: {mqtt.error_string(info.rc)}"
                )
            in_flight[info.mid] = index
            take_acks()
        for _ in range(window):
            if not free.acquire(timeout=120):
                raise AssertionError(f"no PUBACK for 120 s ({len(in_flight)} messages in flight)")
        take_acks()
    finally:
        client.on_publish = previous
    assert not in_flight, f"{len(in_flight)} messages never acknowledged"
    return refused


def settle(database_url: str, publisher: Publisher, stall_s: float = 60) -> None:
    """Return once the worker has committed every message published so far: a marker
    published last is stored (one worker consumes in publish order), then the tables stay
    unchanged for a second. Fails if nothing is stored for ``stall_s``. The marker goes."""
    publisher.publish(PROBE_STATION, {"ts": _iso(MARKER_TS), "pm25": 1.0}).wait_for_publish(30)

    def progress() -> tuple[int, int, int]:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM readings WHERE station_id = %s AND ts = %s),"
                " (SELECT count(*) FROM readings), (SELECT coalesce(max(id), 0) FROM dead_letters)",
                (PROBE_STATION, MARKER_TS),
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    last, since = progress(), time.monotonic()
    while not last[0]:
        time.sleep(0.25)
        now = progress()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > stall_s:
            raise AssertionError(f"nothing stored for {stall_s} s and the marker not seen")
    wait_until_stable(lambda: sum(progress()), quiet_s=1.0, what="readings and dead letters")
    with psycopg.connect(database_url) as conn:
        for table in ("readings", "readings_daily", "latest_readings", "aggregation_queue"):
            conn.execute(f"DELETE FROM {table} WHERE station_id = %s", (PROBE_STATION,))


@dataclass(slots=True)
class Accounting:
    """What the database holds after a corpus went through the pipeline, against the oracle.
    ``problems`` empty means: every message found, nothing else, nothing twice."""

    payloads: int = 0
    refused_by_broker: int = 0
    with_readings: int = 0  # messages the oracle expects to store at least one reading
    expected_readings: int = 0  # distinct keys
    stored_readings: int = 0
    expected_dead_letters: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)  # rows by reason
    storage_rejected: list[str] = field(default_factory=list)  # messages the writer refused
    lost: int = 0  # messages missing a reading or a dead letter
    duplicates: int = 0  # rows stored twice
    unexpected: int = 0  # rows no message explains
    edge_readings: tuple[int, int] = (0, 0)  # at a chunk's first/last microsecond: expected, found
    hourly_rows: int = 0
    worker_runs: int = 0
    elapsed_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def dead_letter_rows(self) -> int:
        return self.dead_letters.total()


_CHUNKS = """
SELECT d.hypertable_name, d.time_interval, c.range_start, c.range_end
FROM timescaledb_information.dimensions d
LEFT JOIN timescaledb_information.chunks c USING (hypertable_schema, hypertable_name)
WHERE d.hypertable_name = 'readings'
"""


def account(database_url: str, corpus: Corpus, refused_by_broker: dict[int, int]) -> Accounting:
    """Find every message of ``corpus`` in the database (all its expected readings stored, its
    dead letters kept with its topic and payload) and nothing else."""
    acc = Accounting(payloads=len(corpus.messages), expected_dead_letters=0)
    problems = acc.problems
    if corpus.failures:
        problems.append(f"{len(corpus.failures)} messages broke the in-process contract")
        problems.extend(corpus.failures[:5])
    with psycopg.connect(database_url) as conn:
        registry = stations_of(conn)
        stored = conn.execute(
            "SELECT station_id, parameter, ts, value, received_at FROM readings"
            " WHERE station_id <> %s",
            (PROBE_STATION,),
        ).fetchall()
        lettered = conn.execute(
            "SELECT topic, sha256(payload), reason, count(*), min(received_at), max(received_at)"
            " FROM dead_letters GROUP BY 1, 2, 3"
        ).fetchall()
        chunks = conn.execute(_CHUNKS).fetchall()
        refusals = {
            (topic, bytes(digest)): detail
            for topic, digest, detail in conn.execute(
                "SELECT topic, sha256(payload), detail FROM dead_letters WHERE reason = ANY(%s)",
                (sorted(REFUSAL_REASONS),),
            )
        }
    # the oracle's registry is the database's
    for station_id, info in FUZZ_STATIONS.items():
        if registry.get(station_id) != info:
            problems.append(f"station {station_id} registered as {registry.get(station_id)}")
    if UNKNOWN in registry:
        problems.append(f"station {UNKNOWN} is registered; the oracle takes it as unknown")

    values: dict[ReadingKey, float] = {}
    received: list[datetime] = []
    for station_id, parameter, ts, value, received_at in stored:
        key = (station_id, parameter, ts)
        acc.duplicates += key in values
        values[key] = value
        received.append(received_at)
    acc.stored_readings = len(values)
    kept: dict[tuple[str, bytes], Counter[str]] = defaultdict(Counter)
    for topic, digest, reason, rows, first, last in lettered:
        kept[(topic, bytes(digest))][reason] += rows
        acc.dead_letters[reason] += rows
        received += [first, last]

    candidates: dict[ReadingKey, set[float]] = defaultdict(set)
    lost: list[str] = []
    unexplained: list[str] = []
    for index, message in enumerate(corpus.messages):
        what = f"{message.topic[:60]!r} {message.payload[:100]!r}"
        if index in refused_by_broker:
            acc.refused_by_broker += 1
            unexplained.append(f"{what}: the broker refused it ({refused_by_broker[index]:#x})")
            continue
        acc.with_readings += bool(message.readings)
        want = Counter(message.dead_letter_reasons)
        acc.expected_dead_letters += want.total()
        stored_as = (message.dead_letter_topic, message.digest)
        got = kept.pop(stored_as, Counter())
        extra, missing = got - want, want - got
        refused = message.readings and extra.total() == 1 and set(extra) <= REFUSAL_REASONS
        if refused:
            acc.storage_rejected.append(f"{what}: {refusals.get(stored_as)}")
        elif extra:
            twice = sum(n for reason, n in extra.items() if reason in want)
            acc.duplicates += twice
            acc.unexpected += extra.total() - twice
            unexplained.append(f"{what}: dead letters {dict(extra)} beyond {dict(want)}")
        if not refused:
            for key, value in message.readings:
                candidates[key].add(value)
        if missing or (not refused and any(key not in values for key, _ in message.readings)):
            gone = [key for key, _ in message.readings if key not in values]
            lost.append(f"{what}: dead letters {dict(missing)} and readings {gone[:3]} missing")
    acc.lost = len(lost)
    acc.expected_readings = len(candidates)
    for (topic, _), reasons in kept.items():
        acc.unexpected += reasons.total()
        unexplained.append(f"dead letters {dict(reasons)} on {topic[:60]!r}: no such message")
    for key, value in values.items():
        options = candidates.get(key)
        if options is None:
            acc.unexpected += 1
            unexplained.append(f"reading {key} = {value!r} stored: no message has it")
        elif value not in options:
            unexplained.append(f"reading {key} = {value!r} stored, expected one of {options}")
    if lost:
        problems.append(f"{len(lost)} messages lost, e.g.")
        problems.extend(lost[:5])
    if unexplained:
        problems.append(f"{len(unexplained)} rows or refusals unexplained, e.g.")
        problems.extend(unexplained[:5])
    if acc.duplicates:
        problems.append(f"{acc.duplicates} rows stored twice")
    if received and not corpus.earliest <= min(received) <= max(received) <= corpus.latest:
        problems.append(
            f"received {min(received)} .. {max(received)}, outside the oracle's receive times"
            f" {corpus.earliest} .. {corpus.latest}"
        )

    # the corpus's chunk edges are the database's
    intervals = {name: interval for name, interval, _, _ in chunks}
    for name, interval in (("readings", READINGS_CHUNK),):
        if intervals.get(name) != interval:
            problems.append(
                f"{name} chunks are {intervals.get(name)}, the corpus assumes {interval}"
            )
    edges = {
        instant
        for name, _, start, end in chunks
        if name == "readings" and start is not None
        for instant in (start, end - MICROSECOND)
    }
    acc.edge_readings = (
        sum(is_chunk_edge(key[2], READINGS_CHUNK) for key in candidates),
        sum(key[2] in edges for key in values),
    )
    if acc.edge_readings[0] != acc.edge_readings[1]:
        expected, found = acc.edge_readings
        problems.append(f"readings at chunk edges: expected {expected}, found {found}")
    try:
        acc.hourly_rows = assert_rollups_match_readings(database_url)
    except AssertionError as exc:
        problems.append(str(exc)[:2000])
    return acc


def run_through_pipeline(
    database_url: str, publisher: Publisher, worker: Worker, corpus: Corpus, window: int = 50
) -> Accounting:
    """Publish ``corpus`` to the running ``worker``, wait until it has settled and account for
    every message; the worker must still run, started once."""
    started = time.perf_counter()
    refused = publish_corpus(publisher.client, corpus.messages, window)
    settle(database_url, publisher)
    elapsed = time.perf_counter() - started
    acc = account(database_url, corpus, refused)
    acc.elapsed_s = elapsed
    assert worker.process is not None
    if worker.process.poll() is not None:
        acc.problems.append(f"the ingest worker exited with {worker.process.returncode}")
    if worker.log_path is not None:
        acc.worker_runs = len(worker_totals(worker.log_path))
        if acc.worker_runs != 1:
            acc.problems.append(f"the worker log shows {acc.worker_runs} starts, not 1")
    return acc


def fuzz_registry() -> list[Station]:
    """FUZZ_STATIONS as a registry (and the probe station), for a database of one's own."""
    return [
        *(
            Station(
                station_id=info.station_id,
                name=f"fuzz {info.station_id}",
                kind=info.kind,  # type: ignore[arg-type]
                waterbody=info.waterbody,  # type: ignore[arg-type]
                timezone=info.timezone.key,
                active=info.active,
            )
            for info in FUZZ_STATIONS.values()
        ),
        Station(station_id=PROBE_STATION, name="probe"),
    ]


def summary(acc: Accounting, corpus: Corpus) -> str:
    """The figures of a run through the pipeline, one per line."""

    def row(label: str, n: int, note: str = "") -> str:
        return f"{label:<30}{n:>10,}" + (f"  {note}" if note else "")

    refused = len(acc.storage_rejected)
    rate = acc.payloads / acc.elapsed_s if acc.elapsed_s else 0.0
    lines = [
        row("payloads through the pipeline", acc.payloads),
        row("  refused by the broker", acc.refused_by_broker),
        row("  with readings to store", acc.with_readings),
        row("readings stored", acc.stored_readings, f"(expected {acc.expected_readings:,})"),
        row(
            "  at a chunk's first/last µs",
            acc.edge_readings[1],
            f"(expected {acc.edge_readings[0]:,})",
        ),
        row(
            "dead letters",
            acc.dead_letter_rows,
            f"(expected {acc.expected_dead_letters + refused:,})",
        ),
        *(row(f"  {reason}", n) for reason, n in acc.dead_letters.most_common()),
        row("storage_rejected messages", refused),
        *(f"  {line}" for line in acc.storage_rejected[:20]),
        row("lost", acc.lost),
        row("duplicates", acc.duplicates),
        row("unexpected rows", acc.unexpected),
        row(
            "hourly rollup rows",
            acc.hourly_rows,
            "(equal to a recomputation)" if acc.hourly_rows else "",
        ),
        row("worker starts", acc.worker_runs),
        row("not sent (in-process only)", corpus.not_sent.total()),
        *(row(f"  {why}", n) for why, n in corpus.not_sent.most_common()),
        f"{'elapsed, publish → settled':<30}{acc.elapsed_s:>10.1f} s  ({rate:,.0f} payloads/s)",
    ]
    lines += [f"PROBLEM {problem}" for problem in acc.problems]
    return "\n".join(lines)
