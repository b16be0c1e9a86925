"""The transitions channel: what scripts publish on EVENTS, parsed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from redis.asyncio import Redis

from worker.store.keys import EVENTS


def parse_events(data: bytes | str) -> list[tuple[str, str]]:
    """(id, status) of every line of one message published on :data:`EVENTS`."""
    text = data.decode() if isinstance(data, bytes) else data
    return [(i, status) for i, _, status in (line.partition(" ") for line in text.split("\n"))]


async def watch_transitions(redis: Redis) -> AsyncIterator[tuple[str, str]]:
    """(apiMessageId, status) for every transition from now on (live views, tests)."""
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(EVENTS)
        async for msg in pubsub.listen():
            if msg["type"] == "message":
                api_id, _, status = msg["data"].decode().partition(" ")
                yield api_id, status
