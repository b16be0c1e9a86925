"""Choosing a bind for a submit (worker.smpp.pool.least_loaded)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from worker.smpp.pool import least_loaded


@dataclass(frozen=True)
class Bind:
    name: int
    in_flight: int


def reference_pick(live: list[Bind], turn: int) -> Bind:
    """The general form: rotate to ``turn``, then the first with the fewest in flight."""
    start = turn % len(live)
    return min(live[start:] + live[:start], key=lambda b: b.in_flight)


def test_least_loaded_picks_as_the_rotated_minimum_does_on_random_binds() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        live = [Bind(i, rng.randrange(rng.choice((1, 3, 50)))) for i in range(rng.randrange(1, 7))]
        turn = rng.randrange(10_000)
        assert least_loaded(live, turn) is reference_pick(live, turn)


def test_idle_binds_take_turns() -> None:
    live = [Bind(i, 0) for i in range(3)]
    assert [least_loaded(live, turn).name for turn in range(6)] == [0, 1, 2, 0, 1, 2]


def test_the_bind_with_fewest_in_flight_wins_whatever_the_turn() -> None:
    live = [Bind(0, 5), Bind(1, 2), Bind(2, 9)]
    assert {least_loaded(live, turn).name for turn in range(3)} == {1}
