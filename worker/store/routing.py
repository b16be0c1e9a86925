"""Routing's failover (issue 15): moving messages along their route's chain of channels, and
what it needs to know: the due messages of a channel, and where some worker has a bind up."""

from __future__ import annotations

import json
from collections.abc import Sequence

from worker.store.base import StoreBase, _text, now_ms
from worker.store.keys import SNAPSHOTS, pending_key, snapshot_key
from worker.store.records import FailedOver


class Routing(StoreBase):
    """Failover moves; no keys of its own (a move rewrites the record's channel and moves its
    due entry from pending:{from} to pending:{to})."""

    async def fail_over(self, ids: Sequence[str], *, channel: str, code: str, text: str,
                        worker: str = "") -> FailedOver:
        """Move messages still on ``channel`` and not on the wire (queued; or sending under
        ``worker``, which gives them up) to the next channel of their route's chain. Atomic
        per message; a message without a next channel, or no longer there, stays."""
        if not ids:
            return FailedOver({}, [])
        moved, last = await self._durably(
            self._fail_over, args=[now_ms(), channel, worker, code, text, *ids])
        return FailedOver({_text(i): _text(c) for i, c in moved}, [_text(i) for i in last])

    async def due_page(self, channel: str, start: int, limit: int) -> list[str]:
        """Due ids of ``channel`` from rank ``start`` among them, at most ``limit``."""
        ids = await self._redis.zrangebyscore(pending_key(channel), "-inf", now_ms(),
                                              start=start, num=limit)
        return [_text(i) for i in ids]

    async def bound_channels(self) -> set[str]:
        """Channels on which some live worker has a transmitting bind up (from the snapshots
        workers publish every heartbeat; a dead worker's expire with it)."""
        workers = await self._redis.zrangebyscore(SNAPSHOTS, now_ms(), "+inf")
        if not workers:
            return set()
        snaps = await self._redis.mget([snapshot_key(_text(w)) for w in workers])
        return {name for snap in snaps if snap
                for name, ch in json.loads(snap).get("channels", {}).items() if ch.get("bound")}
