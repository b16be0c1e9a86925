"""Concurrent requests' accepts share one round trip, each still all-or-nothing on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.keycache import GatewayStore
from gateway.metrics import GatewayMetrics
from worker.ids import new_id
from worker.store import (
    AcceptCall,
    AcceptResult,
    KeyLimits,
    LimitExceeded,
    NewMessage,
    Store,
    cmid_key,
    msg_key,
)

pytestmark = pytest.mark.integration


def _call(key_id: str, n: int, *, burst: int = 0, cmid: str = "", fp: str = "a") -> AcceptCall:
    msgs = [NewMessage(api_id=new_id(), account=key_id, channel="sim", to=f"2782{i:07d}",
                       content="hi", encoding="gsm7", segments=1, cmid=cmid, fingerprint=fp)
            for i in range(n)]
    limits = KeyLimits(key_id=key_id, rate=1000 if burst else 0, burst=burst)
    return AcceptCall(limits, msgs, 60, new_id(), b"job", 60)


async def test_each_request_in_a_batch_gets_its_own_answer(redis: Redis) -> None:
    store = Store(redis, 3600)
    calls = [_call("k1", 2), _call("k2", 5, burst=3), _call("k3", 0),
             _call("k4", 1, cmid="c", fp="x"), _call("k4", 1, cmid="c", fp="y")]
    ok, limited, empty, first, conflict = await store.accept_within_many(calls)
    assert isinstance(ok, list) and [r.api_id for r in ok] == [m.api_id for m in
                                                               calls[0].messages]
    assert isinstance(limited, LimitExceeded) and limited.reason == "burst"
    assert empty == []
    assert isinstance(first, list) and not first[0].conflict
    assert isinstance(conflict, list) and conflict[0].conflict
    stored = {k.decode().rsplit(":", 1)[1] async for k in redis.scan_iter(msg_key("*"))}
    assert stored == {m.api_id for c in (calls[0], calls[3]) for m in c.messages}


class _CountingStore(GatewayStore):
    """Records the size of every batch it sends."""

    batches: list[int]

    async def accept_within_many(
        self, calls: Sequence[AcceptCall]
    ) -> list[list[AcceptResult] | LimitExceeded | Exception]:
        self.batches.append(len(calls))
        return await super().accept_within_many(calls)


async def test_concurrent_accepts_through_the_gateway_store_are_batched(redis: Redis) -> None:
    store = _CountingStore(GatewayMetrics(), redis, 3600)
    store.batches = []
    calls = [_call(f"k{i}", 1) for i in range(20)]
    results = await asyncio.gather(*(
        store.accept_within(c.limits, c.messages, window_seconds=60, job_id=c.job_id,
                            job_payload=c.job_payload, job_expiry_seconds=60) for c in calls))
    assert all(isinstance(r, list) and len(r) == 1 for r in results)
    assert sum(store.batches) == 20 and len(store.batches) < 20  # fewer round trips


async def test_an_error_in_one_request_of_a_batch_is_that_requests_alone(redis: Redis) -> None:
    store = Store(redis, 3600)
    await redis.set(cmid_key("k2", "broken"), "not a hash")  # the idempotency lookup will fail
    calls = [_call("k1", 1), _call("k2", 1, cmid="broken"), _call("k3", 2)]
    first, broken, last = await store.accept_within_many(calls)
    assert isinstance(broken, ResponseError) and "WRONGTYPE" in str(broken)
    assert isinstance(first, list) and isinstance(last, list) and len(last) == 2
    stored = {k.decode().rsplit(":", 1)[1] async for k in redis.scan_iter(msg_key("*"))}
    assert stored == {m.api_id for c in (calls[0], calls[2]) for m in c.messages}


async def test_a_batch_is_one_script_run(redis: Redis) -> None:
    store = Store(redis, 3600)
    await store.accept_within_many([_call("k0", 1)])  # loads the script
    before = (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"]
    await store.accept_within_many([_call(f"k{i}", 2) for i in range(10)])
    after = (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"]
    assert after - before == 1
