"""A message's scripts called alone, with explicit KEYS and ARGV: accept, claim, outcomes,
receipts, expiry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.store.scripting import published, run
from worker.store import (
    ARQ_JOB_PREFIX,
    ARQ_QUEUE,
    EVENTS,
    bucket_key,
    cmid_key,
    dlr_key,
    held_key,
    msg_key,
    now_ms,
    pending_key,
    quota_key_prefix,
    route_stat,
    stats_key,
    worker_key,
)

pytestmark = pytest.mark.integration

CH = "sim"


def _message(api_id: str, to: str = "27820000001", cmid: str = "") -> dict[str, Any]:
    return {"id": api_id, "account": "acme", "cmid": cmid, "fp": "fp1", "channel": CH,
            "to": to, "content": "hi", "enc": "gsm7", "seg": 1}


async def _accept(redis: Redis, now: int, requests: list[dict[str, Any]]) -> list[Any]:
    raw = await run(redis, "accept", keys=[ARQ_JOB_PREFIX + "j1", ARQ_QUEUE],
                    args=[now, 100, 5, "j1", b"payload", 60_000, json.dumps(requests)])
    return list(json.loads(raw))


async def _claim(redis: Redis, now: int, *ids: str, worker: str = "w1") -> list[Any]:
    raw = await run(redis, "claim", args=[now, now + 30_000, worker, json.dumps([CH]), *ids])
    return list(json.loads(raw))


async def test_accept_stores_records_indexes_them_and_enqueues_the_job(redis: Redis) -> None:
    now = now_ms()
    answers = await _accept(redis, now, [{"w": 60_000, "m": [_message("a1"), _message("a2")]}])
    assert [a["k"] for a in answers] == ["nn"]
    assert await redis.hget(msg_key("a1"), "status") == b"queued"
    assert 0 < await redis.ttl(msg_key("a1")) <= 100
    assert await redis.zrange(pending_key(CH), 0, -1, withscores=True) == [
        (b"a1", now + 5), (b"a2", now + 5)]
    assert await redis.zscore(ARQ_QUEUE, "j1") == now
    assert await redis.get(ARQ_JOB_PREFIX + "j1") == b"payload"
    assert await redis.hget(stats_key(now // 60_000), f"{CH}|accepted") == b"2"


async def test_accept_counts_routed_messages_per_route_and_channel(redis: Redis) -> None:
    now = now_ms()
    za = [{**_message(f"z{i}", to=f"2782000000{i}"), "rt": "za", "ch": f"{CH},b"}
          for i in range(3)]
    other = {**_message("b1"), "channel": "b", "rt": "za", "ch": f"b,{CH}"}
    await _accept(redis, now, [{"w": 60_000, "m": [*za, other, _message("plain")]}])
    row = await redis.hgetall(stats_key(now // 60_000))
    assert row[route_stat("za", f"routed:{CH}").encode()] == b"3"
    assert row[route_stat("za", "routed:b").encode()] == b"1"
    assert row[f"{CH}|accepted".encode()] == b"4"  # the channels' own counts as before
    assert sum(1 for k in row if k.startswith(b"route:")) == 2  # none for 'plain'


async def test_accept_answers_a_repeated_client_message_id_with_the_first_id(
    redis: Redis,
) -> None:
    now = now_ms()
    await _accept(redis, now, [{"w": 60_000, "m": [_message("a1", cmid="c1")]}])
    (again,) = await _accept(redis, now, [{"w": 60_000, "m": [_message("a2", cmid="c1")]}])
    assert again == {"k": "d", "r": ["a1"]}
    assert await redis.hget(cmid_key("acme", "c1"), "27820000001") == b"a1"
    assert not await redis.exists(msg_key("a2"))


async def test_accept_refuses_a_request_over_its_limits_and_stores_nothing(
    redis: Redis,
) -> None:
    lim = [bucket_key("k1"), quota_key_prefix("k1"), 10, 1, 0]
    over, fine = await _accept(redis, now_ms(), [
        {"w": 60_000, "m": [_message("a1"), _message("a2")], "lim": lim},
        {"w": 60_000, "m": [_message("a3")], "lim": lim}])
    assert over == {"limited": "burst", "retry_ms": 0}
    assert fine["k"] == "n"
    assert not await redis.exists(msg_key("a1")) and await redis.exists(msg_key("a3"))


async def test_accept_answers_a_message_missing_a_field_with_an_error_and_stores_nothing(
    redis: Redis,
) -> None:
    broken = {**_message("a1"), "door": "smpp", "src": "ACME"}  # no notify
    answers = await _accept(redis, now_ms(), [{"w": 60_000, "m": [broken]}])
    assert "notify" in answers[0]["err"]
    assert not await redis.exists(msg_key("a1"))


async def test_claim_moves_a_due_message_to_sending_under_the_worker(redis: Redis) -> None:
    now = now_ms()
    await _accept(redis, now, [{"w": 60_000, "m": [_message("a1")]}])
    async with published(redis, EVENTS) as heard:
        claimed = await _claim(redis, now + 10, "a1")
    assert claimed == [["a1", CH, "27820000001", "hi", 0, str(now), 0, "", 0, 0]]
    assert await redis.hmget(msg_key("a1"), ["status", "worker"]) == [b"sending", b"w1"]
    assert await redis.zscore(pending_key(CH), "a1") == now + 10 + 30_000
    assert heard == ["a1 sending"]


async def test_accept_stores_a_sender_only_when_given_and_claim_returns_it(
    redis: Redis,
) -> None:
    now = now_ms()
    await _accept(redis, now, [{"w": 60_000, "m": [{**_message("a1"), "snd": "Acme"},
                                                    _message("a2")]}])
    assert await redis.hget(msg_key("a1"), "sender") == b"Acme"
    assert not await redis.hexists(msg_key("a2"), "sender")
    assert await _claim(redis, now + 10, "a1", "a2") == [
        ["a1", CH, "27820000001", "hi", 0, str(now), 0, "", 0, 0, "Acme"],
        ["a2", CH, "27820000001", "hi", 0, str(now), 0, "", 0, 0]]


async def test_accept_makes_a_scheduled_message_due_at_its_time(redis: Redis) -> None:
    now = now_ms()
    timed = {**_message("s1"), "at": now + 50_000, "vu": now + 90_000}
    await _accept(redis, now, [{"w": 60_000, "m": [timed, _message("plain")]}])
    assert await redis.zrange(pending_key(CH), 0, -1, withscores=True) == [
        (b"plain", now + 5), (b"s1", now + 50_000)]
    assert await redis.hmget(msg_key("s1"), ["status", "sched_at", "next_at", "valid_until"]) \
        == [b"queued", str(now + 50_000).encode(), str(now + 50_000).encode(),
            str(now + 90_000).encode()]
    assert 100 < await redis.ttl(msg_key("s1")) <= 150  # retention after its time
    # The common path writes no field for them.
    assert await redis.hmget(msg_key("plain"), ["sched_at", "next_at", "valid_until"]) == [
        None, None, None]


async def test_claim_leaves_a_scheduled_message_until_its_time(redis: Redis) -> None:
    now = now_ms()
    timed = {**_message("s1"), "at": now + 50_000, "vu": now + 90_000}
    await _accept(redis, now, [{"w": 60_000, "m": [timed]}])
    assert await _claim(redis, now + 10, "s1") == []
    # A worker not serving its channel leaves it due at its time, not now.
    await run(redis, "claim", args=[now + 20, now + 30_000, "w2", json.dumps(["other"]), "s1"])
    assert await redis.zscore(pending_key(CH), "s1") == now + 50_000
    assert await _claim(redis, now + 50_000, "s1") == [
        ["s1", CH, "27820000001", "hi", 0, str(now), 0, "", now + 50_000, now + 90_000]]


async def test_claim_takes_over_a_dead_holders_message_as_reclaimed(redis: Redis) -> None:
    now = now_ms()
    await _accept(redis, now, [{"w": 60_000, "m": [_message("a1")]}])
    await _claim(redis, now + 10, "a1", worker="dead")
    assert await _claim(redis, now + 20, "a1", worker="alive") == [
        ["a1", CH, "27820000001", "hi", 1, str(now), 1, "", 0, 0]]
    await redis.set(worker_key("alive"), "1")
    assert await _claim(redis, now + 30, "a1", worker="other") == []


async def test_claim_takes_a_message_named_twice_in_one_run_once(redis: Redis) -> None:
    # Due entries are written when the run ends: the second mention must see the first's lease.
    now = now_ms()
    await _accept(redis, now, [{"w": 60_000, "m": [_message("a1")]}])
    claimed = await _claim(redis, now + 10, "a1", "a1")
    assert [c[0] for c in claimed] == ["a1"]
    assert await redis.zscore(pending_key(CH), "a1") == now + 10 + 30_000


async def test_claim_makes_due_messages_of_unserved_channels_in_one_write_per_channel(
    redis: Redis,
) -> None:
    now = now_ms()
    other = [{**_message(f"o{n}", to=f"2782000000{n}"), "channel": "other"} for n in range(3)]
    await _accept(redis, now, [{"w": 60_000, "m": [_message("a1"), *other]}])
    claimed = await _claim(redis, now + 10, "a1", "o0", "o1", "o2")
    assert [c[0] for c in claimed] == ["a1"]
    assert await redis.zrange(pending_key("other"), 0, -1, withscores=True) == [
        (b"o0", now + 10), (b"o1", now + 10), (b"o2", now + 10)]
    assert await redis.zrange(pending_key(CH), 0, -1, withscores=True) == [
        (b"a1", now + 10 + 30_000)]


async def test_record_outcomes_maps_the_smsc_ids_of_a_submitted_message(redis: Redis) -> None:
    now = now_ms()
    await _accept(redis, now, [{"w": 60_000, "m": [_message("a1"), _message("a2")]}])
    await _claim(redis, now, "a1", "a2")
    outcomes = [
        {"id": "a1", "channel": CH, "smsc": "acct", "ids": ["s1"], "status": "submitted",
         "code": "", "text": "", "retry_at": 0, "attempted": True, "receipt_wait": 0},
        {"id": "a2", "channel": CH, "smsc": "acct", "ids": [], "status": "queued",
         "code": "88", "text": "throttled", "retry_at": now + 5000, "attempted": False,
         "receipt_wait": 0},
    ]
    async with published(redis, EVENTS) as heard:
        applied = await run(redis, "record_outcomes", args=[now, 600, json.dumps(outcomes)])
    assert applied == 2
    assert await redis.get(dlr_key("acct", "s1")) == b"a1|0"
    assert await redis.hmget(msg_key("a1"), ["status", "attempts"]) == [b"submitted", b"1"]
    assert await redis.zscore(pending_key(CH), "a2") == now + 5000
    assert heard == ["a1 submitted\na2 queued"]


async def test_record_receipts_settles_a_matched_receipt_and_holds_an_early_one(
    redis: Redis,
) -> None:
    now = now_ms()
    await _accept(redis, now, [{"w": 60_000, "m": [_message("a1")]}])
    await _claim(redis, now, "a1")
    await run(redis, "record_outcomes", args=[now, 600, json.dumps([
        {"id": "a1", "channel": CH, "smsc": "acct", "ids": ["s1"], "status": "submitted",
         "code": "", "text": "", "retry_at": 0, "attempted": True, "receipt_wait": 0}])])

    def receipt(smsc_id: str, state: str) -> dict[str, Any]:
        return {"smsc": "acct", "forms": {"same": smsc_id}, "twice": False, "state": state,
                "stat": "DELIVRD", "err": "000", "at": now}

    raw = await run(redis, "record_receipts", args=[300, json.dumps(
        [receipt("s1", "delivered"), receipt("s9", "delivered"), receipt("s8", "")])])
    assert json.loads(raw) == ["a1", "held", "ignored"]
    assert await redis.hmget(msg_key("a1"), ["status", "dlr_stat"]) == [b"delivered", b"DELIVRD"]
    assert await redis.exists(held_key("acct", "s9"))
    assert not await redis.exists(held_key("acct", "s8"))


async def test_record_outcomes_leaves_no_due_entry_for_a_message_an_early_receipt_settles(
    redis: Redis,
) -> None:
    # Its receipt wait is noted, then the held receipt settles it in the same run: the wait
    # must not outlive it in the due index.
    now = now_ms()
    await _accept(redis, now, [{"w": 60_000, "m": [_message("a1"), _message("a2")]}])
    await _claim(redis, now, "a1", "a2")
    await run(redis, "record_receipts", args=[300, json.dumps([
        {"smsc": "acct", "forms": {"same": "s1"}, "twice": False, "state": "delivered",
         "stat": "DELIVRD", "err": "000", "at": now}])])
    await run(redis, "record_outcomes", args=[now, 600, json.dumps([
        {"id": i, "channel": CH, "smsc": "acct", "ids": [s], "status": "submitted", "code": "",
         "text": "", "retry_at": 0, "attempted": True, "receipt_wait": 60_000}
        for i, s in (("a1", "s1"), ("a2", "s2"))])])
    assert await redis.hget(msg_key("a1"), "status") == b"delivered"
    assert await redis.zrange(pending_key(CH), 0, -1, withscores=True) == [(b"a2", now + 60_000)]


async def test_expire_queued_fails_the_old_queued_messages_of_a_channel(redis: Redis) -> None:
    now = now_ms()
    await _accept(redis, now - 10_000, [{"w": 60_000, "m": [_message("old")]}])
    await _accept(redis, now, [{"w": 60_000, "m": [_message("new")]}])
    failed, next_start = await run(redis, "expire_queued",
                                   args=[now + 5, CH, 5000, 0, 10, "too old", "ended"])
    assert (failed, next_start) == ([b"old"], 0)
    assert await redis.hmget(msg_key("old"), ["status", "err_code"]) == [b"failed", b"Expired"]
    assert await redis.hget(msg_key("new"), "status") == b"queued"
    assert await redis.zrange(pending_key(CH), 0, -1) == [b"new"]


async def test_expire_queued_fails_a_message_at_its_validity_and_ages_one_from_its_schedule(
    redis: Redis,
) -> None:
    now = now_ms()
    await _accept(redis, now, [{"w": 60_000, "m": [{**_message("short"), "vu": now + 1000}]}])
    # Accepted long ago for a time just passed: its max age counts from that time.
    await _accept(redis, now - 10_000, [{"w": 60_000, "m": [{**_message("late"), "at": now}]}])
    failed, next_start = await run(redis, "expire_queued",
                                   args=[now + 1000, CH, 5000, 0, 10, "too old", "ended"])
    assert (failed, next_start) == ([b"short"], 0)
    assert await redis.hmget(msg_key("short"), ["status", "err_code", "err_text"]) == [
        b"failed", b"Expired", b"ended"]
    assert await redis.hget(msg_key("late"), "status") == b"queued"
    failed, _ = await run(redis, "expire_queued",
                          args=[now + 5001, CH, 5000, 0, 10, "too old", "ended"])
    assert failed == [b"late"]


async def test_fail_over_moves_a_queued_message_to_the_next_channel_of_its_chain(
    redis: Redis,
) -> None:
    now = now_ms()
    routed = {**_message("r1"), "rt": "za", "ch": f"{CH},backup"}
    await _accept(redis, now, [{"w": 60_000, "m": [routed, _message("plain")]}])
    moved, last = await run(redis, "fail_over",
                            args=[now + 1, CH, "", "0x0000000B", "ESME_RINVDSTADR", "r1", "plain"])
    assert (moved, last) == ([[b"r1", b"backup"]], [b"plain"])
    record = await redis.hmget(msg_key("r1"), ["channel", "hop", "attempts", "status", "route"])
    assert record == [b"backup", b"1", b"0", b"queued", b"za"]
    assert await redis.zrange(pending_key("backup"), 0, -1) == [b"r1"]
    assert await redis.zrange(pending_key(CH), 0, -1) == [b"plain"]
    row = await redis.hgetall(stats_key((now + 1) // 60_000))
    assert (row[f"{CH}|failover".encode()], row[route_stat("za", "failover").encode()]) == \
        (b"1", b"1")
    again, end = await run(redis, "fail_over",
                           args=[now + 2, "backup", "", "BindDown", "no bind", "r1"])
    assert (again, end) == ([], [b"r1"])  # the chain has no channel left: it stays
