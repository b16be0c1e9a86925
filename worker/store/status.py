"""What the status page and metrics read: worker snapshots, counters, queue depths."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from worker.store.base import StoreBase, _text, now_ms
from worker.store.bounds import QUEUE_HORIZON_MS
from worker.store.keys import (
    ARQ_QUEUE,
    FAILURES,
    SNAPSHOTS,
    pending_key,
    scheduled_key,
    snapshot_key,
    stats_key,
)
from worker.store.records import Overview


class StatusPage(StoreBase):
    """Worker snapshots, per-minute counters, failures and queue depths."""

    async def publish_snapshot(self, worker: str, snapshot: Mapping[str, Any], ttl_ms: int) -> None:
        """Publish a worker's view of its binds (status page); it expires with the worker."""
        now = now_ms()
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(snapshot_key(worker), json.dumps(snapshot), px=ttl_ms)
        pipe.zadd(SNAPSHOTS, {worker: now + ttl_ms})
        pipe.zremrangebyscore(SNAPSHOTS, "-inf", now)
        await pipe.execute()

    async def overview(self, channels: Sequence[str], minutes: int, failures: int) -> Overview:
        """What the status page shows: live workers' snapshots, per-minute counters of the last
        ``minutes`` minutes, the latest failures and queue depths. Two round trips."""
        now = now_ms()
        first = now // 60_000 - minutes + 1
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrangebyscore(SNAPSHOTS, now, "+inf")
        for minute in range(first, first + minutes):
            pipe.hgetall(stats_key(minute))
        pipe.lrange(FAILURES, 0, failures - 1)
        pipe.zcard(ARQ_QUEUE)
        workers, *rows = await pipe.execute()
        counters, (latest, jobs) = rows[:minutes], rows[minutes:]
        for worker in workers:
            pipe.get(snapshot_key(_text(worker)))
        for channel in channels:
            pipe.zcount(pending_key(channel), "-inf", now + QUEUE_HORIZON_MS)
            pipe.zcard(pending_key(channel))
            pipe.zcount(scheduled_key(channel), f"({now + QUEUE_HORIZON_MS}", "+inf")
        snaps = await pipe.execute()
        depths = snaps[len(workers):]
        queued = {ch: int(depths[3 * i]) for i, ch in enumerate(channels)}
        later = {ch: int(depths[3 * i + 2]) for i, ch in enumerate(channels)}
        return Overview(
            now_ms=now,
            workers=[json.loads(s) for s in snaps[:len(workers)] if s],
            minutes=[(first + i, {_text(k): int(v) for k, v in row.items()})
                     for i, row in enumerate(counters)],
            failures=[json.loads(f) for f in latest], jobs=int(jobs),
            queued=queued,
            # the due index's entries past the horizon: receipt waits, and scheduled messages
            awaiting_receipt={ch: max(0, int(depths[3 * i + 1]) - queued[ch] - later[ch])
                              for i, ch in enumerate(channels)},
            scheduled=later,
        )

    async def queue_depths(self, channels: Sequence[str]) -> tuple[int, dict[str, int]]:
        """Jobs in the arq queue, and unfinished messages per channel (pending index):
        read-only, one round trip, for metrics at scrape time."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(ARQ_QUEUE)
        for channel in channels:
            pipe.zcard(pending_key(channel))
        jobs, *pending = await pipe.execute()
        return int(jobs), {ch: int(n) for ch, n in zip(channels, pending, strict=True)}
