"""Persistent binds of one channel: N supervised sessions with reconnect backoff and jitter.

An SMSC caps the binds per system_id, so each bind first takes one of the channel's bind slots
(a lease shared by all workers). A worker that finds every slot taken waits, and takes over a
slot when its holder dies and the lease expires.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from worker.cancel import cancel_and_wait
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
from worker.supervise import Restart, backoff, supervise

log = logging.getLogger("smsgw.smpp")


class SlotLeases(Protocol):
    """Bind slots shared by every worker (see ``worker.bindcap``)."""

    ttl_seconds: float

    async def acquire(self, channel: str, kind: str, slots: int) -> int | None: ...
    async def renew(self, channel: str, kind: str, slot: int) -> bool: ...
    async def release(self, channel: str, kind: str, slot: int) -> None: ...


# A bind lost sooner than this after it came up counts as a failed attempt: an SMSC that
# accepts binds and drops them at once (or unbinds them) must see backoff, not a bind storm.
STABLE_BIND_SECONDS = 10.0


class Reconnect:
    """When one bind slot may try to bind again; pure (times in, waits out), so it is tested
    without a clock. Two rules: failures (refused, timed out, or a bind lost before it was
    stable) grow the wait up to ``high`` with full jitter; and never two attempts within
    ``low`` seconds of each other, however the last one ended."""

    def __init__(self, low: float, high: float, rng: random.Random,
                 stable_seconds: float = STABLE_BIND_SECONDS) -> None:
        self.low, self.high, self.stable_seconds = low, high, stable_seconds
        self.failures = 0
        self._rng = rng
        self._started = -math.inf
        self._bound_at: float | None = None
        self._next = -math.inf

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until the next attempt may start."""
        return max(0.0, self._next - now)

    def attempt(self, now: float) -> None:
        """A bind attempt starts."""
        self._started, self._bound_at = now, None

    def bound(self, now: float) -> None:
        """The attempt's bind is up."""
        self._bound_at = now

    def ended(self, now: float, at_least: float = 0.0) -> float:
        """The attempt failed, or its bind ended; returns the wait before the next attempt
        (``at_least`` seconds from now, as after a refused bind)."""
        if self._bound_at is not None and now - self._bound_at >= self.stable_seconds:
            self.failures, wait = 0, 0.0  # a good bind ended: rebind now
        else:
            wait = backoff(self.failures, self.low, self.high, self._rng)
            self.failures += 1
        self._next = max(now + max(wait, at_least), self._started + self.low)
        return self.wait(now)


@dataclass(frozen=True, slots=True)
class BindView:
    """One supervised bind as seen from outside: its index, kind (tx/rx) and open session."""

    index: int
    kind: str
    session: Session | None


class ChannelPool:
    """Holds the channel's binds for the worker's life; submits over any bound transmitter."""

    def __init__(
        self, channel: Channel, on_deliver: DeliverHandler, worker: str, leases: SlotLeases
    ) -> None:
        self.channel = channel
        self._on_deliver = on_deliver
        self._worker = worker
        self._leases = leases
        self._tx: list[Session] = []
        self._sessions: set[Session] = set()
        self._tx_slots: set[int] = set()
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._rr = itertools.count()
        self._rng = random.Random()
        self.reconnects = 0

    def start(self) -> None:
        """Start one supervisor per bind."""
        # Supervised: an error the bind loop does not expect (an error reply from Redis while
        # taking a slot, a bug) restarts this bind instead of leaving the channel without it.
        restart = Restart(low=self.channel.reconnect_min_seconds,
                          high=self.channel.reconnect_max_seconds)
        for i, (command, kind) in enumerate(self._plan()):
            self._tasks.append(asyncio.create_task(supervise(
                f"bind {self._bind_name(i)}",
                functools.partial(self._supervise, i, command, kind), restart)))

    def _plan(self) -> list[tuple[int, str]]:
        ch = self.channel
        if ch.bind_mode == "transceiver":
            return [(pdu.BIND_TRANSCEIVER, "tx")] * ch.binds
        return [(pdu.BIND_TRANSMITTER, "tx")] * ch.binds + [(pdu.BIND_RECEIVER, "rx")] * ch.binds

    def _bind_name(self, index: int) -> str:
        return f"{self.channel.name}#{index}@{self._worker}"

    def binds(self) -> list[BindView]:
        """Every bind this pool supervises, with its session while one is open (for metrics)."""
        live = {s.name: s for s in self._sessions}
        return [BindView(i, kind, live.get(self._bind_name(i)))
                for i, (_, kind) in enumerate(self._plan())]

    def _first_wait(self, index: int) -> float:
        # A worker's first bind of each kind goes at once, its others a little later, so that
        # workers starting together spread the channel's binds instead of one taking them all.
        return (index % self.channel.binds) * self._leases.ttl_seconds / 2

    @property
    def bound(self) -> int:
        """Transmitting binds currently up."""
        return sum(1 for s in self._tx if s.bound)

    @property
    def any_bound(self) -> bool:
        """``bound > 0``, asked per submit_sm: no generator."""
        for s in self._tx:
            if s.bound:
                return True
        return False

    @property
    def serving(self) -> bool:
        """Whether this worker holds a transmitting bind slot of the channel."""
        return bool(self._tx_slots)

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
        return await self.submit_body(sm.encode(), wait_bind)

    async def submit_body(self, body: bytes, wait_bind: float) -> SubmitResult:
        """:meth:`submit` of a submit_sm body already encoded (see ``pdu.SubmitTemplate``)."""
        # The pick is inline, not a coroutine of its own: it runs per submit_sm.
        if not self._ready.is_set() and not await self.wait_ready(wait_bind):
            raise SessionClosed(f"{self.channel.name}: no bind up", written=False)
        live = [s for s in self._tx if s.bound]
        if not live:
            raise SessionClosed(f"{self.channel.name}: no bind up", written=False)
        return await least_loaded(live, next(self._rr)).submit_body(body)

    async def stop(self, drain_seconds: float) -> None:
        """Drain in-flight responses (bounded), unbind every session, stop supervisors."""
        self._stopping.set()
        await asyncio.gather(*(s.close(drain_seconds) for s in list(self._sessions)))
        # Supervisors see the stop and unbind what they hold (a bind in progress included).
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=drain_seconds)
            await cancel_and_wait(self._tasks)  # those still running

    def _params(self, command: int) -> SessionParams:
        ch = self.channel
        return SessionParams(
            host=ch.host, port=ch.port, system_id=ch.system_id, password=ch.password,
            system_type=ch.system_type, bind_command=command, window=ch.window,
            enquire_link_seconds=ch.enquire_link_seconds,
            response_timeout_seconds=ch.response_timeout_seconds,
            tls=ch.tls_context, tls_server_name=ch.tls_server_name,
        )

    async def _supervise(self, index: int, command: int, kind: str) -> None:
        name = self._bind_name(index)
        # Per bind slot for the pool's life, so that a lost lease does not reset it either.
        policy = Reconnect(self.channel.reconnect_min_seconds,
                           self.channel.reconnect_max_seconds, self._rng)
        await self._pause(self._first_wait(index))
        while not self._stopping.is_set():
            slot = await self._leases.acquire(self.channel.name, kind, self.channel.binds)
            if slot is None:
                # Every slot is held elsewhere: wait for one to free up (a holder dying).
                await self._pause(self._leases.ttl_seconds / 2 * self._rng.uniform(0.5, 1.0))
                continue
            log.info("%s: holds %s bind slot %d", name, kind, slot)
            if kind == "tx":
                self._tx_slots.add(slot)
            renewer = asyncio.create_task(self._renew(kind, slot))
            try:
                await self._bind_loop(name, command, kind, renewer, policy)
            finally:
                renewer.cancel()
                self._tx_slots.discard(slot)
                await asyncio.gather(renewer, return_exceptions=True)
                await self._leases.release(self.channel.name, kind, slot)

    async def _renew(self, kind: str, slot: int) -> None:
        """Keep the lease; return (ending the bind) if it was lost."""
        while not self._stopping.is_set():
            if not await self._leases.renew(self.channel.name, kind, slot):
                log.warning("%s: lost %s bind slot %d", self.channel.name, kind, slot)
                return
            await self._pause(self._leases.ttl_seconds / 3)

    async def _bind_loop(
        self, name: str, command: int, kind: str, renewer: asyncio.Task[None], policy: Reconnect
    ) -> None:
        """Bind, hold, rebind as ``policy`` allows — while the slot is ours."""
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set() and not renewer.done():
            await self._pause(policy.wait(loop.time()))
            if self._stopping.is_set() or renewer.done():
                return
            policy.attempt(loop.time())
            try:
                session = await Session.open(self._params(command), self._on_deliver, name)
            except BindRefused as exc:
                delay = policy.ended(loop.time(), self.channel.bind_refused_retry_seconds)
                log.error("%s: %s; check system_id/password; retrying in %.0fs",
                          name, exc, delay)
                continue
            except (OSError, SessionClosed, TimeoutError) as exc:
                delay = policy.ended(loop.time())
                log.warning("%s: connect failed (%s); retry in %.1fs", name, exc, delay)
                continue
            policy.bound(loop.time())
            await self._hold(name, session, kind, renewer)
            delay = policy.ended(loop.time())
            if not self._stopping.is_set():
                self.reconnects += 1
                log.warning("%s: bind lost; rebinding in %.1fs", name, delay)

    async def _hold(
        self, name: str, session: Session, kind: str, renewer: asyncio.Task[None]
    ) -> None:
        log.info("%s: bound", name)
        self._sessions.add(session)
        if kind == "tx":
            self._tx.append(session)
            self._ready.set()
        closed = asyncio.ensure_future(session.wait_closed())
        try:
            await asyncio.wait([closed, renewer], return_when=asyncio.FIRST_COMPLETED)
            if not closed.done():  # stopping, or the lease was lost: unbind this slot
                await session.close()
        finally:
            session.abort()  # no-op after a clean close; never leaks a socket on cancel
            closed.cancel()
        self._sessions.discard(session)
        if session in self._tx:
            self._tx.remove(session)
        if not any(s.bound for s in self._tx):
            self._ready.clear()

    async def _pause(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            pass


class Loaded(Protocol):
    """Anything with a count of requests in flight (a Session)."""

    @property
    def in_flight(self) -> int: ...


L = TypeVar("L", bound=Loaded)


def least_loaded(live: Sequence[L], turn: int) -> L:
    """The item with the fewest requests in flight; a tie goes to the first found going round
    from ``turn``, so equal binds take turns. Runs per submit: no copies, no key function."""
    count = len(live)
    start = turn % count
    best = live[start]
    fewest = best.in_flight
    for i in range(start + 1, start + count):
        if not fewest:
            break  # none can have fewer
        item = live[i % count]
        if item.in_flight < fewest:
            best, fewest = item, item.in_flight
    return best
