"""The channel's bind count holds across workers: three workers, two binds, and a takeover."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.integration.support import ACCOUNTS, channel_env, start_worker, stop_all
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator

pytestmark = pytest.mark.integration


async def test_three_workers_share_two_binds_and_a_waiting_worker_takes_over(
    redis_url: str, tmp_path: Path
) -> None:
    sim = Simulator(SimulatorConfig(accounts=ACCOUNTS))
    await sim.start()
    env = channel_env(tmp_path / "smsgw.toml", redis_url, sim.port, binds=2,
                      reconnect_min_seconds=0.2)
    workers = [await start_worker(env) for _ in range(3)]
    try:
        async with asyncio.timeout(60):
            await sim.wait_bound("smsgw", 2)
            # Kill every worker that holds a bind; the third must take a slot over.
            holders = [w for w in workers if _has_bind(w.pid, sim.port)]
            assert 1 <= len(holders) <= 2
            for w in holders:
                w.send_signal(signal.SIGKILL)
                await w.wait()
            await sim.wait_bound("smsgw", 0)
            await sim.wait_bound("smsgw", 2)
    finally:
        await stop_all(workers)
        await sim.stop()
    assert sim.max_bound["smsgw"] == 2


def _has_bind(pid: int, port: int) -> bool:
    """Whether process ``pid`` has a TCP connection to the simulator's port (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed while we listed them
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == port and fields[9] in inodes:
            return True
    return False
