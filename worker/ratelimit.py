"""A channel's TPS limit, shared by every worker through a token bucket in Redis.

Each worker takes tokens in small chunks (at most ~50 ms worth) and spends them locally, so the
limit costs one round trip per chunk rather than per submit_sm, and no worker can hoard.
"""

from __future__ import annotations

import asyncio
import math

from worker.store import Store


class SharedRate:
    """``await rate.acquire()`` before each submit_sm of the channel."""

    def __init__(self, store: Store, channel: str, tps: float) -> None:
        self._store = store
        self._channel = channel
        self._tps = tps
        self._burst = max(1, math.ceil(tps / 10))  # 100 ms of traffic: smooth, never bursty
        self._chunk = max(1, min(self._burst, math.ceil(tps / 20)))
        self._local = 0
        self._lock = asyncio.Lock()

    def take_now(self) -> bool:
        """Take one token if that needs no wait (no limit, or one in hand): the hot path,
        without a coroutine. False: :meth:`acquire` one."""
        if self._tps <= 0:
            return True
        if self._local and not self._lock.locked():
            self._local -= 1
            return True
        return False

    async def acquire(self) -> None:
        """Wait for one token."""
        if self.take_now():
            return
        async with self._lock:
            while self._local == 0:
                granted, wait_ms = await self._store.take_tokens(
                    self._channel, self._tps, self._burst, self._chunk)
                self._local += granted
                if not granted:
                    await asyncio.sleep(wait_ms / 1000)  # pacing, not synchronisation
            self._local -= 1
