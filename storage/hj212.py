"""Stations that speak HJ 212-2017 over TCP: their device number (MN) and the hash of their
password (PW) — assign, issue, rotate, revoke, list, and the one lookup the gateway makes.

Only a hash of each password is stored (core/hj212_secret.py); the password itself is returned
once, to the caller that issued or rotated it — as for the broker accounts (storage/credentials).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import psycopg
import psycopg.errors

from core.hj212_secret import valid_mn, verify_password
from storage.stations import station_exists

# The gateway's question for a connection's first frame: who is MN, may it send, with what hash.
STATION_OF_MN = """
SELECT s.station_id, s.active,
       CASE WHEN c.revoked_at IS NULL THEN c.secret_hash END,
       c.revoked_at IS NOT NULL
FROM stations s LEFT JOIN hj212_credentials c USING (station_id)
WHERE s.hj212_mn = %s"""

SET_MN = "UPDATE stations SET hj212_mn = %s, updated_at = now() WHERE station_id = %s"
STATION_WITH_MN = "SELECT station_id FROM stations WHERE hj212_mn = %s"

CREDENTIAL_FOR_UPDATE = "SELECT revoked_at FROM hj212_credentials WHERE station_id = %s FOR UPDATE"
STORE_SECRET = """
INSERT INTO hj212_credentials (station_id, secret_hash) VALUES (%s, %s)
ON CONFLICT (station_id) DO UPDATE SET secret_hash = excluded.secret_hash,
  rotated_at = CASE WHEN hj212_credentials.revoked_at IS NULL THEN now() END,
  created_at = CASE WHEN hj212_credentials.revoked_at IS NULL
    THEN hj212_credentials.created_at ELSE now() END,
  revoked_at = NULL"""
REVOKE = """
UPDATE hj212_credentials SET revoked_at = now() WHERE station_id = %s AND revoked_at IS NULL"""

# Stations with an MN or a secret (or both), by id.
IDENTITIES = """
SELECT s.station_id, s.hj212_mn, s.active, c.created_at, c.rotated_at, c.revoked_at
FROM stations s LEFT JOIN hj212_credentials c USING (station_id)
WHERE s.hj212_mn IS NOT NULL OR c.station_id IS NOT NULL
ORDER BY s.station_id"""


class Hj212Error(Exception):
    """An HJ 212 identity operation that cannot be done (unknown station, MN taken…)."""


class MnIdentity(NamedTuple):
    """The station an MN names, as the gateway needs it for a connection. ``secret_hash`` is
    None when the station has no usable secret (never issued, or revoked)."""

    station_id: str
    active: bool
    secret_hash: str | None
    revoked: bool

    def accepts(self, password: str) -> bool:
        """May a frame with PW ``password`` be taken from this station (active, a secret not
        revoked, and the password its)?"""
        return self.active and not self.revoked and verify_password(password, self.secret_hash)


@dataclass(frozen=True)
class Hj212Identity:
    """A row of the list: no secret, only when it was made, rotated, revoked."""

    station_id: str
    mn: str | None
    station_active: bool
    created_at: datetime | None
    rotated_at: datetime | None
    revoked_at: datetime | None

    @property
    def usable(self) -> bool:
        """Will the gateway accept this station (MN, a secret not revoked, station active)?"""
        return (
            self.mn is not None
            and self.created_at is not None
            and self.revoked_at is None
            and self.station_active
        )


def station_of_mn(conn: psycopg.Connection, mn: str) -> MnIdentity | None:
    """The station whose device number is ``mn``, or None if no station has it (one query)."""
    row = conn.execute(STATION_OF_MN, (mn,)).fetchone()
    return MnIdentity(*row) if row is not None else None


def set_mn(conn: psycopg.Connection, station_id: str, mn: str) -> None:
    """Give ``station_id`` the device number ``mn`` (replacing its previous one). Refuses an
    MN of the wrong form, an unknown station, and an MN another station has."""
    if not valid_mn(mn):
        raise Hj212Error(f"{mn!r} cannot be an HJ 212 MN: 1 to 24 letters, digits, _ or -")
    try:
        with conn.transaction():
            updated = conn.execute(SET_MN, (mn, station_id)).rowcount
    except psycopg.errors.UniqueViolation:
        holder = conn.execute(STATION_WITH_MN, (mn,)).fetchone()
        owner = f"station {holder[0]!r}" if holder else "another station"
        raise Hj212Error(f"MN {mn!r} is assigned to {owner} already") from None
    if updated == 0:
        raise Hj212Error(f"no station {station_id!r} in the registry")


def issue(conn: psycopg.Connection, station_id: str, secret_hash: str, replace: bool) -> None:
    """Store a new secret hash for ``station_id``. Without ``replace``, refuse a station that
    has a secret not revoked (rotate it instead); a revoked one is issued afresh. With
    ``replace`` (rotate), the station must have a secret not revoked."""
    if not station_exists(conn, station_id):
        raise Hj212Error(f"no station {station_id!r} in the registry")
    with conn.transaction():
        row = conn.execute(CREDENTIAL_FOR_UPDATE, (station_id,)).fetchone()
        if row is not None and row[0] is None and not replace:
            raise Hj212Error(f"{station_id!r} has an HJ 212 password already; rotate it instead")
        if row is not None and row[0] is not None and replace:
            raise Hj212Error(f"{station_id!r} is revoked; issue a new password instead")
        if row is None and replace:
            raise Hj212Error(f"{station_id!r} has no HJ 212 password to rotate; issue one")
        conn.execute(STORE_SECRET, (station_id, secret_hash))


def revoke(conn: psycopg.Connection, station_id: str) -> bool:
    """Revoke a station's secret; False if it has none or it is revoked already."""
    with conn.transaction():
        cur = conn.execute(REVOKE, (station_id,))
    return cur.rowcount == 1


def identities(conn: psycopg.Connection) -> list[Hj212Identity]:
    """Every station with an MN or an HJ 212 secret, by station id (no secrets)."""
    return [Hj212Identity(*row) for row in conn.execute(IDENTITIES).fetchall()]
