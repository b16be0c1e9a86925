"""One SMPP bind to an SMSC, as an ESME: our own client, not aiosmpplib's ESME.

Guards against aiosmpplib's measured defects by construction:
- a window (semaphore) bounds submit_sm outstanding per bind;
- the correlation entry exists before the PDU is written;
- any command_status (vendor codes, generic_nack) is returned as data, never raised;
- a dropped connection fails every in-flight submit at once with :class:`SessionClosed`;
- a request unanswered within the response timeout fails with :class:`SessionClosed` (one
  periodic sweep of deadlines per session, not a timer per request: it is the hot path);
- a failing deliver_sm handler answers that PDU with an error, it never kills the reader.
"""

from __future__ import annotations

import asyncio
import functools
import logging
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
    """The bind is down: nothing was, or may have been, answered.

    ``written`` is False when the request never left this process (no bind, connection already
    closed): the SMSC cannot have seen it, so it cannot have been accepted.
    """

    def __init__(self, message: str, *, written: bool = True) -> None:
        super().__init__(message)
        self.written = written


class BindRefused(Exception):
    """The SMSC answered the bind with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"bind refused: {pdu.status_name(status)}")
        self.status = status


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


class Session(asyncio.Protocol):
    """A bound SMPP connection. Create with :meth:`open`."""

    def __init__(self, params: SessionParams, on_deliver: DeliverHandler, name: str) -> None:
        self.params = params
        self.name = name
        self._on_deliver = on_deliver
        self._buffer = pdu.PduBuffer()
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        # seq -> (future, deadline). Every request has the same timeout, so insertion order is
        # deadline order and a sweep stops at the first entry still in time.
        self._pending: dict[int, tuple[asyncio.Future[Pdu], float]] = {}
        self._seq = 0
        self._window = asyncio.Semaphore(params.window)
        self._closed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.bound = False
        # Created by open(), in the loop it lives in; asked for once: in Python 3.11 every
        # get_running_loop() call is a getpid() system call.
        self._loop = asyncio.get_running_loop()

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def open(
        cls, params: SessionParams, on_deliver: DeliverHandler, name: str
    ) -> Session:
        """Connect and bind; raises OSError, BindRefused or SessionClosed."""
        loop = asyncio.get_running_loop()
        session = cls(params, on_deliver, name)
        async with asyncio.timeout(params.response_timeout_seconds):
            await loop.create_connection(lambda: session, params.host, params.port)
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
                    await asyncio.wait([fut for fut, _ in self._pending.values()])
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
        async with self._window:
            if not self.bound:
                raise SessionClosed(f"{self.name}: not bound", written=False)
            resp = await self._request(pdu.SUBMIT_SM, sm.encode())
        if resp.command_id == pdu.GENERIC_NACK:
            return SubmitResult(resp.status or pdu.ESME_RSYSERR, nack=True)
        return SubmitResult(resp.status, pdu.decode_message_id(resp.body))

    async def _request(self, command_id: int, body: bytes = b"") -> Pdu:
        if self._transport is None or self._closed.is_set():
            raise SessionClosed(f"{self.name}: connection closed", written=False)
        self._seq = self._seq % 0x7FFFFFFF + 1
        seq = self._seq
        loop = self._loop
        fut: asyncio.Future[Pdu] = loop.create_future()
        # Correlation first, then the write; the deadline is enforced by _expire_forever.
        self._pending[seq] = (fut, loop.time() + self.params.response_timeout_seconds)
        self._send(pdu.encode_pdu(command_id, 0, seq, body))
        try:
            return await fut
        finally:
            self._pending.pop(seq, None)

    async def _expire_forever(self) -> None:
        """Fail requests whose response is overdue, a few times per response timeout."""
        timeout = self.params.response_timeout_seconds
        period = max(min(timeout / 10, 1.0), 0.01)  # never a busy loop, whatever the config
        loop = asyncio.get_running_loop()
        while not self._closed.is_set():
            await asyncio.sleep(period)
            self._expire(loop.time())

    def _expire(self, now: float) -> None:
        overdue: list[int] = []
        for seq, (_, deadline) in self._pending.items():
            if deadline > now:
                break  # insertion order is deadline order
            overdue.append(seq)
        for seq in overdue:
            fut, _ = self._pending.pop(seq)
            if not fut.done():
                fut.set_exception(SessionClosed(f"{self.name}: no response in time"))

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
        for p in pdus:
            self._dispatch(p)

    def _dispatch(self, p: Pdu) -> None:
        if pdu.is_response(p.command_id):
            entry = self._pending.get(p.seq)
            if entry is not None and not entry[0].done():
                entry[0].set_result(p)
            elif p.command_id == pdu.GENERIC_NACK:
                log.warning("%s: generic_nack %s for unknown seq %d",
                            self.name, pdu.status_name(p.status), p.seq)
            return
        if p.command_id == pdu.DELIVER_SM:
            # After the submitters this read has woken: a receipt right behind its
            # submit_sm_resp then reaches Redis after that submit's outcome (not held).
            self._loop.call_soon(self._deliver, p)
        elif p.command_id == pdu.ENQUIRE_LINK:
            self._write(pdu.ENQUIRE_LINK_RESP, pdu.ESME_ROK, p.seq)
        elif p.command_id == pdu.UNBIND:
            self._write(pdu.UNBIND_RESP, pdu.ESME_ROK, p.seq)
            self.abort()
        else:
            self._write(pdu.GENERIC_NACK, pdu.ESME_RINVCMDID, p.seq)

    def _deliver(self, p: Pdu) -> None:
        # The receipt is acknowledged only after the handler has recorded it.
        try:
            sm = ShortMessage.decode(p.body)
        except pdu.PduError as exc:
            log.warning("%s: malformed deliver_sm: %s", self.name, exc)
            self._write(pdu.DELIVER_SM_RESP, pdu.ESME_RSYSERR, p.seq, b"\x00")
            return
        try:
            answer = self._on_deliver(sm)
        except Exception as exc:  # error boundary: one bad receipt must not kill the reader
            self._handler_failed(exc, p.seq)
            return
        if isinstance(answer, asyncio.Future):
            answer.add_done_callback(functools.partial(self._answer, p.seq))
        else:
            self._spawn(self._await_answer(answer, p.seq))

    async def _await_answer(self, answer: Awaitable[int], seq: int) -> None:
        try:
            status = await answer
        except Exception as exc:  # error boundary, as in _deliver
            self._handler_failed(exc, seq)
            return
        self._write(pdu.DELIVER_SM_RESP, status, seq, b"\x00")

    def _answer(self, seq: int, answer: asyncio.Future[int]) -> None:
        if answer.cancelled():
            return
        exc = answer.exception()
        if isinstance(exc, Exception):
            self._handler_failed(exc, seq)
        elif exc is None:
            self._write(pdu.DELIVER_SM_RESP, answer.result(), seq, b"\x00")

    def _handler_failed(self, exc: Exception, seq: int) -> None:
        log.error("%s: deliver_sm handler failed; SMSC will redeliver", self.name, exc_info=exc)
        self._write(pdu.DELIVER_SM_RESP, pdu.ESME_RSYSERR, seq, b"\x00")

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
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(SessionClosed(f"{self.name}: connection lost"))
        self._pending.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # A session without its response timer or keepalive cannot go on: drop it (its pool
        # binds again) rather than hold unanswered requests for ever.
        stop_on_crash(task, f"{self.name}: {getattr(coro, '__qualname__', 'task')}",
                      self.abort)
