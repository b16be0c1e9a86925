"""Redis with a replica and Sentinel: the primary is killed mid-traffic, nothing accepted is lost.

A real primary, a replica and a Sentinel (the redis-server binary in sentinel mode) on loopback,
the gateway in-process and a worker as its own process, both reaching Redis by a
``redis+sentinel://`` URL with ``replica_acks = 1``: every answered send is on the replica, so
the replica that Sentinel promotes has every accepted message, and each reaches a final state.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.exceptions as redis_errors
from aiohttp import web
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.keys_cli import create_key
from worker.config import Settings, settings_from_dict
from worker.lifecycle import FINAL
from worker.redisconn import redis_client
from worker.redisproc import RedisProcess, SentinelProcess
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.store import EVENTS, Store, parse_events

pytestmark = pytest.mark.integration

SEND = "/communication/message/smpp/sms"
PER_REQUEST = 10
AFTER_FAILOVER = 200  # messages accepted after the kill before the traffic stops


def _settings(url: str, sim_port: int, replica_acks: int, wait_ms: int) -> Settings:
    return settings_from_dict(
        {"replica_acks": replica_acks, "replica_ack_timeout_ms": wait_ms,
         "gateway": {"default_channel": "sim"},
         "channels": {"sim": {"port": sim_port, "system_id": "smsgw", "password": "secret",
                              "binds": 1, "window": 10}}},
        {"REDIS_URL": url}, source="test")


def _toml(settings: Settings) -> str:
    ch = settings.channels["sim"]
    return (f"replica_acks = {settings.replica_acks}\n"
            f"replica_ack_timeout_ms = {settings.replica_ack_timeout_ms}\n"
            f'[channels.sim]\nport = {ch.port}\nsystem_id = "smsgw"\npassword = "secret"\n'
            f"binds = {ch.binds}\nwindow = {ch.window}\n")


async def _gateway(settings: Settings) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def _send(
    http: aiohttp.ClientSession, base: str, n: int, answers: Counter[int],
    killing: asyncio.Event,
) -> list[str]:
    """POST one request of PER_REQUEST recipients; the apiMessageIds accepted."""
    body = {"Messages": [{"channel": "sim", "to": f"278{n + i:08d}", "content": "failover"}
                         for i in range(PER_REQUEST)]}
    async with http.post(base + SEND, json=body) as resp:
        answers[resp.status] += 1
        reply = await resp.json()
    if resp.status != 200:
        assert killing.is_set(), f"before the failover: {resp.status} {reply}"
        return []
    return [m["apiMessageId"] for m in reply["messages"] if m["accepted"]]


@pytest.fixture
async def replicated() -> AsyncIterator[tuple[RedisProcess, list[RedisProcess], SentinelProcess]]:
    """A primary, two replicas in sync (one to promote, one to acknowledge writes after), and
    a Sentinel that knows them all."""
    primary = RedisProcess()
    await primary.start()
    replicas = [RedisProcess(replica_of=primary.port) for _ in range(2)]
    try:
        for replica in replicas:
            await replica.start()
        direct = Redis.from_url(primary.url)
        await direct.set("synced", "1")
        assert await direct.wait(2, 20_000) == 2  # both replicas have caught up
        await direct.aclose()
        sentinel = SentinelProcess(primary.port, replicas=2)
        await sentinel.start()
        try:
            yield primary, replicas, sentinel
        finally:
            await sentinel.stop()
    finally:
        for replica in replicas:
            await replica.stop()
        await primary.stop()


async def test_every_accepted_message_reaches_a_final_state_across_a_failover(
    replicated: tuple[RedisProcess, list[RedisProcess], SentinelProcess], tmp_path: Path,
) -> None:
    primary, replicas, sentinel = replicated
    sim = Simulator(SimulatorConfig(accounts={"smsgw": "secret"}, ack_delay=0.002,
                                    receipt_delay=0.05))
    await sim.start()
    settings = _settings(sentinel.url, sim.port, replica_acks=1, wait_ms=2000)
    config = tmp_path / "smsgw.toml"
    config.write_text(_toml(settings))
    log = (tmp_path / "worker.log").open("wb")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "worker",
        env={**os.environ, "SMSGW_CONFIG": str(config), "REDIS_URL": sentinel.url},
        stdout=log, stderr=log)
    redis = redis_client(sentinel.url)
    key = await create_key(Store(redis, 3600), name="t", account="acme",
                           roles=frozenset({"Client"}), channels=None)
    runner, base = await _gateway(settings)
    accepted: list[str] = []
    answers: Counter[int] = Counter()
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http, \
                asyncio.timeout(90):
            killing = asyncio.Event()
            killed = asyncio.create_task(_kill_when_busy(sim, primary, killing))
            while not killing.is_set():  # before: every send is accepted
                accepted += await _send(http, base, len(accepted), answers, killing)
            await killed
            at_kill = len(accepted)
            for _ in range(1000):  # during and after the failover, until enough got through
                if len(accepted) >= at_kill + AFTER_FAILOVER:
                    break
                got = await _send(http, base, len(accepted), answers, killing)
                accepted += got
                if not got:
                    await asyncio.sleep(0.1)  # a client backing off while Redis fails over
            await _wait_all_final(redis, accepted)
        assert await _primary_port(sentinel) in {r.port for r in replicas}
        assert worker.returncode is None  # rode the failover out
    except BaseException:
        print((tmp_path / "worker.log").read_text()[-4000:])
        print(sentinel.output()[-4000:])
        raise
    finally:
        await runner.cleanup()
        if worker.returncode is None:
            worker.terminate()
            await worker.wait()
        await redis.aclose()
        await sim.stop()
        log.close()
    assert set(answers) <= {200, 503}, answers


async def _kill_when_busy(sim: Simulator, primary: RedisProcess, killing: asyncio.Event) -> None:
    """SIGKILL the primary once messages flow."""
    await sim.wait_for_submits(PER_REQUEST * 5)
    killing.set()
    await primary.kill()


async def _primary_port(sentinel: SentinelProcess) -> int:
    client = Redis(port=sentinel.port)
    host_port = await client.sentinel_get_master_addr_by_name(sentinel.service)
    await client.aclose()
    return int(host_port[1])


async def _wait_all_final(redis: Redis, ids: list[str]) -> None:
    """Every id has a record, and each ends delivered (waiting on transition events; the
    test's own connection may drop once more as Sentinel settles: look again then)."""
    waiting = set(ids)
    try:
        async with asyncio.timeout(60):
            while waiting:
                try:
                    await _wait_some_final(redis, waiting)
                except redis_errors.ConnectionError:
                    continue
    except TimeoutError:
        left = await Store(redis, 3600).get(sorted(waiting))
        raise AssertionError(
            f"not final: {Counter(r.status if r else 'gone' for r in left)}") from None


async def _wait_some_final(redis: Redis, waiting: set[str]) -> None:
    """Subscribe, then look: drop the final ones from ``waiting``, then follow events."""
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(EVENTS)
        while (await pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
            pass
        records = await Store(redis, 3600).get(sorted(waiting))
        missing = [r for r in records if r is None]
        assert not missing, f"{len(missing)} accepted messages lost in the failover"
        assert {r.status for r in records if r and r.status in FINAL} <= {"delivered"}
        waiting -= {r.api_id for r in records if r and r.status in FINAL}
        while waiting:
            msg = await pubsub.get_message(timeout=5)
            if msg is not None and msg["type"] == "message":
                for api_id, status in parse_events(msg["data"]):
                    if api_id in waiting and status in FINAL:
                        assert status == "delivered"
                        waiting.discard(api_id)


async def test_a_send_no_replica_confirms_is_refused_as_not_replicated_but_kept(
    redis_url: str, redis: Redis,
) -> None:
    settings = _settings(redis_url, 2775, replica_acks=1, wait_ms=50)  # a primary alone
    key = await create_key(Store(redis, 3600), name="t", account="acme",
                           roles=frozenset({"Client"}), channels=None)
    runner, base = await _gateway(settings)
    body = {"Messages": [{"channel": "sim", "to": "27820000001", "content": "hi",
                          "clientMessageId": "nr-1"}]}
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
            async with http.post(base + SEND, json=body) as resp:
                assert resp.status == 503 and resp.headers["Retry-After"] == "1"
                status = (await resp.json())["ResponseStatus"]
    finally:
        await runner.cleanup()
    assert status["ErrorCode"] == "NotReplicated"
    assert "0 of the 1" in status["Message"]
    (stored,) = await Store(redis, 3600).find_by_cmid("acme", "nr-1")
    assert stored.status == "queued"  # on the primary: it may yet be sent, as the answer says
