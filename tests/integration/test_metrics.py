"""Metrics move as messages flow: scrape, send, scrape — over real HTTP, Redis, arq and SMPP.

Both processes' /metrics are read before and after; the test asserts on differences, so it does
not depend on what earlier traffic (or the process collectors) put there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from arq.worker import Worker
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from gateway.app import SEND_PATH, create_app
from gateway.keys_cli import create_key
from worker.config import settings_from_dict
from worker.dispatch import PACE_IN_PLACE
from worker.health import HealthAddress
from worker.jobs import arq_settings
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.store import EVENTS, NewMessage, Store, parse_events

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Stack:
    gateway: str
    worker: str
    key: str
    redis_url: str
    sim: Simulator


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def stack(redis_url: str, redis: Redis) -> AsyncIterator[Stack]:
    sim = Simulator(SimulatorConfig(accounts={"smsgw": "secret"}))
    await sim.start()
    settings = settings_from_dict(
        {"gateway": {"default_channel": "sim", "default_country_code": "27"},
         "channels": {"sim": {"port": sim.port, "system_id": "smsgw", "password": "secret",
                              "binds": 1, "window": 7}}},
        {"REDIS_URL": redis_url}, source="test")
    hooks = arq_settings(settings, health=HealthAddress("127.0.0.1", 0))
    started = asyncio.Event()

    async def on_startup(ctx: dict[str, Any]) -> None:
        await hooks["on_startup"](ctx)
        started.set()

    worker = Worker(**{**hooks, "on_startup": on_startup}, handle_signals=False)
    worker_task = asyncio.create_task(worker.async_run())
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    key = await create_key(Store(redis, 3600), name="t", account="acme",
                           roles=frozenset({"Client"}), channels=None)
    try:
        async with asyncio.timeout(10):
            await started.wait()
            assert await worker.ctx["dispatcher"].pools["sim"].wait_ready(10)
        yield Stack(f"http://127.0.0.1:{runner.addresses[0][1]}",
                    f"http://127.0.0.1:{worker.ctx['health'].port}", key, redis_url, sim)
    finally:
        await runner.cleanup()
        await worker.close()
        worker_task.cancel()
        await asyncio.gather(worker_task, return_exceptions=True)
        await sim.stop()


async def scrape(http: aiohttp.ClientSession, base: str) -> tuple[str, Samples]:
    async with http.get(base + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        text = await resp.text()
    return text, parse(text)


async def test_metrics_move_as_a_message_flows_from_http_to_its_receipt(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.key}"}
    message = {"channel": "sim", "to": "+27 82 000-0042", "content": "Hello metrics",
               "clientMessageId": "m-1"}
    listener = Redis.from_url(stack.redis_url)
    async with aiohttp.ClientSession(headers=headers) as http, asyncio.timeout(30):
        _, gw0 = await scrape(http, stack.gateway)
        _, wk0 = await scrape(http, stack.worker)

        async with listener.pubsub() as pubsub:
            await pubsub.subscribe(EVENTS)
            assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
            async with http.post(stack.gateway + SEND_PATH, json={"Messages": [message]}) as r:
                assert r.status == 200
                (sent,) = (await r.json())["messages"]
            api_id = sent["apiMessageId"]
            async for event in pubsub.listen():
                # a receipt that beat its submit response is settled in the same script run
                # as the submit: one event message then carries both lines
                if event["type"] == "message" and (
                        (api_id, "delivered") in parse_events(event["data"])):
                    break
        await stack.sim.wait_for_receipts_acked(1)
        # the same clientMessageId with other content: refused as a conflict
        conflict = {**message, "content": "Something else"}
        async with http.post(stack.gateway + SEND_PATH, json={"Messages": [conflict]}) as r:
            assert r.status == 200
            assert (await r.json())["messages"][0]["accepted"] is False
        # a message that fails validation
        invalid = {**message, "to": "not a number", "clientMessageId": "other"}
        async with http.post(stack.gateway + SEND_PATH, json={"Messages": [invalid]}) as r:
            assert r.status == 200

        gw_text, gw1 = await scrape(http, stack.gateway)
        wk_text, wk1 = await scrape(http, stack.worker)
    await listener.aclose()

    def gw(name: str, **labels: str) -> float:
        return value(gw1, name, **labels) - value(gw0, name, **labels)

    def wk(name: str, **labels: str) -> float:
        return value(wk1, name, **labels) - value(wk0, name, **labels)

    send = {"route": SEND_PATH, "method": "POST"}
    assert gw("smsgw_http_requests_total", **send, status="200") == 3
    assert gw("smsgw_http_request_duration_seconds_count", **send) == 3
    assert gw("smsgw_http_requests_total", route="/metrics", method="GET", status="200") == 1
    assert gw("smsgw_messages_accepted_total", channel="sim", door="http") == 1
    assert gw("smsgw_messages_rejected_total", reason="conflict") == 1
    assert gw("smsgw_messages_rejected_total", reason="invalid") == 1

    assert wk("smsgw_messages_submitted_total", channel="sim") == 1
    assert wk("smsgw_submit_response_seconds_count", channel="sim") == 1
    assert wk("smsgw_receipts_total", channel="sim", state="delivered") == 1
    # matched, or held when it overtook the recording of its submit_sm_resp (then applied)
    assert sum(wk("smsgw_receipts_correlated_total", channel="sim", result=r)
               for r in ("matched", "held")) == 1
    assert wk("smsgw_submit_to_receipt_seconds_count", channel="sim") == 1
    assert value(wk1, "smsgw_bind_up", channel="sim", bind="0", kind="tx") == 1
    assert value(wk1, "smsgw_bind_window_in_use", channel="sim", bind="0") == 0
    assert value(wk1, "smsgw_bind_window_size", channel="sim") == 7
    assert value(wk1, "smsgw_pending_messages", channel="sim") == 0
    assert ("smsgw_queue_depth", frozenset({("queue", "arq")})) in wk1
    assert value(wk1, "smsgw_redis_up") == 1
    # bounded labels: never a message id or a phone number
    for text in (gw_text, wk_text):
        assert api_id not in text and "27820000042" not in text


async def test_worker_metrics_count_failures_by_code_and_throttled_responses(
    redis_url: str, redis: Redis,
) -> None:
    # Destinations starting 2799 are refused with ESME_RINVDSTADR (permanent); 2798 with
    # ESME_RTHROTTLED (transient: retried later).
    sim = Simulator(SimulatorConfig(accounts={"smsgw": "secret"},
                                    error_prefixes={"2799": 0x0B, "2798": 0x58}))
    await sim.start()
    settings = settings_from_dict(
        {"channels": {"sim": {"port": sim.port, "system_id": "smsgw", "password": "secret"}}},
        {"REDIS_URL": redis_url}, source="test")
    hooks = arq_settings(settings, health=HealthAddress("127.0.0.1", 0))
    ctx: dict[str, Any] = {}
    await hooks["on_startup"](ctx)
    try:
        dispatcher = ctx["dispatcher"]
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            assert await dispatcher.pools["sim"].wait_ready(10)
            base = f"http://127.0.0.1:{ctx['health'].port}"
            _, before = await scrape(http, base)
            ids = await _store_messages(redis_url, ["27990000001", "27980000001"])
            await dispatcher.send(ids)
            _, after = await scrape(http, base)
    finally:
        await hooks["on_shutdown"](ctx)
        await sim.stop()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("smsgw_submit_failures_total", channel="sim", code="0x0000000B",
                 outcome="failed") == 1
    assert delta("smsgw_submit_failures_total", channel="sim", code="0x00000058",
                 outcome="retry") == 1
    # throttled: resent in place a few times, then back to the queue
    assert delta("smsgw_throttled_responses_total", channel="sim") == 1 + PACE_IN_PLACE
    assert delta("smsgw_submit_response_seconds_count", channel="sim") == 2 + PACE_IN_PLACE
    assert delta("smsgw_messages_submitted_total", channel="sim") == 0
    # the throttled one waits for its retry in the pending index
    assert value(after, "smsgw_pending_messages", channel="sim") == 1


async def _store_messages(redis_url: str, numbers: list[str]) -> list[str]:
    """Accept messages straight into the store, as the gateway would (no arq worker here)."""
    client = Redis.from_url(redis_url)
    try:
        store = Store(client, 3600)
        new = [NewMessage(api_id=f"id{i}", account="acme", channel="sim", to=n, content="x",
                          encoding="GSM7", segments=1) for i, n in enumerate(numbers)]
        results = await store.accept(new, window_seconds=60, job_id="j1", job_payload=b"",
                                     job_expiry_seconds=60)
        return [r.api_id for r in results]
    finally:
        await client.aclose()
