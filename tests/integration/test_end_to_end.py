"""The whole path over real parts: HTTP → Redis + arq → worker → SMPP TCP → simulator → receipt.

A real redis-server, the simulator over TCP, an arq worker and the aiohttp gateway listening on
a real port. The test waits on the store's transition events, never on a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from arq.worker import Worker
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.keys_cli import create_key
from tests.integration.support import stop_in_process_worker
from worker.config import Settings, settings_from_dict
from worker.jobs import arq_settings
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.store import EVENTS, Store, parse_events

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    base: str
    key: str
    redis: Redis
    sim: Simulator
    settings: Settings


def stack_settings(redis_url: str, sim_port: int) -> Settings:
    """Settings for a stack with one simulator channel called 'sim'."""
    return settings_from_dict(
        {
            "gateway": {"default_channel": "sim", "default_country_code": "27"},
            "channels": {"sim": {"port": sim_port, "system_id": "smsgw", "password": "secret",
                                 "binds": 2, "window": 20, "enquire_link_seconds": 5}},
        },
        {"REDIS_URL": redis_url},
        source="test",
    )


@pytest.fixture
async def stack(redis_url: str, redis: Redis) -> AsyncIterator[Stack]:
    sim = Simulator(SimulatorConfig(accounts={"smsgw": "secret"}))
    await sim.start()
    settings = stack_settings(redis_url, sim.port)
    worker = Worker(**arq_settings(settings), handle_signals=False)
    worker_task = asyncio.create_task(worker.async_run())
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    key = await create_key(Store(redis, 3600), name="t", account="acme",
                           roles=frozenset({"Client"}), channels=None)
    try:
        yield Stack(f"http://127.0.0.1:{port}", key, redis, sim, settings)
    finally:
        await runner.cleanup()
        await stop_in_process_worker(worker, worker_task)
        await sim.stop()


async def _subscribed(redis: Redis) -> AsyncIterator[tuple[str, str]]:
    """Transition events; the subscription is confirmed before the first item is awaited."""
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(EVENTS)
        while (await pubsub.get_message(timeout=5))["type"] != "subscribe":
            pass
        yield "", "subscribed"
        async for msg in pubsub.listen():
            if msg["type"] == "message":
                for event in parse_events(msg["data"]):
                    yield event


async def test_a_posted_sms_is_submitted_and_its_receipt_makes_it_delivered(stack: Stack) -> None:
    body = {"Messages": [{"channel": "sim", "to": "+27 82 000-0001", "content": "Hello",
                          "clientMessageId": "e2e-1"}]}
    headers = {"Authorization": f"Bearer {stack.key}"}
    listener = Redis.from_url(stack.settings.redis_url)
    async with aiohttp.ClientSession(headers=headers) as http, asyncio.timeout(30):
        events = _subscribed(listener)
        assert await anext(events) == ("", "subscribed")
        async with http.post(f"{stack.base}/communication/message/smpp/sms", json=body) as resp:
            assert resp.status == 200
            reply = await resp.json()
        (msg,) = reply["messages"]
        assert msg["accepted"] is True and msg["to"] == "27820000001"
        api_id = msg["apiMessageId"]
        while (await anext(events)) != (api_id, "delivered"):
            pass
        await events.aclose()

        async with http.get(f"{stack.base}/communication/message/smpp/sms/{api_id}") as resp:
            assert resp.status == 200
            by_id = (await resp.json())["messages"][0]
        async with http.get(f"{stack.base}/communication/message/smpp/sms",
                            params={"clientMessageId": "e2e-1"}) as resp:
            assert resp.status == 200
            by_cmid = (await resp.json())["messages"]
    await listener.aclose()

    assert by_id["status"] == "delivered"
    assert [t["status"] for t in by_id["transitions"]] == [
        "queued", "sending", "submitted", "delivered"]
    assert by_id["acceptedAt"] and by_id["submittedAt"] and by_id["doneAt"]
    assert by_id["smscMessageIds"] and by_id["receiptStat"] == "DELIVRD"
    assert [m["apiMessageId"] for m in by_cmid] == [api_id]
    (submit,) = stack.sim.submits
    assert submit.destination == "27820000001"
