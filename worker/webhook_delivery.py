"""``smsgw webhooks``: POSTs captured events to accounts' URLs, signed, retried, in order.

Events are captured by the store's scripts with the transitions themselves (one Redis stream
per account), so sending never waits for a receiver: this separate process reads the streams.

- **Isolation.** Each account is read only while it has room (``queue_per_account``) and is
  delivered by its own lanes (``concurrency_per_account``), with a short timeout per POST, so a
  slow or dead receiver holds up its own account only.
- **Order.** The events of one message always go to the same lane, which delivers them one at a
  time and retries the head until it is delivered or dead-lettered.
- **At-least-once, crash-safe.** An event leaves the stream only after a 2xx (or when
  dead-lettered), in one script with its XACK. One process at a time delivers an account (a
  lease in Redis); a successor first re-reads the events its predecessor left unacknowledged.
- **Public targets only** (unless ``allow_private_networks``): no connection is ever made to a
  private, loopback, link-local... address (worker/webhook_resolver.py). Such a target is a
  permanent failure: the event is dead-lettered at once, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import signal
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from redis.asyncio import Redis

from worker.cancel import accept_cancellation
from worker.config import Settings, WebhookSettings
from worker.redisconn import redis_client
from worker.store import REDIS_ERRORS, WebhookEvent, WebhookStore, WebhookTargets
from worker.supervise import Restart, supervise
from worker.webhook_resolver import PublicResolver, RefusedTarget, check_literal
from worker.webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    body_of,
    event_id,
    payload,
    retry_delay,
    signature,
)

log = logging.getLogger("smsgw.webhooks")
T = TypeVar("T")

READ_BLOCK_MS = 500  # how long a read waits for new events; also how soon a full account resumes
DISCOVER_SECONDS = 1.0  # how soon an account's first URL is noticed
LANE_RESTART = Restart(low=0.1, high=30.0)  # an event that keeps crashing its lane: 2 a minute


@dataclass(frozen=True, slots=True)
class PostResult:
    """What one POST achieved: ``ok`` for any 2xx, else why not; ``permanent`` when no retry
    can succeed (the target is refused)."""

    ok: bool
    detail: str
    permanent: bool = False


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
                return PostResult(200 <= resp.status < 300, f"HTTP {resp.status}")
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


class AccountLanes:
    """One account's in-memory queue: lanes keyed by message, each delivering in order."""

    def __init__(self, account: str, deliver: Callable[[WebhookEvent], Awaitable[None]],
                 lanes: int, on_room: asyncio.Event) -> None:
        self.account = account
        self.cursor = "0"  # first re-read what a predecessor left unacknowledged, then ">"
        self.in_memory = 0
        self._deliver = deliver
        self._on_room = on_room
        self._queues: list[asyncio.Queue[WebhookEvent]] = [asyncio.Queue() for _ in range(lanes)]
        # The event each lane is delivering: a lane restarted after a crash starts with it, so
        # none is skipped and the order of a message's events holds.
        self._heads: list[WebhookEvent | None] = [None] * lanes
        self._tasks = [
            asyncio.create_task(supervise(f"webhook lane {i} of account {account}",
                                          functools.partial(self._lane, i), LANE_RESTART))
            for i in range(lanes)]

    def offer(self, event: WebhookEvent) -> None:
        """Queue an event behind the earlier events of the same message."""
        self.in_memory += 1
        key = (event.fields or {}).get("id", event.entry_id)
        self._queues[zlib.crc32(key.encode()) % len(self._queues)].put_nowait(event)

    async def close(self) -> None:
        """Stop at once; events not yet acknowledged stay in the stream for a successor."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _lane(self, lane: int) -> None:
        while True:
            event = self._heads[lane]
            if event is None:
                event = self._heads[lane] = await self._queues[lane].get()
            await self._deliver(event)
            self._heads[lane] = None
            self.in_memory -= 1
            self._on_room.set()


class WebhookService:
    """Delivers the events of every account whose lease it holds, until cancelled."""

    def __init__(self, redis: Redis, settings: WebhookSettings, *, owner: str,
                 rng: random.Random | None = None) -> None:
        self._store = WebhookStore(redis)
        self._settings = settings
        self._owner = owner
        self._rng = rng or random.Random()
        self._accounts: dict[str, AccountLanes] = {}
        self._room = asyncio.Event()
        self._poster: Poster | None = None

    async def run(self) -> None:
        """Serve until cancelled; on the way out, hand every account over at once."""
        public_only = not self._settings.allow_private_networks
        resolver = PublicResolver(aiohttp.DefaultResolver()) if public_only else None
        # limit=0: accounts must not queue behind each other
        connector = aiohttp.TCPConnector(limit=0, resolver=resolver)
        try:
            async with aiohttp.ClientSession(connector=connector,
                                             headers={"User-Agent": "smsgw-webhooks"}) as session:
                self._poster = Poster(session, self._settings.timeout_seconds,
                                      public_only=public_only)
                try:
                    # Supervised: an error reply or a bug must not stop lease renewal while
                    # the lanes go on (restarted well within a renewal period).
                    await supervise("webhook leases and reads", self._loop,
                                    Restart(low=0.05, high=self._settings.lease_seconds / 6))
                finally:
                    accept_cancellation()  # cancelling is how we stop: hand over regardless
                    await self._hand_over()
        finally:
            if resolver is not None:  # a resolver passed in is not closed by its connector
                await resolver.close()

    async def _loop(self) -> None:
        next_refresh = next_renewal = 0.0
        while True:
            if time.monotonic() >= next_refresh:
                renew = time.monotonic() >= next_renewal
                await self._patiently(functools.partial(self._refresh, renew), "lease refresh")
                next_refresh = time.monotonic() + DISCOVER_SECONDS
                if renew:
                    next_renewal = time.monotonic() + self._settings.lease_seconds / 3
            cursors = {a: lanes.cursor for a, lanes in self._accounts.items()
                       if lanes.in_memory < self._settings.queue_per_account}
            if not cursors:
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, next_refresh - time.monotonic())):
                        await self._room.wait()
                continue
            await self._patiently(functools.partial(self._read, cursors), "read")

    async def _read(self, cursors: dict[str, str]) -> None:
        room = min(self._settings.queue_per_account - self._accounts[a].in_memory
                   for a in cursors)
        replaying = any(c != ">" for c in cursors.values())
        events = await self._store.read_events(cursors, count=room,
                                               block_ms=None if replaying else READ_BLOCK_MS)
        seen: dict[str, str] = {}
        for event in events:
            lanes = self._accounts.get(event.account)
            if lanes is not None:
                lanes.offer(event)
                seen[event.account] = event.entry_id
        for account, cursor in cursors.items():
            if cursor != ">" and account in self._accounts:
                # Past the predecessor's unacknowledged events: read new ones from now on.
                self._accounts[account].cursor = seen.get(account, ">")

    async def _refresh(self, renew: bool) -> None:
        """Take the accounts no live process serves; with ``renew``, keep the ones held."""
        ttl = int(self._settings.lease_seconds * 1000)
        for account in await self._store.hooked_accounts():
            if account in self._accounts:
                if renew and not await self._store.renew_lease(account, self._owner, ttl):
                    log.warning("lost the webhook lease of account %s", account)
                    await self._accounts.pop(account).close()
            elif await self._store.acquire_lease(account, self._owner, ttl):
                await self._store.ensure_group(account)
                self._accounts[account] = AccountLanes(
                    account, self._deliver, self._settings.concurrency_per_account, self._room)
                log.info("delivering webhooks of account %s", account)

    async def _hand_over(self) -> None:
        for account, lanes in list(self._accounts.items()):
            await lanes.close()
            with contextlib.suppress(*REDIS_ERRORS):
                await self._store.release_lease(account, self._owner)
        self._accounts.clear()

    async def _deliver(self, event: WebhookEvent) -> None:
        """Until delivered or dead-lettered; the receiver's current URL is used each time."""
        if event.fields is None:  # trimmed away (stream cap): nothing left to send
            await self._patiently(lambda: self._store.delivered(event, ""), "ack")
            return
        eid, body = event_id(event.fields), body_of(event.fields)
        kind = str(payload(event.fields)["type"])
        attempt = 0
        while True:
            attempt += 1
            targets = await self._patiently(lambda: self._store.targets(event.account), "lookup")
            result = await self._post(targets, event, body, {EVENT_ID_HEADER: eid,
                                                             EVENT_TYPE_HEADER: kind})
            if result.ok:
                await self._patiently(lambda: self._store.delivered(event, eid), "ack")
                return
            delay = retry_delay(attempt, self._settings.backoff_min_seconds,
                                self._settings.backoff_max_seconds, self._rng)
            age = time.time() + delay - event.queued_ms / 1000
            if result.permanent or age > self._settings.max_age_seconds:
                log.warning("webhook %s of account %s dead-lettered after %d attempts (%s)",
                            eid, event.account, attempt, result.detail)
                await self._patiently(functools.partial(
                    self._store.dead_letter, event, eid, reason=result.detail, attempts=attempt),
                    "dead-letter")
                return
            log.info("webhook %s of account %s failed (%s); retry %d in %.2fs", eid,
                     event.account, result.detail, attempt + 1, delay)
            await asyncio.sleep(delay)

    async def _post(self, targets: WebhookTargets | None, event: WebhookEvent, body: bytes,
                    headers: dict[str, str]) -> PostResult:
        fields = event.fields or {}
        url = "" if targets is None else (
            targets.inbound.get(fields.get("channel", ""), "") if fields.get("kind") == "mo"
            else targets.callback_url)
        if targets is None or not url or not targets.secret:
            return PostResult(False, "no URL configured")
        assert self._poster is not None  # set by run() before any account is served
        sig = signature(targets.secret, int(time.time()), body)
        return await self._poster.post(url, body, {**headers, SIGNATURE_HEADER: sig,
                                                   "Content-Type": "application/json"})

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
    task = asyncio.create_task(WebhookService(redis, settings.webhooks, owner=owner).run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    log.info("webhooks %s started", owner)
    try:
        await task
    except asyncio.CancelledError:
        log.info("webhooks stopped")
    finally:
        await redis.aclose()
