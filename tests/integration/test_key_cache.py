"""The gateway remembers key lookups for a second; changes made through it apply at once."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from gateway.auth import hash_secret
from gateway.keycache import KEY_CACHE_SECONDS, GatewayStore
from gateway.keys_cli import create_key
from gateway.metrics import GatewayMetrics
from worker.store import Store

pytestmark = pytest.mark.integration


async def test_a_key_disabled_elsewhere_works_here_for_at_most_the_cache_time(
    redis: Redis,
) -> None:
    clock = [1000.0]
    elsewhere = Store(redis, 3600)  # the CLI, or another gateway
    secret = await create_key(elsewhere, name="k", account="acme", roles=frozenset({"Client"}),
                              channels=None)
    here = GatewayStore(GatewayMetrics(), redis, 3600, clock=lambda: clock[0])
    digest = hash_secret(secret)
    assert await here.authenticate_key(digest, touch_every_ms=60_000) is not None
    (info,) = [k for k in await elsewhere.api_keys() if k["name"] == "k"]
    await elsewhere.change_api_key(info["id"], "delete")
    assert await here.authenticate_key(digest, touch_every_ms=60_000) is not None  # remembered
    clock[0] += KEY_CACHE_SECONDS + 0.01
    assert await here.authenticate_key(digest, touch_every_ms=60_000) is None


async def test_a_key_changed_through_this_gateway_is_forgotten_at_once(redis: Redis) -> None:
    here = GatewayStore(GatewayMetrics(), redis, 3600)
    secret = await create_key(here, name="k", account="acme", roles=frozenset({"Client"}),
                              channels=None)
    digest = hash_secret(secret)
    assert await here.authenticate_key(digest, touch_every_ms=60_000) is not None
    (info,) = [k for k in await here.api_keys() if k["name"] == "k"]
    await here.change_api_key(info["id"], "delete")
    assert await here.authenticate_key(digest, touch_every_ms=60_000) is None
