"""Shared helpers of the benchmarks: the stack as child processes, counters, and a load generator.

- :class:`Stack` starts redis-server, the SMSC simulator, N workers and the gateway (as
  ``smsgw dev`` does, but with benchmark settings), each a child process in its own session,
  and stops them all. Gateway and workers run under this module's *probe*, which counts the
  Redis round trips each process makes (every ``send_packed_command`` of redis-py: one command
  or one whole pipeline, so an EVALSHA or a pipeline of 50 counts as one) and can cProfile
  the measured window.
- :func:`snapshot` reads the counters of a moment: per-process round trips (probe), redis
  ``INFO stats``/``commandstats``, CPU seconds and memory from ``/proc``.
- :func:`run_load` is a lean asyncio HTTP/1.1 keep-alive client (no aiohttp client on the
  hot path): it shares two cores with the system under test, so it must cost little.
- :class:`EventCounter` subscribes to ``smsgw:events`` with a raw RESP connection and counts
  messages reaching a final state, without parsing every event into Python objects.

Everything listens on 127.0.0.1 only, on free ports; every wait is bounded.

Run as a script, this module is the probe: ``python bench/_stack.py probe gateway …``.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import os
import re
import signal
import sys
import tempfile
import time
import timeit
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from redis.asyncio import Redis

PROBE_ENV = "SMSGW_BENCH_PROBE"  # file the probe writes its counters to on SIGUSR2
PROFILE_ENV = "SMSGW_BENCH_PROFILE"  # cProfile output of the probed window ('' = none)
CHANNEL = "sim"
SYSTEM_ID, PASSWORD = "bench", "bench"
ACCOUNT = "bench"
API_KEY = "sk_bench_" + "k" * 32
FINAL_STATES = (b"delivered", b"undelivered", b"expired", b"rejected", b"failed")
STOP_SECONDS = 20.0


# --- /proc ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process in KiB, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                out[name] = int(value.split()[0])
    return out


def host_speed() -> str:
    """A fixed pure-Python loop timed just now (best of 5): this shared VM's speed swings by up
    to half from one minute to the next, and with it every CPU and throughput figure."""
    loop = "sum(i * i for i in range(100_000))"
    best = min(timeit.repeat(loop, number=5, repeat=5)) / 5
    return f"host speed: reference loop {best * 1000:.1f} ms (lower is faster)"


def system_busy_seconds() -> float:
    """CPU seconds every CPU spent not idle since boot (all processes), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    # user nice system irq softirq: steal (time the hypervisor gave to other guests) is not
    # work done on this machine
    busy = values[0] + values[1] + values[2] + values[5] + values[6]
    return busy / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the stack --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StackOptions:
    """What to start and how the channel is configured."""

    workers: int = 1
    binds_per_worker: int = 2
    window: int = 50
    max_jobs: int = 200
    sim_args: tuple[str, ...] = ()
    with_worker: bool = True
    profile_dir: str = ""  # cProfile gateway and workers over each measured window


@dataclass
class Proc:
    """A child process we started."""

    name: str
    proc: asyncio.subprocess.Process
    probe_file: Path | None = None
    snapshots: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Stack:
    """A running gateway, workers, simulator and redis-server; all children of this process."""

    options: StackOptions
    tmp: Path
    base_url: str = ""
    redis_url: str = ""
    api_key: str = API_KEY
    procs: list[Proc] = field(default_factory=list)
    redis: Redis | None = None

    def by_role(self, prefix: str) -> list[Proc]:
        """Children whose name starts with ``prefix`` (``worker`` gives every worker)."""
        return [p for p in self.procs if p.name.startswith(prefix)]

    async def start_child(self, name: str, argv: Sequence[str], probe: bool) -> Proc:
        """Start ``python -m gateway argv`` (under the probe if asked), output to a log file."""
        env = dict(os.environ, REDIS_URL=self.redis_url,
                   SMSGW_CONFIG=str(self.tmp / "smsgw.toml"), SMSGW_LOG_LEVEL="WARNING")
        probe_file = None
        if probe:
            probe_file = self.tmp / f"{name}.probe.json"
            env[PROBE_ENV] = str(probe_file)
            if self.options.profile_dir:
                env[PROFILE_ENV] = str(Path(self.options.profile_dir) / f"{name}.prof")
            cmd = [sys.executable, __file__, "probe", *argv]
        else:
            cmd = [sys.executable, "-m", "gateway", *argv]
        log = (self.tmp / f"{name}.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            *cmd, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        log.close()
        child = Proc(name, proc, probe_file)
        self.procs.append(child)
        return child

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The end of a child's output (for error messages)."""
        path = self.tmp / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _config(port: int, binds: int, window: int, max_jobs: int) -> str:
    return (
        f'redis_url = "redis://127.0.0.1:6379/0"\n'  # REDIS_URL overrides it
        "[gateway]\n"
        f'default_channel = "{CHANNEL}"\n'
        'default_country_code = "27"\n'
        "[worker]\n"
        f"max_jobs = {max_jobs}\n"
        "drain_seconds = 5.0\n"
        f"[channels.{CHANNEL}]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f'system_id = "{SYSTEM_ID}"\npassword = "{PASSWORD}"\n'
        f"binds = {binds}\nwindow = {window}\n"
        "enquire_link_seconds = 30\n"
    )


@contextlib.asynccontextmanager
async def running_stack(
    options: StackOptions, start: Callable[[Stack], Awaitable[None]] | None = None,
) -> AsyncIterator[Stack]:
    """Start the whole stack (``start``: another way to start it than smsgw's own simulator,
    workers and gateway), wait until every bind is up, and stop everything on exit."""
    with tempfile.TemporaryDirectory(prefix="smsgw-bench-") as tmp:
        stack = Stack(options, Path(tmp))
        try:
            await (start or _start)(stack)
            yield stack
        finally:
            await _stop(stack)


async def start_redis(stack: Stack, *persistence: str) -> None:
    """redis-server on a free port (no RDB snapshots; ``persistence``: its AOF options, none
    by default), and the stack's client of it."""
    from worker.redisproc import find_redis_server

    redis_port = free_port()
    redis_dir = stack.tmp / "redis"
    redis_dir.mkdir()
    redis_log = (stack.tmp / "redis.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        find_redis_server(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
        *(persistence or ("--appendonly", "no")), "--dir", str(redis_dir), stdout=redis_log,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    redis_log.close()
    stack.procs.append(Proc("redis", proc))
    stack.redis_url = f"redis://127.0.0.1:{redis_port}/0"
    await wait_tcp(redis_port)
    stack.redis = Redis.from_url(stack.redis_url)


async def _start(stack: Stack) -> None:
    opts = stack.options
    sim_port, http_port = free_port(), free_port()
    await start_redis(stack)
    binds = opts.binds_per_worker * max(opts.workers, 1)
    (stack.tmp / "smsgw.toml").write_text(_config(sim_port, binds, opts.window, opts.max_jobs))
    await _create_key(stack)
    await stack.start_child("smsc-sim", [
        "smsc-sim", "--host", "127.0.0.1", "--port", str(sim_port),
        "--account", f"{SYSTEM_ID}:{PASSWORD}", *opts.sim_args], probe=False)
    await wait_tcp(sim_port)
    if opts.with_worker:
        for i in range(opts.workers):
            await stack.start_child(f"worker{i + 1}", ["worker"], probe=True)
    await stack.start_child("gateway", ["gateway", "--host", "127.0.0.1", "--port",
                                        str(http_port)], probe=True)
    stack.base_url = f"http://127.0.0.1:{http_port}"
    await wait_tcp(http_port)
    if opts.with_worker:
        await wait_binds(stack, binds)


async def _create_key(stack: Stack) -> None:
    from gateway.keys_cli import create_key
    from worker.store import Store

    assert stack.redis is not None
    await create_key(Store(stack.redis, 86400), name="bench", account=ACCOUNT,
                     roles=frozenset({"Client"}), channels=None, secret=API_KEY)


async def wait_binds(stack: Stack, binds: int, channel: str = CHANNEL) -> None:
    """Every bind slot of the channel held (a worker holds its later binds after a stagger)."""
    from worker.store import bind_key

    assert stack.redis is not None
    keys = [bind_key(channel, "tx", slot) for slot in range(binds)]
    try:
        async with asyncio.timeout(45):
            while await stack.redis.exists(*keys) < binds:
                check_alive(stack)
                await asyncio.sleep(0.2)  # polling another process's progress, bounded above
    except TimeoutError:
        raise RuntimeError("binds did not come up:\n" + stack.log_tail("worker1")) from None


def check_alive(stack: Stack) -> None:
    """RuntimeError with the end of its output if a child has exited."""
    for p in stack.procs:
        if p.proc.returncode is not None:
            raise RuntimeError(f"{p.name} exited with {p.proc.returncode}:\n"
                               + stack.log_tail(p.name))


async def _stop(stack: Stack) -> None:
    if stack.redis is not None:
        await stack.redis.aclose()
    # The gateway first, redis last: each stops while what it depends on is still there.
    for p in reversed(stack.procs):
        if p.proc.returncode is None:
            p.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_SECONDS):
                    await p.proc.wait()
            except TimeoutError:
                print(f"{p.name} did not stop in time; killing it", file=sys.stderr)
                p.proc.kill()
                await p.proc.wait()


async def wait_tcp(port: int, seconds: float = 30.0) -> None:
    """Wait (bounded) until 127.0.0.1:port accepts connections."""
    async with asyncio.timeout(seconds):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return


# --- counters ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Counters at one moment."""

    at: float
    round_trips: dict[str, int]  # per probed process
    cpu: dict[str, float]  # per process, seconds; "bench" is this process (the load)
    memory: dict[str, dict[str, int]]  # per process: VmRSS, VmHWM (KiB)
    system_busy: float  # every process on the machine, seconds
    redis_stats: dict[str, int]
    commandstats: dict[str, int]  # command -> calls (top-level and inside scripts)
    script_usec: int  # redis-server's time running EVAL/EVALSHA (the commands inside included)


REDIS_STAT_FIELDS = ("total_commands_processed", "total_writes_processed",
                     "total_reads_processed")


async def snapshot(redis: Redis, procs: Sequence[Proc]) -> Snapshot:
    """Read every counter (probes answer SIGUSR2 by writing theirs)."""
    live = [p for p in procs if p.proc.returncode is None]
    probed = [p for p in live if p.probe_file is not None]
    for p in probed:
        p.snapshots += 1
        p.proc.send_signal(signal.SIGUSR2)
    round_trips = {p.name: await _probe_counter(p) for p in probed}
    stats = await redis.info("stats")
    cmds = await redis.info("commandstats")
    return Snapshot(
        at=time.perf_counter(),
        round_trips=round_trips,
        cpu={"bench": cpu_seconds(os.getpid()), **{p.name: cpu_seconds(p.pid) for p in live}},
        system_busy=system_busy_seconds(),
        memory={p.name: memory_kb(p.pid) for p in live},
        redis_stats={k: int(stats.get(k, 0)) for k in REDIS_STAT_FIELDS},
        commandstats={k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in cmds.items()},
        script_usec=sum(int(v["usec"]) for k, v in cmds.items()
                        if k in ("cmdstat_evalsha", "cmdstat_eval")),
    )


async def _probe_counter(p: Proc) -> int:
    assert p.probe_file is not None
    async with asyncio.timeout(10):
        while True:
            try:
                data = json.loads(p.probe_file.read_text())
            except (OSError, ValueError):
                data = {"seq": -1}
            if data["seq"] >= p.snapshots:
                return int(data["round_trips"])
            await asyncio.sleep(0.005)  # the child answers a signal: poll its file, bounded


@dataclass(frozen=True, slots=True)
class Delta:
    """What happened between two snapshots."""

    seconds: float
    round_trips: dict[str, int]
    cpu: dict[str, float]
    redis_stats: dict[str, int]
    commandstats: dict[str, int]
    script_usec: int
    other_cpu: float  # CPU seconds of processes that are not ours (other work on the machine)

    def round_trips_of(self, prefix: str) -> int:
        """Round trips of every probed process whose name starts with ``prefix``."""
        return sum(v for k, v in self.round_trips.items() if k.startswith(prefix))

    def cpu_of(self, prefix: str) -> float:
        """CPU seconds of every process whose name starts with ``prefix``."""
        return sum(v for k, v in self.cpu.items() if k.startswith(prefix))


def delta(a: Snapshot, b: Snapshot) -> Delta:
    """b - a, without the INFO calls that read the counters (one reply write each)."""
    cmds = {k: v - a.commandstats.get(k, 0) for k, v in b.commandstats.items()}
    info = cmds.pop("info", 0)
    stats = {k: b.redis_stats[k] - a.redis_stats[k] - info for k in b.redis_stats}
    return Delta(
        seconds=b.at - a.at,
        round_trips={k: v - a.round_trips.get(k, 0) for k, v in b.round_trips.items()},
        cpu={k: v - a.cpu.get(k, 0.0) for k, v in b.cpu.items()},
        redis_stats=stats,
        commandstats={k: v for k, v in cmds.items() if v > 0},
        script_usec=b.script_usec - a.script_usec,
        other_cpu=b.system_busy - a.system_busy - sum(b.cpu.values()) + sum(a.cpu.values()),
    )


def top_commands(cmds: dict[str, int], per: float, n: int = 8) -> str:
    """'evalsha 1.00, hset 3.00, …' per unit, most frequent first."""
    ranked = sorted(cmds.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} {v / per:.2f}" for k, v in ranked)


# --- HTTP load --------------------------------------------------------------------------------


class HttpError(Exception):
    """The server answered in a way the load generator does not understand."""


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: one request at a time, Content-Length bodies."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._want = -1  # header length + body length once the header is complete
        self._status = 0
        self._body_at = 0
        self._fut: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._fut is not None and not self._fut.done():
            self._fut.set_exception(HttpError(f"connection lost: {exc}"))
        if not self.lost.done():
            self.lost.set_result(None)

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self._fut = asyncio.get_running_loop().create_future()
        self._buf.clear()
        self._want = -1
        self.transport.write(data)
        return self._fut

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._want < 0:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[:end]).lower()
            match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            if match is None:
                self._fail(HttpError("response without Content-Length"))
                return
            self._status = int(head[9:12])
            self._body_at = end + 4
            self._want = self._body_at + int(match.group(1))
        if len(self._buf) >= self._want and self._fut is not None and not self._fut.done():
            self._fut.set_result((self._status, bytes(self._buf[self._body_at:self._want])))

    def _fail(self, exc: Exception) -> None:
        if self._fut is not None and not self._fut.done():
            self._fut.set_exception(exc)


def build_request(method: str, path: str, port: int, headers: dict[str, str],
                  body: bytes = b"") -> bytes:
    """The raw bytes of one HTTP/1.1 request (built once, sent many times)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class LoadResult:
    """What the load generator saw."""

    requests: int = 0
    accepted: int = 0  # messages answered with accepted:true
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # kept only when asked
    first_sent: float = 0.0
    last_answer: float = 0.0

    def percentile(self, p: float) -> float:
        """Latency percentile in seconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ranked = sorted(self.latencies)
        return ranked[min(len(ranked) - 1, max(0, round(p / 100 * len(ranked)) - 1))]


ACCEPTED_MARK = re.compile(rb'"accepted":\s*true')


async def run_load(
    port: int, requests: Sequence[bytes], *, concurrency: int, max_requests: int,
    seconds: float, keep_bodies: bool = False,
) -> LoadResult:
    """Send requests (cycling through ``requests``) on ``concurrency`` keep-alive connections
    until ``max_requests`` were answered or ``seconds`` have passed."""
    loop = asyncio.get_running_loop()
    conns: list[_Conn] = []
    for _ in range(concurrency):
        _, conn = await loop.create_connection(_Conn, "127.0.0.1", port)
        conns.append(conn)
    result = LoadResult()
    budget = [max_requests]
    deadline = time.perf_counter() + seconds
    result.first_sent = time.perf_counter()

    async def drive(conn: _Conn, offset: int) -> None:
        i = offset
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            t0 = time.perf_counter()
            status, body = await conn.request(requests[i % len(requests)])
            t1 = time.perf_counter()
            i += concurrency
            result.latencies.append(t1 - t0)
            result.requests += 1
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.accepted += len(ACCEPTED_MARK.findall(body))
            result.last_answer = t1
            if keep_bodies:
                result.bodies.append(body)

    try:
        async with asyncio.timeout(seconds + 30):
            await asyncio.gather(*(drive(c, i) for i, c in enumerate(conns)))
    finally:
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
    return result


def send_body(batch: int, seq: int, content: str = "Benchmark message from smsgw") -> bytes:
    """A send request of ``batch`` messages, each to its own recipient."""
    messages = [{"channel": CHANNEL, "to": f"+2782{(seq * batch + i) % 10_000_000:07d}",
                 "content": content} for i in range(batch)]
    return json.dumps({"Messages": messages}).encode()


def send_requests(port: int, api_key: str, batch: int, count: int = 64) -> list[bytes]:
    """``count`` distinct ready-to-send request byte strings of ``batch`` messages each."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
               "Accept": "application/json"}
    return [build_request("POST", "/communication/message/smpp/sms", port, headers,
                          send_body(batch, seq)) for seq in range(count)]


# --- transition events ------------------------------------------------------------------------


class EventCounter(asyncio.Protocol):
    """Counts final-state events on ``smsgw:events`` from a raw RESP subscription.

    A script run publishes its transitions as one message of ``"{id} {status}"`` lines; counting
    each status where a line ends (``\\n`` inside the message, ``\\r\\n`` at the end of the RESP
    bulk string) in the raw stream, carrying a short tail across reads, costs a few
    microseconds per read, not per event.
    """

    MARKS = tuple(b" " + s + end for s in FINAL_STATES for end in (b"\n", b"\r\n"))
    DELIVERED = (b" delivered\n", b" delivered\r\n")

    def __init__(self) -> None:
        self.finals = 0
        self.delivered = 0
        self.reads = 0
        self.subscribed = asyncio.get_running_loop().create_future()
        self._tail = b""
        self._target = 0
        self._done: asyncio.Future[float] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)
        transport.write(b"*2\r\n$9\r\nSUBSCRIBE\r\n$12\r\nsmsgw:events\r\n")

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        if not self.subscribed.done() and b"subscribe" in data:
            self.subscribed.set_result(None)
        # A mark split across two reads is counted once: with the previous read's last
        # len(mark) - 1 bytes in front, too short to hold a whole mark already counted.
        for mark in self.MARKS:
            n = (self._tail[len(self._tail) - len(mark) + 1:] + data).count(mark)
            self.finals += n
            if mark in self.DELIVERED:
                self.delivered += n
        self._tail = (self._tail + data)[-16:]
        self._check()

    def wait_for(self, target: int) -> asyncio.Future[float]:
        """A future set to the perf_counter time at which ``target`` finals were seen."""
        self._target = target
        self._done = asyncio.get_running_loop().create_future()
        self._check()
        return self._done

    def _check(self) -> None:
        if self._done is not None and not self._done.done() and self.finals >= self._target:
            self._done.set_result(time.perf_counter())


async def subscribe_events(redis_url: str) -> EventCounter:
    """A subscribed :class:`EventCounter` (confirmed before it returns)."""
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    _, counter = await asyncio.get_running_loop().create_connection(
        EventCounter, "127.0.0.1", port)
    async with asyncio.timeout(10):
        await counter.subscribed
    return counter


# --- the probe (runs inside a gateway or worker process) --------------------------------------


def _probe_main(argv: list[str]) -> int:
    """Count redis-py round trips, answer SIGUSR2 with the count, then run ``smsgw argv``."""
    from redis.asyncio.connection import AbstractConnection

    from gateway.cli import main

    out = Path(os.environ[PROBE_ENV])
    profile_path = os.environ.get(PROFILE_ENV, "")
    state: dict[str, Any] = {"round_trips": 0, "seq": 0, "profiler": None}
    original = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        state["round_trips"] += 1  # one write of one command or of a whole pipeline
        await original(self, command, check_health)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]

    def on_signal(signum: int, frame: object) -> None:
        state["seq"] += 1
        if profile_path:
            _toggle_profile(state, f"{profile_path}.{state['seq'] // 2}")
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seq": state["seq"], "round_trips": state["round_trips"]}))
        tmp.replace(out)

    signal.signal(signal.SIGUSR2, on_signal)
    return main(argv)


def _toggle_profile(state: dict[str, Any], path: str) -> None:
    # Odd snapshots open a measured window, even ones close it: profile exactly that window.
    prof: cProfile.Profile | None = state["profiler"]
    if prof is None:
        prof = cProfile.Profile()
        state["profiler"] = prof
        prof.enable()
    else:
        prof.disable()
        prof.dump_stats(path)
        state["profiler"] = None


if __name__ == "__main__":
    if sys.argv[1:2] != ["probe"]:
        sys.exit("usage: _stack.py probe <smsgw arguments>")
    sys.exit(_probe_main(sys.argv[2:]))
