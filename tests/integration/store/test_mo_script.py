"""The MO script called alone: a message recorded for its owner, parts joined."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.store.scripting import published, run
from worker.store import (
    EVENTS,
    copy_of,
    inbound_key,
    mo_account_key,
    mo_key,
    mo_list_key,
    now_ms,
    numbers_key,
    webhook_shard,
    webhook_stream_key,
)

pytestmark = pytest.mark.integration


def _part(mo_id: str, **over: Any) -> str:
    part = {"id": mo_id, "channel": "sim", "source": "27820000001", "destination": "+4412",
            "text": "hi", "ref": "", "total": 1, "seq": 1, "dc": 0, "hex": "",
            "default_account": "fallback"}
    return json.dumps(part | over)


async def test_record_mo_records_a_message_for_the_numbers_owner(redis: Redis) -> None:
    # what it reads: the shard's copies of the channel's numbers and inbound URLs
    await run(redis, "copy_entries", keys=[copy_of(numbers_key("sim"))],
              args=[1, "some", "4412", "acme"])
    await run(redis, "copy_entries", keys=[copy_of(inbound_key("sim"))],
              args=[2, "some", "acme", "1"])
    async with published(redis, EVENTS) as heard:
        assert await run(redis, "record_mo", args=[now_ms(), 100, _part("mo1"), ""]) == b"mo1"
    assert await redis.hget(mo_key("mo1"), "account") == b"acme"
    assert await redis.lrange(mo_list_key("sim"), 0, -1) == [b"mo1"]
    assert await redis.lrange(mo_account_key("acme"), 0, -1) == [b"mo1"]
    # in the stream of the MO message's shard, as a status event in its message's
    ((_, event),) = await redis.xrange(webhook_stream_key("acme", webhook_shard("mo1")))
    assert event[b"kind"] == b"mo" and event[b"text"] == b"hi"
    assert not await redis.exists(webhook_stream_key("acme", None))
    assert heard == ["mo1 mo"]
    # run again (an unconfirmed write): recorded and listed once
    assert await run(redis, "record_mo", args=[now_ms(), 100, _part("mo1"), ""]) == b"mo1"
    assert await redis.llen(mo_list_key("sim")) == 1


async def test_record_mo_joins_the_parts_of_a_concatenated_message(redis: Redis) -> None:
    now = now_ms()

    def part(seq: int, octets: bytes) -> str:
        return _part("mo2", text="", ref="8:7", total=2, seq=seq, hex=octets.hex())

    assert await run(redis, "record_mo", args=[now, 100, part(2, b"lo"), ""]) == b""
    joined = await run(redis, "record_mo", args=[now, 100, part(1, b"hel"), ""])
    assert joined == b"?0:" + b"hello".hex().encode()
    done = json.dumps(json.loads(part(1, b"hel")) | {"text": "hello"})
    assert await run(redis, "record_mo", args=[now, 100, done, b"hello".hex()]) == b"mo2"
    assert await redis.hmget(mo_key("mo2"), ["text", "parts", "account"]) == [
        b"hello", b"2", b"fallback"]


async def test_copy_entries_writes_newer_entries_only_and_a_whole_copy_marks_the_rest_absent(
    redis: Redis,
) -> None:
    copy = [copy_of(numbers_key("sim"))]
    assert await run(redis, "copy_entries", keys=copy,
                     args=[5, "some", "4412", "acme", "4413", "beta"]) == 2
    # an older copy arriving late, or the same one again, changes nothing
    assert await run(redis, "copy_entries", keys=copy, args=[4, "some", "4412", "beta"]) == 0
    assert await run(redis, "copy_entries", keys=copy, args=[5, "some", "4412", "beta"]) == 0
    assert await run(redis, "copy_entries", keys=copy, args=[6, "some", "4413", ""]) == 1
    assert await redis.hgetall(copy[0]) == {b"4412": b"5|acme", b"4413": b"6|"}
    # a reconcile's whole copy at version 6: 4412 is no longer assigned, 4414 is; 4413's
    # copy is as new already
    assert await run(redis, "copy_entries", keys=copy, args=[6, "all", "4414", "acme"]) == 2
    assert await redis.hgetall(copy[0]) == {b"4412": b"6|", b"4413": b"6|",
                                            b"4414": b"6|acme"}
    # an MO message to a number marked absent goes to the default account
    assert await run(redis, "record_mo", args=[now_ms(), 100, _part("mo9", destination="4412"),
                                               ""]) == b"mo9"
    assert await redis.hget(mo_key("mo9"), "account") == b"fallback"
