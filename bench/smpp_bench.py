"""Benchmark (issue 16): one SMPP client bind through ``smsgw smpp-server``, receipts back to it.

The figures compare with the HTTP scenarios s1 and s3 of the side-by-side harness
(``../shared/peers/pairs.sh``): the same node-smpp SMSC simulator (the peers' ``smsc/smsc.js``,
started as ``smsc.sh`` starts it: submit_sm answered at once, receipts 100 ms later), the same
smsgw (redis-server with AOF everysec, one worker whose channel ``bench`` is one transceiver
with window 100, as ``ours.sh`` configures it, one gateway) plus one smpp-server, all on free
ports of 127.0.0.1. It creates an SMPP user without limits, binds ONE transceiver that keeps
``--window`` submit_sm outstanding and answers every deliver_sm, sends ``--count`` messages
(s1 and s3 send 10,000; load.py's text and a distinct destination each), and prints one JSON
line:

- ``accept_rate``: submit_sm_resp ESME_ROK per second, from the first submit_sm to the last
  response (load.py's accept_rate: accepted / first request to last answer);
- ``e2e_rate``: messages the simulator accepted per second, read from its ``/stats`` as
  load.py reads it (distinct destinations / first submit_sm to its last accepted submit_sm);
- ``receipt_rate``: distinct receipts (deliver_sm matched by receipted_message_id to the
  message_ids we got) per second, from the first submit_sm to the last new one;
- ``lost`` and ``duplicated``, at the simulator (accepted minus distinct destinations; its
  duplicate count) and of the receipts (accepted ids that got none; second receipts of an id),
  and receipts for ids we were never given;
- ``cpu_us_per_message`` of every process (``/proc``; ``bench`` is this client) and Redis
  ``round_trips_per_message`` of worker, smpp-server and gateway (counted inside them), from
  the first submit_sm until the last receipt.

    .venv/bin/python bench/smpp_bench.py --count 2000            # a quick check
    .venv/bin/python bench/smpp_bench.py                         # 10,000 messages, window 100
    ../shared/peers/smsc.sh start && .venv/bin/python bench/smpp_bench.py --reuse-smsc

The simulator comes from the peers' folder (``--peers``, default ``../shared/peers`` beside the
checkout) and its node modules from ``$PEERS_HOME`` (``/tmp/smsgw-peers``), which
``setup.sh`` (run by pairs.sh) installs. Bounded in count and time; 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack as st  # a sibling module, not a package
from aiohttp import ClientSession, ClientTimeout

from gateway.smpp_server.users import SmppUserSpec, create_user
from worker import eventloop
from worker.senders import Senders
from worker.smpp.pdu import (
    BIND_TRANSCEIVER,
    BIND_TRANSCEIVER_RESP,
    DELIVER_SM,
    DELIVER_SM_RESP,
    ENQUIRE_LINK,
    ENQUIRE_LINK_RESP,
    ESME_ROK,
    GENERIC_NACK,
    MESSAGE_STATE,
    RECEIPTED_MESSAGE_ID,
    SUBMIT_SM,
    SUBMIT_SM_RESP,
    UNBIND,
    UNBIND_RESP,
    Bind,
    PduBuffer,
    PduError,
    ShortMessage,
    decode_message_id,
    encode_pdu,
    status_name,
    tlv_int,
)
from worker.store.smpp_server import SmppServerStore

CHANNEL = "bench"  # ours.sh's channel
ACCOUNT = "bench"
CLIENT_ID, CLIENT_PASSWORD = "smppbench", "bench16"
SMSC_ID, SMSC_PASSWORD = "bench", "bench"  # what the worker binds to the simulator with
REUSED_SMSC_PORT, REUSED_STATS_PORT = 2775, 2776  # where smsc.sh starts the simulator
RECEIPT_ESM_CLASS = 0x04
FIRST_SUBMIT_SEQ = 2  # 1 is the bind


# --- the client ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the client saw; times are perf_counter seconds."""

    answered: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    ids: set[str] = field(default_factory=set)  # message_ids of accepted submits
    receipts: Counter[str] = field(default_factory=Counter)  # receipted id -> deliver_sm seen
    matched: int = 0  # distinct receipted ids that are ours
    states: Counter[int] = field(default_factory=Counter)  # message_state of the receipts
    other_deliver_sm: int = 0  # deliver_sm that are no receipt (or could not be read)
    first_sent: float = 0.0
    last_answer: float = 0.0
    last_receipt: float = 0.0  # when ``matched`` last grew

    @property
    def accepted(self) -> int:
        return self.statuses[ESME_ROK]


class BenchClient(asyncio.Protocol):
    """One transceiver: ``window`` submit_sm outstanding; every deliver_sm answered at once."""

    def __init__(self, bodies: list[bytes], window: int) -> None:
        loop = asyncio.get_running_loop()
        self.tally = Tally()
        self.bound: asyncio.Future[int] = loop.create_future()  # the bind's command_status
        self.lost: asyncio.Future[None] = loop.create_future()
        self.progress = asyncio.Event()
        self._bodies, self._window = bodies, window
        self._frames = PduBuffer()
        self._transport: asyncio.Transport | None = None
        self._next = 0  # index of the next body to send
        self._in_flight = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport
        self._transport = cast(asyncio.Transport, transport)
        bind = Bind(CLIENT_ID, CLIENT_PASSWORD).encode()
        self._transport.write(encode_pdu(BIND_TRANSCEIVER, ESME_ROK, 1, bind))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self.progress.set()

    def start(self) -> None:
        """Send the first window."""
        self.tally.first_sent = time.perf_counter()
        self._fill()

    @property
    def finished(self) -> bool:
        """Every submit answered and every accepted one receipted (or the connection gone)."""
        t = self.tally
        return self.lost.done() or (
            t.answered == len(self._bodies) and t.matched >= t.accepted)

    def unbind(self) -> None:
        """Ask the server to end the session."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(encode_pdu(UNBIND, ESME_ROK, 1))

    def _fill(self) -> None:
        out = []
        while self._in_flight < self._window and self._next < len(self._bodies):
            out.append(encode_pdu(SUBMIT_SM, ESME_ROK, FIRST_SUBMIT_SEQ + self._next,
                                  self._bodies[self._next]))
            self._next += 1
            self._in_flight += 1
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        replies = []
        for pdu in self._frames.feed(data):
            cid = pdu.command_id
            if cid == SUBMIT_SM_RESP or (cid == GENERIC_NACK and pdu.seq >= FIRST_SUBMIT_SEQ):
                self._answered(pdu.status, pdu.body if cid == SUBMIT_SM_RESP else b"")
            elif cid == DELIVER_SM:
                self._deliver_sm(pdu.body)
                replies.append(encode_pdu(DELIVER_SM_RESP, ESME_ROK, pdu.seq, b"\x00"))
            elif cid == ENQUIRE_LINK:
                replies.append(encode_pdu(ENQUIRE_LINK_RESP, ESME_ROK, pdu.seq))
            elif cid == UNBIND:
                replies.append(encode_pdu(UNBIND_RESP, ESME_ROK, pdu.seq))
            elif cid in (BIND_TRANSCEIVER_RESP, GENERIC_NACK) and not self.bound.done():
                self.bound.set_result(pdu.status)
        if replies and self._transport is not None:
            self._transport.write(b"".join(replies))
        self._fill()
        self.progress.set()

    def _answered(self, status: int, body: bytes) -> None:
        t = self.tally
        self._in_flight -= 1
        t.answered += 1
        t.statuses[status] += 1
        t.last_answer = time.perf_counter()
        if status == ESME_ROK:
            message_id = decode_message_id(body)
            t.ids.add(message_id)
            if t.receipts[message_id]:  # its receipt came first
                self._matched()

    def _deliver_sm(self, body: bytes) -> None:
        t = self.tally
        try:
            sm = ShortMessage.decode(body)
        except PduError:
            t.other_deliver_sm += 1
            return
        receipted = sm.tlvs.get(RECEIPTED_MESSAGE_ID, b"").rstrip(b"\x00").decode("latin-1")
        if not sm.esm_class & RECEIPT_ESM_CLASS or not receipted:
            t.other_deliver_sm += 1
            return
        t.states[tlv_int(sm.tlvs.get(MESSAGE_STATE, b"\x00"))] += 1
        t.receipts[receipted] += 1
        if t.receipts[receipted] == 1 and receipted in t.ids:
            self._matched()

    def _matched(self) -> None:
        self.tally.matched += 1
        self.tally.last_receipt = time.perf_counter()


def submit_bodies(count: int) -> list[bytes]:
    """load.py's messages: ``bench {run} msg {i}`` from BENCH, each to its own number."""
    run_id = f"{int(time.time()) % 100000:05d}{random.randint(0, 99):02d}"
    tag = random.randint(100, 999)
    return [ShortMessage(source_addr="BENCH", source_addr_ton=5, source_addr_npi=0,
                         destination_addr=f"49170{tag}{i:07d}", registered_delivery=1,
                         short_message=f"bench {run_id} msg {i}".encode()).encode()
            for i in range(count)]


# --- the stack ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setup:
    """Where things are and how they are configured (from the command line)."""

    peers: Path
    peers_home: Path
    reuse_smsc: bool
    workers: int
    deliver_window: int  # [smpp_server] window; 0: its default
    smsc_port: int = 0
    stats_port: int = 0
    smpp_port: int = 0


def _config(setup: Setup) -> str:
    """ours.sh's configuration (its channel, the worker's defaults) and the smpp-server's."""
    window = f"window = {setup.deliver_window}\n" if setup.deliver_window else ""
    return (
        'redis_url = "redis://127.0.0.1:6379/0"\n'  # REDIS_URL overrides it
        f'[gateway]\ndefault_channel = "{CHANNEL}"\n'
        f'[smpp_server]\nhost = "127.0.0.1"\nport = {setup.smpp_port}\n{window}'
        f'[channels.{CHANNEL}]\nhost = "127.0.0.1"\nport = {setup.smsc_port}\n'
        f'system_id = "{SMSC_ID}"\npassword = "{SMSC_PASSWORD}"\n'
        "binds = 1\nwindow = 100\nregistered_delivery = 1\n"
    )


def starter(setup: Setup) -> Callable[[st.Stack], Awaitable[None]]:
    """A ``start`` for :func:`st.running_stack`: redis, simulator, SMPP user, worker(s),
    smpp-server and gateway, up and bound."""

    async def start(stack: st.Stack) -> None:
        await st.start_redis(stack, "--appendonly", "yes", "--appendfsync", "everysec")
        if not setup.reuse_smsc:
            await _start_simulator(stack, setup)
        (stack.tmp / "smsgw.toml").write_text(_config(setup))
        assert stack.redis is not None
        await create_user(SmppServerStore(stack.redis),
                          SmppUserSpec(system_id=CLIENT_ID, account=ACCOUNT,
                                       senders=Senders.of(["BENCH"])), CLIENT_PASSWORD)
        for i in range(setup.workers):
            await stack.start_child(f"worker{i + 1}", ["worker", "--health-port", "0"],
                                    probe=True)
        await stack.start_child("smpp-server", ["smpp-server"], probe=True)
        http_port = st.free_port()
        await stack.start_child("gateway", ["gateway", "--host", "127.0.0.1", "--port",
                                            str(http_port)], probe=True)
        stack.base_url = f"http://127.0.0.1:{http_port}"
        for port in (setup.smpp_port, http_port):
            await st.wait_tcp(port)
        await st.wait_binds(stack, 1, CHANNEL)

    return start


async def check_simulator(setup: Setup) -> None:
    """RuntimeError, before anything starts, if the simulator cannot be started or reached."""
    if setup.reuse_smsc:
        try:
            await st.wait_tcp(setup.stats_port, seconds=2)
        except TimeoutError:
            raise RuntimeError(f"no simulator on 127.0.0.1:{setup.stats_port} to reuse (start "
                               f"it with {setup.peers}/smsc.sh start)") from None
        return
    script, modules = _simulator_files(setup)
    if shutil.which("node") is None or not (modules / "smpp").is_dir() or not script.is_file():
        raise RuntimeError(f"the peers' simulator is not installed: needs node, {script} and "
                           f"{modules}/smpp (run {setup.peers}/setup.sh once)")


def _simulator_files(setup: Setup) -> tuple[Path, Path]:
    return setup.peers / "smsc" / "smsc.js", setup.peers_home / "node" / "node_modules"


async def _start_simulator(stack: st.Stack, setup: Setup) -> None:
    """The peers' node-smpp simulator, as smsc.sh starts it (its default receipt settings)."""
    script, modules = _simulator_files(setup)
    log = (stack.tmp / "smsc.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        "node", str(script), "--host", "127.0.0.1", "--port", str(setup.smsc_port),
        "--http-port", str(setup.stats_port), env=dict(os.environ, NODE_PATH=str(modules)),
        stdout=log, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    log.close()
    stack.procs.append(st.Proc("smsc", proc))
    for port in (setup.smsc_port, setup.stats_port):
        await st.wait_tcp(port)


def _reused_smsc_pid(setup: Setup) -> int | None:
    """The pid smsc.sh wrote (for its CPU), if it is there."""
    try:
        return int((setup.peers_home / "run" / "smsc.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --- the run ------------------------------------------------------------------------------------


async def smsc_stats(http: ClientSession, setup: Setup, path: str = "/stats") -> dict[str, Any]:
    """The simulator's counters (``/reset`` also zeroes them)."""
    async with http.get(f"http://127.0.0.1:{setup.stats_port}{path}") as resp:
        return cast(dict[str, Any], await resp.json(content_type=None))


async def wait_finished(client: BenchClient, deadline: float, stall: float) -> None:
    """Until the client is finished, the deadline passes or nothing moved for ``stall`` s."""
    while not client.finished:
        left = deadline - time.perf_counter()
        if left <= 0:
            return
        client.progress.clear()
        try:
            async with asyncio.timeout(min(stall, left)):
                await client.progress.wait()
        except TimeoutError:
            return


async def run(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    """Start the stack, run the load once, and return the figures."""
    bodies = submit_bodies(args.count)
    options = st.StackOptions(workers=setup.workers, binds_per_worker=1, window=100)
    smsc_pid = _reused_smsc_pid(setup) if setup.reuse_smsc else None
    async with st.running_stack(options, starter(setup)) as stack, \
            ClientSession(timeout=ClientTimeout(total=10)) as http:
        assert stack.redis is not None
        await smsc_stats(http, setup, "/reset")
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(
            lambda: BenchClient(bodies, args.window), "127.0.0.1", setup.smpp_port)
        try:
            async with asyncio.timeout(30):
                status = await client.bound
        except TimeoutError:
            raise RuntimeError("no answer to bind_transceiver in 30 s:\n"
                               + stack.log_tail("smpp-server")) from None
        if status != ESME_ROK:
            raise RuntimeError(f"bind refused: {status_name(status)}")
        before = await st.snapshot(stack.redis, stack.procs)
        smsc_cpu0 = st.cpu_seconds(smsc_pid) if smsc_pid else 0.0
        wall0_ms = time.time() * 1000
        client.start()
        await wait_finished(client, time.perf_counter() + args.timeout, args.stall)
        after = await st.snapshot(stack.redis, stack.procs)
        smsc_cpu = st.cpu_seconds(smsc_pid) - smsc_cpu0 if smsc_pid else None
        await asyncio.sleep(args.settle)  # late duplicates still count
        smsc = await smsc_stats(http, setup)
        client.unbind()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await client.lost
        fig = figures(args, setup, client.tally, smsc, wall0_ms, st.delta(before, after),
                      smsc_cpu)
        fig["exited"] = [p.name for p in stack.procs if p.proc.returncode is not None]
        return fig


def _rate(n: int, seconds: float) -> float | None:
    return round(n / seconds, 1) if seconds > 0 else None


def figures(args: argparse.Namespace, setup: Setup, t: Tally, smsc: dict[str, Any],
            wall0_ms: float, d: st.Delta, smsc_cpu: float | None) -> dict[str, Any]:
    """The JSON line."""
    accepted = t.accepted
    n = max(accepted, 1)
    accept_s = t.last_answer - t.first_sent if t.answered else 0.0
    unique_dest = int(smsc.get("unique_dest", 0))
    e2e_done = accepted > 0 and unique_dest >= accepted
    e2e_s = (smsc["last_ok_ms"] - wall0_ms) / 1000 if e2e_done and smsc.get("last_ok_ms") else 0
    receipts_done = accepted > 0 and t.matched >= accepted
    receipt_s = t.last_receipt - t.first_sent if t.matched else 0.0
    cpu = dict(d.cpu)
    if smsc_cpu is not None:
        cpu["smsc"] = smsc_cpu
    return {
        "label": "ours smpp", "count": args.count, "window": args.window,
        "answered": t.answered, "accepted": accepted,
        "refused": {status_name(s): c for s, c in t.statuses.items() if s != ESME_ROK},
        "accept_seconds": round(accept_s, 3), "accept_rate": _rate(accepted, accept_s),
        "e2e_complete": e2e_done, "e2e_seconds": round(e2e_s, 3),
        "e2e_rate": _rate(unique_dest, e2e_s),
        "receipts_complete": receipts_done, "receipt_seconds": round(receipt_s, 3),
        "receipt_rate": _rate(t.matched, receipt_s),
        "lost": {"at_smsc": max(0, accepted - unique_dest),
                 "receipts": accepted - t.matched},
        "duplicated": {"at_smsc": int(smsc.get("submit_duplicates", 0)),
                       "receipts": sum(c - 1 for c in t.receipts.values() if c > 1)},
        "receipts_for_unknown_ids": sum(1 for i in t.receipts if i not in t.ids),
        "receipt_states": {str(s): c for s, c in sorted(t.states.items())},
        "other_deliver_sm": t.other_deliver_sm,
        "smsc": {k: smsc.get(k) for k in ("submit_total", "submit_ok", "unique_dest",
                                          "submit_throttled", "dlr_sent", "dlr_acked")},
        "cpu_us_per_message": {("bench client" if k == "bench" else k): round(v / n * 1e6, 1)
                               for k, v in sorted(cpu.items())},
        "cpu_us_per_message_all": round(sum(cpu.values()) / n * 1e6, 1),
        "round_trips_per_message": {k: round(v / n, 3) for k, v in sorted(d.round_trips.items())},
        "other_cpu_seconds": round(max(d.other_cpu, 0.0), 2),
        "measured_seconds": round(d.seconds, 2),
        "host_speed": st.host_speed(),
        "setup": {"workers": setup.workers, "channel": "1 transceiver, window 100",
                  "smpp_server_deliver_window": setup.deliver_window or "default",
                  "simulator": "reused" if setup.reuse_smsc else "started",
                  "redis": "AOF everysec"},
    }


def clean(fig: dict[str, Any]) -> bool:
    """Everything accepted reached the simulator once and came back as one receipt."""
    return (fig["e2e_complete"] and fig["receipts_complete"] and not fig["refused"]
            and not any(fig["lost"].values()) and not any(fig["duplicated"].values())
            and not fig["receipts_for_unknown_ids"] and not fig["exited"])


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    doc = __doc__ or ""
    repo = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--count", type=int, default=10_000,
                   help="messages (default 10,000: what s1 and s3 send)")
    p.add_argument("--window", type=int, default=100, help="submit_sm outstanding (100)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="bound on the run, from the first submit_sm (600 s)")
    p.add_argument("--stall", type=float, default=60.0,
                   help="give up after this long without a response or receipt (60 s, as "
                        "pairs.sh)")
    p.add_argument("--settle", type=float, default=1.0,
                   help="wait before the final counts, for late duplicates (1 s, as load.py)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (1, as ours.sh)")
    p.add_argument("--deliver-window", type=int, default=0,
                   help="[smpp_server] window: deliver_sm in flight per bind (0: its default)")
    p.add_argument("--reuse-smsc", action="store_true",
                   help="use the simulator smsc.sh started (127.0.0.1:2775, stats :2776)")
    p.add_argument("--peers", type=Path, default=repo.parent / "shared" / "peers",
                   help="the folder of pairs.sh and smsc/smsc.js (default ../shared/peers)")
    p.add_argument("--peers-home", type=Path,
                   default=Path(os.environ.get("PEERS_HOME", "/tmp/smsgw-peers")),
                   help="where setup.sh installed the node modules ($PEERS_HOME)")
    args = p.parse_args(argv)
    if not 1 <= args.count <= 1_000_000:
        p.error("--count must be within 1..1,000,000")
    if not 1 <= args.window <= 10_000:
        p.error("--window must be within 1..10,000")
    if not 0 < args.timeout <= 7200 or not 0 < args.stall <= 600 or not 0 <= args.settle <= 60:
        p.error("--timeout must be within (0, 7200], --stall (0, 600], --settle [0, 60]")
    if not 1 <= args.workers <= 16 or not 0 <= args.deliver_window <= 1000:
        p.error("--workers must be within 1..16, --deliver-window 0..1000")
    return args


def setup_of(args: argparse.Namespace) -> Setup:
    """Ports and paths of this run."""
    smsc, stats = ((REUSED_SMSC_PORT, REUSED_STATS_PORT) if args.reuse_smsc
                   else (st.free_port(), st.free_port()))
    return Setup(peers=args.peers.resolve(), peers_home=args.peers_home,
                 reuse_smsc=args.reuse_smsc, workers=args.workers,
                 deliver_window=args.deliver_window, smsc_port=smsc, stats_port=stats,
                 smpp_port=st.free_port())


async def main_async(args: argparse.Namespace) -> int:
    """Run once; print the JSON line; 1 unless every message came back once, 2 if the stack
    did not come up."""
    setup = setup_of(args)
    try:
        await check_simulator(setup)
        fig = await run(args, setup)
    except RuntimeError as exc:  # a process did not start or come up; its output is in exc
        print(f"smpp_bench: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(fig, separators=(",", ":")), flush=True)
    return 0 if clean(fig) else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(eventloop.run(main_async(parse_args())))
