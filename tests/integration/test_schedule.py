"""Scheduled messages and validity periods end to end: smpplib over TCP → the SMPP server →
Redis → the worker's dispatcher → the scripted SMSC double (which notes when each submit_sm
arrived), and the SMPP status of a time the gateway refuses."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.smpp_server.server import SmppServer, running
from tests.esme import Esme
from tests.integration.support import running_dispatcher, wait_final
from tests.integration.test_smpp_server import (
    add_user,
    bound_esme,
    in_thread,
    server,
    smpp_settings,
)
from tests.integration.test_worker_behaviour import worker
from tests.smsc_double import Conn, Script, ScriptedSmsc
from worker.dispatch import DispatchSettings
from worker.ids import new_id
from worker.smpp import pdu, times
from worker.smpp.pdu import Pdu, ShortMessage
from worker.store import NewMessage, Store, now_ms, pending_key

pytestmark = pytest.mark.integration

__all__ = ["server"]  # the SMPP server fixture, used by name

ESME_RINVSCHED = 0x61
ESME_RINVEXPIRY = 0x62
EXPIRED = 3  # message_state
WAIT = 30.0


class StampedSubmits(Script):
    """A healthy SMSC that notes when (epoch ms) each submit_sm arrived, by its text."""

    def __init__(self) -> None:
        self.arrived: dict[bytes, int] = {}

    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        self.arrived[ShortMessage.decode(p.body).short_message] = now_ms()
        await super().on_submit(conn, p)


class QueueFull(Script):
    """An SMSC whose queue is always full: a temporary error, so the message is retried. It
    notes when (epoch ms) each submit_sm arrived."""

    def __init__(self) -> None:
        self.arrivals: list[int] = []

    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        self.arrivals.append(now_ms())
        conn.respond(p, status=pdu.ESME_RMSGQFUL)


class RefusesBinds(Script):
    """An SMSC that is up but refuses every bind: the channel never has one."""

    async def on_bind(self, conn: Conn, p: Pdu) -> None:
        conn.respond(p, status=pdu.ESME_RBINDFAIL)


async def submit(esme: Esme, to: str, text: bytes, **extra: Any) -> tuple[int, str]:
    """One submit_sm (``extra``: its schedule or validity) and its answer: (status, id)."""
    return await in_thread(esme.submit_one, to, text, **extra)


async def test_a_scheduled_submit_reaches_the_smsc_at_its_time_carrying_its_validity(
    redis_url: str, redis: Redis,
) -> None:
    script = StampedSubmits()
    store = Store(redis, 3600)
    password = await add_user(redis)
    async with ScriptedSmsc(script) as smsc, worker(store, smsc.port), \
            running(smpp_settings(redis_url, smsc.port), "127.0.0.1", 0) as srv:
        async with bound_esme(srv.port, "transmitter", password) as esme:
            # three seconds from now, valid for an hour; and one at once
            later = await submit(esme, "+27820000001", b"later",
                                 schedule_delivery_time="000000000003000R",
                                 validity_period="000000010000000R")
            at_once = await submit(esme, "+27820000002", b"at once")
        assert later[0] == at_once[0] == 0
        await smsc.wait_for(lambda: len(smsc.submits) == 2, within=WAIT)
    [record] = await store.get([later[1]])
    assert record is not None
    scheduled, valid_until = int(record.fields["sched_at"]), int(record.fields["valid_until"])
    assert script.arrived[b"at once"] < scheduled <= script.arrived[b"later"]
    validity = {sm.short_message: sm.validity_period for sm in smsc.submits}
    assert validity == {b"later": times.absolute(valid_until), b"at once": ""}


async def test_retries_after_temporary_errors_stop_at_the_validity(
    redis_url: str, redis: Redis,
) -> None:
    script = QueueFull()
    store = Store(redis, 3600)
    valid_until = now_ms() + 2000
    message = NewMessage(api_id=new_id(), account="acme", channel="sim", to="27820000001",
                         content="hi", encoding="gsm7", segments=1, valid_until=valid_until)
    async with ScriptedSmsc(script) as smsc, worker(store, smsc.port, max_attempts=100), \
            asyncio.timeout(WAIT):
        await store.accept([message], window_seconds=60, job_id=new_id(), job_payload=b"",
                           job_expiry_seconds=60)
        assert await wait_final(redis_url, [message.api_id]) == {message.api_id: "failed"}
    [record] = await store.get([message.api_id])
    assert record is not None
    assert (record.fields["err_code"], record.fields["err_text"]) == (
        "Expired", "validity period ended before the SMSC accepted it")
    assert script.arrivals and max(script.arrivals) < valid_until
    assert {sm.validity_period for sm in smsc.submits} == {times.absolute(valid_until)}


async def test_a_message_whose_validity_ends_with_no_bind_up_ends_expired_and_is_never_sent(
    redis_url: str, redis: Redis,
) -> None:
    store = Store(redis, 3600)
    password = await add_user(redis)
    async with ScriptedSmsc(RefusesBinds()) as smsc:
        settings = smpp_settings(redis_url, smsc.port)
        channels = {"sim": replace(settings.channels["sim"], reconnect_min_seconds=0.05,
                                   reconnect_max_seconds=0.2)}
        async with running(settings, "127.0.0.1", 0) as srv, \
                bound_esme(srv.port, "transceiver", password) as esme:
            status, api_id = await submit(esme, "+27820000001", b"brief",
                                          validity_period="000000000002000R")
            assert status == 0
            async with running_dispatcher(
                    store, channels, DispatchSettings(reap_interval_seconds=0.1,
                                                      expire_interval_seconds=0.1)), \
                    asyncio.timeout(WAIT):
                await smsc.wait_for(lambda: smsc.binds >= 1)  # it did try
                assert await wait_final(redis_url, [api_id]) == {api_id: "failed"}
                [receipt] = await in_thread(esme.read_receipts, 1)
        assert smsc.submits == []
    [record] = await store.get([api_id])
    assert record is not None
    assert record.fields["err_code"] == "Expired"
    assert record.fields["err_text"] == "validity period ended while channel sim had no bind up"
    assert (receipt.receipted_id, receipt.message_state) == (api_id, EXPIRED)
    assert " stat:EXPIRED " in receipt.text


async def test_the_smpp_server_refuses_a_bad_time_with_its_status_and_stores_nothing(
    server: SmppServer, redis: Redis,
) -> None:
    password = await add_user(redis)
    async with bound_esme(server.port, "transmitter", password) as esme:
        answers = [await submit(esme, "+27820000001", b"x", **fields) for fields in (
            {"schedule_delivery_time": "261301000000000+"},  # month 13
            # 31 days ahead: over the 30-day bound (not "a month": April's is 30 days)
            {"schedule_delivery_time": "000031000000000R"},
            {"validity_period": "000001000000100R"},  # relative with tenths
            {"validity_period": "000000000001000R",
             "schedule_delivery_time": "000000000002000R"},  # ends before its time
        )]
    assert answers == [(ESME_RINVSCHED, ""), (ESME_RINVSCHED, ""), (ESME_RINVEXPIRY, ""),
                       (ESME_RINVEXPIRY, "")]
    assert await redis.zcard(pending_key("sim")) == 0
