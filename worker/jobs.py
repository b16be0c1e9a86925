"""arq functions and worker wiring. Jobs carry message ids; state lives in the store."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from typing import Any

from arq.jobs import serialize_job

from worker.cancel import cancel_and_wait
from worker.config import Settings
from worker.dispatch import Dispatcher, DispatchSettings
from worker.health import HealthAddress, HealthServer, Probe
from worker.metrics import WorkerMetrics
from worker.redisconn import arq_redis_pool, arq_redis_settings, redis_client
from worker.store import ReplicaAcks, Store

log = logging.getLogger("smsgw.worker")

SEND_FUNCTION = "send_messages"
WAKE_FUNCTION = "wake"
WAKE_BUCKET_MS = 20
JOB_EXPIRY_SECONDS = 3600  # a wake-up job: the messages themselves never expire this way


def wake_job(now: int) -> tuple[str, bytes]:
    """(job id, payload) of the job the gateway enqueues inside its accept script.

    The job carries no ids: it wakes a worker to claim whatever is due. Every request in the
    same 20 ms shares one job id (arq keeps one job per id), so a burst of single-message
    requests costs a few jobs per second instead of one each; the messages themselves are
    already durable in the store's due index, where any worker's reaper also finds them.
    """
    return _wake_job(now // WAKE_BUCKET_MS)


@functools.lru_cache(maxsize=4)
def _wake_job(bucket: int) -> tuple[str, bytes]:
    # Built once per bucket (the payload is a pickle, as costly as a small request's parse).
    return (f"smsgw-wake:{bucket}",
            serialize_job(WAKE_FUNCTION, (), {}, None, bucket * WAKE_BUCKET_MS))


async def wake(ctx: dict[str, Any]) -> int:
    """arq job: claim and send what is due on this worker's channels."""
    dispatcher: Dispatcher = ctx["dispatcher"]
    return await dispatcher.drain_due()


def job_payload(ids: Sequence[str], enqueue_ms: int) -> bytes:
    """A job that names its messages (older gateways enqueued these; tools may still)."""
    return serialize_job(SEND_FUNCTION, (list(ids),), {}, None, enqueue_ms)


async def send_messages(ctx: dict[str, Any], ids: list[str]) -> int:
    """arq job: send the named messages that are still due; returns how many were claimed."""
    dispatcher: Dispatcher = ctx["dispatcher"]
    return await dispatcher.send(ids)


def worker_id() -> str:
    """A name unique to this process, for leases and logs."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def arq_settings(settings: Settings, *, health: HealthAddress | None = None) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker`` (also the shape of an arq WorkerSettings class).

    ``health``: where to serve /health and /metrics; by default ``worker.health_port`` on every
    interface, or nowhere when that is 0.
    """
    w = settings.worker
    if health is None and w.health_port:
        health = HealthAddress("0.0.0.0", w.health_port)

    async def startup(ctx: dict[str, Any]) -> None:
        if "dispatcher" in ctx:  # arq's loop restarted after a Redis outage: binds stay up
            return
        metrics = WorkerMetrics()
        redis = redis_client(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
        dispatcher = Dispatcher(
            Store(redis, settings.retention_seconds,
                  ReplicaAcks(settings.replica_acks, settings.replica_ack_timeout_ms)),
            settings.channels, worker_id(),
            DispatchSettings(retention_seconds=settings.retention_seconds,
                             failover_grace_seconds=w.failover_grace_seconds), metrics,
            routes=settings.routes,
        )
        dispatcher.start()
        metrics.watch(lambda: dispatcher.pools)
        if health is not None:
            ctx["health"] = await HealthServer.start(
                health, Probe(redis, dispatcher.store, dispatcher.pools, metrics))
        ctx.update(redis_client=redis, dispatcher=dispatcher, background=[
            asyncio.create_task(dispatcher.heartbeat_forever()),
            asyncio.create_task(dispatcher.reap_forever()),
        ])
        log.info("worker %s started with channels %s", dispatcher.worker_id,
                 ", ".join(settings.channels) or "(none)")

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "health" in ctx:  # first, so that a draining worker is no longer ready
            await ctx.pop("health").close()
        dispatcher: Dispatcher | None = ctx.get("dispatcher")
        if dispatcher is not None:
            await cancel_and_wait(ctx["background"])
            await dispatcher.drain(w.drain_seconds)
            await ctx["redis_client"].aclose()
        log.info("worker stopped")

    return {
        "functions": [wake, send_messages],
        "redis_settings": arq_redis_settings(settings.redis_url),
        "redis_pool": arq_redis_pool(settings.redis_url),  # None: arq connects by the above
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": w.max_jobs,
        "job_timeout": w.job_timeout_seconds,
        "keep_result": 0,
        "poll_delay": 0.05,
        # SIGTERM: stop picking jobs and let running ones finish before on_shutdown drains.
        "job_completion_wait": int(w.drain_seconds),
    }
