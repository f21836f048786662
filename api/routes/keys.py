"""/v1/keys: API key management (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.auth import generate_key, secret_hash
from api.deps import AdminAccess, Conn
from api.errors import ApiError, problem_responses
from schemas.api import KeyCreate, KeyCreated, KeyOut
from storage import keys as key_store

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("", response_model=list[KeyOut], responses=problem_responses(401, 403))
def keys(conn: Conn, _: AdminAccess) -> list[KeyOut]:
    """Every key, revoked ones included; secrets are never shown again."""
    return [KeyOut.model_validate(r) for r in key_store.all_keys(conn)]


@router.post(
    "",
    response_model=KeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
def create_key(body: KeyCreate, conn: Conn, _: AdminAccess) -> KeyCreated:
    """A new key; the response holds the only copy of its secret."""
    key_id, secret, token = generate_key()
    row = key_store.insert_key(
        conn, key_id, body.name, secret_hash(secret), sorted(set(body.scopes))
    )
    return KeyCreated.model_validate({**row, "token": token})


@router.delete("/{key_id}", response_model=KeyOut, responses=problem_responses(401, 403, 404))
def revoke_key(
    key_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,40}$")], conn: Conn, _: AdminAccess
) -> KeyOut:
    """Revoke a key at once; it stays listed."""
    row = key_store.revoke_key(conn, key_id)
    if row is None:
        raise ApiError(404, f"key {key_id!r} does not exist", "key-not-found")
    return KeyOut.model_validate(row)
