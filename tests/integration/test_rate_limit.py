"""Per-key limits over a real redis-server: a token bucket counting recipients, shared by every
gateway process, and a daily quota. Refused requests store nothing.

Rates are chosen so that refill during a test is far below what an assertion depends on (one
token per second against requests that need five or more), so no assertion rests on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.auth import KeySpec, issue_key
from worker.config import settings_from_dict
from worker.redisproc import free_port
from worker.store import Store, msg_key, quota_key_prefix

pytestmark = pytest.mark.integration

SMS = "/communication/message/smpp/sms"
CONFIG = """
[gateway]
default_channel = "sim"
default_country_code = "27"

[channels.sim]
port = 2775
system_id = "s"
password = "p"
"""


def _to(n: int, start: int = 0) -> str:
    return ",".join(f"+2782{i:07d}" for i in range(start, start + n))


async def _key(redis: Redis, account: str = "acme", **limits: int) -> str:
    secret, _ = await issue_key(Store(redis, 3600), KeySpec(name="t", account=account, **limits))
    return secret


async def _post(http: aiohttp.ClientSession, base: str, key: str, to: str,
                **extra: str) -> tuple[int, Any, Any]:
    body = {"Messages": [{"to": to, "content": "hi", **extra}]}
    async with http.post(base + SMS, json=body,
                         headers={"Authorization": f"Bearer {key}"}) as resp:
        return resp.status, await resp.json(), resp.headers


async def _stored(redis: Redis) -> int:
    return len([k async for k in redis.scan_iter(msg_key("*"), count=1000)])


@pytest.fixture
async def base(redis_url: str) -> AsyncIterator[str]:
    settings = settings_from_dict(
        {"gateway": {"default_channel": "sim", "default_country_code": "27"},
         "channels": {"sim": {"port": 2775, "system_id": "s", "password": "p"}}},
        {"REDIS_URL": redis_url}, source="test")
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_the_bucket_counts_recipients_not_requests_and_a_refusal_stores_nothing(
    base: str, redis: Redis
) -> None:
    key = await _key(redis, rate=1, burst=10)
    async with aiohttp.ClientSession() as http:
        code, body, _ = await _post(http, base, key, _to(8))
        assert code == 200 and all(m["accepted"] for m in body["messages"])
        code, body, headers = await _post(http, base, key, _to(6, start=100))
    assert code == 429
    assert body["ResponseStatus"]["ErrorCode"] == "RateLimitExceeded"
    assert 1 <= int(headers["Retry-After"]) <= 6  # four missing tokens at one per second
    assert await _stored(redis) == 8


async def test_a_request_larger_than_the_burst_is_refused_whole_with_400(
    base: str, redis: Redis
) -> None:
    key = await _key(redis, rate=100, burst=5)
    async with aiohttp.ClientSession() as http:
        code, body, _ = await _post(http, base, key, _to(6))
    assert code == 400 and body["ResponseStatus"]["Errors"][0]["FieldName"] == "Messages"
    assert await _stored(redis) == 0


async def test_each_key_has_its_own_bucket(base: str, redis: Redis) -> None:
    first, second = await _key(redis, rate=1, burst=5), await _key(redis, rate=1, burst=5)
    async with aiohttp.ClientSession() as http:
        assert (await _post(http, base, first, _to(5)))[0] == 200
        assert (await _post(http, base, first, _to(5, 10)))[0] == 429
        assert (await _post(http, base, second, _to(5, 20)))[0] == 200


async def test_the_daily_quota_has_its_own_error_code_and_counts_recipients(
    base: str, redis: Redis
) -> None:
    key = await _key(redis, daily_quota=3)
    async with aiohttp.ClientSession() as http:
        assert (await _post(http, base, key, _to(2)))[0] == 200
        code, body, headers = await _post(http, base, key, _to(2, 10))
        assert code == 429 and body["ResponseStatus"]["ErrorCode"] == "QuotaExceeded"
        assert 1 <= int(headers["Retry-After"]) <= 86400  # until the next UTC midnight
        assert (await _post(http, base, key, _to(1, 20)))[0] == 200  # the last one fits
        assert (await _post(http, base, key, _to(1, 30)))[0] == 429
    assert await _stored(redis) == 3


async def _post_many(http: aiohttp.ClientSession, base: str, key: str,
                     messages: list[dict[str, str]]) -> tuple[int, Any]:
    async with http.post(base + SMS, json={"Messages": messages},
                         headers={"Authorization": f"Bearer {key}"}) as resp:
        return resp.status, await resp.json()


def _with_cmids(*cmids: str) -> list[dict[str, str]]:
    return [{"to": f"+278200000{i:02d}", "content": "hi", "clientMessageId": cmid}
            for i, cmid in enumerate(cmids)]


async def _quota_used(redis: Redis) -> int:
    (counter,) = await redis.keys(quota_key_prefix("*") + "*")
    return int(await redis.get(counter))


async def test_an_idempotent_retry_costs_no_quota_and_gets_its_first_ids_at_the_limit(
    base: str, redis: Redis
) -> None:
    key = await _key(redis, daily_quota=3)
    async with aiohttp.ClientSession() as http:
        code, first = await _post_many(http, base, key, _with_cmids("a", "b"))
        assert code == 200
        ids = [m["apiMessageId"] for m in first["messages"]]
        for _ in range(5):
            code, again = await _post_many(http, base, key, _with_cmids("a", "b"))
            assert code == 200, again
            assert [m["apiMessageId"] for m in again["messages"]] == ids
        assert await _quota_used(redis) == 2
        # One new message next to the two answered from the index: it alone costs quota.
        code, mixed = await _post_many(http, base, key, _with_cmids("a", "b", "c"))
        assert code == 200 and [m["apiMessageId"] for m in mixed["messages"]][:2] == ids
        assert await _quota_used(redis) == 3
        code, full = await _post_many(http, base, key, _with_cmids("a", "b", "c"))  # at limit
        assert code == 200 and [m["apiMessageId"] for m in full["messages"]] == \
            [m["apiMessageId"] for m in mixed["messages"]]
        assert (await _post_many(http, base, key, _with_cmids("d")))[0] == 429
    assert await _quota_used(redis) == 3 and await _stored(redis) == 3


async def test_an_idempotent_retry_costs_no_rate_and_no_burst(base: str, redis: Redis) -> None:
    key = await _key(redis, rate=1, burst=2)
    async with aiohttp.ClientSession() as http:
        code, first = await _post_many(http, base, key, _with_cmids("a", "b"))
        assert code == 200
        for _ in range(3):  # the bucket is empty: only answers from the index can pass
            code, again = await _post_many(http, base, key, _with_cmids("a", "b"))
            assert code == 200 and again["messages"] == first["messages"]
        code, body = await _post_many(http, base, key, _with_cmids("x", "y", "z"))
        assert code == 400 and body["ResponseStatus"]["ErrorCode"] == "TooMany"  # over burst


async def test_a_retry_reusing_a_client_message_id_for_other_content_costs_nothing(
    base: str, redis: Redis
) -> None:
    key = await _key(redis, daily_quota=1)
    async with aiohttp.ClientSession() as http:
        assert (await _post_many(http, base, key, _with_cmids("a")))[0] == 200
        changed = [{**_with_cmids("a")[0], "content": "other"}]
        code, body = await _post_many(http, base, key, changed)
        assert code == 200 and body["messages"][0]["accepted"] is False
    assert await _quota_used(redis) == 1


async def test_invalid_messages_cost_no_tokens(base: str, redis: Redis) -> None:
    key = await _key(redis, rate=1, burst=2)
    async with aiohttp.ClientSession() as http:
        code, body, _ = await _post(http, base, key, "not a number")
        assert code == 200 and body["messages"][0]["accepted"] is False
        assert (await _post(http, base, key, _to(2)))[0] == 200


async def test_the_rate_limit_holds_across_two_gateway_processes_sharing_one_redis(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    config = tmp_path / "smsgw.toml"
    config.write_text(CONFIG)
    env = {**os.environ, "REDIS_URL": redis_url, "SMSGW_CONFIG": str(config)}
    key = await _key(redis, rate=1, burst=10)
    async with _gateway(env) as one, _gateway(env) as two, aiohttp.ClientSession() as http:
        assert (await _post(http, one, key, _to(10)))[0] == 200  # the whole burst, on one
        code, body, headers = await _post(http, two, key, _to(5, 100))  # the other knows
        assert code == 429 and int(headers["Retry-After"]) >= 1
        assert body["ResponseStatus"]["ErrorCode"] == "RateLimitExceeded"
        assert (await _post(http, one, key, _to(5, 200)))[0] == 429
    assert await _stored(redis) == 10


@contextlib.asynccontextmanager
async def _gateway(env: dict[str, str]) -> AsyncIterator[str]:
    """``python -m gateway gateway`` on a free port; its base URL once it answers."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "gateway", "--host", "127.0.0.1", "--port", str(port),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        await _ready(base, proc)
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _ready(base: str, proc: asyncio.subprocess.Process) -> None:
    # Another process: poll its readiness (bounded) until it answers.
    async with asyncio.timeout(20), aiohttp.ClientSession() as http:
        while proc.returncode is None:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(base + "/health/ready") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise AssertionError(f"gateway exited with {proc.returncode}")
