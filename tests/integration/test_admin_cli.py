"""``smsgw keys``: every subcommand round trips through a real redis-server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.auth import authenticate, hash_secret
from gateway.cli import build_parser
from gateway.errors import Unauthorized
from gateway.keys_cli import run_keys
from worker.config import settings_from_dict
from worker.store import CONFIG, Store, api_key_key

pytestmark = pytest.mark.integration


async def _keys(redis_url: str, capsys: pytest.CaptureFixture[str], *argv: str
                ) -> tuple[int, str, str]:
    capsys.readouterr()
    args = build_parser().parse_args(["keys", *argv])
    code = await run_keys(args, settings_from_dict({}, {"REDIS_URL": redis_url}, "test"))
    out, err = capsys.readouterr()
    return code, out, err


async def _works(redis: Redis, key: str) -> bool:
    try:
        await authenticate(Store(redis, 3600), {"Authorization": f"Bearer {key}"})
    except Unauthorized:
        return False
    return True


async def test_the_keys_cli_round_trips_create_list_show_disable_enable_rotate_delete(
    redis_url: str, redis: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await _keys(
        redis_url, capsys, "create", "--name", "shop", "--account", "kid",
        "--parent-account", "reseller", "--roles", "Client", "--channels", "sim,bulk",
        "--rate", "20", "--burst", "40", "--quota", "5000", "--expires", "30d")
    assert code == 0
    key = out.strip()
    assert key.startswith("sk_") and "\n" not in key and key not in err
    assert await _works(redis, key)

    code, out, _ = await _keys(redis_url, capsys, "list", "--json")
    (listed,) = json.loads(out)
    key_id = listed["id"]
    assert {k: listed[k] for k in ("name", "account", "parentAccount", "roles", "channels",
                                   "rate", "burst", "dailyQuota", "enabled")} == {
        "name": "shop", "account": "kid", "parentAccount": "reseller", "roles": ["Client"],
        "channels": ["bulk", "sim"], "rate": 20, "burst": 40, "dailyQuota": 5000,
        "enabled": True}
    assert listed["expiresAt"] and key not in out
    code, out, _ = await _keys(redis_url, capsys, "list")
    assert code == 0 and key_id in out and "reseller" in out

    code, out, _ = await _keys(redis_url, capsys, "show", key_id, "--json")
    assert code == 0 and json.loads(out)["lastUsedAt"]  # the authentication above

    assert (await _keys(redis_url, capsys, "disable", key_id))[0] == 0
    assert not await _works(redis, key)
    assert (await _keys(redis_url, capsys, "enable", key_id))[0] == 0
    assert await _works(redis, key)

    code, out, _ = await _keys(redis_url, capsys, "rotate", key_id)
    rotated = out.strip()
    assert code == 0 and rotated != key
    assert not await _works(redis, key) and await _works(redis, rotated)

    assert (await _keys(redis_url, capsys, "delete", key_id))[0] == 0
    assert not await _works(redis, rotated)
    assert await redis.exists(api_key_key(hash_secret(rotated))) == 0
    assert (await _keys(redis_url, capsys, "show", key_id))[0] == 1
    assert json.loads((await _keys(redis_url, capsys, "list", "--json"))[1]) == []


@pytest.mark.parametrize("argv", [
    ["create", "--name", "n", "--account", "a", "--roles", "Root"],
    ["create", "--name", "n", "--account", "a:b"],
    ["create", "--name", "n", "--account", "a", "--expires", "someday"],
    ["create", "--name", "n", "--account", "a", "--expires", "999999w"],
    ["create", "--name", "n", "--account", "a", "--expires", "9999-12-31"],
])
async def test_the_keys_cli_refuses_invalid_keys_with_status_2(
    redis_url: str, redis: Redis, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = await _keys(redis_url, capsys, *argv)
    assert (code, out) == (2, "") and err.startswith("smsgw keys: ")
    assert await redis.keys(CONFIG + "key*") == []


async def test_the_keys_cli_lists_a_key_whose_stored_expiry_is_out_of_range(
    redis_url: str, redis: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await _keys(redis_url, capsys, "create", "--name", "n", "--account", "a")
    await redis.hset(api_key_key(hash_secret(out.strip())), "expires_at",
                     str(604_799_395_200_000_000))  # 999999 weeks, as once stored
    code, out, _ = await _keys(redis_url, capsys, "list", "--json")
    assert code == 0 and json.loads(out)[0]["expiresAt"].startswith("9999-12-31")


async def test_the_smsgw_command_prints_only_the_new_key_on_stdout(
    redis_url: str, redis: Redis
) -> None:
    env: dict[str, Any] = {**os.environ, "REDIS_URL": redis_url}
    env.pop("SMSGW_CONFIG", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "keys", "create", "--name", "ops", "--account", "ops",
        "--roles", "Admin", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err
    key = out.decode().strip()
    assert key.startswith("sk_") and key.encode() not in err
    principal = await authenticate(Store(redis, 3600), {"Authorization": f"Bearer {key}"})
    assert principal.roles == {"Admin"} and principal.account == "ops"
