"""SMPP users: system_id/password pairs of an account, carrying what an API key carries.

SMPP 3.4 passwords have at most 8 characters, so they are not API keys and, unlike a key's 192
random bits, deserve a slow salted hash (PBKDF2): a stolen record must not give them up. The
password is shown once, at creation or rotation, and never stored or logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from gateway.auth import InvalidKey, KeySpec, check_spec, iso
from worker.senders import Senders, parse_stored, stored
from worker.store import KeyLimits, now_ms
from worker.store.smpp_server import SmppServerStore

SYSTEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,14}")  # 16 octets with its NUL
MAX_PASSWORD = 8  # 9 octets with its NUL (SMPP 3.4 §5.2.2)
_ALPHABET = string.ascii_letters + string.digits
_ITERATIONS = 100_000
DEFAULT_MAX_BINDS = 4


@dataclass(frozen=True, slots=True)
class SmppUserSpec:
    """What a new SMPP user may do (the same limits as an API key) and how often it may bind."""

    system_id: str
    account: str
    roles: frozenset[str] = frozenset({"Client"})
    channels: frozenset[str] | None = None  # None: every channel
    rate: int = 0
    burst: int = 0
    daily_quota: int = 0
    expires_at_ms: int = 0
    max_binds: int = DEFAULT_MAX_BINDS
    senders: Senders = field(default_factory=Senders)  # source_addr it may use (none: none)


@dataclass(frozen=True, slots=True)
class SmppUser:
    """A stored SMPP user (never its password)."""

    system_id: str
    account: str
    roles: frozenset[str]
    channels: frozenset[str] | None
    rate: int
    burst: int
    daily_quota: int
    expires_at_ms: int
    max_binds: int
    enabled: bool
    created_at_ms: int
    rotated_at_ms: int
    password_hash: str = ""
    senders: Senders = field(default_factory=Senders)
    parent: str = ""  # its account's parent (Partner) account, read at bind: routes match it

    @property
    def limits(self) -> KeyLimits:
        """Its token bucket and quota: its own, like a key's (never shared with a key)."""
        return KeyLimits(key_id=f"smpp.{self.system_id}", rate=self.rate, burst=self.burst,
                         daily_quota=self.daily_quota)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-able values for the CLI and the admin API (times ISO-8601 UTC)."""
        return {
            "systemId": self.system_id, "account": self.account, "roles": sorted(self.roles),
            "channels": ["*"] if self.channels is None else sorted(self.channels),
            "rate": self.rate, "burst": self.burst, "dailyQuota": self.daily_quota,
            "maxBinds": self.max_binds, "enabled": self.enabled,
            "expiresAt": iso(self.expires_at_ms), "createdAt": iso(self.created_at_ms),
            "rotatedAt": iso(self.rotated_at_ms), "senders": list(self.senders.entries),
        }


def new_password() -> str:
    """8 random letters and digits (about 47 bits: all SMPP allows)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(MAX_PASSWORD))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$iterations$salt$digest`` (hex)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _ITERATIONS)
    return f"pbkdf2_sha256${_ITERATIONS}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (constant time)."""
    try:
        scheme, rounds, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(rounds))
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def check_user_spec(spec: SmppUserSpec, now: int) -> SmppUserSpec:
    """``spec`` with defaults filled in, or InvalidKey (the same rules as a key's)."""
    if not SYSTEM_ID.fullmatch(spec.system_id):
        raise InvalidKey("systemId", "'systemId' must be 1 to 15 letters, digits, '.', '_' "
                         "or '-'")
    if not 1 <= spec.max_binds <= 1000:
        raise InvalidKey("maxBinds", "'maxBinds' must be between 1 and 1000")
    key = check_spec(KeySpec(name=spec.system_id, account=spec.account, roles=spec.roles,
                             channels=spec.channels, rate=spec.rate, burst=spec.burst,
                             daily_quota=spec.daily_quota, expires_at_ms=spec.expires_at_ms,
                             senders=spec.senders),
                     now)
    return replace(spec, burst=key.burst, senders=key.senders)


def check_password(password: str) -> str:
    """``password`` if SMPP can carry it, or InvalidKey."""
    if not 1 <= len(password) <= MAX_PASSWORD or not password.isascii() \
            or not password.isprintable():
        raise InvalidKey("password", f"'password' must be 1 to {MAX_PASSWORD} printable ASCII "
                         "characters")
    return password


def user_fields(spec: SmppUserSpec, password_hash: str, now: int) -> dict[str, str]:
    """A user record as stored (``spec`` already checked)."""
    return {
        "system_id": spec.system_id, "account": spec.account, "pw": password_hash,
        "roles": ",".join(sorted(spec.roles)),
        "channels": "*" if spec.channels is None else ",".join(sorted(spec.channels)),
        "rate": str(spec.rate), "burst": str(spec.burst), "quota": str(spec.daily_quota),
        "max_binds": str(spec.max_binds), "enabled": "1",
        "expires_at": str(spec.expires_at_ms), "created_at": str(now),
        **({"senders": stored(spec.senders)} if spec.senders else {}),
    }


def user_of(fields: Mapping[str, str]) -> SmppUser:
    """A stored record as an SmppUser."""
    def num(name: str) -> int:
        return int(fields.get(name) or 0)

    channels = fields.get("channels", "*")
    return SmppUser(
        system_id=fields.get("system_id", ""), account=fields.get("account", ""),
        roles=frozenset(r for r in fields.get("roles", "").split(",") if r),
        channels=None if channels == "*" else frozenset(c for c in channels.split(",") if c),
        rate=num("rate"), burst=num("burst"), daily_quota=num("quota"),
        expires_at_ms=num("expires_at"), max_binds=num("max_binds") or DEFAULT_MAX_BINDS,
        enabled=fields.get("enabled") == "1", created_at_ms=num("created_at"),
        rotated_at_ms=num("rotated_at"), password_hash=fields.get("pw", ""),
        senders=parse_stored(fields.get("senders")),
    )


async def create_user(store: SmppServerStore, spec: SmppUserSpec,
                      password: str | None = None) -> tuple[str, SmppUser]:
    """Create a user; its password (the only time it is visible) and its record."""
    now = now_ms()
    spec = check_user_spec(spec, now)
    password = check_password(password) if password else new_password()
    fields = user_fields(spec, await asyncio.to_thread(hash_password, password), now)
    if not await store.create_user(spec.system_id, fields):
        raise InvalidKey("systemId", f"SMPP user '{spec.system_id}' already exists")
    return password, user_of(fields)


async def rotate_password(store: SmppServerStore, system_id: str) -> str | None:
    """A new password for ``system_id`` (the old one stops working at once); None if unknown.
    Binds made with the old one stay up until they end."""
    password = new_password()
    hashed = await asyncio.to_thread(hash_password, password)
    return password if await store.change_user(system_id, "password", hashed) else None


async def all_users(store: SmppServerStore, account: str = "") -> list[SmppUser]:
    """Every user (of ``account``, if given), by account then system_id."""
    users = [user_of(f) for f in await store.users()]
    return sorted((u for u in users if not account or u.account == account),
                  key=lambda u: (u.account, u.system_id))
