"""Defence in depth at ingest: station checks, size limits at broker and parser, hostile
station ids, parameter names and units, and no SQL built from values."""

from __future__ import annotations

import ast
import json
import re
import socket
import struct
from datetime import UTC, datetime

import psycopg
import pytest

from core import PROJECT_ROOT
from ingest.validate import Outcome, StationDirectory, Validator
from storage.writer import prepare_connection, write_batch
from tests.fuzz_support import FUZZ_STATIONS
from tests.support import count, wait_for, wait_until_consuming

AIR = "110000-A001"
TS = "2026-03-01T08:00:00+08:00"
RECEIVED = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
LIMIT = 256 * 1024  # Settings.max_payload_bytes and the broker's message_size_limit
HOSTILE = [
    "'; DROP TABLE readings; --",
    "$1",
    "%s",
    "%(lo)s",
    "{}",
    "{0}",
    "../../etc/passwd",
    "pm25\x00",
    "ｐｍ２５",  # fullwidth lookalike of pm25
    "рm25",  # Cyrillic р
    "pm25\u200b",
    "x" * 10_000,
]
# Levels MQTT allows in a topic name (no NUL, no '/', '+' or '#')
HOSTILE_TOPIC_IDS = [h for h in HOSTILE if "\x00" not in h and "/" not in h]


def validate(topic: str, payload: bytes | object, **options: object) -> Outcome:
    validator = Validator(StationDirectory(lambda: dict(FUZZ_STATIONS)), **options)  # type: ignore[arg-type]
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    outcome = Outcome()
    validator.add_message(outcome, topic, body, RECEIVED)
    return outcome


def reasons(outcome: Outcome) -> list[str]:
    return [dead.reason for dead in outcome.dead_letters]


def _json(document: object) -> str:
    return json.dumps(document)


def hostile_messages() -> list[tuple[str, bytes]]:
    """Hostile values as topic ids, payload station ids, parameter names and units."""
    messages: list[tuple[str, bytes]] = []
    for value in HOSTILE:
        messages += [
            (f"stations/{value}/readings", _json({"ts": TS, "pm25": 1}).encode()),
            (
                f"stations/{AIR}/readings",
                _json({"ts": TS, "station_id": value, "pm25": 1}).encode(),
            ),
            (f"stations/{AIR}/readings", _json({"ts": TS, value: 1}).encode()),
            (f"stations/{AIR}/readings", _json({"readings": [{"ts": TS, value: 1}]}).encode()),
            (f"stations/{AIR}/readings", _json([{"n": value, "v": 1, "t": 1772323200}]).encode()),
            (
                f"stations/{AIR}/readings",
                _json([{"n": "pm25", "u": value, "v": 1, "t": 1772323200}]).encode(),
            ),
            (
                f"stations/{AIR}/readings",
                _json([{"bn": f"urn:dev:{value}:", "n": "pm25", "v": 1, "t": 1772323200}]).encode(),
            ),
        ]
    return messages


# --- the topic's station -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("station_id", "payload", "reason"),
    [
        ("330000-X999", {"ts": TS, "pm25": 1}, "unknown_station"),
        ("999999-OFF", {"ts": TS, "pm25": 1}, "inactive_station"),
        (AIR, {"ts": TS, "station_id": "110000-A002", "pm25": 1}, "station_mismatch"),
        (AIR, {"readings": [{"ts": TS, "station": "110000-A002", "pm25": 1}]}, "station_mismatch"),
        (AIR, [{"bn": "urn:dev:110000-A002:", "n": "pm25", "v": 1}], "station_mismatch"),
    ],
    ids=["unknown", "inactive", "payload-station", "batch-station", "senml-name"],
)
def test_topic_station_must_be_an_active_station_named_alike_in_the_payload(
    station_id, payload, reason
):
    outcome = validate(f"stations/{station_id}/readings", payload)
    assert outcome.readings == []
    assert reasons(outcome) == [reason]
    assert outcome.dead_letters[0].station_id == station_id


# --- size: broker and parser -------------------------------------------------------------


def padded_reading(size: int) -> bytes:
    """A valid reading padded with JSON whitespace to exactly ``size`` bytes."""
    body = json.dumps({"ts": TS, "pm25": 12.5}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_parser_accepts_exactly_the_limit_and_dead_letters_one_byte_more():
    at_limit = validate(f"stations/{AIR}/readings", padded_reading(LIMIT))
    beyond = validate(f"stations/{AIR}/readings", padded_reading(LIMIT + 1))
    assert [row[1:4:2] for row in at_limit.readings] == [("pm25", 12.5)]
    assert at_limit.dead_letters == []
    assert beyond.readings == [] and reasons(beyond) == ["payload_too_large"]
    assert str(LIMIT + 1) in beyond.dead_letters[0].detail


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = n >> 7, n & 0x7F
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _varint(len(body)) + body


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    kind = sock.recv(1)[0]
    length, shift = 0, 0
    while True:
        byte = sock.recv(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return kind, body


def publish_qos1_v5(port: int, topic: str, payload: bytes) -> int:
    """Publish once over a bare MQTT v5 connection; the PUBACK's reason code (0 = success).
    Bare, because paho 2.x drops the connection on a PUBACK with a failure code and resends
    the message forever."""
    client_id = b"hostile-publisher"
    connect = (
        b"\x00\x04MQTT\x05\x02\x00\x3c\x00"  # v5, clean start, keepalive 60, no properties
        + struct.pack("!H", len(client_id))
        + client_id
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_packet(0x10, connect))
        kind, body = _read_packet(sock)
        assert kind == 0x20 and body[1] == 0, "CONNACK refused"
        name = topic.encode()
        publish = struct.pack("!H", len(name)) + name + b"\x00\x01" + b"\x00" + payload
        sock.sendall(_packet(0x32, publish))  # PUBLISH, QoS 1, packet id 1
        kind, body = _read_packet(sock)
        assert kind == 0x40 and body[:2] == b"\x00\x01", (kind, body)
        code = body[2] if len(body) > 2 else 0  # absent reason code = success (MQTT 5 §3.4.2.1)
        sock.sendall(b"\xe0\x00")  # DISCONNECT
        return code


def test_broker_refuses_a_300_kib_payload_and_passes_one_at_the_limit(
    broker, make_worker, publisher, database_url
):
    make_worker().start()
    wait_until_consuming(database_url, publisher)
    topic = f"stations/{AIR}/readings"
    # Mosquitto 2.0.11 drops it and answers PUBACK 0x95 "Packet too large" (log: "Dropped too
    # large PUBLISH"); it is not delivered, so the worker never sees it
    assert publish_qos1_v5(broker.port, topic, padded_reading(300 * 1024)) == 0x95
    assert publish_qos1_v5(broker.port, topic, padded_reading(LIMIT + 1)) == 0x95
    assert publish_qos1_v5(broker.port, topic, padded_reading(LIMIT)) == 0
    wait_for(
        lambda: count(database_url, "SELECT count(*) FROM readings WHERE station_id = %s", (AIR,)),
        what="the reading at the limit",
    )
    publisher.publish_all([(AIR, {"ts": "2026-03-01T09:00:00+08:00", "pm25": 1})])  # a marker
    wait_for(
        lambda: (
            count(database_url, "SELECT count(*) FROM readings WHERE station_id = %s", (AIR,)) == 2
        ),
        what="the marker behind it",
    )
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT value FROM readings WHERE ts = %s", (TS,)).fetchall()
    assert stored == [(12.5,)]


# --- hostile values ----------------------------------------------------------------------


def test_hostile_values_end_as_dead_letters_and_reach_no_sql(database_url):
    messages = hostile_messages()
    outcomes = [validate(topic, payload) for topic, payload in messages]
    for (topic, payload), outcome in zip(messages, outcomes, strict=True):
        assert outcome.readings == [], f"{topic[:60]!r} {payload[:80]!r} stored a reading"
        assert outcome.dead_letters and all(d.reason and d.detail for d in outcome.dead_letters)
    dead_letters = [dead for outcome in outcomes for dead in outcome.dead_letters]
    with psycopg.connect(database_url) as conn:
        prepare_connection(conn)
        stations_before = count(database_url, "SELECT count(*) FROM stations")
        result = write_batch(conn, [], dead_letters)
    assert result.dead_letters == len(dead_letters)
    assert count(database_url, "SELECT count(*) FROM readings") == 0
    assert count(database_url, "SELECT count(*) FROM stations") == stations_before
    assert count(database_url, "SELECT count(*) FROM dead_letters") == len(
        {dead.fingerprint for dead in dead_letters}
    )
    # the hostile station id is in the dead letter's topic as text, never run
    assert (
        count(
            database_url,
            "SELECT count(*) FROM dead_letters WHERE topic = %s",
            ("stations/'; DROP TABLE readings; --/readings",),
        )
        == 1
    )


def test_hostile_topics_and_values_through_the_broker_end_as_dead_letters(
    make_worker, publisher, database_url
):
    make_worker().start()
    wait_until_consuming(database_url, publisher)
    messages = [
        (topic, payload)
        for topic, payload in hostile_messages()
        if topic.split("/")[1] in HOSTILE_TOPIC_IDS or topic == f"stations/{AIR}/readings"
    ]
    infos = [publisher.client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(30)
    # as the validator keeps the topic: a 10 KB one is quoted and cut
    expected = {
        (validate(topic, payload).dead_letters[0].topic, payload) for topic, payload in messages
    }
    wait_for(
        lambda: (
            count(database_url, "SELECT count(DISTINCT (topic, payload)) FROM dead_letters")
            >= len(expected)
        ),
        what="a dead letter for every hostile message",
    )
    with psycopg.connect(database_url) as conn:
        letters = conn.execute("SELECT topic, payload, reason, detail FROM dead_letters").fetchall()
    assert {(topic, bytes(payload)) for topic, payload, _, _ in letters} == expected
    assert all(reason and detail for _, _, reason, detail in letters)
    assert count(database_url, "SELECT count(*) FROM readings") == 0
    assert (
        count(database_url, "SELECT count(*) FROM stations WHERE station_id LIKE %s", ("%DROP%",))
        == 0
    )


# --- no SQL built from values ------------------------------------------------------------

SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|VALUES|FROM|SET|TRUNCATE|DROP)\b")
CONSTANT_NAME = re.compile(r"^_?[A-Z][A-Z0-9_]*$")
SOURCE_FOLDERS = ("storage", "ingest", "api", "alerts")


def _is_constant_fragment(node: ast.expr, loop_constants: set[str]) -> bool:
    """A literal, a module constant (UPPER_CASE), psycopg sql composition, a loop variable
    over range(literals), or a constant's .format() with such arguments."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return bool(CONSTANT_NAME.match(node.id)) or node.id in loop_constants
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if isinstance(node.func.value, ast.Name) and node.func.value.id == "sql":
            return True  # sql.SQL / sql.Identifier / sql.Literal compose safely
        if node.func.attr in ("format", "join"):
            return _is_constant_fragment(node.func.value, loop_constants) and all(
                _is_constant_fragment(arg, loop_constants)
                for arg in [*node.args, *(k.value for k in node.keywords)]
            )
    return False


def composed_sql_names(source: str) -> set[str]:
    """Module names assigned ``sql.SQL(...)``: their .format() is psycopg composition."""
    return {
        target.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func) in ("sql.SQL", "SQL")
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def sql_built_from_values(
    source: str, composed: frozenset[str] = frozenset()
) -> list[tuple[int, str]]:
    """(line, code) of SQL text made with f-strings, % or .format from non-constant values;
    ``composed`` names psycopg sql.SQL objects defined elsewhere (imported)."""
    tree = ast.parse(source)
    loop_constants = {
        gen.target.id
        for gen in ast.walk(tree)
        if isinstance(gen, ast.comprehension | ast.For)
        and isinstance(gen.target, ast.Name)
        and isinstance(gen.iter, ast.Call)
        and isinstance(gen.iter.func, ast.Name)
        and gen.iter.func.id == "range"
        and all(isinstance(arg, ast.Constant) for arg in gen.iter.args)
    }
    # sql.SQL("... {x} ...").format(...) is psycopg composition: its values are quoted
    composed = composed | composed_sql_names(source)
    # module constants holding SQL text, e.g. _STATION_DAYS = """SELECT ... {where}"""
    sql_constants = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant | ast.JoinedStr)
        and SQL_WORDS.search(ast.unparse(node.value))
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def sql_text(node: ast.expr) -> bool:
        return isinstance(node, ast.Constant) and bool(SQL_WORDS.search(str(node.value)))

    found = []
    for node in ast.walk(tree):
        bad = False
        if isinstance(node, ast.JoinedStr):
            text = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
            bad = bool(SQL_WORDS.search(text)) and not all(
                _is_constant_fragment(v.value, loop_constants)
                for v in node.values
                if isinstance(v, ast.FormattedValue)
            )
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
            bad = (sql_text(node.left) or sql_text(node.right)) and not (
                _is_constant_fragment(node.left, loop_constants)
                and _is_constant_fragment(node.right, loop_constants)
            )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
        ):
            target = node.func.value
            is_sql = sql_text(target) or (
                isinstance(target, ast.Name) and target.id in sql_constants
            )
            psycopg_composition = isinstance(target, ast.Name) and target.id in composed
            bad = (
                is_sql
                and not psycopg_composition
                and not _is_constant_fragment(node, loop_constants)
            )
        if bad:
            found.append((getattr(node, "lineno", 0), ast.unparse(node)[:120]))
    return found


@pytest.mark.parametrize(
    "code",
    [
        "conn.execute(f\"SELECT * FROM readings WHERE station_id = '{station_id}'\")",
        "conn.execute(\"DELETE FROM readings WHERE parameter = '%s'\" % parameter)",
        'conn.execute("SELECT * FROM stations WHERE unit = {}".format(unit))',
        'conn.execute("SELECT * FROM stations WHERE id = " + station_id)',
        'Q = """SELECT * FROM t WHERE {w}"""\nconn.execute(Q.format(w=station_id))',
        'query = f"SELECT {_COLUMNS} FROM t WHERE {where}"',
    ],
)
def test_sql_check_flags_values_formatted_into_sql(code):
    assert sql_built_from_values(code)


@pytest.mark.parametrize(
    "code",
    [
        'conn.execute(f"SELECT {_COLUMNS} FROM stations WHERE station_id = %s", (station_id,))',
        'X = ", ".join(f"count(*) FILTER (WHERE m = {m})" for m in range(1, 13))',
        "conn.execute(f\"SELECT {_DAYS.format(where='d.id = %(id)s')} FROM d\", params)",
        'Q = sql.SQL("SELECT {c} FROM t WHERE {w}")\nq = Q.format(c=cols, w=conditions)',
        'conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))',
        'log.info(f"stored {n} readings from {station_id}")',
        'TOPIC = "stations/{station_id}/readings"\nt = TOPIC.format(station_id=station_id)',
    ],
)
def test_sql_check_allows_constant_composition_and_parameters(code):
    assert sql_built_from_values(code) == []


def test_no_sql_is_built_from_values_in_storage_ingest_api_alerts():
    sources = {
        path: path.read_text(encoding="utf-8")
        for folder in SOURCE_FOLDERS
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
    }
    composed = frozenset(name for source in sources.values() for name in composed_sql_names(source))
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{line}: {code}"
        for path, source in sources.items()
        for line, code in sql_built_from_values(source, composed)
    ]
    assert offenders == []
