"""Receipts (and MO messages) to the SMPP clients bound to this process.

Every account's receipts wait in its stream in Redis (worker/store/smpp_server.py) until a
client answers their deliver_sm. Each smpp-server process is one consumer of the streams of
the accounts it holds a receiver bind for, so a receipt goes to whichever process holds one;
a deliver_sm not answered in ``receipt_retry_seconds`` (or taken by a process that died) is
claimed again and sent again, on any receiver bind of the account; one older than
``receipt_max_age_seconds`` becomes a dead letter. Delivery is at least once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from gateway.smpp_server.receipts import pdu_body
from worker.batcher import Batcher
from worker.config import SmppServerSettings
from worker.smpp.pdu import ESME_ROK
from worker.store import REDIS_ERRORS, now_ms
from worker.store.smpp_server import SmppServerStore, StreamEntry

log = logging.getLogger("smsgw.smpp_server.receipts")

READ_BLOCK_MS = 500  # a new bind's account joins the read within this


class Receiver(Protocol):
    """A bind that takes deliver_sm (a session, to the router)."""

    @property
    def account(self) -> str: ...

    @property
    def free(self) -> int: ...

    async def deliver(self, body: bytes) -> int: ...


class ReceiptRouter:
    """Reads the receipt streams of the accounts bound here and hands them to their binds."""

    def __init__(self, store: SmppServerStore, settings: SmppServerSettings,
                 consumer: str) -> None:
        self._store = store
        self._settings = settings
        self._consumer = consumer
        self._receivers: dict[str, list[Receiver]] = {}
        self._backlog: dict[str, deque[StreamEntry]] = {}
        self._held: set[tuple[str, str]] = set()  # (account, entry id) taken, not answered
        self._next: dict[str, int] = {}  # round robin over an account's binds
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: Batcher[StreamEntry, None] = Batcher(self._flush_done, max_size=500)

    async def attach(self, receiver: Receiver) -> None:
        """A new receiver bind: its account's receipts may now come here."""
        await self._store.ensure_group(receiver.account)
        self._receivers.setdefault(receiver.account, []).append(receiver)
        self._backlog.setdefault(receiver.account, deque())
        self._wake.set()

    def detach(self, receiver: Receiver) -> None:
        """A receiver bind ended (its unanswered deliver_sm come back by themselves)."""
        binds = self._receivers.get(receiver.account, [])
        if receiver in binds:
            binds.remove(receiver)
        if not binds:
            self._receivers.pop(receiver.account, None)
        self._wake.set()

    async def run(self) -> None:
        """Read new entries for the accounts with free binds here, and send them; forever."""
        while True:
            self._dispatch()
            wanted = {a: sum(r.free for r in binds) for a, binds in self._receivers.items()
                      if not self._backlog.get(a)}
            wanted = {a: n for a, n in wanted.items() if n > 0}
            if not wanted:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                entries = await self._store.read_receipts(wanted, self._consumer,
                                                          READ_BLOCK_MS)
            except REDIS_ERRORS as exc:
                log.warning("reading receipts failed (%s); trying again", exc)
                await asyncio.sleep(1)
                continue
            self._take(entries)

    async def retry(self) -> None:
        """Claim entries unanswered for ``receipt_retry_seconds`` (here or on a process that
        died) for the accounts bound here; forever."""
        idle_ms = int(self._settings.receipt_retry_seconds * 1000)
        while True:
            await asyncio.sleep(self._settings.receipt_retry_seconds / 2)
            for account in list(self._receivers):
                try:
                    stale = await self._store.stale_receipts(account, self._consumer, idle_ms,
                                                             count=1000)
                except REDIS_ERRORS as exc:
                    log.warning("claiming receipts failed (%s); trying again", exc)
                    break
                self._take(stale)
            self._dispatch()

    async def close(self) -> None:
        """Stop every delivery in flight (their entries stay pending in Redis)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    def _take(self, entries: Sequence[StreamEntry]) -> None:
        for e in entries:
            if (e.account, e.entry_id) in self._held:
                continue
            self._held.add((e.account, e.entry_id))
            self._backlog.setdefault(e.account, deque()).append(e)
        self._dispatch()

    def _dispatch(self) -> None:
        oldest = now_ms() - self._settings.receipt_max_age_seconds * 1000
        dead: list[StreamEntry] = []
        for account, backlog in self._backlog.items():
            while backlog:
                if backlog[0].queued_ms < oldest:
                    dead.append(backlog.popleft())
                    continue
                receiver = self._pick(account)
                if receiver is None:
                    break
                self._start(receiver, backlog.popleft())
        if dead:
            self._start_dead(dead)

    def _pick(self, account: str) -> Receiver | None:
        binds = self._receivers.get(account, [])
        n = len(binds)
        start = self._next.get(account, 0)
        for i in range(n):
            r = binds[(start + i) % n]
            if r.free > 0:
                self._next[account] = (start + i + 1) % n
                return r
        return None

    def _start(self, receiver: Receiver, entry: StreamEntry) -> None:
        task = asyncio.create_task(self._deliver(receiver, entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, receiver: Receiver, entry: StreamEntry) -> None:
        key = (entry.account, entry.entry_id)
        try:
            status = await receiver.deliver(pdu_body(entry.fields))
        except ConnectionError:
            # The bind went before an answer: another bind of the account here may take it.
            self._backlog.setdefault(entry.account, deque()).appendleft(entry)
            self._wake.set()
            self._dispatch()
            return
        except TimeoutError:
            status = -1
        if status != ESME_ROK:
            # Left pending in Redis: the retry loop claims it again after its idle time.
            log.info("deliver_sm of %s to %s not acknowledged (%s)", entry.fields.get("id"),
                     entry.account, status)
            self._held.discard(key)
        else:
            try:
                await self._done.put(entry)
            except REDIS_ERRORS as exc:  # pending still: it will be sent again
                log.warning("acknowledging a receipt failed (%s)", exc)
            self._held.discard(key)
        self._wake.set()
        self._dispatch()

    def _start_dead(self, entries: list[StreamEntry]) -> None:
        task = asyncio.create_task(self._dead(entries))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dead(self, entries: list[StreamEntry]) -> None:
        log.warning("%d receipts aged out undelivered (dead letters)", len(entries))
        try:
            await self._store.dead_letter(entries)
        except REDIS_ERRORS as exc:
            log.warning("dead-lettering receipts failed (%s)", exc)
        for e in entries:
            self._held.discard((e.account, e.entry_id))

    async def _flush_done(self, entries: Sequence[StreamEntry]) -> list[None]:
        await self._store.receipts_done(entries)
        return [None] * len(entries)
