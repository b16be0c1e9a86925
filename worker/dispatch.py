"""Turns claimed message ids into submit_sm over a channel's binds and records every outcome.

Durability lives in the store, not in arq: a message is claimed with a lease (``sending``), and
the ``pending`` index brings it back if its holder dies; a re-claim is the only path that can
submit twice, and only when the first submit's answer was never recorded.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from worker.batcher import Batcher
from worker.bindcap import BindLeases
from worker.claimguard import ClaimGuard
from worker.config import Channel
from worker.encoding import ESM_UDHI, parse_udh, split
from worker.ids import new_id
from worker.lifecycle import Status
from worker.logs import CONTENT_LOGGER, message_context
from worker.metrics import WorkerMetrics
from worker.patience import PatientAnswers
from worker.ratelimit import SharedRate
from worker.routing import RouteTable, outages
from worker.senders import address
from worker.slots import Slots
from worker.smpp import pdu, times
from worker.smpp.pool import ChannelPool
from worker.smpp.receipts import (
    final_state_of,
    ids_of,
    is_receipt,
    normalise_smsc_id,
    receipt_core,
)
from worker.smpp.session import DeliverHandler, SessionClosed
from worker.snapshot import worker_snapshot
from worker.store import REDIS_ERRORS, Claimed, MoPart, Outcome, ReceiptEvent, Store, now_ms
from worker.supervise import Restart, backoff, supervise

log = logging.getLogger("smsgw.worker")
content_log = logging.getLogger(CONTENT_LOGGER)

# How long a deliver_sm waits for its record to reach Redis before it is refused (the SMSC
# then redelivers): long enough for a Redis restart, short of an SMSC's response timeout.
RECORD_PATIENCE_SECONDS = 8.0
RECEIPT_MARGIN_MS = 3600_000  # receipts can trail the validity period
# SMSC answers that mean "slow down" (throttled, queue full): paced retries in place.
PACE_STATUSES = frozenset({pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL})
PACE_IN_PLACE = 5  # paced resends of a first part before it yields its slot
# A crashed reaper or sweeper starts again within seconds; a crashed heartbeat within about a
# beat, so that one bad write does not cost the worker its claims.
BACKGROUND_RESTART = Restart(low=0.1, high=5.0)
# A receipt's final state by name: a dict lookup, not the enum's call, per receipt.
_STATUSES = {s.value: s for s in Status}



@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """Timing knobs of the dispatcher."""

    lease_ms: int = 5_000  # how long a claim holds without news of its worker
    heartbeat_ms: int = 1_000
    wait_bind_seconds: float = 5.0
    retention_seconds: int = 7 * 86400
    reap_interval_seconds: float = 0.5
    # The expiry sweep of channels with no bind up: a pass per channel this often, of at most
    # this many due entries (a big backlog costs one bounded script run, not one per message).
    expire_interval_seconds: float = 2.0
    expire_batch: int = 200
    # Routed messages leave a channel with no bind up on any worker for this long; whether one
    # has is read from the workers' snapshots this often.
    failover_grace_seconds: float = 30.0
    failover_check_seconds: float = 1.0


class _Slot:
    """A message's hold on one of its channel's unrecorded slots (see Dispatcher._send_one)."""

    __slots__ = ("_held", "_slots")

    def __init__(self, slots: Slots) -> None:
        self._slots = slots
        self._held = False

    async def take(self) -> None:
        if not self._slots.take_now():
            await self._slots.take()
        self._held = True

    def let_go(self) -> None:
        """Release the slot if this message holds it (a cancelled take() holds nothing)."""
        if self._held:
            self._held = False
            self._slots.give()


class Dispatcher:
    """Claims messages, submits their parts, records outcomes and receipts in batches."""

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        worker_id: str,
        settings: DispatchSettings,
        metrics: WorkerMetrics | None = None,
        routes: RouteTable | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics if metrics is not None else WorkerMetrics()
        self.channels = channels
        self.worker_id = worker_id
        self.settings = settings
        self.pools: dict[str, ChannelPool] = {}
        self._outcomes: Batcher[Outcome, int] = Batcher(self._flush_outcomes)
        self._receipts: Batcher[ReceiptEvent, str] = Batcher(self._flush_receipts)
        self._accepting = True
        self._drain_deadline = 0.0
        self._inflight: set[asyncio.Task[Any]] = set()
        self._fewer_inflight = asyncio.Event()  # set whenever a send task ends
        self._sending: set[str] = set()  # ids claimed by this process and not yet recorded
        self._rng = random.Random()
        self._unrecorded = {
            name: Slots(ch.binds * ch.window) for name, ch in channels.items()
        }
        self._rates = {name: SharedRate(store, name, ch.tps) for name, ch in channels.items()}
        # Derived once, not per message: they depend on the channel only.
        self._templates = {name: _submit_template(ch) for name, ch in channels.items()}
        self._receipt_waits = {name: _receipt_wait_ms(ch) for name, ch in channels.items()}
        self._dlr_ttl_seconds = _dlr_ttl(channels.values())
        self._smsc_accounts = {name: ch.smsc_account for name, ch in channels.items()}
        self._answers = PatientAnswers(RECORD_PATIENCE_SECONDS)
        self._sweeper: asyncio.Task[None] | None = None
        # Half the lease to spare: two beats may fail before submits stop (a beat per second
        # and a 5 s lease by default), and the rest covers a submit already past the check.
        self._claims = ClaimGuard(settings.lease_ms / 1000, settings.lease_ms / 2000)
        self._heartbeat_restart = Restart(low=settings.heartbeat_ms / 4000,
                                          high=settings.heartbeat_ms / 1000)
        # Per channel: (monotonic time of its next expiry pass, rank that pass starts from).
        self._expiry: dict[str, tuple[float, int]] = {}
        # Failover: per route, the SMSC answers that move a message on; the channels a route
        # may move messages off; since when each has had no bind up anywhere (monotonic).
        table = routes if routes is not None else RouteTable()
        self._moves_on = {r.name: r.failover_statuses for r in table.routes}
        self._routed = {ch for r in table.routes for ch in r.order()}
        self._down_since: dict[str, float] = {}
        self._next_outage_check = 0.0

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Bind every channel."""
        self._sweeper = asyncio.get_running_loop().create_task(
            supervise("receipt/MO answer sweeper", self._answers.sweep_forever,
                      BACKGROUND_RESTART))
        for name, channel in self.channels.items():
            pool = ChannelPool(channel, self._deliver_handler(name), self.worker_id,
                               BindLeases(self.store, self.worker_id))
            pool.start()
            self.pools[name] = pool

    async def drain(self, seconds: float) -> None:
        """Stop taking work, let submits in flight finish and be recorded, unbind."""
        self._accepting = False
        self._drain_deadline = time.monotonic() + seconds
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=seconds)
        await asyncio.gather(*(p.stop(seconds) for p in self.pools.values()))
        await self._stop_answering()
        try:
            await self.store.forget_worker(self.worker_id)
        except REDIS_ERRORS as exc:
            log.warning("could not clear heartbeat (%s); claims expire by themselves", exc)

    async def _stop_answering(self) -> None:
        """The binds are down: nobody is waiting for an answer to a receipt or MO any more."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self._answers.close()

    def served(self) -> list[str]:
        """Channels this worker has a transmitting bind up on: the only ones it claims for.
        A slot lease alone is not enough (the SMSC may be down, refusing or not answering):
        a claim it cannot submit would only keep its messages from a worker that can."""
        return [name for name, pool in self.pools.items() if pool.bound]

    async def heartbeat_forever(self) -> None:
        """Keep this worker's claims alive; a SIGKILLed worker's expire within the lease.
        Also publishes the worker's view of its binds (status page), which expires alike.
        Supervised: no error ends it; while no beat is written, nothing is claimed or
        submitted (see worker.claimguard)."""
        await supervise("heartbeat", self._heartbeat_loop, self._heartbeat_restart)

    async def beat(self) -> None:
        """Write one heartbeat (and the bind snapshot): until one is written this worker
        claims nothing. Raises what Redis raises."""
        ttl = self.settings.lease_ms
        sent_at = self._claims.now()
        await self.store.heartbeat(self.worker_id, ttl)
        self._claims.written(sent_at)
        await self.store.publish_snapshot(
            self.worker_id, worker_snapshot(self.worker_id, self.pools, now_ms()), ttl)

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.beat()
            except REDIS_ERRORS as exc:
                log.warning("heartbeat: redis unavailable (%s)", exc)
            await asyncio.sleep(self.settings.heartbeat_ms / 1000)

    async def reap_forever(self) -> None:
        """Pick up messages that are due without a wake-up job: retries, claims of workers
        that died, anything a lost job would have woken us for, and a backlog (wake-up jobs,
        one per 20 ms of accepts, do not scale with the messages accepted). Supervised: no
        error ends it before the worker stops accepting work."""
        await supervise("reaper", self._reap_loop, BACKGROUND_RESTART)

    async def _reap_loop(self) -> None:
        while self._accepting:
            backlog = False
            try:
                backlog = await self._reap_once()
            except REDIS_ERRORS as exc:
                log.warning("reaper: redis unavailable (%s)", exc)
            if not backlog:
                await asyncio.sleep(self.settings.reap_interval_seconds)

    async def _reap_once(self) -> bool:
        """Claim and send one batch of what is due; True if it was a full batch that was
        ours to claim (a backlog). The next batch then starts as soon as half of what this
        worker has in flight is done, so the slowest messages of a batch (paced after a
        throttle, say) do not leave the window idle while they finish."""
        await self.expire_unserved()
        await self.fail_over_unserved()
        limit, due = await self._due()
        tasks = await self._start(due) if due else []
        if len(due) >= limit and tasks:
            await self._inflight_at_most(limit // 2)
            return True
        if tasks:
            await asyncio.shield(asyncio.gather(*tasks))
        return False

    async def expire_unserved(self) -> int:
        """Fail, as Expired, queued messages past their channel's max age on the channels this
        worker has no bind up on: no claim here looks at them, and during an outage that never
        ends no claim anywhere does, so this is where their clients learn. One bounded pass
        per channel every ``expire_interval_seconds`` (at once again while the passes find a
        backlog of expired messages). How many it failed."""
        served = set(self.served())
        failed = 0
        for name, channel in self.channels.items():
            when, start = self._expiry.get(name, (0.0, 0))
            if name in served or time.monotonic() < when:
                continue
            limit = self.settings.expire_batch
            swept = await self.store.expire_queued(
                name, max_age_ms=channel.max_age_seconds * 1000, start=start, limit=limit,
                text=f"max age reached while channel {name} had no bind up",
                validity_text=f"validity period ended while channel {name} had no bind up")
            backlog = len(swept.failed) * 2 >= limit
            pause = 0.0 if backlog else self.settings.expire_interval_seconds
            self._expiry[name] = (time.monotonic() + pause, swept.next_start)
            if swept.failed:
                log.info("%s: %d queued message(s) failed at max age (no bind up)",
                         name, len(swept.failed))
                self.metrics.failures.add((name, "Expired", "failed"), len(swept.failed))
                failed += len(swept.failed)
        return failed

    async def fail_over_unserved(self) -> int:
        """Move routed messages off the channels that have had no bind up on any worker for
        ``failover_grace_seconds``, to their routes' next channels (those with none left stay,
        and fail at max age). Checked every ``failover_check_seconds``; how many it moved."""
        if not self._routed or time.monotonic() < self._next_outage_check:
            return 0
        self._next_outage_check = time.monotonic() + self.settings.failover_check_seconds
        served = set(self.served())
        watched = [ch for ch in self.channels if ch in self._routed and ch not in served]
        up = await self.store.bound_channels() if watched else set()
        now = time.monotonic()
        self._down_since = outages(self._down_since, watched, up, now)
        grace = self.settings.failover_grace_seconds
        moved = 0
        for name, since in self._down_since.items():
            if now - since >= grace:
                moved += await self._fail_over_channel(name, f"no bind up on any worker for "
                                                             f"{grace:g} s")
        return moved

    async def _fail_over_channel(self, name: str, text: str) -> int:
        """One sweep of a dead channel's due messages, a batch at a time (those that cannot
        move are stepped over, so they never hide the ones behind them)."""
        batch, start, moved = self.settings.expire_batch, 0, 0
        for _ in range(100):  # bounded: at most 100 batches a check
            ids = await self.store.due_page(name, start, batch)
            got = await self.store.fail_over(ids, channel=name, code="NoBind", text=text)
            moved += len(got.moved)
            start += len(ids) - len(got.moved)
            if len(ids) < batch:
                break
        if moved:
            log.info("%s: %d queued message(s) moved to their next channel (%s)",
                     name, moved, text)
            self.metrics.failovers.add((name, "no_bind"), moved)
        return moved

    async def drain_due(self) -> int:
        """Claim and send a batch of what is due on the channels this worker serves."""
        _, due = await self._due()
        return await self.send(due) if due else 0

    async def _due(self) -> tuple[int, list[str]]:
        """(batch size, due ids of the channels served, at most that many): a batch is four
        windows of every bind; none when no channel is served or the worker is stopping."""
        served = self.served()
        if not served or not self._accepting or not self._claims.holds():
            return 0, []
        limit = max(100, sum(self.channels[c].binds * self.channels[c].window
                             for c in served) * 4)
        return limit, await self.store.due(served, limit)

    # --- sending -----------------------------------------------------------------------------

    async def send(self, ids: Sequence[str]) -> int:
        """Claim ``ids`` and send those that are due; returns how many were claimed."""
        tasks = await self._start(ids)
        # Shielded: a cancelled job must not abandon submits already on the wire.
        if tasks:
            await asyncio.shield(asyncio.gather(*tasks))
        return len(tasks)

    async def _start(self, ids: Sequence[str]) -> list[asyncio.Task[None]]:
        """Claim ``ids`` and start sending those that are due: one tracked task each."""
        if not self._accepting or not self._claims.holds():
            return []
        # Never claim again what this process is sending (the store would let us: a claim of
        # ours whose reply was lost must be recoverable without waiting for us to die).
        ids = [i for i in ids if i not in self._sending]
        claimed = await self.store.claim(ids, worker=self.worker_id,
                                         lease_ms=self.settings.lease_ms, served=self.served())
        self._sending.update(c.api_id for c in claimed)
        loop = asyncio.get_running_loop()
        return [self._track(loop.create_task(self._send_one(c))) for c in claimed]

    def _track(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        self._inflight.add(task)
        task.add_done_callback(self._untrack)
        return task

    def _untrack(self, task: asyncio.Task[Any]) -> None:
        self._inflight.discard(task)
        self._fewer_inflight.set()

    async def _inflight_at_most(self, count: int) -> None:
        while len(self._inflight) > count:
            self._fewer_inflight.clear()
            await self._fewer_inflight.wait()

    async def _send_one(self, msg: Claimed) -> None:
        # The slot is held until the outcome is in Redis, so at most one window per bind is
        # ever answered-but-unrecorded: the bound on duplicates if this process is killed.
        slot = _Slot(self._unrecorded[msg.channel])
        with message_context(msg.api_id, msg.channel):
            try:
                await slot.take()
                content_log.debug("content: %r", msg.content)
                outcome = await self._submit_parts(msg, slot)
                if outcome.fail_over and await self._moved_on(msg, outcome):
                    return
                self.metrics.outcome(outcome)
                _log_outcome(outcome)
                await self._outcomes.submit(outcome)
            finally:
                slot.let_go()
                self._sending.discard(msg.api_id)

    async def _submit_parts(self, msg: Claimed, slot: _Slot) -> Outcome:
        channel = self.channels.get(msg.channel)
        pool = self.pools.get(msg.channel)
        if channel is None or pool is None:
            return self._failed(msg, "NoChannel", f"channel {msg.channel!r} is not configured")
        if why := _expired(msg, channel):
            return self._failed(msg, "Expired", f"{why} before the SMSC accepted it")
        try:
            parts = split(msg.content, channel.split_mode, 0)
        except ValueError as exc:  # accepted under another split mode, or before the limit
            return self._failed(msg, "TooLong", str(exc))
        if len(parts) > 1:  # concatenated (never in payload mode): it needs its reference
            modulo = 0x100 if channel.split_mode == "udh8" else 0x10000
            got = await self.store.allocate_ref(
                msg.api_id, msg.channel, msg.to, modulo=modulo,
                hold_ms=self._dlr_ttl() * 1000, start=self._rng.randrange(modulo))
            if got is None:
                return Outcome(api_id=msg.api_id, channel=msg.channel, status=Status.QUEUED,
                               error_code="Deferred", deferred=True,
                               retry_at=_retry_at(msg, now_ms() + 1000),
                               error_text="every concatenation reference to this number is "
                                          "held by a message still in flight")
            parts = split(msg.content, channel.split_mode, got)
        template = self._templates[msg.channel]
        head = _source_head(template, msg.sender, channel) if msg.sender else b""
        validity = _validity(msg, channel)
        smsc_ids: list[str] = []
        for part in parts:  # every part from the same sender
            body = template.body(msg.to, part.esm_class, part.data_coding, part.short_message,
                                 part.tlvs, head=head, validity_period=validity)
            # Once a part is accepted, a later part is retried in place: re-queueing the whole
            # message would submit the accepted parts again (and keep the order of parts).
            answer = await self._submit_part(msg, channel, pool, body, slot,
                                             in_place=bool(smsc_ids))
            if isinstance(answer, Outcome):
                return answer
            smsc_ids.append(answer)
        code, text = _without_smsc_id(smsc_ids)
        return Outcome(api_id=msg.api_id, channel=msg.channel, smsc_ids=smsc_ids,
                       receipt_wait_ms=self._receipt_waits[msg.channel], attempted=True,
                       error_code=code, error_text=text)

    async def _moved_on(self, msg: Claimed, outcome: Outcome) -> bool:
        """Whether the message moved to its route's next channel (it has one, and Redis took
        the move); else its outcome is recorded as if its route had no failover."""
        try:
            got = await self.store.fail_over(
                [msg.api_id], channel=msg.channel, code=outcome.error_code,
                text=outcome.error_text, worker=self.worker_id)
        except REDIS_ERRORS as exc:
            log.warning("failover: redis unavailable (%s); recorded where it is", exc)
            return False
        to = got.moved.get(msg.api_id)
        if to is None:
            return False
        log.info("moved to %s: %s %s", to, outcome.error_code, outcome.error_text)
        self.metrics.failovers.add((msg.channel, "status"))
        return True

    async def _submit_part(
        self, msg: Claimed, channel: Channel, pool: ChannelPool, body: bytes,
        slot: _Slot, *, in_place: bool,
    ) -> str | Outcome:
        """The part's SMSC id, or the message's outcome when the part (the submit_sm
        ``body``) was not accepted."""
        attempt = paced = 0
        while True:
            rate = self._rates[msg.channel]
            if not rate.take_now():  # no coroutine per submit while a token is at hand
                await rate.acquire()
            # Not on the wire: whoever holds the message next sends it in full. A later part
            # goes on regardless: deferring it would send its accepted parts again for sure.
            # (A bind up and the claims held: _may_submit would say None; asked inline.)
            if not in_place and not (pool.any_bound and self._claims.holds()):
                held = await self._may_submit(msg, channel, pool, slot, paced)
                if held is not None:
                    return held
            try:
                started = time.monotonic()
                res = await pool.submit_body(body, self.settings.wait_bind_seconds)
                self.metrics.submit_answered(msg.channel, res.status, time.monotonic() - started)
                if res.status == pdu.ESME_ROK:
                    return normalise_smsc_id(res.message_id)
                code = f"0x{res.status:08X}"
                text = pdu.status_name(res.status) + (" (generic_nack)" if res.nack else "")
                if not in_place and res.status in self._moves_on.get(msg.route, ()):
                    # Its route sends it elsewhere: a first part, so it moves whole.
                    plain = (self._retry_or_fail(msg, channel, code, text)
                             if res.status in channel.transient_statuses
                             else self._failed(msg, code, text, attempted=True))
                    return replace(plain, fail_over=True)
                if res.status not in channel.transient_statuses:
                    return self._failed(msg, code, text, attempted=True)
                if res.status in PACE_STATUSES and not _expired(msg, channel):
                    # "Slow down" is not a failure: resend this part after a short pause,
                    # without spending an attempt. A first part that stays throttled goes back
                    # to the queue (still no attempt spent) rather than pausing ever longer.
                    paced += 1
                    if paced > PACE_IN_PLACE and not in_place:
                        return self._deferred(msg, code, text, paced)
                    pause = min(1.0, self._rng.uniform(0.01, 0.02) * 2 ** paced)
                    if in_place:  # earlier parts are answered, not yet recorded: keep the slot
                        await asyncio.sleep(pause)
                    else:  # nothing of it is on the wire or unrecorded: another may use it
                        slot.let_go()
                        await asyncio.sleep(pause)
                        await slot.take()
                    continue
            except SessionClosed as exc:
                if not exc.written:  # the SMSC never saw it: wait for a bind, spend nothing
                    unsent = await self._unsent(msg, channel, str(exc), in_place=in_place)
                    if unsent is not None:
                        return unsent
                    continue
                code, text = "BindDown", str(exc)
            if not in_place:
                return self._retry_or_fail(msg, channel, code, text)
            attempt += 1
            if attempt >= channel.max_attempts:
                return self._failed(msg, code, f"{text}; a later part gave up after {attempt} "
                                               "attempts (earlier parts were accepted)",
                                    attempted=True)
            await asyncio.sleep(backoff(attempt, 0.2, 5.0, self._rng))

    async def _unsent(
        self, msg: Claimed, channel: Channel, text: str, *, in_place: bool
    ) -> Outcome | None:
        """A part that never left this process (no bind up): the message goes back to the
        queue without spending an attempt (a first part), or this part is tried again after
        a pause (a later part: earlier ones are accepted). Either way only max age fails it.
        None: try the part again."""
        if why := _expired(msg, channel):
            return self._failed(msg, "Expired", f"{why} with no bind up ({text})")
        if not in_place:
            return Outcome(api_id=msg.api_id, channel=msg.channel, status=Status.QUEUED,
                           error_code="BindDown", error_text=text, retry_at=_retry_at(
                               msg, now_ms() + int(self._rng.uniform(0.5, 1.0) * 1000)))
        await asyncio.sleep(self._rng.uniform(0.2, 0.5))
        return None

    async def _may_submit(self, msg: Claimed, channel: Channel, pool: ChannelPool,
                          slot: _Slot, paced: int) -> Outcome | None:
        """None when this worker may submit the message's first part now: a bind is up and
        its claim still stands, asked as close to the write as can be. Else its outcome: back
        to the queue, no attempt spent. A bind is waited for without holding a slot, so the
        messages claimed when a bind is lost wait together and go back together (each window
        of them waiting in turn held the channel's claims, and the reaper behind them, for
        minutes: a failover of a lost SMSC's queue waited for them)."""
        if not pool.any_bound:
            slot.let_go()
            if not await pool.wait_ready(self.settings.wait_bind_seconds):
                return await self._unsent(msg, channel, f"{msg.channel}: no bind up",
                                          in_place=False)
            await slot.take()
        if not self._claims.holds():
            return self._deferred(msg, "NotSubmitted", "this worker could not renew its "
                                  "claims (heartbeat not written)", paced)
        return None

    def _deferred(self, msg: Claimed, code: str, text: str, paced: int) -> Outcome:
        delay = backoff(min(msg.attempts + paced, 8), 0.5, 30.0, self._rng)
        return Outcome(api_id=msg.api_id, channel=msg.channel, status=Status.QUEUED,
                       error_code=code, error_text=text, deferred=True,
                       retry_at=_retry_at(msg, now_ms() + int(delay * 1000)))

    def _failed(self, msg: Claimed, code: str, text: str, *, attempted: bool = False) -> Outcome:
        return Outcome(api_id=msg.api_id, channel=msg.channel, status=Status.FAILED,
                       error_code=code, error_text=text, attempted=attempted)

    def _retry_or_fail(self, msg: Claimed, channel: Channel, code: str, text: str) -> Outcome:
        """After a submit that reached the SMSC and was not accepted: it spent an attempt."""
        spent = msg.attempts + 1
        if spent >= channel.max_attempts:
            return self._failed(msg, code, f"{text}; gave up after {spent} attempts",
                                attempted=True)
        delay = backoff(spent, 0.5, 30.0, self._rng)
        return Outcome(api_id=msg.api_id, channel=msg.channel, status=Status.QUEUED,
                       error_code=code, error_text=text,
                       retry_at=_retry_at(msg, now_ms() + int(delay * 1000)), attempted=True)

    async def _flush_outcomes(self, outcomes: Sequence[Outcome]) -> list[int]:
        # An answered submit must be recorded, or it would be sent again: keep trying through
        # a Redis outage for as long as this process lives (its window slots stay held, which
        # stops new submits), and give up only when a drain runs out of time.
        attempt = 0
        while True:
            try:
                await self.store.record_outcomes(outcomes, dlr_ttl_seconds=self._dlr_ttl(),
                                                 smsc_accounts=self._smsc_accounts)
                return [1] * len(outcomes)
            except REDIS_ERRORS as exc:
                if self._drain_deadline and time.monotonic() > self._drain_deadline:
                    raise
                attempt += 1
                log.warning("recording %d outcomes: redis unavailable (%s)", len(outcomes), exc)
                await asyncio.sleep(backoff(attempt, 0.05, 2.0, self._rng))

    def _dlr_ttl(self) -> int:
        return self._dlr_ttl_seconds

    # --- receipts ----------------------------------------------------------------------------

    def _deliver_handler(self, channel: str) -> DeliverHandler:
        return functools.partial(self._on_deliver, channel)  # no wrapper coroutine per receipt

    def _on_deliver(self, channel: str, sm: pdu.ShortMessage) -> Awaitable[int]:
        """The deliver_sm_resp status, once the receipt or MO message is recorded."""
        if not is_receipt(sm.esm_class):
            return self._on_mo(channel, sm)
        event = self._receipt_event(channel, sm)
        if event is None:
            done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            done.set_result(pdu.ESME_ROK)
            return done
        return self._answers.answer(
            self._receipts.submit(event), functools.partial(self._receipts.put, event),
            functools.partial(self.metrics.receipt, event), f"receipt on {channel}")

    def _receipt_event(self, channel: str, sm: pdu.ShortMessage) -> ReceiptEvent | None:
        text = sm.payload().decode("latin-1", errors="replace")
        core = receipt_core(text, sm.tlvs)  # parse_receipt's fields, without its Receipt
        if core is None:
            log.warning("unparseable receipt on %s: %r", channel, text[:80])
            return None
        message_id, text_id, stat, err, message_state = core
        ch = self.channels[channel]
        forms, twice = ids_of(message_id, text_id, ch.receipt_id_format)
        if not forms:
            log.warning("receipt on %s with an id not valid for receipt_id_format %s: %r",
                        channel, ch.receipt_id_format, message_id)
            return None
        state = final_state_of(stat, message_state)
        return ReceiptEvent(
            channel=channel, forms=forms, smsc=ch.smsc_account,
            spelled_twice=twice,
            state=_STATUSES[state] if state else None, stat=stat, err=err,
        )

    def _on_mo(self, channel: str, sm: pdu.ShortMessage) -> asyncio.Future[int]:
        """Record a mobile-originated message; acknowledged only once stored."""
        body, concat = sm.payload(), None
        if sm.esm_class & ESM_UDHI:
            concat, body = parse_udh(body)
        ref, total, seq = "", 1, 1
        if concat is not None:
            ref, total, seq = f"{concat.ref_bits}:{concat.ref}", concat.total, concat.seq
        elif pdu.SAR_MSG_REF_NUM in sm.tlvs:
            ref = f"sar:{pdu.tlv_int(sm.tlvs[pdu.SAR_MSG_REF_NUM])}"
            total = pdu.tlv_int(sm.tlvs.get(pdu.SAR_TOTAL_SEGMENTS, b"\x01"))
            seq = pdu.tlv_int(sm.tlvs.get(pdu.SAR_SEGMENT_SEQNUM, b"\x01"))
        part = MoPart(api_id=new_id(), channel=channel, source=sm.source_addr,
                      destination=sm.destination_addr, body=body, data_coding=sm.data_coding,
                      ref=ref, total=max(total, 1), seq=seq,
                      default_account=self.channels[channel].mo_default_account)
        first = asyncio.get_running_loop().create_task(self.store.record_mo(part))
        return self._answers.answer(first, functools.partial(self.store.record_mo, part),
                                    _ignore, f"MO on {channel}")

    async def _flush_receipts(self, events: Sequence[ReceiptEvent]) -> list[str]:
        return await self.store.record_receipts(events, held_ttl_seconds=3600)


def _ignore(_: object) -> None:
    """Nothing to count once an MO message is recorded."""


def _without_smsc_id(smsc_ids: Sequence[str]) -> tuple[str, str]:
    """(error code, text) of a submitted message whose SMSC answered ESME_ROK with no readable
    message_id for a part, else empty: accepted (re-sending would duplicate it), but no receipt
    can match it, so it ends ``unknown`` unless something else settles it."""
    if all(smsc_ids):
        return "", ""
    missing = [str(n) for n, sid in enumerate(smsc_ids, 1) if not sid]
    which = "it" if len(smsc_ids) == 1 else "part " + ", ".join(missing)
    return ("NoSmscId",
            f"the SMSC accepted {which} without a readable message_id: no receipt can match")


def _log_outcome(outcome: Outcome) -> None:
    """One line per send attempt: routine at DEBUG, a retry or a failure at INFO."""
    if outcome.status == Status.SUBMITTED:
        log.debug("submitted in %d part(s)", len(outcome.smsc_ids))
    elif not outcome.deferred:
        log.info("%s: %s %s", "will retry" if outcome.status == Status.QUEUED else "failed",
                 outcome.error_code, outcome.error_text)


def _expired(msg: Claimed, channel: Channel) -> str:
    """Why the message may no longer be submitted ('' while it may): its validity has ended,
    or it is older than the channel's max age (a scheduled one: counted from its time)."""
    now = now_ms()
    if msg.valid_until and now >= msg.valid_until:
        return "validity period ended"
    if now - max(msg.accepted_at, msg.scheduled_at) > channel.max_age_seconds * 1000:
        return "max age reached"
    return ""


def _retry_at(msg: Claimed, at: int) -> int:
    """When to try again: ``at``, or the end of the message's validity if that is sooner
    (it is failed as Expired then, rather than left queued past it)."""
    return min(at, msg.valid_until) if msg.valid_until else at


def _validity(msg: Claimed, channel: Channel) -> str | None:
    """The submit_sm validity_period of the message's own validity (absolute, so the SMSC
    stops retrying when this gateway would), or None for the channel's (sooner, or its only)."""
    if not msg.valid_until:
        return None
    if channel.validity_seconds and now_ms() + channel.validity_seconds * 1000 < msg.valid_until:
        return None
    return times.absolute(msg.valid_until)


def _receipt_wait_ms(channel: Channel) -> int:
    """How long a submitted message waits for its receipt before it is unknown."""
    if not channel.registered_delivery & 0x03:
        return 0
    return (channel.validity_seconds or 48 * 3600) * 1000 + RECEIPT_MARGIN_MS


def _dlr_ttl(channels: Iterable[Channel]) -> int:
    """Seconds an SMSC id stays mapped to its message: the longest validity, an hour more."""
    longest = max((c.validity_seconds for c in channels), default=0)
    return max(longest or 48 * 3600, 48 * 3600) + 3600


def _submit_template(channel: Channel) -> pdu.SubmitTemplate:
    """The channel's submit_sm: what every message sent over it shares."""
    return pdu.SubmitTemplate(pdu.ShortMessage(
        source_addr=channel.source_addr, source_addr_ton=channel.source_ton,
        source_addr_npi=channel.source_npi, dest_addr_ton=channel.dest_ton,
        dest_addr_npi=channel.dest_npi, registered_delivery=channel.registered_delivery,
        validity_period=times.relative(channel.validity_seconds)))


def _source_head(template: pdu.SubmitTemplate, sender: str, channel: Channel) -> bytes:
    """The submit_sm head of a message with its own sender, its TON/NPI by its kind."""
    a = address(sender, channel.source_addr, channel.source_ton, channel.source_npi)
    return template.source(a.addr, a.ton, a.npi)
