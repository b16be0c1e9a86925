"""Shared fixtures: a private real redis-server per test (never fakeredis for integration)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from worker.redisproc import RedisProcess


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """URL of a fresh redis-server on a free port, stopped after the test."""
    async with RedisProcess() as url:
        yield url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the private redis-server."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
