"""Every script compiles in Redis, and has a test here that calls it alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from worker.store import scripts

pytestmark = pytest.mark.integration


async def test_every_script_compiles(redis: Redis) -> None:
    for name in scripts.names():
        assert await redis.script_load(scripts.source(name)), name


def test_every_script_is_called_by_a_test_of_its_own() -> None:
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*_script*.py"))
    assert [n for n in scripts.names() if f'"{n}"' not in tests] == []
