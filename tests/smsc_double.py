"""A TCP SMSC double for the tests, scripted PDU by PDU.

Unlike the simulator (a well-behaved SMSC with knobs), this double does exactly what a test
tells it: a :class:`Script` subclass decides the answer to each PDU the ESME sends, one small
class per behaviour (Jasmin's test SMSCs have the same shape). Everything it receives is kept,
and a test waits on it with :meth:`ScriptedSmsc.wait_for`, never with a sleep.

    class LateAnswers(Script):
        async def on_submit(self, conn: Conn, p: Pdu) -> None:
            await asyncio.sleep(3)  # the misbehaviour under test, not a synchronisation
            conn.respond(p, body=submit_resp_body(conn.next_id()))

    async with ScriptedSmsc(LateAnswers()) as smsc:
        ...  # point a channel at 127.0.0.1:smsc.port
        await smsc.wait_for(lambda: len(smsc.submits) >= 3)
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from worker.smpp import pdu
from worker.smpp.pdu import Pdu, ShortMessage

WAIT = 10.0  # default bound on any wait of a test on the double


def submit_resp_body(message_id: str) -> bytes:
    """A submit_sm_resp body carrying ``message_id`` (NUL terminated, as SMPP requires)."""
    return pdu.encode_c_string(message_id)


@dataclass(eq=False)
class Conn:
    """One ESME connection to the double."""

    index: int
    transport: asyncio.Transport
    smsc: ScriptedSmsc
    bound: bool = False
    received: list[Pdu] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _waiting: dict[int, asyncio.Future[Pdu]] = field(default_factory=dict)

    def send(self, command_id: int, status: int, seq: int, body: bytes = b"") -> None:
        """Write one raw PDU (a no-op once the connection is closed)."""
        if not self.transport.is_closing():
            self.transport.write(pdu.encode_pdu(command_id, status, seq, body))

    def respond(self, request: Pdu, status: int = pdu.ESME_ROK, body: bytes = b"",
                command_id: int | None = None) -> None:
        """Answer ``request`` (its own *_resp unless ``command_id`` says otherwise)."""
        resp_id = request.command_id | pdu.RESP_BIT if command_id is None else command_id
        self.send(resp_id, status, request.seq, body)

    def next_id(self) -> str:
        """A fresh SMSC message id (decimal, unique across the double's connections)."""
        return str(next(self.smsc.ids))

    async def request(self, command_id: int, body: bytes = b"", within: float = WAIT) -> Pdu:
        """Send a request to the ESME (deliver_sm, data_sm, unbind...) and await its answer."""
        seq = next(self._seq)
        fut: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = fut
        self.send(command_id, 0, seq, body)
        try:
            async with asyncio.timeout(within):
                return await fut
        finally:
            self._waiting.pop(seq, None)

    async def deliver(self, sm: ShortMessage, within: float = WAIT) -> Pdu:
        """deliver_sm to the ESME; its deliver_sm_resp."""
        return await self.request(pdu.DELIVER_SM, sm.encode(), within)

    def close(self) -> None:
        """Drop the TCP connection."""
        self.transport.close()

    def _answered(self, p: Pdu) -> bool:
        fut = self._waiting.get(p.seq)
        if fut is None or fut.done():
            return False
        fut.set_result(p)
        return True


class Script:
    """The double's behaviour: a well-behaved SMSC. Override a hook to misbehave.

    Hooks may be plain or ``async``; an async hook runs in a task of its own, so a slow answer
    to one PDU does not hold up the reading of the next.
    """

    async def on_bind(self, conn: Conn, p: Pdu) -> None:
        conn.bound = True
        conn.respond(p, body=pdu.encode_c_string("double"))

    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        conn.respond(p, body=submit_resp_body(conn.next_id()))

    async def on_enquire_link(self, conn: Conn, p: Pdu) -> None:
        conn.respond(p)

    async def on_unbind(self, conn: Conn, p: Pdu) -> None:
        conn.respond(p)
        conn.close()

    async def on_other(self, conn: Conn, p: Pdu) -> None:
        conn.respond(p, status=pdu.ESME_RINVCMDID, command_id=pdu.GENERIC_NACK)


_BINDS = frozenset({pdu.BIND_TRANSMITTER, pdu.BIND_RECEIVER, pdu.BIND_TRANSCEIVER})


class _Protocol(asyncio.Protocol):
    def __init__(self, smsc: ScriptedSmsc) -> None:
        self._smsc = smsc
        self._buffer = pdu.PduBuffer()
        self._conn: Conn | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._conn = self._smsc._connected(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._smsc._changed()

    def data_received(self, data: bytes) -> None:
        assert self._conn is not None
        try:
            pdus = self._buffer.feed(data)
        except pdu.PduError:
            self._conn.close()
            return
        for p in pdus:
            self._smsc._received(self._conn, p)


class ScriptedSmsc:
    """The double: listens on 127.0.0.1, a free port, answering as its script says; over TLS
    when given a server ``ssl`` context."""

    def __init__(self, script: Script | None = None, *, ssl: ssl.SSLContext | None = None) -> None:
        self.script = script if script is not None else Script()
        self.ssl = ssl  # a server context: the double then speaks SMPP over TLS
        self.connections: list[Conn] = []
        self.received: list[tuple[Conn, Pdu]] = []
        self.ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._change = asyncio.Event()  # replaced at every change: a waiter holds its own
        self.port = 0

    async def __aenter__(self) -> ScriptedSmsc:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Protocol(self), "127.0.0.1", self.port,
                                                ssl=self.ssl)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection (a port kept for :meth:`start` again)."""
        if self._server is not None:
            self._server.close()
            for conn in self.connections:
                conn.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- what a test reads -------------------------------------------------------------------

    def of(self, command_id: int) -> list[Pdu]:
        """Every PDU received with this command_id, in arrival order."""
        return [p for _, p in self.received if p.command_id == command_id]

    @property
    def submits(self) -> list[ShortMessage]:
        """Every submit_sm received, decoded."""
        return [ShortMessage.decode(p.body) for p in self.of(pdu.SUBMIT_SM)]

    @property
    def binds(self) -> int:
        """Bind requests received (any kind)."""
        return sum(1 for _, p in self.received if p.command_id in _BINDS)

    def open_connections(self) -> list[Conn]:
        """Connections still open, oldest first."""
        return [c for c in self.connections if not c.transport.is_closing()]

    async def wait_for(self, predicate: Callable[[], bool], within: float = WAIT) -> None:
        """Wait until ``predicate()`` holds; it is checked at every PDU and connection change."""
        async with asyncio.timeout(within):
            while not predicate():
                await self._change.wait()

    async def bound_connection(self, within: float = WAIT) -> Conn:
        """The newest bound open connection, waiting for one."""
        def live() -> list[Conn]:
            return [c for c in self.open_connections() if c.bound]
        await self.wait_for(lambda: bool(live()), within)
        return live()[-1]

    # --- the protocol's callbacks ------------------------------------------------------------

    def _connected(self, transport: asyncio.Transport) -> Conn:
        conn = Conn(len(self.connections), transport, self)
        self.connections.append(conn)
        self._changed()
        return conn

    def _received(self, conn: Conn, p: Pdu) -> None:
        conn.received.append(p)
        self.received.append((conn, p))
        if not pdu.is_response(p.command_id):
            self._run(self._hook(p.command_id)(conn, p))
        else:
            conn._answered(p)  # an answer nobody awaits any more is only kept
        self._changed()

    def _hook(self, command_id: int) -> Callable[[Conn, Pdu], object]:
        script = self.script
        if command_id in _BINDS:
            return script.on_bind
        return {
            pdu.SUBMIT_SM: script.on_submit,
            pdu.ENQUIRE_LINK: script.on_enquire_link,
            pdu.UNBIND: script.on_unbind,
        }.get(command_id, script.on_other)

    def _run(self, result: object) -> None:
        if asyncio.iscoroutine(result):
            task = asyncio.get_running_loop().create_task(result)
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._changed()

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()
