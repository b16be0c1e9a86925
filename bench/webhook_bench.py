"""Benchmark (issue 14): the webhook deliverer's own cost per event.

Fills one account's streams (its shards) with ``--events`` status events (as the store's
scripts write them), starts a receiver in a child process (a bare asyncio HTTP/1.1 server
answering 200 to every POST, keep-alive, counting events), then runs ``WebhookService`` in this
process until every event is delivered. Prints events/s, the deliverer's CPU seconds per 1,000
events, POSTs made, and with ``--profile`` the top functions of a cProfile of the run (by own
time).

    .venv/bin/python bench/webhook_bench.py --events 20000 --max-batch 1
    .venv/bin/python bench/webhook_bench.py --events 50000 --max-batch 100 --profile 25
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import multiprocessing
import pstats
import time
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType

from redis.asyncio import Redis

from gateway.keys_cli import create_key
from worker.config import WebhookSettings
from worker.redisproc import RedisProcess
from worker.store import (
    WEBHOOK_NOTIFY,
    WEBHOOK_SHARDS,
    Store,
    WebhookStore,
    webhook_shard,
    webhook_stream_key,
)
from worker.webhook_delivery import WebhookService


def _receiver(port: int, posts: Synchronized[int], ready: EventType) -> None:
    """A bare HTTP/1.1 server: reads each request (Content-Length bodies) and answers 200."""

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                head_end = self.buf.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                head = self.buf[:head_end].lower()
                i = head.find(b"content-length:")
                length = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0
                                  else None]) if i >= 0 else 0
                if len(self.buf) < head_end + 4 + length:
                    return
                self.buf = self.buf[head_end + 4 + length:]
                with posts.get_lock():
                    posts.value += 1
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")  # type: ignore[attr-defined]

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Proto, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def _fill(redis: Redis, count: int) -> None:
    at = str(int(time.time() * 1000))
    for start in range(0, count, 1000):
        pipe = redis.pipeline(transaction=False)
        for i in range(start, min(count, start + 1000)):
            api_id = f"01BENCH{i:019d}"
            pipe.xadd(webhook_stream_key("bench", webhook_shard(api_id)), {
                "kind": "status", "id": api_id, "status": "delivered", "cmid": f"c-{i}",
                "channel": "bench", "to": f"2782{i:07d}", "code": "", "text": "",
                "stat": "DELIVRD", "err": "000", "at": at})
        await pipe.execute()


async def _run(args: argparse.Namespace) -> None:
    port = 18000 + int(time.time()) % 1000
    posts: Synchronized[int] = multiprocessing.Value("q", 0)  # type: ignore[assignment]
    ready = multiprocessing.Event()
    sink = multiprocessing.Process(target=_receiver, args=(port, posts, ready), daemon=True)
    sink.start()
    async with RedisProcess() as url:
        redis = Redis.from_url(url)
        await create_key(Store(redis, 3600), name="bench", account="bench",
                         roles=frozenset({"Client"}), channels=None)
        hooks = WebhookStore(redis)
        await hooks.set_callback("bench", f"http://127.0.0.1:{port}/dlr", new_secret="s")
        await hooks.set_callback_options("bench", events=None, max_batch=args.max_batch,
                                         max_batch_delay_ms=20)
        for shard in range(WEBHOOK_SHARDS):
            await hooks.ensure_group("bench", shard)
        await _fill(redis, args.events)
        if not await asyncio.to_thread(ready.wait, 10):
            raise SystemExit("the receiver did not start")
        settings = WebhookSettings(allow_private_networks=True, lease_seconds=30)
        service_redis = Redis.from_url(url)
        profile = cProfile.Profile() if args.profile else None
        cpu0, t0 = time.process_time(), time.monotonic()
        if profile:
            profile.enable()
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(WEBHOOK_NOTIFY)
            task = asyncio.create_task(
                WebhookService(service_redis, settings, owner="b").run())
            delivered = 0
            async with asyncio.timeout(600):
                async for msg in pubsub.listen():
                    if msg["type"] == "message":
                        delivered += msg["data"].count(b" delivered ")
                        if delivered >= args.events:
                            break
        if profile:
            profile.disable()
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await service_redis.aclose()
        await redis.aclose()
    sink.terminate()
    print(f"max_batch={args.max_batch} events={args.events} posts={posts.value} "
          f"wall={wall:.2f}s events/s={args.events / wall:,.0f} "
          f"cpu={cpu:.2f}s cpu_ms_per_1000_events={1000 * cpu / args.events * 1000:.1f}")
    if profile:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.profile)
        print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--max-batch", type=int, default=1)
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
