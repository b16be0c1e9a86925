"""``smsgw worker``: run the arq worker with our settings, surviving Redis outages."""

from __future__ import annotations

import asyncio
import logging
import random

import redis.exceptions
from arq.worker import Worker

from worker import eventloop
from worker.cancel import accept_cancellation
from worker.config import Settings
from worker.health import HealthAddress
from worker.jobs import arq_settings
from worker.store import REDIS_ERRORS
from worker.supervise import backoff

log = logging.getLogger("smsgw.worker")


def run_worker(
    settings: Settings, *, health_port: int | None, health_host: str = "0.0.0.0",
    burst: bool = False,
) -> int:
    """Run until SIGTERM/SIGINT (or, with ``burst``, until the queue is empty).

    ``health_port``: serve /health and /metrics there (default: ``worker.health_port``)."""
    health = HealthAddress(health_host, health_port) if health_port else None
    eventloop.run(serve(settings, burst=burst, health=health))
    return 0


async def serve(
    settings: Settings, *, burst: bool = False, health: HealthAddress | None = None
) -> None:
    """arq's loop, restarted after a Redis outage instead of letting the process die."""
    worker = Worker(**arq_settings(settings, health=health), burst=burst)
    # arq's signal handlers cancel ``main_task``: make that this task, so SIGTERM ends us.
    worker.main_task = asyncio.current_task()
    rng = random.Random()
    attempt = 0
    try:
        while True:
            try:
                await worker.main()
                return
            except (*REDIS_ERRORS, redis.exceptions.RedisError) as exc:
                attempt += 1
                delay = backoff(attempt, 0.2, 5.0, rng)
                log.warning("redis unavailable (%s); resuming in %.1fs", exc, delay)
                await asyncio.sleep(delay)
    except asyncio.CancelledError:
        accept_cancellation()  # SIGTERM is how we stop: the drain below must not see it
        log.info("worker stopping")
    finally:
        await worker.close()
