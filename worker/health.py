"""A worker's health and metrics, on a small HTTP port of its own.

    GET /health/live   200 while the process answers
    GET /health/ready  200 when Redis answers and every channel has a bind up; else 503 with
                       the reason per channel
    GET /metrics       Prometheus text format

Opened in the worker's startup and closed first in its shutdown, so a draining worker reports
not ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from redis.asyncio import Redis

from worker.metrics import WorkerMetrics
from worker.smpp.pool import ChannelPool
from worker.store import REDIS_ERRORS, Store

READY_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class HealthAddress:
    """Where to serve: host and port (0: any free port, see :attr:`HealthServer.port`)."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Probe:
    """What the health views look at: the worker's Redis client, store, pools and metrics."""

    redis: Redis
    store: Store
    pools: Mapping[str, ChannelPool]
    metrics: WorkerMetrics


PROBE = web.AppKey("probe", Probe)


def channel_state(pool: ChannelPool) -> dict[str, Any]:
    """Readiness of one channel, with the reason when not ready."""
    binds = pool.binds()
    up = sum(1 for b in binds if b.session is not None and b.session.bound)
    state: dict[str, Any] = {"ready": pool.bound > 0, "bindsUp": up, "binds": len(binds)}
    if pool.bound == 0:
        state["reason"] = ("no transmitting bind up yet (connecting, or the SMSC refuses)"
                           if pool.serving else
                           "no bind slot: every slot of this channel is held by other workers")
    return state


async def redis_reason(redis: Redis) -> str:
    """'' when Redis answers a PING in time, else why not."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await redis.ping()
    except TimeoutError:
        return f"redis: no answer in {READY_TIMEOUT:g}s"
    except REDIS_ERRORS as exc:
        return f"redis: {exc}"
    return ""


async def live(request: web.Request) -> web.Response:
    """The process answers."""
    return web.json_response({"status": "live"})


async def ready(request: web.Request) -> web.Response:
    """Redis reachable and at least one bind up per channel."""
    probe = request.app[PROBE]
    reason = await redis_reason(probe.redis)
    channels = {name: channel_state(pool) for name, pool in probe.pools.items()}
    ok = not reason and all(c["ready"] for c in channels.values())
    body: dict[str, Any] = {"status": "ready" if ok else "not ready",
                            "redis": reason or "ok", "channels": channels}
    return web.json_response(body, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; queue depths are read now."""
    probe = request.app[PROBE]
    await probe.metrics.refresh(probe.store, list(probe.pools))
    return web.Response(body=probe.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def health_app(probe: Probe) -> web.Application:
    """The health application (no access log: probes every few seconds are noise)."""
    app = web.Application()
    app[PROBE] = probe
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app


class HealthServer:
    """The running health server. Create with :meth:`start`, stop with :meth:`close`."""

    def __init__(self, runner: web.AppRunner) -> None:
        self._runner = runner

    @classmethod
    async def start(cls, address: HealthAddress, probe: Probe) -> HealthServer:
        """Listen on ``address``."""
        runner = web.AppRunner(health_app(probe), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, address.host, address.port).start()
        except OSError:
            await runner.cleanup()
            raise
        return cls(runner)

    @property
    def port(self) -> int:
        """The port actually listened on."""
        return int(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Stop listening."""
        await self._runner.cleanup()
