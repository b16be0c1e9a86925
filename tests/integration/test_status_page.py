"""The status page over a running stack: real Redis, the simulator over TCP, an arq worker that
publishes its binds from its heartbeat, and the gateway on a real port.

The page itself is loaded in headless Chromium (Debian's ``chromium``) over the DevTools
protocol, and must show numbers that change as messages flow.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from arq.worker import Worker
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.keys_cli import create_key
from gateway.views.status_page import status_document
from tests.integration.support import stop_in_process_worker
from worker.config import settings_from_dict
from worker.jobs import arq_settings
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.smpp.pdu import ESME_RINVDSTADR
from worker.store import EVENTS, Overview, Store, parse_events

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
SEND = "/communication/message/smpp/sms"
FAILING = "27899"  # destinations the simulator refuses permanently (ESME_RINVDSTADR)


@dataclass
class Stack:
    base: str
    client_key: str
    admin_key: str
    redis: Redis


@pytest.fixture
async def stack(redis_url: str, redis: Redis) -> AsyncIterator[Stack]:
    sim = Simulator(SimulatorConfig(accounts={"smsgw": "secret"},
                                    error_prefixes={FAILING: ESME_RINVDSTADR}))
    await sim.start()
    settings = settings_from_dict(
        {"gateway": {"default_channel": "sim"},
         "channels": {"sim": {"port": sim.port, "system_id": "smsgw", "password": "secret",
                              "binds": 2, "window": 20}}},
        {"REDIS_URL": redis_url}, source="test")
    worker = Worker(**arq_settings(settings), handle_signals=False)
    worker_task = asyncio.create_task(worker.async_run())
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    store = Store(redis, 3600)
    keys = [await create_key(store, name=role, account=role.lower(), roles=frozenset({role}),
                             channels=None) for role in ("Client", "Admin")]
    try:
        yield Stack(f"http://127.0.0.1:{runner.addresses[0][1]}", *keys, redis)
    finally:
        await runner.cleanup()
        await stop_in_process_worker(worker, worker_task)
        await sim.stop()


async def _send(stack: Stack, numbers: list[str], channel: str = "sim") -> list[str]:
    """Send one message to each number and wait until each has ended; their ids."""
    body = {"Messages": [{"channel": channel, "to": n, "content": "status page"}
                         for n in numbers]}
    async with stack.redis.pubsub() as pubsub:
        await pubsub.subscribe(EVENTS)
        while (await pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
            pass
        async with aiohttp.ClientSession() as http, http.post(
                stack.base + SEND, json=body,
                headers={"Authorization": f"Bearer {stack.client_key}"}) as resp:
            ids = [m["apiMessageId"] for m in (await resp.json())["messages"]]
        waiting = set(ids)
        async with asyncio.timeout(30):
            while waiting:
                msg = await pubsub.get_message(timeout=5)
                if msg and msg["type"] == "message":
                    for api_id, status in parse_events(msg["data"]):
                        if status in ("delivered", "failed"):
                            waiting.discard(api_id)
    return ids


async def _status(stack: Stack, key: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as http, http.get(
            stack.base + "/admin/status.json", headers=headers) as resp:
        return resp.status, await resp.json()


async def _bound(stack: Stack) -> dict[str, Any]:
    """The status of channel 'sim' once the worker has published both binds as up."""
    async with asyncio.timeout(20):
        async with stack.redis.pubsub() as pubsub:
            await pubsub.psubscribe("__keyspace@0__:smsgw:snap:*")
            await stack.redis.config_set("notify-keyspace-events", "K$")
            while True:  # each heartbeat rewrites the snapshot: check again after each
                _, body = await _status(stack, stack.admin_key)
                (sim,) = [c for c in body["channels"] if c["name"] == "sim"]
                if sim["bound"] == 2:
                    return sim
                await pubsub.get_message(timeout=5)


async def test_status_data_needs_an_admin_key(stack: Stack) -> None:
    assert (await _status(stack, None))[0] == 401
    assert (await _status(stack, stack.client_key))[0] == 403
    assert (await _status(stack, stack.admin_key))[0] == 200


async def test_the_page_is_a_shell_with_no_data_and_runs_only_its_own_script(
    stack: Stack,
) -> None:
    async with aiohttp.ClientSession() as http, http.get(stack.base + "/admin/status") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        csp = resp.headers["Content-Security-Policy"]
        html = await resp.text()
    assert "script-src 'sha256-" in csp and "unsafe" not in csp and "connect-src 'self'" in csp
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert "smsgw status" in html and "sim" not in html


async def test_status_data_shows_binds_window_counts_and_the_latest_failure(
    stack: Stack,
) -> None:
    before = await _bound(stack)
    assert before["binds"] == 2 and before["window"] == 20
    assert {s["state"] for s in before["sessions"]} == {"bound"} and before["inFlight"] == 0
    sent = await _send(stack, [f"2782000{i:04d}" for i in range(7)] + [f"{FAILING}000001"])
    status, body = await _status(stack, stack.admin_key)
    assert status == 200
    (sim,) = [c for c in body["channels"] if c["name"] == "sim"]
    totals = sim["totals"]
    assert (totals["accepted"], totals["submitted"], totals["delivered"], totals["failed"]) == (
        before["totals"]["accepted"] + 8, before["totals"]["submitted"] + 7,
        before["totals"]["delivered"] + 7, before["totals"]["failed"] + 1)
    assert sim["errorRate"] == pytest.approx(1 / 8) and sim["queued"] == sim["scheduled"] == 0
    assert sum(sim["series"]["delivered"]) == totals["delivered"]
    assert len(sim["series"]["delivered"]) == len(body["minutes"]) == 15
    latest = body["failures"][0]
    assert latest["apiMessageId"] == sent[-1] and latest["status"] == "failed"
    assert latest["channel"] == "sim" and "0x0000000B" in latest["detail"]
    assert len(body["workers"]) == 1
    assert {s["worker"] for s in sim["sessions"]} == {body["workers"][0]["worker"]}


class DevTools:
    """Just enough of the Chrome DevTools protocol: commands and awaiting one event."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        await self._ws.send_json({"id": self._next, "method": method, "params": params})
        while True:
            msg = await self._ws.receive_json()
            if msg.get("id") == self._next:
                assert "error" not in msg, msg
                result: dict[str, Any] = msg["result"]
                return result

    async def event(self, method: str) -> None:
        while (await self._ws.receive_json()).get("method") != method:
            pass

    async def when(self, condition: str) -> Any:
        """The value of the JavaScript expression ``condition`` once it is truthy, checked
        after each refresh of the page."""
        script = f"""new Promise((resolve) => {{
            const check = () => {{ const v = ({condition}); if (v) {{ obs.disconnect();
                                   resolve(v); }} }};
            const obs = new MutationObserver(check);
            obs.observe(document.body, {{attributes: true, attributeFilter: ["data-updated"]}});
            check(); }})"""
        got = await self.call("Runtime.evaluate", expression=script, awaitPromise=True,
                              returnByValue=True)
        assert "exceptionDetails" not in got, got
        return got["result"]["value"]


@pytest.fixture
async def browser() -> AsyncIterator[DevTools]:
    """Headless Chromium with a blank page, driven over DevTools on a loopback port."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI") == "true":  # .ci/run installs it: a green CI ran these tests
            pytest.fail(f"{CHROMIUM} is required in CI")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; CI installs it)")
    with tempfile.TemporaryDirectory(prefix="smsgw-chromium-") as profile:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-quic", "--no-first-run", f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert proc.stderr is not None
        drain: asyncio.Task[bytes] | None = None
        try:
            async with asyncio.timeout(30):
                while b"DevTools listening on" not in (line := await proc.stderr.readline()):
                    assert line, "chromium exited before DevTools listened"
                drain = asyncio.create_task(proc.stderr.read())
                endpoint = line.decode().split()[-1]  # ws://127.0.0.1:PORT/devtools/browser/..
                port = endpoint.split(":")[2].split("/")[0]
                async with aiohttp.ClientSession() as http:
                    async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                        pages = [t for t in await resp.json() if t["type"] == "page"]
                    async with http.ws_connect(pages[0]["webSocketDebuggerUrl"],
                                               max_msg_size=0) as ws:
                        yield DevTools(ws)
        finally:
            proc.terminate()
            await proc.wait()
            if drain is not None:  # chromium may have failed before it listened
                await drain


async def test_the_page_renders_live_numbers_in_headless_chromium(
    stack: Stack, browser: DevTools,
) -> None:
    await _bound(stack)
    await browser.call("Page.enable")
    async with asyncio.timeout(60):
        await browser.call("Page.navigate", url=f"{stack.base}/admin/status#key={stack.admin_key}")
        await browser.event("Page.loadEventFired")
        first = await browser.when("""document.body.dataset.updated && {
            binds: document.querySelector('[data-channel="sim"] [data-k="binds"]').textContent,
            submitted: +document.querySelector('#totals [data-k="submitted"]').textContent,
            href: location.href, sessions: document.querySelectorAll('#sessions tr').length}""")
        assert first["binds"] == "2 / 2" and first["sessions"] == 2
        assert stack.admin_key not in first["href"]  # taken from the fragment, then removed

        # routed by the route gateway.default_channel makes ('default', channel sim)
        sent = await _send(stack, [f"2782100{i:04d}" for i in range(5)] + [f"{FAILING}000002"],
                           channel="route:default")
        later = await browser.when(f"""+document.querySelector('#totals [data-k="submitted"]')
            .textContent >= {first["submitted"] + 5} && {{
            submitted: +document.querySelector('#totals [data-k="submitted"]').textContent,
            delivered: +document.querySelector('[data-channel="sim"] [data-k="delivered"]')
                .textContent,
            failure: document.querySelector('#failures tr td:nth-child(3)').textContent,
            line: document.querySelector('path[data-series="submitted"]').getAttribute('d'),
            routed: document.querySelector('[data-route="default"] [data-k="routed"]')
                .textContent,
            split: document.querySelector('[data-route="default"] [data-k="split"]')
                .textContent}}""")
    assert later["submitted"] == first["submitted"] + 5 and later["delivered"] >= 5
    assert later["failure"] == sent[-1]
    assert (later["routed"], later["split"]) == ("6", "sim 6 (100.0 %)")
    points = [float(p.split()[1]) for p in later["line"][1:].split("L")]
    assert len(points) == 15 and min(points) < max(points)  # the line rose off the axis


def test_the_error_rate_is_the_share_of_ended_messages_that_ended_badly() -> None:
    doc = status_document(Overview(now_ms=120_000, workers=[], minutes=[(1, {"sim|failed": 2})],
                                   failures=[], jobs=0, queued={"sim": 0},
                                   awaiting_receipt={"sim": 0}))
    assert json.loads(json.dumps(doc))["channels"][0]["errorRate"] == 1.0
    doc = status_document(Overview(now_ms=120_000, workers=[], minutes=[
        (1, {"sim|failed": 1, "sim|delivered": 2}), (2, {"sim|rejected": 1})],
        failures=[], jobs=0, queued={}, awaiting_receipt={}))
    assert doc["channels"][0]["errorRate"] == 0.5 and doc["minutes"] == [60_000, 120_000]


def test_a_bind_waiting_for_a_slot_held_elsewhere_is_standby_not_down() -> None:
    def worker(name: str, states: list[str]) -> dict[str, Any]:
        sessions = [{"index": i, "kind": "tx", "state": st, "inFlight": 1 if st == "bound" else 0}
                    for i, st in enumerate(states)]
        return {"worker": name, "at": 1, "channels": {"sim": {
            "binds": 2, "window": 10, "mode": "transceiver", "serving": "bound" in states,
            "reconnects": 0, "sessions": sessions}}}

    doc = status_document(Overview(now_ms=1, workers=[worker("a", ["bound", "bound"]),
                                                      worker("b", ["down", "down"])],
                                   minutes=[], failures=[], jobs=0, queued={},
                                   awaiting_receipt={}))
    (sim,) = doc["channels"]
    assert [s["state"] for s in sim["sessions"]] == ["bound", "bound", "standby", "standby"]
    assert (sim["bound"], sim["inFlight"], sim["windowUse"]) == (2, 2, 0.1)
    one_down = status_document(Overview(now_ms=1, workers=[worker("a", ["bound", "down"])],
                                        minutes=[], failures=[], jobs=0, queued={},
                                        awaiting_receipt={}))
    assert [s["state"] for s in one_down["channels"][0]["sessions"]] == ["bound", "down"]


def test_routes_show_how_their_traffic_split_and_how_many_failed_over() -> None:
    doc = status_document(Overview(now_ms=180_000, workers=[], minutes=[
        (1, {"a|accepted": 3, "b|accepted": 1, "route:za|routed:a": 3, "route:za|routed:b": 1}),
        (2, {"route:za|routed:a": 2, "route:za|failover": 2, "a|failover": 2,
             "route:fr|routed:b": 4})],
        failures=[], jobs=0, queued={"a": 0, "b": 0}, awaiting_receipt={}))
    assert [c["name"] for c in doc["channels"]] == ["a", "b"]  # routes are not channels
    assert doc["routes"] == [
        {"name": "fr", "routed": 4, "channels": {"b": 4}, "failovers": 0, "series": [0, 4]},
        {"name": "za", "routed": 6, "channels": {"a": 5, "b": 1}, "failovers": 2,
         "series": [4, 2]},
    ]
