"""Broker accounts in the registry: issue, rotate, revoke, and what the broker must know.

Only a Mosquitto-format hash of each password is stored (see airwater/broker_auth.py); the
password itself is returned once, to the caller that issued or rotated it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg

from storage.stations import station_exists

Role = Literal["station", "ingest", "alerts", "simulators"]
SERVICE_ROLES: tuple[Role, ...] = ("ingest", "alerts", "simulators")


class CredentialError(Exception):
    """A credential operation that cannot be done (unknown station, nothing to rotate…)."""


@dataclass(frozen=True)
class Account:
    username: str
    role: Role
    station_id: str | None
    issued_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    station_active: bool | None = None

    @property
    def usable(self) -> bool:
        """Will the broker accept this account (not revoked, station still active)?"""
        return self.revoked_at is None and self.station_active is not False


def issue(
    conn: psycopg.Connection, username: str, role: Role, password_hash: str, replace: bool
) -> None:
    """Store a new hash for ``username``. Without ``replace``, refuse an account that exists
    and is not revoked (rotate it instead); a revoked one is issued afresh."""
    station_id = username if role == "station" else None
    if station_id is not None and not station_exists(conn, station_id):
        raise CredentialError(f"no station {station_id!r} in the registry")
    with conn.transaction():
        row = conn.execute(
            "SELECT role, revoked_at FROM mqtt_credentials WHERE username = %s FOR UPDATE",
            (username,),
        ).fetchone()
        if row is not None and row[0] != role:
            raise CredentialError(f"{username!r} is a {row[0]} account, not a {role} one")
        if row is not None and row[1] is None and not replace:
            raise CredentialError(f"{username!r} has credentials already; rotate them instead")
        if row is not None and row[1] is not None and replace:
            raise CredentialError(f"{username!r} is revoked; issue new credentials instead")
        if row is None and replace:
            raise CredentialError(f"{username!r} has no credentials to rotate; issue them")
        conn.execute(
            "INSERT INTO mqtt_credentials (username, role, station_id, password_hash)"
            " VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash,"
            "  rotated_at = CASE WHEN mqtt_credentials.revoked_at IS NULL THEN now() END,"
            "  issued_at = CASE WHEN mqtt_credentials.revoked_at IS NULL"
            "   THEN mqtt_credentials.issued_at ELSE now() END,"
            "  revoked_at = NULL",
            (username, role, station_id, password_hash),
        )


def revoke(conn: psycopg.Connection, username: str) -> bool:
    """Revoke an account; False if it has none or is revoked already."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE mqtt_credentials SET revoked_at = now()"
            " WHERE username = %s AND revoked_at IS NULL",
            (username,),
        )
    return cur.rowcount == 1


def accounts(conn: psycopg.Connection) -> list[Account]:
    """Every account, services first, then stations by id."""
    rows = conn.execute(
        "SELECT c.username, c.role, c.station_id, c.issued_at, c.rotated_at, c.revoked_at,"
        " s.active FROM mqtt_credentials c LEFT JOIN stations s USING (station_id)"
        " ORDER BY c.role = 'station', c.username"
    ).fetchall()
    return [Account(*row) for row in rows]


def broker_entries(conn: psycopg.Connection) -> list[tuple[str, Role, str]]:
    """(username, role, hash) of every account the broker must accept: not revoked, and for
    a station, the station still active in the registry."""
    rows = conn.execute(
        "SELECT c.username, c.role, c.password_hash FROM mqtt_credentials c"
        " LEFT JOIN stations s USING (station_id)"
        " WHERE c.revoked_at IS NULL AND (c.role <> 'station' OR s.active)"
        " ORDER BY c.role = 'station', c.username"
    ).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def stations_without_credentials(conn: psycopg.Connection) -> list[str]:
    """Active stations with no usable account."""
    rows = conn.execute(
        "SELECT s.station_id FROM stations s LEFT JOIN mqtt_credentials c"
        " ON c.username = s.station_id AND c.revoked_at IS NULL"
        " WHERE s.active AND c.username IS NULL ORDER BY s.station_id"
    ).fetchall()
    return [row[0] for row in rows]
