"""When a worker may claim and submit, judged from its heartbeat writes (worker.claimguard)."""

from __future__ import annotations

import logging

import pytest

from worker.claimguard import ClaimGuard


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nothing_is_claimed_before_the_first_heartbeat_is_written() -> None:
    assert not ClaimGuard(5.0, 2.5, Clock()).holds()


def test_claims_hold_while_the_last_write_leaves_more_than_the_margin() -> None:
    clock = Clock()
    guard = ClaimGuard(5.0, 2.5, clock)
    guard.written(guard.now())
    clock.now += 2.4
    assert guard.holds()
    clock.now += 0.2  # 2.6s since the write was sent: the key may live 2.4s more only
    assert not guard.holds()


def test_the_lease_counts_from_when_the_write_was_sent_not_answered() -> None:
    clock = Clock()
    guard = ClaimGuard(5.0, 2.5, clock)
    sent = guard.now()
    clock.now += 2.0  # a slow answer: the key was set somewhere in those two seconds
    guard.written(sent)
    clock.now += 0.6
    assert not guard.holds()


def test_a_write_that_succeeds_again_lets_the_worker_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    guard = ClaimGuard(5.0, 2.5, clock)
    guard.written(guard.now())
    clock.now += 10
    assert not guard.holds() and not guard.holds()
    guard.written(guard.now())
    assert guard.holds()
    assert [(r.levelno, r.getMessage().split(":")[0]) for r in caplog.records] == [
        (logging.ERROR, "heartbeat not written for 10.0s"),
        (logging.WARNING, "heartbeat written again"),
    ]


def test_an_older_write_answered_late_does_not_shorten_the_lease() -> None:
    clock = Clock()
    guard = ClaimGuard(5.0, 2.5, clock)
    old = guard.now()
    clock.now += 1.0
    guard.written(guard.now())
    guard.written(old)
    clock.now += 2.0
    assert guard.holds()


def test_a_margin_as_long_as_the_lease_is_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        ClaimGuard(5.0, 5.0)
