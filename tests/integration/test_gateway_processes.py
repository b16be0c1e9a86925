"""`smsgw gateway --processes N`: several processes share the port and all stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway.keys_cli import create_key
from tests.integration.test_dev_mode import _alive, _descendants
from worker.redisproc import free_port
from worker.store import Store, msg_key

pytestmark = pytest.mark.integration


async def test_two_gateway_processes_share_the_port_and_stop_together(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    config = tmp_path / "smsgw.toml"
    config.write_text('[gateway]\ndefault_channel = "sim"\n[channels.sim]\n')
    key = await create_key(Store(redis, 3600), name="t", account="acme",
                           roles=frozenset({"Client"}), channels=None)
    port = free_port()
    env = {**os.environ, "SMSGW_CONFIG": str(config), "REDIS_URL": redis_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "gateway", "--host", "127.0.0.1", "--port", str(port),
        "--processes", "2", env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(30):
            ready = await _wait_ready(port)
            children = _descendants(proc.pid)
            assert len(children) == 2 and ready
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
                for n in range(20):  # fresh connections: the kernel spreads them
                    async with http.post(
                        f"http://127.0.0.1:{port}/communication/message/smpp/sms",
                        json={"Messages": [{"to": f"+2782000{n:04d}", "content": "x"}]},
                        headers={"Connection": "close"},
                    ) as resp:
                        assert resp.status == 200
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert [pid for pid in children if _alive(pid)] == []
    assert len([k async for k in redis.scan_iter(msg_key("*"))]) == 20


async def _wait_ready(port: int) -> bool:
    """Poll (bounded by the caller's timeout) until the gateway answers /health/ready."""
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{port}/health/ready") as resp:
                    if resp.status == 200:
                        return True
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)  # another process starting up: nothing to await on
