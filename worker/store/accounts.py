"""Accounts: their parent (the Partner that owns them) and the numbers whose MO they own."""

from __future__ import annotations

import functools

from worker.store.base import StoreBase, _decode, _text
from worker.store.copies import Copies
from worker.store.keys import account_key, numbers_key
from worker.store.records import AccountRow


class Accounts(StoreBase):
    """Accounts' ownership and number assignments."""

    async def account(self, account: str) -> AccountRow | None:
        """An account's parent and ownership, or None if it is unknown."""
        parent, ownership, created = await self._redis.hmget(  # type: ignore[misc]
            account_key(account), ["parent", "ownership", "created_at"])
        if created is None:  # every account record has one
            return None
        return AccountRow(account=account, parent=_text(parent or b""),
                          ownership=_text(ownership or b""), created_at_ms=int(created))

    async def set_parent(self, account: str, parent: str) -> str:
        """Set ('' clears) an account's parent, as an Admin; 'ok', 'unknown' (account) or
        'unknown-parent'."""
        return _text(await self._key_scripts.set_parent(args=[account, parent]))

    async def assign_number(self, channel: str, number: str, account: str) -> bool:
        """Give ``account`` the channel's MO messages to ``number`` (without a leading '+');
        False if the account is unknown (no key was ever created for it)."""
        version = int(await self._key_scripts.assign(
            keys=[numbers_key(channel), account_key(account)], args=[number, account]))
        if version:  # the shards' copies follow (worker/store/copies.py)
            await self._copies.copy_entries(numbers_key(channel), version, {number: account})
        return bool(version)

    async def unassign_number(self, channel: str, number: str) -> bool:
        """Take a number from its account; False if it was not assigned."""
        version = int(await self._key_scripts.unassign(keys=[numbers_key(channel)], args=[number]))
        if version:
            await self._copies.copy_entries(numbers_key(channel), version, {number: ""})
        return bool(version)

    @functools.cached_property
    def _copies(self) -> Copies:
        return Copies(self._redis)

    async def numbers(self, channel: str) -> dict[str, str]:
        """A channel's assigned numbers: number -> account."""
        return _decode(await self._redis.hgetall(numbers_key(channel)))  # type: ignore[misc]
