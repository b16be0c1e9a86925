"""Leases and liveness: bind slots and worker heartbeats."""

from __future__ import annotations

from worker.store.base import StoreBase
from worker.store.keys import bind_key, worker_key


class Leases(StoreBase):
    """Bind slots (the SMSC caps binds) and worker heartbeats."""

    async def acquire_bind_slot(
        self, channel: str, kind: str, slots: int, owner: str, ttl_ms: int
    ) -> int | None:
        """Take a free one of ``slots`` bind slots for ``owner``, or None when all are held."""
        keys = [bind_key(channel, kind, slot) for slot in range(slots)]
        got = await self._acquire_lease(keys=keys, args=[owner, ttl_ms])
        return None if int(got) < 0 else int(got)

    async def renew_bind_slot(
        self, channel: str, kind: str, slot: int, owner: str, ttl_ms: int
    ) -> bool:
        """Extend a held bind slot; False if it was lost (expired and taken)."""
        return bool(await self._renew_lease(keys=[bind_key(channel, kind, slot)],
                                            args=[owner, ttl_ms]))

    async def release_bind_slot(self, channel: str, kind: str, slot: int, owner: str) -> None:
        """Give a bind slot back at once (clean stop)."""
        await self._release_lease(keys=[bind_key(channel, kind, slot)], args=[owner])

    async def heartbeat(self, worker: str, ttl_ms: int) -> None:
        """Declare ``worker`` alive for ``ttl_ms``; its claims are safe while this lasts."""
        await self._redis.set(worker_key(worker), "1", px=ttl_ms)

    async def forget_worker(self, worker: str) -> None:
        """A clean stop: the worker's claims may be taken over at once."""
        await self._redis.delete(worker_key(worker))
