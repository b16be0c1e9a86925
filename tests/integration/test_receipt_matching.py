"""Receipts find their own message and no other: the SMSC's id convention is learned, never
guessed, and receipts are looked up across every channel of one SMSC account (issue 11).

The dispatcher runs against the scripted SMSC double over TCP with a real redis-server; the
double hands out decimal ids 1, 2, 3... and the test writes every receipt itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.support import accept_messages, numbers, running_dispatcher
from tests.smsc_double import Conn, ScriptedSmsc
from worker.config import settings_from_dict
from worker.dispatch import Dispatcher, DispatchSettings
from worker.smpp import pdu
from worker.store import Record, Store

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_slot_per_script_run")]

WAIT = 30.0


@asynccontextmanager
async def dispatcher(store: Store, channels: Mapping[str, Mapping[str, Any]]
                     ) -> AsyncIterator[Dispatcher]:
    """A dispatcher over ``channels``, every one bound before it yields."""
    base = {"system_id": "smsgw", "password": "secret", "binds": 1, "window": 20,
            "enquire_link_seconds": 600, "reconnect_min_seconds": 0.05,
            "reconnect_max_seconds": 0.2}
    settings = settings_from_dict(
        {"channels": {name: {**base, **body} for name, body in channels.items()}}, {},
        source="test")
    async with running_dispatcher(store, settings.channels, DispatchSettings(),
                                  heartbeat=False, reaper=False, bound_within=WAIT) as disp:
        yield disp


def receipt(receipt_id: str, smsc_id: str) -> pdu.ShortMessage:
    """The receipt of the message the SMSC gave ``smsc_id``, its id spelled ``receipt_id``;
    its err: is ``smsc_id`` and its state depends on it, so a wrong match shows."""
    stat = "DELIVRD" if int(smsc_id) % 2 else "UNDELIV"
    text = (f"id:{receipt_id} sub:001 dlvrd:001 submit date:2401010000 "
            f"done date:2401010001 stat:{stat} err:{smsc_id}")
    return pdu.ShortMessage(source_addr="27820000000", destination_addr="smsgw",
                            esm_class=0x04, short_message=text.encode())


async def submitted(store: Store, disp: Dispatcher, ids: Sequence[str]) -> list[Record]:
    """Send ``ids`` and return their records once every outcome is recorded."""
    async with asyncio.timeout(WAIT):
        await disp.send(ids)
    records = [r for r in await store.get(ids) if r is not None]
    assert {r.status for r in records} == {"submitted"} and len(records) == len(ids)
    return records


def expected(records: Sequence[Record]) -> dict[str, tuple[str, str]]:
    """Each message settled by its own receipt (and by no other: the err of the last one)."""
    return {r.api_id: ("delivered" if int(r.fields["smsc_ids"]) % 2 else "undelivered",
                       r.fields["smsc_ids"]) for r in records}


async def settled(store: Store, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    return {r.api_id: (r.status, r.fields.get("dlr_err", ""))
            for r in await store.get(ids) if r is not None}


async def test_hex_receipts_of_decimal_ids_settle_only_their_own_messages(
    redis: Redis,
) -> None:
    # Decimal response ids 1-60, receipts in hex: "10" is message 16's receipt, not message
    # 10's, and "a" is message 10's. In auto mode a receipt used to settle the first message any
    # reading of its id found.
    store = Store(redis, 3600)
    async with ScriptedSmsc() as smsc, dispatcher(store, {"a": {"port": smsc.port}}) as disp:
        ids = await accept_messages(store, [(to, "hi") for to in numbers(60)], channel="a")
        records = await submitted(store, disp, ids)
        assert sorted(int(r.fields["smsc_ids"]) for r in records) == list(range(1, 61))
        conn = await smsc.bound_connection()
        for sid in sorted((r.fields["smsc_ids"] for r in records), key=int):
            resp = await conn.deliver(receipt(format(int(sid), "x"), sid))
            assert resp.status == pdu.ESME_ROK
    assert await settled(store, ids) == expected(records)


def submitted_on(smsc: ScriptedSmsc, to: str) -> Conn:
    return next(c for c, p in smsc.received if p.command_id == pdu.SUBMIT_SM
                and pdu.ShortMessage.decode(p.body).destination_addr == to)


async def test_receipts_arriving_on_another_channel_of_the_same_account_settle_messages(
    redis: Redis,
) -> None:
    # Two channels on one SMPP account (same host, port and system_id), told apart only by
    # their sender: the SMSC may deliver a receipt on either bind.
    store = Store(redis, 3600)
    async with ScriptedSmsc() as smsc, dispatcher(store, {
            "a": {"port": smsc.port, "source_addr": "alpha"},
            "b": {"port": smsc.port, "source_addr": "beta"}}) as disp:
        await smsc.wait_for(lambda: len([c for c in smsc.open_connections() if c.bound]) == 2)
        ids = [*await accept_messages(store, [(to, "hi") for to in numbers(10)], channel="a"),
               *await accept_messages(store, [(to, "hi") for to in numbers(20)[10:]],
                                      channel="b")]
        records = await submitted(store, disp, ids)
        conns = [c for c in smsc.open_connections() if c.bound]
        for r in records:
            other = next(c for c in conns if c is not submitted_on(smsc, r.fields["to"]))
            sid = r.fields["smsc_ids"]
            resp = await other.deliver(receipt(sid, sid))
            assert resp.status == pdu.ESME_ROK
    assert await settled(store, ids) == expected(records)
