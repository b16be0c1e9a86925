"""Number assignments: which account owns a channel's MO messages to a destination.

An MO message belongs to the account its destination (a short code or number) is assigned to
on its channel; with none, to the channel's ``mo_default_account``; with none either, it is
kept for Admins only (worker/store/lua/record_mo.lua applies the rule). The admin API and
``smsgw numbers`` share these checks and operations.
"""

from __future__ import annotations

import re
from collections.abc import Container

from gateway.errors import InvalidField, UnknownAccount
from worker.store import Store

# An SMPP address has at most 20 characters; short codes and alphanumeric ones are numbers too.
_NUMBER = re.compile(r"\+?([A-Za-z0-9]{1,20})")


class InvalidNumber(InvalidField):
    """A number or channel that cannot be assigned; ``field`` names the culprit."""


def check_number(text: str) -> str:
    """The number as stored (no leading '+'), or InvalidNumber."""
    found = _NUMBER.fullmatch(text.strip())
    if found is None:
        raise InvalidNumber("number", "'number' must be 1 to 20 letters or digits, optionally "
                            "after a '+'")
    return found[1]


def check_channel(channel: str, configured: Container[str]) -> str:
    """``channel`` if it is one of the ``configured`` ones, else InvalidNumber."""
    if not channel or channel not in configured:
        raise InvalidNumber("channel", f"no channel named '{channel}'")
    return channel


async def assign(store: Store, channel: str, number: str, account: str) -> None:
    """Give ``account`` the channel's MO messages to ``number`` (both already checked)."""
    if not await store.assign_number(channel, number, account):
        raise UnknownAccount(account)
