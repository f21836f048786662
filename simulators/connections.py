"""One MQTT connection per simulated station (client id = station id, its own credentials,
a retained last will of ``offline``), all served by one thread.

Hundreds of stations each with paho's own network thread would cost hundreds of threads;
here one selector waits on every socket and drives paho's external-loop API (``loop_read``,
``loop_write``, ``loop_misc``), so a few hundred stations idle at a few percent of a core.
Every call on the clients happens on the thread that calls ``poll``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import selectors
import socket
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from core.mqtt import mqtt_client
from core.settings import Settings
from schemas.stations import Station
from simulators.payloads import OFFLINE, ONLINE, status_topic

log = logging.getLogger(__name__)

_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_MISC_EVERY_S = 1.0  # keepalive pings and retries (paho's loop_misc)
_BACKOFF_MAX_S = 30.0
# After a reconnect a station sends its readings of this many seconds again: a broker that
# restarted may have acknowledged them without delivering them (Mosquitto saves its state
# every 5 s and does not restore shared subscriptions; RELIABILITY.md). Ingest stores a
# repeated reading once.
RESEND_WINDOW_S = 10.0


class CredentialsError(ValueError):
    """A credentials file that cannot be read."""


def load_credentials(path: Path) -> dict[str, str]:
    """Station id → MQTT password, from a JSON object (``{"110000-A001": "secret"}``) or a CSV
    file with the columns ``station_id,password`` (header optional). The user name is the
    station id."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CredentialsError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(document, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in document.items()
        ):
            raise CredentialsError(f"{path}: expected an object of station id → password")
        return dict(document)
    credentials = {}
    for line, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or row[0].startswith("#") or (line == 1 and row[0] == "station_id"):
            continue
        if len(row) != 2:
            raise CredentialsError(f"{path}: line {line}: expected station_id,password")
        credentials[row[0].strip()] = row[1].strip()
    return credentials


@dataclass(eq=False)
class StationLink:
    """A station's connection and what it should be doing."""

    station: Station
    client: mqtt.Client
    wanted: bool = True  # False while silenced or closing: no reconnects
    connected: bool = False
    retry_at: float | None = None
    backoff_s: float = 1.0
    refusal: str | None = None  # the broker's last CONNACK failure, e.g. "Not authorized"
    ever_connected: bool = False
    # (monotonic time, topic, payload) of the readings of the last RESEND_WINDOW_S
    recent: deque[tuple[float, str, bytes]] = field(default_factory=deque)

    def remember(self, topic: str, payload: bytes) -> None:
        now = time.monotonic()
        self.recent.append((now, topic, payload))
        while self.recent and self.recent[0][0] < now - RESEND_WINDOW_S:
            self.recent.popleft()


class StationConnections:
    """The MQTT connections of a set of stations, driven by ``poll`` on one thread."""

    def __init__(
        self,
        settings: Settings,
        stations: Iterable[Station],
        credentials: Mapping[str, str] | None = None,
        keepalive_s: int = 60,
    ) -> None:
        self.target = settings.mqtt
        self.keepalive_s = keepalive_s
        self._selector = selectors.DefaultSelector()
        self._next_misc = 0.0
        self.links: dict[str, StationLink] = {}
        for station in stations:
            client = mqtt_client(settings, station.station_id)
            password = (credentials or {}).get(station.station_id)
            if password is not None:
                client.username_pw_set(station.station_id, password)
            client.will_set(status_topic(station.station_id), OFFLINE, qos=1, retain=True)
            link = StationLink(station, client)
            client.user_data_set(link)
            client.on_connect = self._on_connect
            client.on_disconnect = self._on_disconnect
            client.on_socket_open = self._on_socket_open
            client.on_socket_close = self._on_socket_close
            client.on_socket_register_write = self._on_register_write
            client.on_socket_unregister_write = self._on_unregister_write
            self.links[station.station_id] = link

    # --- paho callbacks (called from within loop_read/loop_write/connect on our thread) ---
    def _on_connect(
        self, client: mqtt.Client, link: StationLink, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            link.refusal = str(reason)
            log.warning("broker refused %s: %s", link.station.station_id, reason)
            return
        link.connected, link.refusal, link.backoff_s = True, None, 1.0
        client.publish(status_topic(link.station.station_id), ONLINE, qos=1, retain=True)
        if link.ever_connected:
            horizon = time.monotonic() - RESEND_WINDOW_S
            resent = [(t, p) for at, t, p in link.recent if at >= horizon]
            for topic, payload in resent:
                client.publish(topic, payload, qos=1)
            if resent:
                log.info(
                    "%s: sent %d recent reading(s) again", link.station.station_id, len(resent)
                )
        link.ever_connected = True

    def _on_disconnect(
        self, client: mqtt.Client, link: StationLink, flags: Any, reason: Any, properties: Any
    ) -> None:
        link.connected = False
        if link.wanted:
            link.retry_at = time.monotonic() + link.backoff_s
            link.backoff_s = min(link.backoff_s * 2.0, _BACKOFF_MAX_S)

    def _on_socket_open(self, client: mqtt.Client, link: StationLink, sock: Any) -> None:
        self._selector.register(sock, _READ, link)

    def _on_socket_close(self, client: mqtt.Client, link: StationLink, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    def _on_register_write(self, client: mqtt.Client, link: StationLink, sock: Any) -> None:
        self._selector.modify(sock, _READ | _WRITE, link)

    def _on_unregister_write(self, client: mqtt.Client, link: StationLink, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):  # the socket is being closed
            self._selector.modify(sock, _READ, link)

    # --- driving ------------------------------------------------------------------------
    def _connect(self, link: StationLink) -> None:
        link.retry_at = None
        try:
            if link.client.host:
                link.client.reconnect()
            else:
                link.client.connect(
                    self.target.host, self.target.port, keepalive=self.keepalive_s, clean_start=True
                )
        except OSError as exc:
            log.debug("cannot connect %s: %s", link.station.station_id, exc)
            link.retry_at = time.monotonic() + link.backoff_s
            link.backoff_s = min(link.backoff_s * 2.0, _BACKOFF_MAX_S)

    def open(self, timeout_s: float = 30.0) -> int:
        """Connect every station; returns how many are connected once each is connected or
        refused by the broker, or at the timeout (the rest keep retrying in ``poll``)."""
        for link in self.links.values():
            self._connect(link)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not all(
            link.connected or link.refusal for link in self.links.values()
        ):
            self.poll(0.05)
        return self.connected_count()

    def connected_count(self) -> int:
        return sum(1 for link in self.links.values() if link.connected)

    def poll(self, timeout_s: float) -> None:
        """Serve the sockets for up to ``timeout_s``: reads, writes, keepalives, reconnects."""
        for key, mask in self._selector.select(max(timeout_s, 0.0)):
            client = key.data.client
            if mask & _READ:
                client.loop_read()
            if mask & _WRITE:
                client.loop_write()
        now = time.monotonic()
        if now >= self._next_misc:
            self._next_misc = now + _MISC_EVERY_S
            for link in self.links.values():
                if link.client.socket() is not None:
                    link.client.loop_misc()
                elif link.wanted and link.retry_at is not None and now >= link.retry_at:
                    self._connect(link)

    def publish(
        self, station_id: str, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> mqtt.MQTTMessageInfo | None:
        """Publish as the station; None (nothing sent) while it is not connected."""
        link = self.links[station_id]
        if not link.connected:
            return None
        if topic.endswith("/readings"):
            link.remember(topic, payload)
        return link.client.publish(topic, payload, qos=qos, retain=retain)

    def drop(self, station_id: str) -> None:
        """Cut the station's connection without an MQTT DISCONNECT, as a power cut or a lost
        link would: the broker then publishes its last will (``offline``, retained)."""
        link = self.links[station_id]
        link.wanted = False
        sock = link.client.socket()
        if isinstance(sock, socket.socket):  # also ssl.SSLSocket
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)

    def restore(self, station_id: str) -> None:
        """Let a dropped station connect again (it announces ``online``)."""
        link = self.links[station_id]
        link.wanted, link.backoff_s = True, 1.0
        if link.client.socket() is None:
            self._connect(link)

    def wait_published(self, infos: Iterable[mqtt.MQTTMessageInfo], timeout_s: float) -> bool:
        """Poll until every message is acknowledged (QoS 1) or the timeout; True if all were."""
        pending = list(infos)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            self.poll(0.02)
            pending = [info for info in pending if not info.is_published()]
        return not pending

    def close(self, timeout_s: float = 5.0) -> None:
        """Announce ``offline`` (retained) for every connected station, then disconnect
        cleanly (no last will)."""
        announcements = []
        for link in self.links.values():
            link.wanted = False
            if link.connected:
                announcements.append(
                    link.client.publish(
                        status_topic(link.station.station_id), OFFLINE, qos=1, retain=True
                    )
                )
        self.wait_published(announcements, timeout_s)
        for link in self.links.values():
            if link.client.socket() is not None:
                link.client.disconnect()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(
            link.client.socket() is not None for link in self.links.values()
        ):
            self.poll(0.02)
        self._selector.close()
