"""Benchmark: sustained submit_sm/s of the SMSC simulator on one core.

The simulator runs in its own process (pinned to one CPU when the OS allows); a separate
load-generator process drives it over N transmitter binds, each keeping a large window of
submit_sm in flight, for a bounded count and time. Prints submit_sm/s and the simulator's CPU
seconds (from /proc), which is the honest figure: it excludes the load generator.

    .venv/bin/python bench/simulator_bench.py --count 200000 --binds 4 --window 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

from worker.smpp.pdu import (
    BIND_TRANSCEIVER,
    BIND_TRANSMITTER,
    DELIVER_SM,
    DELIVER_SM_RESP,
    ESME_ROK,
    RESP_BIT,
    SUBMIT_SM,
    SUBMIT_SM_RESP,
    Bind,
    PduBuffer,
    ShortMessage,
    encode_pdu,
)

SYSTEM_ID, PASSWORD = "bench", "bench"


# --- load generator (runs in its own process) --------------------------------------------------


@dataclass
class Tally:
    """Shared by the load generator's connections."""

    to_send: int
    bind_id: int
    answered: int = 0
    receipts: int = 0
    ok: int = 0
    first_sent: float = 0.0
    last_answer: float = 0.0


class LoadClient(asyncio.Protocol):
    """One bind keeping `window` submit_sm in flight (and acknowledging receipts)."""

    def __init__(self, tally: Tally, window: int, body: bytes, done: asyncio.Future[None]) -> None:
        self._tally, self._window, self._body, self._done = tally, window, body, done
        self._frames = PduBuffer()
        self._transport: asyncio.Transport | None = None
        self._in_flight = 0
        self._seq = 1
        self.bound: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        bind = Bind(SYSTEM_ID, PASSWORD).encode()
        transport.write(encode_pdu(self._tally.bind_id, 0, 1, bind))

    def start(self) -> None:
        self._fill()

    def _fill(self) -> None:
        tally, out = self._tally, []
        while self._in_flight < self._window and tally.to_send > 0:
            self._seq += 1
            tally.to_send -= 1
            self._in_flight += 1
            out.append(encode_pdu(SUBMIT_SM, 0, self._seq, self._body))
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        tally = self._tally
        acks = []
        for pdu in self._frames.feed(data):
            if pdu.command_id == SUBMIT_SM_RESP:
                self._in_flight -= 1
                tally.answered += 1
                tally.ok += pdu.status == ESME_ROK
            elif pdu.command_id == tally.bind_id | RESP_BIT and not self.bound.done():
                self.bound.set_result(None)
            elif pdu.command_id == DELIVER_SM:
                tally.receipts += 1
                acks.append(encode_pdu(DELIVER_SM_RESP, 0, pdu.seq, b"\x00"))
        if acks and self._transport is not None:
            self._transport.write(b"".join(acks))
        tally.last_answer = time.perf_counter()
        if tally.to_send == 0 and self._in_flight == 0 and not self._done.done():
            self._done.set_result(None)
        self._fill()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_exception(ConnectionError(f"simulator closed the connection: {exc}"))


async def _connect(client: LoadClient, port: int) -> None:
    await asyncio.get_running_loop().create_connection(lambda: client, "127.0.0.1", port)


async def run_load(
    port: int, count: int, binds: int, window: int, time_limit: float, receipts: bool
) -> dict[str, float]:
    """Bind, then push `count` submit_sm through `binds` connections; return the tally."""
    loop = asyncio.get_running_loop()
    body = ShortMessage(
        source_addr="BENCH",
        destination_addr="447700900000",
        short_message=b"benchmark text " * 4,
        registered_delivery=1 if receipts else 0,
    ).encode()
    tally = Tally(to_send=count, bind_id=BIND_TRANSCEIVER if receipts else BIND_TRANSMITTER)
    clients: list[LoadClient] = []
    done_futures = []
    for _ in range(binds):
        done: asyncio.Future[None] = loop.create_future()
        client = LoadClient(tally, window, body, done)
        await _connect(client, port)
        clients.append(client)
        done_futures.append(done)
    await asyncio.gather(*(client.bound for client in clients))
    tally.first_sent = time.perf_counter()
    for client in clients:
        client.start()
    try:
        async with asyncio.timeout(time_limit):
            # A client whose share ran out early finishes first; all of them must finish.
            await asyncio.gather(*done_futures)
    except TimeoutError:
        pass
    elapsed = max(tally.last_answer - tally.first_sent, 1e-9)
    return {
        "answered": tally.answered,
        "ok": tally.ok,
        "receipts": tally.receipts,
        "elapsed": elapsed,
    }


# --- orchestration -----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(pid: int, cpu: int) -> bool:
    """Pin a process to one CPU; False when the OS or the CPU set does not allow it."""
    try:
        os.sched_setaffinity(pid, {cpu})
    except (AttributeError, OSError):
        return False
    return True


def start_simulator(extra: list[str]) -> tuple[subprocess.Popen[str], int]:
    """Start `smsc-sim` on a free port; return the process and its port."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker.simulator.cli",
            "--port",
            "0",
            "--account",
            f"{SYSTEM_ID}:{PASSWORD}",
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on .*:(\d+)$", line.strip())
    if match is None:
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc, int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--binds", type=int, default=4)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument(
        "--receipts", action="store_true", help="transceiver binds, registered_delivery=1"
    )
    parser.add_argument("--sim-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--sim-args", default="", help="extra smsc-sim flags, e.g. '--log x.jsonl'")
    parser.add_argument("--load-port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.load_port is not None:  # we are the load-generator process
        result = asyncio.run(
            run_load(
                args.load_port, args.count, args.binds, args.window, args.timeout, args.receipts
            )
        )
        print(json.dumps(result), flush=True)
        return 0

    sim, port = start_simulator(args.sim_args.split())
    try:
        pinned = pin(sim.pid, args.sim_cpu)
        cpu_before = cpu_seconds(sim.pid)
        load = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--load-port",
                str(port),
                "--count",
                str(args.count),
                "--binds",
                str(args.binds),
                "--window",
                str(args.window),
                "--timeout",
                str(args.timeout),
                *(["--receipts"] if args.receipts else []),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        pin(load.pid, args.load_cpu)
        out, _ = load.communicate(timeout=args.timeout + 30)
        cpu_used = cpu_seconds(sim.pid) - cpu_before
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    result = json.loads(out)
    rate = result["answered"] / result["elapsed"]
    print(f"simulator pinned to one CPU: {pinned} (cpu {args.sim_cpu})")
    print(
        f"binds={args.binds} window={args.window} count={args.count} "
        f"receipts={args.receipts} sim_args={args.sim_args!r}"
    )
    print(
        f"answered {result['answered']} submit_sm ({result['ok']} ESME_ROK, "
        f"{result['receipts']} receipts seen) in {result['elapsed']:.2f} s"
    )
    print(f"sustained: {rate:,.0f} submit_sm/s")
    print(
        f"simulator CPU: {cpu_used:.2f} s ({result['answered'] / max(cpu_used, 1e-9):,.0f} "
        f"submit_sm per CPU-second)"
    )
    return 0 if result["answered"] == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
