"""``smsgw store migrate``: a store written before hash tags gets its keys' tagged names."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from gateway.cli import build_parser
from gateway.store_cli import run_store
from tests.integration.test_webhooks import waiting
from worker.config import settings_from_dict
from worker.ids import new_id
from worker.store import (
    FAILURES,
    PARTS_DUE,
    MoPart,
    NewMessage,
    Store,
    account_key,
    api_keys_index_key,
    held_key,
    mo_key,
    msg_key,
    now_ms,
    parts_key,
    pending_key,
    stats_key,
    webhook_stream_key,
)
from worker.store.keys import receipts_key
from worker.store.migrate import migrate

pytestmark = pytest.mark.integration


async def _old_store(redis: Redis) -> None:
    """Keys as a store before hash tags wrote them."""
    await redis.hset("smsgw:m:01ABC", mapping={"status": "queued", "channel": "sim"})
    await redis.expire("smsgw:m:01ABC", 500)
    await redis.zadd("smsgw:pending:sim", {"01ABC": 1})
    await redis.hset("smsgw:stats:29941888", "sim|accepted", 1)
    await redis.lpush("smsgw:failures", "[]")
    await redis.set("smsgw:held:smsc1:77", "{}")
    await redis.xadd("smsgw:wh:acme:3", {"kind": "status"})
    await redis.hset("smsgw:acct:acme", "cb_url", "https://x")
    await redis.hset("smsgw:keys", "k1", "h1")
    await redis.set("smsgw:w:worker1", "1")  # a heartbeat: left to expire


async def test_migrate_renames_old_keys_to_their_tagged_names_once(redis: Redis) -> None:
    await _old_store(redis)
    done = await migrate(redis)
    assert (done.renamed, done.conflicts) == (8, [])
    assert await redis.hget(msg_key("01ABC"), "status") == b"queued"
    assert 0 < await redis.ttl(msg_key("01ABC")) <= 500
    assert await redis.zscore(pending_key("sim"), "01ABC") == 1
    assert await redis.hget(stats_key(29941888), "sim|accepted") == b"1"
    assert await redis.llen(FAILURES) == 1
    assert await redis.get(held_key("smsc1", "77")) == b"{}"
    assert await redis.xlen(webhook_stream_key("acme", 3)) == 1
    assert await redis.hget(account_key("acme"), "cb_url") == b"https://x"
    assert await redis.hget(api_keys_index_key(), "k1") == b"h1"
    assert sorted(await redis.keys("smsgw:[^{]*")) == [b"smsgw:w:worker1"]
    again = await migrate(redis)
    assert (again.renamed, again.conflicts) == (0, [])


async def test_callbacks_go_on_after_an_upgrade_once_migrated(redis: Redis) -> None:
    # An account with a callback URL (and chosen statuses) set before the tags: its messages'
    # transitions still write its events once the store is migrated.
    await redis.hset("smsgw:acct:acme", mapping={"cb_url": "https://x", "cb_secret": "s",
                                                 "cb_events": ",failed,"})
    await redis.hset("smsgw:acct:quiet", mapping={"cb_url": "https://y",
                                                  "cb_events": ",delivered,"})
    await redis.sadd("smsgw:wh:accounts", "acme", "quiet")
    await migrate(redis)
    store = Store(redis, retention_seconds=100)
    msgs = [NewMessage(api_id=new_id(), account=a, channel="sim", to="27820000001",
                       content="hi", encoding="gsm7", segments=1) for a in ("acme", "quiet")]
    await store.accept(msgs, window_seconds=60, job_id=new_id(), job_payload=b"job",
                       job_expiry_seconds=60, accepted_at=now_ms() - 120_000)
    await store.expire_queued("sim", max_age_ms=60_000, text="old", start=0, limit=10)
    assert [(f[b"id"].decode(), f[b"status"]) for f in await waiting(redis, "acme")] == [
        (msgs[0].api_id, b"failed")]
    assert await waiting(redis, "quiet") == []


async def test_mo_messages_find_their_owner_after_an_upgrade_once_migrated(
    redis: Redis,
) -> None:
    # A number assigned, an inbound URL and an SMPP user set before the tags: an MO message
    # still goes to its owner, its inbound URL and its SMPP clients once the store is migrated.
    await redis.hset("smsgw:numbers:sim", "4412", "acme")
    await redis.hset("smsgw:inbound:sim", "acme", "https://in")
    await redis.sadd("smsgw:smpp:accounts", "acme")
    await migrate(redis)
    store = Store(redis, retention_seconds=100)
    mo_id = await store.record_mo(MoPart(api_id=new_id(), channel="sim", source="27820000001",
                                         destination="+4412", body=b"hi",
                                         default_account="fallback"))
    assert await redis.hget(mo_key(mo_id), "account") == b"acme"
    assert [f[b"kind"] for f in await waiting(redis, "acme")] == [b"mo"]
    assert [f[b"kind"] for _, f in await redis.xrange(receipts_key("acme"))] == [b"mo"]


async def test_migrate_renames_waiting_concatenated_parts_and_their_due_entries(
    redis: Redis,
) -> None:
    # The due index names its groups by key: the sweep must find them under the new names.
    old_group = "smsgw:smpp:parts:acme:ACME:4470:8:7"
    await redis.hset(old_group, mapping={"id": "01P", "total": "2"})
    await redis.zadd("smsgw:smpp:parts:due", {old_group: 123})
    done = await migrate(redis)
    assert (done.renamed, done.conflicts) == (2, [])
    group = parts_key("acme", "ACME", "4470", 8, 7)
    assert await redis.hget(group, "id") == b"01P"
    assert await redis.zrange(PARTS_DUE, 0, -1, withscores=True) == [(group.encode(), 123)]


async def test_migrate_leaves_an_old_key_whose_new_name_is_taken_and_says_so(
    redis: Redis,
) -> None:
    await redis.hset("smsgw:acct:acme", "cb_url", "https://old")
    await redis.hset(account_key("acme"), "cb_url", "https://new")
    done = await migrate(redis)
    assert (done.renamed, done.conflicts) == (0, ["smsgw:acct:acme"])
    assert await redis.hget(account_key("acme"), "cb_url") == b"https://new"
    assert await redis.hget("smsgw:acct:acme", "cb_url") == b"https://old"


async def test_the_store_migrate_command_reports_and_fails_on_a_conflict(
    redis_url: str, redis: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_from_dict({}, {"REDIS_URL": redis_url}, "test")
    args = build_parser().parse_args(["store", "migrate"])
    await _old_store(redis)
    assert await run_store(args, settings) == 0
    assert "renamed 8 keys" in capsys.readouterr().err
    await redis.hset("smsgw:acct:acme", "cb_url", "https://again")
    assert await run_store(args, settings) == 1
    assert "smsgw:acct:acme" in capsys.readouterr().err
