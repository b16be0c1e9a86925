"""The message lifecycle: which moves are legal, and one state from many parts."""

from __future__ import annotations

import itertools

import pytest

from worker.lifecycle import ALLOWED, FINAL, Status, can_move, combine_parts


def test_the_happy_path_is_legal() -> None:
    path = [Status.QUEUED, Status.SENDING, Status.SUBMITTED, Status.DELIVERED]
    assert all(can_move(a, b) for a, b in itertools.pairwise(path))


@pytest.mark.parametrize("final", sorted(FINAL))
def test_a_final_state_never_moves(final: Status) -> None:
    assert ALLOWED[final] == frozenset()


def test_a_message_never_goes_back_to_queued_once_submitted() -> None:
    assert not can_move(Status.SUBMITTED, Status.QUEUED)
    assert not can_move(Status.SUBMITTED, Status.SENDING)


def test_unknown_can_still_be_settled_by_a_late_receipt() -> None:
    assert can_move(Status.UNKNOWN, Status.DELIVERED)


def test_every_state_has_a_rule() -> None:
    assert set(ALLOWED) == set(Status)


@pytest.mark.parametrize(("parts", "expected"), [
    ([Status.DELIVERED, Status.DELIVERED], Status.DELIVERED),
    ([Status.DELIVERED, None], None),
    ([Status.DELIVERED, Status.EXPIRED], Status.EXPIRED),
    ([Status.EXPIRED, Status.UNDELIVERED, Status.DELIVERED], Status.UNDELIVERED),
    ([Status.REJECTED, Status.UNDELIVERED], Status.REJECTED),
    ([Status.FAILED, None], Status.FAILED),
])
def test_a_multipart_message_takes_one_state_from_its_parts(
    parts: list[Status | None], expected: Status | None
) -> None:
    assert combine_parts(parts) == expected
