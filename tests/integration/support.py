"""Shared pieces of the integration tests: a simulator, accepting messages, real worker
processes, and waiting (on the store's transition events, never on a sleep) for final states."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web
from arq.worker import Worker
from redis.asyncio import Redis

from worker.cancel import cancel_and_wait
from worker.config import Channel, Settings
from worker.dispatch import Dispatcher, DispatchSettings
from worker.encoding import analyse
from worker.ids import new_id
from worker.jobs import job_payload
from worker.lifecycle import FINAL
from worker.routing import RouteTable
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.store import EVENTS, NewMessage, Store, now_ms, parse_events

ACCOUNTS = {"smsgw": "secret"}


@asynccontextmanager
async def running_simulator(**config: Any) -> AsyncIterator[Simulator]:
    """A simulator with one account (smsgw/secret) and the given behaviours."""
    sim = Simulator(SimulatorConfig(accounts=ACCOUNTS, **config))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def accept_messages(
    store: Store, items: Sequence[tuple[str, str]], *, chunk: int = 100,
    channel: str = "sim", accepted_at: int | None = None,
) -> list[str]:
    """Store (to, text) messages as the gateway does, one job per chunk; their ids.
    ``accepted_at`` (epoch ms) makes them as old as if accepted then, without waiting."""
    ids: list[str] = []
    for start in range(0, len(items), chunk):
        msgs = [NewMessage(api_id=new_id(), account="acme", channel=channel, to=to,
                           content=text, encoding=analyse(text).encoding,
                           segments=analyse(text).segments)
                for to, text in items[start:start + chunk]]
        batch = [m.api_id for m in msgs]
        await store.accept(msgs, window_seconds=60, job_id=new_id(),
                           job_payload=job_payload(batch, now_ms()), job_expiry_seconds=600,
                           accepted_at=accepted_at)
        ids += batch
    return ids


def numbers(count: int) -> list[str]:
    """``count`` distinct South African mobile numbers."""
    return [f"2782{n:07d}" for n in range(count)]


async def wait_final(redis_url: str, ids: Sequence[str],
                     wanted: Collection[str] = FINAL) -> dict[str, str]:
    """Wait until every message is final (or in one of ``wanted``); their statuses. Subscribes
    before it looks, so no transition can slip between the look and the wait."""
    redis = Redis.from_url(redis_url)
    statuses: dict[str, str] = {}
    try:
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(EVENTS)
            while (await pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
                pass
            for rec in await Store(redis, 3600).get(ids):
                if rec is not None and rec.status in wanted:
                    statuses[rec.api_id] = rec.status
            waiting = set(ids) - set(statuses)
            while waiting:
                msg = await pubsub.get_message(timeout=5)
                if msg is None or msg["type"] != "message":
                    continue
                for api_id, status in parse_events(msg["data"]):
                    if api_id in waiting and status in wanted:
                        statuses[api_id] = status
                        waiting.discard(api_id)
    finally:
        await redis.aclose()
    return statuses


def channel_env(path: Path, redis_url: str, sim_port: int, **channel: Any) -> dict[str, str]:
    """Write a config with channel 'sim' at the simulator; the environment of a process."""
    fields = {"port": sim_port, "system_id": "smsgw", "password": "secret", **channel}
    body = "".join(f"{k} = {_toml(v)}\n" for k, v in fields.items())
    path.write_text(f"[gateway]\ndefault_channel = \"sim\"\n[worker]\ndrain_seconds = 10\n"
                    f"[channels.sim]\n{body}")
    return {**os.environ, "SMSGW_CONFIG": str(path), "REDIS_URL": redis_url}


def _toml(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value).lower() \
        if isinstance(value, bool) else str(value)


async def start_worker(env: dict[str, str], log: IO[bytes] | None = None
                       ) -> asyncio.subprocess.Process:
    """A real `smsgw worker` process (output to ``log``, else discarded)."""
    out = log if log is not None else asyncio.subprocess.DEVNULL
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "worker", env=env, stdout=out, stderr=out)


STOP_SECONDS = 30.0  # a SIGTERMed worker drains for a few seconds at most


async def stop_in_process_worker(worker: Worker, run: asyncio.Task[None]) -> None:
    """Stop an arq worker running in this process (``run`` is its ``async_run()`` task): no new
    jobs, the running ones finished, then ``close()`` (which drains the dispatcher). close()
    alone cancels jobs still running and then re-raises that cancellation, skipping the drain
    and leaving its connections open, when a job was mid-way."""
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    async with asyncio.timeout(STOP_SECONDS):
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    await worker.close()


async def stop_all(procs: Sequence[asyncio.subprocess.Process | None]) -> None:
    """Terminate whatever is still running; one that outlives SIGTERM by ``STOP_SECONDS`` is
    killed and reported (a worker that does not stop is a bug, not a reason to hang)."""
    stuck = []
    for proc in procs:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(STOP_SECONDS):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
                stuck.append(proc.pid)
    assert not stuck, f"processes {stuck} did not exit within {STOP_SECONDS} s of SIGTERM"


@asynccontextmanager
async def running_dispatcher(
    store: Store, channels: Mapping[str, Channel], settings: DispatchSettings, *,
    routes: RouteTable | None = None, first_beat: bool = True, heartbeat: bool = True,
    reaper: bool = True, bound_within: float | None = None,
) -> AsyncIterator[Dispatcher]:
    """A dispatcher wired as the arq worker wires it: binds started, its first heartbeat
    written (a worker claims nothing before one; ``first_beat=False`` leaves it to the heartbeat
    task), the heartbeat and reaper tasks running; with ``bound_within``, every channel bound
    before it yields. On the way out the tasks stop, then the dispatcher drains."""
    d = Dispatcher(store, channels, f"test-{new_id()}", settings, routes=routes)
    d.start()
    background: list[asyncio.Task[None]] = []
    try:
        if first_beat:
            await d.beat()
        if heartbeat:
            background.append(asyncio.create_task(d.heartbeat_forever()))
        if reaper:
            background.append(asyncio.create_task(d.reap_forever()))
        if bound_within is not None:
            for pool in d.pools.values():
                assert await pool.wait_ready(bound_within)
        yield d
    finally:
        await cancel_and_wait(background)
        await d.drain(2.0)


@asynccontextmanager
async def serving_gateway(settings: Settings) -> AsyncIterator[str]:
    """The gateway app of ``settings`` on a free port of 127.0.0.1: its base URL."""
    from gateway.app import create_app  # the worker's tests need no gateway

    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def send_messages(base: str, key: str, *messages: dict[str, str]) -> list[dict[str, Any]]:
    """POST ``messages`` to the send operation of the gateway at ``base`` with ``key``: the
    answers, one per recipient (the request itself must succeed)."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http, \
            http.post(base + "/communication/message/smpp/sms",
                      json={"Messages": list(messages)}) as resp:
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["messages"])


async def message_status(base: str, key: str, api_id: str) -> dict[str, Any]:
    """GET the status of the message ``api_id`` from the gateway at ``base`` with ``key``:
    its one SMPPMessageStatus (the request itself must succeed)."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http, \
            http.get(f"{base}/communication/message/smpp/sms/{api_id}") as resp:
        assert resp.status == 200, await resp.text()
        (status,) = (await resp.json())["messages"]
        return dict(status)
