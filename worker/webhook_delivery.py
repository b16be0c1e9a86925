"""``smsgw webhooks``: POSTs captured events to accounts' URLs, signed, retried, in order.

Events are captured by the store's scripts with the transitions themselves (one Redis stream
per account, holding only the statuses the account chose), so sending never waits for a
receiver: this separate process reads the streams.

- **Isolation.** Each account is read only while it has room (``queue_per_account``, or a
  batch per lane if more) and is delivered by its own lanes, with a short timeout per POST, so
  a slow or dead receiver holds up its own account only.
- **Throughput.** An account's lanes adapt: more while its receiver answers fast and events
  wait, fewer when it slows or fails (worker/webhook_batches.py). An account that chose
  ``maxBatch`` gets up to that many events per POST, signed once; acknowledgements of
  batches that end together go to Redis together; connections are kept alive.
- **Order.** A message's events are handed to the lanes one batch at a time: its next event
  goes only after the batch with its earlier one was delivered or dead-lettered.
- **At-least-once, crash-safe.** An event leaves the stream only after a 2xx (or when
  dead-lettered), in one script with its XACK. An account's events are in several streams
  (shards, by message); one process at a time delivers a shard (a lease in Redis), and a
  successor first re-reads the events its predecessor left unacknowledged.
- **Shared.** Processes share every account's shards (worker/webhook_shares.py): each holds at
  most its fair share while others are alive (a heartbeat each), and hands a shard over only
  once what it read of it is delivered, so a second process shares a busy account.
- **Public targets only** (unless ``allow_private_networks``): no connection is ever made to a
  private, loopback, link-local... address (worker/webhook_resolver.py). Such a target is a
  permanent failure: the event is dead-lettered at once, with the reason.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from redis.asyncio import Redis

from worker.cancel import accept_cancellation, cancel_and_wait
from worker.config import Settings, WebhookSettings
from worker.redisconn import redis_client
from worker.store import (
    REDIS_ERRORS,
    WEBHOOK_SHARDS,
    WebhookEvent,
    WebhookStore,
    WebhookTargets,
)
from worker.supervise import Restart, supervise
from worker.webhook_batches import Concurrency, EventQueue, batchable
from worker.webhook_resolver import PublicResolver, RefusedTarget, check_literal
from worker.webhook_shares import fair_share, rebalance
from worker.webhooks import (
    EVENT_COUNT_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    INBOUND_EVENT,
    SIGNATURE_HEADER,
    STATUS_EVENT,
    CallbackOptions,
    batch_body,
    body_of,
    event_id,
    retry_delay,
    signature,
)

log = logging.getLogger("smsgw.webhooks")
T = TypeVar("T")

READ_BLOCK_MS = 500  # how long a read waits for new events; also how soon a full account resumes
DISCOVER_SECONDS = 1.0  # how soon an account's first URL (or a changed setting) is noticed
LANE_RESTART = Restart(low=0.1, high=30.0)  # an event that keeps crashing its lane: 2 a minute
ACK_RESTART = Restart(low=0.05, high=5.0)
MAX_ACK = 1000  # events per acknowledging script run
RESPONSE_BYTES = 64 * 1024  # read from a reply (keeps its connection alive); past it, close
TOO_LARGE = 413


@dataclass(frozen=True, slots=True)
class PostResult:
    """What one POST achieved: ``ok`` for any 2xx, else why not; ``permanent`` when no retry
    can succeed (the target is refused); ``status`` the HTTP status (0: no answer)."""

    ok: bool
    detail: str
    permanent: bool = False
    status: int = 0


class Poster:
    """POSTs with a short timeout, never following redirects (a redirect is a failure). With
    ``public_only``, the session's connector must resolve through a PublicResolver."""

    def __init__(self, session: aiohttp.ClientSession, timeout_seconds: float, *,
                 public_only: bool) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._public_only = public_only

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        """POST ``body``; any 2xx is delivered."""
        try:
            if self._public_only:
                check_literal(url)
            async with self._session.post(url, data=body, headers=headers, timeout=self._timeout,
                                          allow_redirects=False) as resp:
                # Read the (short) reply so that the connection goes back to the pool.
                await resp.content.read(RESPONSE_BYTES)
                return PostResult(200 <= resp.status < 300, f"HTTP {resp.status}",
                                  status=resp.status)
        except RefusedTarget as exc:
            return PostResult(False, str(exc), permanent=True)
        except TimeoutError:
            return PostResult(False, "timeout")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedTarget):  # raised by the PublicResolver
                return PostResult(False, str(exc.os_error), permanent=True)
            return PostResult(False, type(exc).__name__)
        except aiohttp.ClientError as exc:
            return PostResult(False, type(exc).__name__)


Shard = int | None  # one of an account's event streams; None: the one of before shards


class Acker:
    """Acknowledges delivered events: what lanes hand in while a round trip runs goes in the
    next one (a script per stream), so a burst of small POSTs costs a few round trips, not one
    each.
    A lane waits for its events' acknowledgement before its messages' next events may go."""

    def __init__(self, store: WebhookStore,
                 patiently: Callable[[Callable[[], Awaitable[None]], str], Awaitable[None]]
                 ) -> None:
        self._store = store
        self._patiently = patiently
        self._waiting: dict[tuple[str, Shard], list[tuple[str, str]]] = {}
        self._done: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()

    async def ack(self, account: str, events: Sequence[WebhookEvent]) -> None:
        """Acknowledge events of an account; return once they are."""
        done = asyncio.get_running_loop().create_future()
        for e in events:
            self._waiting.setdefault((account, e.shard), []).append(
                (e.entry_id, event_id(e.fields) if e.fields else ""))
        self._done.append(done)
        self._wake.set()
        await done

    async def run(self) -> None:
        """Until cancelled (supervised)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            waiting, done = self._waiting, self._done
            self._waiting, self._done = {}, []
            try:
                for i in range(0, max(map(len, waiting.values()), default=0), MAX_ACK):
                    acks = {stream: events[i:i + MAX_ACK]
                            for stream, events in waiting.items()}
                    await self._patiently(functools.partial(self._store.acknowledge, acks),
                                          "ack")
            except BaseException as exc:
                for future in done:  # the lanes' own supervisors take it from here
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception)
                                             else RuntimeError("acknowledging stopped"))
                raise
            for future in done:
                if not future.done():
                    future.set_result(None)


@dataclass(slots=True)
class HeldShard:
    """A shard of an account this process holds the lease of."""

    cursor: str = "0"  # first re-read what a predecessor left unacknowledged, then ">"
    in_memory: int = 0  # read and not yet delivered or dead-lettered
    leaving: bool = False  # being handed over: read no more, released once in_memory is 0


class AccountLanes:
    """One account's events in memory, from the shards this process holds, and the lanes that
    deliver them, one batch each (a batch may mix shards: a message is in one only)."""

    def __init__(self, account: str,
                 deliver: Callable[[AccountLanes, list[WebhookEvent]], Awaitable[None]],
                 settings: WebhookSettings, on_room: asyncio.Event) -> None:
        self.account = account
        self.shards: dict[Shard, HeldShard] = {}
        self.in_memory = 0
        self.options = CallbackOptions()
        self.batch_cap = 0  # learned from a 413: the receiver takes no larger batch (0: none)
        self.concurrency = Concurrency(settings.concurrency_per_account,
                                       settings.max_concurrency_per_account,
                                       settings.timeout_seconds / 4)
        self._queue_size = settings.queue_per_account
        self._deliver = deliver
        self._on_room = on_room
        self._queue = EventQueue()
        self._changed = asyncio.Event()
        self._in_flight = 0
        # The batch each lane is delivering: a lane restarted after a crash starts with it, so
        # none is skipped and the order of a message's events holds.
        self._heads: list[list[WebhookEvent] | None] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._grow()

    @property
    def max_batch(self) -> int:
        """Events per POST now: the account's choice, or less if its receiver refused that."""
        chosen = self.options.max_batch if self.options.batched else 1
        return min(chosen, self.batch_cap) if self.batch_cap else chosen

    @property
    def read_ahead(self) -> int:
        """How many events to hold in memory: enough for a batch per lane and one more."""
        return max(self._queue_size, self.max_batch * (self.concurrency.limit + 1))

    @property
    def backlog(self) -> bool:
        """Whether events wait for a lane."""
        return len(self._queue) > 0

    def offer(self, event: WebhookEvent) -> None:
        """Queue an event behind the earlier events of the same message."""
        self.in_memory += 1
        self.shards[event.shard].in_memory += 1
        self._queue.add(event, time.monotonic())
        self._changed.set()

    def answered(self, ok: bool, seconds: float) -> None:
        """A POST of this account was answered: adapt the number of lanes."""
        self.concurrency.answered(ok, seconds, backlog=self.backlog)
        self._grow()
        self._changed.set()

    async def close(self) -> None:
        """Stop at once; events not yet acknowledged stay in the stream for a successor."""
        await cancel_and_wait(self._tasks)

    def _grow(self) -> None:
        while len(self._tasks) < self.concurrency.limit:
            lane = len(self._tasks)
            self._heads.append(None)
            self._tasks.append(asyncio.create_task(supervise(
                f"webhook lane {lane} of account {self.account}",
                functools.partial(self._lane, lane), LANE_RESTART)))

    async def _lane(self, lane: int) -> None:
        while True:
            batch = self._heads[lane]
            if batch is None:
                batch = self._heads[lane] = await self._take()
            await self._deliver(self, batch)
            self._heads[lane] = None
            self._queue.done(batch)
            self._in_flight -= 1
            self.in_memory -= len(batch)
            for event in batch:
                self.shards[event.shard].in_memory -= 1
            self._changed.set()
            self._on_room.set()

    async def _take(self) -> list[WebhookEvent]:
        while True:
            self._changed.clear()
            wait: float | None = None
            if self._in_flight < self.concurrency.limit:
                batch, wait = self._queue.take(
                    self.max_batch, self.options.max_batch_delay_ms / 1000, time.monotonic(),
                    more_coming=self.in_memory < self.read_ahead)
                if batch:
                    self._in_flight += 1
                    return batch
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._changed.wait()


class WebhookService:
    """Delivers the events of every account shard whose lease it holds, until cancelled."""

    def __init__(self, redis: Redis, settings: WebhookSettings, *, owner: str,
                 rng: random.Random | None = None, channels: Sequence[str] = ()) -> None:
        self._store = WebhookStore(redis)
        self._channels = channels  # whose MO lookups' copies it makes current at start
        self._settings = settings
        self._owner = owner
        self._rng = rng or random.Random()
        self._accounts: dict[str, AccountLanes] = {}
        self._targets: dict[str, WebhookTargets | None] = {}  # refreshed every second
        self._room = asyncio.Event()
        self._poster: Poster | None = None
        self._acker = Acker(self._store, self._patiently)

    @property
    def user_agent(self) -> str:
        """Names this process to receivers (and logs) without naming its host."""
        return f"smsgw-webhooks ({hashlib.sha256(self._owner.encode()).hexdigest()[:8]})"

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Serve until ``stop`` is set (or until cancelled); on the way out, hand every shard
        over at once."""
        public_only = not self._settings.allow_private_networks
        resolver = PublicResolver(aiohttp.DefaultResolver()) if public_only else None
        # limit=0: accounts must not queue behind each other
        connector = aiohttp.TCPConnector(limit=0, resolver=resolver)
        acker = asyncio.create_task(supervise("webhook acknowledgements", self._acker.run,
                                              ACK_RESTART))
        log.info("webhooks %s delivers as %r", self._owner, self.user_agent)
        try:
            async with aiohttp.ClientSession(connector=connector,
                                             headers={"User-Agent": self.user_agent}) as session:
                self._poster = Poster(session, self._settings.timeout_seconds,
                                      public_only=public_only)
                # Supervised: an error reply or a bug must not stop lease renewal while the
                # lanes go on (restarted well within a renewal period). Its own task, stopped
                # by cancel_and_wait: one cancel can be swallowed by a Redis call under way,
                # and the loop would then serve on after SIGTERM.
                loop = asyncio.create_task(supervise(
                    "webhook leases and reads", self._loop,
                    Restart(low=0.05, high=self._settings.lease_seconds / 6)))
                waits = {loop, asyncio.ensure_future((stop or asyncio.Event()).wait())}
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    accept_cancellation()  # cancelling is how we stop: hand over regardless
                    await cancel_and_wait(waits)
                    await self._hand_over()
        finally:
            await cancel_and_wait([acker])
            if resolver is not None:  # a resolver passed in is not closed by its connector
                await resolver.close()

    async def _loop(self) -> None:
        next_refresh = next_renewal = next_copies = 0.0
        while True:
            if time.monotonic() >= next_copies:
                # The shards' copies of the callback settings and MO lookups, made current at
                # start and then every reconcile_seconds: a change whose copy was lost to a
                # crash reaches the workers (worker/store/copies.py).
                await self._patiently(
                    functools.partial(self._store.reconcile_copies, self._channels),
                    "configuration copies")
                next_copies = time.monotonic() + self._settings.reconcile_seconds
            if time.monotonic() >= next_refresh:
                renew = time.monotonic() >= next_renewal
                await self._patiently(functools.partial(self._refresh, renew), "lease refresh")
                next_refresh = time.monotonic() + DISCOVER_SECONDS
                if renew:
                    next_renewal = time.monotonic() + self._settings.lease_seconds / 3
            cursors = {(a, shard): held.cursor for a, lanes in self._accounts.items()
                       if lanes.in_memory < lanes.read_ahead
                       for shard, held in lanes.shards.items() if not held.leaving}
            if not cursors:
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, next_refresh - time.monotonic())):
                        await self._room.wait()
                continue
            await self._patiently(functools.partial(self._read, cursors), "read")

    async def _read(self, cursors: dict[tuple[str, Shard], str]) -> None:
        # XREADGROUP's count is per stream: an account's room is shared by its shards.
        streams = collections.Counter(a for a, _ in cursors)
        room = min((self._accounts[a].read_ahead - self._accounts[a].in_memory) // n
                   for a, n in streams.items())
        replaying = any(c != ">" for c in cursors.values())
        events = await self._store.read_events(cursors, count=max(1, room),
                                               block_ms=None if replaying else READ_BLOCK_MS)
        seen: dict[tuple[str, Shard], str] = {}
        for event in events:
            lanes = self._accounts.get(event.account)
            if lanes is not None and event.shard in lanes.shards:
                lanes.offer(event)
                seen[event.account, event.shard] = event.entry_id
        for (account, shard), cursor in cursors.items():
            held = self._accounts[account].shards.get(shard) if account in self._accounts \
                else None
            if cursor != ">" and held is not None:
                # Past the predecessor's unacknowledged events: read new ones from now on.
                held.cursor = seen.get((account, shard), ">")

    async def _refresh(self, renew: bool) -> None:
        """Say this process is alive; with ``renew``, keep the shards held. Take free shards up
        to this process's fair share, give back what is over it, and hand over the shards
        given back once drained. Read the settings of the accounts held for the next second."""
        ttl = int(self._settings.lease_seconds * 1000)
        share = fair_share(WEBHOOK_SHARDS, await self._store.alive(self._owner, ttl))
        if renew:
            await self._renew(ttl)
        accounts = await self._store.hooked_accounts()
        backlog = await self._store.unsharded_backlog(accounts)
        for account in accounts:
            await self._balance(account, share, ttl)
            if backlog[account]:
                await self._take(account, [None], ttl)
            await self._hand_over_drained(account, backlog[account])
        held = list(self._accounts)
        for account, targets in zip(held, await self._store.targets_many(held), strict=True):
            self._targets[account] = targets
            if (lanes := self._accounts.get(account)) is not None:  # not dropped meanwhile
                lanes.options = targets.options if targets else CallbackOptions()

    async def _renew(self, ttl: int) -> None:
        held = [(a, shard) for a, lanes in self._accounts.items() for shard in lanes.shards]
        kept = await self._store.renew_leases(held, self._owner, ttl)
        lost = {a for (a, _), ok in zip(held, kept, strict=True) if not ok}
        for account in lost:
            # What was read of the lost shard may be delivered by its new holder too: stop
            # the account's lanes at once and hand its other shards over (taken again soon).
            log.warning("lost a webhook lease of account %s", account)
            await self._drop(account)

    async def _balance(self, account: str, share: int, ttl: int) -> None:
        lanes = self._accounts.get(account)
        held = lanes.shards if lanes else {}
        moves = rebalance([s for s, h in held.items() if s is not None and not h.leaving],
                          [s for s, h in held.items() if s is not None and h.leaving], share)
        for shard in moves.give:
            log.info("handing over webhooks of account %s shard %s (fair share %d)",
                     account, shard, share)
            held[shard].leaving = True
        for shard in moves.resume:
            held[shard].leaving = False
        free: list[Shard] = [s for s in range(WEBHOOK_SHARDS) if s not in held]
        for _ in range(moves.take):
            if not await self._take(account, free, ttl):
                break

    async def _take(self, account: str, shards: Sequence[Shard], ttl: int) -> bool:
        """Take the first free one of ``shards`` not held yet; False if none was."""
        lanes = self._accounts.get(account)
        wanted = [s for s in shards if lanes is None or s not in lanes.shards]
        got = await self._store.acquire_lease(account, wanted, self._owner, ttl)
        if got < 0:
            return False
        shard = wanted[got]
        await self._store.ensure_group(account, shard)
        if lanes is None:
            lanes = self._accounts[account] = AccountLanes(account, self._deliver,
                                                           self._settings, self._room)
        lanes.shards[shard] = HeldShard()
        log.info("delivering webhooks of account %s %s", account,
                 "(stream of before shards)" if shard is None else f"shard {shard}")
        return True

    async def _hand_over_drained(self, account: str, unsharded_backlog: int) -> None:
        """Release the shards given back once nothing read of them is in flight, and the
        stream of before shards once it is empty; forget an account with no shard left."""
        lanes = self._accounts.get(account)
        if lanes is None:
            return
        for shard, held in list(lanes.shards.items()):
            done = held.in_memory == 0 and (
                held.leaving if shard is not None
                else held.cursor == ">" and unsharded_backlog == 0)
            if done:
                del lanes.shards[shard]
                await self._store.release_lease(account, shard, self._owner)
        if not lanes.shards:
            await self._drop(account)

    async def _drop(self, account: str) -> None:
        """Stop the account's lanes at once; what they did not acknowledge stays pending for
        the next holder of its shards."""
        lanes = self._accounts.pop(account)
        self._targets.pop(account, None)
        await lanes.close()
        for shard in lanes.shards:
            await self._store.release_lease(account, shard, self._owner)

    async def _hand_over(self) -> None:
        for account in list(self._accounts):
            with contextlib.suppress(*REDIS_ERRORS):
                await self._drop(account)
        self._accounts.clear()
        with contextlib.suppress(*REDIS_ERRORS):
            await self._store.gone(self._owner)

    async def _deliver(self, lanes: AccountLanes, batch: list[WebhookEvent]) -> None:
        """Until every event of the batch is delivered or dead-lettered. Events with nothing
        to send (trimmed away, or of a status the account no longer chose) are acknowledged."""
        options = lanes.options
        unsent = [e for e in batch if e.fields is None
                  or (batchable(e) and not options.wants(e.fields.get("status", "")))]
        if unsent:
            await self._acker.ack(lanes.account, unsent)
        gone = {e.ref for e in unsent}
        rest = [e for e in batch if e.ref not in gone]
        if rest:
            await self._send(lanes, rest)

    async def _send(self, lanes: AccountLanes, batch: list[WebhookEvent]) -> None:
        """POST ``batch`` until delivered, split in two on a 413, dead-lettering its events as
        they pass the max age; the receiver's current URL is used on each retry."""
        account = lanes.account
        attempt = 0
        while batch:
            attempt += 1
            targets = (self._targets.get(account) if attempt == 1 else await self._patiently(
                lambda: self._store.targets(account), "lookup"))
            started = time.monotonic()
            result = await self._post(targets, lanes.options, batch)
            lanes.answered(result.ok, time.monotonic() - started)
            if result.ok:
                await self._acker.ack(account, batch)
                return
            if result.status == TOO_LARGE and len(batch) > 1:
                half = (len(batch) + 1) // 2
                lanes.batch_cap = half
                log.info("webhook receiver of account %s refused %d events in a POST (413); "
                         "sending at most %d", account, len(batch), half)
                await self._send(lanes, batch[:half])
                await self._send(lanes, batch[half:])
                return
            delay = retry_delay(attempt, self._settings.backoff_min_seconds,
                                self._settings.backoff_max_seconds, self._rng)
            latest = time.time() + delay - self._settings.max_age_seconds
            dead = batch if result.permanent else [e for e in batch if e.queued_ms / 1000 < latest]
            for event in dead:
                eid = event_id(event.fields or {})
                log.warning("webhook %s of account %s dead-lettered after %d attempts (%s)",
                            eid, account, attempt, result.detail)
                await self._patiently(functools.partial(
                    self._store.dead_letter, event, eid, reason=result.detail, attempts=attempt),
                    "dead-letter")
            if dead:
                gone = {e.ref for e in dead}
                batch = [e for e in batch if e.ref not in gone]
            if batch:
                log.info("webhooks (%d) of account %s failed (%s); retry %d in %.2fs",
                         len(batch), account, result.detail, attempt + 1, delay)
                await asyncio.sleep(delay)

    async def _post(self, targets: WebhookTargets | None, options: CallbackOptions,
                    batch: list[WebhookEvent]) -> PostResult:
        fields = batch[0].fields or {}
        mo = fields.get("kind") == "mo"
        url = "" if targets is None else (
            targets.inbound.get(fields.get("channel", ""), "") if mo else targets.callback_url)
        if targets is None or not url or not targets.secret:
            return PostResult(False, "no URL configured")
        assert self._poster is not None  # set by run() before any account is served
        headers = {"Content-Type": "application/json", EVENT_COUNT_HEADER: str(len(batch))}
        if (options.batched or len(batch) > 1) and not mo:
            body = batch_body([body_of(e.fields or {}) for e in batch])
        else:  # one event, as its own body (MO events always)
            body = body_of(fields)
            headers[EVENT_ID_HEADER] = event_id(fields)
            headers[EVENT_TYPE_HEADER] = INBOUND_EVENT if mo else STATUS_EVENT
        headers[SIGNATURE_HEADER] = signature(targets.secret, int(time.time()), body)
        return await self._poster.post(url, body, headers)

    async def _patiently(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """Ride out a Redis outage: webhooks wait, they are never lost."""
        attempt = 0
        while True:
            try:
                return await call()
            except REDIS_ERRORS as exc:
                attempt += 1
                log.warning("webhooks: redis unavailable during %s (%s)", what, exc)
                await asyncio.sleep(retry_delay(attempt, 0.1, 5.0, self._rng))


def run_webhooks(settings: Settings, owner: str) -> int:
    """``smsgw webhooks``: run until SIGTERM or SIGINT."""
    asyncio.run(_serve(settings, owner))
    return 0


async def _serve(settings: Settings, owner: str) -> None:
    redis = redis_client(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("webhooks %s started", owner)
    try:
        await WebhookService(redis, settings.webhooks, owner=owner,
                             channels=list(settings.channels)).run(stop)
        log.info("webhooks stopped")
    finally:
        await redis.aclose()
