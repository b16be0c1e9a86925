"""One account's webhook events in memory: which may travel together, and how many POSTs may be
in flight. Pure: no I/O, the clock is passed in.

- **Order.** An event is handed out only while no earlier event of its message is in flight
  or waiting: a message's events go in stream order, and two of them share a batch only in
  that order. Events of other messages pass a message that is held up.
- **Batches.** Status events go up to ``max_batch`` at a time, once that many are ready or
  ``linger`` after the first of them was read (at once when reading is paused: no more are
  coming). An MO event goes alone (to its channel's inbound URL); so does an event that was
  trimmed away (nothing to send, only to acknowledge).
- **Concurrency** adapts (:class:`Concurrency`): one more POST in flight after each quick 2xx
  while events wait, one fewer after a slow answer, half as many after a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.store import WebhookEvent


def message_key(event: WebhookEvent) -> str:
    """What orders events: the message (or MO message) they are about."""
    fields = event.fields
    if fields is None:
        return f"{event.shard}/{event.entry_id}"
    return f"{fields.get('kind', '')}:{fields.get('id', f'{event.shard}/{event.entry_id}')}"


def batchable(event: WebhookEvent) -> bool:
    """Whether the event may share a POST: a status event (its account's callback URL)."""
    return event.fields is not None and event.fields.get("kind") == "status"


@dataclass(slots=True)
class _Waiting:
    event: WebhookEvent
    key: str
    arrived: float


class EventQueue:
    """Events read but not yet delivered, in stream order, and the messages in flight."""

    def __init__(self) -> None:
        # event.ref -> event (entry ids are unique only within a shard's stream); in the order
        # read, which is stream order within each shard, and a message is in one shard only
        self._waiting: dict[tuple[int | None, str], _Waiting] = {}
        self._busy: set[str] = set()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, event: WebhookEvent, now: float) -> None:
        """An event read from the stream (in stream order)."""
        self._waiting[event.ref] = _Waiting(event, message_key(event), now)

    def take(self, max_batch: int, linger: float, now: float, *, more_coming: bool
             ) -> tuple[list[WebhookEvent], float | None]:
        """A batch to POST now, and nothing else; or no batch and the seconds until one is due
        (None: none will be until something changes)."""
        taken: list[_Waiting] = []
        passed: set[str] = set()  # messages with an event held back: their later ones wait too
        for waiting in self._waiting.values():
            key = waiting.key
            if key in self._busy or key in passed:
                passed.add(key)
                continue
            if not batchable(waiting.event):
                if not taken:
                    taken = [waiting]
                    break
                passed.add(key)
                continue
            taken.append(waiting)
            if len(taken) >= max_batch:
                break
        if not taken:
            return [], None
        if (batchable(taken[0].event) and len(taken) < max_batch and more_coming
                and now < taken[0].arrived + linger):
            return [], taken[0].arrived + linger - now
        for waiting in taken:
            del self._waiting[waiting.event.ref]
            self._busy.add(waiting.key)
        return [w.event for w in taken], None

    def done(self, batch: list[WebhookEvent]) -> None:
        """The batch was delivered or dead-lettered: its messages' next events may go."""
        for event in batch:
            self._busy.discard(message_key(event))


class Concurrency:
    """How many POSTs an account may have in flight (additive increase, multiplicative
    decrease, as TCP does): the receiver's own answers decide, so a fast receiver gets more
    lanes and a slow or failing one fewer, without any setting per receiver."""

    def __init__(self, start: int, ceiling: int, slow_seconds: float) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = min(max(1, start), self.ceiling)
        self._slow = slow_seconds

    def answered(self, ok: bool, seconds: float, *, backlog: bool) -> None:
        """A POST was answered (``ok``: 2xx) after ``seconds``; ``backlog``: events wait."""
        if not ok:
            self.limit = max(1, self.limit // 2)
        elif seconds > self._slow:
            self.limit = max(1, self.limit - 1)
        elif backlog:
            self.limit = min(self.ceiling, self.limit + 1)
