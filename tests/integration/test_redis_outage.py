"""Redis briefly unavailable: a real worker process rides it out, nothing is lost."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis

from worker.encoding import analyse
from worker.ids import new_id
from worker.jobs import job_payload
from worker.lifecycle import FINAL
from worker.redisproc import RedisProcess
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.store import EVENTS, NewMessage, Store, now_ms

pytestmark = pytest.mark.integration

TOTAL = 1000
BINDS, WINDOW = 2, 20


async def _accept(store: Store) -> list[str]:
    ids: list[str] = []
    for start in range(0, TOTAL, 100):
        msgs = [NewMessage(api_id=new_id(), account="acme", channel="sim", to=f"2782{n:07d}",
                           content="outage", encoding="gsm7",
                           segments=analyse("outage").segments)
                for n in range(start, start + 100)]
        chunk = [m.api_id for m in msgs]
        await store.accept(msgs, window_seconds=60, job_id=new_id(),
                           job_payload=job_payload(chunk, now_ms()), job_expiry_seconds=600)
        ids += chunk
    return ids


async def test_a_worker_survives_a_redis_restart_and_every_message_ends_delivered(
    tmp_path: Path,
) -> None:
    sim = Simulator(SimulatorConfig(accounts={"smsgw": "secret"}, ack_delay=0.002))
    await sim.start()
    server = RedisProcess(appendonly=True, fsync="always")
    url = await server.start()
    config = tmp_path / "smsgw.toml"
    config.write_text(
        f'[channels.sim]\nport = {sim.port}\nsystem_id = "smsgw"\npassword = "secret"\n'
        f"binds = {BINDS}\nwindow = {WINDOW}\n"
    )
    env = {**os.environ, "SMSGW_CONFIG": str(config), "REDIS_URL": url}
    log = (tmp_path / "worker.log").open("wb")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "worker", env=env, stdout=log, stderr=log)
    try:
        async with asyncio.timeout(60):
            redis = Redis.from_url(url)
            ids = await _accept(Store(redis, 3600))
            await redis.aclose()
            await sim.wait_for_submits(TOTAL // 5)
            await server.restart()  # connections drop; data survives (AOF, fsync always)
            try:
                async with asyncio.timeout(30):
                    await _wait_all_final(url, ids)
            except TimeoutError:
                raise AssertionError(f"not final in time: {await _statuses(url, ids)}") from None
        assert worker.returncode is None  # no crash, no crash loop
    finally:
        if worker.returncode is None:
            worker.terminate()
            await worker.wait()
        await server.stop()
        await sim.stop()
        log.close()
    per_number = Counter(s.destination for s in sim.submits)
    assert len(per_number) == TOTAL
    assert sum(n - 1 for n in per_number.values()) <= BINDS * WINDOW


async def _statuses(url: str, ids: list[str]) -> Counter[str]:
    redis = Redis.from_url(url)
    records = await Store(redis, 3600).get(ids)
    await redis.aclose()
    return Counter(r.status if r else "missing" for r in records)


async def _wait_all_final(url: str, ids: list[str]) -> None:
    redis = Redis.from_url(url)
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(EVENTS)
        while (await pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
            pass
        records = await Store(redis, 3600).get(ids)
        waiting = {r.api_id for r in records if r is not None and r.status not in FINAL}
        assert all(r is not None for r in records)  # nothing accepted was lost
        assert {r.status for r in records if r and r.api_id not in waiting} <= {"delivered"}
        while waiting:
            msg = await pubsub.get_message(timeout=5)
            if msg is not None and msg["type"] == "message":
                api_id, _, status = msg["data"].decode().partition(" ")
                if api_id in waiting and status in FINAL:
                    assert status == "delivered"
                    waiting.discard(api_id)
    await redis.aclose()
