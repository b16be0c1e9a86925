"""Crash safety with real worker processes: SIGKILL loses nothing, SIGTERM doubles nothing.

2,000 messages, each to its own number, go through the real gateway into a real redis-server;
a worker process is killed (or terminated) mid-run and another takes over. The simulator's
record of every submit_sm is the judge of loss and duplicates.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.keys_cli import create_key
from tests.integration.support import (
    channel_env,
    running_simulator,
    start_worker,
    stop_all,
    wait_final,
)
from worker.config import load_settings
from worker.store import Store

pytestmark = pytest.mark.integration

TOTAL = 2000
BATCH = 100
BINDS, WINDOW = 2, 50


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


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM])
async def test_a_worker_stopped_mid_run_loses_nothing_and_duplicates_within_bound(
    stop_signal: signal.Signals, redis_url: str, redis: Redis, tmp_path: Path,
) -> None:
    async with running_simulator() as sim:
        env = channel_env(tmp_path / "smsgw.toml", redis_url, sim.port, binds=BINDS,
                          window=WINDOW, enquire_link_seconds=5)
        runner = web.AppRunner(create_app(load_settings(env)))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        key = await create_key(Store(redis, 3600), name="t", account="acme",
                               roles=frozenset({"Client"}), channels=None)
        first = second = None
        try:
            async with asyncio.timeout(120):
                first = await start_worker(env)
                ids = await _post_all(f"http://127.0.0.1:{runner.addresses[0][1]}", key)
                await sim.wait_for_submits(TOTAL // 4)
                first.send_signal(stop_signal)
                await first.wait()
                second = await start_worker(env)
                finals = await wait_final(redis_url, ids)
        finally:
            await stop_all([first, second])
            await runner.cleanup()

    assert set(finals) == set(ids) and set(finals.values()) == {"delivered"}
    per_number = Counter(s.destination for s in sim.submits)
    assert len(per_number) == TOTAL  # every message reached the SMSC
    duplicates = sum(n - 1 for n in per_number.values())
    if stop_signal == signal.SIGTERM:
        assert duplicates == 0
    else:
        assert duplicates <= BINDS * WINDOW
