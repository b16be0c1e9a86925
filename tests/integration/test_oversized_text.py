"""A stored text the worker cannot cut into at most 255 parts (a record from before the limit,
or a channel's split mode changed since) fails at once instead of staying in ``sending``."""

from __future__ import annotations

import asyncio

import pytest
from arq.worker import Worker
from redis.asyncio import Redis

from tests.integration.support import accept_messages, stop_in_process_worker, wait_final
from tests.smsc_double import ScriptedSmsc
from worker.config import settings_from_dict
from worker.jobs import arq_settings
from worker.store import Store

pytestmark = pytest.mark.integration


async def test_a_text_of_more_than_255_parts_fails_without_reaching_the_smsc(
    redis_url: str, redis: Redis,
) -> None:
    store = Store(redis, 3600)
    async with ScriptedSmsc() as smsc:
        settings = settings_from_dict(
            {"channels": {"sim": {"port": smsc.port, "system_id": "smsgw",
                                  "password": "secret"}}},
            {"REDIS_URL": redis_url}, source="test")
        worker = Worker(**arq_settings(settings), handle_signals=False)
        task = asyncio.create_task(worker.async_run())
        try:
            (api_id,) = await accept_messages(store, [("27820000001", "x" * (153 * 255 + 1))])
            async with asyncio.timeout(30):
                assert await wait_final(redis_url, [api_id]) == {api_id: "failed"}
        finally:
            await stop_in_process_worker(worker, task)
        assert smsc.submits == []
    (record,) = await store.get([api_id])
    assert record is not None and record.fields.get("err_code") == "TooLong"
