"""Failover end to end: the real gateway routes 10,000 messages to channel 'a', two real
`smsgw worker` processes send them to two simulated SMSCs over TCP, and SMSC 'a' is stopped
mid-run. Every message ends sent exactly once: those 'a' accepted stay there, the rest move to
'b' once 'a' has had no bind up on any worker for worker.failover_grace_seconds, and are
delivered there (its receipts come back). The SMSCs' records of every submit_sm are the judge.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway.keys_cli import create_key
from tests.integration.support import (
    running_simulator,
    serving_gateway,
    start_worker,
    stop_all,
    wait_final,
)
from worker.config import load_settings
from worker.store import Store

pytestmark = pytest.mark.integration

TOTAL = 10_000
BATCH = 1000
GRACE = 1  # worker.failover_grace_seconds: its lower bound
NO_BIND = f"moved a -> b: NoBind no bind up on any worker for {GRACE} s"


def _config(path: Path, redis_url: str, a_port: int, b_port: int) -> dict[str, str]:
    """Channels 'a' (no receipts: an SMSC that vanishes takes its unsent receipts with it)
    and 'b' (receipts), one route 'za' that sends on 'a' and falls back to 'b'."""
    common = ('system_id = "smsgw"\npassword = "secret"\nbinds = 1\nwindow = 50\n'
              "reconnect_min_seconds = 0.05\nreconnect_max_seconds = 0.2\n")
    path.write_text(
        f'[gateway]\ndefault_country_code = "27"\n'
        f"[worker]\ndrain_seconds = 10\nfailover_grace_seconds = {GRACE}\n"
        f"[channels.a]\nport = {a_port}\nregistered_delivery = 0\n{common}"
        f"[channels.b]\nport = {b_port}\nregistered_delivery = 1\n{common}"
        '[[routes]]\nname = "za"\nprefixes = ["27"]\nchannels = ["a"]\nfallbacks = ["b"]\n')
    return {**os.environ, "SMSGW_CONFIG": str(path), "REDIS_URL": redis_url}


async def _post_all(base: str, key: str) -> list[str]:
    """Every message names no channel: the gateway routes it (route 'za', channel 'a')."""
    ids: list[str] = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        for start in range(0, TOTAL, BATCH):
            body = {"Messages": [{"to": f"+2782{n:07d}", "content": f"failover {n}"}
                                 for n in range(start, start + BATCH)]}
            async with http.post(f"{base}/communication/message/smpp/sms", json=body) as resp:
                assert resp.status == 200
                answers = (await resp.json())["messages"]
                assert {(m["accepted"], m["msg"]["channel"]) for m in answers} == {(True, "a")}
                ids += [m["apiMessageId"] for m in answers]
    return ids


async def test_an_smsc_stopped_mid_run_leaves_every_message_sent_exactly_once_by_workers(
    redis_url: str, redis: Redis, tmp_path: Path,
) -> None:
    store = Store(redis, 3600)
    key = await create_key(store, name="t", account="acme", roles=frozenset({"Client"}),
                           channels=None)
    workers: list[asyncio.subprocess.Process | None] = []
    async with running_simulator() as a, running_simulator() as b:
        env = _config(tmp_path / "smsgw.toml", redis_url, a.port, b.port)
        try:
            async with serving_gateway(load_settings(env)) as base, asyncio.timeout(60):
                workers += [await start_worker(env), await start_worker(env)]
                ids = await _post_all(base, key)
                await a.wait_for_submits(TOTAL // 5)
                await a.stop()  # mid-run: what it has not accepted moves to b after the grace
                # 'a' sends no receipts: its messages end 'submitted'; b's go on to 'delivered'
                await wait_final(redis_url, ids, {"submitted", "delivered"})
                on_b = [r.api_id for r in await store.get(ids)
                        if r is not None and r.fields["channel"] == "b"]
                finals = await wait_final(redis_url, on_b)
        finally:
            await stop_all(workers)

    per_number = Counter(s.destination for s in a.submits + b.submits)
    assert len(per_number) == TOTAL and set(per_number.values()) == {1}  # each sent once
    assert len(a.submits) >= TOTAL // 5 and len(b.submits) == len(on_b) > 0
    assert set(finals.values()) == {"delivered"}
    records = [r for r in await store.get(ids) if r is not None]
    assert len(records) == TOTAL
    for r in records:
        moves = [d for _, _, d in r.transitions() if d.startswith("moved")]
        if r.fields["channel"] == "a":
            assert (r.status, moves) == ("submitted", [])
        else:
            assert (r.status, r.fields["hop"], moves) == ("delivered", "1", [NO_BIND])
        assert (r.fields["route"], r.fields["chain"]) == ("za", "a,b")
