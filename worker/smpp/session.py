"""One SMPP bind to an SMSC, as an ESME: our own client, not aiosmpplib's ESME.

Guards against aiosmpplib's measured defects by construction:
- a window (semaphore) bounds submit_sm outstanding per bind;
- the correlation entry exists before the PDU is written;
- any command_status (vendor codes, generic_nack) is returned as data, never raised;
- a dropped connection fails every in-flight submit at once with :class:`SessionClosed`;
- a response is matched on sequence number *and* the command it answers (generic_nack answers
  any); one that matches no request is logged (rate-limited) and dropped;
- faults of the bind reset it (unbind, then close): a request unanswered within the response
  timeout (one periodic sweep of deadlines per session, not a timer per request: it is the hot
  path), a response to another command, ESME_RINVBNDSTS / ESME_RBINDFAIL to a submit. An
  unanswered submit keeps its window slot until then, so a bind never has more than its window
  at the SMSC, and answers that arrive before the unbind_resp still reach their submits; what
  is unanswered when the connection closes fails with :class:`SessionClosed`;
- a failing deliver_sm (or data_sm) handler answers that PDU with an error, it never kills
  the reader.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

from worker.smpp import pdu
from worker.smpp.pdu import Pdu, ShortMessage
from worker.supervise import stop_on_crash

log = logging.getLogger("smsgw.smpp")

DeliverHandler = Callable[[ShortMessage], Awaitable[int]]
"""Records a deliver_sm and returns the command_status for its deliver_sm_resp. A handler that
returns an ``asyncio.Future`` (not a coroutine) costs no task per deliver_sm."""


class SessionClosed(Exception):
    """The bind is down, or being reset: the request was not answered.

    ``written`` is False when the SMSC cannot have accepted the request: it never left this
    process (no bind, connection already closed), or the SMSC answered that the bind was in no
    state to take it (ESME_RINVBNDSTS, ESME_RBINDFAIL).
    """

    def __init__(self, message: str, *, written: bool = True) -> None:
        super().__init__(message)
        self.written = written


class BindRefused(Exception):
    """The SMSC answered the bind with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"bind refused: {pdu.status_name(status)}")
        self.status = status


class TlsFailed(OSError):
    """The TLS handshake failed (an untrusted or misnamed certificate, no shared protocol):
    a failed connect, retried with backoff, whose message says why."""


# Answers to a submit_sm that mean "this bind is broken", not "this message is": the bind is
# reset and the message goes out again on a fresh one (the SMSC did not take it).
BIND_STATE_ERRORS = frozenset({pdu.ESME_RINVBNDSTS, pdu.ESME_RBINDFAIL})
UNMATCHED_LOG_SECONDS = 10.0  # at most one line per bind this often about unmatched responses


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The SMSC's answer to one submit_sm: status (maybe a vendor code) and message id."""

    status: int
    message_id: str = ""
    nack: bool = False  # answered by generic_nack rather than submit_sm_resp


@dataclass(frozen=True, slots=True)
class SessionParams:
    """What a session needs to know about its channel."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str
    bind_command: int
    window: int
    enquire_link_seconds: float
    response_timeout_seconds: float
    tls: ssl.SSLContext | None = None  # built once per channel (worker.config), not per connect
    tls_server_name: str = ""  # the name the certificate must carry; "" means host


class Session(asyncio.Protocol):
    """A bound SMPP connection. Create with :meth:`open`."""

    def __init__(self, params: SessionParams, on_deliver: DeliverHandler, name: str) -> None:
        self.params = params
        self.name = name
        self._on_deliver = on_deliver
        self._buffer = pdu.PduBuffer()
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        # seq -> (future, deadline, command_id). Every request has the same timeout, so
        # insertion order is deadline order: the oldest entry is the first to be overdue.
        self._pending: dict[int, tuple[asyncio.Future[Pdu], float, int]] = {}
        self._seq = 0
        self._window = asyncio.Semaphore(params.window)
        self._closed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.bound = False
        self._reset_reason = ""  # set once a fault of the bind is found: no more requests
        self._unmatched = 0  # responses matching no request, not yet logged
        self._unmatched_quiet_until = 0.0
        # Created by open(), in the loop it lives in; asked for once: in Python 3.11 every
        # get_running_loop() call is a getpid() system call.
        self._loop = asyncio.get_running_loop()

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def open(
        cls, params: SessionParams, on_deliver: DeliverHandler, name: str
    ) -> Session:
        """Connect and bind; raises OSError (TlsFailed among them), BindRefused or
        SessionClosed."""
        session = cls(params, on_deliver, name)
        await session._connect()
        session._spawn(session._expire_forever())
        bind = pdu.Bind(params.system_id, params.password, params.system_type)
        try:
            resp = await session._request(params.bind_command, bind.encode())
        except BaseException:  # cancelled or timed out mid-bind: do not leak the socket
            session.abort()
            raise
        if resp.status != pdu.ESME_ROK:
            session.abort()
            raise BindRefused(resp.status)
        session.bound = True
        session._spawn(session._keepalive())
        return session

    async def _connect(self) -> None:
        params = self.params
        server_name = (params.tls_server_name or params.host) if params.tls else None
        try:
            async with asyncio.timeout(params.response_timeout_seconds):  # handshake included
                await self._loop.create_connection(lambda: self, params.host, params.port,
                                                   ssl=params.tls, server_hostname=server_name)
        except ssl.SSLError as exc:
            reason = (f"certificate verify failed: {exc.verify_message}"
                      if isinstance(exc, ssl.SSLCertVerificationError) else exc.reason or exc)
            raise TlsFailed(f"TLS handshake with {params.host}:{params.port} "
                            f"({server_name}) failed: {reason}") from exc

    @property
    def in_flight(self) -> int:
        """submit_sm (and other requests) awaiting a response."""
        return len(self._pending)

    async def wait_closed(self) -> None:
        """Return when the connection is gone."""
        await self._closed.wait()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def close(self, drain_seconds: float = 5.0) -> None:
        """Wait (bounded) for in-flight responses, unbind, close."""
        if self._closed.is_set():
            return
        try:
            async with asyncio.timeout(drain_seconds):
                while self._pending:
                    await asyncio.wait([entry[0] for entry in self._pending.values()])
                self.bound = False
                await self._request(pdu.UNBIND)
        except (TimeoutError, SessionClosed):
            pass
        self.abort()

    def abort(self) -> None:
        """Drop the connection now."""
        self.bound = False
        self._flush()  # an unbind_resp (or deliver_sm_resp) queued just before still goes out
        if self._transport is not None:
            self._transport.close()
        self._fail_pending()
        for task in self._tasks:
            task.cancel()

    # --- requests ----------------------------------------------------------------------------

    async def submit(self, sm: ShortMessage) -> SubmitResult:
        """submit_sm within the window; waits for its response or raises SessionClosed."""
        return await self.submit_body(sm.encode())

    async def submit_body(self, body: bytes) -> SubmitResult:
        """:meth:`submit` of a body already encoded (see ``pdu.SubmitTemplate``)."""
        # acquire/release rather than ``async with``: two coroutines fewer per submit_sm.
        await self._window.acquire()
        try:
            if not self.bound:
                raise SessionClosed(f"{self.name}: not bound", written=False)
            resp = await self._request(pdu.SUBMIT_SM, body)
        finally:
            self._window.release()
        if resp.status in BIND_STATE_ERRORS:
            reason = f"{pdu.status_name(resp.status)} to a submit_sm"
            self._reset(reason)
            raise SessionClosed(f"{self.name}: {reason}", written=False)
        if resp.command_id == pdu.GENERIC_NACK:
            return SubmitResult(resp.status or pdu.ESME_RSYSERR, nack=True)
        return SubmitResult(resp.status, self._message_id(resp))

    def _message_id(self, resp: Pdu) -> str:
        try:
            return pdu.decode_message_id(resp.body)
        except pdu.PduError as exc:
            # The answer is correlated (sequence and command match) and framed by its length,
            # so the stream is intact: not a fault of the bind. An ESME_ROK still means the
            # SMSC took the message: re-sending it would deliver it twice, failing it would
            # report a message that is on its way as lost. It is accepted without an id (so
            # no receipt can match it); the caller records it as such.
            if resp.status == pdu.ESME_ROK:
                log.warning("%s: submit_sm_resp ESME_ROK with an undecodable message_id (%s): "
                            "accepted, but no receipt can match it; body %r",
                            self.name, exc, resp.body[:80])
            return ""

    async def _request(self, command_id: int, body: bytes = b"") -> Pdu:
        if self._transport is None or self._closed.is_set():
            raise SessionClosed(f"{self.name}: connection closed", written=False)
        self._seq = self._seq % 0x7FFFFFFF + 1
        seq = self._seq
        loop = self._loop
        fut: asyncio.Future[Pdu] = loop.create_future()
        # Correlation first, then the write; the deadline is enforced by _expire_forever.
        self._pending[seq] = (fut, loop.time() + self.params.response_timeout_seconds,
                              command_id)
        self._send(pdu.encode_pdu(command_id, 0, seq, body))
        try:
            return await fut
        finally:
            self._pending.pop(seq, None)

    async def _expire_forever(self) -> None:
        """Reset the bind when a response is overdue; looks a few times per response timeout."""
        timeout = self.params.response_timeout_seconds
        period = max(min(timeout / 10, 1.0), 0.01)  # never a busy loop, whatever the config
        loop = asyncio.get_running_loop()
        while not self._closed.is_set():
            await asyncio.sleep(period)
            self._expire(loop.time())

    def _expire(self, now: float) -> None:
        # Failing only the overdue request would free its window slot while the SMSC may still
        # hold (and accept) it: the window would be overrun and the message sent twice.
        if not self._pending:
            return
        seq, (_, deadline, command_id) = next(iter(self._pending.items()))  # the oldest
        if deadline <= now:
            self._reset(f"no response in time to {pdu.command_name(command_id)} seq {seq}")

    def _reset(self, reason: str) -> None:
        """A fault of the bind: take no more requests, unbind, close. Answers that arrive before
        the unbind_resp still reach their requests; the rest fail with SessionClosed."""
        if self._reset_reason or self._closed.is_set():
            return
        self._reset_reason = reason
        log.warning("%s: %s; resetting the bind", self.name, reason)
        if not self.bound:  # still binding: there is nothing to unbind
            self.abort()
            return
        self.bound = False
        self._spawn(self._unbind_and_abort())

    async def _unbind_and_abort(self) -> None:
        try:
            async with asyncio.timeout(self.params.response_timeout_seconds):
                await self._request(pdu.UNBIND)
        except (TimeoutError, SessionClosed):
            pass
        self.abort()

    async def _keepalive(self) -> None:
        # A peer that does not answer enquire_link within the response timeout is dead.
        while not self._closed.is_set():
            try:
                async with asyncio.timeout(self.params.enquire_link_seconds):
                    await self._closed.wait()
                return
            except TimeoutError:
                pass
            try:
                await self._request(pdu.ENQUIRE_LINK)
            except SessionClosed:
                log.warning("%s: enquire_link unanswered, dropping the bind", self.name)
                self.abort()
                return

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.bound = False
        self._closed.set()
        self._fail_pending()

    def data_received(self, data: bytes) -> None:
        try:
            pdus = self._buffer.feed(data)
        except pdu.PduError as exc:
            log.error("%s: unframeable data from SMSC (%s), dropping the bind", self.name, exc)
            self.abort()
            return
        delivers: list[Pdu] = []
        for p in pdus:
            if p.command_id == pdu.DELIVER_SM or p.command_id == pdu.DATA_SM:
                delivers.append(p)
            else:
                self._dispatch(p)
        if delivers:
            # After the submitters this read has woken: a receipt right behind its
            # submit_sm_resp then reaches Redis after that submit's outcome (not held).
            # One callback for the read's receipts, not one each.
            self._loop.call_soon(self._deliver_all, delivers)

    def _deliver_all(self, delivers: list[Pdu]) -> None:
        for p in delivers:
            try:
                self._deliver(p)
            except Exception as exc:  # error boundary: the others of the read are answered
                self._handler_failed(exc, p.command_id | pdu.RESP_BIT, p.seq)

    def _dispatch(self, p: Pdu) -> None:
        if pdu.is_response(p.command_id):
            entry = self._pending.get(p.seq)
            if entry is None or entry[0].done():
                self._log_unmatched(p)
            elif p.command_id == entry[2] | pdu.RESP_BIT or p.command_id == pdu.GENERIC_NACK:
                entry[0].set_result(p)
            else:  # the SMSC's idea of what it answers is not ours: nothing it says is sure
                self._reset(f"{pdu.command_name(p.command_id)} answered seq {p.seq}, a "
                            f"{pdu.command_name(entry[2])}")
            return
        # deliver_sm and data_sm do not come here: data_received gathers them.
        if p.command_id == pdu.ENQUIRE_LINK:
            self._write(pdu.ENQUIRE_LINK_RESP, pdu.ESME_ROK, p.seq)
        elif p.command_id == pdu.UNBIND:
            self._write(pdu.UNBIND_RESP, pdu.ESME_ROK, p.seq)
            self.abort()
        elif p.command_id == pdu.ALERT_NOTIFICATION:
            # SMPP 3.4 has no alert_notification_resp (a generic_nack would be a protocol
            # error), and we never ask for alerts (no set_dpf): nothing to do.
            log.debug("%s: alert_notification ignored", self.name)
        else:
            self._write(pdu.GENERIC_NACK, pdu.ESME_RINVCMDID, p.seq)

    def _log_unmatched(self, p: Pdu) -> None:
        # An SMSC that answers nothing we asked may do it for every PDU: one line per period.
        self._unmatched += 1
        now = self._loop.time()
        if now < self._unmatched_quiet_until:
            return
        log.warning("%s: %s %s seq %d matches no request (one given up, or "
                    "never made); dropped (%d such since the last line)",
                    self.name, pdu.command_name(p.command_id), pdu.status_name(p.status), p.seq,
                    self._unmatched)
        self._unmatched = 0
        self._unmatched_quiet_until = now + UNMATCHED_LOG_SECONDS

    def _deliver(self, p: Pdu) -> None:
        # The receipt is acknowledged only after the handler has recorded it. data_sm carries
        # a receipt or an MO message like deliver_sm, in its own body layout.
        resp_id = p.command_id | pdu.RESP_BIT
        try:
            if p.command_id == pdu.DATA_SM:
                sm = ShortMessage.decode_data_sm(p.body)
            else:
                sm = ShortMessage.decode(p.body)
        except pdu.PduError as exc:
            log.warning("%s: malformed %s: %s", self.name, pdu.command_name(p.command_id), exc)
            self._write(resp_id, pdu.ESME_RSYSERR, p.seq, b"\x00")
            return
        try:
            answer = self._on_deliver(sm)
        except Exception as exc:  # error boundary: one bad receipt must not kill the reader
            self._handler_failed(exc, resp_id, p.seq)
            return
        if isinstance(answer, asyncio.Future):
            answer.add_done_callback(functools.partial(self._answer, resp_id, p.seq))
        else:
            self._spawn(self._await_answer(answer, resp_id, p.seq))

    async def _await_answer(self, answer: Awaitable[int], resp_id: int, seq: int) -> None:
        try:
            status = await answer
        except Exception as exc:  # error boundary, as in _deliver
            self._handler_failed(exc, resp_id, seq)
            return
        self._write(resp_id, status, seq, b"\x00")

    def _answer(self, resp_id: int, seq: int, answer: asyncio.Future[int]) -> None:
        if answer.cancelled():
            return
        exc = answer.exception()
        if isinstance(exc, Exception):
            self._handler_failed(exc, resp_id, seq)
        elif exc is None:
            self._write(resp_id, answer.result(), seq, b"\x00")

    def _handler_failed(self, exc: Exception, resp_id: int, seq: int) -> None:
        log.error("%s: %s handler failed; SMSC will redeliver", self.name,
                  pdu.command_name(resp_id & ~pdu.RESP_BIT), exc_info=exc)
        self._write(resp_id, pdu.ESME_RSYSERR, seq, b"\x00")

    def _write(self, command_id: int, status: int, seq: int, body: bytes = b"") -> None:
        self._send(pdu.encode_pdu(command_id, status, seq, body))

    def _send(self, data: bytes) -> None:
        # PDUs written in one pass of the event loop go out in one write (one syscall).
        self._out.append(data)
        if len(self._out) == 1:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(out))

    def _fail_pending(self) -> None:
        why = f"bind reset ({self._reset_reason})" if self._reset_reason else "connection lost"
        for fut, _, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(SessionClosed(f"{self.name}: {why}"))
        self._pending.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # A session without its response timer or keepalive cannot go on: drop it (its pool
        # binds again) rather than hold unanswered requests for ever.
        stop_on_crash(task, f"{self.name}: {getattr(coro, '__qualname__', 'task')}",
                      self.abort)
