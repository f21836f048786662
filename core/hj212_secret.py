"""The rules of an HJ 212 station's identity: the form of its MN, and its password (PW) —
generated here, kept as a salted SHA-256 hash, checked in constant time.

Why SHA-256 and not a slow hash (PBKDF2, scrypt): the gateway checks PW on every connection
(and may on every frame), so the hash must cost microseconds, not milliseconds. A slow hash
only helps against guessing a password a person chose; ours are generated here, 16 symbols of
a 32-symbol alphabet (80 random bits), so no dictionary finds them and a fast hash is the
right tool — the same reasoning as the API keys (api/auth.py) and the broker accounts' 101
PBKDF2 iterations (airwater/broker_auth.py). The salt keeps two stations with one password from
sharing a hash. The alphabet is Crockford's base 32 (no I, L, O, U): a password is typed by
hand into a data logger, and it contains none of HJ 212's separators (``; , = &``).

This module lives in core/, not next to the broker's in airwater/: the broker's passwords are
checked by Mosquitto, but these are checked by our own gateway, which may not import airwater/;
core/ is below every layer that needs it (the gateway, storage/, the CLI). No I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = [
    "MN_PATTERN",
    "PASSWORD_ALPHABET",
    "PASSWORD_LENGTH",
    "PASSWORD_MAX_LENGTH",
    "hash_password",
    "new_password",
    "valid_mn",
    "verify_password",
]

# MN, the device number of HJ 212-2017's data segment: at most 24 characters (the column's
# CHECK in schemas/migrations/0013_hj212.sql is the same expression).
MN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,24}$")
PASSWORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PASSWORD_LENGTH = 16  # 16 × 5 bits = 80 random bits
# the longest PW checked at all: longer is refused before hashing (a logger's field is short)
PASSWORD_MAX_LENGTH = 32
SCHEME = "sha256"
SALT_BYTES = 16


def valid_mn(mn: str) -> bool:
    """Is ``mn`` a device number a station may be given (letters, digits, ``_ -``; ≤ 24)?"""
    return MN_PATTERN.fullmatch(mn) is not None


def new_password(length: int = PASSWORD_LENGTH) -> str:
    """A fresh random password of ``length`` symbols of PASSWORD_ALPHABET."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``sha256$<salt hex>$<SHA-256(salt ‖ password) hex>``: what the registry keeps."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.sha256(salt + password.encode()).hexdigest()
    return f"{SCHEME}${salt.hex()}${digest}"


def verify_password(password: str, secret_hash: str | None) -> bool:
    """Does ``password`` (a frame's PW) match ``secret_hash``? False for no hash, a malformed
    one, or a PW longer than PASSWORD_MAX_LENGTH; the digests are compared in constant time."""
    if secret_hash is None or not 0 < len(password) <= PASSWORD_MAX_LENGTH:
        return False
    try:
        scheme, salt_hex, digest_hex = secret_hash.split("$")
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if scheme != SCHEME:
        return False
    got = hashlib.sha256(salt + password.encode()).digest()
    return hmac.compare_digest(got, expected)
