"""``smsgw gateway``: one process, or several sharing the port (SO_REUSEPORT), one per core.

The gateway is CPU-bound in Python, so on a machine with more cores it runs more processes:
the kernel spreads connections over them. Each process has its own Redis pool and its own
``/metrics`` (scrape each one, or put them behind one scrape per process).

Each process runs on uvloop where it is installed (``worker.eventloop``), as the worker, the
simulator and the smpp-server do: with aiohttp 3.14 the gateway spends less CPU per request on
it (send_bench --no-worker and e2e_bench single messages, alternating with asyncio's loop).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import traceback

from aiohttp import web
from aiohttp.log import access_logger

from gateway.app import create_app
from gateway.parser_errors import GatewayRunner
from worker import eventloop
from worker.config import Settings

# What web.run_app gave us before serve() ran its own runner: idle keep-alive connections
# close after 75 s, and shutdown waits up to 60 s for requests in flight.
KEEPALIVE_TIMEOUT = 75.0
SHUTDOWN_TIMEOUT = 60.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve(settings: Settings, host: str, port: int, processes: int) -> int:
    """Serve until SIGINT/SIGTERM; with ``processes`` > 1, fork that many workers."""
    access_log = access_logger if settings.gateway.access_log else None
    if processes <= 1:
        eventloop.run(_serve_until_signalled(create_app(settings), host, port, False, access_log))
        return 0
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:  # a child: serve, then leave without running the parent's cleanup
            code = 1
            try:
                eventloop.run(_serve_until_signalled(create_app(settings), host, port, True,
                                                   access_log))
                code = 0
            except Exception:  # the child's boundary: report, exit, the parent sees it
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    return _supervise(children)


async def start(app: web.Application, host: str, port: int, *, reuse_port: bool = False,
                access_log: logging.Logger | None = None) -> web.AppRunner:
    """``app`` served on ``host:port`` by the runner ``smsgw gateway`` uses (errors of the HTTP
    parser answered with a ResponseStatus); the caller cleans it up. Its ``cleanup_ctx`` has
    run by the time this returns."""
    runner = GatewayRunner(app, access_log=access_log, keepalive_timeout=KEEPALIVE_TIMEOUT,
                           shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def _serve_until_signalled(app: web.Application, host: str, port: int,
                                 reuse_port: bool, access_log: logging.Logger | None) -> None:
    # SIGINT/SIGTERM end serving cleanly (exit 0), as under web.run_app; handled from before
    # startup, so a signal during startup stops the gateway as soon as it has started.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        runner = await start(app, host, port, reuse_port=reuse_port, access_log=access_log)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()  # stops listening, finishes requests in flight, closes app
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)


def _supervise(children: list[int]) -> int:
    """Forward SIGINT/SIGTERM to every child; return once all have exited."""
    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for pid in children:
        _, code = os.waitpid(pid, 0)
        status = status or os.waitstatus_to_exitcode(code)
    return 0 if status in (0, -signal.SIGTERM, -signal.SIGINT) else 1
