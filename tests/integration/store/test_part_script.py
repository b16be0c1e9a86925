"""The concatenated-parts script (store_part) called alone: parts held until the last, the
message made in the same run, repeats, contradictions, limits and the sweep."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.store.scripting import run
from worker.store import (
    ARQ_JOB_PREFIX,
    ARQ_QUEUE,
    PARTS_DUE,
    bucket_key,
    msg_key,
    parts_key,
    pending_key,
    quota_key_prefix,
)
from worker.store.parts import parts_sum

pytestmark = pytest.mark.integration

GROUP = parts_key("acme", "ACME", "27820000001", 8, 7)
KEYS = [GROUP, PARTS_DUE, ARQ_JOB_PREFIX + "wake1", ARQ_QUEUE]
WAIT = 300_000
T0 = 1_700_000_000_000
TEXT = {1: b"Hello, ", 2: b"concatenated ", 3: b"world"}


def _part(seq: int, **over: Any) -> str:
    part = {"id": "MSG1", "account": "acme", "channel": "sim", "to": "27820000001",
            "notify": "f", "src": "ACME", "total": 3, "seq": seq, "dc": 0}
    return json.dumps(part | over)


def _built(parts: dict[int, bytes], content: str) -> str:
    return json.dumps({"content": content, "enc": "gsm7", "seg": 1,
                       "sum": parts_sum(sorted(parts.items()))})


async def _store(redis: Redis, seq: int, octets: bytes, built: str = "", now: int = T0,
                 **over: Any) -> list[Any]:
    return list(await run(redis, "store_part", KEYS,
                          [now, 3600, 0, "wake1", b"job", 60_000, WAIT, _part(seq, **over),
                           octets, built]))


async def _sweep(redis: Redis, now: int, built: str = "") -> list[Any]:
    return list(await run(redis, "store_part", KEYS,
                          [now, 3600, 0, "wake1", b"job", 60_000, WAIT,
                           json.dumps({"seq": 0}), b"", built]))


async def test_store_part_holds_parts_until_the_last_then_makes_one_message(
    redis: Redis,
) -> None:
    assert await _store(redis, 3, TEXT[3]) == [b"stored", b"MSG1"]
    # a later part names another id: the group's first one is the message's
    assert await _store(redis, 1, TEXT[1], id="OTHER") == [b"stored", b"MSG1"]
    assert await redis.zscore(PARTS_DUE, GROUP) == T0 + WAIT
    need = await _store(redis, 2, TEXT[2])
    assert need == [b"need", b"MSG1", b"3", b"0", b"sim", b"27820000001",
                    1, TEXT[1], 2, TEXT[2], 3, TEXT[3]]
    assert not await redis.exists(msg_key("MSG1"))
    assert not await redis.hexists(GROUP, "p:2")  # not stored without its message
    # a message built from other parts than those stored is asked for again
    stale = await _store(redis, 2, TEXT[2], _built({1: TEXT[1], 2: TEXT[2]}, "x"))
    assert stale[0] == b"need"
    assert await _store(redis, 2, TEXT[2], _built(TEXT, "Hello, concatenated world")) == [
        b"sent", b"MSG1"]
    record = await redis.hgetall(msg_key("MSG1"))
    assert record[b"content"] == b"Hello, concatenated world"
    assert record[b"parts"] == b"MSG1-1,MSG1-2,MSG1-3" and record[b"concat"] == b"3/3"
    assert record[b"door"] == b"smpp" and record[b"status"] == b"queued"
    assert record[b"src"] == b"ACME" and record[b"notify"] == b"f"
    assert await redis.zrange(pending_key("sim"), 0, -1) == [b"MSG1"]
    assert await redis.zrange(ARQ_QUEUE, 0, -1) == [b"wake1"]
    assert await redis.zcard(PARTS_DUE) == 0
    assert not await redis.hexists(GROUP, "p:1")  # the octets go; the group stays a while
    # a part sent again after its message was made changes nothing
    assert await _store(redis, 3, TEXT[3]) == [b"again", b"MSG1"]
    assert await redis.zcard(pending_key("sim")) == 1


async def test_store_part_gives_the_message_the_first_parts_sender_schedule_and_route(
    redis: Redis,
) -> None:
    timed = {"snd": "ACME", "at": T0 + 60_000, "vu": T0 + 120_000, "rt": "za", "ch": "sim,b"}
    await _store(redis, 1, TEXT[1], **timed)
    await _store(redis, 3, TEXT[3])
    assert await _store(redis, 2, TEXT[2], _built(TEXT, "Hello, concatenated world")) == [
        b"sent", b"MSG1"]
    assert await redis.hmget(msg_key("MSG1"), ["sender", "sched_at", "valid_until", "route",
                                               "chain"]) == [
        b"ACME", str(T0 + 60_000).encode(), str(T0 + 120_000).encode(), b"za", b"sim,b"]
    assert await redis.zscore(pending_key("sim"), "MSG1") == T0 + 60_000  # due at its time


async def test_store_part_answers_a_repeated_part_with_its_message_id(redis: Redis) -> None:
    assert await _store(redis, 1, TEXT[1]) == [b"stored", b"MSG1"]
    assert await _store(redis, 1, TEXT[1], id="MSG2") == [b"again", b"MSG1"]
    assert await redis.hlen(GROUP) == 14 + 2  # the group's fields and one part's two


async def test_store_part_makes_a_new_message_that_reuses_a_sent_ref_and_first_part_whole(
    redis: Redis,
) -> None:
    # Within the wait after MSG1 was sent, MSG2 reuses its ref and its first part's text: that
    # part is answered as a repeat, and kept aside until MSG2's next part shows it was MSG2's.
    two = {1: b"Your code is ", 2: b"1234"}
    assert await _store(redis, 1, two[1], total=2) == [b"stored", b"MSG1"]
    assert (await _store(redis, 2, two[2], _built(two, "Your code is 1234"), total=2))[0] == (
        b"sent")
    assert await _store(redis, 1, two[1], total=2, id="MSG2") == [b"again", b"MSG1"]
    other = {1: two[1], 2: b"5678"}
    need = await _store(redis, 2, other[2], total=2, id="MSG2")
    assert need == [b"need", b"MSG2", 2, 0, b"sim", b"27820000001", 1, other[1], 2, other[2]]
    assert await _store(redis, 2, other[2], _built(other, "Your code is 5678"), total=2,
                        id="MSG2") == [b"sent", b"MSG2"]
    record = await redis.hgetall(msg_key("MSG2"))
    assert record[b"content"] == b"Your code is 5678"
    # each part keeps the id its client was answered with
    assert record[b"parts"] == b"MSG1-1,MSG2-2" and record[b"concat"] == b"2/2"
    assert await redis.zcard(pending_key("sim")) == 2


async def test_store_part_replaces_a_part_kept_aside_that_was_a_repeat_after_all(
    redis: Redis,
) -> None:
    # MSG1's first part is sent again (its answer was lost); then a new message reusing the
    # ref arrives last part first: the repeat is no part of it, and its own first part wins.
    two = {1: b"Your code is ", 2: b"1234"}
    await _store(redis, 1, two[1], total=2)
    await _store(redis, 2, two[2], _built(two, "Your code is 1234"), total=2)
    assert await _store(redis, 1, two[1], total=2, id="MSG2") == [b"again", b"MSG1"]
    new = {1: b"Hello ", 2: b"again"}
    assert (await _store(redis, 2, new[2], _built({1: two[1], 2: new[2]}, "x"), total=2,
                         id="MSG2"))[0] == b"sent"  # the part kept aside completed it
    await redis.delete(msg_key("MSG2"))
    await redis.delete(GROUP)
    # the same again, but the wait has not made the message yet: the real first part replaces
    await _store(redis, 1, two[1], total=3)
    await _store(redis, 2, two[2], total=3)
    await _store(redis, 3, b"!", _built({1: two[1], 2: two[2], 3: b"!"}, "x"), total=3)
    assert await _store(redis, 1, two[1], total=3, id="MSG2") == [b"again", b"MSG1"]
    assert await _store(redis, 3, b"?", total=3, id="MSG2") == [b"stored", b"MSG2"]
    assert await _store(redis, 1, new[1], total=3, id="MSG2") == [b"stored", b"MSG2"]
    assert await redis.hget(GROUP, "p:1") == new[1]
    assert not await redis.hexists(GROUP, "t:1")


async def test_store_part_refuses_parts_that_contradict_their_group(redis: Redis) -> None:
    assert await _store(redis, 1, TEXT[1]) == [b"stored", b"MSG1"]
    before = await redis.hgetall(GROUP)
    assert await _store(redis, 2, TEXT[2], total=4) == [b"refused", b"total"]
    assert await _store(redis, 2, TEXT[2], dc=8) == [b"refused", b"dcs"]
    assert await _store(redis, 1, b"other text") == [b"refused", b"seq"]
    assert await redis.hgetall(GROUP) == before


async def test_store_part_counts_each_part_against_the_limits(redis: Redis) -> None:
    lim = [bucket_key("acme1"), quota_key_prefix("acme1"), 0, 0, 2]
    assert (await _store(redis, 1, TEXT[1], lim=lim))[0] == b"stored"
    assert (await _store(redis, 3, TEXT[3], lim=lim))[0] == b"stored"
    assert (await _store(redis, 2, TEXT[2], _built(TEXT, "x"), lim=lim))[:2] == [
        b"limited", b"quota"]
    assert not await redis.exists(msg_key("MSG1"))
    assert not await redis.hexists(GROUP, "p:2")


async def test_store_part_sweep_sends_what_arrived_once_the_wait_is_over(
    redis: Redis,
) -> None:
    assert await _store(redis, 1, TEXT[1]) == [b"stored", b"MSG1"]
    assert await _store(redis, 3, TEXT[3]) == [b"stored", b"MSG1"]
    assert await _sweep(redis, T0 + WAIT - 1) == [b"early"]
    need = await _sweep(redis, T0 + WAIT)
    assert need == [b"need", b"MSG1", b"3", b"0", b"sim", b"27820000001",
                    1, TEXT[1], 3, TEXT[3]]
    arrived = {1: TEXT[1], 3: TEXT[3]}
    assert await _sweep(redis, T0 + WAIT, _built(arrived, "Hello, world")) == [
        b"sent", b"MSG1"]
    record = await redis.hgetall(msg_key("MSG1"))
    assert record[b"concat"] == b"2/3" and record[b"parts"] == b"MSG1-1,MSG1-3"
    assert record[b"content"] == b"Hello, world"
    # another process's sweep of the same group finds it gone
    assert await _sweep(redis, T0 + WAIT, _built(arrived, "Hello, world")) == [b"gone"]
    assert await redis.zcard(pending_key("sim")) == 1
