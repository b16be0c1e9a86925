"""The event loop of every long-running process (worker, simulator, gateway, SMPP server):
uvloop where it is installed.

Measured on the 2-core VM (e2e_bench, single messages, CPU per message relative to the
unchanged load generator, three alternating pairs): the worker spends ~10% less CPU on uvloop
and the simulator ~5% less. The gateway once cost ~5% more per request on uvloop (send_bench
--no-worker, an older aiohttp); with aiohttp 3.14, e2e_bench batch 1 measured its CPU per
message ~23% lower with uvloop and the session-6 cuts together (README, Benchmarks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when it is importable (not on Windows)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    result: T = uvloop.run(main)
    return result
