"""`smsgw dev` as a newcomer runs it: real child processes, a curl-able API, webhooks to a
receiver on the same machine, clean Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.esme import Esme
from tests.integration.test_webhooks import Sink, start_sink
from worker.redisproc import free_port
from worker.store import EVENTS, parse_events

pytestmark = pytest.mark.integration


def _descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (Linux /proc)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for k in map(int, kids):
            out.add(k)
            todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def _read_until(stream: asyncio.StreamReader, marker: str, seen: list[str]) -> str:
    """The first output line containing ``marker``."""
    while marker not in (line := (await stream.readline()).decode()):
        if not line:
            raise AssertionError("smsgw dev exited early:\n" + "".join(seen))
        seen.append(line)
    return line


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
async def test_dev_mode_sends_an_sms_posts_its_webhooks_locally_and_stops_on_signal(
    stop_signal: signal.Signals,
) -> None:
    port, smsc_port, smpp_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SMSGW_CONFIG")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "dev", "--port", str(port), "--smsc-port",
        str(smsc_port), "--smpp-port", str(smpp_port), "--api-key", "dev-test-key", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(60):
            redis_url = (await _read_until(proc.stdout, "redis: ", seen)).split()[1]
            await _read_until(proc.stdout, "smsgw is running", seen)
            smpp_line = await _read_until(proc.stdout, "smpp://", seen)
            status_link = await _read_until(proc.stdout, "/admin/status#key=", seen)
            admin_key = status_link.split("#key=", 1)[1].strip()
            drain = asyncio.create_task(proc.stdout.read())
            sink, runner = await start_sink(Sink())  # on 127.0.0.1, as a developer's would be
            try:
                await _set_callback(port, admin_key, sink.url)
                api_id = await _send_and_see_delivered(port, redis_url)
                hits = await sink.wait_for(2, answered=200)
            finally:
                await runner.cleanup()
            assert [(h.json["apiMessageId"], h.json["status"]) for h in hits] == [
                (api_id, "submitted"), (api_id, "delivered")]
            assert await asyncio.to_thread(_submit_over_smpp, smpp_line, smpp_port)
            children = _descendants(proc.pid)
            assert len(children) >= 5  # redis, simulator, worker, webhooks, gateway
            os.killpg(proc.pid, stop_signal)
            assert await proc.wait() == 0
            await drain
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert [pid for pid in children if _alive(pid)] == []


def _submit_over_smpp(line: str, port: int) -> bool:
    """Bind with the printed line's credentials and submit one message; True if accepted."""
    url, system_id, password = line.split()
    assert url == f"smpp://127.0.0.1:{port}"
    esme = Esme(port).connect()
    try:
        assert esme.bind("transceiver", system_id.split("=", 1)[1],
                         password.split("=", 1)[1]) == 0
        [(status, api_id)] = esme.submit_all([("0820000002", b"hi over smpp")], 1)
        esme.unbind()
    finally:
        esme.close()
    return status == 0 and bool(api_id)


async def _set_callback(port: int, admin_key: str, url: str) -> None:
    async with aiohttp.ClientSession() as http, http.put(
            f"http://127.0.0.1:{port}/admin/accounts/demo/callback", json={"url": url},
            headers={"Authorization": f"Bearer {admin_key}"}) as resp:
        assert resp.status == 200, await resp.text()


async def _send_and_see_delivered(port: int, redis_url: str) -> str:
    redis = Redis.from_url(redis_url)
    async with redis.pubsub() as pubsub, aiohttp.ClientSession(
        headers={"Authorization": "Bearer dev-test-key"}) as http:
        await pubsub.subscribe(EVENTS)
        async with http.post(
            f"http://127.0.0.1:{port}/communication/message/smpp/sms",
            json={"Messages": [{"to": "0820000001", "content": "hi"}]},
        ) as resp:
            assert resp.status == 200, await resp.text()
            (msg,) = (await resp.json())["messages"]
        assert msg["accepted"] and msg["to"] == "27820000001"  # dev default country code 27
        async for event in pubsub.listen():
            if event["type"] == "message" and (
                    (msg["apiMessageId"], "delivered") in parse_events(event["data"])):
                break
    await redis.aclose()
    return str(msg["apiMessageId"])
