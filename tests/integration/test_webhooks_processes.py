"""Real ``smsgw webhooks`` processes sharing one busy account: both deliver a share, every event
reaches the receiver once and each message's events in order; a process stopped (or killed)
mid-run leaves its shards to the other, and nothing is lost.

Real redis-server, real processes, a local aiohttp receiver that tells the processes apart by
their User-Agent. Waits are on Redis (keyspace notifications of the leases, pub/sub of the
deliveries) and on the receiver's own records, inside ``asyncio.timeout``: never a sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.integration.support import stop_all
from tests.integration.test_webhooks import Sink, start_sink, subscribed, until_all
from tests.integration.test_webhooks_batches import events_of
from tests.integration.test_webhooks_recovery import _accounts, _claimed
from worker.lifecycle import Status
from worker.store import (
    WEBHOOK_NOTIFY,
    WEBHOOK_SHARDS,
    Outcome,
    WebhookStore,
    dead_letter_key,
    webhook_lease_key,
)

pytestmark = pytest.mark.integration

MESSAGES = 200  # two events each: submitted, then unknown
LEASES = webhook_lease_key("acme", None) + "*"  # every lease of the account, whatever their number


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    served, runner = await start_sink(Sink())
    yield served
    await runner.cleanup()


def _env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    config = tmp_path / "smsgw.toml"
    config.write_text("[webhooks]\nallow_private_networks = true\ntimeout_seconds = 4\n"
                      "lease_seconds = 5\nbackoff_min_seconds = 0.05\nbackoff_max_seconds = 0.2\n")
    return {**os.environ, "SMSGW_CONFIG": str(config), "REDIS_URL": redis_url}


async def _start(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "webhooks", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def _owners(redis: Redis) -> Counter[str]:
    """Who holds the account's leases: owner -> how many."""
    keys = sorted(await redis.keys(LEASES))
    return Counter(v.decode() for v in await redis.mget(keys) if v) if keys else Counter()


@asynccontextmanager
async def _lease_changes(redis: Redis) -> AsyncIterator[Callable[[Callable[[Counter[str]], bool]],
                                                                 asyncio.Future[None]]]:
    """``until(condition)``: wait until the owners of the account's leases satisfy it, looked
    at again on every change of a lease (keyspace notifications)."""
    await redis.config_set("notify-keyspace-events", "Kgx$")
    async with redis.pubsub() as pubsub:
        await pubsub.psubscribe(f"__keyspace@0__:{LEASES}")
        while (await pubsub.get_message(timeout=5) or {}).get("type") != "psubscribe":
            pass

        async def until(condition: Callable[[Counter[str]], bool]) -> None:
            while not condition(await _owners(redis)):
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)

        started: list[asyncio.Future[None]] = []

        def waiting(condition: Callable[[Counter[str]], bool]) -> asyncio.Future[None]:
            started.append(asyncio.ensure_future(until(condition)))
            return started[-1]

        try:
            yield waiting
        finally:  # a wait the test no longer needs must not outlive the connection it reads
            for fut in started:
                fut.cancel()
            await asyncio.gather(*started, return_exceptions=True)


def _shared(owners: Counter[str]) -> bool:
    """Two processes hold every one of the account's leases, in equal shares (not only the
    first of them: the leases are taken one by one)."""
    return len(owners) == 2 and set(owners.values()) == {WEBHOOK_SHARDS // 2}


async def _busy_account(redis: Redis, url: str) -> list[str]:
    """Account acme with a callback at ``url``; its messages, accepted and claimed."""
    store = await _accounts(redis, "acme")
    await WebhookStore(redis).set_callback("acme", url, new_secret="s")
    return await _claimed(store, *["acme"] * MESSAGES,
                          cmids=[f"c{i}" for i in range(MESSAGES)])


async def _two_events_each(redis: Redis, ids: list[str]) -> set[str]:
    store = await _accounts(redis)
    for status in (Status.SUBMITTED, Status.UNKNOWN):
        await store.record_outcomes([Outcome(api_id=i, channel="sim", smsc_ids=[f"s-{i}"],
                                             status=status) for i in ids], dlr_ttl_seconds=60)
    return {f"{i}.{s}" for i in ids for s in ("submitted", "unknown")}


def _in_order(sink: Sink) -> bool:
    """Each message's 'unknown' first reached the receiver after its 'submitted' did."""
    first: dict[str, int] = {}
    for n, hit in enumerate(sink.hits):
        for event in events_of(hit):
            first.setdefault(event["eventId"], n)
    return all(first[f"{m}.submitted"] < first[f"{m}.unknown"]
               for m in {e.rsplit(".", 1)[0] for e in first})


async def test_two_processes_share_a_busy_account_each_event_once_and_in_order(
    redis_url: str, redis: Redis, tmp_path: Path, sink: Sink,
) -> None:
    ids = await _busy_account(redis, sink.url)
    env = _env(tmp_path, redis_url)
    procs: list[asyncio.subprocess.Process | None] = []
    try:
        async with asyncio.timeout(60), _lease_changes(redis) as until:
            shared = until(_shared)
            procs += [await _start(env), await _start(env)]
            await shared  # the first one gave the second its share of the account
            async with subscribed(redis, WEBHOOK_NOTIFY) as notices:
                wanted = await _two_events_each(redis, ids)
                await until_all(notices, {f"acme delivered {e}" for e in wanted})
    finally:
        await stop_all(procs)

    got = Counter(e["eventId"] for h in sink.hits for e in events_of(h))
    assert set(got) == wanted and set(got.values()) == {1}  # each event once
    assert all(h.answered == 200 for h in sink.hits)
    assert _in_order(sink)
    by_process = Counter(h.headers["User-Agent"] for h in sink.hits)
    assert len(by_process) == 2, by_process
    assert min(by_process.values()) >= len(wanted) // 4, by_process  # a share each, not a crumb


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
async def test_a_process_stopped_mid_run_leaves_its_shards_to_the_other_and_loses_nothing(
    redis_url: str, redis: Redis, tmp_path: Path, sink: Sink, stop: signal.Signals,
) -> None:
    ids = await _busy_account(redis, sink.url)
    env = _env(tmp_path, redis_url)
    procs: list[asyncio.subprocess.Process | None] = []
    sink.gate.clear()  # every POST is held unanswered: both processes have events in flight
    try:
        async with asyncio.timeout(60), _lease_changes(redis) as until:
            shared = until(_shared)
            first, second = await _start(env), await _start(env)
            procs += [first, second]
            await shared
            owners = await _owners(redis)
            async with subscribed(redis, WEBHOOK_NOTIFY) as notices:
                wanted = await _two_events_each(redis, ids)
                async with sink._changed:
                    await sink._changed.wait_for(
                        lambda: len({h.headers["User-Agent"] for h in sink.hits}) == 2)
                taken_over = until(lambda now: len(now) == 1 and sum(now.values()) == sum(
                    owners.values()) and now.keys() < owners.keys())
                first.send_signal(stop)
                await first.wait()
                await taken_over  # the survivor holds every lease of the account
                sink.gate.set()
                await until_all(notices, {f"acme delivered {e}" for e in wanted})
    finally:
        sink.gate.set()
        await stop_all(procs)

    delivered = {e["eventId"] for h in sink.hits if h.answered == 200 for e in events_of(h)}
    assert delivered == wanted  # nothing lost (what the stopped one had in flight: again)
    assert _in_order(sink)
    assert await redis.xlen(dead_letter_key("acme")) == 0
