"""Message ids and delivery receipts: building them, and routing them to receiver binds."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Protocol

from worker.simulator.config import MESSAGE_STATES, IdFormat, SimulatorConfig
from worker.simulator.stats import SimStats
from worker.smpp.pdu import (
    MESSAGE_STATE,
    RECEIPTED_MESSAGE_ID,
    ShortMessage,
    encode_c_string,
)

RECEIPT_ESM_CLASS = 0x04  # "SMSC delivery receipt"
# The err: field of the receipt text per final state (three digits, vendor specific in practice).
_ERR_CODES = {"DELIVRD": 0, "EXPIRED": 1, "UNDELIV": 2, "REJECTD": 3}


def format_id(number: int, style: IdFormat) -> str:
    """Render a message id number as lower-case hex or decimal."""
    return format(number, "x") if style == "hex" else str(number)


class MessageIds:
    """Unique message id numbers for one simulator run."""

    def __init__(self, start: int | None) -> None:
        # Derived from the clock by default so ids do not repeat across simulator restarts,
        # which would confuse receipt matching in a long-lived dev Redis.
        self._next = start if start is not None else 10**9 + time.time_ns() // 10**6 % 10**9

    def next(self) -> int:
        """The next unused number."""
        number = self._next
        self._next += 1
        return number


@dataclass(frozen=True, slots=True)
class Receipt:
    """A deliver_sm receipt body waiting for (or in flight to) a receiver of `system_id`."""

    system_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    """What a receipt needs to know about an accepted submit_sm."""

    system_id: str
    source: str
    destination: str
    text: str
    registered_delivery: int
    id_number: int
    submit_time: float


class ReceiptFactory:
    """Draws a final state for an accepted message and builds its deliver_sm body."""

    def __init__(self, config: SimulatorConfig, rng: random.Random) -> None:
        self._states = list(config.receipt_states)
        self._weights = list(config.receipt_states.values())
        self._id_format = config.effective_receipt_id_format
        self._date_format = "%y%m%d%H%M%S" if config.date_digits == 12 else "%y%m%d%H%M"
        self._rng = rng
        self._cached_second = -1
        self._cached_date = ""

    def make(self, accepted: Accepted) -> Receipt | None:
        """A receipt, or None when registered_delivery does not ask for this outcome."""
        wanted = accepted.registered_delivery & 0x03
        if not wanted:
            return None
        state = self._rng.choices(self._states, self._weights)[0]
        if wanted == 2 and state == "DELIVRD":  # 2 = receipt on failure only
            return None
        return Receipt(accepted.system_id, self._body(accepted, state))

    def _date(self, when: float) -> str:
        # Receipt dates have at most one-second resolution: format each second once.
        second = int(when)
        if second != self._cached_second:
            self._cached_second = second
            self._cached_date = time.strftime(self._date_format, time.gmtime(second))
        return self._cached_date

    def _body(self, accepted: Accepted, state: str) -> bytes:
        receipt_id = format_id(accepted.id_number, self._id_format)
        submit_date = self._date(accepted.submit_time)
        done_date = self._date(time.time())
        text = (
            f"id:{receipt_id} sub:001 dlvrd:{'001' if state == 'DELIVRD' else '000'} "
            f"submit date:{submit_date} done date:{done_date} stat:{state} "
            f"err:{_ERR_CODES[state]:03d} text:{accepted.text[:20]}"
        )
        message = ShortMessage(
            source_addr=accepted.destination,
            destination_addr=accepted.source,
            esm_class=RECEIPT_ESM_CLASS,
            short_message=text.encode("ascii", "replace"),
            tlvs={
                RECEIPTED_MESSAGE_ID: encode_c_string(receipt_id),
                MESSAGE_STATE: bytes((MESSAGE_STATES[state],)),
            },
        )
        return message.encode()


class ReceiptSink(Protocol):
    """A receiver or transceiver bind that can carry receipts."""

    def send_receipt(self, receipt: Receipt, urgent: bool) -> None:
        """Queue (or, if urgent, write at once) a deliver_sm carrying `receipt`."""


class ReceiptRouter:
    """Sends receipts to the receiver binds of their system_id, round robin.

    Receipts for a system_id with no receiver bound wait in a pending queue and go out when one
    binds; receipts a bind never acknowledged come back here when it goes away (as real SMSCs do).
    """

    def __init__(self, stats: SimStats) -> None:
        self._sinks: dict[str, list[ReceiptSink]] = defaultdict(list)
        self._turn: dict[str, int] = defaultdict(int)
        self._pending: dict[str, deque[Receipt]] = defaultdict(deque)
        self._timers: set[asyncio.TimerHandle] = set()
        self._stats = stats

    def attach(self, system_id: str, sink: ReceiptSink) -> None:
        """A receiver bound: hand it every receipt waiting for its system_id."""
        self._sinks[system_id].append(sink)
        pending = self._pending.pop(system_id, None)
        while pending:
            sink.send_receipt(pending.popleft(), urgent=False)

    def detach(self, system_id: str, sink: ReceiptSink, unacked: list[Receipt]) -> None:
        """A receiver went away; its unacknowledged receipts are re-routed."""
        sinks = self._sinks.get(system_id)
        if sinks is not None and sink in sinks:
            sinks.remove(sink)
        self._stats.receipts_resent += len(unacked)
        for receipt in unacked:
            self.deliver(receipt, urgent=False)

    def deliver(self, receipt: Receipt, urgent: bool) -> None:
        """Send now to a bound receiver, or keep until one binds."""
        sinks = self._sinks.get(receipt.system_id)
        if not sinks:
            self._pending[receipt.system_id].append(receipt)
            return
        turn = self._turn[receipt.system_id] % len(sinks)
        self._turn[receipt.system_id] = turn + 1
        sinks[turn].send_receipt(receipt, urgent)

    def deliver_later(self, receipts: list[Receipt], delay: float) -> None:
        """Deliver a batch after `delay` seconds (one timer per batch, not per receipt)."""
        if delay <= 0:
            for receipt in receipts:
                self.deliver(receipt, urgent=False)
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            for receipt in receipts:
                self.deliver(receipt, urgent=False)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def pending(self) -> int:
        """Receipts waiting for a receiver to bind."""
        return sum(len(queue) for queue in self._pending.values())

    def close(self) -> None:
        """Cancel receipts not yet due."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
