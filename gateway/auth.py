"""API keys → principals with roles and limits; key records and their validation.

A key has 192 random bits, so a plain SHA-256 is the right hash (no password stretching
needed), and looking it up by its hash compares no secret bytes at all, so timing reveals
nothing about which part of a key matched. The secret itself is returned once, at creation or
rotation, and is never stored or logged.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from gateway.errors import ApiError, BadRequest, Forbidden, InvalidField, RateLimited, Unauthorized
from worker.config import ConfigError
from worker.senders import BadSender, Senders, check_entries, parse_stored, stored
from worker.store import KeyLimits, KeyRow, LimitExceeded, Store, now_ms

ROLES = ("Client", "Admin", "Partner")
SEND_ROLES = frozenset(ROLES)
MANAGE_ROLES = frozenset({"Admin", "Partner"})
ADMIN_ROLES = frozenset({"Admin"})
TOUCH_EVERY_MS = 60_000  # last-used is recorded at most once a minute per key
BOOTSTRAP_ACCOUNT = "admin"
MIN_BOOTSTRAP_CHARS = 22  # 128 bits, if the characters are random base64

# Account and channel names end up inside Redis key names and comma lists: no ':' or ','.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RELATIVE = re.compile(r"(\d{1,6})([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_EXPIRY_MS = 3653 * 86_400_000  # 10 years (with their leap days) from now
# Times outside what datetime can show are shown as its ends (only a record written before
# expiries were bounded can hold one).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_MS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_LAST_MS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's account, roles, channel permissions and limits."""

    key_id: str
    name: str
    account: str
    roles: frozenset[str]
    channels: frozenset[str] | None  # None: every channel
    children: frozenset[str] = frozenset()  # accounts this Partner's account owns
    parent: str = ""  # the account that owns this key's account ('' none): routes match it
    limits: KeyLimits = field(default_factory=lambda: KeyLimits(key_id=""))  # none
    expires_at_ms: int = 0  # 0: never
    senders: Senders = field(default_factory=Senders)  # the senders it may choose (none: none)

    def require_any(self, roles: frozenset[str]) -> None:
        """Raise Forbidden unless the principal has one of ``roles`` (Admin has all)."""
        if "Admin" not in self.roles and not (self.roles & roles):
            raise Forbidden(f"requires any of the roles: {', '.join(sorted(roles))}")

    def sees_account(self, account: str) -> bool:
        """Admin sees every account; a Partner its own and its children; a Client its own."""
        if "Admin" in self.roles or account == self.account:
            return True
        return "Partner" in self.roles and account in self.children


class InvalidKey(InvalidField):
    """A key specification that cannot be stored; ``field`` names the culprit."""


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What a new key is allowed to do."""

    name: str
    account: str
    roles: frozenset[str] = frozenset({"Client"})
    channels: frozenset[str] | None = None  # None: every channel
    rate: int = 0  # messages per second; 0: unlimited
    burst: int = 0  # messages at once; 0: one second's worth
    daily_quota: int = 0  # messages per UTC day; 0: none
    expires_at_ms: int = 0  # 0: never
    parent_account: str = ""  # '': leave the account's parent as it is
    senders: Senders = field(default_factory=Senders)  # the senders it may choose (none: none)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A stored key, as shown to whoever manages it (never its secret)."""

    key_id: str
    name: str
    account: str
    parent_account: str
    roles: frozenset[str]
    channels: frozenset[str] | None
    rate: int
    burst: int
    daily_quota: int
    enabled: bool
    expires_at_ms: int
    created_at_ms: int
    last_used_ms: int
    rotated_at_ms: int
    ownership: str = ""  # who set the account's parent: 'Admin', 'Partner' ('' unrecorded)
    senders: Senders = field(default_factory=Senders)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-able values, named as the admin API's ApiKeyInfo (times ISO-8601 UTC)."""
        return {
            "id": self.key_id, "name": self.name, "account": self.account,
            "parentAccount": self.parent_account or None,
            "accountOwnership": self.ownership or None, "roles": sorted(self.roles),
            "channels": ["*"] if self.channels is None else sorted(self.channels),
            "rate": self.rate, "burst": self.burst, "dailyQuota": self.daily_quota,
            "enabled": self.enabled, "expiresAt": iso(self.expires_at_ms),
            "createdAt": iso(self.created_at_ms), "lastUsedAt": iso(self.last_used_ms),
            "rotatedAt": iso(self.rotated_at_ms), "senders": list(self.senders.entries),
        }


def iso(ms: int) -> str | None:
    """Epoch ms as ISO-8601 UTC; None for 0 (unset)."""
    if not ms:
        return None
    ms = min(max(ms, _FIRST_MS), _LAST_MS)
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


def new_secret() -> str:
    """A new API key: 192 random bits, URL-safe."""
    return "sk_" + secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    """The only form in which a key is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_spec(spec: KeySpec, now: int) -> KeySpec:
    """``spec`` with defaults filled in, or InvalidKey."""
    if not spec.name.strip() or len(spec.name) > 100:
        raise InvalidKey("name", "'name' must have 1 to 100 characters")
    for name, value in (("account", spec.account), ("parentAccount", spec.parent_account)):
        if (value or name == "account") and not _NAME.fullmatch(value):
            raise InvalidKey(name, f"'{name}' must be 1 to 64 letters, digits, '.', '_' or '-'")
    if spec.parent_account == spec.account:
        raise InvalidKey("parentAccount", "an account cannot be its own parent")
    if not spec.roles or not spec.roles <= SEND_ROLES:
        raise InvalidKey("roles", f"'roles' must be among {', '.join(ROLES)}")
    if spec.channels is not None and (
            not spec.channels or not all(_NAME.fullmatch(c) for c in spec.channels)):
        raise InvalidKey("channels", "'channels' must list channel names, or be '*' for all")
    for name, number in (("rate", spec.rate), ("burst", spec.burst),
                         ("dailyQuota", spec.daily_quota)):
        if not 0 <= number <= 1_000_000:
            raise InvalidKey(name, f"'{name}' must be between 0 and 1000000")
    if spec.expires_at_ms and spec.expires_at_ms <= now:
        raise InvalidKey("expiresAt", "'expiresAt' must be in the future")
    if spec.expires_at_ms > now + MAX_EXPIRY_MS:
        raise _too_far()
    return replace(spec, burst=spec.burst or spec.rate, senders=checked_senders(
        spec.senders.entries))


def checked_senders(entries: Sequence[str]) -> Senders:
    """A key's (or SMPP user's) allowed senders from what was given, or InvalidKey."""
    try:
        return Senders.of(check_entries(entries))
    except BadSender as exc:
        raise InvalidKey("senders", f"'senders': {exc}") from None


def parse_expiry(text: str, now: int) -> int:
    """Epoch ms from '', 'never', a span ('30d', '12h') or an ISO date/time (naive is UTC)."""
    text = text.strip()
    if text.lower() in ("", "never"):
        return 0
    span = _RELATIVE.fullmatch(text)
    if span:
        return now + int(span[1]) * _UNIT_SECONDS[span[2]] * 1000
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidKey("expiresAt", "'expiresAt' must be an ISO-8601 date or time, or a span "
                         "such as 30d or 12h") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if len(text) == len("2030-01-01"):  # a date: valid through that whole day
        if when.date() == date.max:
            raise _too_far()
        when += timedelta(1)
    return int(when.timestamp() * 1000)


def _too_far() -> InvalidKey:
    return InvalidKey("expiresAt", "'expiresAt' must be at most 10 years from now (or never)")


def key_fields(spec: KeySpec, key_id: str, now: int) -> dict[str, str]:
    """A key record as stored (``spec`` already checked)."""
    return {
        "id": key_id, "name": spec.name, "account": spec.account,
        "roles": ",".join(sorted(spec.roles)),
        "channels": "*" if spec.channels is None else ",".join(sorted(spec.channels)),
        "rate": str(spec.rate), "burst": str(spec.burst), "quota": str(spec.daily_quota),
        "enabled": "1", "expires_at": str(spec.expires_at_ms), "created_at": str(now),
        **({"senders": stored(spec.senders)} if spec.senders else {}),
    }


def key_info(fields: Mapping[str, str]) -> KeyInfo:
    """A stored record (with its account's ``parent`` and ``ownership``) as a KeyInfo."""
    def num(name: str) -> int:
        return int(fields.get(name) or 0)

    return KeyInfo(
        key_id=fields.get("id", ""), name=fields.get("name", ""),
        account=fields.get("account", ""), parent_account=fields.get("parent", ""),
        roles=_split(fields.get("roles", "")), channels=_channels(fields.get("channels", "*")),
        rate=num("rate"), burst=num("burst"), daily_quota=num("quota"),
        enabled=fields.get("enabled") == "1", expires_at_ms=num("expires_at"),
        created_at_ms=num("created_at"), last_used_ms=num("last_used"),
        rotated_at_ms=num("rotated_at"), ownership=fields.get("ownership", ""),
        senders=parse_stored(fields.get("senders")),
    )


def credential(headers: Mapping[str, str]) -> str | None:
    """The API key from ``Authorization: Bearer`` or Basic (key as user, empty password).

    Keys are ASCII: a header with other bytes (which arrive as surrogate escapes) names none.
    """
    value = headers.get("Authorization", "")
    if not value.isascii():
        return None
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    if scheme.lower() == "basic" and rest.strip():
        try:
            user, _, password = base64.b64decode(rest.strip(), validate=True).decode().partition(
                ":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user if user and not password else None
    return None


async def authenticate(store: Store, headers: Mapping[str, str]) -> Principal:
    """The caller's principal, or Unauthorized. One Redis round trip."""
    secret = credential(headers)
    if secret is None:
        raise Unauthorized("API key required (Authorization: Bearer <key>, or Basic with the "
                           "key as user name and an empty password)")
    row = await store.authenticate_key(hash_secret(secret), touch_every_ms=TOUCH_EVERY_MS)
    if row is None:
        raise Unauthorized("invalid API key")
    if row.fields.get("enabled") != "1":
        raise Unauthorized("API key is disabled")
    expires = int(row.fields.get("expires_at") or 0)
    if expires and expires <= row.now_ms:
        raise Unauthorized("API key has expired")
    return principal_of(row)


@functools.lru_cache(maxsize=1024)
def principal_of(row: KeyRow) -> Principal:
    """The principal of an authenticated key record (derived once per row object: the
    gateway's key cache hands the same row out for a second)."""
    info = key_info(row.fields)
    return Principal(
        key_id=info.key_id, name=info.name, account=info.account, roles=info.roles,
        channels=info.channels, children=row.children, parent=row.parent,
        limits=KeyLimits(key_id=info.key_id, rate=info.rate, burst=info.burst,
                         daily_quota=info.daily_quota),
        expires_at_ms=info.expires_at_ms, senders=info.senders,
    )


def limit_error(exceeded: LimitExceeded, limits: KeyLimits) -> ApiError:
    """The answer to a request its key's limits refused (nothing of it was stored)."""
    if exceeded.reason == "burst":
        msg = (f"this API key accepts at most {limits.burst} recipients per request (its "
               "burst); split the request")
        return BadRequest(msg, code="TooMany", field_errors=[("TooMany", "Messages", msg)])
    retry = {"Retry-After": str(max(1, math.ceil(exceeded.retry_after_ms / 1000)))}
    if exceeded.reason == "quota":
        return RateLimited(f"the daily quota of this API key ({limits.daily_quota} messages "
                           "per UTC day) is used up", code="QuotaExceeded", headers=retry)
    return RateLimited(f"rate limit of this API key exceeded ({limits.rate} messages per "
                       f"second, burst {limits.burst})", code="RateLimitExceeded", headers=retry)


class KeyRefused(Exception):
    """The account of a new key belongs to another owner (a Partner reaching too far)."""


async def issue_key(
    store: Store, spec: KeySpec, *, owner: str = "", secret: str | None = None
) -> tuple[str, KeyInfo]:
    """Create a key; returns its secret (the only time it is visible) and its record.

    ``owner`` set: the key's account must be new or a child of ``owner`` (KeyRefused).
    """
    now = now_ms()
    spec = check_spec(spec, now)
    secret = secret or new_secret()
    fields = key_fields(spec, secrets.token_hex(8), now)
    outcome = await store.create_api_key(hash_secret(secret), fields,
                                         parent=spec.parent_account, owner=owner)
    if outcome == "forbidden":
        raise KeyRefused(f"account '{spec.account}' is not owned by account '{owner}'")
    if outcome == "exists":
        raise InvalidKey("key", "this key already exists")
    stored = await find_key(store, fields["id"])  # with the account's parent, as now stored
    return secret, stored or key_info(fields)


async def find_key(store: Store, key_id: str) -> KeyInfo | None:
    """A key by its id, or None."""
    rows = await store.api_keys(key_id) if key_id else []
    return key_info(rows[0]) if rows else None


async def all_keys(store: Store) -> list[KeyInfo]:
    """Every key, by account then name."""
    keys = [key_info(row) for row in await store.api_keys()]
    return sorted(keys, key=lambda k: (k.account, k.name, k.key_id))


async def rotate_key(store: Store, key_id: str) -> str | None:
    """Give a key a new secret (the old one stops working at once); None if unknown."""
    secret = new_secret()
    return secret if await store.change_api_key(key_id, "rotate", hash_secret(secret)) else None


async def ensure_bootstrap_admin(store: Store, secret: str) -> bool:
    """Make sure ``secret`` (SMSGW_BOOTSTRAP_ADMIN_KEY) is an Admin key; True if created now.

    An existing record is left as it is, so an operator's changes survive restarts.
    """
    if len(secret) < MIN_BOOTSTRAP_CHARS:
        raise ConfigError(f"SMSGW_BOOTSTRAP_ADMIN_KEY must have at least {MIN_BOOTSTRAP_CHARS} "
                          "random characters")
    if await store.get_api_key(hash_secret(secret)):
        return False
    spec = KeySpec(name="bootstrap admin", account=BOOTSTRAP_ACCOUNT,
                   roles=frozenset({"Admin"}))
    try:
        await issue_key(store, spec, secret=secret)
    except InvalidKey:  # another gateway instance created it a moment ago
        return False
    return True


def _split(text: str) -> frozenset[str]:
    return frozenset(item for item in text.split(",") if item)


def _channels(text: str) -> frozenset[str] | None:
    return None if text == "*" else _split(text)
