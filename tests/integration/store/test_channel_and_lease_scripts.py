"""A channel's and a worker's scripts called alone: tokens, concatenation refs, leases."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from tests.integration.store.scripting import run
from worker.store import bind_key, msg_key, now_ms, ref_key, tps_key

pytestmark = pytest.mark.integration


async def test_take_tokens_grants_at_most_the_burst_and_says_when_the_next_comes(
    redis: Redis,
) -> None:
    now = now_ms()
    assert await run(redis, "take_tokens", keys=[tps_key("sim")], args=[now, 10, 5, 8]) == [5, 100]
    assert await run(redis, "take_tokens", keys=[tps_key("sim")], args=[now, 10, 5, 1]) == [0, 100]
    assert await run(redis, "take_tokens", keys=[tps_key("sim")],
                     args=[now + 200, 10, 5, 8]) == [2, 100]


async def test_allocate_ref_hands_out_free_refs_and_keeps_a_messages_own(redis: Redis) -> None:
    now, refs = now_ms(), ref_key("sim", "27820000001")
    assert await run(redis, "allocate_ref", keys=[refs, msg_key("a1")],
                     args=[now, 2, 60_000, 7]) == 1
    assert await run(redis, "allocate_ref", keys=[refs, msg_key("a1")],
                     args=[now, 2, 60_000, 0]) == 1
    assert await run(redis, "allocate_ref", keys=[refs, msg_key("a2")],
                     args=[now, 2, 60_000, 1]) == 0
    assert await run(redis, "allocate_ref", keys=[refs, msg_key("a3")],
                     args=[now, 2, 60_000, 0]) == -1
    assert await redis.hget(msg_key("a2"), "ref") == b"0"


async def test_acquire_lease_takes_the_first_free_slot(redis: Redis) -> None:
    slots = [bind_key("sim", "tx", 0), bind_key("sim", "tx", 1)]
    assert await run(redis, "acquire_lease", keys=slots, args=["w1", 10_000]) == 0
    assert await run(redis, "acquire_lease", keys=slots, args=["w2", 10_000]) == 1
    assert await run(redis, "acquire_lease", keys=slots, args=["w3", 10_000]) == -1
    assert await redis.get(slots[1]) == b"w2"


async def test_renew_and_release_lease_act_for_its_owner_only(redis: Redis) -> None:
    lease = bind_key("sim", "tx", 0)
    await redis.set(lease, "w1", px=1000)
    assert await run(redis, "renew_lease", keys=[lease], args=["w2", 60_000]) == 0
    assert await run(redis, "renew_lease", keys=[lease], args=["w1", 60_000]) == 1
    assert await redis.pttl(lease) > 1000
    assert await run(redis, "release_lease", keys=[lease], args=["w2"]) == 0
    assert await run(redis, "release_lease", keys=[lease], args=["w1"]) == 1
    assert not await redis.exists(lease)
