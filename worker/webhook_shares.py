"""How the webhooks processes share an account's shards: each keeps at most its fair share
while others are alive, gives back what is over it and takes what is free up to it. Pure.

An account's events are in ``WEBHOOK_SHARDS`` streams, by message (worker/store/keys.py); a
lease per shard makes one process its deliverer. A process that alone took every shard gives
some back once a second one is alive (draining what it read of them first), so two processes
share a busy account instead of the second waiting on its lease.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


def fair_share(shards: int, live: int) -> int:
    """Shards of an account one of ``live`` processes may hold: all of them, shared out."""
    return -(-shards // max(1, live))


@dataclass(frozen=True, slots=True)
class Moves:
    """What to do with an account's shards now."""

    give: tuple[int, ...]  # held shards to hand over (read no more; released once drained)
    resume: tuple[int, ...]  # shards being handed over to keep after all
    take: int  # how many more to take, if free


def rebalance(active: Collection[int], leaving: Collection[int], share: int) -> Moves:
    """``active``: shards held and read; ``leaving``: held, being handed over; ``share``: what
    this process may hold. Gives the highest shards back, resumes the lowest first."""
    over = len(active) - share
    if over > 0:
        return Moves(give=tuple(sorted(active)[-over:]), resume=(), take=0)
    resume = tuple(sorted(leaving)[:-over])
    return Moves(give=(), resume=resume, take=-over - len(resume))
