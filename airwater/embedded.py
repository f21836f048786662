"""Private PostgreSQL+TimescaleDB and Mosquitto instances for the demo and the tests.

Each lives in a folder of its own, on a free loopback port, and can be stopped and started
again on the same data. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user; Mosquitto is started directly as ``mosquitto`` (not dropping privileges
itself, which would clear its parent-death signal: a killed parent leaves no broker).
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)


def die_with_parent() -> None:
    """In a child process: get SIGTERM when the parent dies, even by SIGKILL, so no private
    broker or worker is left behind (Linux prctl PR_SET_PDEATHSIG; elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on 127.0.0.1:{port} after {timeout} s"
                ) from None
            time.sleep(0.05)


def _service_user(name: str) -> pwd.struct_passwd | None:
    """The unprivileged user to run a server as when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"running as root needs the system user {name!r}") from None


def _chown_tree(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is None:
        return
    for item in [path, *path.rglob("*")]:
        os.chown(item, user.pw_uid, user.pw_gid)


def _open_parents(path: Path) -> None:
    """Let the service user traverse to its folder (pytest's tmp folders are 0700)."""
    for parent in path.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011 and parent.stat().st_uid == os.geteuid():
            parent.chmod(mode | 0o011)


def postgres_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not candidates:
        found = shutil.which("pg_ctl")
        if found is None:
            raise RuntimeError("PostgreSQL server binaries not found; run deploy/setup.sh")
        return Path(found).resolve().parent
    return Path(candidates[-1]).parent


class PostgresServer:
    """A private PostgreSQL cluster with TimescaleDB preloaded."""

    def __init__(self, folder: Path, port: int | None = None, database: str = "airwater"):
        self.folder = folder.resolve()
        self.pgdata = self.folder / "pgdata"
        self.logfile = self.folder / "postgres.log"
        self.port = port or free_port()
        self.database = database
        self.bindir = postgres_bindir()
        self.user = _service_user("postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user.pw_name, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def initialise(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        _open_parents(self.folder)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        _chown_tree(self.folder, self.user)
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        with open(self.pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                "\n# airwater private cluster\n"
                "shared_preload_libraries = 'timescaledb'\n"
                "timescaledb.telemetry_level = off\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.folder}'\n"
                "shared_buffers = 512MB\n"
                "max_connections = 200\n"
                "max_wal_size = 4GB\n"
                "log_min_messages = warning\n"
            )

    @property
    def exists(self) -> bool:
        """Whether the cluster has been made (by a first ``start``)."""
        return (self.pgdata / "PG_VERSION").exists()

    def attach(self) -> bool:
        """Use the server another process (``airwater run``) runs on this cluster, if one
        answers: its port becomes ours and True is returned. Stopping it stays that process's
        job; a False leaves everything as it was."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()
            pid, port = int(lines[0]), int(lines[3])  # postmaster.pid: pid, datadir, start, port
        except (OSError, ValueError, IndexError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False  # a pid file left by a server that was killed
        except PermissionError:
            pass  # alive, under another user
        try:
            with psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{port}/{self.database}", connect_timeout=5
            ):
                pass
        except psycopg.Error:
            return False  # starting, stopping, or its database not made yet
        self.port = port
        return True

    def start(self) -> None:
        self.initialise()
        if (self.pgdata / "postmaster.pid").exists():
            # left running by a run that was killed: stop it, then start on our port
            self.stop(mode="fast")
        self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.logfile),
            "-o",
            f"-p {self.port}",
            "-w",
            "-t",
            "60",
            "start",
        )
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')
        log.info("PostgreSQL+TimescaleDB on 127.0.0.1:%d (data in %s)", self.port, self.pgdata)

    def stop(self, mode: str = "fast") -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        try:
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60", "stop")
        except subprocess.CalledProcessError as exc:
            # pg_ctl also fails when the server went away meanwhile; gone is what we want
            if not (self.pgdata / "postmaster.pid").exists():
                return
            log.warning(
                "pg_ctl stop -m %s failed (%s); stopping immediately",
                mode,
                (exc.stderr or b"").decode(errors="replace").strip(),
            )
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


class MosquittoServer:
    """A private Mosquitto with persistence, so sessions and queued messages survive."""

    def __init__(
        self,
        folder: Path,
        port: int | None = None,
        extra_config: str = "",
        auth: bool = False,
        tls: tuple[Path, Path] | None = None,
        tls_port: int | None = None,
    ):
        """``auth``: no anonymous clients; users and rights from ``passwd`` and ``acl`` in the
        folder (generated from the registry by airwater.broker_auth). ``tls``: (certificate
        chain, key) for a second listener, on ``tls_port``, that speaks TLS only."""
        self.folder = folder.resolve()
        self.port = port or free_port()
        self.extra_config = extra_config
        self.auth = auth
        self.tls = tls
        self.tls_port = (tls_port or free_port()) if tls else None
        self.process: subprocess.Popen[bytes] | None = None
        self.user = _service_user("mosquitto")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto not found; run deploy/setup.sh")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.folder / "mosquitto.pid"

    def _auth_config(self) -> str:
        if not self.auth:
            return "allow_anonymous true\n"
        for name in ("passwd", "acl"):
            path = self.folder / name
            if not path.exists():
                path.write_text("", encoding="utf-8")
                path.chmod(0o640)
        return (
            "allow_anonymous false\n"
            f"password_file {self.folder}/passwd\n"
            f"acl_file {self.folder}/acl\n"
        )

    def _tls_config(self) -> str:
        if self.tls is None:
            return ""
        cert, key = (path.resolve() for path in self.tls)
        return (
            f"listener {self.tls_port} 127.0.0.1\n"
            f"certfile {cert}\n"
            f"keyfile {key}\n"
            "tls_version tlsv1.2\n"
        )

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        _open_parents(self.folder)
        config = self.folder / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + self._auth_config()
            + self._tls_config()
            + "persistence true\n"
            f"persistence_location {self.folder}/\n"
            "autosave_interval 5\n"
            # A worker that is down must find every message queued for its session.
            "max_queued_messages 0\n"
            "max_queued_bytes 0\n"
            "max_inflight_messages 0\n"
            "max_packet_size 1048576\n"
            # the broker refuses what the parser would refuse (AIRWATER_MAX_PAYLOAD_BYTES)
            "message_size_limit 262144\n"
            f"log_dest file {self.folder}/mosquitto.log\n"
            "log_type error\nlog_type warning\nlog_type notice\n" + self.extra_config,
            encoding="utf-8",
        )
        _chown_tree(self.folder, self.user)
        return config

    def start(self) -> None:
        config = self.write_config()
        stderr_path = self.folder / "mosquitto.stderr"
        with open(stderr_path, "ab") as stderr:
            # started directly as the service user (not dropping privileges itself), so
            # the parent-death signal survives: a killed `airwater run` leaves no broker
            self.process = subprocess.Popen(
                [self.binary, "-c", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                preexec_fn=die_with_parent,
                user=self.user.pw_uid if self.user else None,
                group=self.user.pw_gid if self.user else None,
                extra_groups=[] if self.user else None,
            )
        try:
            wait_for_port(self.port, timeout=15)
        except TimeoutError:
            self.process.kill()
            self.process.wait()
            err = stderr_path.read_text(errors="replace")
            raise RuntimeError(f"mosquitto did not start: {err}") from None
        # for `airwater stations credentials …`: SIGHUP makes the broker re-read passwd/acl
        self.pid_file.write_text(f"{self.process.pid}\n", encoding="utf-8")
        log.info("Mosquitto on 127.0.0.1:%d (persistence in %s)", self.port, self.folder)

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self.pid_file.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()
