"""Requests an SMSC sends besides deliver_sm: data_sm (receipts and MO messages carried in
TLVs) and alert_notification (which SMPP 3.4 leaves unanswered). Issue 11, item 7."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis

from tests.integration.support import running_dispatcher
from tests.smsc_double import ScriptedSmsc
from worker.config import settings_from_dict
from worker.dispatch import Dispatcher, DispatchSettings
from worker.encoding import analyse
from worker.ids import new_id
from worker.jobs import job_payload
from worker.smpp import pdu
from worker.smpp.pdu import ShortMessage
from worker.smpp.session import Session, SessionParams
from worker.store import NewMessage, Store, now_ms

pytestmark = pytest.mark.integration

WAIT = 30.0


@asynccontextmanager
async def bound_worker(store: Store, port: int) -> AsyncIterator[Dispatcher]:
    """A dispatcher wired as the arq worker wires it, bound to the double before it yields."""
    settings = settings_from_dict(
        {"channels": {"sim": {"port": port, "system_id": "smsgw", "password": "secret"}}},
        {}, source="test")
    async with running_dispatcher(store, settings.channels, DispatchSettings(),
                                  heartbeat=False, reaper=False, bound_within=WAIT) as dispatcher:
        yield dispatcher


async def _submitted(store: Store, dispatcher: Dispatcher, to: str) -> str:
    text = "hi"
    msg = NewMessage(api_id=new_id(), account="acme", channel="sim", to=to, content=text,
                     encoding=analyse(text).encoding, segments=analyse(text).segments)
    await store.accept([msg], window_seconds=60, job_id=new_id(),
                       job_payload=job_payload([msg.api_id], now_ms()), job_expiry_seconds=60)
    await dispatcher.send([msg.api_id])
    return msg.api_id


async def test_a_receipt_in_a_data_sm_delivers_its_message_and_is_acked_after_recording(
    redis: Redis
) -> None:
    store = Store(redis, 3600)
    async with ScriptedSmsc() as smsc, bound_worker(store, smsc.port) as dispatcher:
        api_id = await _submitted(store, dispatcher, "27820000001")
        (record,) = await store.get([api_id])
        assert record is not None and record.status == "submitted"
        smsc_id = record.fields["smsc_ids"]
        receipt = ShortMessage(source_addr="27820000001", destination_addr="smsgw",
                               esm_class=0x04, tlvs={
                                   pdu.RECEIPTED_MESSAGE_ID: pdu.encode_c_string(smsc_id),
                                   pdu.MESSAGE_STATE: b"\x02"})  # DELIVERED
        conn = await smsc.bound_connection()
        resp = await conn.request(pdu.DATA_SM, receipt.encode_data_sm(), within=WAIT)
        # Read at once: the answer is written only once the receipt is in Redis.
        (record,) = await store.get([api_id])
    assert (resp.command_id, resp.status, resp.body) == (pdu.DATA_SM_RESP, pdu.ESME_ROK, b"\x00")
    assert record is not None and record.status == "delivered"


def _params(port: int) -> SessionParams:
    return SessionParams(host="127.0.0.1", port=port, system_id="smsgw", password="secret",
                         system_type="", bind_command=pdu.BIND_TRANSCEIVER, window=5,
                         enquire_link_seconds=600, response_timeout_seconds=600)


async def test_an_mo_message_in_a_data_sm_reaches_the_handler_with_its_payload() -> None:
    delivered: list[ShortMessage] = []

    async def record(sm: ShortMessage) -> int:
        delivered.append(sm)
        return pdu.ESME_ROK

    mo = ShortMessage(source_addr="27820000001", destination_addr="smsgw",
                      tlvs={pdu.MESSAGE_PAYLOAD: b"STOP"})
    async with ScriptedSmsc() as smsc:
        session = await Session.open(_params(smsc.port), record, "t")
        try:
            conn = await smsc.bound_connection()
            resp = await conn.request(pdu.DATA_SM, mo.encode_data_sm())
        finally:
            session.abort()
    assert (resp.command_id, resp.status) == (pdu.DATA_SM_RESP, pdu.ESME_ROK)
    assert [(sm.source_addr, sm.payload()) for sm in delivered] == [("27820000001", b"STOP")]


async def test_a_malformed_data_sm_is_answered_with_an_error_and_the_bind_stays_up() -> None:
    reached, handler = _recorder()
    async with ScriptedSmsc() as smsc:
        session = await Session.open(_params(smsc.port), handler, "t")
        try:
            conn = await smsc.bound_connection()
            resp = await conn.request(pdu.DATA_SM, b"CMT\x00\x01")
            alive = await conn.request(pdu.ENQUIRE_LINK)
        finally:
            session.abort()
    assert (resp.command_id, resp.status) == (pdu.DATA_SM_RESP, pdu.ESME_RSYSERR)
    assert alive.command_id == pdu.ENQUIRE_LINK_RESP
    assert reached == []  # the malformed PDU never reached the handler


def _recorder() -> tuple[list[ShortMessage], Callable[[ShortMessage], Awaitable[int]]]:
    """A deliver handler that keeps what reaches it (one that raised would be answered with an
    error by the session, which is what a malformed PDU gets too: it could not tell)."""
    reached: list[ShortMessage] = []

    async def handler(sm: ShortMessage) -> int:
        reached.append(sm)
        return pdu.ESME_ROK

    return reached, handler


async def test_an_alert_notification_is_ignored_quietly() -> None:
    reached, handler = _recorder()
    alert = (b"\x01\x01" + pdu.encode_c_string("27820000001")  # source_addr_ton/npi/addr
             + b"\x05\x00" + pdu.encode_c_string("smsgw")  # esme_addr_ton/npi/addr
             + pdu.encode_tlv(0x0422, b"\x00"))  # ms_availability_status: available
    async with ScriptedSmsc() as smsc:
        session = await Session.open(_params(smsc.port), handler, "t")
        try:
            conn = await smsc.bound_connection()
            conn.send(pdu.ALERT_NOTIFICATION, 0, 4242, alert)
            # PDUs are answered in order: once this is answered, an answer to the alert would
            # already be here.
            alive = await conn.request(pdu.ENQUIRE_LINK)
            bound = session.bound
        finally:
            session.abort()
    assert alive.command_id == pdu.ENQUIRE_LINK_RESP and bound
    assert [p.command_id for p in conn.received if p.seq == 4242] == []
    assert reached == []
