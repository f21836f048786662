"""API keys: ``aw_<key_id>_<secret>``; only SHA-256 of the secret is stored, compared in
constant time. Scopes: read, ingest, review (invalidate data, record dust events), admin (may
do everything). ``identify`` says who sent a request, once per request, for the rate limit and
the routes alike."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import psycopg
from fastapi.security.utils import get_authorization_scheme_param
from psycopg_pool import ConnectionPool
from starlette.datastructures import Headers
from starlette.types import Scope

from storage.keys import use_key

SCOPES = ("read", "ingest", "review", "admin")
BOOTSTRAP_KEY_ID = "bootstrap-admin"
API_KEY_HEADER = "X-API-Key"
_CALLER = "airwater.caller"  # scope key of identify's answer


@dataclass(frozen=True)
class Principal:
    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the principal of a valid key, or nobody (no key, or a key that is
    unknown or revoked: ``key_rejected``)."""

    principal: Principal | None
    key_rejected: bool = False


@dataclass(frozen=True)
class NewKey:
    key_id: str
    token: str  # shown once


def secret_hash(secret: str) -> bytes:
    # keys are 256-bit random secrets, not passwords: a fast hash is the right tool
    return hashlib.sha256(secret.encode()).digest()


def generate_key() -> tuple[str, str, str]:
    """(key_id, secret, token) of a fresh key."""
    key_id = "k" + secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"aw_{key_id}_{secret}"


def split_token(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "aw" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def authenticate(conn: psycopg.Connection, token: str, admin_key: str | None) -> Principal | None:
    """The principal a presented token stands for, or None."""
    if admin_key is not None and hmac.compare_digest(token.encode(), admin_key.encode()):
        return Principal(BOOTSTRAP_KEY_ID, frozenset(SCOPES))
    parts = split_token(token)
    if parts is None:
        return None
    key_id, secret = parts
    stored = use_key(conn, key_id)
    if stored is None or not hmac.compare_digest(stored[0], secret_hash(secret)):
        return None
    return Principal(key_id, frozenset(stored[1]))


def presented_token(headers: Headers) -> str | None:
    """The token of ``Authorization: Bearer …``, else of ``X-API-Key``, else None."""
    scheme, credentials = get_authorization_scheme_param(headers.get("authorization"))
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return headers.get(API_KEY_HEADER) or None


def identify(scope: Scope) -> Caller:
    """The caller of the request in ``scope`` (an HTTP scope of the app), looked up once and
    kept in the scope. Blocking: queries the key when one is presented. Raises PoolTimeout or
    psycopg.OperationalError (kept too) when the database cannot answer."""
    known: Caller | Exception | None = scope.get(_CALLER)
    if isinstance(known, Exception):
        raise known
    if known is not None:
        return known
    token = presented_token(Headers(scope=scope))
    if token is None:
        caller = Caller(None)
    else:
        state = scope["app"].state
        admin_key = state.settings.admin_key
        pool: ConnectionPool = state.pool
        try:
            with pool.connection(timeout=10) as conn:
                principal = authenticate(
                    conn, token, admin_key.get_secret_value() if admin_key else None
                )
        except Exception as exc:
            scope[_CALLER] = exc  # the next asker fails at once instead of waiting again
            raise
        caller = Caller(principal, key_rejected=principal is None)
    scope[_CALLER] = caller
    return caller
