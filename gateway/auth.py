"""API keys → principals with roles. Keys are only ever stored as SHA-256 hashes.

A key has 128+ random bits, so a plain SHA-256 is the right hash (no password stretching
needed), and looking it up by its hash compares no secret bytes at all, so timing reveals
nothing about which part of a key matched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import Forbidden, Unauthorized
from worker.store import Store, now_ms

ROLES = ("Client", "Admin", "Partner")
SEND_ROLES = frozenset(ROLES)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's account, roles and channel permissions."""

    key_id: str
    name: str
    account: str
    roles: frozenset[str]
    channels: frozenset[str] | None  # None: every channel

    def require_any(self, roles: frozenset[str]) -> None:
        """Raise Forbidden unless the principal has one of ``roles`` (Admin has all)."""
        if "Admin" not in self.roles and not (self.roles & roles):
            raise Forbidden(f"requires any of the roles: {', '.join(sorted(roles))}")


def new_secret() -> str:
    """A new API key: 192 random bits, URL-safe."""
    return "sk_" + secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    """The only form in which a key is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def key_fields(
    *, name: str, account: str, roles: frozenset[str], channels: frozenset[str] | None,
    expires_at_ms: int = 0,
) -> dict[str, str]:
    """A key record as stored."""
    return {
        "id": secrets.token_hex(8), "name": name, "account": account,
        "roles": ",".join(sorted(roles)), "channels": "*" if channels is None else ",".join(
            sorted(channels)),
        "enabled": "1", "expires_at": str(expires_at_ms), "created_at": str(now_ms()),
    }


def credential(headers: Mapping[str, str]) -> str | None:
    """The API key from ``Authorization: Bearer`` or Basic (key as user, empty password)."""
    value = headers.get("Authorization", "")
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    if scheme.lower() == "basic" and rest.strip():
        try:
            user, _, _password = base64.b64decode(rest.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    return None


async def authenticate(store: Store, headers: Mapping[str, str]) -> Principal:
    """The caller's principal, or Unauthorized."""
    secret = credential(headers)
    if secret is None:
        raise Unauthorized("API key required (Authorization: Bearer <key>)")
    record = await store.get_api_key(hash_secret(secret))
    if record is None or record.get("enabled") != "1":
        raise Unauthorized("invalid API key")
    expires = int(record.get("expires_at") or 0)
    if expires and expires <= time.time() * 1000:
        raise Unauthorized("API key expired")
    channels = record.get("channels", "*")
    return Principal(
        key_id=record.get("id", ""), name=record.get("name", ""),
        account=record.get("account", ""),
        roles=frozenset(r for r in record.get("roles", "").split(",") if r),
        channels=None if channels == "*" else frozenset(c for c in channels.split(",") if c),
    )
