"""API keys in the database: only the SHA-256 of each secret is stored (api.auth makes and
checks them); revoked keys stay listed."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

_COLUMNS = "key_id, name, scopes, created_at, revoked_at, last_used_at"

ALL_KEYS = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at"

INSERT_KEY = (
    "INSERT INTO api_keys (key_id, name, secret_sha256, scopes) VALUES (%s, %s, %s, %s)"
    f" RETURNING {_COLUMNS}"
)

# A revoked key keeps the time it was first revoked.
REVOKE_KEY = (
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s"
    f" RETURNING {_COLUMNS}"
)

# The stored hash and scopes of a key that is not revoked, noting that it was used.
USE_KEY = (
    "UPDATE api_keys SET last_used_at = now() WHERE key_id = %s AND revoked_at IS NULL"
    " RETURNING secret_sha256, scopes"
)


def all_keys(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every key, oldest first, revoked ones included (no secrets)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(ALL_KEYS).fetchall()


def insert_key(
    conn: psycopg.Connection, key_id: str, name: str, secret_sha256: bytes, scopes: list[str]
) -> dict[str, Any]:
    """Store a new key; returns it as listed."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(INSERT_KEY, (key_id, name, secret_sha256, scopes)).fetchone()
    assert row is not None  # an INSERT … RETURNING returns its row
    return row


def revoke_key(conn: psycopg.Connection, key_id: str) -> dict[str, Any] | None:
    """Revoke a key now (or keep its first revocation); None if there is no such key."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(REVOKE_KEY, (key_id,)).fetchone()


def use_key(conn: psycopg.Connection, key_id: str) -> tuple[bytes, list[str]] | None:
    """(secret hash, scopes) of the unrevoked key ``key_id``, whose last use is set to now;
    None when there is no such key or it is revoked. Commits."""
    row = conn.execute(USE_KEY, (key_id,)).fetchone()
    conn.commit()
    return None if row is None else (bytes(row[0]), list(row[1]))
