"""Persistent binds of one channel: N supervised sessions with reconnect backoff and jitter."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random

from worker.config import Channel
from worker.smpp import pdu
from worker.smpp.session import (
    BindRefused,
    DeliverHandler,
    Session,
    SessionClosed,
    SessionParams,
    SubmitResult,
)

log = logging.getLogger("smsgw.smpp")


def backoff(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter, so binds of many workers never reconnect in step."""
    return rng.uniform(low, min(high, low * 2 ** min(attempt, 16)))


class ChannelPool:
    """Holds the channel's binds for the worker's life; submits over any bound transmitter."""

    def __init__(self, channel: Channel, on_deliver: DeliverHandler, worker: str) -> None:
        self.channel = channel
        self._on_deliver = on_deliver
        self._worker = worker
        self._tx: list[Session] = []
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._rr = itertools.count()
        self._rng = random.Random()
        self.reconnects = 0

    def start(self) -> None:
        """Start one supervisor per bind."""
        ch = self.channel
        if ch.bind_mode == "transceiver":
            plan = [(pdu.BIND_TRANSCEIVER, True)] * ch.binds
        else:
            plan = [(pdu.BIND_TRANSMITTER, True)] * ch.binds
            plan += [(pdu.BIND_RECEIVER, False)] * ch.binds
        for i, (command, sends) in enumerate(plan):
            self._tasks.append(asyncio.create_task(self._supervise(i, command, sends)))

    @property
    def bound(self) -> int:
        """Transmitting binds currently up."""
        return sum(1 for s in self._tx if s.bound)

    async def wait_ready(self, seconds: float) -> bool:
        """Wait until at least one transmitting bind is up."""
        try:
            async with asyncio.timeout(seconds):
                await self._ready.wait()
            return True
        except TimeoutError:
            return False

    async def submit(self, sm: pdu.ShortMessage, wait_bind: float) -> SubmitResult:
        """Submit over a bound session (least loaded), waiting up to ``wait_bind`` for one."""
        session = await self._pick(wait_bind)
        return await session.submit(sm)

    async def _pick(self, wait_bind: float) -> Session:
        if not self._ready.is_set() and not await self.wait_ready(wait_bind):
            raise SessionClosed(f"{self.channel.name}: no bind up")
        live = [s for s in self._tx if s.bound]
        if not live:
            raise SessionClosed(f"{self.channel.name}: no bind up")
        start = next(self._rr)
        ordered = live[start % len(live):] + live[: start % len(live)]
        return min(ordered, key=lambda s: s.in_flight)

    async def stop(self, drain_seconds: float) -> None:
        """Drain in-flight responses (bounded), unbind every session, stop supervisors."""
        self._stopping.set()
        sessions = list(self._tx)
        await asyncio.gather(*(s.close(drain_seconds) for s in sessions))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _params(self, command: int) -> SessionParams:
        ch = self.channel
        return SessionParams(
            host=ch.host, port=ch.port, system_id=ch.system_id, password=ch.password,
            system_type=ch.system_type, bind_command=command, window=ch.window,
            enquire_link_seconds=ch.enquire_link_seconds,
            response_timeout_seconds=ch.response_timeout_seconds,
        )

    async def _supervise(self, index: int, command: int, sends: bool) -> None:
        name = f"{self.channel.name}#{index}@{self._worker}"
        attempt = 0
        while not self._stopping.is_set():
            try:
                session = await Session.open(self._params(command), self._on_deliver, name)
            except BindRefused as exc:
                log.error("%s: %s; check system_id/password; retrying in %.0fs",
                          name, exc, self.channel.bind_refused_retry_seconds)
                await self._pause(self.channel.bind_refused_retry_seconds)
                continue
            except (OSError, SessionClosed, TimeoutError) as exc:
                delay = backoff(attempt, self.channel.reconnect_min_seconds,
                                self.channel.reconnect_max_seconds, self._rng)
                attempt += 1
                log.warning("%s: connect failed (%s); retry in %.1fs", name, exc, delay)
                await self._pause(delay)
                continue
            attempt = 0
            log.info("%s: bound", name)
            if sends:
                self._tx.append(session)
                self._ready.set()
            await session.wait_closed()
            if session in self._tx:
                self._tx.remove(session)
            if not any(s.bound for s in self._tx):
                self._ready.clear()
            if not self._stopping.is_set():
                self.reconnects += 1
                log.warning("%s: bind lost, reconnecting", name)

    async def _pause(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            pass
