"""Failover over real TCP and a real redis-server: two simulated SMSCs, dispatchers wired as
the worker wires them. A routed message moves to its route's next channel when its channel
answers a status the route lists, or has had no bind up anywhere for the grace period; it
moves whole, each channel at most once, and the record shows each move with its reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.support import ACCOUNTS, numbers, running_dispatcher, wait_final
from worker.config import Settings, settings_from_dict
from worker.dispatch import Dispatcher, DispatchSettings
from worker.encoding import analyse
from worker.ids import new_id
from worker.jobs import job_payload
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.smpp import pdu
from worker.store import NewMessage, Store, now_ms

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_slot_per_script_run")]

WAIT = 90.0


def _settings(ports: dict[str, int], routes: list[dict[str, Any]], **channel: Any) -> Settings:
    return settings_from_dict(
        {"channels": {name: {"port": port, "system_id": "smsgw", "password": "secret",
                             "binds": 1, "window": 50, "reconnect_min_seconds": 0.05,
                             "reconnect_max_seconds": 0.2, **channel}
                      for name, port in ports.items()},
         "routes": routes},
        {}, source="test")


@asynccontextmanager
async def dispatcher(store: Store, settings: Settings,
                     grace: float = 1.0) -> AsyncIterator[Dispatcher]:
    fast = {n: replace(c, bind_refused_retry_seconds=0.05, response_timeout_seconds=1.0)
            for n, c in settings.channels.items()}
    async with running_dispatcher(
            store, fast,
            DispatchSettings(wait_bind_seconds=0.05, reap_interval_seconds=0.05,
                             heartbeat_ms=200, failover_grace_seconds=grace,
                             failover_check_seconds=0.1),
            routes=settings.routes) as d:
        yield d


async def accept_routed(store: Store, tos: Sequence[str], route: str, chain: str,
                        text: str = "hello") -> list[str]:
    """Store messages as the gateway does once routing chose ``chain``'s first channel."""
    ids: list[str] = []
    info = analyse(text)
    for start in range(0, len(tos), 500):
        msgs = [NewMessage(api_id=new_id(), account="acme", channel=chain.split(",")[0],
                           to=to, content=text, encoding=info.encoding,
                           segments=info.segments, route=route, chain=chain)
                for to in tos[start:start + 500]]
        await store.accept(msgs, window_seconds=60, job_id=new_id(),
                           job_payload=job_payload([m.api_id for m in msgs], now_ms()),
                           job_expiry_seconds=600)
        ids += [m.api_id for m in msgs]
    return ids


async def wait_status(redis_url: str, ids: Sequence[str], wanted: set[str]) -> None:
    """Until every message is in one of ``wanted`` (on the store's events, no polling)."""
    async with asyncio.timeout(WAIT):
        await wait_final(redis_url, ids, wanted)


async def test_a_status_the_route_lists_moves_the_message_to_the_next_channel(
    redis: Redis, redis_url: str
) -> None:
    store = Store(redis, 3600)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(Simulator(SimulatorConfig(
            accounts=ACCOUNTS, error_prefixes={"2782": pdu.ESME_RINVDSTADR})))
        b = await stack.enter_async_context(Simulator(SimulatorConfig(accounts=ACCOUNTS)))
        settings = _settings({"a": a.port, "b": b.port},
                             [{"name": "za", "channels": ["a"], "fallbacks": ["b"],
                               "failover_statuses": [pdu.ESME_RINVDSTADR]}])
        await stack.enter_async_context(dispatcher(store, settings))
        tos = numbers(20)
        ids = await accept_routed(store, tos, "za", "a,b")
        await wait_status(redis_url, ids, {"delivered"})
    assert sorted(s.destination for s in a.submits) == sorted(tos)  # each tried once on a
    assert sorted(s.destination for s in b.submits) == sorted(tos)  # ...and sent once on b
    for record in await store.get(ids):
        assert record is not None
        assert (record.fields["channel"], record.fields["hop"]) == ("b", "1")
        moves = [d for s, _, d in record.transitions() if d.startswith("moved")]
        assert moves == ["moved a -> b: 0x0000000B ESME_RINVDSTADR"]


async def test_a_status_the_route_does_not_list_fails_the_message_where_it_is(
    redis: Redis, redis_url: str
) -> None:
    store = Store(redis, 3600)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(Simulator(SimulatorConfig(
            accounts=ACCOUNTS, error_prefixes={"2782": pdu.ESME_RINVDSTADR})))
        b = await stack.enter_async_context(Simulator(SimulatorConfig(accounts=ACCOUNTS)))
        settings = _settings({"a": a.port, "b": b.port},
                             [{"name": "za", "channels": ["a"], "fallbacks": ["b"],
                               "failover_statuses": [0x45]}])  # ESME_RSUBMITFAIL
        await stack.enter_async_context(dispatcher(store, settings))
        ids = await accept_routed(store, numbers(5), "za", "a,b")
        await wait_status(redis_url, ids, {"failed"})
    assert not b.submits


async def test_the_last_channel_of_the_chain_keeps_the_message(
    redis: Redis, redis_url: str
) -> None:
    store = Store(redis, 3600)
    async with AsyncExitStack() as stack:
        sims = [await stack.enter_async_context(Simulator(SimulatorConfig(
            accounts=ACCOUNTS, error_prefixes={"2782": pdu.ESME_RINVDSTADR}))) for _ in "ab"]
        settings = _settings({"a": sims[0].port, "b": sims[1].port},
                             [{"name": "za", "channels": ["a"], "fallbacks": ["b"],
                               "failover_statuses": [pdu.ESME_RINVDSTADR]}])
        await stack.enter_async_context(dispatcher(store, settings))
        ids = await accept_routed(store, numbers(3), "za", "a,b")
        await wait_status(redis_url, ids, {"failed"})
    assert [len(s.submits) for s in sims] == [3, 3]  # once each, never back to a
    for record in await store.get(ids):
        assert record is not None and record.fields["channel"] == "b"


async def test_an_smsc_lost_mid_run_moves_its_messages_after_the_grace_exactly_once(
    redis: Redis, redis_url: str
) -> None:
    store = Store(redis, 3600)
    count = 10_000
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(Simulator(SimulatorConfig(accounts=ACCOUNTS)))
        b = await stack.enter_async_context(Simulator(SimulatorConfig(accounts=ACCOUNTS)))
        # no receipts: an SMSC that vanishes takes its unsent receipts with it; accepted by
        # an SMSC ('submitted') is what this test counts
        settings = _settings({"a": a.port, "b": b.port},
                             [{"name": "za", "channels": ["a"], "fallbacks": ["b"]}],
                             registered_delivery=0)
        d = await stack.enter_async_context(dispatcher(store, settings, grace=1.0))
        tos = numbers(count)
        ids = await accept_routed(store, tos, "za", "a,b")
        async with asyncio.timeout(WAIT):
            await a.wait_for_submits(count // 5)
        await a.stop()  # mid-run: the rest of its queue moves to b once the grace is over
        await wait_status(redis_url, ids, {"submitted"})
        assert d.metrics.failovers.counts[("a", "no_bind")] > 0
    on_a = [s.destination for s in a.submits]
    on_b = [s.destination for s in b.submits]
    assert len(on_a) >= count // 5 and on_b
    assert sorted(on_a + on_b) == sorted(tos)  # every message once, on one SMSC
    moved = [r for r in await store.get(ids) if r is not None and r.fields["channel"] == "b"]
    assert len(moved) == len(on_b)
    assert all(any(d.startswith("moved a -> b: NoBind no bind up on any worker for 1 s")
                   for _, _, d in r.transitions()) for r in moved)
