"""The SMPP server's Redis keys and scripts: its users, their binds, their receipt streams.

Its keys are spelled in worker/store/keys.py with the others. Key schema (prefix ``smsgw:``)::

    smpp:user:{system_id}  hash  an SMPP user: account, password hash, roles, channels,
                                 limits, max_binds, enabled, expiry (gateway/smpp_server/users.py)
    smpp:users             hash  index: system_id -> account (listing without SCAN)
    smpp:accounts          set   accounts with SMPP users: record_mo.lua queues their MO
                                 messages on smpp:rcpt:{account} (kind 'mo') too (it reads
                                 the shard's copy, cp:smpp:accounts: worker/store/copies.py)
    smpp:binds:{system_id} zset  bind id -> when its lease ends: the user's live binds, on every
                                 smpp-server process (a killed process's binds lapse)
    smpp:authfail:{addr}   str   wrong passwords from a remote address lately (expires)
    smpp:rcpt:{account}    stream receipts (and MO messages) for the account's SMPP clients;
                                 written by the store's transition Lua (smpp_notify in
                                 lua/includes/move.lua) for messages whose door is "smpp",
                                 and by record_mo.lua for MO messages the account owns;
                                 read by the consumer group "smpp", one consumer per
                                 smpp-server process
    smpp:dead:{account}    list  receipts that aged out before any client took them (JSON)
    smpp:deadcount:{account} str how many ever did
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis.exceptions
from redis.asyncio import Redis

from worker.store.base import _decode, _text
from worker.store.bounds import SMPP_DEAD_LETTERS_KEPT
from worker.store.copies import Copies
from worker.store.keys import (
    RECEIPT_GROUP,
    RECEIPTS_PREFIX,
    auth_failures_key,
    binds_key,
    copy_version_key,
    dead_count_key,
    dead_key,
    receipts_key,
    smpp_accounts_key,
    user_key,
    users_index_key,
)


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One receipt (or MO message) waiting for an account's SMPP client."""

    account: str
    entry_id: str
    fields: dict[str, str]

    @property
    def queued_ms(self) -> int:
        """When it was written (stream ids start with the epoch ms)."""
        return int(self.entry_id.partition("-")[0])


_CREATE_USER = r"""
-- KEYS: the user, the index, the accounts with users, the copies' version counter (copyv).
-- ARGV: system_id, account, then field/value pairs. Returns 0 when the system_id is taken,
-- else the version to copy the account's entry of smpp:accounts with (worker/store/copies.py).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return redis.call('INCR', KEYS[4])
"""

_CHANGE_USER = r"""
-- KEYS: the user, the index, the accounts with users, the copies' version counter (copyv).
-- ARGV: system_id, op (enable, disable, delete, password, senders), the password's hash or
-- the senders ('' none). Returns 1, or 0 when there is no such user; for delete, {version,
-- account, '1' if it still has users else ''}: its entry of smpp:accounts, to copy.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local op = ARGV[2]
if op == 'delete' then
  local account = redis.call('HGET', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  local others = false  -- the account keeps MO over SMPP while it has another user
  for _, a in ipairs(redis.call('HVALS', KEYS[2])) do
    if a == account then others = true break end
  end
  if account and not others then redis.call('SREM', KEYS[3], account) end
  if not account then return 1 end
  return {redis.call('INCR', KEYS[4]), account, others and '1' or ''}
elseif op == 'senders' then
  if ARGV[3] == '' then
    redis.call('HDEL', KEYS[1], 'senders')
  else
    redis.call('HSET', KEYS[1], 'senders', ARGV[3])
  end
elseif op == 'password' then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'pw', ARGV[3], 'rotated_at', t[1] * 1000 + math.floor(t[2] / 1000))
else
  redis.call('HSET', KEYS[1], 'enabled', op == 'enable' and '1' or '0')
end
return 1
"""

_ACQUIRE_BIND = r"""
-- KEYS: the user's binds. ARGV: bind id, lease ms, max binds (0: no limit).
-- Returns 1 when the bind is counted, 0 when the user already has max binds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local max = tonumber(ARGV[3])
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"""

_AUTH_FAILURE = r"""
-- KEYS: the address's counter. ARGV: window seconds. Returns the failures in the window.
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
return n
"""

_RENEW_BINDS = r"""
-- KEYS: binds keys. ARGV: lease ms, then one bind id per key (only binds still counted).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + ms, ARGV[i + 1])
  redis.call('PEXPIRE', key, ms * 2)
end
return #KEYS
"""


class SmppServerStore:
    """Typed operations on the keys above. Owns no connection: the caller passes one."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._create_user = redis.register_script(_CREATE_USER)
        self._change_user = redis.register_script(_CHANGE_USER)
        self._acquire_bind = redis.register_script(_ACQUIRE_BIND)
        self._renew_binds = redis.register_script(_RENEW_BINDS)
        self._auth_failure = redis.register_script(_AUTH_FAILURE)
        self._copies = Copies(redis)

    # --- users ---------------------------------------------------------------------------------

    async def create_user(self, system_id: str, fields: Mapping[str, str]) -> bool:
        """Store a new user; False if ``system_id`` is taken."""
        flat = [v for pair in fields.items() for v in pair]
        version = int(await self._create_user(keys=[*self._user_keys(system_id)],
                                              args=[system_id, fields["account"], *flat]))
        if version:  # the shards' copies follow (worker/store/copies.py)
            await self._copies.copy_entries(smpp_accounts_key(), version,
                                            {fields["account"]: "1"})
        return bool(version)

    @staticmethod
    def _user_keys(system_id: str) -> tuple[str, ...]:
        return (user_key(system_id), users_index_key(), smpp_accounts_key(),
                copy_version_key())

    async def user(self, system_id: str) -> dict[str, str] | None:
        """A user's record, or None."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(user_key(system_id))
        (row,) = await pipe.execute()
        return _decode(row) if row else None

    async def users(self) -> list[dict[str, str]]:
        """Every user's record."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hkeys(users_index_key())
        (keys,) = await pipe.execute()
        ids = [_text(k) for k in keys]
        pipe = self._redis.pipeline(transaction=False)
        for system_id in ids:
            pipe.hgetall(user_key(system_id))
        return [_decode(row) for row in await pipe.execute() if row]

    async def change_user(self, system_id: str, op: str, value: str = "") -> bool:
        """enable, disable, delete, or set a new password hash (op "password") or the
        senders (op "senders", their stored form) to ``value``."""
        done = await self._change_user(keys=[*self._user_keys(system_id)],
                                       args=[system_id, op, value])
        if isinstance(done, list):  # a user deleted: its account's entry, to copy
            version, account, still = done
            await self._copies.copy_entries(smpp_accounts_key(), int(version),
                                            {_text(account): _text(still)})
        return bool(done)

    async def index_accounts(self) -> None:
        """Mark every account with users as one (users made before that set existed), and
        make the shards' copies of what the MO script reads of it current."""
        accounts = {_text(a) for a in await self._redis.hvals(users_index_key())}  # type: ignore[misc]
        if accounts:
            pipe = self._redis.pipeline(transaction=True)
            pipe.sadd(smpp_accounts_key(), *accounts)
            pipe.incr(copy_version_key())  # a change: the reconcile's version must be newer
            await pipe.execute()
        await self._copies.reconcile_mo(())

    # --- binds -------------------------------------------------------------------------------

    async def acquire_bind(self, system_id: str, bind_id: str, lease_ms: int,
                           max_binds: int) -> bool:
        """Count a new bind of ``system_id``; False when it already has ``max_binds``."""
        return bool(await self._acquire_bind(keys=[binds_key(system_id)],
                                             args=[bind_id, lease_ms, max_binds]))

    async def renew_binds(self, binds: Sequence[tuple[str, str]], lease_ms: int) -> None:
        """Extend the leases of (system_id, bind id) pairs, in one round trip."""
        if binds:
            await self._renew_binds(keys=[binds_key(s) for s, _ in binds],
                                    args=[lease_ms, *(b for _, b in binds)])

    async def release_bind(self, system_id: str, bind_id: str) -> None:
        """Stop counting a bind."""
        await self._redis.zrem(binds_key(system_id), bind_id)

    async def note_auth_failure(self, address: str, window_seconds: int) -> int:
        """Count a wrong password from ``address``; how many there were in the window."""
        count = await self._auth_failure(keys=[auth_failures_key(address)],
                                         args=[window_seconds])
        return int(count)

    # --- receipts ------------------------------------------------------------------------------

    async def ensure_group(self, account: str) -> None:
        """Create the account's receipt stream and its consumer group (from its start)."""
        try:
            await self._redis.xgroup_create(receipts_key(account), RECEIPT_GROUP, id="0",
                                            mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_receipts(self, wanted: Mapping[str, int], consumer: str,
                            block_ms: int) -> list[StreamEntry]:
        """New entries of the accounts in ``wanted`` (account -> at most how many), waiting
        up to ``block_ms`` for one. Each becomes pending for ``consumer`` until done()."""
        if not wanted:
            return []
        count = max(wanted.values())
        streams = {receipts_key(a): ">" for a in wanted}
        try:
            reply = await self._redis.xreadgroup(RECEIPT_GROUP, consumer, streams,  # type: ignore[arg-type]
                                                 count=count, block=block_ms)
        except redis.exceptions.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            for account in wanted:  # a stream deleted since (FLUSHALL, an operator)
                await self.ensure_group(account)
            return []
        return [StreamEntry(_text(key)[len(RECEIPTS_PREFIX):], _text(eid), _decode(fields))
                for key, entries in reply or [] for eid, fields in entries]

    async def stale_receipts(self, account: str, consumer: str, idle_ms: int,
                             count: int) -> list[StreamEntry]:
        """Entries of ``account`` taken by some consumer but unanswered for ``idle_ms``: now
        ``consumer``'s (the retry of an unanswered deliver_sm, or a dead process's)."""
        reply = await self._redis.xautoclaim(receipts_key(account), RECEIPT_GROUP, consumer,
                                             idle_ms, "0-0", count=count)
        return [StreamEntry(account, _text(eid), _decode(fields))
                for eid, fields in reply[1] if fields]

    async def receipts_done(self, entries: Sequence[StreamEntry]) -> None:
        """Entries the client answered: acknowledged and deleted, in one round trip."""
        if not entries:
            return
        pipe = self._redis.pipeline(transaction=False)
        for e in entries:
            pipe.xack(receipts_key(e.account), RECEIPT_GROUP, e.entry_id)
            pipe.xdel(receipts_key(e.account), e.entry_id)
        await pipe.execute()

    async def dead_letter(self, entries: Sequence[StreamEntry]) -> None:
        """Entries too old to send: kept (capped) and counted, then removed from the stream."""
        if not entries:
            return
        pipe = self._redis.pipeline(transaction=True)
        for e in entries:
            pipe.lpush(dead_key(e.account), json.dumps({"id": e.entry_id, **e.fields}))
            pipe.ltrim(dead_key(e.account), 0, SMPP_DEAD_LETTERS_KEPT - 1)
            pipe.incr(dead_count_key(e.account))
            pipe.xack(receipts_key(e.account), RECEIPT_GROUP, e.entry_id)
            pipe.xdel(receipts_key(e.account), e.entry_id)
        await pipe.execute()

    async def dead_letters(self, account: str) -> int:
        """How many receipts of ``account`` ever aged out undelivered."""
        return int(await self._redis.get(dead_count_key(account)) or 0)
