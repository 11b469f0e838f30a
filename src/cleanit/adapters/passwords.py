"""Password hashing (argon2id) and API token digests."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """argon2id with the library's recommended costs; tests may pass lower ones."""

    def __init__(self, *, time_cost: int = 3, memory_cost: int = 65536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def new_secret() -> str:
    """A URL-safe 256-bit random secret (API tokens, tracking and complaint links)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 hex digest of a high-entropy secret (safe to store and look up)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
