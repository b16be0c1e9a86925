"""A gateway on a real loopback port with one Client key, and no worker (a status lookup finds
an accepted message): what the developer-surface tests drive with other people's tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.keys_cli import create_key
from worker.config import settings_from_dict
from worker.store import Store


@dataclass
class Gateway:
    base: str
    key: str


@pytest.fixture
async def gateway(redis_url: str, redis: Redis) -> AsyncIterator[Gateway]:
    """The gateway's base URL and a Client key of account 'acme' (channel 'sim')."""
    settings = settings_from_dict({"gateway": {"default_channel": "sim"}, "channels": {"sim": {}}},
                                  {"REDIS_URL": redis_url}, source="test")
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    key = await create_key(Store(redis, 3600), name="dev", account="acme",
                           roles=frozenset({"Client"}), channels=None)
    try:
        yield Gateway(f"http://127.0.0.1:{runner.addresses[0][1]}", key)
    finally:
        await runner.cleanup()
