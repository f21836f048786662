"""Session fixtures: a private PostgreSQL+TimescaleDB cluster and, per test, a fresh
private Mosquitto — never the machine's shared services."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from airwater.embedded import MosquittoServer, PostgresServer
from api import create_app
from core.db import make_pool
from core.settings import Settings
from schemas.stations import Station
from storage.aggregation import STAGE_TABLES
from storage.migrate import migrate
from storage.stations import upsert_stations
from storage.writer import prepare_connection
from tests.support import PROBE_STATION, Publisher, Worker

TEST_STATIONS = [
    Station(
        station_id="110000-A001",
        name="Dongsi",
        kind="air",
        city="Beijing",
        city_code="110000",
        province="Beijing",
    ),
    Station(
        station_id="110000-A002",
        name="Tiantan",
        kind="air",
        city="Beijing",
        city_code="110000",
        province="Beijing",
    ),
    Station(
        station_id="310000-A001",
        name="Hongkou",
        kind="air",
        city="Shanghai",
        city_code="310000",
        province="Shanghai",
        reading_interval_s=300,
    ),
    Station(
        station_id="W-YANGTZE-01",
        name="Yangtze at Nanjing",
        kind="surface_water",
        waterbody="river",
        city="Nanjing",
        city_code="320100",
        province="Jiangsu",
    ),
    Station(
        station_id="W-TAIHU-01",
        name="Taihu centre",
        kind="surface_water",
        waterbody="lake",
        city="Wuxi",
        city_code="320200",
        province="Jiangsu",
    ),
    Station(
        station_id="650000-A001",
        name="Urumqi",
        kind="air",
        city="Urumqi",
        city_code="650100",
        province="Xinjiang",
        timezone="Asia/Urumqi",
    ),
    Station(station_id="999999-OFF", name="Closed station", kind="air", active=False),
    Station(station_id=PROBE_STATION, name="Probe used to see that a worker consumes"),
]
TABLES = (
    "readings",
    *STAGE_TABLES,
    "dead_letters",
    "stations",
    "api_keys",
    "alert_subscriptions",
    "alert_state",
    "alert_events",
    "mqtt_credentials",
    "hj212_credentials",
    "reviews",
    "dust_events",
    "audit_log",
    "publications",
    "publication_checks",
)


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="airwater-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(workdir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(workdir / "postgres")
    server.start()
    with psycopg.connect(server.url) as conn:
        migrate(conn)
    yield server
    server.stop(mode="immediate")


@pytest.fixture()
def database_url(postgres: PostgresServer) -> str:
    """The test database, emptied and with the test stations registered."""
    with psycopg.connect(postgres.url) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)}")
        conn.commit()
        upsert_stations(conn, TEST_STATIONS)
    return postgres.url


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A fresh broker per test, so no persistent session leaks between tests."""
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def publisher(broker: MosquittoServer) -> Iterator[Publisher]:
    pub = Publisher(broker.port)
    yield pub
    pub.close()


@pytest.fixture()
def make_worker(database_url: str, broker: MosquittoServer, tmp_path: Path) -> Iterator:
    """Factory of ingest worker processes; every one is killed at the end of the test."""
    workers: list[Worker] = []

    def make(client_id: str = "test-ingest-1", **settings: str) -> Worker:
        worker = Worker(
            database_url, broker.url, client_id, log_path=tmp_path / f"{client_id}.log", **settings
        )
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop_quietly()


ADMIN_KEY = "test-admin-key-0123456789abcdef"


@pytest.fixture(scope="session")
def api_pool(postgres: PostgresServer) -> Iterator[ConnectionPool]:
    pool = make_pool(postgres.url, max_size=10, configure=prepare_connection, name="test-api")
    pool.open()
    yield pool
    pool.close()


@pytest.fixture()
def api_settings(database_url: str) -> Settings:
    """Settings of the app under test; tests may change fields (e.g. public_read)."""
    return Settings(
        database_url=database_url,
        mqtt_url="mqtt://127.0.0.1:1",
        admin_key=SecretStr(ADMIN_KEY),
        metrics_port=0,
    )


@pytest.fixture()
def api(api_settings: Settings, api_pool: ConnectionPool) -> Iterator[TestClient]:
    """An httpx client (Starlette's TestClient) on the app, with no key."""
    with TestClient(create_app(api_settings, api_pool)) as client:
        yield client


@pytest.fixture()
def admin(api: TestClient) -> TestClient:
    api.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
    return api


@pytest.fixture()
def make_key(api_settings: Settings, api_pool: ConnectionPool):
    """Factory: a token with the given scopes, created through the API."""

    def make(*scopes: str) -> str:
        with TestClient(create_app(api_settings, api_pool)) as client:
            response = client.post(
                "/v1/keys",
                json={"name": "test", "scopes": list(scopes)},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
            assert response.status_code == 201, response.text
            return str(response.json()["token"])

    return make
