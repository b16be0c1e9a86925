"""Which of an account's events travel together, and how many POSTs go at once."""

from __future__ import annotations

from worker.store import WebhookEvent
from worker.webhook_batches import Concurrency, EventQueue


def status(n: int, message: str, status: str = "delivered") -> WebhookEvent:
    return WebhookEvent("acme", f"{n}-0", {"kind": "status", "id": message, "status": status})


def mo(n: int) -> WebhookEvent:
    return WebhookEvent("acme", f"{n}-0", {"kind": "mo", "id": f"mo{n}"})


def ids(batch: list[WebhookEvent]) -> list[str]:
    return [e.entry_id for e in batch]


def queue_of(*events: WebhookEvent) -> EventQueue:
    queue = EventQueue()
    for event in events:
        queue.add(event, now=0.0)
    return queue


def test_a_full_batch_goes_at_once_in_stream_order() -> None:
    queue = queue_of(*(status(i, f"m{i}") for i in range(5)))
    assert ids(queue.take(3, 1.0, 0.0, more_coming=True)[0]) == ["0-0", "1-0", "2-0"]
    assert len(queue) == 2


def test_a_batch_that_is_not_full_waits_for_its_linger_unless_no_more_are_coming() -> None:
    queue = queue_of(status(1, "a"), status(2, "b"))
    assert queue.take(10, 0.1, 0.04, more_coming=True) == ([], 0.1 - 0.04)
    assert ids(queue.take(10, 0.1, 0.0, more_coming=False)[0]) == ["1-0", "2-0"]
    queue = queue_of(status(1, "a"))
    assert ids(queue.take(10, 0.1, 0.1, more_coming=True)[0]) == ["1-0"]


def test_a_messages_later_event_waits_while_its_earlier_one_is_in_flight() -> None:
    queue = queue_of(status(1, "a", "submitted"))
    (first,), _ = queue.take(1, 0.0, 0.0, more_coming=True)
    queue.add(status(2, "a", "delivered"), 0.0)
    queue.add(status(3, "b"), 0.0)
    batch, _ = queue.take(10, 0.0, 0.0, more_coming=True)
    assert ids(batch) == ["3-0"]  # another message passes the held one
    assert queue.take(10, 0.0, 0.0, more_coming=True) == ([], None)
    queue.done([first])
    assert ids(queue.take(10, 0.0, 0.0, more_coming=True)[0]) == ["2-0"]


def test_two_events_of_a_message_share_a_batch_in_their_order() -> None:
    queue = queue_of(status(1, "a", "submitted"), status(2, "a", "delivered"))
    assert ids(queue.take(10, 0.0, 0.0, more_coming=False)[0]) == ["1-0", "2-0"]


def test_an_mo_event_goes_alone_and_status_events_pass_it() -> None:
    queue = queue_of(status(1, "a"), mo(2), status(3, "b"))
    assert ids(queue.take(10, 0.0, 0.0, more_coming=False)[0]) == ["1-0", "3-0"]
    assert ids(queue.take(10, 0.0, 0.0, more_coming=False)[0]) == ["2-0"]


def test_concurrency_grows_while_answers_are_quick_and_events_wait() -> None:
    lanes = Concurrency(start=4, ceiling=6, slow_seconds=1.0)
    lanes.answered(True, 0.01, backlog=False)
    assert lanes.limit == 4
    for _ in range(5):
        lanes.answered(True, 0.01, backlog=True)
    assert lanes.limit == 6


def test_concurrency_shrinks_after_slow_answers_and_halves_after_failures() -> None:
    lanes = Concurrency(start=8, ceiling=64, slow_seconds=1.0)
    lanes.answered(True, 2.0, backlog=True)
    assert lanes.limit == 7
    lanes.answered(False, 0.01, backlog=True)
    assert lanes.limit == 3
    for _ in range(5):
        lanes.answered(False, 5.0, backlog=True)
    assert lanes.limit == 1


def test_events_of_two_shards_with_the_same_entry_id_are_both_queued() -> None:
    # Entry ids are unique only within a stream: shards written in one script run share them.
    first = WebhookEvent("acme", "5-0", {"kind": "status", "id": "a", "status": "delivered"}, 0)
    second = WebhookEvent("acme", "5-0", {"kind": "status", "id": "b", "status": "delivered"}, 1)
    trimmed = [WebhookEvent("acme", "6-0", None, shard) for shard in (0, 1)]
    queue = queue_of(first, second, *trimmed)
    assert len(queue) == 4
    batch, _ = queue.take(10, 0.0, 0.0, more_coming=False)
    assert batch == [first, second]
    assert [queue.take(10, 0.0, 0.0, more_coming=False)[0] for _ in trimmed] == [
        [trimmed[0]], [trimmed[1]]]
