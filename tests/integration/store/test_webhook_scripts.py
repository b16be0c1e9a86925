"""The webhook scripts called alone: targets, an event delivered or dead, dead letters replayed."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from tests.integration.store.scripting import published, run
from tests.integration.store.test_message_scripts import CH, _accept, _claim, _message
from worker.store import (
    WEBHOOK_GROUP,
    WEBHOOK_NOTIFY,
    WEBHOOK_SHARDS,
    account_key,
    callback_copy_key,
    dead_letter_key,
    inbound_key,
    now_ms,
    webhook_accounts_key,
    webhook_shard,
    webhook_stream_key,
)

pytestmark = pytest.mark.integration

# Where the helpers below put their one event: the stream of message a1's shard.
A1 = webhook_stream_key("acme", webhook_shard("a1"))


async def test_set_webhook_target_sets_the_secret_with_the_first_url(redis: Redis) -> None:
    callback = [account_key("acme"), webhook_accounts_key()]
    assert await run(redis, "set_webhook_target", keys=callback,
                     args=["cb_url", "https://x", "acme", "s1", "0"]) is None
    await redis.hset(account_key("acme"), "created_at", "1")
    # the callback: the secret, and what the shards' copies must say, at a new version
    assert await run(redis, "set_webhook_target", keys=callback,
                     args=["cb_url", "https://x", "acme", "s1", "0"]) == [b"s1", 1, b"1", b""]
    await redis.hset(account_key("acme"), "cb_events", ",failed,")
    assert await run(redis, "set_webhook_target", keys=callback,
                     args=["cb_url", "", "acme", "s1", "0"]) == [b"", 2, b"0", b",failed,"]
    inbound = [account_key("acme"), webhook_accounts_key(), inbound_key("sim")]
    # an inbound URL: the secret, and the version to copy the channel's entry with
    assert await run(redis, "set_webhook_target", keys=inbound,
                     args=["in:sim", "https://in", "acme", "s2", "0"]) == [b"", 1]
    assert await redis.hget(inbound_key("sim"), "acme") == b"https://in"
    assert await redis.smembers(webhook_accounts_key()) == {b"acme"}
    assert await run(redis, "set_webhook_target", keys=inbound,
                     args=["in:sim", "", "acme", "s3", "0"]) == [b"", 2]
    assert not await redis.exists(inbound_key("sim"))
    assert await redis.hget(account_key("acme"), "cb_v") == b"2"  # not the callback's


async def _events_by_shard(redis: Redis, account: str) -> dict[int | None, list[str]]:
    """The message ids of an account's events, by the stream they are in (None: unsharded)."""
    found: dict[int | None, list[str]] = {}
    for shard in [None, *range(WEBHOOK_SHARDS)]:
        rows = await redis.xrange(webhook_stream_key(account, shard))
        if rows:
            found[shard] = [f[b"id"].decode() for _, f in rows]
    return found


async def test_a_transition_writes_its_event_to_the_stream_of_its_messages_shard(
    redis: Redis,
) -> None:
    ids = [f"m{i}" for i in range(40)]
    now = now_ms()
    await run(redis, "copy_callback", keys=[callback_copy_key("acme")], args=[1, "1", ""])
    await _accept(redis, now, [{"w": 60_000, "m": [_message(i, cmid=i) for i in ids]}])
    await _claim(redis, now, *ids)
    for status in ("submitted", "unknown"):
        await run(redis, "record_outcomes", args=[now, 600, json.dumps([
            {"id": i, "channel": CH, "smsc": "acct", "ids": [f"s-{i}"], "status": status,
             "code": "", "text": "", "retry_at": 0, "attempted": True, "receipt_wait": 0}
            for i in ids])])
    found = await _events_by_shard(redis, "acme")
    assert None not in found  # nothing new goes to the stream of before shards
    assert len(found) > 1  # 40 messages spread over several shards
    for shard, messages in found.items():
        assert {webhook_shard(m) for m in messages} == {shard}
        # both events of each message, in their order, in the one stream
        assert sorted(messages) == sorted(m for m in ids if webhook_shard(m) == shard for _ in "ab")
    assert sum(len(m) for m in found.values()) == 2 * len(ids)


async def _pending_event(redis: Redis) -> bytes:
    stream = A1
    await redis.xgroup_create(stream, WEBHOOK_GROUP, id="0", mkstream=True)
    entry: bytes = await redis.xadd(stream, {"kind": "status", "id": "a1"})
    await redis.xreadgroup(WEBHOOK_GROUP, "deliverer", {stream: ">"})
    return entry


async def test_webhook_done_deletes_a_delivered_event_and_notifies(redis: Redis) -> None:
    entry = await _pending_event(redis)
    keys = [A1, dead_letter_key("acme")]
    async with published(redis, WEBHOOK_NOTIFY) as heard:
        assert await run(redis, "webhook_done", keys=keys,
                         args=[entry, "e1", "acme", "delivered"]) == 1
    assert await redis.xlen(A1) == 0
    assert (await redis.xpending(A1, WEBHOOK_GROUP))["pending"] == 0
    assert not await redis.exists(dead_letter_key("acme"))
    assert heard == ["acme delivered e1"]


async def test_webhook_done_keeps_a_dead_event_in_the_dead_letters(redis: Redis) -> None:
    entry = await _pending_event(redis)
    keys = [A1, dead_letter_key("acme")]
    assert await run(redis, "webhook_done", keys=keys,
                     args=[entry, "e1", "acme", "dead", "id", "a1", "reason", "410"]) == 1
    ((_, dead),) = await redis.xrange(dead_letter_key("acme"))
    assert dead == {b"id": b"a1", b"reason": b"410"}
    assert await redis.xlen(A1) == 0


async def test_replay_dead_letters_queues_them_again_without_their_verdict_in_their_shards(
    redis: Redis,
) -> None:
    dead = dead_letter_key("acme")
    # two messages of different shards
    other = next(f"b{i}" for i in range(100) if webhook_shard(f"b{i}") != webhook_shard("a1"))
    first = await redis.xadd(dead, {"id": "a1", "reason": "410", "attempts": "3"})
    await redis.xadd(dead, {"id": other, "reason": "410"})
    keys = [dead]
    async with published(redis, WEBHOOK_NOTIFY) as heard:
        assert await run(redis, "replay_dead_letters", keys=keys, args=["acme", first]) == 1
    assert await _events_by_shard(redis, "acme") == {webhook_shard("a1"): ["a1"]}
    ((_, event),) = await redis.xrange(A1)
    assert event == {b"id": b"a1"}
    assert heard == [f"acme replayed {first.decode()}"]
    assert await run(redis, "replay_dead_letters", keys=keys, args=["acme"]) == 1
    assert await redis.xlen(dead) == 0
    assert await _events_by_shard(redis, "acme") == {webhook_shard("a1"): ["a1"],
                                                     webhook_shard(other): [other]}


async def test_set_callback_options_chooses_statuses_and_batches_of_a_known_account(
    redis: Redis,
) -> None:
    key = account_key("acme")
    assert await run(redis, "set_callback_options", keys=[key], args=[",failed,", 5, 50]) == 0
    await redis.hset(key, "cb_url", "https://x")
    # the new settings at a new version, for the shards' copies
    assert await run(redis, "set_callback_options", keys=[key],
                     args=[",failed,", 5, 50]) == [1, b"1", b",failed,"]
    assert await redis.hmget(key, ["cb_events", "cb_batch", "cb_batch_ms"]) == [
        b",failed,", b"5", b"50"]
    assert await run(redis, "set_callback_options", keys=[key],
                     args=["*", "", ""]) == [2, b"1", b""]
    assert await redis.hmget(key, ["cb_events", "cb_batch"]) == [None, b"5"]
    assert await run(redis, "set_callback_options", keys=[key],
                     args=["", "-", "-"]) == [3, b"1", b""]
    assert await redis.hmget(key, ["cb_batch", "cb_batch_ms"]) == [None, None]


async def test_copy_callback_writes_a_newer_version_only(redis: Redis) -> None:
    copy = [callback_copy_key("acme")]
    assert await run(redis, "copy_callback", keys=copy, args=[0, "1", ",failed,"]) == 1
    assert await redis.hgetall(copy[0]) == {b"v": b"0", b"url": b"1", b"events": b",failed,"}
    assert await run(redis, "copy_callback", keys=copy, args=[3, "0", ""]) == 1
    assert await redis.hgetall(copy[0]) == {b"v": b"3"}
    # an older copy arriving late, or the same one again, changes nothing
    assert await run(redis, "copy_callback", keys=copy, args=[2, "1", ""]) == 0
    assert await run(redis, "copy_callback", keys=copy, args=[3, "1", ""]) == 0
    assert await redis.hgetall(copy[0]) == {b"v": b"3"}
    assert await run(redis, "copy_callback", keys=copy, args=[4, "1", ""]) == 1
    assert await redis.hgetall(copy[0]) == {b"v": b"4", b"url": b"1"}


async def test_acknowledge_webhooks_acks_and_deletes_events_and_says_so_once(
    redis: Redis,
) -> None:
    entry = await _pending_event(redis)
    stream = A1
    async with published(redis, WEBHOOK_NOTIFY) as heard:
        assert await run(redis, "acknowledge_webhooks", keys=[stream],
                         args=["acme", entry, "a1.submitted"]) == 1
    assert heard == ["acme delivered a1.submitted"]
    assert await redis.xlen(stream) == 0
    assert (await redis.xpending(stream, WEBHOOK_GROUP))["pending"] == 0
