"""The store's scripts against a real redis-server: accept, claim, outcomes, receipts."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from tests.integration.test_webhooks import waiting
from worker.ids import new_id
from worker.lifecycle import Status, combine_parts
from worker.smpp.receipts import receipt_id_forms
from worker.store import (
    EVENTS,
    MESSAGES,
    WEBHOOK_SHARDS,
    NewMessage,
    Outcome,
    ReceiptEvent,
    Store,
    WebhookStore,
    account_key,
    held_key,
    msg_key,
    now_ms,
    parse_events,
    pending_key,
    webhook_stream_key,
    worker_key,
)

pytestmark = pytest.mark.usefixtures("one_slot_per_script_run")


def _msg(to: str = "27820000001", cmid: str = "", fp: str = "fp1", parts: int = 1) -> NewMessage:
    return NewMessage(api_id=new_id(), account="acme", channel="sim", to=to, content="hi",
                      encoding="gsm7", segments=parts, cmid=cmid, fingerprint=fp)


async def _hooked(redis: Redis, account: str) -> None:
    """An account with a callback URL, every status chosen."""
    await redis.hset(account_key(account), "created_at", "1")
    await WebhookStore(redis).set_callback(account, "https://hooks.example/x", new_secret="s")


async def _accept(
    store: Store, msgs: list[NewMessage], accepted_at: int | None = None
) -> list[str]:
    res = await store.accept(msgs, window_seconds=60, job_id=new_id(), job_payload=b"job",
                             job_expiry_seconds=60, accepted_at=accepted_at)
    return [r.api_id for r in res]


async def test_accept_stores_records_and_enqueues_one_job(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    ids = await _accept(store, [_msg(), _msg(to="27820000002")])
    recs = await store.get(ids)
    assert [r.status if r else None for r in recs] == ["queued", "queued"]
    assert await redis.zcard("arq:queue") == 1
    assert 0 < await redis.ttl(msg_key(ids[0])) <= 100


async def test_same_client_message_id_and_recipient_returns_the_original_id(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    first = await _accept(store, [_msg(cmid="c1")])
    again = await store.accept([_msg(cmid="c1")], window_seconds=60, job_id=new_id(),
                               job_payload=b"job", job_expiry_seconds=60)
    assert again[0].api_id == first[0] and again[0].duplicate
    assert await redis.zcard("arq:queue") == 1  # nothing new to send, no second job
    conflict = await store.accept([_msg(cmid="c1", fp="other")], window_seconds=60,
                                  job_id=new_id(), job_payload=b"job", job_expiry_seconds=60)
    assert conflict[0].conflict


async def test_racing_accepts_with_one_client_message_id_store_one_message(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    results = await asyncio.gather(*(_accept(store, [_msg(cmid="race")]) for _ in range(20)))
    assert len({r[0] for r in results}) == 1
    assert len(await store.find_by_cmid("acme", "race")) == 1


async def test_claim_then_submit_then_receipt_reaches_delivered(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])
    await store.heartbeat("w1", 10_000)
    claimed = await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    assert [c.api_id for c in claimed] == [api_id]
    # w1 is alive, so its claim holds
    assert await store.claim([api_id], worker="w2", lease_ms=10_000, served=["sim"]) == []
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=["abc"])],
                                dlr_ttl_seconds=100)
    res = await store.record_receipts(
        [ReceiptEvent(channel="sim", forms={"same": "abc"}, state=Status.DELIVERED,
                      stat="DELIVRD", err="000")], held_ttl_seconds=100)
    assert res == [api_id]
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.status == "delivered"
    assert [t[0] for t in rec.transitions()] == ["queued", "sending", "submitted", "delivered"]
    assert await redis.zcard(pending_key("sim")) == 0


async def test_a_script_runs_transitions_are_published_as_one_event_message(
    redis: Redis,
) -> None:
    store = Store(redis, retention_seconds=100)
    ids = await _accept(store, [_msg(to=f"2782000000{i}") for i in range(3)])
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(EVENTS)
        assert (await pubsub.get_message(timeout=5) or {}).get("type") == "subscribe"
        await store.claim(ids, worker="w1", lease_ms=10_000, served=["sim"])
        await store.record_outcomes([Outcome(api_id=i, channel="sim", smsc_ids=[f"s{i}"])
                                     for i in ids], dlr_ttl_seconds=100)
        messages = []
        while len(messages) < 2:
            msg = await pubsub.get_message(timeout=5)
            assert msg is not None, "an event message is missing"
            messages.append(parse_events(msg["data"]))
    assert messages == [[(i, "sending") for i in ids], [(i, "submitted") for i in ids]]


async def test_receipt_before_submit_response_is_held_then_applied(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])
    await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    held = await store.record_receipts(
        [ReceiptEvent(channel="sim", forms={"same": "x1"}, state=Status.UNDELIVERED,
                      stat="UNDELIV", err="001")], held_ttl_seconds=100)
    assert held == ["held"]
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=["x1"])],
                                dlr_ttl_seconds=100)
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.status == "undelivered"


async def test_multipart_is_delivered_only_when_every_part_is(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg(parts=2)])
    await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=["p0", "p1"])],
                                dlr_ttl_seconds=100)

    async def receipt(sid: str) -> str | None:
        await store.record_receipts(
            [ReceiptEvent(channel="sim", forms={"same": sid}, state=Status.DELIVERED,
                          stat="DELIVRD", err="000")], held_ttl_seconds=100)
        (rec,) = await store.get([api_id])
        return rec.status if rec else None

    assert await receipt("p0") == "submitted"
    assert await receipt("p1") == "delivered"


async def test_a_late_duplicate_event_never_moves_a_final_message(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])
    await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    await store.record_outcomes(
        [Outcome(api_id=api_id, channel="sim", status=Status.FAILED, error_code="0x0000000B")],
        dlr_ttl_seconds=100)
    applied = await store.record_outcomes(
        [Outcome(api_id=api_id, channel="sim", smsc_ids=["z"])], dlr_ttl_seconds=100)
    assert applied == 0
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.status == "failed"


async def test_a_dead_workers_claim_is_taken_over_and_marked_reclaimed(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])
    await store.heartbeat("w1", 10_000)
    await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    await redis.delete(worker_key("w1"))  # what expiry does to a SIGKILLed worker's heartbeat
    (taken,) = await store.claim([api_id], worker="w2", lease_ms=10_000, served=["sim"])
    # the dead holder's submit may have reached the SMSC: its attempt is counted now
    assert taken.reclaimed and taken.attempts == 1


async def test_only_a_submit_that_reached_the_smsc_spends_an_attempt(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])

    async def claim_and_record(attempted: bool) -> int:
        await redis.zadd(pending_key("sim"), {api_id: 0})  # due again at once
        (claimed,) = await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
        await store.record_outcomes(
            [Outcome(api_id=api_id, channel="sim", status=Status.QUEUED, error_code="BindDown",
                     attempted=attempted)], dlr_ttl_seconds=100)
        return claimed.attempts

    assert await claim_and_record(False) == 0  # a claim alone spends nothing
    assert await claim_and_record(True) == 0  # (what was spent before this claim)
    assert await claim_and_record(False) == 1
    assert await claim_and_record(True) == 1
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.fields["attempts"] == "2"


async def test_a_worker_does_not_claim_a_channel_it_does_not_serve(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])
    assert await store.claim([api_id], worker="w1", lease_ms=10_000, served=["other"]) == []
    # ...but makes it due at once for a worker that does
    assert await store.due(["sim"], 10) == [api_id]
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.status == "queued"


async def test_a_due_id_whose_record_expired_leaves_the_due_index(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])
    await redis.delete(msg_key(api_id))  # as retention would
    assert await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"]) == []
    assert await store.due(["sim"], 10) == []


async def test_the_store_combines_part_receipts_as_the_lifecycle_says(redis: Redis) -> None:
    parts = [Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED]
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg(parts=3)])
    await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    ids = [f"q{i}" for i in range(3)]
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=ids)],
                                dlr_ttl_seconds=100)
    await store.record_receipts(
        [ReceiptEvent(channel="sim", forms={"same": sid}, state=state, stat="X", err="0")
         for sid, state in zip(ids, parts, strict=True)], held_ttl_seconds=100)
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.status == combine_parts(parts) == "undelivered"


async def test_no_receipt_in_time_makes_a_message_unknown_and_a_late_one_settles_it(
    redis: Redis,
) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])
    await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    await store.record_outcomes(
        [Outcome(api_id=api_id, channel="sim", smsc_ids=["late"], receipt_wait_ms=60_000)],
        dlr_ttl_seconds=100)
    assert await store.claim([api_id], worker="w2", lease_ms=1, served=["sim"]) == []
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.status == "submitted"  # not due yet: a re-run changes nothing
    await redis.zadd(pending_key("sim"), {api_id: 0})  # its wait is over
    assert await store.due(["sim"], 10) == [api_id]
    await store.claim([api_id], worker="w2", lease_ms=1, served=["sim"])
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.status == "unknown"
    assert await store.due(["sim"], 10) == []
    await store.record_receipts(
        [ReceiptEvent(channel="sim", forms={"same": "late"}, state=Status.DELIVERED,
                      stat="DELIVRD", err="000")], held_ttl_seconds=100)
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.status == "delivered"


async def test_a_held_receipt_leaves_none_of_its_id_forms_behind(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])
    await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    await store.record_receipts(
        [ReceiptEvent(channel="sim", forms={"same": "1a", "dec_to_hex": "26"},
                      state=Status.DELIVERED, stat="DELIVRD", err="000")], held_ttl_seconds=100)
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=["1a"])],
                                dlr_ttl_seconds=100)
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.status == "delivered"
    # a later message whose SMSC id is "26" must not be settled by this stale receipt
    assert [k async for k in redis.scan_iter(held_key("*", "*"))] == []
    assert [k async for k in redis.scan_iter(MESSAGES + "heldq*")] == []


def _hex_receipt(number: int, state: Status, stat: str, *, twice: bool = False
                 ) -> ReceiptEvent:
    """The auto-mode receipt of a message with decimal SMSC id ``number``, its id in hex."""
    return ReceiptEvent(channel="sim", forms=receipt_id_forms(format(number, "x"), "auto"),
                        state=state, stat=stat, err="000", spelled_twice=twice)


async def _submitted(store: Store, smsc_ids: list[str]) -> list[str]:
    ids = await _accept(store, [_msg(to=f"2782000{n:04d}") for n in range(len(smsc_ids))])
    await store.claim(ids, worker="w1", lease_ms=10_000, served=["sim"])
    await store.record_outcomes(
        [Outcome(api_id=i, channel="sim", smsc_ids=[sid]) for i, sid in zip(ids, smsc_ids,
                                                                              strict=True)],
        dlr_ttl_seconds=100)
    return ids


async def _statuses(store: Store, ids: list[str]) -> list[str]:
    return [r.status if r else "" for r in await store.get(ids)]


async def test_a_receipt_in_doubt_is_held_until_the_convention_is_learned(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    ten, sixteen = await _submitted(store, ["10", "16"])
    # "10" is message 10's id as sent, and message 16's in hex: which one is not known yet.
    assert await store.record_receipts([_hex_receipt(16, Status.UNDELIVERED, "UNDELIV")],
                                       held_ttl_seconds=100) == ["held"]
    assert await _statuses(store, [ten, sixteen]) == ["submitted", "submitted"]
    # "a" can only be 10 in hex: the account's receipts are hex, and the held one is 16's.
    assert await store.record_receipts([_hex_receipt(10, Status.DELIVERED, "DELIVRD")],
                                       held_ttl_seconds=100) == [ten]
    assert await _statuses(store, [ten, sixteen]) == ["delivered", "undelivered"]
    assert [k async for k in redis.scan_iter(MESSAGES + "held*")] == []


async def test_a_receipt_held_again_while_a_run_learns_the_convention_settles_a_later_part(
    redis: Redis,
) -> None:
    # One outcomes run: 16's receipt proves the convention, which settles the queue of receipts
    # held in doubt; 32's (its held keys expired, the queue outlived them) is held again under
    # "32", mapped later in the same run, and must be found there.
    store = Store(redis, retention_seconds=100)
    sixteen, thirty_two = await _accept(store, [_msg(to="27820000016"), _msg(to="27820000032")])
    await store.claim([sixteen, thirty_two], worker="w1", lease_ms=10_000, served=["sim"])
    for n in (32, 16):  # receipts in hex; their messages' ids, not yet recorded, in decimal
        assert await store.record_receipts([_hex_receipt(n, Status.DELIVERED, "DELIVRD")],
                                           held_ttl_seconds=100) == ["held"]
    for form in receipt_id_forms(format(32, "x"), "auto").values():
        await redis.delete(held_key("sim", form))
    await store.record_outcomes(
        [Outcome(api_id=sixteen, channel="sim", smsc_ids=["16"]),
         Outcome(api_id=thirty_two, channel="sim", smsc_ids=["32"])], dlr_ttl_seconds=100)
    assert await _statuses(store, [sixteen, thirty_two]) == ["delivered", "delivered"]
    assert [k async for k in redis.scan_iter(MESSAGES + "held*")] == []


async def test_a_learned_convention_is_used_alone_by_later_receipts(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    ten, sixteen, _ = await _submitted(store, ["10", "16", "11"])
    await store.record_receipts([_hex_receipt(17, Status.DELIVERED, "DELIVRD")],
                                held_ttl_seconds=100)  # "11": 11 or 17, only 11 is recorded
    # the convention is "same" now: "10" is message 10's receipt, though 16 reads the same
    assert await store.record_receipts([_hex_receipt(16, Status.EXPIRED, "EXPIRED")],
                                       held_ttl_seconds=100) == [ten]
    assert await _statuses(store, [ten, sixteen]) == ["expired", "submitted"]


async def test_a_receipt_spelling_its_id_twice_is_matched_by_its_tlv_form(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    ten, sixteen = await _submitted(store, ["10", "16"])
    # TLV "10" with text "id:16": the TLV is the response's id (SMPP 3.4), 16 its other spelling
    receipt = ReceiptEvent(channel="sim", forms=receipt_id_forms("10", "auto"),
                           state=Status.DELIVERED, stat="DELIVRD", err="000",
                           spelled_twice=True)
    assert await store.record_receipts([receipt], held_ttl_seconds=100) == [ten]
    assert await _statuses(store, [ten, sixteen]) == ["delivered", "submitted"]


async def test_receipts_are_found_across_the_channels_of_one_smsc_account(
    redis: Redis,
) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])
    await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    accounts = {"sim": "smsc.example:2775:acme", "sim2": "smsc.example:2775:acme"}
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=["7f"])],
                                dlr_ttl_seconds=100, smsc_accounts=accounts)
    got = await store.record_receipts(
        [ReceiptEvent(channel="sim2", smsc=accounts["sim2"], forms={"same": "7f"},
                      state=Status.DELIVERED, stat="DELIVRD", err="000")],
        held_ttl_seconds=100)
    assert got == [api_id]


async def test_a_live_worker_takes_back_its_own_claim_whose_reply_it_lost(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])
    await store.heartbeat("w1", 10_000)
    await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    # w1 is alive, so nobody else may take it; but w1 itself, not having it in flight, may
    assert await store.claim([api_id], worker="w2", lease_ms=10_000, served=["sim"]) == []
    # within its lease (a concurrent claim of the same batch), not even w1 takes it twice
    assert await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"]) == []
    await redis.zadd(pending_key("sim"), {api_id: 0})  # the lease has passed
    (again,) = await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    # w1 never had it in flight (it lost the reply), so nothing of it was sent: no attempt
    assert again.reclaimed and again.attempts == 0


async def test_a_message_submitted_without_an_smsc_id_catches_no_receipt(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()])
    await store.claim([api_id], worker="w1", lease_ms=10_000, served=["sim"])
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=[""],
                                         error_code="NoSmscId", error_text="no id")],
                                dlr_ttl_seconds=100)
    res = await store.record_receipts(
        [ReceiptEvent(channel="sim", forms={"same": ""}, state=Status.DELIVERED,
                      stat="DELIVRD", err="000")], held_ttl_seconds=100)
    assert res == ["held"]
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.status == "submitted"
    assert (rec.fields["err_code"], rec.fields["err_text"]) == ("NoSmscId", "no id")


async def test_a_message_accepted_with_an_earlier_date_is_as_old_as_that(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    (api_id,) = await _accept(store, [_msg()], accepted_at=1_000)
    (rec,) = await store.get([api_id])
    assert rec is not None and rec.fields["accepted_at"] == "1000"
    assert rec.transitions() == [("queued", 1000, "")]
    assert await store.due(["sim"], 10) == [api_id]


# --- expiry of messages no worker can claim (issue 11, item 4) ------------------------------

MAX_AGE_MS = 60_000
EXPIRED_TEXT = "max age reached while channel sim had no bind up"


async def _expire(store: Store, start: int = 0, limit: int = 100) -> tuple[list[str], int]:
    swept = await store.expire_queued("sim", max_age_ms=MAX_AGE_MS, text=EXPIRED_TEXT,
                                      start=start, limit=limit)
    return sorted(swept.failed), swept.next_start


async def test_expiry_fails_only_queued_messages_older_than_max_age(redis: Redis) -> None:
    store = Store(redis, retention_seconds=1000)
    old_at = now_ms() - 2 * MAX_AGE_MS
    claimed, *old = await _accept(store, [_msg(to=f"2782000000{i}") for i in range(3)], old_at)
    young = await _accept(store, [_msg(to="27820000009")], now_ms() - MAX_AGE_MS // 2)
    await store.heartbeat("w1", 10_000)
    # claimed by a live worker, due again (its lease has passed): it is the claim's to settle
    await store.claim([claimed], worker="w1", lease_ms=-MAX_AGE_MS, served=["sim"])
    await _hooked(redis, "acme")
    assert await _expire(store) == (sorted(old), 0)  # 0: it read every due entry
    hooked = await waiting(redis, "acme")
    assert sorted((f[b"id"].decode(), f[b"status"], f[b"code"]) for f in hooked) == sorted(
        (i, b"failed", b"Expired") for i in old)
    recs = await store.get([*old, *young, claimed])
    assert [r.status if r else None for r in recs] == ["failed", "failed", "queued", "sending"]
    failed = recs[0]
    assert failed is not None and failed.fields["err_code"] == "Expired"
    assert failed.fields["err_text"] == EXPIRED_TEXT
    assert failed.transitions()[-1][::2] == ("failed", f"Expired {EXPIRED_TEXT}")
    assert sorted(await store.due(["sim"], 10)) == sorted([*young, claimed])
    assert await _expire(store) == ([], 0)  # idempotent


async def test_two_expiry_passes_at_once_fail_each_message_once(redis: Redis) -> None:
    store = Store(redis, retention_seconds=1000)
    old = await _accept(store, [_msg(to=f"27820{i:06d}") for i in range(50)],
                        now_ms() - 2 * MAX_AGE_MS)
    (first, _), (second, _) = await asyncio.gather(_expire(store), _expire(store))
    assert sorted(first + second) == sorted(old) and not set(first) & set(second)
    for rec in await store.get(old):
        assert rec is not None and [t[0] for t in rec.transitions()] == ["queued", "failed"]


async def test_an_expiry_pass_reads_a_bounded_batch_and_the_next_goes_past_what_it_kept(
    redis: Redis,
) -> None:
    # Entries it cannot move (a dead worker's claim, due again) are lowest in the due index:
    # a pass that always began at the lowest would never reach the old queued message.
    store = Store(redis, retention_seconds=1000)
    held = await _accept(store, [_msg(to=f"2782000000{i}") for i in range(3)])
    await store.claim(held, worker="gone", lease_ms=-3 * MAX_AGE_MS, served=["sim"])
    (old,) = await _accept(store, [_msg(to="27820000009")], now_ms() - 2 * MAX_AGE_MS)
    assert await _expire(store, start=0, limit=2) == ([], 2)
    assert await _expire(store, start=2, limit=2) == ([old], 3)
    assert await _expire(store, start=3, limit=2) == ([], 0)  # at the end: from 0 next time
    (rec,) = await store.get([old])
    assert rec is not None and rec.status == "failed"



async def test_a_status_event_says_through_which_door_its_message_came(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    await _hooked(redis, "acme")
    smpp = NewMessage(api_id=new_id(), account="acme", channel="sim", to="27820000002",
                      content="hi", encoding="gsm7", segments=1, door="smpp", notify="f",
                      source="ACME")
    ids = await _accept(store, [_msg(), smpp])
    await store.heartbeat("w1", 10_000)
    await store.claim(ids, worker="w1", lease_ms=10_000, served=["sim"])
    await store.record_outcomes([Outcome(api_id=i, channel="sim", smsc_ids=[i]) for i in ids],
                                dlr_ttl_seconds=100)
    events = [e for shard in range(WEBHOOK_SHARDS)
              for e in await redis.xrange(webhook_stream_key("acme", shard))]
    doors = {f[b"id"].decode(): f[b"door"].decode() for _, f in events}
    assert doors == {ids[0]: "http", ids[1]: "smpp"}


async def test_status_events_carry_the_fields_each_move_leaves_first_and_later_in_a_run(
    redis: Redis,
) -> None:
    # The first event of a run reads its fields, later messages' come with their record.
    store = Store(redis, retention_seconds=100)
    await _hooked(redis, "acme")
    failed, delivered, bad, silent = await _accept(
        store, [_msg(to=f"2782000000{n}", cmid=f"c{n}") for n in range(4)])
    await store.heartbeat("w1", 10_000)
    await store.claim([failed, delivered, bad, silent], worker="w1", lease_ms=10_000,
                      served=["sim"])
    await store.record_outcomes(
        [Outcome(api_id=failed, channel="sim", status=Status.FAILED, error_code="0x0000000B",
                 error_text="ESME_RINVDSTADR"),
         Outcome(api_id=delivered, channel="sim", smsc_ids=["s1"]),
         Outcome(api_id=bad, channel="sim", smsc_ids=["s2"], error_code="NoSmscId",
                 error_text="no id"),
         Outcome(api_id=silent, channel="sim", smsc_ids=["s3"], receipt_wait_ms=60_000)],
        dlr_ttl_seconds=100)
    await store.record_receipts(
        [ReceiptEvent(channel="sim", forms={"same": "s1"}, state=Status.DELIVERED,
                      stat="DELIVRD", err="000", at=5),
         ReceiptEvent(channel="sim", forms={"same": "s2"}, state=Status.UNDELIVERED,
                      stat="UNDELIV", err="001", at=6)], held_ttl_seconds=100)
    await redis.zadd(pending_key("sim"), {silent: 0})  # its receipt wait has passed
    assert await store.claim([silent], worker="w1", lease_ms=10_000, served=["sim"]) == []
    events = [f for shard in range(WEBHOOK_SHARDS)
              for _, f in await redis.xrange(webhook_stream_key("acme", shard))]
    seen = {(f[b"id"].decode(), f[b"status"].decode()): tuple(
        f[k].decode() for k in (b"cmid", b"channel", b"to", b"code", b"text", b"stat", b"err"))
        for f in events}
    assert seen == {
        (failed, "failed"): ("c0", "sim", "27820000000", "0x0000000B", "ESME_RINVDSTADR", "", ""),
        (delivered, "submitted"): ("c1", "sim", "27820000001", "", "", "", ""),
        (bad, "submitted"): ("c2", "sim", "27820000002", "NoSmscId", "no id", "", ""),
        (silent, "submitted"): ("c3", "sim", "27820000003", "", "", "", ""),
        (delivered, "delivered"): ("c1", "sim", "27820000001", "", "", "DELIVRD", "000"),
        (bad, "undelivered"): ("c2", "sim", "27820000002", "NoSmscId", "no id", "UNDELIV",
                               "001"),
        (silent, "unknown"): ("c3", "sim", "27820000003", "", "", "", ""),
    }
    assert len(events) == len(seen)


async def test_the_overview_counts_messages_scheduled_ahead_apart_from_those_awaiting_receipts(
    redis: Redis,
) -> None:
    store = Store(redis, retention_seconds=100)
    hour = now_ms() + 3_600_000
    _, sent = await _accept(store, [replace(_msg(), scheduled_at=hour),
                                        _msg(to="27820000002")])
    await store.heartbeat("w1", 10_000)
    await store.claim([sent], worker="w1", lease_ms=10_000, served=["sim"])
    await store.record_outcomes([Outcome(api_id=sent, channel="sim", smsc_ids=["s1"],
                                         receipt_wait_ms=3_600_000)], dlr_ttl_seconds=100)
    seen = await store.overview(["sim"], minutes=1, failures=1)
    assert (seen.queued, seen.awaiting_receipt, seen.scheduled) == (
        {"sim": 0}, {"sim": 1}, {"sim": 1})
