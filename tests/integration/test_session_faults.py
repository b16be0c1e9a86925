"""Our SMPP session against an SMSC that misbehaves on the link (issue 11), over real TCP.

The scripted double plays the SMSC: late answers, answers to the wrong command, bind-state
errors, an unterminated message_id, answers to nothing. What the double received is the judge
of what went on the wire.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.smsc_double import Conn, Script, ScriptedSmsc, submit_resp_body
from worker.smpp import pdu
from worker.smpp.pdu import Pdu, ShortMessage
from worker.smpp.session import Session, SessionClosed, SessionParams, SubmitResult

pytestmark = pytest.mark.integration

WAIT = 10.0
NO_TIMEOUT = 600.0  # far beyond every test's bound: nothing here ends by a response timeout
# Short, so that a test about the response timeout does not wait long; no test measures it.
SHORT_TIMEOUT = 0.2


def _params(port: int, window: int = 5, response_timeout: float = NO_TIMEOUT) -> SessionParams:
    return SessionParams(host="127.0.0.1", port=port, system_id="smsgw", password="secret",
                         system_type="", bind_command=pdu.BIND_TRANSCEIVER, window=window,
                         enquire_link_seconds=NO_TIMEOUT,
                         response_timeout_seconds=response_timeout)


async def _ok(_: ShortMessage) -> int:
    return pdu.ESME_ROK


def _sm(n: int) -> ShortMessage:
    return ShortMessage(destination_addr=f"2782{n:07d}", short_message=b"hello")


async def _outcomes(session: Session, count: int) -> list[SubmitResult | BaseException]:
    async with asyncio.timeout(WAIT):
        return await asyncio.gather(*(session.submit(_sm(n)) for n in range(count)),
                                    return_exceptions=True)


class Silent(Script):
    """Takes every submit_sm and never answers it."""

    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        pass


class AnswersInOrderWhenUnbound(Script):
    """A slow SMSC that answers in order: the submits' answers go out only when the unbind
    comes, just before the unbind_resp."""

    def __init__(self) -> None:
        self.held: list[Pdu] = []

    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        self.held.append(p)

    async def on_unbind(self, conn: Conn, p: Pdu) -> None:
        for held in self.held:
            conn.respond(held, body=submit_resp_body(conn.next_id()))
        self.held.clear()
        await super().on_unbind(conn, p)


class AnswersWithEnquireLinkResp(Script):
    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        conn.respond(p, command_id=pdu.ENQUIRE_LINK_RESP)


class BindStateError(Script):
    def __init__(self, status: int) -> None:
        self.status = status

    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        conn.respond(p, status=self.status)


class UnterminatedMessageId(Script):
    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        conn.respond(p, body=b"12345")  # ESME_ROK, the message_id's NUL missing


class AnswersNothingAsked(Script):
    """Before each answer, writes ``extra`` submit_sm_resp for sequence numbers never used."""

    def __init__(self, extra: int) -> None:
        self.extra = extra

    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        for n in range(self.extra):
            conn.send(pdu.SUBMIT_SM_RESP, pdu.ESME_ROK, 0x7000_0000 + n, submit_resp_body("x"))
        await super().on_submit(conn, p)


# --- a response timeout is a fault of the bind ---------------------------------------------


async def test_a_timed_out_submit_keeps_its_window_slot_until_the_bind_is_reset() -> None:
    async with ScriptedSmsc(Silent()) as smsc:
        session = await Session.open(_params(smsc.port, window=2,
                                             response_timeout=SHORT_TIMEOUT), _ok, "t")
        try:
            results = await _outcomes(session, 5)
        finally:
            session.abort()
        await smsc.wait_for(lambda: bool(smsc.of(pdu.UNBIND)))
    # Never more than the window on the wire, and the bind was reset (unbind) before any slot
    # was given back.
    assert len(smsc.submits) == 2
    assert all(isinstance(r, SessionClosed) for r in results), results
    written = [r.written for r in results if isinstance(r, SessionClosed)]
    assert sorted(written) == [False, False, False, True, True]


async def test_answers_that_come_late_but_before_the_unbind_resp_are_returned() -> None:
    async with ScriptedSmsc(AnswersInOrderWhenUnbound()) as smsc:
        session = await Session.open(_params(smsc.port, window=3,
                                             response_timeout=SHORT_TIMEOUT), _ok, "t")
        try:
            results = await _outcomes(session, 3)
            async with asyncio.timeout(WAIT):
                await session.wait_closed()
        finally:
            session.abort()
    assert [r.status for r in results if isinstance(r, SubmitResult)] == [pdu.ESME_ROK] * 3
    assert sorted(r.message_id for r in results if isinstance(r, SubmitResult)) == ["1", "2", "3"]
    assert len(smsc.of(pdu.UNBIND)) == 1 and len(smsc.submits) == 3


# --- a response must answer the command it claims to ------------------------------------------


async def test_a_response_to_another_command_is_not_taken_as_the_answer_and_resets_the_bind(
) -> None:
    async with ScriptedSmsc(AnswersWithEnquireLinkResp()) as smsc:
        session = await Session.open(_params(smsc.port), _ok, "t")
        try:
            [result] = await _outcomes(session, 1)
            async with asyncio.timeout(WAIT):
                await session.wait_closed()
        finally:
            session.abort()
    assert isinstance(result, SessionClosed) and result.written, result
    assert len(smsc.of(pdu.UNBIND)) == 1


# --- bind-state errors reset the bind ----------------------------------------------------------


@pytest.mark.parametrize("status", [pdu.ESME_RINVBNDSTS, pdu.ESME_RBINDFAIL])
async def test_a_bind_state_error_on_a_submit_resets_the_bind_and_says_nothing_was_taken(
    status: int,
) -> None:
    async with ScriptedSmsc(BindStateError(status)) as smsc:
        session = await Session.open(_params(smsc.port), _ok, "t")
        try:
            [result] = await _outcomes(session, 1)
            async with asyncio.timeout(WAIT):
                await session.wait_closed()
        finally:
            session.abort()
    assert isinstance(result, SessionClosed) and result.written is False, result
    assert len(smsc.of(pdu.UNBIND)) == 1


# --- a message_id that does not decode ------------------------------------------------------


async def test_an_accepted_submit_whose_message_id_does_not_decode_is_accepted_without_id(
) -> None:
    async with ScriptedSmsc(UnterminatedMessageId()) as smsc:
        session = await Session.open(_params(smsc.port), _ok, "t")
        try:
            [result] = await _outcomes(session, 1)
            assert session.bound  # the stream is intact: one bad field is not a bind fault
        finally:
            session.abort()
    assert result == SubmitResult(pdu.ESME_ROK, "")
    assert smsc.of(pdu.UNBIND) == []


# --- answers to nothing are logged, not silently dropped ---------------------------------------


async def test_responses_matching_no_request_are_logged_once_not_per_pdu(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="smsgw.smpp")
    async with ScriptedSmsc(AnswersNothingAsked(extra=50)) as smsc:
        session = await Session.open(_params(smsc.port), _ok, "t")
        try:
            # TCP keeps order: once the submit is answered, the 50 before it have been read.
            [result] = await _outcomes(session, 1)
            assert session.bound
        finally:
            session.abort()
    assert isinstance(result, SubmitResult) and result.message_id == "1"
    lines = [r for r in caplog.records if "matches no request" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
