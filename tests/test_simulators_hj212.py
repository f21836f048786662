"""Simulated stations that speak HJ 212-2017: an air station and a water section send their
hourly uploads to the real gateway with their MN and password, and the readings land with the
means of what the same stations would have published over MQTT in that hour; an upload left
unanswered is sent again, and a gateway that is not there yet is reached once it is."""

from __future__ import annotations

import asyncio
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from core.hj212_secret import hash_password, new_password
from simulators.hj212 import Hj212Identity, Hj212Runner, load_hj212_credentials
from simulators.model import station_values
from simulators.network import build_network
from standards import hj212
from storage.hj212 import issue, set_mn
from storage.stations import upsert_stations
from tests.test_hj212_gateway import free_port, start_gateway

NETWORK = build_network(cities=1, stations_per_city=2, sections=1)
AIR = next(s for s in NETWORK if s.station_id == "110000-A002")
WATER = next(s for s in NETWORK if s.kind == "surface_water")  # reports its items
HOUR = datetime(2026, 4, 10, 5, 0, tzinfo=UTC)  # 13:00-14:00 in Beijing
INTERVAL_S = 60


def identities(database_url: str) -> dict[str, Hj212Identity]:
    """The network registered; the air station and the section given an MN and a password."""
    found = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        upsert_stations(conn, NETWORK)
        for station, mn in ((AIR, "SIMAIR0002"), (WATER, "SIMWAT0001")):
            password = new_password()
            set_mn(conn, station.station_id, mn)
            issue(conn, station.station_id, hash_password(password), replace=False)
            found[station.station_id] = Hj212Identity(mn, password)
    return found


def stored(database_url: str, station_id: str) -> dict[tuple[str, datetime], float]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT parameter, ts, value FROM readings WHERE station_id = %s AND flag = 'valid'",
            (station_id,),
        ).fetchall()
    return {(p, ts): v for p, ts, v in rows}


def mqtt_hour_means(station_id: str, hour: datetime) -> dict[str, float]:
    """What the MQTT path stores for the hour: the station's live readings, one a minute
    from the top of the hour, averaged."""
    station = next(s for s in NETWORK if s.station_id == station_id)
    readings = [station_values(station, hour + timedelta(minutes=m)) for m in range(60)]
    return {p: statistics.fmean(r[p] for r in readings) for p in readings[0]}


def test_hourly_uploads_land_with_the_hour_means_of_the_mqtt_readings(database_url, tmp_path):
    credentials = identities(database_url)
    port = free_port()
    gateway = start_gateway(database_url, port, tmp_path)
    try:
        runner = Hj212Runner(NETWORK, credentials, "127.0.0.1", port, interval_s=INTERVAL_S)
        assert sorted(runner.loggers) == sorted([AIR.station_id, WATER.station_id])

        async def two_hours() -> list[int]:
            try:
                return [await runner.send_hour(h) for h in (HOUR, HOUR + timedelta(hours=1))]
            finally:
                await runner.close()

        assert asyncio.run(two_hours()) == [0, 0]  # every upload answered
    finally:
        gateway.stop_quietly()
    assert runner.stats.sent["hourly"] == 4
    assert runner.stats.connects == 2  # one connection per station, kept across hours
    for station_id in credentials:
        readings = stored(database_url, station_id)
        for hour in (HOUR, HOUR + timedelta(hours=1)):
            expected = mqtt_hour_means(station_id, hour)
            got = {p: readings.get((p, hour)) for p in expected}
            assert got == pytest.approx(expected, abs=1e-4), station_id
    assert len(stored(database_url, AIR.station_id)) == 12  # 6 items, 2 hours, nothing else


async def _silent_then_answering(answered: list[str]) -> tuple[asyncio.Server, int]:
    """A stand-in gateway that leaves the first upload unanswered, then answers."""
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = hj212.FrameReader()
        try:
            while data := await reader.read(4096):
                for result in frames.feed(data):
                    assert result.segment is not None
                    upload = hj212.parse_segment(result.segment)
                    seen.append(upload.qn)
                    if len(seen) > 1:
                        answered.append(upload.qn)
                        reply = hj212.data_response(upload.qn, upload.st, upload.mn, upload.pw)
                        writer.write(hj212.encode_frame(reply))
                        await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


def test_an_unanswered_upload_is_sent_again_until_answered():
    answered: list[str] = []
    credentials = {AIR.station_id: Hj212Identity("SIMAIR0002", "PW12345678")}

    async def scenario() -> int:
        server, port = await _silent_then_answering(answered)
        runner = Hj212Runner([AIR], credentials, "127.0.0.1", port, reply_timeout_s=0.5)
        try:
            left = await runner.send_hour(HOUR)
        finally:
            await runner.close()
            server.close()
            await server.wait_closed()
        assert runner.stats.sent == {"hourly": 1, "resent": 1}
        return left

    assert asyncio.run(scenario()) == 0
    assert len(answered) == 1  # the same upload (same QN) the second time


def test_a_gateway_that_comes_up_late_still_gets_the_hour(database_url, tmp_path):
    credentials = identities(database_url)
    port = free_port()

    async def scenario() -> int:
        runner = Hj212Runner([AIR], credentials, "127.0.0.1", port, interval_s=INTERVAL_S)
        sending = asyncio.create_task(runner.send_hour(HOUR))
        await asyncio.sleep(1.5)  # connection refused meanwhile: backing off
        assert not sending.done()
        gateway = await asyncio.to_thread(start_gateway, database_url, port, tmp_path)
        try:
            return await asyncio.wait_for(sending, timeout=15)
        finally:
            await runner.close()
            gateway.stop_quietly()

    assert asyncio.run(scenario()) == 0
    assert stored(database_url, AIR.station_id)[("pm25", HOUR)] == pytest.approx(
        mqtt_hour_means(AIR.station_id, HOUR)["pm25"], abs=1e-4
    )


def test_credentials_file_gives_each_station_its_mn_and_password(tmp_path: Path):
    path = tmp_path / "hj212.json"
    path.write_text('{"110000-A002": {"mn": "SIMAIR0002", "password": "ABC"}}')
    assert load_hj212_credentials(path) == {"110000-A002": Hj212Identity("SIMAIR0002", "ABC")}
