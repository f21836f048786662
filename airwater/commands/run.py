"""``airwater run``: the whole demo in one process tree — a private database and broker when
none is configured, migrations, the services under a supervisor, the simulated network."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from airwater.commands.common import Subcommands, console
from airwater.commands.credentials import write_passwords
from airwater.embedded import MosquittoServer, PostgresServer
from airwater.supervisor import Component, ComponentFailed, Supervisor
from core.settings import Settings
from storage.credentials import Role

log = logging.getLogger("airwater")

# The services that log in to the embedded broker, each with its own account.
MQTT_ROLES: tuple[Role, ...] = ("ingest", "alerts", "simulators")
# name -> python -m module
SERVICES = {
    "ingest": "ingest",
    "aggregate": "ingest.aggregation",
    "alerts": "alerts",
    "api": "api",
    "hj212": "ingest.hj212",
}


def add_parser(commands: Subcommands) -> None:
    run = commands.add_parser(
        "run",
        help="run everything for a demo: private database and broker "
        "(unless AIRWATER_DATABASE_URL / AIRWATER_MQTT_URL are set), "
        "migrations, the ingest worker, the aggregation stage, alert delivery, the API and "
        "dashboard, and a simulated national network backfilled from 1 January of last year "
        "up to now",
    )
    run.add_argument(
        "--no-simulate",
        dest="simulate",
        action="store_false",
        help="do not start the simulated station network",
    )
    run.add_argument(
        "--cities",
        type=int,
        default=30,
        help="cities of the simulated network (3 air stations each; default 30)",
    )
    run.set_defaults(handler=cmd_run)


@dataclass
class Demo:
    """What ``airwater run`` has going: the environment handed to every component, the private
    servers it started (stopped in reverse), the supervisor of the components, and the MQTT
    URL of each service (the embedded broker refuses anonymous clients)."""

    env: dict[str, str]
    supervisor: Supervisor = field(default_factory=Supervisor)
    servers: list[PostgresServer | MosquittoServer] = field(default_factory=list)
    mqtt_urls: dict[str, str] = field(default_factory=dict)
    station_credentials: Path | None = None
    hj212_credentials: Path | None = None

    def stop(self) -> None:
        self.supervisor.stop()
        for server in reversed(self.servers):
            server.stop()


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Start what is missing (private database and broker), migrate, run the components;
    a component that exits is restarted, one that keeps exiting stops the run (exit 1)."""
    demo = Demo(env=dict(os.environ))
    stop = _stop_on_signals()
    try:
        _start_database(demo, settings)
        demo.env.setdefault("AIRWATER_ADMIN_KEY", _admin_key(settings.data_dir))
        demo.env.setdefault("AIRWATER_HTTP_PORT", str(settings.http_port))
        demo.env.setdefault("AIRWATER_HJ212_PORT", str(settings.hj212_port))
        if args.simulate:
            _register_network(demo, args)
            demo.hj212_credentials = _simulated_hj212_stations(demo, settings, args)
        _start_broker(demo, settings, args)
        _start_services(demo)
        if args.simulate:
            _start_simulators(demo, args)
        console.print(_banner(demo, settings))
        while not stop.is_set():
            demo.supervisor.step()
            time.sleep(0.5)
    except ComponentFailed:
        return 1  # the supervisor logged which component and why
    finally:
        console.print("stopping…")
        demo.stop()
    return 0


def _stop_on_signals() -> threading.Event:
    """Set by Ctrl-C or SIGTERM: the run then stops its components and servers."""
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop


def _start_database(demo: Demo, settings: Settings) -> None:
    """A private PostgreSQL unless AIRWATER_DATABASE_URL is set; migrated either way."""
    from core.db import connect
    from storage.migrate import migrate

    if settings.database_url is None:
        postgres = PostgresServer(settings.data_dir / "postgres")
        postgres.start()
        demo.servers.append(postgres)
        demo.env["AIRWATER_DATABASE_URL"] = postgres.url
    with connect(demo.env["AIRWATER_DATABASE_URL"]) as conn:
        applied = migrate(conn)
    log.info("database ready (%d migration(s) applied)", len(applied))


def _admin_key(data_dir: Path) -> str:
    """The demo's admin key: made once, kept in the data folder (mode 0600)."""
    import secrets

    path = data_dir / "admin-key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def _network(args: argparse.Namespace) -> list[str]:
    return ["--cities", str(args.cities)]


def _register_network(demo: Demo, args: argparse.Namespace) -> None:
    # the simulated national network: registered, backfilled from 1 January of last year to
    # now through the bulk path (a re-run skips what is stored), then publishing live over MQTT
    subprocess.run(
        [sys.executable, "-m", "simulators", "register", *_network(args)],
        env=demo.env,
        check=True,
    )


# Every HJ212_EVERY-th simulated air station speaks HJ 212 to the gateway, the others MQTT.
HJ212_EVERY = 4


def _simulated_hj212_stations(demo: Demo, settings: Settings, args: argparse.Namespace) -> Path:
    """Give every HJ212_EVERY-th simulated air station an MN (``SIM-<station id>``) and a fresh
    HJ 212 password (a new one at every start, as for the broker accounts), written for the
    simulators to ``<data>/hj212/simulated-stations.json`` (mode 0600)."""
    import json

    from core.db import connect
    from core.hj212_secret import hash_password, new_password
    from simulators.network import build_network
    from storage.hj212 import identities, issue, set_mn

    air = [s.station_id for s in build_network(cities=args.cities) if s.kind == "air"]
    chosen = air[::HJ212_EVERY]
    found: dict[str, dict[str, str]] = {}
    with connect(demo.env["AIRWATER_DATABASE_URL"]) as conn:
        live = {i.station_id for i in identities(conn) if i.created_at and not i.revoked_at}
        for station_id in chosen:
            mn, password = f"SIM-{station_id}", new_password()
            set_mn(conn, station_id, mn)
            issue(conn, station_id, hash_password(password), replace=station_id in live)
            found[station_id] = {"mn": mn, "password": password}
    path = settings.data_dir / "hj212" / "simulated-stations.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(found, out, indent=2, sort_keys=True)
    log.info("HJ 212: %d of %d simulated air stations send to the gateway", len(found), len(air))
    return path


def _start_broker(demo: Demo, settings: Settings, args: argparse.Namespace) -> None:
    """A private Mosquitto with an account per service and simulated station, unless
    AIRWATER_MQTT_URL is set (then every service uses that URL)."""
    demo.mqtt_urls = {role: demo.env.get("AIRWATER_MQTT_URL", "") for role in MQTT_ROLES}
    if settings.mqtt_url is not None:
        return
    mosquitto = MosquittoServer(settings.data_dir / "mosquitto", auth=True)
    demo.mqtt_urls, demo.station_credentials = _embedded_broker_accounts(
        settings, demo.env["AIRWATER_DATABASE_URL"], mosquitto, args
    )
    mosquitto.start()
    demo.servers.append(mosquitto)
    demo.env["AIRWATER_MQTT_URL"] = mosquitto.url


def _embedded_broker_accounts(
    settings: Settings, database_url: str, broker: MosquittoServer, args: argparse.Namespace
) -> tuple[dict[str, str], Path | None]:
    """Accounts of the demo's broker, from the registry: fresh passwords for the services at
    every start (handed to them in their URL) and for the simulated stations (in a file the
    simulators read); the broker's files written before it starts."""
    from urllib.parse import quote

    from airwater import broker_auth
    from core.db import connect
    from simulators.network import build_network
    from storage.credentials import accounts

    auth_settings = settings.model_copy(update={"broker_auth_dir": broker.folder})
    credentials_file: Path | None = None
    passwords: dict[str, str] = {}
    with connect(database_url) as conn:
        services = broker_auth.ensure_services(conn, MQTT_ROLES)
        if args.simulate:
            ids = [s.station_id for s in build_network(cities=args.cities)]
            existing = {a.username for a in accounts(conn) if a.revoked_at is None}
            passwords = broker_auth.issue(conn, [i for i in ids if i not in existing], "station")
            passwords |= broker_auth.issue(
                conn, [i for i in ids if i in existing], "station", replace=True
            )
            credentials_file = broker.folder / "simulated-stations.json"
            credentials_file.unlink(missing_ok=True)
            write_passwords(credentials_file, passwords)
        broker_auth.write_broker_files(conn, auth_settings)
    log.info(
        "broker accounts: %d service(s), %d simulated station(s); anonymous clients refused",
        len(services),
        len(passwords),
    )
    urls = {
        role: f"mqtt://{role}:{quote(password, safe='')}@127.0.0.1:{broker.port}"
        for role, password in services.items()
    }
    return urls, credentials_file


def _start_services(demo: Demo) -> None:
    for name, module in SERVICES.items():
        mqtt_url = demo.mqtt_urls.get(name, demo.env["AIRWATER_MQTT_URL"])
        env = {**demo.env, "AIRWATER_MQTT_URL": mqtt_url}
        demo.supervisor.start(Component(name, [sys.executable, "-m", module], env))


def _start_simulators(demo: Demo, args: argparse.Namespace) -> None:
    """The backfill from 1 January of last year up to the start of this hour (once: a re-run
    skips what is stored and fills the time the demo was stopped) and the live network, which
    carries on from now, publishing with station accounts — a share of the air stations as
    HJ 212 data loggers sending hourly uploads to the gateway."""
    env = {**demo.env, "AIRWATER_MQTT_URL": demo.mqtt_urls["simulators"]}
    network = _network(args)
    network_live = network
    if demo.station_credentials is not None:
        network_live = [*network, "--credentials", str(demo.station_credentials)]
    since = f"{time.localtime().tm_year - 1}-01-01"
    simulators = [sys.executable, "-m", "simulators"]
    backfill = [*simulators, "backfill", "--from", since, "--to", "now", *network]
    demo.supervisor.start(Component("backfill", backfill, env, one_shot=True))
    if demo.hj212_credentials is not None:  # a share of the stations over HJ 212, one process
        network_live = [
            *network_live,
            "--protocol",
            "mixed",
            "--hj212-credentials",
            str(demo.hj212_credentials),
            "--hj212-port",
            demo.env["AIRWATER_HJ212_PORT"],
        ]
    live = [*simulators, "run", *network_live]
    demo.supervisor.start(Component("simulators", live, env))


def _banner(demo: Demo, settings: Settings) -> str:
    """Where everything is: dashboard, API, admin key, database, broker, metrics."""
    env = demo.env
    broker_line = env["AIRWATER_MQTT_URL"].split("@")[-1]
    if demo.station_credentials is not None:
        broker_line += (
            f"; no anonymous clients; station passwords in {demo.station_credentials}, "
            "more with `airwater stations credentials issue ID`"
        )
    return (
        "[bold green]airwater is running[/bold green]\n"
        f"  dashboard http://127.0.0.1:{env['AIRWATER_HTTP_PORT']}/\n"
        f"  API       http://127.0.0.1:{env['AIRWATER_HTTP_PORT']}/docs\n"
        f"  admin key {env['AIRWATER_ADMIN_KEY']}\n"
        f"  database  {env['AIRWATER_DATABASE_URL']}\n"
        f"  broker    {broker_line}  (publish to stations/<id>/readings)\n"
        f"  HJ 212    tcp://127.0.0.1:{env['AIRWATER_HJ212_PORT']}  (a station's MN and "
        "password: `airwater stations hj212 assign|issue`)\n"
        f"  metrics   http://127.0.0.1:{settings.metrics_port}/metrics (ingest), "
        f"/metrics (API)\n"
        "Press Ctrl-C to stop."
    )
