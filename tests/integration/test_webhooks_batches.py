"""Status callbacks at volume: event selection, batches, faults of the receiver.

Real redis-server, the SMSC simulator over TCP, an arq worker, the gateway, the webhooks
service and local aiohttp sinks (the fixtures of test_webhooks). Waits are on the sinks' own
records inside ``asyncio.timeout``, never a sleep.
"""

# The stack fixture is imported from test_webhooks and named in signatures, which ruff reads
# as a redefinition.
# ruff: noqa: F811
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.test_webhooks import (  # noqa: F401
    Hit,
    Sink,
    Stack,
    hooks,
    stack,
    subscribed,
    until_all,
    verify,
    waiting,
)
from tests.integration.test_webhooks_recovery import _accounts, _claimed
from worker.config import WebhookSettings
from worker.lifecycle import Status
from worker.store import WEBHOOK_NOTIFY, Outcome, WebhookStore

pytestmark = pytest.mark.integration

FINAL_ONLY = ["delivered", "undelivered", "expired", "rejected", "failed"]


async def set_callback(stack: Stack, account: str, url: str, **choices: Any) -> str:
    status, reply = await stack.call("PUT", f"/admin/accounts/{account}/callback", stack.admin,
                                     {"url": url, **choices})
    assert status == 200, reply
    return str(reply["secret"])


def events_of(hit: Hit) -> list[dict[str, Any]]:
    """The events a POST carried: a batch, or today's single event."""
    body = hit.json
    return list(body["events"]) if "events" in body else [body]


def acknowledged(sink: Sink) -> list[str]:
    """eventIds of every event the receiver answered 2xx, in the order it answered."""
    return [e["eventId"] for h in sink.hits if 200 <= h.answered < 300 for e in events_of(h)]


async def until_acknowledged(sink: Sink, count: int) -> None:
    async with sink._changed:
        await sink._changed.wait_for(lambda: len(acknowledged(sink)) >= count)


# --- capture -------------------------------------------------------------------------------------


async def test_statuses_an_account_did_not_choose_are_never_written_to_its_stream(
    redis: Redis,
) -> None:
    store = await _accounts(redis, "acme")
    hooks = WebhookStore(redis)
    await hooks.set_callback("acme", "http://127.0.0.1:9/x", new_secret="s")
    assert await hooks.set_callback_options("acme", events=["failed"], max_batch=None,
                                            max_batch_delay_ms=None)
    submitted, failed = await _claimed(store, "acme", "acme", cmids=["c-1", "c-2"])
    await store.record_outcomes([
        Outcome(api_id=submitted, channel="sim", smsc_ids=["abc"]),
        Outcome(api_id=failed, channel="sim", status=Status.FAILED, error_code="0x0000000b"),
    ], dlr_ttl_seconds=60)
    rows = await waiting(redis, "acme")
    assert [(f[b"id"].decode(), f[b"status"].decode()) for f in rows] == [(failed, "failed")]


# --- batches -------------------------------------------------------------------------------------


async def test_a_batch_carries_max_batch_events_in_one_signed_body_naming_their_count(
    stack: Stack,
) -> None:
    sink = await stack.sink()
    # A linger far longer than the test: only full batches can go.
    secret = await set_callback(stack, "acme", sink.url, events=["delivered"], maxBatch=5,
                                maxBatchDelayMs=60_000)
    async with asyncio.timeout(30), subscribed(stack.redis, WEBHOOK_NOTIFY) as notices:
        ids = await stack.send("acme", 10)
        await until_all(notices, {f"acme delivered {i}.delivered" for i in ids})
    assert len(sink.hits) == 2
    for hit in sink.hits:
        assert verify(secret, hit) and hit.answered == 200
        assert hit.headers["X-Smsgw-Event-Count"] == "5"
        assert [e["status"] for e in events_of(hit)] == ["delivered"] * 5
        assert all(e["type"] == "message.status" and e["receipt"]["stat"] == "DELIVRD"
                   for e in events_of(hit))
    assert sorted(acknowledged(sink)) == sorted(f"{i}.delivered" for i in ids)
    assert await waiting(stack.redis, "acme") == []


async def test_a_batch_that_is_not_full_goes_after_its_linger(stack: Stack) -> None:
    sink = await stack.sink()
    await set_callback(stack, "acme", sink.url, maxBatch=100, maxBatchDelayMs=20)
    async with asyncio.timeout(30):
        ids = await stack.send("acme", 3)
        await until_acknowledged(sink, 6)
    assert sorted(acknowledged(sink)) == sorted(f"{i}.{s}" for i in ids
                                                for s in ("submitted", "delivered"))
    assert all("events" in h.json for h in sink.hits)  # a batching account always gets batches


@pytest.mark.parametrize("max_batch", [1, 10])
async def test_a_receiver_failing_every_tenth_post_gets_every_event_once_and_in_order(
    stack: Stack, max_batch: int,
) -> None:
    sink = await stack.sink(judge=lambda _, number: 500 if number % 10 == 0 else 200)
    await set_callback(stack, "acme", sink.url, maxBatch=max_batch, maxBatchDelayMs=5)
    async with asyncio.timeout(60):
        ids = [*await stack.send("acme", 100, "a"), *await stack.send("acme", 100, "b")]
        await until_acknowledged(sink, 400)
    got = acknowledged(sink)
    assert sorted(got) == sorted(f"{i}.{s}" for i in ids for s in ("submitted", "delivered"))
    assert any(h.answered == 500 for h in sink.hits)
    # Order per message: a delivered event goes after its message's submitted event, in the
    # same POST or after the POST that carried it was answered 2xx.
    answered: set[str] = set()
    for hit in sink.hits:
        carried = [e["eventId"] for e in events_of(hit)]
        for n, eid in enumerate(carried):
            api_id, _, status = eid.rpartition(".")
            if status == "delivered":
                earlier = f"{api_id}.submitted"
                assert earlier in answered or earlier in carried[:n], eid
        if hit.answered == 200:
            answered.update(carried)


async def test_a_batch_the_receiver_finds_too_large_is_split_and_retried_smaller(
    stack: Stack,
) -> None:
    sink = await stack.sink(judge=lambda hit, _: 413 if len(events_of(hit)) > 3 else 200)
    await set_callback(stack, "acme", sink.url, events=FINAL_ONLY, maxBatch=8,
                       maxBatchDelayMs=60_000)
    async with asyncio.timeout(30):
        ids = await stack.send("acme", 8)
        await until_acknowledged(sink, 8)
    assert sorted(acknowledged(sink)) == sorted(f"{i}.delivered" for i in ids)
    assert [len(events_of(h)) for h in sink.hits[:2]] == [8, 4]
    assert all(len(events_of(h)) <= 3 for h in sink.hits if h.answered == 200)


# A timeout long enough that the fast receiver's answers, on a loaded machine, never time out
# (a timed-out POST is sent again: the fast account would see events twice).
@pytest.mark.parametrize("hooks", [WebhookSettings(
    timeout_seconds=5, backoff_min_seconds=0.05, backoff_max_seconds=0.2, lease_seconds=10,
    allow_private_networks=True)])
async def test_a_receiver_that_never_answers_holds_up_only_its_own_account(
    stack: Stack,
) -> None:
    slow = await stack.sink()
    slow.gate.clear()  # never answers: every POST of this account times out
    fast = await stack.sink()
    await set_callback(stack, "slow", slow.url, maxBatch=10, maxBatchDelayMs=5)
    await set_callback(stack, "fast", fast.url, maxBatch=10, maxBatchDelayMs=5)
    async with asyncio.timeout(60):
        await stack.send("slow", 50, "slow")
        await slow.wait_for(1)
        fast_ids = await stack.send("fast", 50, "fast")
        await until_acknowledged(fast, 100)
    assert sorted(acknowledged(fast)) == sorted(f"{i}.{s}" for i in fast_ids
                                                for s in ("submitted", "delivered"))
    assert not [h for h in slow.hits if h.answered]
    slow.gate.set()


@pytest.mark.parametrize("hooks", [WebhookSettings(
    timeout_seconds=2, max_age_seconds=1, backoff_min_seconds=0.1, backoff_max_seconds=0.2,
    lease_seconds=10, allow_private_networks=True)])
async def test_events_of_a_failing_batch_are_dead_lettered_and_replayed_one_by_one(
    stack: Stack,
) -> None:
    sink = await stack.sink(default=503)
    await set_callback(stack, "acme", sink.url, maxBatch=10, maxBatchDelayMs=0)
    async with asyncio.timeout(30), subscribed(stack.redis, WEBHOOK_NOTIFY) as notices:
        ids = await stack.send("acme", 3)
        events = {f"{i}.{s}" for i in ids for s in ("submitted", "delivered")}
        await until_all(notices, {f"acme dead {e}" for e in events})
    status, listed = await stack.call("GET", "/admin/webhooks/dead?account=acme", stack.admin)
    assert status == 200 and sorted(r["eventId"] for r in listed["results"]) == sorted(events)
    one = next(r for r in listed["results"] if r["eventId"] == f"{ids[0]}.delivered")

    sink.default = 200
    async with asyncio.timeout(30):
        status, replayed = await stack.call("POST", "/admin/webhooks/dead/replay", stack.admin,
                                            {"account": "acme", "ids": [one["id"]]})
        assert (status, replayed["replayed"]) == (200, 1)
        await until_acknowledged(sink, 1)
    assert acknowledged(sink) == [f"{ids[0]}.delivered"]
