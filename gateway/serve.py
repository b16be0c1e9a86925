"""``smsgw gateway``: one process, or several sharing the port (SO_REUSEPORT), one per core.

The gateway is CPU-bound in Python, so on a machine with more cores it runs more processes:
the kernel spreads connections over them. Each process has its own Redis pool and its own
``/metrics`` (scrape each one, or put them behind one scrape per process).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

from aiohttp import web
from aiohttp.log import access_logger

from gateway.app import create_app
from worker.config import Settings


def serve(settings: Settings, host: str, port: int, processes: int) -> int:
    """Serve until SIGINT/SIGTERM; with ``processes`` > 1, fork that many workers."""
    access_log = access_logger if settings.gateway.access_log else None
    if processes <= 1:
        web.run_app(create_app(settings), host=host, port=port, print=None,
                    access_log=access_log)
        return 0
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:  # a child: serve, then leave without running the parent's cleanup
            code = 1
            try:
                web.run_app(create_app(settings), host=host, port=port, reuse_port=True,
                            print=None, access_log=access_log)
                code = 0
            except Exception:  # the child's boundary: report, exit, the parent sees it
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    return _supervise(children)


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
