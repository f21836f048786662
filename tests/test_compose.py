"""docker-compose.yml and the files it uses: accepted by the compose client, every long-running
service health-checked, images pinned, ingest scalable, state in named volumes, and a broker
that refuses anonymous clients and whose ACL does what it says (on a real Mosquitto).

No Docker engine runs here: the compose client validates the file without one
(`docker compose config`, or Debian's `docker-compose` v1)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from airwater.embedded import free_port, wait_for_port
from core import PROJECT_ROOT
from tests.support import wait_for

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
DOCKERFILE = PROJECT_ROOT / "deploy" / "Dockerfile"
DOCKER_DIR = PROJECT_ROOT / "deploy" / "docker"
BROKER_CONF = DOCKER_DIR / "mosquitto.conf"
BROKER_ACL = DOCKER_DIR / "mosquitto.acl"
BROKER_ENTRYPOINT = DOCKER_DIR / "mosquitto-entrypoint.sh"

SERVICES = {
    "timescaledb",
    "mosquitto",
    "migrate",
    "ingest",
    "aggregate",
    "api",
    "alerts",
    "hj212",
    "simulators",
}
APP_SERVICES = {"migrate", "ingest", "aggregate", "api", "alerts", "hj212", "simulators"}
SECRETS = (
    "POSTGRES_PASSWORD",
    "AIRWATER_ADMIN_KEY",
    "MQTT_INGEST_PASSWORD",
    "MQTT_ALERTS_PASSWORD",
    "MQTT_SIMULATORS_PASSWORD",
)
PINNED_IMAGES = {
    "timescaledb": r"timescale/timescaledb:\d+\.\d+\.\d+-pg1[67]",
    "mosquitto": r"eclipse-mosquitto:2\.\d+\.\d+",
}


# --- the compose client -------------------------------------------------------------------


def compose_client() -> list[str] | None:
    """`docker compose` (v2 plugin) when it works, else Debian's `docker-compose` (v1)."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


@pytest.fixture(scope="module")
def client() -> list[str]:
    found = compose_client()
    if found is None:
        pytest.skip(
            "no compose client: neither `docker compose` nor `docker-compose` works here "
            "(deploy/setup.sh installs Debian's docker-compose)"
        )
    return found


def run_config(client: list[str], env_file: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`config` on docker-compose.yml, with only env_file's variables (none of the caller's)."""
    return subprocess.run(
        [*client, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        cwd=PROJECT_ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_compose_client_accepts_the_file_with_the_example_env(client, tmp_path):
    result = run_config(client, ENV_EXAMPLE, tmp_path)
    assert result.returncode == 0, result.stderr
    if importlib.util.find_spec("yaml") is None:
        return  # valid; the structure is checked below, where PyYAML is installed
    import yaml

    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == SERVICES
    ingest_env = resolved["services"]["ingest"]["environment"]
    assert ingest_env["AIRWATER_MQTT_URL"] == "mqtt://ingest:change-me-ingest@mosquitto:1883"


def test_compose_refuses_to_start_without_the_secrets(client, tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    result = run_config(client, empty, tmp_path)
    assert result.returncode != 0
    assert any(name in result.stdout + result.stderr for name in SECRETS), result.stderr


# --- the file's structure -----------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML reads docker-compose.yml")
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def named_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target path -> volume name, for the service's named-volume mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if not source.startswith((".", "/", "~")):
            mounts[target] = source
    return mounts


def published_container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(port).rsplit(":", 1)[-1].split("/")[0]) for port in service.get("ports", [])}


def test_the_stack_has_every_service(compose):
    assert set(compose["services"]) == SERVICES


def test_every_long_running_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        if name == "migrate":
            assert "healthcheck" not in service
            assert service["restart"] == "no"  # one-shot
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name
        assert service["restart"] in ("unless-stopped", "always"), name


def test_images_are_pinned(compose):
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
        if name in APP_SERVICES:
            assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        else:
            assert re.fullmatch(PINNED_IMAGES[name], image), image


def test_services_start_after_what_they_need(compose):
    services = compose["services"]
    assert services["migrate"]["depends_on"] == {"timescaledb": {"condition": "service_healthy"}}
    for name in APP_SERVICES - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["mosquitto"] == {"condition": "service_healthy"}, name
    assert services["simulators"]["depends_on"]["ingest"] == {"condition": "service_healthy"}


def test_ingest_scales_with_an_mqtt_client_id_per_replica(compose):
    ingest = compose["services"]["ingest"]
    assert "container_name" not in ingest
    assert "ports" not in ingest
    assert "AIRWATER_INGEST_CLIENT_ID" not in ingest["environment"]  # one fixed id for all
    command = ingest["command"]
    assert command[:2] == ["python", "/opt/airwater/replica_slot.py"]
    assert "--set=AIRWATER_INGEST_CLIENT_ID=airwater-ingest-{slot}" in command
    assert command[command.index("--") + 1 :] == ["python", "-m", "ingest"]
    slots = named_mounts(ingest)["/var/lib/airwater/slots"]
    assert slots in compose["volumes"]


def test_no_service_has_a_fixed_container_name(compose):
    for name, service in compose["services"].items():
        assert "container_name" not in service, name


def test_state_lives_in_named_volumes(compose):
    services = compose["services"]
    assert named_mounts(services["timescaledb"])["/var/lib/postgresql/data"] in compose["volumes"]
    broker = named_mounts(services["mosquitto"])
    assert broker["/mosquitto/data"] in compose["volumes"]
    assert broker["/mosquitto/config"] in compose["volumes"]
    for name, service in services.items():
        for volume in named_mounts(service).values():
            assert volume in compose["volumes"], (name, volume)


def test_api_publishes_8080_and_binds_every_interface(compose):
    api = compose["services"]["api"]
    assert published_container_ports(api) == {8080}
    assert api["environment"]["AIRWATER_HTTP_PORT"] == "8080"
    assert api["command"][-2:] == ["--host", "0.0.0.0"]  # not the default 127.0.0.1
    assert env_example()["AIRWATER_API_PORT"] == "8080"


def test_every_variable_is_in_env_example_and_secrets_have_no_default():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    example = env_example()
    assert used <= set(example), used - set(example)
    for secret in SECRETS:
        assert secret in used, secret
        # required: compose stops with a message instead of starting with an empty secret
        assert text.count("${" + secret) == text.count("${" + secret + ":?"), secret
        assert re.fullmatch(r"[A-Za-z0-9._~-]+", example[secret]), secret  # URL-safe


def test_app_services_get_the_database_and_their_own_broker_user(compose):
    services = compose["services"]
    for name in APP_SERVICES:
        url = services[name]["environment"]["AIRWATER_DATABASE_URL"]
        assert url.startswith("postgresql://airwater:${POSTGRES_PASSWORD:?"), name
    for name in ("ingest", "alerts", "simulators"):
        url = services[name]["environment"]["AIRWATER_MQTT_URL"]
        assert url.startswith(f"mqtt://{name}:${{MQTT_{name.upper()}_PASSWORD:?"), name
        assert url.endswith("@mosquitto:1883"), name


# --- the broker's files -------------------------------------------------------------------


def directives(path: Path) -> dict[str, list[str]]:
    """Mosquitto config directive -> its values, in file order."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            found.setdefault(key, []).append(value.strip())
    return found


def test_broker_config_requires_credentials():
    conf = directives(BROKER_CONF)
    assert conf["allow_anonymous"] == ["false"]
    assert conf["password_file"] == ["/mosquitto/config/passwd"]
    assert conf["acl_file"] == ["/mosquitto/config/acl"]
    assert conf["persistence"] == ["true"]
    assert conf["persistence_location"] == ["/mosquitto/data/"]


def test_broker_config_keeps_the_settings_airwater_relies_on():
    ours = directives(BROKER_CONF)
    reference = directives(PROJECT_ROOT / "deploy" / "mosquitto.conf")
    for key, values in reference.items():
        if key not in ("allow_anonymous", "persistence_location"):
            assert ours.get(key) == values, key
    assert ours["max_queued_messages"] == ["0"]
    assert ours["max_queued_bytes"] == ["0"]


def test_compose_runs_the_broker_with_these_files(compose):
    broker = compose["services"]["mosquitto"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in broker["volumes"]}
    assert mounts["./deploy/docker/mosquitto.conf"] == "/airwater/mosquitto.conf"
    assert mounts["./deploy/docker/mosquitto.acl"] == "/airwater/mosquitto.acl"
    assert mounts["./deploy/docker/mosquitto-entrypoint.sh"] == "/airwater/mosquitto-entrypoint.sh"
    assert mounts["broker-registry"] == "/airwater/registry"
    migrate = compose["services"]["migrate"]
    assert migrate["environment"]["AIRWATER_BROKER_AUTH_DIR"] == "/airwater/broker-registry"
    assert "broker-registry:/airwater/broker-registry" in migrate["volumes"]
    assert broker["entrypoint"] == ["/bin/sh", "/airwater/mosquitto-entrypoint.sh"]
    assert broker["command"] == ["/usr/sbin/mosquitto", "-c", "/airwater/mosquitto.conf"]
    assert set(broker["environment"]) == {
        "MQTT_INGEST_PASSWORD",
        "MQTT_ALERTS_PASSWORD",
        "MQTT_SIMULATORS_PASSWORD",
    }
    assert published_container_ports(broker) == {1883}
    probe = " ".join(broker["healthcheck"]["test"])
    assert "-u healthcheck" in probe and "/mosquitto/config/healthcheck.password" in probe


def test_acl_gives_anonymous_clients_nothing():
    lines = [
        line.strip()
        for line in BROKER_ACL.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0].startswith("user ")  # rules before the first user would be anonymous ones
    assert not any(line.startswith("pattern") for line in lines)  # stations: the registry's


def test_built_acl_appends_the_registry_but_no_service_block(tmp_path):
    needs("mosquitto_passwd")
    write_registry(tmp_path / "registry", {"110000-A001": "s", "ingest": "forged"})
    built = prepare_auth(tmp_path / "config", **SERVICE_PASSWORDS)
    assert built.returncode == 0, built.stderr
    acl = (tmp_path / "config" / "acl").read_text().splitlines()
    assert "user 110000-A001" in acl and "topic write stations/110000-A001/#" in acl
    assert acl.count("user ingest") == 1  # the service's own block only
    assert "topic write stations/ingest/#" not in acl
    users = [line.split(":")[0] for line in (tmp_path / "config" / "passwd").read_text().split()]
    assert users.count("ingest") == 1 and "110000-A001" in users


def test_image_installs_the_project_without_dev_extras_and_runs_unprivileged():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"pip install \.(\s|$)", text)
    assert "[dev]" not in text
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "deploy/docker/replica_slot.py deploy/docker/healthcheck.py /opt/airwater/" in text


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    ignored = set((PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", "data", ".env", "test-artifacts", ".mypy_cache", ".pytest_cache"} <= ignored


# --- the helpers in the image -------------------------------------------------------------


def load_helper(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"compose_{name}", DOCKER_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_replica(slots: Path) -> tuple[subprocess.Popen[str], str]:
    """A replica that prints its client id and holds its slot until its stdin closes."""
    holder = "import os, sys; print(os.environ['AIRWATER_INGEST_CLIENT_ID'], flush=True); "
    holder += "sys.stdin.read()"
    process = subprocess.Popen(
        [
            sys.executable,
            str(DOCKER_DIR / "replica_slot.py"),
            f"--dir={slots}",
            "--name=ingest",
            "--set=AIRWATER_INGEST_CLIENT_ID=airwater-ingest-{slot}",
            "--",
            sys.executable,
            "-c",
            holder,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def test_replicas_get_distinct_client_ids_and_a_replacement_takes_the_freed_one(
    tmp_path: Path,
) -> None:
    replicas: list[subprocess.Popen[str]] = []
    try:
        ids = []
        for _ in range(3):
            process, client_id = start_replica(tmp_path)
            replicas.append(process)
            ids.append(client_id)
        assert sorted(ids) == ["airwater-ingest-1", "airwater-ingest-2", "airwater-ingest-3"]
        second = replicas[ids.index("airwater-ingest-2")]
        second.kill()  # even kill -9 frees the slot: the kernel drops the lock
        second.wait(timeout=10)
        process, client_id = start_replica(tmp_path)
        replicas.append(process)
        assert client_id == "airwater-ingest-2"
    finally:
        for process in replicas:
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()  # a holder ends when its stdin closes
            process.wait(timeout=10)


def test_process_healthcheck_finds_the_module_and_not_itself(tmp_path):
    healthcheck = load_helper("healthcheck")
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cmdline").write_bytes(
        b"python\0/opt/airwater/healthcheck.py\0--process\0simulators\0"
    )
    assert not healthcheck.module_runs("simulators", proc=tmp_path)[0]
    (tmp_path / "8").mkdir()
    (tmp_path / "8" / "cmdline").write_bytes(b"python\0-m\0simulators\0run\0")
    assert healthcheck.module_runs("simulators", proc=tmp_path)[0]
    assert not healthcheck.module_runs("simulator", proc=tmp_path)[0]
    assert not healthcheck.url_answers(f"http://127.0.0.1:{free_port()}/health")[0]


# --- the broker, for real -----------------------------------------------------------------

SERVICE_PASSWORDS = {
    "MQTT_INGEST_PASSWORD": "ingest-secret",
    "MQTT_ALERTS_PASSWORD": "alerts-secret",
    "MQTT_SIMULATORS_PASSWORD": "simulators-secret",
}


def needs(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None and not Path(p).exists()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (deploy/setup.sh installs mosquitto)")


def entrypoint_env(auth_dir: Path, **passwords: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MOSQUITTO_AUTH_DIR": str(auth_dir),
        "MOSQUITTO_ACL_SOURCE": str(BROKER_ACL),
        "MOSQUITTO_REGISTRY_DIR": str(auth_dir.parent / "registry"),
        "MOSQUITTO_REGISTRY_POLL_S": "0.5",
        **passwords,
    }


def write_registry(registry: Path, accounts: dict[str, str]) -> None:
    """What `airwater stations credentials` writes into the broker-registry volume."""
    from airwater.broker_auth import hash_password, render_acl, render_passwd

    entries = [(user, "station", hash_password(pw)) for user, pw in accounts.items()]
    registry.mkdir(exist_ok=True)
    (registry / "passwd").write_text(render_passwd(entries), encoding="utf-8")  # type: ignore[arg-type]
    (registry / "acl").write_text(render_acl(entries), encoding="utf-8")  # type: ignore[arg-type]


def prepare_auth(auth_dir: Path, **passwords: str) -> subprocess.CompletedProcess[str]:
    """The broker container's entrypoint, `prepare` only, writing into auth_dir."""
    env = entrypoint_env(auth_dir, **passwords)
    return subprocess.run(
        ["sh", str(BROKER_ENTRYPOINT), "prepare"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_broker_entrypoint_refuses_missing_or_url_unsafe_passwords(tmp_path):
    needs("mosquitto_passwd")
    missing = prepare_auth(tmp_path / "a", MQTT_INGEST_PASSWORD="x", MQTT_ALERTS_PASSWORD="y")
    assert missing.returncode != 0
    assert "MQTT_SIMULATORS_PASSWORD is not set" in missing.stderr
    colon = prepare_auth(tmp_path / "b", **{**SERVICE_PASSWORDS, "MQTT_INGEST_PASSWORD": "a:b"})
    assert colon.returncode != 0
    assert "MQTT_INGEST_PASSWORD may hold only" in colon.stderr
    assert not (tmp_path / "b" / "passwd").exists()


class Session:
    """One MQTT v5 connection that records what the broker answered."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None):
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"test-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.connected = threading.Event()
        self.connect_reason: Any = None
        self.acks: dict[int, Any] = {}
        self.acked = threading.Condition()
        self.subacks: dict[int, list[Any]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda client, userdata, msg: self.messages.append(
            (msg.topic, bytes(msg.payload))
        )
        # loop first: a connect() before loop_start() leaves a socket pair of paho's unclosed
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connect_reason = reason_code
        self.connected.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self.acked:
            self.acks[mid] = reason_code
            self.acked.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self.acked:
            self.subacks[mid] = list(reason_codes)
            self.acked.notify_all()

    @property
    def accepted(self) -> bool:
        return not self.connect_reason.is_failure

    def may_publish(self, topic: str, payload: bytes = b"{}") -> bool:
        """Publish at QoS 1: True if the broker took it, False if it answered Not authorized."""
        info = self.client.publish(topic, payload, qos=1)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.acks, timeout=10), "no PUBACK"
            reason = self.acks[info.mid]
        if reason.is_failure:
            assert str(reason) == "Not authorized", reason
            return False
        return True  # Success, or No matching subscribers

    def subscribe(self, topic: str) -> str:
        """Subscribe at QoS 1; the SUBACK's reason (e.g. 'Granted QoS 1')."""
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        with self.acked:
            assert self.acked.wait_for(lambda: mid in self.subacks, timeout=10), "no SUBACK"
            return str(self.subacks[mid][0])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        # No cycle through the callbacks: paho's __del__ then closes its socket pair at once.
        self.client.on_connect = None
        self.client.on_publish = None
        self.client.on_subscribe = None
        self.client.on_message = None


def broker_conf(tmp_path: Path, port: int, auth: Path, data: Path) -> Path:
    conf = BROKER_CONF.read_text(encoding="utf-8")
    conf = conf.replace("listener 1883", f"listener {port} 127.0.0.1")
    conf = conf.replace("/mosquitto/config/", f"{auth}/").replace("/mosquitto/data/", f"{data}/")
    if os.geteuid() == 0:
        conf += "user root\n"  # the container runs it as its own unprivileged user
    path = tmp_path / "mosquitto.conf"
    path.write_text(conf, encoding="utf-8")
    return path


@pytest.fixture()
def compose_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A local Mosquitto run by deploy/docker's entrypoint with its config and ACL; the
    registry (as airwater writes it) gives station 110000-A001 a password, and holds a forged
    `ingest` station account that must not override the service's."""
    needs("/usr/sbin/mosquitto", "mosquitto_passwd")
    auth, data = tmp_path / "config", tmp_path / "data"
    data.mkdir()
    write_registry(tmp_path / "registry", {"110000-A001": "station-secret", "ingest": "forged"})
    port = free_port()
    conf = broker_conf(tmp_path, port, auth, data)
    log = open(tmp_path / "mosquitto.log", "wb")  # noqa: SIM115 -- open while the broker runs
    broker = subprocess.Popen(
        ["sh", str(BROKER_ENTRYPOINT), "/usr/sbin/mosquitto", "-c", str(conf)],
        env=entrypoint_env(auth, **SERVICE_PASSWORDS),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the registry watcher goes with it
    )
    try:
        wait_for_port(port, timeout=15)
        yield port, auth
    finally:
        os.killpg(broker.pid, signal.SIGTERM)
        broker.wait(timeout=15)
        log.close()


def test_registry_change_reaches_the_broker_without_dropping_anyone(compose_broker, tmp_path):
    port, _ = compose_broker
    station = Session(port, "110000-A001", "station-secret")
    try:
        assert station.accepted
        write_registry(
            tmp_path / "registry",
            {"110000-A001": "station-secret", "310000-A001": "new-secret"},
        )

        def newcomer_accepted() -> bool:
            session = Session(port, "310000-A001", "new-secret")
            try:
                return session.accepted
            finally:
                session.close()

        wait_for(newcomer_accepted, timeout=20, what="the new station's login")
        assert station.client.is_connected()
        assert station.may_publish("stations/110000-A001/readings", b"still here")
        newcomer = Session(port, "310000-A001", "new-secret")
        try:
            assert newcomer.may_publish("stations/310000-A001/readings", b"own")
            assert not newcomer.may_publish("stations/110000-A001/readings", b"forged")
        finally:
            newcomer.close()
    finally:
        station.close()


def test_broker_refuses_anonymous_clients_and_wrong_passwords(compose_broker):
    port, _ = compose_broker
    for username, password in [(None, None), ("ingest", "wrong"), ("ingest", "forged")]:
        session = Session(port, username, password)
        try:
            assert not session.accepted, username
            assert str(session.connect_reason) == "Not authorized"
        finally:
            session.close()


def test_broker_acl_lets_each_user_do_its_job_and_nothing_else(compose_broker):
    port, _ = compose_broker
    ingest = Session(port, "ingest", "ingest-secret")
    station = Session(port, "110000-A001", "station-secret")
    alerts = Session(port, "alerts", "alerts-secret")
    simulators = Session(port, "simulators", "simulators-secret")
    sessions = [ingest, station, alerts, simulators]
    try:
        assert all(s.accepted for s in sessions)
        assert ingest.subscribe("$share/ingest/stations/+/readings") == "Granted QoS 1"
        ingest.subscribe("alerts/#")  # granted or not, nothing may arrive from there

        assert station.may_publish("stations/110000-A001/readings", b"own")
        assert station.may_publish("stations/110000-A001/status", b"online")
        assert not station.may_publish("stations/110000-A002/readings", b"forged")
        assert not station.may_publish("alerts/breach/110000-A001")
        assert simulators.may_publish("stations/310000-A001/readings", b"simulated")
        assert simulators.may_publish("stations/310000-A001/status", b"online")
        assert not simulators.may_publish("alerts/breach/310000-A001")
        assert alerts.may_publish("alerts/breach/110000-A001", b"alert")
        assert not alerts.may_publish("stations/110000-A001/readings")
        assert not ingest.may_publish("stations/110000-A001/readings")

        wait_for(lambda: len(ingest.messages) >= 2, timeout=10, what="the allowed readings")
        time.sleep(0.3)  # a message that got through anyway would have arrived by now
        assert sorted(ingest.messages) == [
            ("stations/110000-A001/readings", b"own"),
            ("stations/310000-A001/readings", b"simulated"),
        ]
    finally:
        for session in sessions:
            session.close()


def test_broker_healthcheck_user_reads_the_uptime(compose_broker):
    port, auth = compose_broker
    password = (auth / "healthcheck.password").read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"[0-9a-f]{32}", password)
    probe = Session(port, "healthcheck", password)
    try:
        assert probe.accepted
        assert probe.subscribe("$SYS/broker/uptime") == "Granted QoS 1"
        wait_for(lambda: probe.messages, timeout=10, what="the retained uptime")
        assert probe.messages[0][0] == "$SYS/broker/uptime"
        assert not probe.may_publish("stations/110000-A001/readings")
    finally:
        probe.close()
