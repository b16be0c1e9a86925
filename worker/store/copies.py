"""Per-shard copies of the configuration that message scripts read.

**Callbacks.**
move() writes an account's status events when it has a callback URL, for the statuses it chose.
Those settings live in the account's record, on the configuration's slot (``{cfg}``); a script
on a shard of messages reads them from the shard's copy, ``cb:{account}``, so that it keeps to
its own slot (docs/cluster.md). Every script that changes them bumps the account's version
(``cb_v``) and answers the new settings; :meth:`Copies.copy_callbacks` then writes each shard's
copy, only where the shard's is older. A crash between the two leaves a copy behind: the
webhooks process, at start, and ``smsgw store migrate`` copy every account's current settings
again (:meth:`Copies.reconcile_callbacks`), which changes nothing where the copy is current.

**MO lookups.** record_mo.lua finds an MO message's owner in the channel's ``numbers:``, and
whether it hears of it by webhook (``inbound:``) or over SMPP (``smpp:accounts``): it reads the
shard's copies, ``cp:numbers:{channel}``, ``cp:inbound:{channel}`` and ``cp:smpp:accounts``,
entry by entry ``"{version}|{value}"``. Every script that changes an entry takes a new version
from one counter (``copyv``) and the entry is copied with it (:meth:`Copies.copy_entries`), only
over an older one; the reconcile (:meth:`Copies.reconcile_mo`) reads every entry and the
counter in one transaction and copies them whole, marking absent what the source no longer has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from worker.store import scripts
from worker.store.base import _text
from worker.store.keys import (
    account_key,
    callback_copy_key,
    copy_of,
    copy_version_key,
    inbound_key,
    numbers_key,
    smpp_accounts_key,
    webhook_accounts_key,
)


@dataclass(frozen=True, slots=True)
class CallbackSettings:
    """What move() needs of an account's callback, at a version of the account's record."""

    version: int
    has_url: bool
    events: str = ""  # the chosen statuses as stored (",delivered,failed,"); "": every one

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> CallbackSettings:
        """From a script's answer: version, "1"/"0" (URL set), chosen statuses or ""."""
        version, has_url, events = reply
        return cls(int(version), _text(has_url) == "1", _text(events))


class Copies:
    """Writes the shards' copies of accounts' callback settings."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._copy = scripts.register(redis, "copy_callback")
        self._entries = scripts.register(redis, "copy_entries")

    async def copy_callbacks(self, settings: Mapping[str, CallbackSettings]) -> int:
        """Each account's settings into every shard's copy (one round trip); how many copies
        were written (an older or equal version is left as it is)."""
        if not settings:
            return 0
        pipe = self._redis.pipeline(transaction=False)
        for account, s in settings.items():
            await self._copy(keys=[callback_copy_key(account)],
                             args=[s.version, "1" if s.has_url else "0", s.events], client=pipe)
        return sum(int(r) for r in await pipe.execute())

    async def reconcile_callbacks(self, accounts: Iterable[str] = ()) -> int:
        """Copy the current settings of every account served webhooks (wh:accounts) and of
        ``accounts`` that has any: three round trips; safe at any time, and concurrently. How
        many copies were written."""
        served = await self._redis.smembers(webhook_accounts_key())  # type: ignore[misc]
        every = sorted({_text(a) for a in served} | set(accounts))
        if not every:
            return 0
        pipe = self._redis.pipeline(transaction=False)
        for account in every:
            pipe.hmget(account_key(account), ["cb_v", "cb_url", "cb_events"])
        # An account that never had a callback since versions exist needs no copy: no copy is
        # no URL (every change writes one, so a copy saying otherwise has a newer version).
        current = {
            account: CallbackSettings(int(v or 0), url is not None,
                                      "" if events is None else _text(events))
            for account, (v, url, events) in zip(every, await pipe.execute(), strict=True)
            if v is not None or url is not None
        }
        return await self.copy_callbacks(current)

    async def copy_entries(self, config_key: str, version: int, entries: Mapping[str, str]
                           ) -> int:
        """Entries of ``config_key`` (field -> value, '' absent), as changed at ``version``,
        into every shard's copy; how many were written (an entry copied at that version or a
        newer one is left as it is)."""
        return int(await self._write_entries(config_key, version, "some", entries))

    async def _write_entries(self, config_key: str, version: int, mode: str,
                             entries: Mapping[str, str], client: Any = None) -> Any:
        """copy_entries.lua on ``config_key``'s copy (``mode``: 'some' or 'all')."""
        return await self._entries(keys=[copy_of(config_key)], args=[
            version, mode, *(x for pair in entries.items() for x in pair)], client=client)

    async def reconcile_mo(self, channels: Iterable[str]) -> int:
        """Copy the whole of what record_mo.lua reads: the accounts with SMPP users, and each
        channel's numbers and inbound URLs (two round trips; safe at any time, and
        concurrently); how many entries were written."""
        channels = sorted(set(channels))
        read = self._redis.pipeline(transaction=True)  # one version for every entry read
        read.get(copy_version_key())
        read.smembers(smpp_accounts_key())
        for channel in channels:
            read.hgetall(numbers_key(channel))
            read.hkeys(inbound_key(channel))
        version, smpp, *rows = await read.execute()
        sources: list[tuple[str, dict[str, str]]] = [
            (smpp_accounts_key(), {_text(a): "1" for a in smpp})]
        for i, channel in enumerate(channels):
            numbers, inbound = rows[2 * i], rows[2 * i + 1]
            sources.append((numbers_key(channel),
                            {_text(k): _text(v) for k, v in numbers.items()}))
            sources.append((inbound_key(channel), {_text(a): "1" for a in inbound}))
        pipe = self._redis.pipeline(transaction=False)
        for key, entries in sources:
            await self._write_entries(key, int(version or 0), "all", entries, client=pipe)
        return sum(int(n) for n in await pipe.execute())
