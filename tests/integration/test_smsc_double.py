"""The scripted SMSC double itself, against our session over TCP: the tests of the link's
resilience rely on it answering, recording and waiting as documented."""

from __future__ import annotations

import asyncio

import pytest

from tests.smsc_double import Conn, Script, ScriptedSmsc
from worker.smpp import pdu
from worker.smpp.pdu import Pdu, ShortMessage
from worker.smpp.session import Session, SessionClosed, SessionParams

pytestmark = pytest.mark.integration


def _params(port: int) -> SessionParams:
    return SessionParams(host="127.0.0.1", port=port, system_id="smsgw", password="secret",
                         system_type="", bind_command=pdu.BIND_TRANSCEIVER, window=5,
                         enquire_link_seconds=600, response_timeout_seconds=600)


async def _ok(_: ShortMessage) -> int:
    return pdu.ESME_ROK


class Refuses(Script):
    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        conn.respond(p, status=pdu.ESME_RINVDSTADR)


async def test_the_double_answers_binds_and_submits_and_records_them() -> None:
    async with ScriptedSmsc() as smsc:
        session = await Session.open(_params(smsc.port), _ok, "t")
        try:
            results = await asyncio.gather(*(session.submit(
                ShortMessage(destination_addr=f"2782000000{n}", short_message=b"hi"))
                for n in range(3)))
        finally:
            session.abort()
        assert sorted(r.message_id for r in results) == ["1", "2", "3"]
        assert smsc.binds == 1
        assert [s.destination_addr for s in smsc.submits] == [f"2782000000{n}" for n in range(3)]


async def test_a_script_overrides_one_answer_and_the_double_delivers_to_the_esme() -> None:
    delivered: list[ShortMessage] = []

    async def record(sm: ShortMessage) -> int:
        delivered.append(sm)
        return pdu.ESME_ROK

    async with ScriptedSmsc(Refuses()) as smsc:
        session = await Session.open(_params(smsc.port), record, "t")
        try:
            result = await session.submit(ShortMessage(destination_addr="1", short_message=b"x"))
            conn = await smsc.bound_connection()
            resp = await conn.deliver(ShortMessage(source_addr="27821", short_message=b"MO"))
        finally:
            session.abort()
        await smsc.wait_for(lambda: not smsc.open_connections())
    assert result.status == pdu.ESME_RINVDSTADR
    assert resp.command_id == pdu.DELIVER_SM_RESP and resp.status == pdu.ESME_ROK
    assert [sm.short_message for sm in delivered] == [b"MO"]


async def test_a_submit_after_the_bind_ended_says_it_was_never_written() -> None:
    async with ScriptedSmsc() as smsc:
        session = await Session.open(_params(smsc.port), _ok, "t")
        session.abort()
        with pytest.raises(SessionClosed) as caught:
            await session.submit(ShortMessage(destination_addr="1", short_message=b"x"))
    assert caught.value.written is False
