"""Redis briefly unavailable: a real worker process rides it out, nothing is lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.integration.support import (
    accept_messages,
    channel_env,
    numbers,
    running_simulator,
    start_worker,
    stop_all,
    wait_final,
)
from worker.redisproc import RedisProcess
from worker.store import Store

pytestmark = pytest.mark.integration

TOTAL = 1000
BINDS, WINDOW = 2, 20


async def test_a_worker_survives_a_redis_restart_and_every_message_ends_delivered(
    tmp_path: Path,
) -> None:
    server = RedisProcess(appendonly=True, fsync="always")
    url = await server.start()
    async with running_simulator(ack_delay=0.002) as sim:
        env = channel_env(tmp_path / "smsgw.toml", url, sim.port, binds=BINDS, window=WINDOW)
        log = (tmp_path / "worker.log").open("wb")
        worker = await start_worker(env, log)
        try:
            async with asyncio.timeout(60):
                redis = Redis.from_url(url)
                ids = await accept_messages(Store(redis, 3600),
                                            [(n, "outage") for n in numbers(TOTAL)])
                await redis.aclose()
                await sim.wait_for_submits(TOTAL // 5)
                await server.restart()  # connections drop; data survives (AOF, fsync always)
                finals = await wait_final(url, ids)
            assert worker.returncode is None  # no crash, no crash loop
        finally:
            await stop_all([worker])
            await server.stop()
            log.close()
    assert set(finals) == set(ids) and set(finals.values()) == {"delivered"}
    per_number = Counter(s.destination for s in sim.submits)
    assert len(per_number) == TOTAL
    assert sum(n - 1 for n in per_number.values()) <= BINDS * WINDOW
