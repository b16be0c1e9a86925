"""Benchmark (issue 3): accepted messages/s, request latency and Redis round trips of the send API.

For batches of 1, 10 and 100 messages per request at concurrency 50, against a gateway, Redis,
worker and simulator it starts itself (like ``smsgw dev``) or against a running gateway
(``--url --api-key [--redis-url]``). Prints per batch size: accepted messages/s, p50/p99
request latency, Redis round trips per request, and CPU seconds per process.

Round trips are counted two ways. Started here, the gateway and worker run under a probe that
counts every redis-py write (one command, one EVALSHA or one whole pipeline = one round trip):
that is the exact figure, per process. From the redis-server side (also in attach mode):
``total_writes_processed`` (reply writes, about one per round trip of any client) and
``total_commands_processed`` (every command, including each one a Lua script runs).

The load comes from a lean asyncio HTTP/1.1 keep-alive client in this process, which shares
the two cores with the system under test; its own CPU time is printed too.

    .venv/bin/python bench/send_bench.py                       # full stack, 5 s per batch size
    .venv/bin/python bench/send_bench.py --no-worker           # the gateway alone (+ Redis)
    .venv/bin/python bench/send_bench.py --url http://127.0.0.1:8080 --api-key KEY \\
        --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack as st  # a sibling module, not a package

from worker import eventloop  # the load generator runs on uvloop too
from worker.store import ARQ_QUEUE, pending_key


@dataclass
class Target:
    """Where the load goes, and what can be measured there."""

    port: int
    api_key: str
    redis: Redis | None
    procs: list[st.Proc] = field(default_factory=list)  # empty when attached
    own: bool = False  # started here: the backlog can be drained between runs


@contextlib.asynccontextmanager
async def target(args: argparse.Namespace) -> AsyncIterator[Target]:
    """The stack to load: started here, or the running one named by --url."""
    if args.url:
        url = urlsplit(args.url)
        if url.hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit("only a gateway on 127.0.0.1 may be benchmarked")
        redis = Redis.from_url(args.redis_url) if args.redis_url else None
        try:
            yield Target(url.port or 80, args.api_key, redis)
        finally:
            if redis is not None:
                await redis.aclose()
        return
    options = st.StackOptions(workers=args.workers, with_worker=not args.no_worker,
                              profile_dir=args.profile or "")
    async with st.running_stack(options) as stack:
        assert stack.redis is not None
        yield Target(int(stack.base_url.rsplit(":", 1)[1]), stack.api_key, stack.redis,
                     stack.procs, own=True)


async def drain(t: Target, seconds: float) -> float:
    """Wait (bounded) until the worker has taken every accepted message; seconds waited."""
    if not t.own or t.redis is None or not any(p.name.startswith("worker") for p in t.procs):
        return 0.0
    start = time.perf_counter()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                if not (await t.redis.zcard(pending_key(st.CHANNEL))
                        or await t.redis.zcard(ARQ_QUEUE)):
                    break
                await asyncio.sleep(0.25)  # another process's progress: poll, bounded above
    return time.perf_counter() - start


async def measure(t: Target, batch: int, args: argparse.Namespace) -> bool:
    """One batch size: warm up, drain the backlog, then the measured window; True if every
    request got a 200."""
    requests = st.send_requests(t.port, t.api_key, batch)
    await st.run_load(t.port, requests, concurrency=args.concurrency, seconds=args.warmup,
                      max_requests=args.max_requests)
    drained = await drain(t, args.drain_timeout)
    before = await st.snapshot(t.redis, t.procs) if t.redis is not None else None
    me0 = st.cpu_seconds(os.getpid())
    load = await st.run_load(t.port, requests, concurrency=args.concurrency,
                             seconds=args.seconds, max_requests=args.max_requests)
    me = st.cpu_seconds(os.getpid()) - me0
    after = await st.snapshot(t.redis, t.procs) if t.redis is not None else None
    report(batch, load, me, drained, st.delta(before, after) if before and after else None)
    return set(load.statuses) == {200}


def report(batch: int, load: st.LoadResult, load_cpu: float, drained: float,
           d: st.Delta | None) -> None:
    """Print the figures of one batch size."""
    elapsed = max(load.last_answer - load.first_sent, 1e-9)
    codes = ", ".join(f"HTTP {k} x{v}" for k, v in sorted(load.statuses.items()))
    print(f"\n{st.host_speed()}, timed right after the run")
    print(f"batch {batch:>3}: {load.requests} requests, {load.accepted} messages accepted in "
          f"{elapsed:.2f} s ({codes}); backlog drained {drained:.1f} s before")
    print(f"  accepted {load.accepted / elapsed:,.0f} msg/s ({load.requests / elapsed:,.0f} "
          f"req/s); latency p50 {load.percentile(50) * 1000:.1f} ms, "
          f"p99 {load.percentile(99) * 1000:.1f} ms, max {max(load.latencies) * 1000:.1f} ms")
    if d is None:
        print("  (no --redis-url: Redis round trips not measured); load generator CPU "
              f"{load_cpu:.2f} s")
        return
    n = max(load.requests, 1)
    if d.round_trips:
        parts = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(d.round_trips.items()))
        print(f"  redis round trips per request (probe, exact): {parts}")
    rs = d.redis_stats
    print(f"  redis-server per request: {rs['total_writes_processed'] / n:.2f} reply writes "
          f"(~round trips, every client), {rs['total_commands_processed'] / n:.1f} commands "
          f"executed (incl. inside Lua)")
    print(f"  commands per request: {st.top_commands(d.commandstats, n)}")
    cpu = ", ".join(f"{'load generator' if k == 'bench' else k} {v:.2f}"
                    for k, v in sorted(d.cpu.items()))
    print(f"  CPU seconds over {d.seconds:.2f} s wall (2 cores = {2 * d.seconds:.1f} "
          f"available): {cpu}; other processes on the machine {max(d.other_cpu, 0):.2f}"
          + (" (the attached stack included)" if len(d.cpu) == 1 else ""))
    if len(d.cpu) == 1:
        return  # attached: the stack's processes are not ours to measure
    ours = sum(d.cpu.values()) / max(load.accepted, 1)
    print(f"  CPU of every process of ours (load generator included): {ours * 1e6:.0f} us per "
          f"message: at most ~{2 / ours:,.0f} msg/s on 2 idle cores (CPU-bound estimate)")


async def main_async(args: argparse.Namespace) -> int:
    """Run every batch size; 1 if any request failed."""
    wrk = shutil.which("wrk")
    print("load generator: lean asyncio HTTP/1.1 keep-alive client (bench/_stack.py run_load), "
          f"{args.concurrency} connections, in this process"
          + (f" (wrk at {wrk} not used)" if wrk else " (wrk is not installed)"))
    async with target(args) as t:
        where = "attached" if not t.own else (
            f"started here: redis-server, smsc-sim, {0 if args.no_worker else args.workers} "
            f"worker(s), gateway")
        print(f"stack: {where}; gateway on 127.0.0.1:{t.port}; {args.seconds:.0f} s per batch "
              f"size after {args.warmup:.0f} s warm-up")
        ok = [await measure(t, batch, args) for batch in args.batches]
        if args.profile and t.own:
            print(f"\ncProfile of each measured window: {args.profile}/<process>.prof.<n>")
    return 0 if all(ok) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,10,100",
                   type=lambda s: [int(x) for x in s.split(",")],
                   help="messages per request, comma list (default 1,10,100)")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--seconds", type=float, default=5.0, help="measured window per batch size")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--max-requests", type=int, default=100_000,
                   help="upper bound on requests per window")
    p.add_argument("--drain-timeout", type=float, default=120.0,
                   help="longest wait for the worker's backlog before each window")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-worker", action="store_true",
                   help="no worker: measure the gateway and Redis alone")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="cProfile gateway and worker over each measured window into DIR")
    p.add_argument("--url", default=None, help="a running gateway (127.0.0.1 only)")
    p.add_argument("--api-key", default=None)
    p.add_argument("--redis-url", default=None, help="its Redis, to count round trips")
    args = p.parse_args(argv)
    if args.url and not args.api_key:
        p.error("--url needs --api-key")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    if not 0 < args.seconds <= 120 or args.concurrency < 1:
        p.error("--seconds must be within (0, 120] and --concurrency at least 1")
    return args


if __name__ == "__main__":
    sys.exit(eventloop.run(main_async(parse_args())))
