"""``smsgw worker``: run the arq worker with our settings."""

from __future__ import annotations

from arq.worker import Worker

from worker.config import Settings
from worker.jobs import arq_settings


def run_worker(settings: Settings, *, health_port: int | None, burst: bool = False) -> int:
    """Run until SIGTERM/SIGINT (or, with ``burst``, until the queue is empty)."""
    kwargs = arq_settings(settings)
    worker = Worker(**kwargs, burst=burst)
    worker.run()
    return 0
