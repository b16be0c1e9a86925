"""What every part of the store shares: the connection, replica acks, durable writes."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.exceptions
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from worker.store import scripts

# What a Redis outage looks like to callers: retry, degrade, or answer 503 — never crash.
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of every stored timestamp."""
    return time.time_ns() // 1_000_000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    """A flat [k1, v1, k2, v2, ...] reply as a dict."""
    return {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}


def _decode(row: Mapping[Any, Any]) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in row.items()
    }


class NotReplicated(redis.exceptions.TimeoutError):
    """Fewer replicas than required acknowledged a write in time (Redis WAIT).

    The write is on the primary, and a failover may yet lose it. A Redis TimeoutError, so every
    retry path treats it as a passing outage; each write script is safe to run again.
    """

    def __init__(self, acks: int, wanted: int) -> None:
        super().__init__(f"{acks} of {wanted} replicas acknowledged the write in time")
        self.acks = acks
        self.wanted = wanted


@dataclass(frozen=True, slots=True)
class ReplicaAcks:
    """How many replicas must hold a message write before it counts; 0: the primary's word."""

    replicas: int = 0
    timeout_ms: int = 1000


class _KeyScripts:
    """The API key and account scripts, registered once per Store (on first use)."""

    def __init__(self, redis: Redis) -> None:
        self.auth = scripts.register(redis, "authenticate_key")
        self.create = scripts.register(redis, "create_key")
        self.listing = scripts.register(redis, "list_keys")
        self.change = scripts.register(redis, "change_key")
        self.assign = scripts.register(redis, "assign_number")
        self.unassign = scripts.register(redis, "unassign_number")
        self.set_parent = scripts.register(redis, "set_parent")


class StoreBase:
    """The connection, retention and replica acks every part of :class:`Store` works with,
    and the scripts registered once per Store."""

    def __init__(
        self, redis: Redis, retention_seconds: int, acks: ReplicaAcks = ReplicaAcks()
    ) -> None:
        self._redis = redis
        self._retention = retention_seconds
        self._acks = acks
        self._accept = scripts.register(redis, "accept")
        self._claim = scripts.register(redis, "claim")
        self._outcomes = scripts.register(redis, "record_outcomes")
        self._receipts = scripts.register(redis, "record_receipts")
        self._expire_queued = scripts.register(redis, "expire_queued")
        self._take_tokens = scripts.register(redis, "take_tokens")
        self._store_part = scripts.register(redis, "store_part")
        self._alloc_ref = scripts.register(redis, "allocate_ref")
        self._acquire_lease = scripts.register(redis, "acquire_lease")
        self._mo = scripts.register(redis, "record_mo")
        self._renew_lease = scripts.register(redis, "renew_lease")
        self._release_lease = scripts.register(redis, "release_lease")
        self._fail_over = scripts.register(redis, "fail_over")

    async def _durably(
        self, script: AsyncScript, *, keys: Sequence[Any] = (), args: Sequence[Any] = ()
    ) -> Any:
        """Run a write script; with replica acks required, ``WAIT`` for them on the same
        connection (WAIT covers that connection's writes) in the same round trip."""
        if not self._acks.replicas:
            return await script(keys=keys, args=args)
        for _ in range(2):
            pipe = self._redis.pipeline(transaction=False)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.wait(self._acks.replicas, self._acks.timeout_ms)
            result, acks = await pipe.execute(raise_on_error=False)
            if not isinstance(result, redis.exceptions.NoScriptError):
                break
            await self._redis.script_load(script.script)  # a new primary after a failover
        for reply in (result, acks):
            if isinstance(reply, Exception):
                raise reply
        if int(acks) < self._acks.replicas:
            raise NotReplicated(int(acks), self._acks.replicas)
        return result

    @functools.cached_property
    def _key_scripts(self) -> _KeyScripts:
        return _KeyScripts(self._redis)
