"""The gateway's store: metered, batching concurrent accepts into one round trip, and
remembering authenticated keys for a second.

Looking a key up costs a Redis round trip, half of what a single-message send costs. Keys are
remembered (found or not) for ``KEY_CACHE_SECONDS``: a key disabled, rotated or deleted through
another gateway (or the CLI) keeps working for at most that long on this one; changes made
through this gateway apply at once. Rate limits and quotas are never cached: the accept
script of every request checks them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.metrics import GatewayMetrics, MeteredStore
from worker.batcher import Batcher
from worker.store import (
    AcceptCall,
    AcceptResult,
    KeyLimits,
    KeyOp,
    KeyRow,
    LimitExceeded,
    NewMessage,
)

KEY_CACHE_SECONDS = 1.0
KEY_CACHE_SIZE = 10_000


class GatewayStore(MeteredStore):
    """MeteredStore with a short-lived cache of key lookups."""

    def __init__(self, metrics: GatewayMetrics, *args: Any,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(metrics, *args)
        self._keys: dict[str, tuple[float, KeyRow | None]] = {}
        self._clock = clock
        # Requests arriving together share one round trip (each still its own script run).
        self._accepts: Batcher[AcceptCall, list[AcceptResult] | LimitExceeded | Exception] = (
            Batcher(self.accept_within_many, max_size=64))

    async def accept_within(
        self,
        limits: KeyLimits,
        messages: Sequence[NewMessage],
        *,
        window_seconds: int,
        job_id: str,
        job_payload: bytes,
        job_expiry_seconds: int,
    ) -> list[AcceptResult] | LimitExceeded:
        """:meth:`Store.accept_within`, batched with concurrent requests, and counted."""
        result = await self._accepts.put(AcceptCall(
            limits, messages, window_seconds, job_id, job_payload, job_expiry_seconds))
        if isinstance(result, Exception):
            raise result
        self._metrics.count_accept(messages, result)
        return result

    async def authenticate_key(self, secret_hash: str, *, touch_every_ms: int) -> KeyRow | None:
        """:meth:`Store.authenticate_key`, remembered for ``KEY_CACHE_SECONDS``."""
        now = self._clock()
        hit = self._keys.get(secret_hash)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = await super().authenticate_key(secret_hash, touch_every_ms=touch_every_ms)
        if len(self._keys) >= KEY_CACHE_SIZE:
            self._keys = {h: v for h, v in self._keys.items() if v[0] > now}
            if len(self._keys) >= KEY_CACHE_SIZE:  # a flood of distinct keys: start over
                self._keys.clear()
        self._keys[secret_hash] = (now + KEY_CACHE_SECONDS, row)
        return row

    async def change_api_key(self, key_id: str, op: KeyOp, value: str = "") -> bool:
        """:meth:`Store.change_api_key`; this gateway forgets every cached key at once."""
        self._keys.clear()
        return await super().change_api_key(key_id, op, value)

    async def create_api_key(
        self, secret_hash: str, fields: Mapping[str, str], *, parent: str = "", owner: str = ""
    ) -> str:
        """:meth:`Store.create_api_key`; forgets cached keys (a new account may have changed
        what a Partner owns, and the new key may have been looked up, unknown, just before)."""
        self._keys.clear()
        return await super().create_api_key(secret_hash, fields, parent=parent, owner=owner)

    async def set_parent(self, account: str, parent: str) -> str:
        """:meth:`Store.set_parent`; forgets cached keys (what Partners own has changed)."""
        self._keys.clear()
        return await super().set_parent(account, parent)
