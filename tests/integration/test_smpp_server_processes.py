"""Real ``smsgw smpp-server`` processes: a client's receiver bind on another process than its
transmitter gets the receipts, and a process killed with SIGKILL while submits are in flight
loses none it answered and sends none twice."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.esme import Esme
from tests.integration.support import (
    channel_env,
    numbers,
    running_simulator,
    start_worker,
    stop_all,
    wait_final,
)
from tests.integration.test_smpp_server import add_user, in_thread

pytestmark = pytest.mark.integration


async def start_smpp_server(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, int]:
    """A real smpp-server process on a free port, and that port (read from its ready line)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "smpp-server", "--port", "0", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        while b"smpp-server listening on" not in (line := await proc.stdout.readline()):
            assert line, "smpp-server exited during start-up"
    return proc, int(line.split()[-1].decode().rsplit(":", 1)[1])


async def test_receipts_reach_a_receiver_bind_on_another_process(
    redis_url: str, redis: Redis, tmp_path: Path,
) -> None:
    async with running_simulator() as sim:
        env = channel_env(tmp_path / "smsgw.toml", redis_url, sim.port)
        password = await add_user(redis)
        procs: list[asyncio.subprocess.Process | None] = []
        tx = rx = None
        try:
            procs.append(await start_worker(env))
            first, first_port = await start_smpp_server(env)
            second, second_port = await start_smpp_server(env)
            procs += [first, second]
            rx = Esme(second_port).connect()
            assert await in_thread(rx.bind, "receiver", "acme1", password) == 0
            tx = Esme(first_port).connect()
            assert await in_thread(tx.bind, "transmitter", "acme1", password) == 0
            answers = await in_thread(tx.submit_all,
                                      [(f"+{n}", b"across") for n in numbers(100)], 50)
            receipts = await in_thread(rx.read_receipts, 100)
        finally:
            for esme in (tx, rx):
                if esme is not None:
                    await in_thread(esme.close)
            await stop_all(procs)
    assert sorted(r.receipted_id for r in receipts) == sorted(i for _, i in answers)


async def test_a_killed_smpp_server_loses_no_answered_submit_and_sends_none_twice(
    redis_url: str, redis: Redis, tmp_path: Path,
) -> None:
    async with running_simulator() as sim:
        env = channel_env(tmp_path / "smsgw.toml", redis_url, sim.port, window=50)
        password = await add_user(redis)
        procs: list[asyncio.subprocess.Process | None] = []
        esme = None
        targets = numbers(1000)
        try:
            procs.append(await start_worker(env))
            server, port = await start_smpp_server(env)
            procs.append(server)
            esme = Esme(port).connect()
            assert await in_thread(esme.bind, "transceiver", "acme1", password) == 0
            await in_thread(esme.submit_all, [(f"+{n}", b"k") for n in targets[:500]], 50)
            for n in targets[500:]:  # in flight, unanswered, when the process dies
                await in_thread(esme.submit, f"+{n}", b"k")
            server.send_signal(signal.SIGKILL)
            await server.wait()
            while await in_thread(esme.read) is not None:  # answers that made it out
                pass
            answered = [i for status, i in esme.answers.values() if status == 0]
            async with asyncio.timeout(90):
                finals = await wait_final(redis_url, answered)
        finally:
            if esme is not None:
                await in_thread(esme.close)
            await stop_all(procs)
    assert len(answered) >= 500
    assert set(finals.values()) == {"delivered"}
    sent = Counter(s.destination for s in sim.submits)
    assert max(sent.values()) == 1  # nothing twice
    assert len(sent) >= len(answered)  # every answered one reached the SMSC
