"""Crash safety with real worker processes: SIGKILL loses nothing, SIGTERM doubles nothing.

2,000 messages, each to its own number, go through the real gateway into a real redis-server;
a worker process is killed (or terminated) mid-run and another takes over. The simulator's
record of every submit_sm is the judge of loss and duplicates.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.keys_cli import create_key
from worker.config import load_settings
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.store import EVENTS, Store

pytestmark = pytest.mark.integration

TOTAL = 2000
BATCH = 100
BINDS, WINDOW = 2, 50


def _write_config(path: Path, redis_url: str, sim_port: int) -> dict[str, str]:
    path.write_text(
        f'redis_url = "{redis_url}"\n[gateway]\ndefault_channel = "sim"\n'
        f'[worker]\ndrain_seconds = 10\n'
        f'[channels.sim]\nport = {sim_port}\nsystem_id = "smsgw"\npassword = "secret"\n'
        f"binds = {BINDS}\nwindow = {WINDOW}\nenquire_link_seconds = 5\n"
    )
    return {**os.environ, "SMSGW_CONFIG": str(path), "REDIS_URL": redis_url}


async def _start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "worker", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


async def _final_states(redis: Redis, ready: asyncio.Event, done: asyncio.Event,
                        finals: dict[str, str]) -> None:
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(EVENTS)
        while (await pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
            pass
        ready.set()
        async for msg in pubsub.listen():
            if msg["type"] != "message":
                continue
            api_id, _, status = msg["data"].decode().partition(" ")
            if status in ("delivered", "undelivered", "expired", "rejected", "failed"):
                finals[api_id] = status
                if len(finals) >= TOTAL:
                    done.set()
                    return


async def _post_all(base: str, key: str) -> list[str]:
    ids: list[str] = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        for start in range(0, TOTAL, BATCH):
            body = {"Messages": [{"to": f"+2782{n:07d}", "content": f"crash test {n}"}
                                 for n in range(start, start + BATCH)]}
            async with http.post(f"{base}/communication/message/smpp/sms", json=body) as resp:
                assert resp.status == 200
                ids += [m["apiMessageId"] for m in (await resp.json())["messages"]]
    return ids


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(accounts={"smsgw": "secret"}))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM])
async def test_a_worker_stopped_mid_run_loses_nothing_and_duplicates_within_bound(
    stop_signal: signal.Signals, redis_url: str, redis: Redis, sim: Simulator, tmp_path: Path,
) -> None:
    env = _write_config(tmp_path / "smsgw.toml", redis_url, sim.port)
    settings = load_settings(env)
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    key = await create_key(Store(redis, 3600), name="t", account="acme",
                           roles=frozenset({"Client"}), channels=None)
    finals: dict[str, str] = {}
    ready, done = asyncio.Event(), asyncio.Event()
    listener = Redis.from_url(redis_url)
    watcher = asyncio.create_task(_final_states(listener, ready, done, finals))
    first = second = None
    try:
        async with asyncio.timeout(90):
            await ready.wait()
            first = await _start_worker(env)
            ids = await _post_all(base, key)
            await sim.wait_for_submits(TOTAL // 4)
            first.send_signal(stop_signal)
            await first.wait()
            second = await _start_worker(env)
            await done.wait()
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.terminate()
                await proc.wait()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await listener.aclose()
        await runner.cleanup()

    assert set(finals) == set(ids) and set(finals.values()) == {"delivered"}
    per_number = Counter(s.destination for s in sim.submits)
    assert len(per_number) == TOTAL  # every message reached the SMSC
    duplicates = sum(n - 1 for n in per_number.values())
    if stop_signal == signal.SIGTERM:
        assert duplicates == 0
    else:
        assert duplicates <= BINDS * WINDOW
