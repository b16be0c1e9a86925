"""Running one store script with explicit KEYS and ARGV, and hearing what it publishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from worker.store import scripts


async def run(redis: Redis, name: str, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
    """The script ``lua/<name>.lua`` run once, as the loader resolves it."""
    return await scripts.register(redis, name)(keys=list(keys), args=list(args))


END = "-- end of the block --"  # published last by published(): nothing a script sends


@asynccontextmanager
async def published(redis: Redis, channel: str) -> AsyncIterator[list[str]]:
    """What is published on ``channel`` inside the block (collected as it leaves)."""
    heard: list[str] = []
    async with redis.pubsub() as pubsub, asyncio.timeout(10):
        await pubsub.subscribe(channel)
        while (await pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
            pass
        yield heard
        # Redis keeps a channel's order: once this marker arrives, everything before it has.
        await redis.publish(channel, END)
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if msg is None:
                continue
            if (data := msg["data"].decode()) == END:
                return
            heard.append(data)
