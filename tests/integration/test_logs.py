"""Logs: no key, password or content at the default level; message context; redaction.

The first test runs the real ``smsgw gateway`` and ``smsgw worker`` processes (JSON logs chosen
once by flag and once by environment), sends traffic through them, captures everything they
write and greps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway.app import SEND_PATH
from gateway.keys_cli import create_key
from worker.config import settings_from_dict
from worker.health import HealthAddress
from worker.jobs import arq_settings
from worker.logs import MASK, Redactor, setup_logging
from worker.redisproc import free_port
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.store import EVENTS, NewMessage, Store, parse_events

pytestmark = pytest.mark.integration

PASSWORD = "Pw7q2zXr"  # SMPP passwords are at most 8 characters
BOOTSTRAP = "sk_BootstrapAdminKeyForTheLogTest00000000"
CONTENT = "Meet at 7 by the blue door \u2713"


class Output:
    """Lines a child process writes, collected as they come; waits for one containing text."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            async with self._changed:
                self.lines.append(line.decode())
                self._changed.notify_all()

    async def wait_for(self, text: str) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: any(text in ln for ln in self.lines))


async def _spawn(argv: list[str], env: dict[str, str]) -> tuple[asyncio.subprocess.Process,
                                                               Output]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *argv, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    return proc, Output(proc.stdout)


async def _wait_listening(port: int) -> None:
    # Another process: nothing to await but its port accepting connections.
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def _stop(proc: asyncio.subprocess.Process, out: Output) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(20):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
    await out.task


async def test_no_key_password_or_content_in_logs_at_the_default_level(
    redis_url: str, redis: Redis, sim: Simulator, tmp_path: Path,
) -> None:
    config = tmp_path / "smsgw.toml"
    config.write_text(f'[gateway]\ndefault_channel = "sim"\naccess_log = true\n\n'
                      f'[channels.sim]\nport = {sim.port}\n'
                      f'system_id = "smsgw"\npassword = "{PASSWORD}"\n')
    key = await create_key(Store(redis, 3600), name="t", account="acme",
                           roles=frozenset({"Client"}), channels=None)
    wrong_key = "sk_" + "W" * 32
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGW_")}
    env = {**base_env, "REDIS_URL": redis_url, "SMSGW_CONFIG": str(config),
           "SMSGW_BOOTSTRAP_ADMIN_KEY": BOOTSTRAP}
    port, health_port = free_port(), free_port()
    async with contextlib.AsyncExitStack() as stack:
        worker = await _spawn(["worker", "--health-port", str(health_port), "--health-host",
                               "127.0.0.1"], {**env, "SMSGW_LOG_FORMAT": "json"})
        stack.push_async_callback(_stop, *worker)
        gateway = await _spawn(["--log-format", "json", "gateway", "--host", "127.0.0.1",
                                "--port", str(port)], env)
        stack.push_async_callback(_stop, *gateway)
        listener = Redis.from_url(redis_url)
        stack.push_async_callback(listener.aclose)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        async with asyncio.timeout(60):
            await worker[1].wait_for(": bound")
            await _wait_listening(port)
            async with http.get(f"http://127.0.0.1:{health_port}/health/ready") as resp:
                assert resp.status == 200
            async with listener.pubsub() as pubsub:
                await pubsub.subscribe(EVENTS)
                assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
                body = {"Messages": [{"to": "+27820000077", "content": CONTENT}]}
                async with http.post(f"http://127.0.0.1:{port}{SEND_PATH}", json=body,
                                     headers={"Authorization": f"Bearer {key}"}) as resp:
                    assert resp.status == 200
                    api_id = (await resp.json())["messages"][0]["apiMessageId"]
                async for event in pubsub.listen():
                    if event["type"] == "message" and (
                            (api_id, "delivered") in parse_events(event["data"])):
                        break
            async with http.post(f"http://127.0.0.1:{port}{SEND_PATH}?apikey={wrong_key}",
                                 json=body) as resp:
                assert resp.status == 401

    lines = gateway[1].lines + worker[1].lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert all(r["level"] != "debug" for r in records)
    text = "".join(lines)
    for secret in (key, wrong_key, PASSWORD, BOOTSTRAP, CONTENT, "blue door"):
        assert secret not in text
    # the lines that would have carried them are there, masked
    assert any(SEND_PATH in r["msg"] and f"apikey={MASK} " in r["msg"] for r in records)
    assert any(r["msg"].startswith("worker ") and "started" in r["msg"] for r in records)


@pytest.mark.parametrize("access_log", [False, True])
async def test_a_line_per_request_only_with_the_access_log_on(
    redis_url: str, tmp_path: Path, access_log: bool,
) -> None:
    config = tmp_path / "smsgw.toml"
    config.write_text(f"[gateway]\naccess_log = {str(access_log).lower()}\n")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGW_")}
    env = {**base_env, "REDIS_URL": redis_url, "SMSGW_CONFIG": str(config)}
    port = free_port()
    gateway = await _spawn(["gateway", "--host", "127.0.0.1", "--port", str(port)], env)
    try:
        async with asyncio.timeout(30):
            await _wait_listening(port)
            async with aiohttp.ClientSession() as http:
                for _ in range(3):
                    async with http.get(f"http://127.0.0.1:{port}/health/live") as resp:
                        assert resp.status == 200
    finally:
        await _stop(*gateway)
    requests = [ln for ln in gateway[1].lines if "GET /health/live" in ln]
    assert len(requests) == (3 if access_log else 0)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Log lines (JSON) of this process, at DEBUG; the root logger is restored afterwards."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler, _ = setup_logging("DEBUG", "json", secrets=[PASSWORD], stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(accounts={"smsgw": PASSWORD})) as server:
        yield server


async def test_lines_about_a_message_carry_its_id_and_channel_and_content_only_at_debug(
    redis_url: str, redis: Redis, sim: Simulator, captured: io.StringIO,
) -> None:
    settings = settings_from_dict(
        {"channels": {"sim": {"port": sim.port, "system_id": "smsgw", "password": PASSWORD}}},
        {"REDIS_URL": redis_url}, source="test")
    hooks = arq_settings(settings, health=HealthAddress("127.0.0.1", 0))
    ctx: dict[str, Any] = {}
    await hooks["on_startup"](ctx)
    try:
        async with asyncio.timeout(30):
            assert await ctx["dispatcher"].pools["sim"].wait_ready(10)
            (stored,) = await Store(redis, 3600).accept(
                [NewMessage(api_id="msg-ctx-1", account="acme", channel="sim",
                            to="27820000078", content=CONTENT, encoding="UCS2", segments=1)],
                window_seconds=60, job_id="j", job_payload=b"", job_expiry_seconds=60)
            logging.getLogger("smsgw.content").setLevel(logging.INFO)  # content off...
            await ctx["dispatcher"].send([stored.api_id])
            await sim.wait_for_receipts_acked(1)
    finally:
        logging.getLogger("smsgw.content").setLevel(logging.NOTSET)
        await hooks["on_shutdown"](ctx)

    records = [json.loads(line) for line in captured.getvalue().splitlines()]
    about = [r for r in records if r.get("apiMessageId") == "msg-ctx-1"]
    assert any(r["msg"] == "submitted in 1 part(s)" and r["level"] == "debug" for r in about)
    assert all(r["channel"] == "sim" for r in about)
    assert PASSWORD not in captured.getvalue()
    # ...so the content is nowhere; a DEBUG content logger would have written it
    assert CONTENT not in captured.getvalue()
    content_log = logging.getLogger("smsgw.content")
    content_log.debug("content: %r", CONTENT)
    assert CONTENT in captured.getvalue()


def test_redactor_masks_keys_passwords_and_configured_secrets() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Redactor(["Pw7q2zXr", "abc"]))  # 3 characters: too short to mask
    log = logging.getLogger("test.redaction")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    key = "sk_" + "k" * 32
    try:
        log.info("request with %s", key)
        log.info("Authorization: Bearer abcdef0123456789")
        log.info("redis at redis://:hunter2hunter2@10.0.0.5:6379/0")
        log.info("bind password=%s", "zz9plural")
        log.info('{"password": "j50nPass", "api_key": "k-123-456"}')
        try:
            raise ValueError("refused with Pw7q2zXr")
        except ValueError:
            log.exception("bind failed")
        log.info("check system_id/password; retrying; abc stays")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    text = stream.getvalue()
    for secret in (key, "abcdef0123456789", "hunter2hunter2", "zz9plural", "j50nPass",
                   "k-123-456", "Pw7q2zXr"):
        assert secret not in text
    assert "ValueError: refused with ***" in text
    assert "check system_id/password; retrying; abc stays" in text
