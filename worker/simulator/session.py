"""One ESME connection to the simulated SMSC, as an asyncio.Protocol.

Writes are batched: everything a session has to say during one event-loop iteration goes out in
a single transport.write, which is what lets one core answer well over 10k submit_sm/s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from worker.simulator.config import SimulatorConfig
from worker.simulator.policies import Outcome, SubmitPolicy, judge
from worker.simulator.receipts import (
    Accepted,
    MessageIds,
    Receipt,
    ReceiptFactory,
    ReceiptRouter,
    format_id,
)
from worker.simulator.records import SubmitRecord, describe
from worker.simulator.stats import SimStats
from worker.smpp.pdu import (
    BIND_RECEIVER,
    BIND_TRANSCEIVER,
    BIND_TRANSMITTER,
    DELIVER_SM,
    DELIVER_SM_RESP,
    ENQUIRE_LINK,
    ENQUIRE_LINK_RESP,
    ESME_RALYBND,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_ROK,
    GENERIC_NACK,
    RESP_BIT,
    SUBMIT_SM,
    SUBMIT_SM_RESP,
    UNBIND,
    UNBIND_RESP,
    Bind,
    Pdu,
    PduBuffer,
    PduError,
    ShortMessage,
    encode_c_string,
    encode_pdu,
    status_name,
)

_BIND_KINDS = {
    BIND_TRANSMITTER: "transmitter",
    BIND_RECEIVER: "receiver",
    BIND_TRANSCEIVER: "transceiver",
}
_MAX_SEQ = 0x7FFFFFFF
_REDELIVER_DELAY = 1.0  # seconds before a receipt refused by the ESME is sent again


@dataclass(slots=True)
class SessionContext:
    """What every session of one simulator shares (owned by the Simulator)."""

    config: SimulatorConfig
    stats: SimStats
    router: ReceiptRouter
    policies: tuple[SubmitPolicy, ...]
    ids: MessageIds
    receipts: ReceiptFactory
    on_submit: Callable[[SubmitRecord], None]
    on_receipt_acked: Callable[[], None]
    on_bind_change: Callable[[], None] = lambda: None
    sessions: set[SmscSession] = field(default_factory=set)


# A submit_sm answer waiting for the ack delay: the response PDU and, if accepted, its details.
_Answer = tuple[bytes, Accepted | None]


class SmscSession(asyncio.Protocol):
    """SMSC side of one connection: bind state, dispatch, batched writes."""

    def __init__(self, context: SessionContext) -> None:
        self._ctx = context
        self._config = context.config
        self._frames = PduBuffer()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[None] = self._loop.create_future()  # done at connection_lost
        self._out: list[bytes] = []
        self._closed = False
        self._received = 0
        self._system_id: str | None = None
        self._can_submit = False
        self._can_receive = False
        self._outstanding = 0  # submit_sm received but not answered yet
        self._delayed: list[_Answer] = []  # answers of the current batch, for the ack delay
        self._receipts: list[Receipt] = []  # receipts of the current batch, for the receipt delay
        self._timers: set[asyncio.TimerHandle] = set()
        self._seq = 0
        self._unacked: dict[int, Receipt] = {}  # deliver_sm seq -> receipt
        self._handlers: dict[int, Callable[[Pdu], None]] = {
            BIND_TRANSMITTER: self._on_bind,
            BIND_RECEIVER: self._on_bind,
            BIND_TRANSCEIVER: self._on_bind,
            SUBMIT_SM: self._on_submit,
            DELIVER_SM_RESP: self._on_deliver_sm_resp,
            ENQUIRE_LINK: self._on_enquire_link,
            UNBIND: self._on_unbind,
        }

    # --- asyncio.Protocol ----------------------------------------------------------------------

    @property
    def bound_system_id(self) -> str | None:
        """The system_id this connection is bound as, or None before bind."""
        return self._system_id

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register the connection."""
        # uvloop's transports do not subclass asyncio.Transport
        self._transport = cast(asyncio.Transport, transport)
        self._ctx.sessions.add(self)
        self._ctx.stats.connections += 1

    def data_received(self, data: bytes) -> None:
        """Frame and handle every complete PDU, then schedule this batch's delayed work."""
        try:
            pdus = self._frames.feed(data)
        except PduError:
            # A bad command_length leaves no way to find the next PDU boundary.
            self._send(encode_pdu(GENERIC_NACK, ESME_RINVCMDLEN, 0))
            self.close()
            return
        drop_after = self._config.drop_after
        for pdu in pdus:
            if self._closed:
                break
            self._received += 1
            if drop_after is not None and self._received >= drop_after:
                self._ctx.stats.drops += 1
                self.close()
                break
            self._dispatch(pdu)
        self._end_batch()

    def connection_lost(self, exc: Exception | None) -> None:
        """Cancel pending answers and give unacknowledged receipts back to the router."""
        self._closed = True
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self._ctx.sessions.discard(self)
        if self._system_id is not None:
            self._ctx.on_bind_change()
        self._detach()
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        """The peer is not reading: stop reading its requests until it catches up."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        """The peer caught up: read again."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _detach(self) -> None:
        # Once closing, no deliver_sm_resp can arrive: its receipts go back to the router now.
        if self._can_receive and self._system_id is not None:
            self._can_receive = False
            unacked = list(self._unacked.values())
            self._unacked.clear()
            self._ctx.router.detach(self._system_id, self, unacked)

    # --- outbound ------------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        if self._out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(self._out))
        self._out.clear()

    def close(self) -> None:
        """Write what is queued, then close the connection."""
        self._flush()
        self._closed = True
        if self._transport is not None:
            self._transport.close()
        self._detach()

    def abort(self) -> None:
        """Close at once, dropping unsent data."""
        self._closed = True
        if self._transport is not None:
            self._transport.abort()
        self._detach()

    def send_receipt(self, receipt: Receipt, urgent: bool) -> None:
        """Send a deliver_sm receipt; urgent ones are written before anything queued after."""
        self._seq = self._seq % _MAX_SEQ + 1
        self._unacked[self._seq] = receipt
        self._ctx.stats.receipts_sent += 1
        self._send(encode_pdu(DELIVER_SM, ESME_ROK, self._seq, receipt.body))
        if urgent:
            self._flush()

    # --- dispatch ------------------------------------------------------------------------------

    def _dispatch(self, pdu: Pdu) -> None:
        handler = self._handlers.get(pdu.command_id)
        if handler is not None:
            handler(pdu)
        elif not pdu.command_id & RESP_BIT:
            self._send(encode_pdu(GENERIC_NACK, ESME_RINVCMDID, pdu.seq))
        # Other responses (enquire_link_resp, generic_nack...) need no action; answering a
        # response could start a nack loop.

    def _on_enquire_link(self, pdu: Pdu) -> None:
        self._ctx.stats.enquire_links += 1
        self._send(encode_pdu(ENQUIRE_LINK_RESP, ESME_ROK, pdu.seq))

    def _on_unbind(self, pdu: Pdu) -> None:
        self._ctx.stats.unbinds += 1
        self._send(encode_pdu(UNBIND_RESP, ESME_ROK, pdu.seq))
        self.close()

    def _on_deliver_sm_resp(self, pdu: Pdu) -> None:
        receipt = self._unacked.pop(pdu.seq, None)
        if receipt is None:
            return
        if pdu.status != ESME_ROK:
            # The ESME could not take it (e.g. its store is down): try again later, as SMSCs do.
            self._ctx.stats.receipts_resent += 1
            self._ctx.router.deliver_later([receipt], _REDELIVER_DELAY)
            return
        self._ctx.stats.receipts_acked += 1
        self._ctx.on_receipt_acked()

    def _on_bind(self, pdu: Pdu) -> None:
        resp_id = pdu.command_id | RESP_BIT
        try:
            bind = Bind.decode(pdu.body)
        except PduError:
            self._send(encode_pdu(GENERIC_NACK, ESME_RINVCMDLEN, pdu.seq))
            return
        status = self._check_bind(bind)
        if status != ESME_ROK:
            self._ctx.stats.bind_failures[status_name(status)] += 1
            self._send(encode_pdu(resp_id, status, pdu.seq))
            return
        kind = _BIND_KINDS[pdu.command_id]
        self._ctx.stats.binds[kind] += 1
        self._system_id = bind.system_id
        self._can_submit = kind != "receiver"
        self._can_receive = kind != "transmitter"
        self._send(encode_pdu(resp_id, ESME_ROK, pdu.seq, encode_c_string(self._config.system_id)))
        if self._can_receive:
            self._ctx.router.attach(bind.system_id, self)
        self._ctx.on_bind_change()

    def _check_bind(self, bind: Bind) -> int:
        if self._system_id is not None:
            return ESME_RALYBND
        expected = self._config.accounts.get(bind.system_id)
        if expected is None:
            return ESME_RINVSYSID
        if expected != bind.password:
            return ESME_RINVPASWD
        return ESME_ROK

    # --- submit_sm -----------------------------------------------------------------------------

    def _on_submit(self, pdu: Pdu) -> None:
        if not self._can_submit or self._system_id is None:
            self._send(encode_pdu(SUBMIT_SM_RESP, ESME_RINVBNDSTS, pdu.seq))
            return
        try:
            message = ShortMessage.decode(pdu.body)
        except PduError:
            self._send(encode_pdu(GENERIC_NACK, ESME_RINVCMDLEN, pdu.seq))
            return
        ctx = self._ctx
        ctx.stats.submits += 1
        verdict = judge(ctx.policies, message.destination_addr, self._outstanding)
        accepted: Accepted | None = None
        message_id = ""
        udh, sar, text = describe(message)
        now = time.time()
        if verdict.outcome is Outcome.ACCEPT:
            number = ctx.ids.next()
            message_id = format_id(number, self._config.id_format)
            accepted = Accepted(
                self._system_id,
                message.source_addr,
                message.destination_addr,
                text or "",
                message.registered_delivery,
                number,
                now,
            )
        response, answer_name = self._response(verdict.outcome, verdict.status, pdu.seq, message_id)
        ctx.on_submit(
            SubmitRecord(
                now,
                self._system_id,
                message.source_addr,
                message.destination_addr,
                message.data_coding,
                message.esm_class,
                message.registered_delivery,
                udh,
                sar,
                text,
                message_id,
                None if response is None else verdict.status,
                answer_name,
            )
        )
        if response is None:
            self._outstanding += 1  # never answered: it holds its window slot for good
        elif self._config.ack_delay > 0:
            self._outstanding += 1
            self._delayed.append((response, accepted))
        else:
            self._answer(response, accepted)

    def _response(
        self, outcome: Outcome, status: int, seq: int, message_id: str
    ) -> tuple[bytes | None, str]:
        stats = self._ctx.stats
        if outcome is Outcome.SILENT:
            stats.unanswered += 1
            return None, "none"
        if outcome is Outcome.NACK:
            stats.generic_nacks += 1
            return encode_pdu(GENERIC_NACK, status, seq), "generic_nack"
        stats.count_response(status)
        body = encode_c_string(message_id) if outcome is Outcome.ACCEPT else b""
        return encode_pdu(SUBMIT_SM_RESP, status, seq, body), "submit_sm_resp"

    def _answer(self, response: bytes, accepted: Accepted | None) -> None:
        receipt = self._ctx.receipts.make(accepted) if accepted is not None else None
        if receipt is not None and self._config.receipt_before_response:
            self._ctx.router.deliver(receipt, urgent=True)
        elif receipt is not None:
            self._receipts.append(receipt)
        self._send(response)

    def _end_batch(self) -> None:
        if self._delayed:
            delayed, self._delayed = self._delayed, []
            handle: asyncio.TimerHandle

            def release() -> None:
                self._timers.discard(handle)
                self._outstanding -= len(delayed)
                for response, accepted in delayed:
                    self._answer(response, accepted)
                self._end_batch()

            handle = self._loop.call_later(self._config.ack_delay, release)
            self._timers.add(handle)
        if self._receipts:
            receipts, self._receipts = self._receipts, []
            self._ctx.router.deliver_later(receipts, self._config.receipt_delay)
