"""Readiness follows reality: a real redis-server that is stopped, a simulator that goes away.

The worker runs its real startup and shutdown (``arq_settings``' hooks, health server included)
against a private redis-server process, so stopping Redis is stopping that process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.app import create_app
from worker.config import Settings, settings_from_dict
from worker.dispatch import Dispatcher
from worker.health import HealthAddress
from worker.jobs import arq_settings
from worker.redisproc import RedisProcess
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator

pytestmark = pytest.mark.integration


@dataclass
class Worker:
    base: str
    dispatcher: Dispatcher
    redis: RedisProcess
    sim: Simulator
    settings: Settings


def _settings(redis_url: str, sim_port: int) -> Settings:
    return settings_from_dict(
        {"channels": {"sim": {"port": sim_port, "system_id": "smsgw", "password": "secret",
                              "binds": 1, "window": 5, "reconnect_min_seconds": 0.05,
                              "reconnect_max_seconds": 0.2}}},
        {"REDIS_URL": redis_url}, source="test")


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    redis = RedisProcess()
    url = await redis.start()
    sim = Simulator(SimulatorConfig(accounts={"smsgw": "secret"}))
    await sim.start()
    settings = _settings(url, sim.port)
    hooks = arq_settings(settings, health=HealthAddress("127.0.0.1", 0))
    ctx: dict[str, Any] = {}
    await hooks["on_startup"](ctx)
    try:
        yield Worker(f"http://127.0.0.1:{ctx['health'].port}", ctx["dispatcher"], redis, sim,
                     settings)
    finally:
        await hooks["on_shutdown"](ctx)
        await sim.stop()
        await redis.stop()


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as resp:
        return resp.status, await resp.json()


async def test_worker_health_goes_from_ready_to_not_ready_when_redis_stops(worker: Worker) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        assert await worker.dispatcher.pools["sim"].wait_ready(10)
        status, body = await _get(http, worker.base + "/health/ready")
        assert (status, body["status"], body["redis"]) == (200, "ready", "ok")
        assert body["channels"]["sim"]["ready"] is True

        await worker.redis.stop()

        status, body = await _get(http, worker.base + "/health/ready")
        assert (status, body["status"]) == (503, "not ready")
        assert body["redis"].startswith("redis: ")
        assert body["channels"]["sim"]["ready"] is True  # the bind itself is still up
        status, body = await _get(http, worker.base + "/health/live")
        assert (status, body) == (200, {"status": "live"})


async def test_worker_is_not_ready_with_the_channel_reason_when_its_smsc_goes_away(
    worker: Worker,
) -> None:
    pool = worker.dispatcher.pools["sim"]
    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        assert await pool.wait_ready(10)
        sessions = [b.session for b in pool.binds() if b.session is not None]
        assert sessions

        await worker.sim.stop()
        for session in sessions:
            await session.wait_closed()

        status, body = await _get(http, worker.base + "/health/ready")
        assert (status, body["status"], body["redis"]) == (503, "not ready", "ok")
        sim = body["channels"]["sim"]
        assert (sim["ready"], sim["bindsUp"], sim["binds"]) == (False, 0, 1)
        assert "no transmitting bind up" in sim["reason"]


async def test_gateway_health_goes_from_ready_to_not_ready_when_redis_stops() -> None:
    redis = RedisProcess()
    url = await redis.start()
    runner = web.AppRunner(create_app(_settings(url, 2775)))
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            assert await _get(http, base + "/health/ready") == (200, {"status": "ready"})

            await redis.stop()

            status, body = await _get(http, base + "/health/ready")
            assert (status, body["status"]) == (503, "not ready")
            assert body["reason"].startswith("redis: ")
            assert await _get(http, base + "/health/live") == (200, {"status": "live"})
    finally:
        await runner.cleanup()
        await redis.stop()
