"""Bind slots as leases in Redis: a channel's bind count holds across all workers together."""

from __future__ import annotations

import logging

from worker.store import REDIS_ERRORS, Store

log = logging.getLogger("smsgw.worker")


class BindLeases:
    """Leases of bind slots held by one worker; they expire if the worker dies."""

    def __init__(self, store: Store, owner: str, ttl_seconds: float = 6.0) -> None:
        self._store = store
        self._owner = owner
        self.ttl_seconds = ttl_seconds

    @property
    def _ttl_ms(self) -> int:
        return int(self.ttl_seconds * 1000)

    async def acquire(self, channel: str, kind: str, slots: int) -> int | None:
        """A free slot, or None (all held, or Redis unreachable)."""
        try:
            return await self._store.acquire_bind_slot(channel, kind, slots, self._owner,
                                                       self._ttl_ms)
        except REDIS_ERRORS as exc:
            log.warning("bind slots of %s: redis unavailable (%s)", channel, exc)
            return None

    async def renew(self, channel: str, kind: str, slot: int) -> bool:
        """Extend a held slot. During a Redis outage the slot is kept: nobody can take it."""
        try:
            return await self._store.renew_bind_slot(channel, kind, slot, self._owner,
                                                     self._ttl_ms)
        except REDIS_ERRORS as exc:
            log.warning("renewing bind slot of %s: redis unavailable (%s)", channel, exc)
            return True

    async def release(self, channel: str, kind: str, slot: int) -> None:
        """Give a slot back (it expires by itself if this fails)."""
        try:
            await self._store.release_bind_slot(channel, kind, slot, self._owner)
        except REDIS_ERRORS as exc:
            log.warning("releasing bind slot of %s: redis unavailable (%s)", channel, exc)
