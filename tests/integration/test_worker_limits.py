"""Shared limits across workers: the channel TPS, and concatenation references per number."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.support import (
    accept_messages,
    numbers,
    running_simulator,
    start_worker,
    stop_all,
)
from worker.simulator.server import Simulator
from worker.store import EVENTS, Store, msg_key, parse_events

pytestmark = pytest.mark.integration


def _env(tmp_path: Path, redis_url: str, port: int, max_jobs: int = 10,
         **channel: Any) -> dict[str, str]:
    """Environment of a real worker process with channel 'sim' at the simulator."""
    fields = {"port": port, "system_id": "smsgw", "password": "secret",
              "enquire_link_seconds": 5, **channel}
    body = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
    config = tmp_path / "smsgw.toml"
    config.write_text(f"[worker]\nmax_jobs = {max_jobs}\n[channels.sim]\n{body}")
    return {**os.environ, "SMSGW_CONFIG": str(config), "REDIS_URL": redis_url}


async def _run_until_final(redis_url: str, env: dict[str, str], workers: int,
                           start: Callable[[], Any], count: int) -> None:
    """Start ``workers`` real worker processes, call ``start`` and wait for ``count`` final
    states; the processes are stopped (SIGTERM, drained) before it returns."""
    listener = Redis.from_url(redis_url)
    procs = [await start_worker(env) for _ in range(workers)]
    try:
        async with listener.pubsub() as pubsub, asyncio.timeout(60):
            await pubsub.subscribe(EVENTS)
            await start()
            finals = 0
            async for msg in pubsub.listen():
                if msg["type"] == "message":
                    finals += sum(status in ("delivered", "failed", "undelivered")
                                  for _, status in parse_events(msg["data"]))
                    if finals == count:
                        break
    finally:
        await stop_all(procs)
        await listener.aclose()


async def test_two_workers_together_stay_within_the_channel_tps(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    tps = 100
    # The SMSC enforces the same TPS: anything faster would be answered ESME_RTHROTTLED.
    async with running_simulator(max_tps=tps) as sim:
        await _tps_run(redis_url, redis, sim, tps, tmp_path)


async def _tps_run(redis_url: str, redis: Redis, sim: Simulator, tps: int,
                   tmp_path: Path) -> None:
    count = 250
    # One job at a time per worker, so the five jobs spread over both workers.
    env = _env(tmp_path, redis_url, sim.port, max_jobs=1, tps=tps, binds=2, window=20)
    store = Store(redis, 3600)

    async def start() -> None:
        for chunk in range(0, count, 50):
            await accept_messages(store, [(to, "hi") for to in numbers(count)[chunk:chunk + 50]])

    await _run_until_final(redis_url, env, 2, start, count)
    times = sorted(s.time for s in sim.submits)
    assert len(times) == count
    assert [s for s in sim.submits if s.status == 0x58] == []
    assert times[-1] - times[0] >= (count - tps // 10) / tps * 0.95
    records = await store.get(await _ids_of(redis))
    assert len({r.fields["worker"] for r in records if r}) == 2  # both took part


async def _ids_of(redis: Redis) -> list[str]:
    return [k.decode().rsplit(":", 1)[1] async for k in redis.scan_iter(msg_key("*"))]


async def test_concurrent_two_part_messages_to_one_number_never_share_a_live_reference(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    # Receipts come late, so more than 256 messages await theirs; a reference is free once
    # every part is answered, so they are never what a message waits for.
    async with running_simulator(receipt_delay=0.5) as sim:
        await _two_part_run(redis_url, redis, sim, tmp_path)


async def _two_part_run(redis_url: str, redis: Redis, sim: Simulator, tmp_path: Path) -> None:
    count = 300
    text = "x" * 200  # two GSM segments
    env = _env(tmp_path, redis_url, sim.port, binds=2, window=50, split_mode="udh8")
    store = Store(redis, 3600)

    async def start() -> None:
        await accept_messages(store, [("27820000001", text)] * count, chunk=count)

    await _run_until_final(redis_url, env, 1, start, count)
    records = [r for r in await store.get(await _ids_of(redis)) if r is not None]
    assert len(records) == count and {r.status for r in records} == {"delivered"}
    assert not [r for r in records if any("Deferred" in d for _, _, d in r.transitions())]
    message_of = {sid: r.api_id for r in records for sid in r.fields["smsc_ids"].split(",")}
    arrivals: dict[int, list[str]] = defaultdict(list)  # ref -> its parts' messages, in order
    for submit in sim.submits:
        assert submit.udh is not None
        arrivals[submit.udh.ref].append(message_of[submit.message_id])
    for order in arrivals.values():
        # A message takes a reference only once the one before has every part answered, so
        # the parts of two messages never interleave under one reference: [a, a, b, b, a, a].
        runs = [m for m, _ in itertools.groupby(order)]
        assert len(runs) == len(set(runs))
