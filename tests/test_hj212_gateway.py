"""The HJ 212-2017 gateway on the real services: a station uploads hourly data over TCP with
its MN and password; readings land through the one intake, with the station's data flags,
exactly once, and the data response comes only after the commit."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from core.hj212_secret import hash_password, new_password
from standards import hj212
from storage.hj212 import issue, set_mn
from tests.support import ModuleProcess, count, settle, wait_for, wait_until_consuming

AIR = "110000-A001"
MQTT_TWIN = "110000-A002"
WATER = "W-YANGTZE-01"


class Gateway(ModuleProcess):
    module = "ingest.hj212"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture()
def credentials(database_url: str) -> dict[str, tuple[str, str]]:
    """MN and password of the air and the water station."""
    found = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for station_id, mn in ((AIR, "AIR0001"), (WATER, "WAT0001")):
            password = new_password()
            set_mn(conn, station_id, mn)
            issue(conn, station_id, hash_password(password), replace=False)
            found[station_id] = (mn, password)
    return found


@pytest.fixture()
def gateway(database_url: str, tmp_path: Path) -> Iterator[tuple[Gateway, int]]:
    port = free_port()
    process = start_gateway(database_url, port, tmp_path)
    yield process, port
    process.stop_quietly()


def start_gateway(database_url: str, port: int, tmp_path: Path) -> Gateway:
    process = Gateway(
        {
            **os.environ,
            "AIRWATER_DATABASE_URL": database_url,
            "AIRWATER_HJ212_HOST": "127.0.0.1",
            "AIRWATER_HJ212_PORT": str(port),
        },
        tmp_path / "hj212.log",
    ).start()

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return False
        return True

    wait_for(listening, timeout=30, what="the gateway listening")
    return process


def upload(
    mn: str,
    password: str,
    data_time: datetime,
    values: dict[str, tuple[float, str]],
    qn: str = "20260410080000001",
    st: str = hj212.AMBIENT_AIR,
    cn: str = hj212.HOURLY_DATA,
    flag: int = 5,
) -> bytes:
    """An upload frame: values by factor code as (value, data flag)."""
    items = ";".join(f"{code}-Avg={v:g},{code}-Flag={f}" for code, (v, f) in values.items())
    cp = f"DataTime={data_time:%Y%m%d%H%M%S};{items}"
    return hj212.encode_frame(
        f"QN={qn};ST={st};CN={cn};PW={password};MN={mn};Flag={flag};CP=&&{cp}&&"
    )


def send(port: int, frame: bytes, wait_reply: bool = True, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        client.sendall(frame)
        if not wait_reply:
            return b""
        return read_frame(client)


def read_frame(client: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = client.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def stored(database_url: str, station_id: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT parameter, ts, value, flag, flag_reason FROM readings"
            " WHERE station_id = %s ORDER BY parameter, ts",
            (station_id,),
        ).fetchall()


BEIJING_8 = datetime(2026, 4, 10, 8, 0)  # DataTime: the station's local time


def test_hourly_upload_is_stored_with_its_flags_and_answered_after_the_commit(
    database_url, credentials, gateway
):
    _, port = gateway
    mn, password = credentials[AIR]
    values = {"a34004": (35.2, "N"), "a34002": (61.0, "N"), "a21026": (500.0, "M")}
    reply = send(port, upload(mn, password, BEIJING_8, values))
    # the reply is the data response of this upload, and the readings are already committed
    segment = hj212.FrameReader().feed(reply)[0].segment
    assert segment is not None
    answered = hj212.parse_segment(segment)
    assert (answered.cn, answered.qn, answered.mn) == ("9014", "20260410080000001", mn)
    at = datetime(2026, 4, 10, 0, 0, tzinfo=UTC)
    assert stored(database_url, AIR) == [
        ("pm10", at, 61.0, "valid", None),
        ("pm25", at, 35.2, "valid", None),
        ("so2", at, 500.0, "invalid", "station:M"),
    ]
    # the logger sends it again after a timeout: nothing is stored twice
    assert send(port, upload(mn, password, BEIJING_8, values)) == reply
    assert len(stored(database_url, AIR)) == 3


def test_water_upload_lands_in_the_stored_units(database_url, credentials, gateway):
    _, port = gateway
    mn, password = credentials[WATER]
    values = {"w01001": (7.6, "N"), "w01009": (8.1, "N"), "w21003": (0.42, "N")}
    send(port, upload(mn, password, BEIJING_8, values, st=hj212.SURFACE_WATER))
    found = {(p, v) for p, _, v, _, _ in stored(database_url, WATER)}
    assert {("ph", 7.6), ("do", 8.1), ("nh3_n", 0.42)} <= found
    assert any(p == "water_class" for p, _ in found)  # derived by the one intake


@pytest.mark.parametrize("case", ["wrong_password", "unknown_mn", "bad_crc", "another_system"])
def test_refused_uploads_store_nothing_and_the_connection_goes_on(
    database_url, credentials, gateway, case
):
    _, port = gateway
    mn, password = credentials[AIR]
    good = upload(mn, password, BEIJING_8, {"a34004": (35.2, "N")}, qn="1")
    bad = {
        "wrong_password": upload(mn, "WRONGPASSWORD000", BEIJING_8, {"a34004": (99.0, "N")}),
        "unknown_mn": upload("NOBODY", password, BEIJING_8, {"a34004": (99.0, "N")}),
        "bad_crc": upload(mn, password, BEIJING_8, {"a34004": (99.0, "N")})[:-6] + b"0000\r\n",
        "another_system": upload(
            mn, password, BEIJING_8, {"a34004": (99.0, "N")}, st=hj212.SURFACE_WATER
        ),
    }[case]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(bad + good)  # one connection: the bad frame first
        replies = b""
        while replies.count(b"\r\n") < (2 if case == "another_system" else 1):
            replies += client.recv(4096)
    assert [(p, v) for p, _, v, _, _ in stored(database_url, AIR)] == [("pm25", 35.2)]
    letters = count(database_url, "SELECT count(*) FROM dead_letters WHERE source = 'hj212'")
    # an authenticated upload for the wrong system is a dead letter; the others are not stored
    assert letters == (1 if case == "another_system" else 0)


def test_upload_over_hj212_equals_the_same_over_mqtt(
    database_url, credentials, gateway, make_worker, publisher
):
    """A station over HJ 212 and one over MQTT with the same values give the same readings
    and the same daily values."""
    _, port = gateway
    make_worker().start()
    wait_until_consuming(database_url, publisher)
    mn, password = credentials[AIR]
    start = datetime(2026, 4, 10, 0, 0)
    messages = []
    for h in range(24):
        value = 20.0 + h
        send(port, upload(mn, password, start + timedelta(hours=h), {"a34004": (value, "N")}))
        ts = (start + timedelta(hours=h)).isoformat() + "+08:00"
        messages.append((MQTT_TWIN, {"ts": ts, "pm25": value}))
    publisher.publish_all(messages)
    wait_for(lambda: len(stored(database_url, MQTT_TWIN)) == 24, timeout=60, what="MQTT readings")
    assert [r[1:] for r in stored(database_url, AIR)] == [
        r[1:] for r in stored(database_url, MQTT_TWIN)
    ]
    settle(database_url)
    with psycopg.connect(database_url) as conn:
        days = conn.execute(
            "SELECT station_id, day, mean, valid_hours, valid FROM readings_daily"
            " WHERE parameter = 'pm25' ORDER BY station_id"
        ).fetchall()
    assert [d[1:] for d in days if d[0] == AIR] == [d[1:] for d in days if d[0] == MQTT_TWIN]
    assert len(days) == 2


def test_gateway_killed_mid_stream_loses_nothing_acknowledged_and_doubles_nothing(
    database_url, credentials, tmp_path
):
    """kill -9 while a logger's 48 hourly uploads stream in on one connection: every upload
    that got its data response is stored; the logger then sends every unanswered one again
    (and, as loggers do, some answered ones): each hour is stored once."""
    port = free_port()
    process = start_gateway(database_url, port, tmp_path)
    mn, password = credentials[AIR]
    start = datetime(2026, 4, 1, 0, 0)
    frames = [
        upload(mn, password, start + timedelta(hours=h), {"a34004": (float(h), "N")}, qn=str(h))
        for h in range(48)
    ]
    answered: set[int] = set()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"".join(frames))  # all in flight at once
            reader = hj212.FrameReader()
            while len(answered) < 10:
                for result in reader.feed(client.recv(4096)):
                    assert result.segment is not None
                    answered.add(int(hj212.parse_segment(result.segment).qn))
            process.kill()  # SIGKILL, uploads still being written
        stored_after_kill = {v for _, _, v, _, _ in stored(database_url, AIR)}
        assert {float(h) for h in answered} <= stored_after_kill
        assert len(stored_after_kill) < 48  # killed before the end
        process = start_gateway(database_url, port, tmp_path)
        for h, frame in enumerate(frames):
            if h not in answered or h % 5 == 0:
                assert send(port, frame), f"upload {h} unanswered after the restart"
    finally:
        process.stop_quietly()
    values = [v for _, _, v, _, _ in stored(database_url, AIR)]
    assert sorted(values) == [float(h) for h in range(48)]


def test_a_frame_trickled_byte_by_byte_is_stored_and_answered(database_url, credentials, gateway):
    _, port = gateway
    mn, password = credentials[AIR]
    frame = upload(mn, password, BEIJING_8, {"a34004": (41.0, "N")})
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        for i in range(len(frame)):
            client.sendall(frame[i : i + 1])
            time.sleep(1.5 / len(frame))  # the whole frame over 1.5 s
        assert b"CN=9014" in read_frame(client)
    assert [(p, v) for p, _, v, _, _ in stored(database_url, AIR)] == [("pm25", 41.0)]


def test_unknown_command_is_answered_as_the_standard_prescribes(database_url, credentials, gateway):
    _, port = gateway
    mn, password = credentials[AIR]
    reply = send(port, upload(mn, password, BEIJING_8, {"a34004": (41.0, "N")}, cn="3020"))
    segment = hj212.FrameReader().feed(reply)[0].segment
    assert segment is not None
    answered = hj212.parse_segment(segment)
    assert answered.cn == "9011" and ("QnRtn", "8") in answered.cp_fields
    assert stored(database_url, AIR) == []


def test_authenticated_but_unusable_upload_is_a_dead_letter(database_url, credentials, gateway):
    _, port = gateway
    mn, password = credentials[AIR]
    segment = f"QN=1;ST=22;CN=2061;PW={password};MN={mn};Flag=5;CP=&&DataTime=2026041X&&"
    send(port, hj212.encode_frame(segment), wait_reply=False)
    wait_for(
        lambda: count(database_url, "SELECT count(*) FROM dead_letters WHERE source = 'hj212'"),
        timeout=10,
        what="the dead letter",
    )
    with psycopg.connect(database_url) as conn:
        letter = conn.execute(
            "SELECT station_id, reason, topic FROM dead_letters WHERE source = 'hj212'"
        ).fetchone()
    assert letter == (AIR, "bad_datatime", f"hj212/{mn}")
    assert stored(database_url, AIR) == []


def test_malformed_frames_store_nothing_and_the_gateway_serves_on(
    database_url, credentials, gateway
):
    """A corpus of malformed frames on one connection (the last one cut short by the sender
    closing); then a good upload on another connection is stored and answered."""
    process, port = gateway
    mn, password = credentials[AIR]
    good = upload(mn, password, BEIJING_8, {"a34004": (35.0, "N")}, qn="999")
    forged = upload(mn, password, BEIJING_8, {"a34004": (99.0, "N")})
    corpus = [
        b"##",  # a header alone
        b"##abcd" + forged[6:],  # length not digits
        b"##0010QN=1;ST=22\r\n",  # length disagrees with the frame
        forged[:-6] + b"ZZZZ\r\n",  # CRC not hex
        forged[:-2] + b"\n\n",  # no CR LF
        b"##9999" + b"x" * 9999 + b"0000\r\n",  # the largest frame, garbage
        b"\x00\xff" * 500,  # binary noise without a header
        hj212.encode_frame(f"QN=1;ST=22;CN=2061;PW={password};MN={mn};Flag=4"),  # no CP
        hj212.encode_frame("QN=1;ST=22;CN=2061;PW=x;MN=;Flag=4;CP=&&&&"),  # empty MN
        hj212.encode_frame(
            f"QN=1;ST=22;CN=2061;PW={password};MN={mn};Flag=4;"
            "CP=&&DataTime=20260410080000;a34004-Avg=1e400,a34004-Flag=N&&"
        ),  # a value that is not a finite number
        upload(mn, password, BEIJING_8, {"a34004": (-5.0, "N")}, flag=4),  # negative
        upload(mn, password, datetime(2099, 1, 1), {"a34004": (5.0, "N")}, flag=4),  # future
        forged[:40],  # truncated: the sender goes away mid-frame
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"".join(corpus))
    assert b"QN=999" in send(port, good)
    assert process.process is not None and process.process.poll() is None
    assert [(p, v) for p, _, v, _, _ in stored(database_url, AIR)] == [("pm25", 35.0)]
    with psycopg.connect(database_url) as conn:
        reasons = {
            r[0] for r in conn.execute("SELECT reason FROM dead_letters WHERE source = 'hj212'")
        }
    assert reasons <= {"negative_value", "timestamp_future", "bad_field", "bad_cp", "missing_field"}
    assert {"negative_value", "timestamp_future"} <= reasons


def test_a_thousand_idle_connections_do_not_hold_up_an_upload(database_url, credentials, tmp_path):
    port = free_port()
    process = Gateway(
        {
            **os.environ,
            "AIRWATER_DATABASE_URL": database_url,
            "AIRWATER_HJ212_HOST": "127.0.0.1",
            "AIRWATER_HJ212_PORT": str(port),
            "AIRWATER_HJ212_IDLE_S": "3",
        },
        tmp_path / "hj212.log",
    ).start()
    idle: list[socket.socket] = []
    try:
        wait_for(lambda: _connects(port), timeout=30, what="the gateway listening")
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(1000)]
        mn, password = credentials[AIR]
        started = time.monotonic()
        assert b"CN=9014" in send(port, upload(mn, password, BEIJING_8, {"a34004": (7.0, "N")}))
        assert time.monotonic() - started < 5
        # silent connections are closed after AIRWATER_HJ212_IDLE_S
        idle[0].settimeout(10)
        assert idle[0].recv(1) == b""
    finally:
        for connection in idle:
            connection.close()
        process.stop_quietly()
    assert [(p, v) for p, _, v, _, _ in stored(database_url, AIR)] == [("pm25", 7.0)]


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True
