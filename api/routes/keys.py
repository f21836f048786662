"""/v1/keys: API key management (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from psycopg.rows import dict_row

from api.auth import generate_key, secret_hash
from api.deps import AdminAccess, Conn
from api.errors import ApiError, problem_responses
from schemas.api import KeyCreate, KeyCreated, KeyOut

router = APIRouter(prefix="/v1/keys", tags=["keys"])
_COLUMNS = "key_id, name, scopes, created_at, revoked_at, last_used_at"


@router.get("", response_model=list[KeyOut], responses=problem_responses(401, 403))
def keys(conn: Conn, _: AdminAccess) -> list[KeyOut]:
    """Every key, revoked ones included; secrets are never shown again."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at").fetchall()
    return [KeyOut.model_validate(r) for r in rows]


@router.post(
    "",
    response_model=KeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
def create_key(body: KeyCreate, conn: Conn, _: AdminAccess) -> KeyCreated:
    """A new key; the response holds the only copy of its secret."""
    key_id, secret, token = generate_key()
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"INSERT INTO api_keys (key_id, name, secret_sha256, scopes) VALUES (%s, %s, %s, %s)"
            f" RETURNING {_COLUMNS}",
            (key_id, body.name, secret_hash(secret), sorted(set(body.scopes))),
        ).fetchone()
    return KeyCreated.model_validate({**(row or {}), "token": token})


@router.delete("/{key_id}", response_model=KeyOut, responses=problem_responses(401, 403, 404))
def revoke_key(
    key_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,40}$")], conn: Conn, _: AdminAccess
) -> KeyOut:
    """Revoke a key at once; it stays listed."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s"
            f" RETURNING {_COLUMNS}",
            (key_id,),
        ).fetchone()
    if row is None:
        raise ApiError(404, f"key {key_id!r} does not exist", "key-not-found")
    return KeyOut.model_validate(row)
