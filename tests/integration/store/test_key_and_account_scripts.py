"""The API key and account scripts called alone: authenticate, create, list, change, parent,
numbers."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from tests.integration.store.scripting import run
from worker.store import (
    account_key,
    api_key_key,
    api_keys_index_key,
    bucket_key,
    children_key,
    copy_version_key,
    numbers_key,
)

pytestmark = pytest.mark.integration


async def _create(redis: Redis, secret_hash: str, key_id: str, account: str,
                  parent: str = "", owner: str = "") -> bytes:
    fields = json.dumps({"id": key_id, "account": account, "enabled": "1"})
    result: bytes = await run(redis, "create_key", args=[secret_hash, fields, parent, owner, 5])
    return result


async def test_authenticate_key_returns_the_record_children_and_the_clock(redis: Redis) -> None:
    await redis.hset(api_key_key("h1"), mapping={"account": "p1", "roles": "Partner",
                                                 "enabled": "1"})
    await redis.sadd(children_key("p1"), "c1")
    flat, children, now, parent = await run(redis, "authenticate_key", keys=[api_key_key("h1")],
                                    args=[60_000])
    assert dict(zip(flat[::2], flat[1::2], strict=True))[b"account"] == b"p1"
    assert children == [b"c1"] and parent == b""
    assert await redis.hget(api_key_key("h1"), "last_used") == str(now).encode()
    assert await run(redis, "authenticate_key", keys=[api_key_key("nope")], args=[0]) is None


async def test_create_key_stores_the_key_and_its_account_once(redis: Redis) -> None:
    assert await _create(redis, "h1", "k1", "acme") == b"ok"
    assert await _create(redis, "h1", "k2", "acme") == b"exists"
    assert await redis.hget(api_keys_index_key(), "k1") == b"h1"
    assert await redis.hmget(account_key("acme"), ["created_at", "ownership"]) == [b"5", b"Admin"]
    assert await _create(redis, "h2", "k2", "acme", owner="p1") == b"forbidden"
    assert await _create(redis, "h3", "k3", "sub", owner="p1") == b"ok"
    assert await redis.smembers(children_key("p1")) == {b"sub"}


async def test_list_keys_gives_each_record_its_accounts_parent(redis: Redis) -> None:
    await _create(redis, "h1", "k1", "acme", parent="p1")
    await _create(redis, "h2", "k2", "other")
    rows = [dict(zip(r[::2], r[1::2], strict=True)) for r in await run(redis, "list_keys",
                                                                        args=[""])]
    assert sorted((r[b"id"], r[b"parent"]) for r in rows) == [(b"k1", b"p1"), (b"k2", b"")]
    (only,) = await run(redis, "list_keys", args=["k2"])
    assert b"k2" in only


async def test_change_key_rotates_disables_and_deletes(redis: Redis) -> None:
    await _create(redis, "h1", "k1", "acme")
    assert await run(redis, "change_key", args=["rotate", "k1", "h2", 9]) == 1
    assert not await redis.exists(api_key_key("h1"))
    assert await redis.hget(api_key_key("h2"), "rotated_at") == b"9"
    assert await run(redis, "change_key", args=["disable", "k1", "", 9]) == 1
    assert await redis.hget(api_key_key("h2"), "enabled") == b"0"
    await redis.hset(bucket_key("k1"), "tokens", "1")
    assert await run(redis, "change_key", args=["delete", "k1", "", 9]) == 1
    assert not await redis.exists(api_key_key("h2"), bucket_key("k1"))
    assert await run(redis, "change_key", args=["enable", "k1", "", 9]) == 0


async def test_change_key_sets_and_clears_a_keys_senders(redis: Redis) -> None:
    await _create(redis, "h1", "k1", "acme")
    assert await run(redis, "change_key", args=["senders", "k1", "Acme,4470*", 9]) == 1
    assert await redis.hget(api_key_key("h1"), "senders") == b"Acme,4470*"
    assert await run(redis, "change_key", args=["senders", "k1", "", 9]) == 1
    assert not await redis.hexists(api_key_key("h1"), "senders")
    assert await redis.hget(api_key_key("h1"), "enabled") == b"1"
    assert await run(redis, "change_key", args=["senders", "nope", "Acme", 9]) == 0


async def test_set_parent_moves_an_account_between_partners(redis: Redis) -> None:
    await _create(redis, "h1", "k1", "acme", parent="p1")
    await _create(redis, "h2", "k2", "p2")
    assert await run(redis, "set_parent", args=["nope", ""]) == b"unknown"
    assert await run(redis, "set_parent", args=["acme", "nope"]) == b"unknown-parent"
    assert await run(redis, "set_parent", args=["acme", "p2"]) == b"ok"
    assert await redis.smembers(children_key("p1")) == set()
    assert await redis.smembers(children_key("p2")) == {b"acme"}
    assert await redis.hmget(account_key("acme"), ["parent", "ownership"]) == [b"p2", b"Admin"]


async def test_assign_number_needs_a_known_account(redis: Redis) -> None:
    keys = [numbers_key("sim"), account_key("acme")]
    assert await run(redis, "assign_number", keys=keys, args=["4412", "acme"]) == 0
    await _create(redis, "h1", "k1", "acme")
    # the version to copy the entry with to the shards' copies: one counter for every change
    await redis.set(copy_version_key(), 6)
    assert await run(redis, "assign_number", keys=keys, args=["4412", "acme"]) == 7
    assert await redis.hget(numbers_key("sim"), "4412") == b"acme"


async def test_unassign_number_takes_an_assigned_number_and_answers_a_new_version(
    redis: Redis,
) -> None:
    await redis.hset(numbers_key("sim"), "4412", "acme")
    assert await run(redis, "unassign_number", keys=[numbers_key("sim")], args=["4412"]) == 1
    assert not await redis.hexists(numbers_key("sim"), "4412")
    assert await run(redis, "unassign_number", keys=[numbers_key("sim")], args=["4412"]) == 0
    assert await redis.get(copy_version_key()) == b"1"
