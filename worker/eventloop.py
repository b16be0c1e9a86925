"""The event loop of the worker and the simulator: uvloop where it is installed.

Measured on the 2-core VM (e2e_bench, single messages, CPU per message relative to the
unchanged load generator, three alternating pairs): the worker spends ~10% less CPU on uvloop
and the simulator ~5% less. The gateway stays on asyncio's own loop: aiohttp's server cost ~5%
*more* CPU per request on uvloop in the same kind of comparison (send_bench --no-worker).
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
