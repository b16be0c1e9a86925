"""Benchmark: Redis time per message of each store script, measured inside redis-server.

Redis runs one script at a time, so the time its scripts take per message bounds how many
messages all gateways and workers together can accept and deliver, and every long script
delays everyone else's. This stores, claims, records the submit outcome of and applies a
receipt to N single-part messages, in batches as the gateway and the worker send them, and
prints redis-server's own accounting (INFO commandstats): microseconds per message spent in
each script, and how much of that the Redis commands inside it took (the rest is Lua).

With ``--instructions`` redis-server runs under valgrind's callgrind, which counts the
instructions executed inside EVALSHA (the scripts and their commands): slow, but the same from
run to run whatever else the machine is doing, so it tells a change of a few percent where
the timings cannot. It needs ``valgrind`` and ``callgrind_control`` on PATH.

    .venv/bin/python bench/store_bench.py [--messages 4000] [--batch 50] [--callback]
    .venv/bin/python bench/store_bench.py --instructions --messages 2000
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack as st  # a sibling module, not a package

from gateway.keys_cli import create_key
from worker.ids import new_id
from worker.lifecycle import Status
from worker.redisproc import RedisProcess, find_redis_server
from worker.store import NewMessage, Outcome, ReceiptEvent, Store, WebhookStore

Step = Callable[[Sequence[str]], Awaitable[Any]]


def _steps(store: Store, messages: dict[str, NewMessage]) -> list[tuple[str, Step]]:
    """The lifecycle of a message, one store call per step, as gateway and worker make them."""
    async def accept(ids: Sequence[str]) -> Any:
        return await store.accept([messages[i] for i in ids], window_seconds=86400,
                                  job_id=new_id(), job_payload=b"job", job_expiry_seconds=60)

    async def claim(ids: Sequence[str]) -> Any:
        return await store.claim(ids, worker="bench", lease_ms=600_000, served=["sim"])

    async def outcomes(ids: Sequence[str]) -> Any:
        return await store.record_outcomes(
            [Outcome(api_id=i, channel="sim", smsc_ids=[f"s{i}"], receipt_wait_ms=3_600_000)
             for i in ids], dlr_ttl_seconds=3600)

    async def receipts(ids: Sequence[str]) -> Any:
        return await store.record_receipts(
            [ReceiptEvent(channel="sim", forms={"same": f"s{i}"}, state=Status.DELIVERED,
                          stat="DELIVRD", err="000") for i in ids], held_ttl_seconds=3600)

    return [("accept", accept), ("claim", claim), ("outcome", outcomes), ("receipt", receipts)]


class Callgrind:
    """redis-server under callgrind, counting the instructions inside EVALSHA only."""

    def __init__(self, workdir: str) -> None:
        self.dir = Path(workdir)
        self.binary = self.dir / "redis-server"
        self.binary.write_text(
            "#!/bin/sh\nexec valgrind --tool=callgrind --collect-atstart=no "
            f"--toggle-collect=evalShaCommand --callgrind-out-file={self.dir}/out.%p "
            f'{find_redis_server()} "$@"\n')
        self.binary.chmod(0o755)

    def zero(self, pid: int) -> None:
        self._control("-z", pid)

    def counted(self, pid: int) -> int:
        """The instructions since zero(), from a dump of them."""
        self._control("-d", pid)
        dump = max(self.dir.glob(f"out.{pid}.*"), key=lambda p: p.stat().st_mtime)
        for line in dump.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
        raise RuntimeError(f"no totals in {dump}")

    @staticmethod
    def _control(option: str, pid: int) -> None:
        subprocess.run(["callgrind_control", option, str(pid)], check=True,
                       capture_output=True, timeout=60)


async def _measure(redis: Redis, step: Step, ids: Sequence[str], batch: int,
                   grind: Callgrind | None) -> str:
    await step(ids[:1])  # loads the script, outside the measurement
    await redis.config_resetstat()
    pid = int((await redis.info("server"))["process_id"])
    if grind:
        grind.zero(pid)
    rest = ids[1:]
    for at in range(0, len(rest), batch):
        await step(rest[at:at + batch])
    n = len(rest)
    if grind:
        return f"{grind.counted(pid) / n / 1000:6.1f}k instructions per message in the script"
    stats = await redis.info("commandstats")
    script = stats["cmdstat_evalsha"]["usec"] / n
    inner = {k.removeprefix("cmdstat_"): v["usec"] / n for k, v in stats.items()
             if k not in ("cmdstat_evalsha", "cmdstat_config", "cmdstat_info")}
    top = ", ".join(f"{k} {v:.1f}" for k, v in sorted(inner.items(), key=lambda kv: -kv[1])
                    if v >= 0.5)
    return (f"{script:6.1f} us per message in the script; commands inside "
            f"{sum(inner.values()):5.1f} ({top})")


async def _run(args: argparse.Namespace, redis: Redis, grind: Callgrind | None) -> None:
    store = Store(redis, 3600)
    await store.heartbeat("bench", 600_000)
    if args.callback:  # every submitted and final status writes a webhook event
        # Through the store: the scripts read the shard's copy of the URL (worker/store/copies.py),
        # which the account's own record alone leaves empty.
        await create_key(store, name="bench", account="acme", roles=frozenset({"Client"}),
                         channels=None)
        await WebhookStore(redis).set_callback("acme", "https://hooks.example/acme",
                                               new_secret="bench")
    messages = {m.api_id: m for m in (
        NewMessage(api_id=new_id(), account="acme", channel="sim", to=f"2782{n:07d}",
                   content="Your code is 123456", encoding="gsm7", segments=1)
        for n in range(args.messages))}
    ids = list(messages)
    what = ("instructions inside EVALSHA (callgrind)" if grind
            else "redis-server's own time (INFO commandstats)")
    print(f"{args.messages} messages, batches of {args.batch} (accept: of 100)"
          f"{', a callback URL set' if args.callback else ''}, {what}:")
    for name, step in _steps(store, messages):
        batch = 100 if name == "accept" else args.batch
        print(f"  {name:8s} {await _measure(redis, step, ids, batch, grind)}")


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="smsgw-callgrind-") as workdir:
        grind = Callgrind(workdir) if args.instructions else None
        async with RedisProcess(binary=str(grind.binary) if grind else "") as url:
            redis = Redis.from_url(url)
            try:
                await _run(args, redis, grind)
            finally:
                await redis.aclose()
    print(st.host_speed())
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--batch", type=int, default=50, help="messages per worker script run")
    p.add_argument("--callback", action="store_true",
                   help="give the account a callback URL: every webhook event is written")
    p.add_argument("--instructions", action="store_true",
                   help="count instructions under valgrind's callgrind instead of timing")
    args = p.parse_args(argv)
    if not 2 <= args.messages <= 200_000 or not 1 <= args.batch <= 1000:
        p.error("--messages must be within [2, 200000] and --batch within [1, 1000]")
    if args.instructions and not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        p.error("--instructions needs valgrind and callgrind_control on PATH")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main_async(parse_args())))
