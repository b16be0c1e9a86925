"""Every script compiles in Redis, and has a test here that calls it alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.integration.store.slots import script_runs
from worker.store import scripts

pytestmark = pytest.mark.integration


async def test_every_script_compiles(redis: Redis) -> None:
    for name in scripts.names():
        assert await redis.script_load(scripts.source(name)), name


def test_every_script_is_called_by_a_test_of_its_own() -> None:
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*_script*.py"))
    assert [n for n in scripts.names() if f'"{n}"' not in tests] == []


async def test_the_slot_check_hears_every_key_a_script_touches(redis: Redis) -> None:
    # What the store directory's fixture relies on (conftest.py): KEYS and the keys a script
    # builds itself are heard, and keys with one hash tag share a slot.
    body = "redis.call('SET', KEYS[1], 1) redis.call('HSET', ARGV[1], 'f', 2)"
    async with script_runs(redis) as runs:
        await redis.eval(body, 1, "{a}:x", "{b}:y")
        await redis.eval(body, 1, "{a}:x", "{a}:y")
    assert [sorted(r.keys) for r in runs] == [[b"{a}:x", b"{a}:x", b"{b}:y"],
                                              [b"{a}:x", b"{a}:x", b"{a}:y"]]
    assert [len(r.slots()) for r in runs] == [2, 1]
