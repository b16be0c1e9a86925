"""Concatenation references against a real redis-server: held while a message's parts are on
the wire, free once every part is answered (the receipt needs the SMSC ids, not the ref)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from worker.ids import new_id
from worker.lifecycle import Status
from worker.store import NewMessage, Outcome, ReceiptEvent, Store

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_slot_per_script_run")]

TO = "27820000001"
HOLD_MS = 49 * 3600 * 1000


async def _claimed(store: Store, count: int) -> list[str]:
    """``count`` multipart messages to one number, claimed by a live worker."""
    msgs = [NewMessage(api_id=new_id(), account="acme", channel="sim", to=TO,
                       content="x" * 200, encoding="gsm7", segments=2) for _ in range(count)]
    await store.accept(msgs, window_seconds=60, job_id=new_id(), job_payload=b"job",
                       job_expiry_seconds=60)
    await store.heartbeat("w1", 60_000)
    ids = [m.api_id for m in msgs]
    assert len(await store.claim(ids, worker="w1", lease_ms=60_000, served=["sim"])) == count
    return ids


async def _ref(store: Store, api_id: str) -> int | None:
    # One reference only (modulo 1), so a second holder is refused at once.
    return await store.allocate_ref(api_id, "sim", TO, modulo=1, hold_ms=HOLD_MS, start=0)


async def _record(store: Store, outcome: Outcome) -> None:
    await store.record_outcomes([outcome], dlr_ttl_seconds=100)


async def test_a_reference_is_free_once_a_message_without_receipts_is_submitted(
    redis: Redis,
) -> None:
    store = Store(redis, retention_seconds=100)
    a, b = await _claimed(store, 2)
    assert await _ref(store, a) == 0
    assert await _ref(store, b) is None
    await _record(store, Outcome(api_id=a, channel="sim", smsc_ids=["s1", "s2"]))
    assert await _ref(store, b) == 0


async def test_a_reference_is_free_once_a_message_awaiting_receipts_is_submitted(
    redis: Redis,
) -> None:
    store = Store(redis, retention_seconds=100)
    a, b = await _claimed(store, 2)
    assert await _ref(store, a) == 0
    await _record(store, Outcome(api_id=a, channel="sim", smsc_ids=["s1", "s2"],
                                 receipt_wait_ms=HOLD_MS))
    assert await _ref(store, b) == 0


async def test_a_reference_is_free_once_its_message_failed(redis: Redis) -> None:
    store = Store(redis, retention_seconds=100)
    a, b = await _claimed(store, 2)
    assert await _ref(store, a) == 0
    await _record(store, Outcome(api_id=a, channel="sim", status=Status.FAILED,
                                 error_code="0x0000000B", error_text="invalid destination"))
    assert await _ref(store, b) == 0


async def test_a_message_sent_again_keeps_its_reference_until_then(redis: Redis) -> None:
    # Its first part may have reached the SMSC before the bind dropped: the resend must carry
    # the same reference for the handset to put the parts together.
    store = Store(redis, retention_seconds=100)
    a, b = await _claimed(store, 2)
    assert await _ref(store, a) == 0
    await _record(store, Outcome(api_id=a, channel="sim", status=Status.QUEUED,
                                 error_code="BindDown", error_text="closed", retry_at=0))
    assert await _ref(store, b) is None
    assert await store.claim([a], worker="w1", lease_ms=60_000, served=["sim"])
    assert await _ref(store, a) == 0


async def test_a_late_receipt_never_frees_a_reference_another_message_now_holds(
    redis: Redis,
) -> None:
    store = Store(redis, retention_seconds=100)
    a, b, c = await _claimed(store, 3)
    assert await _ref(store, a) == 0
    await _record(store, Outcome(api_id=a, channel="sim", smsc_ids=["s1"],
                                 receipt_wait_ms=HOLD_MS))
    assert await _ref(store, b) == 0
    await store.record_receipts([ReceiptEvent(channel="sim", forms={"same": "s1"},
                                              state=Status.DELIVERED, stat="DELIVRD", err="0")],
                                held_ttl_seconds=100)
    assert await _ref(store, c) is None
