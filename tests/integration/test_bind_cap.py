"""The channel's bind count holds across workers: three workers, two binds, and a takeover."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator

pytestmark = pytest.mark.integration


async def test_three_workers_share_two_binds_and_a_waiting_worker_takes_over(
    redis_url: str, tmp_path: Path
) -> None:
    sim = Simulator(SimulatorConfig(accounts={"smsgw": "secret"}))
    await sim.start()
    config = tmp_path / "smsgw.toml"
    config.write_text(
        f'[channels.sim]\nport = {sim.port}\nsystem_id = "smsgw"\npassword = "secret"\n'
        "binds = 2\nreconnect_min_seconds = 0.2\n"
    )
    env = {**os.environ, "SMSGW_CONFIG": str(config), "REDIS_URL": redis_url}
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "worker", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        for _ in range(3)
    ]
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
        for w in workers:
            if w.returncode is None:
                w.terminate()
                await w.wait()
        await sim.stop()
    assert sim.max_bound["smsgw"] == 2


def _has_bind(pid: int, port: int) -> bool:
    """Whether process ``pid`` has a TCP connection to the simulator's port (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == port and fields[9] in inodes:
            return True
    return False
