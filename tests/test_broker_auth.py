"""Broker accounts from the registry (issue 7): per-station credentials and ACLs, issued,
rotated and revoked with `airwater stations credentials`, the broker reloaded without
dropping anyone else; a TLS listener with a certificate made here."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
import trustme
from paho.mqtt.reasoncodes import ReasonCode

from airwater import broker_auth, cli
from airwater.embedded import MosquittoServer
from storage.credentials import CredentialError, accounts
from tests.support import PROBE_STATION, Publisher, Worker, wait_for, wait_until_consuming

A1, A2, SH = "110000-A001", "110000-A002", "310000-A001"
pytestmark = pytest.mark.timeout(120)


class Client:
    """A paho v5 client that records how its connection went and what it received."""

    def __init__(
        self,
        port: int,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{username or 'anonymous'}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.connack: ReasonCode | None = None
        self.disconnects: list[ReasonCode] = []
        self.received: list[tuple[str, bytes | bytearray]] = []
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda c, u, msg: self.received.append((msg.topic, msg.payload))
        self.acks: dict[int, str] = {}
        self.client.on_publish = lambda c, u, mid, reason, props: self.acks.__setitem__(
            mid, str(reason)
        )
        self.port = port

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        self.connack = reason
        if not reason.is_failure:
            self.connected.set()
        self.answered.set()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self.disconnects.append(reason)

    def connect(self) -> Client:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self.answered.wait(10), "no CONNACK"
        return self

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: str | bytes, timeout: float = 10) -> str:
        """Publish at QoS 1; the PUBACK's reason ('Success', 'Not authorized', …)."""
        assert self.client.is_connected(), f"disconnected: {self.disconnects}"
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=timeout)
        assert info.is_published()
        return self.acks[info.mid]


@pytest.fixture()
def auth_broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path / "broker", auth=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def run_cli(database_url: str, auth_broker: MosquittoServer, monkeypatch, capsys):
    """`airwater …` in this process, against the test database and the auth broker."""
    monkeypatch.setenv("AIRWATER_DATABASE_URL", database_url)
    monkeypatch.setenv("AIRWATER_BROKER_AUTH_DIR", str(auth_broker.folder))

    def run(*argv: str) -> tuple[int, str]:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


def reading(hour: int, pm25: float) -> str:
    return json.dumps({"ts": f"2026-03-01T{hour:02d}:00:00+08:00", "pm25": pm25})


def issued(output: str) -> dict[str, str]:
    """station_id,password lines (the messages around them have spaces)."""
    return dict(
        line.split(",", 1) for line in output.splitlines() if "," in line and " " not in line
    )


@pytest.fixture()
def services(database_url: str, auth_broker: MosquittoServer, monkeypatch) -> dict[str, str]:
    """Service accounts, as `airwater run` makes them; the broker already reloaded."""
    monkeypatch.setenv("AIRWATER_BROKER_AUTH_DIR", str(auth_broker.folder))
    with psycopg.connect(database_url) as conn:
        passwords = broker_auth.ensure_services(conn, ("ingest", "alerts", "simulators"))
        from core.settings import Settings

        assert broker_auth.sync(conn, Settings()).reloaded
    return passwords


def wait_until_accepted(port: int, user: str, password: str, **kw) -> Client:
    """The broker re-reads its files on SIGHUP asynchronously: retry a refused login a bit."""
    deadline = time.monotonic() + 10
    while True:
        client = Client(port, user, password, client_id=f"probe-{user}-{time.monotonic()}", **kw)
        client.connect()
        if client.connected.is_set():
            client.close()
            return client
        client.client.loop_stop()
        assert time.monotonic() < deadline, f"{user} still refused: {client.connack}"
        time.sleep(0.2)


# --- the files ----------------------------------------------------------------------------


def test_hash_is_mosquittos_own_format(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "pw"
    path.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(path), "alice", "s3cret"], check=True)
    made_by_mosquitto = path.read_text().strip().split(":", 1)[1]
    assert broker_auth.verify_password("s3cret", made_by_mosquitto)
    assert not broker_auth.verify_password("s3creT", made_by_mosquitto)
    ours = broker_auth.hash_password("s3cret")
    assert ours.startswith("$7$101$")
    assert broker_auth.verify_password("s3cret", ours)


@pytest.mark.parametrize(
    "name", ["a b", "a:b", "a\nuser ingest", "", "#", "stations/+", "x" * 65, "ünï"]
)
def test_a_name_that_could_forge_a_line_is_refused(name: str) -> None:
    with pytest.raises(CredentialError):
        broker_auth.render_passwd([(name, "station", "$7$1$a$b")])
    with pytest.raises(CredentialError):
        broker_auth.render_acl([(name, "station", "$7$1$a$b")])


def test_acl_grants_each_role_its_topics_only() -> None:
    acl = broker_auth.render_acl(
        [
            ("ingest", "ingest", "h"),
            ("alerts", "alerts", "h"),
            ("simulators", "simulators", "h"),
            (A1, "station", "h"),
        ],
        share_group="grp",
    )
    body = [line for line in acl.splitlines() if line and not line.startswith("#")]
    assert body == [
        "user ingest",
        "topic read stations/+/readings",
        "topic read $share/grp/stations/+/readings",
        "user alerts",
        "topic write alerts/#",
        "user simulators",
        "topic write stations/+/readings",
        "topic write stations/+/status",
        f"user {A1}",
        f"topic write stations/{A1}/#",
    ]


# --- the registry and the CLI ----------------------------------------------------------------


def test_issue_rotate_revoke_keep_only_hashes(run_cli, database_url: str) -> None:
    code, out = run_cli("stations", "credentials", "issue", A1, A2)
    assert code == 0
    passwords = issued(out)
    assert set(passwords) == {A1, A2}
    with psycopg.connect(database_url) as conn:
        stored: dict[str, str] = dict(
            conn.execute("SELECT username, password_hash FROM mqtt_credentials").fetchall()
        )
    assert all(passwords[u] not in stored[u] for u in passwords)
    assert broker_auth.verify_password(passwords[A1], stored[A1])

    # issuing again is refused (rotate is the way), and changes nothing
    code, _ = run_cli("stations", "credentials", "issue", A1)
    assert code == 1
    code, out = run_cli("stations", "credentials", "rotate", A1)
    assert code == 0
    new = issued(out)[A1]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT password_hash, rotated_at FROM mqtt_credentials WHERE username = %s", (A1,)
        ).fetchone()
    assert row is not None
    hashed, rotated = row
    assert broker_auth.verify_password(new, hashed) and rotated is not None
    assert not broker_auth.verify_password(passwords[A1], hashed)

    assert run_cli("stations", "credentials", "revoke", A2)[0] == 0
    assert run_cli("stations", "credentials", "rotate", A2)[0] == 1  # revoked: issue anew
    assert run_cli("stations", "credentials", "issue", A2)[0] == 0


def test_unknown_station_gets_nothing_and_nothing_changes(run_cli, database_url: str) -> None:
    code, _ = run_cli("stations", "credentials", "issue", A1, "NO-SUCH-STATION")
    assert code == 1
    with psycopg.connect(database_url) as conn:
        assert accounts(conn) == []  # all or nothing: A1 was not issued either


def test_output_file_is_private_and_readable_by_the_simulators(run_cli, tmp_path: Path) -> None:
    from simulators.connections import load_credentials

    out_file = tmp_path / "creds.json"
    assert run_cli("stations", "credentials", "issue", A1, "--output", str(out_file))[0] == 0
    assert run_cli("stations", "credentials", "issue", A2, "--output", str(out_file))[0] == 0
    assert out_file.stat().st_mode & 0o777 == 0o600
    assert set(load_credentials(out_file)) == {A1, A2}


def test_issue_all_missing_covers_active_stations_only(run_cli, database_url: str) -> None:
    code, out = run_cli("stations", "credentials", "issue", "--all-missing")
    assert code == 0
    with psycopg.connect(database_url) as conn:
        active = {r[0] for r in conn.execute("SELECT station_id FROM stations WHERE active")}
    assert set(issued(out)) == active
    code, out = run_cli("stations", "credentials", "issue", "--all-missing")
    assert code == 0 and issued(out) == {}


# --- the broker -----------------------------------------------------------------------------


def test_anonymous_and_wrong_passwords_are_refused(auth_broker, run_cli) -> None:
    passwords = issued(run_cli("stations", "credentials", "issue", A1)[1])
    anonymous = Client(auth_broker.port).connect()
    wrong = Client(auth_broker.port, A1, "not-the-password").connect()
    unknown = Client(auth_broker.port, A2, passwords[A1]).connect()
    for client in (anonymous, wrong, unknown):
        assert client.connack is not None and client.connack.is_failure
        client.client.loop_stop()
    wait_until_accepted(auth_broker.port, A1, passwords[A1])


def test_station_publishes_only_under_its_own_topic(
    auth_broker, run_cli, services, database_url: str, tmp_path: Path
) -> None:
    passwords = issued(run_cli("stations", "credentials", "issue", A1, A2)[1])
    worker = Worker(
        database_url,
        f"mqtt://ingest:{services['ingest']}@127.0.0.1:{auth_broker.port}",
        "auth-ingest",
        log_path=tmp_path / "ingest.log",
    )
    worker.start()
    try:
        wait_until_accepted(auth_broker.port, A1, passwords[A1])
        probe = issued(run_cli("stations", "credentials", "issue", PROBE_STATION)[1])
        wait_until_accepted(auth_broker.port, PROBE_STATION, probe[PROBE_STATION])
        with Publisher(auth_broker.port, "probe", PROBE_STATION, probe[PROBE_STATION]) as publisher:
            wait_until_consuming(database_url, publisher)
        station = Client(auth_broker.port, A1, passwords[A1], client_id=A1).connect()
        # its own topic: stored
        station.publish(f"stations/{A1}/readings", reading(1, 11.0))
        # another station's topic: refused (PUBACK "Not authorized"), never delivered.
        # Mosquitto 2.0.11 then also drops the connection (with max_queued_messages 0 a
        # refused publish counts as over quota), so the forger uses a connection of its own.
        forger = Client(auth_broker.port, A1, passwords[A1], client_id=f"{A1}-forger").connect()
        assert forger.publish(f"stations/{A2}/readings", reading(1, 999.0)) == "Not authorized"
        forger.client.loop_stop()
        station.publish(f"stations/{A1}/readings", reading(2, 12.0))

        def stored() -> dict[str, int]:
            with psycopg.connect(database_url) as conn:
                return dict(conn.execute("SELECT station_id, count(*) FROM readings GROUP BY 1"))

        wait_for(lambda: stored().get(A1) == 2, timeout=30)
        time.sleep(1)
        assert stored() == {A1: 2}
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
        # and a station may not read the others' data
        spy = Client(auth_broker.port, A2, passwords[A2], client_id=A2).connect()
        spy.client.subscribe("stations/#", qos=1)
        time.sleep(0.5)
        station.publish(f"stations/{A1}/readings", reading(3, 13.0))
        wait_for(lambda: stored().get(A1) == 3, timeout=30)
        time.sleep(0.5)
        assert spy.received == []
        station.close()
        spy.close()
    finally:
        worker.stop_quietly()


def test_service_accounts_have_only_their_rights(auth_broker, services) -> None:
    listener = Client(auth_broker.port, "ingest", services["ingest"]).connect()
    listener.client.subscribe("#", qos=1)
    time.sleep(0.3)
    ingest_as_publisher = Client(
        auth_broker.port, "ingest", services["ingest"], client_id="ingest-pub"
    ).connect()
    # allowed publishes first: a refused one ends the connection (see the station test)
    assert ingest_as_publisher.publish(f"stations/{A1}/readings", "{}") == "Not authorized"
    alerts = Client(auth_broker.port, "alerts", services["alerts"]).connect()
    assert alerts.publish("alerts/breach/X", "ok") in ("Success", "No matching subscribers")
    assert alerts.publish(f"stations/{A1}/readings", "{}") == "Not authorized"
    simulators = Client(auth_broker.port, "simulators", services["simulators"]).connect()
    assert simulators.publish(f"stations/{A1}/readings", "sim") == "Success"
    assert simulators.publish("alerts/breach/X", "forged") == "Not authorized"
    wait_for(lambda: len(listener.received) >= 1, timeout=10)
    time.sleep(0.5)
    # only the simulators' reading reached the readings topic; '#' gave the ingest account
    # nothing beyond the readings
    assert listener.received == [(f"stations/{A1}/readings", b"sim")]
    for client in (listener, ingest_as_publisher, alerts, simulators):
        client.close()


def test_reload_keeps_other_clients_and_drops_the_revoked_one(auth_broker, run_cli) -> None:
    passwords = issued(run_cli("stations", "credentials", "issue", A1, A2)[1])
    wait_until_accepted(auth_broker.port, A1, passwords[A1])
    keeper = Client(auth_broker.port, A1, passwords[A1], client_id=A1).connect()
    revoked = Client(auth_broker.port, A2, passwords[A2], client_id=A2).connect()
    assert keeper.connected.is_set() and revoked.connected.is_set()

    # issuing a third station's credentials reloads the broker: nobody is dropped
    third = issued(run_cli("stations", "credentials", "issue", SH)[1])
    wait_until_accepted(auth_broker.port, SH, third[SH])
    assert keeper.disconnects == [] and revoked.disconnects == []

    code, out = run_cli("stations", "credentials", "revoke", A2)
    assert code == 0 and "broker reloaded" in out
    wait_for(lambda: revoked.disconnects != [], timeout=10)
    assert keeper.disconnects == []
    keeper.publish(f"stations/{A1}/readings", "{}")  # still connected and allowed
    revoked.client.loop_stop()
    again = Client(auth_broker.port, A2, passwords[A2], client_id="A2-again").connect()
    assert again.connack is not None and again.connack.is_failure
    again.client.loop_stop()
    keeper.close()


def test_rotation_retires_the_old_password(auth_broker, run_cli) -> None:
    old = issued(run_cli("stations", "credentials", "issue", A1)[1])[A1]
    wait_until_accepted(auth_broker.port, A1, old)
    new = issued(run_cli("stations", "credentials", "rotate", A1)[1])[A1]
    wait_until_accepted(auth_broker.port, A1, new)
    stale = Client(auth_broker.port, A1, old, client_id="stale").connect()
    assert stale.connack is not None and stale.connack.is_failure
    stale.client.loop_stop()


def test_deactivated_station_loses_its_account_at_the_next_sync(
    auth_broker, run_cli, database_url: str
) -> None:
    passwords = issued(run_cli("stations", "credentials", "issue", A1)[1])
    wait_until_accepted(auth_broker.port, A1, passwords[A1])
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE stations SET active = false WHERE station_id = %s", (A1,))
    try:
        assert run_cli("stations", "credentials", "sync")[0] == 0
        assert A1 not in (auth_broker.folder / "passwd").read_text()
        time.sleep(0.5)
        refused = Client(auth_broker.port, A1, passwords[A1], client_id="after").connect()
        assert refused.connack is not None and refused.connack.is_failure
        refused.client.loop_stop()
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE stations SET active = true WHERE station_id = %s", (A1,))


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture()
def tls_broker(tmp_path: Path) -> Iterator[tuple[MosquittoServer, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path / "tls-broker"
    folder.mkdir()
    chain, key, ca_file = folder / "server.pem", folder / "server.key", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(chain))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(chain), append=True)
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    server = MosquittoServer(folder, auth=True, tls=(chain, key))
    server.start()
    yield server, ca_file
    server.stop()


def test_tls_listener_carries_readings_end_to_end(
    tls_broker, database_url: str, monkeypatch, tmp_path: Path
) -> None:
    from core.settings import Settings

    server, ca_file = tls_broker
    monkeypatch.setenv("AIRWATER_BROKER_AUTH_DIR", str(server.folder))
    with psycopg.connect(database_url) as conn:
        services = broker_auth.ensure_services(conn, ("ingest",))
        station = broker_auth.issue(conn, [A1, PROBE_STATION], "station")
        assert broker_auth.sync(conn, Settings()).reloaded
    wait_until_accepted(server.tls_port, A1, station[A1], ca_file=ca_file)
    wait_until_accepted(server.tls_port, PROBE_STATION, station[PROBE_STATION], ca_file=ca_file)
    worker = Worker(
        database_url,
        f"mqtts://ingest:{services['ingest']}@127.0.0.1:{server.tls_port}",
        "tls-ingest",
        log_path=tmp_path / "ingest.log",
        mqtt_ca_file=str(ca_file),
    )
    worker.start()
    try:
        with Publisher(
            server.tls_port, "probe", PROBE_STATION, station[PROBE_STATION], ca_file
        ) as publisher:
            wait_until_consuming(database_url, publisher)
        client = Client(server.tls_port, A1, station[A1], client_id=A1, ca_file=ca_file)
        client.connect()
        client.publish(f"stations/{A1}/readings", reading(5, 21.5))

        def values() -> list[float]:
            with psycopg.connect(database_url) as conn:
                return [r[0] for r in conn.execute("SELECT value FROM readings")]

        wait_for(lambda: values() == [21.5], timeout=30)
        client.close()
    finally:
        worker.stop_quietly()


def test_tls_listener_refuses_a_client_that_does_not_trust_its_certificate(
    tls_broker,
) -> None:
    import socket
    import ssl

    server, _ = tls_broker
    other = trustme.CA()
    context = ssl.create_default_context()
    other.configure_trust(context)
    with (
        socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
        context.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass
    # and the TLS port does not speak plain MQTT: no CONNACK ever comes
    plain = Client(server.tls_port, "x", "y")
    try:
        plain.client.connect("127.0.0.1", server.tls_port, keepalive=5)
        plain.client.loop_start()
        assert not plain.answered.wait(3)
    finally:
        plain.client.loop_stop()
