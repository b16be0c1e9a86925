"""The cluster slot check: a test with ``one_slot_per_script_run`` fails when a run of a store
script (lua/*.lua; not a test's own EVAL) touched keys of several Redis Cluster slots. Every
test of tests/integration/store/ has it, and the store-level modules that drive the scripts
through the Store (receipts, callbacks, MO, refs, fail-over) ask for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.integration.store.slots import Run, script_runs
from worker.store import ARQ_JOB_PREFIX, ARQ_QUEUE, CONFIG

# Keys a script still touches outside its slot, by script: what a later step moves onto the
# script's tag (docs/cluster.md). Every other key of a run must hash to one slot.
# The wake-up job is arq's (its names are arq's), and the API key's limits are on the
# configuration's tag.
_ADMITTING = (ARQ_JOB_PREFIX, ARQ_QUEUE, CONFIG + "bucket:", CONFIG + "quota:")
ELSEWHERE: dict[str, tuple[str, ...]] = {
    "accept": _ADMITTING,
    "store_part": _ADMITTING,  # an SMPP client's concatenated part: admits like accept
}


def strays(run: Run) -> dict[int, set[bytes]]:
    """The run's keys by slot, leaving out those its script may still touch elsewhere; more
    than one slot is a script Redis Cluster would refuse."""
    skip = tuple(s.encode() for s in ELSEWHERE.get(run.script, ()))
    kept = Run(run.script, [k for k in run.keys if not k.startswith(skip)])
    return {slot: set(keys) for slot, keys in kept.slots().items()}


@pytest.fixture
async def one_slot_per_script_run(redis_url: str) -> AsyncIterator[None]:
    redis = Redis.from_url(redis_url)
    try:
        async with script_runs(redis) as runs:
            yield
    finally:
        await redis.aclose()
    crossing = {r.script: by_slot for r in runs
                if r.script != "?" and len(by_slot := strays(r)) > 1}
    assert crossing == {}, "script runs touching keys of several cluster slots"
