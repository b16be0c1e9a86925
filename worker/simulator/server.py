"""The Simulator: owns the TCP server, the shared state of its sessions, the log and the stats."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from typing import Any

from worker.simulator.config import SimulatorConfig
from worker.simulator.policies import build_policies
from worker.simulator.receipts import MessageIds, Receipt, ReceiptFactory, ReceiptRouter
from worker.simulator.records import JsonlLog, SubmitRecord
from worker.simulator.session import SessionContext, SmscSession
from worker.simulator.stats import SimStats, write_stats_file
from worker.smpp.pdu import ShortMessage

_CLOSE_GRACE = 1.0  # seconds a closing connection may take to drain its writes


class _CountWaiters:
    """Futures waiting for a counter to reach a target (no polling)."""

    def __init__(self) -> None:
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def wait(self, target: int, current: int) -> None:
        if current >= target:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await future

    def notify(self, current: int) -> None:
        if not self._waiters:
            return
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._waiters:
            if future.done():
                continue
            if current >= target:
                future.set_result(None)
            else:
                still.append((target, future))
        self._waiters = still


async def _close_sessions(sessions: list[SmscSession]) -> None:
    """Close gracefully; abort whatever has not gone within the grace period."""
    for session in sessions:
        session.close()
    if not sessions:
        return
    _, stuck = await asyncio.wait([session.lost for session in sessions], timeout=_CLOSE_GRACE)
    for session in sessions:
        if not session.lost.done():
            session.abort()
    if stuck:
        await asyncio.wait(stuck, timeout=_CLOSE_GRACE)


class Simulator:
    """A real SMPP 3.4 SMSC over TCP with configurable misbehaviour.

    Usage::

        sim = Simulator(SimulatorConfig(accounts={"smsgw": "secret"}))
        await sim.start(host="127.0.0.1", port=0)  # then connect to sim.port
        async with asyncio.timeout(5):
            await sim.wait_for_submits(10)
        await sim.stop()
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._stats = SimStats()
        self._router = ReceiptRouter(self._stats)
        self._records: deque[SubmitRecord] = deque(maxlen=config.max_records)
        self._submit_waiters = _CountWaiters()
        self._bind_waiters: list[asyncio.Future[None]] = []
        self.max_bound: dict[str, int] = {}  # most connections bound at once, per system_id
        self._ack_waiters = _CountWaiters()
        self._server: asyncio.Server | None = None
        self._log: JsonlLog | None = None
        self._context: SessionContext | None = None
        self.host = ""
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (port 0 picks a free one; read it back from `self.port`)."""
        rng = random.Random(self.config.seed)
        if self.config.log_path is not None:
            self._log = JsonlLog(self.config.log_path)
        context = SessionContext(
            config=self.config,
            stats=self._stats,
            router=self._router,
            policies=build_policies(self.config, rng),
            ids=MessageIds(self.config.id_start),
            receipts=ReceiptFactory(self.config, rng),
            on_submit=self._on_submit,
            on_receipt_acked=self._on_receipt_acked,
            on_bind_change=self._on_bind_change,
        )
        self._context = context
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: SmscSession(context), host, port)
        except OSError:
            if self._log is not None:
                self._log.close()
                self._log = None
            raise
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        """Close every connection and the listener; flush the log; write the stats file."""
        if self._server is not None:
            self._server.close()
        if self._context is not None:
            await _close_sessions(list(self._context.sessions))
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._router.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.config.stats_path is not None:
            self.write_stats()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def submits(self) -> list[SubmitRecord]:
        """Records of the submit_sm received so far (the newest `max_records`)."""
        return list(self._records)

    async def wait_bound(self, system_id: str, count: int) -> None:
        """Return once exactly ``count`` connections are bound as ``system_id``."""
        while self.bound(system_id) != count:
            fut = asyncio.get_running_loop().create_future()
            self._bind_waiters.append(fut)
            await fut

    def _on_bind_change(self) -> None:
        sessions = self._context.sessions if self._context is not None else set()
        for system_id in {s.bound_system_id for s in sessions if s.bound_system_id}:
            self.max_bound[system_id] = max(self.max_bound.get(system_id, 0),
                                            self.bound(system_id))
        waiters, self._bind_waiters = self._bind_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def send_mo(self, system_id: str, message: ShortMessage) -> None:
        """Send a mobile-originated deliver_sm to a receiver of ``system_id`` (as receipts go:
        held until one binds, re-sent if unacknowledged; counted with the receipts)."""
        self._router.deliver(Receipt(system_id, message.encode()), urgent=True)

    def bound(self, system_id: str) -> int:
        """Connections bound right now as ``system_id``."""
        sessions = self._context.sessions if self._context is not None else set()
        return sum(1 for s in sessions if s.bound_system_id == system_id)

    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters."""
        return self._stats.as_dict(receipts_pending=self._router.pending())

    def write_stats(self, path: str | None = None) -> None:
        """Write the counters as JSON to `path` (default: the configured stats_path)."""
        target = path or self.config.stats_path
        if target is None:
            raise ValueError("no stats path given or configured")
        write_stats_file(target, self.stats())

    async def wait_for_submits(self, count: int) -> None:
        """Return once `count` submit_sm in total have been received (wrap in asyncio.timeout)."""
        await self._submit_waiters.wait(count, self._stats.submits)

    async def wait_for_receipts_acked(self, count: int) -> None:
        """Return once `count` receipts in total have been acknowledged by deliver_sm_resp."""
        await self._ack_waiters.wait(count, self._stats.receipts_acked)

    def _on_submit(self, record: SubmitRecord) -> None:
        self._records.append(record)
        if self._log is not None:
            self._log.write(record)
        self._submit_waiters.notify(self._stats.submits)

    def _on_receipt_acked(self) -> None:
        self._ack_waiters.notify(self._stats.receipts_acked)
