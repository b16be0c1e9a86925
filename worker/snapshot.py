"""A worker's view of its binds, published from its heartbeat for the status page.

The gateway cannot see SMPP sessions, so each worker writes this small document into Redis
every heartbeat (with a TTL: a dead worker's view disappears with it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.smpp.pool import BindView, ChannelPool


def worker_snapshot(worker: str, pools: Mapping[str, ChannelPool], at_ms: int) -> dict[str, Any]:
    """Per channel: configured binds and window, and each bind's state and requests in flight."""
    return {"worker": worker, "at": at_ms,
            "channels": {name: _channel(pool) for name, pool in pools.items()}}


def _channel(pool: ChannelPool) -> dict[str, Any]:
    ch = pool.channel
    return {"binds": ch.binds, "window": ch.window, "mode": ch.bind_mode,
            "serving": pool.serving, "bound": pool.bound, "reconnects": pool.reconnects,
            "sessions": [_bind(b) for b in pool.binds()]}


def _bind(bind: BindView) -> dict[str, Any]:
    session = bind.session
    bound = session is not None and session.bound
    # A bind without a session waits for a free bind slot, or for its next connect attempt.
    return {"index": bind.index, "kind": bind.kind, "state": "bound" if bound else "down",
            "inFlight": session.in_flight if session is not None else 0}
