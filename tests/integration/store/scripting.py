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


@asynccontextmanager
async def published(redis: Redis, channel: str) -> AsyncIterator[list[str]]:
    """What is published on ``channel`` inside the block (collected as it leaves)."""
    heard: list[str] = []
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        await pubsub.get_message(timeout=1)  # the subscription's confirmation
        yield heard
        async with asyncio.timeout(5):
            while msg := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2):
                heard.append(msg["data"].decode())
