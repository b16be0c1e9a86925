"""The worker's and the simulator's event loop."""

from __future__ import annotations

import asyncio
import sys

import pytest

from worker import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_worker_runs_on_uvloop_where_it_is_installed() -> None:
    assert eventloop.run(_loop_module()).startswith("uvloop")


def test_without_uvloop_the_standard_loop_runs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    assert eventloop.run(_loop_module()).startswith("asyncio")
