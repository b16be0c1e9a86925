"""Who may manage keys and SMPP users, and what a Partner may hand out: never beyond its own key.

The rule itself is the pure :mod:`gateway.grants`; this applies it to what the admin views
create and put back to work, for API keys and SMPP users alike (both carry the same rights).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol, TypeVar

from aiohttp import web

from gateway.auth import MANAGE_ROLES, Principal, authenticate
from gateway.context import GATEWAY
from gateway.errors import Forbidden
from gateway.grants import Grant, exceeded_field, inherit
from worker.senders import Senders


class Granted(Protocol):
    """Anything carrying rights: a key or an SMPP user, stored or requested."""

    @property
    def channels(self) -> frozenset[str] | None: ...
    @property
    def rate(self) -> int: ...
    @property
    def burst(self) -> int: ...
    @property
    def daily_quota(self) -> int: ...
    @property
    def expires_at_ms(self) -> int: ...
    @property
    def senders(self) -> Senders: ...


class Owned(Protocol):
    """A stored key or SMPP user: whose it is and what roles it has."""

    @property
    def account(self) -> str: ...
    @property
    def roles(self) -> frozenset[str]: ...


S = TypeVar("S", bound=Granted)


async def manager(request: web.Request) -> Principal:
    """The caller of an admin operation on keys or SMPP users (Admin or Partner)."""
    principal = await authenticate(request.app[GATEWAY].store, request.headers)
    principal.require_any(MANAGE_ROLES)
    return principal


def may_manage(principal: Principal, record: Owned) -> bool:
    """Admin: every key or user. Partner: Client ones of the accounts it owns. Client: none."""
    if "Admin" in principal.roles:
        return True
    return ("Partner" in principal.roles and record.roles == {"Client"}
            and record.account in principal.children)


def creator_grant(principal: Principal) -> Grant:
    """What the caller's own key may do."""
    lim = principal.limits
    return Grant(channels=principal.channels, rate=lim.rate, burst=lim.burst,
                 daily_quota=lim.daily_quota, expires_at_ms=principal.expires_at_ms,
                 senders=principal.senders)


def grant_of(x: Granted) -> Grant:
    """What a key or SMPP user may do."""
    return Grant(channels=x.channels, rate=x.rate, burst=x.burst,
                 daily_quota=x.daily_quota, expires_at_ms=x.expires_at_ms, senders=x.senders)


def within_creator(principal: Principal, spec: S, *, channels_given: bool, noun: str,
                   senders_given: bool = False) -> S:
    """A Partner's new ``noun`` with its unset rights taken from the Partner's, or
    Forbidden naming the right it would exceed."""
    grant = inherit(creator_grant(principal), grant_of(spec), channels_given=channels_given,
                    senders_given=senders_given)
    refuse_beyond(principal, grant, "create", noun)
    return replace(spec, channels=grant.channels, rate=grant.rate,  # type: ignore[type-var]
                   burst=grant.burst, daily_quota=grant.daily_quota,
                   expires_at_ms=grant.expires_at_ms, senders=grant.senders)


def may_set_senders(principal: Principal, senders: Senders, noun: str) -> None:
    """A Partner may not give a ``noun`` senders beyond its own key's."""
    if "Admin" not in principal.roles and not principal.senders.covers(senders):
        msg = (f"a Partner may not give {noun} senders beyond its own: 'senders' goes beyond "
               "this API key's")
        raise Forbidden(msg, field_errors=[("Forbidden", "senders", msg)])


def may_grant(principal: Principal, record: Granted, noun: str) -> None:
    """A Partner may not put back to work (rotate, enable) a ``noun`` beyond its own key."""
    if "Admin" not in principal.roles:
        refuse_beyond(principal, grant_of(record), "rotate or enable", noun)


def refuse_beyond(principal: Principal, grant: Grant, action: str, noun: str) -> None:
    """Forbidden, naming the field, when ``grant`` exceeds the caller's own key."""
    field = exceeded_field(creator_grant(principal), grant)
    if field is not None:
        msg = (f"a Partner may not {action} {noun} with more rights than its own: '{field}' "
               "goes beyond this API key's")
        raise Forbidden(msg, field_errors=[("Forbidden", field, msg)])
