"""Choosing a bind for a submit (least_loaded) and when a bind slot may bind again."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from worker.smpp.pool import Reconnect, least_loaded


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


# --- when a bind slot may bind again (worker.smpp.pool.Reconnect) -------------------------------


def _storm(policy: Reconnect, rounds: int, uptime: float) -> list[float]:
    """Start times of ``rounds`` bind attempts whose binds each stay up ``uptime`` seconds,
    every attempt started as soon as the policy allows."""
    now, starts = 0.0, []
    for _ in range(rounds):
        now += policy.wait(now)
        starts.append(now)
        policy.attempt(now)
        policy.bound(now + 0.001)
        now += 0.001 + uptime
        policy.ended(now)
    return starts


def test_binds_dropped_at_once_back_off_to_the_maximum_with_jitter() -> None:
    policy = Reconnect(1.0, 60.0, random.Random(1))
    starts = _storm(policy, 60, uptime=0.0)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 1.0 and max(gaps) <= 60.0 + 0.01
    late = gaps[20:]  # long past the cap: full jitter over [min, max]
    assert 20 < sum(late) / len(late) < 40 and len({round(g, 3) for g in late}) == len(late)


def test_a_bind_lost_before_it_was_stable_counts_as_a_failure() -> None:
    policy = Reconnect(1.0, 60.0, random.Random(2), stable_seconds=10.0)
    _storm(policy, 8, uptime=9.0)
    assert policy.failures == 8


def test_a_bind_that_stayed_up_resets_the_backoff_and_rebinds_at_once() -> None:
    policy = Reconnect(1.0, 60.0, random.Random(3), stable_seconds=10.0)
    _storm(policy, 8, uptime=0.0)
    policy.attempt(1000.0)
    policy.bound(1000.5)
    policy.ended(1011.0)
    assert policy.failures == 0 and policy.wait(1011.0) == 0.0


def test_never_two_attempts_within_the_minimum_however_each_ended() -> None:
    rng = random.Random(4)
    policy = Reconnect(2.0, 8.0, rng, stable_seconds=1.0)
    now, last = 0.0, None
    for _ in range(2000):
        now += policy.wait(now)
        if last is not None:
            assert now - last >= 2.0
        last = now
        policy.attempt(now)
        if rng.random() < 0.5:  # refused or timed out, or bound and lost after a while
            now += rng.choice((0.0, 0.5, 3.0))
        else:
            policy.bound(now)
            now += rng.choice((0.0, 0.5, 3.0))
        policy.ended(now, at_least=rng.choice((0.0, 0.0, 5.0)))
