"""Benchmark (issue 5): end-to-end throughput, from the first HTTP request until every message's
delivery receipt is recorded.

Each scenario starts a fresh stack (redis-server, the SMSC simulator answering at once with
window 50, N workers, the gateway), warms it up, then sends ``--messages`` messages at
concurrency 50 in batches of 100 or one per request, and stops the clock when the last message
reaches a final state on the store's transition events (pub/sub ``smsgw:events``). Afterwards
every message is looked up through the status API (``POST …/sms/status``, 1000 ids a request)
and the statuses are counted.

Prints per scenario: messages/s; Redis round trips per message (exact, counted inside gateway
and workers by a probe: one command, EVALSHA or pipeline = one), with redis-server's own counts;
worker CPU seconds per 1,000 messages (/proc/<pid>/stat); peak RSS (VmHWM) of every process.
The throttled scenario (the simulator answers 10% of submit_sm with ESME_RTHROTTLED) must still
end with every message delivered; its throughput is compared with the unthrottled one.

    .venv/bin/python bench/e2e_bench.py                      # 1 and 2 workers, batch 100 and 1,
                                                             # then throttled; 20,000 messages
    .venv/bin/python bench/e2e_bench.py --long               # 100,000 messages, RSS over time
    .venv/bin/python bench/e2e_bench.py --workers 1 --batches 100 --no-throttled --profile /tmp/p
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack as st  # a sibling module, not a package

from worker import eventloop  # the load generator runs on uvloop too

THROTTLE_ARGS = ("--error-rate", "0x58:0.1")
WARMUP_MESSAGES = 200
ID_RE = re.compile(rb'"apiMessageId":\s*"([0-9A-Z]{26})"')


@dataclass(frozen=True, slots=True)
class Scenario:
    """One measured run."""

    workers: int
    batch: int
    messages: int
    throttled: bool = False

    @property
    def name(self) -> str:
        kind = "throttled 10%, " if self.throttled else ""
        return f"{kind}{self.workers} worker(s), batch {self.batch}, {self.messages} messages"


@dataclass
class Outcome:
    """What one scenario measured."""

    scenario: Scenario
    rate: float = 0.0  # 0 when it did not finish in time
    seconds: float = float("nan")  # from the first request until the last message was final
    statuses: Counter[str] = field(default_factory=Counter)
    samples: list[tuple[float, int, dict[str, int]]] = field(default_factory=list)

    @property
    def all_delivered(self) -> bool:
        return set(self.statuses) == {"delivered"}


async def run(sc: Scenario, args: argparse.Namespace) -> Outcome:
    """Start a fresh stack, run the scenario in it, print and return the figures."""
    sim_args = ("--window", "50", *(THROTTLE_ARGS if sc.throttled else ()))
    options = st.StackOptions(workers=sc.workers, window=50, sim_args=sim_args,
                              binds_per_worker=args.binds,
                              profile_dir=_profile_dir(args.profile, sc))
    out = Outcome(sc)
    async with st.running_stack(options) as stack:
        assert stack.redis is not None
        port = int(stack.base_url.rsplit(":", 1)[1])
        events = await st.subscribe_events(stack.redis_url)
        try:
            warm = await _warm_up(port, stack.api_key, events, sc.batch)
            requests = st.send_requests(port, stack.api_key, sc.batch, count=256)
            sampler = asyncio.create_task(_sample(stack, events, args.sample_seconds, out))
            before = await st.snapshot(stack.redis, stack.procs)
            load = await st.run_load(port, requests, concurrency=args.concurrency,
                                     max_requests=math.ceil(sc.messages / sc.batch),
                                     seconds=args.timeout, keep_bodies=True)
            try:
                async with asyncio.timeout(args.timeout):
                    done_at = await events.wait_for(warm + load.accepted)
            except TimeoutError:
                done_at = float("nan")
                print(f"!! timed out: {events.finals - warm} of {load.accepted} final",
                      file=sys.stderr)
            after = await st.snapshot(stack.redis, stack.procs)
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            out.seconds = done_at - load.first_sent
            out.rate = load.accepted / out.seconds if out.seconds > 0 else 0.0
            out.statuses = await _statuses(port, stack.api_key, load.bodies)
            _report(out, load, st.delta(before, after), after, events.delivered - warm)
        finally:
            if events.transport is not None:
                events.transport.close()
    return out


def _profile_dir(root: str | None, sc: Scenario) -> str:
    """A directory of its own for each scenario's profiles ('' when not profiling)."""
    if not root:
        return ""
    path = Path(root) / re.sub(r"\W+", "-", sc.name).strip("-")
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


async def _warm_up(port: int, api_key: str, events: st.EventCounter, batch: int) -> int:
    """Load scripts and open connections everywhere; the number of messages it finished."""
    requests = st.send_requests(port, api_key, batch, count=4)
    load = await st.run_load(port, requests, concurrency=4,
                             max_requests=max(1, WARMUP_MESSAGES // batch), seconds=30)
    async with asyncio.timeout(30):
        await events.wait_for(load.accepted)
    return load.accepted


async def _sample(stack: st.Stack, events: st.EventCounter, every: float, out: Outcome) -> None:
    """RSS of every process every ``every`` seconds (memory flatness)."""
    start = time.perf_counter()
    while True:
        rss = {p.name: st.memory_kb(p.pid)["VmRSS"] for p in stack.procs
               if p.proc.returncode is None}
        out.samples.append((time.perf_counter() - start, events.finals, rss))
        await asyncio.sleep(every)  # a sampling period, not synchronisation


async def _statuses(port: int, api_key: str, bodies: list[bytes]) -> Counter[str]:
    """Every accepted message's status, through the status API (1000 ids per lookup)."""
    ids = [m.decode() for body in bodies for m in ID_RE.findall(body)]
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
               "Accept": "application/json"}
    lookups = [st.build_request("POST", "/communication/message/smpp/sms/status", port, headers,
                                json.dumps({"apiMessageIds": ids[i:i + 1000]}).encode())
               for i in range(0, len(ids), 1000)]
    counts: Counter[str] = Counter()
    if not lookups:
        return counts
    load = await st.run_load(port, lookups, concurrency=1, max_requests=len(lookups),
                             seconds=120, keep_bodies=True)
    for body in load.bodies:
        counts.update(m["status"] for m in json.loads(body)["messages"])
    counts["(not found)"] = len(ids) - sum(counts.values())
    return +counts


def _report(out: Outcome, load: st.LoadResult, d: st.Delta, after: st.Snapshot,
            delivered_events: int) -> None:
    sc = out.scenario
    n = max(load.accepted, 1)
    print(f"\n== {sc.name} ({st.host_speed()}, timed right after the run)")
    codes = ", ".join(f"HTTP {k} x{v}" for k, v in sorted(load.statuses.items()))
    print(f"  {load.accepted} accepted ({load.requests} requests: {codes}) in "
          f"{load.last_answer - load.first_sent:.2f} s (p50 {load.percentile(50) * 1000:.0f} ms, "
          f"p99 {load.percentile(99) * 1000:.0f} ms); all final after {out.seconds:.2f} s -> "
          f"{out.rate:,.0f} msg/s end to end")
    print(f"  statuses by lookup: {dict(out.statuses)}; delivered events {delivered_events}")
    rt = ", ".join(f"{k} {v / n:.3f}" for k, v in sorted(d.round_trips.items()))
    print(f"  redis round trips per message: {sum(d.round_trips.values()) / n:.3f} "
          f"(probe, exact: {rt})")
    rs = d.redis_stats
    print(f"  redis-server per message: {rs['total_writes_processed'] / n:.2f} reply writes "
          f"(incl. pub/sub to this bench), {rs['total_commands_processed'] / n:.1f} commands "
          f"executed (incl. inside Lua): {st.top_commands(d.commandstats, n, 10)}")
    print(f"  redis-server time per message: {d.cpu_of('redis') / n * 1e6:.1f} us of CPU "
          f"(/proc), of which {d.script_usec / n:.1f} us running scripts (INFO commandstats: "
          f"EVALSHA/EVAL usec, the commands inside included)")
    print(f"  worker CPU: {d.cpu_of('worker') / n * 1000:.3f} s per 1,000 messages "
          f"(all workers); per process per 1,000: "
          + ", ".join(f"{'load generator' if k == 'bench' else k} {v / n * 1000:.3f}"
                      for k, v in sorted(d.cpu.items()))
          + f"; other processes on the machine {max(d.other_cpu, 0):.2f} s in all "
          f"({d.seconds:.1f} s x 2 cores available)")
    ours = sum(d.cpu.values()) / n
    print(f"  CPU of every process of ours (load generator included): {ours * 1000:.3f} ms per "
          f"message: at most ~{2 / ours:,.0f} msg/s on 2 idle cores (CPU-bound estimate)")
    print("  peak RSS (VmHWM, MiB): " + ", ".join(
        f"{k} {m['VmHWM'] / 1024:.1f}" for k, m in sorted(after.memory.items())))


def _report_samples(out: Outcome) -> None:
    print(f"\n  RSS over time (MiB) for {out.scenario.name}:")
    names = sorted(out.samples[0][2]) if out.samples else []
    print("    " + f"{'t (s)':>7} {'final':>8} " + " ".join(f"{n:>10}" for n in names))
    for t, finals, rss in out.samples:
        print("    " + f"{t:7.1f} {finals:8d} "
              + " ".join(f"{rss.get(n, 0) / 1024:10.1f}" for n in names))


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    """The runs asked for, in order."""
    if args.long:
        return [Scenario(1, 100, args.messages or 100_000)]
    n = args.messages or 20_000
    runs = [Scenario(w, b, n) for w in args.workers for b in args.batches]
    if not args.no_throttled:
        runs.append(Scenario(1, 100, n, throttled=True))
    return runs


async def main_async(args: argparse.Namespace) -> int:
    """Run every scenario; 1 if a message did not end delivered."""
    print("load generator: lean asyncio HTTP/1.1 keep-alive client (bench/_stack.py run_load), "
          f"{args.concurrency} connections, in this process; {os.cpu_count()} CPUs")
    outcomes: list[Outcome] = []
    for sc in scenarios(args):
        outcomes.append(await run(sc, args))
        if args.long:
            _report_samples(outcomes[-1])
    plain = {(o.scenario.workers, o.scenario.batch): o.rate
             for o in outcomes if not o.scenario.throttled}
    for o in outcomes:
        if o.scenario.throttled:
            base = plain.get((o.scenario.workers, o.scenario.batch))
            ok = "every message delivered" if o.all_delivered else "NOT every message delivered"
            ratio = f"{o.rate / base:.0%} of the unthrottled {base:,.0f} msg/s" if base else (
                "no unthrottled run to compare with")
            print(f"\nthrottled: {ok}; {o.rate:,.0f} msg/s = {ratio}")
    print("\nsummary (msg/s end to end): " + "; ".join(
        f"{o.scenario.name}: {o.rate:,.0f}" for o in outcomes))
    if args.profile:
        print(f"cProfile of each measured window: {args.profile}/<scenario>/<process>.prof.1")
    return 0 if all(o.all_delivered for o in outcomes) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=0,
                   help="messages per scenario (default 20,000; 100,000 with --long)")
    p.add_argument("--workers", type=ints, default=[1, 2], help="comma list (default 1,2)")
    p.add_argument("--batches", type=ints, default=[100, 1], help="comma list (default 100,1)")
    p.add_argument("--no-throttled", action="store_true", help="skip the throttled scenario")
    p.add_argument("--long", action="store_true",
                   help="one 100,000-message run (1 worker, batch 100) printing RSS over time")
    p.add_argument("--binds", type=int, default=2,
                   help="binds per worker (default 2); each bind has window 50")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--timeout", type=float, default=600.0, help="bound on each scenario's run")
    p.add_argument("--sample-seconds", type=float, default=0.0,
                   help="RSS sampling period (default 2 s with --long, else 1 s)")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="cProfile gateway and workers over each measured window into DIR")
    args = p.parse_args(argv)
    args.sample_seconds = args.sample_seconds or (2.0 if args.long else 1.0)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    if args.messages < 0 or args.messages > 1_000_000:
        p.error("--messages must be within 0..1,000,000")
    return args


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(eventloop.run(main_async(parse_args())))
