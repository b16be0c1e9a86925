"""The message lifecycle: states and the transitions allowed between them. Pure, no I/O.

``store`` enforces these same rules inside Redis (its Lua scripts are generated from the table
below), so a late or duplicated event can never move a message backwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Status(StrEnum):
    """Where a message is."""

    QUEUED = "queued"  # accepted and stored, waiting for a worker
    SENDING = "sending"  # claimed by a worker; submit_sm may be on the wire
    SUBMITTED = "submitted"  # the SMSC accepted every part (submit_sm_resp OK)
    DELIVERED = "delivered"  # receipts say every part reached the handset
    UNDELIVERED = "undelivered"  # a receipt said UNDELIV
    EXPIRED = "expired"  # a receipt said EXPIRED
    REJECTED = "rejected"  # a receipt said REJECTD
    FAILED = "failed"  # permanent submit error, or retries exhausted
    UNKNOWN = "unknown"  # no receipt in time; a late receipt can still settle it


FINAL = frozenset(
    {Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED, Status.REJECTED, Status.FAILED}
)
RECEIPT_STATES = frozenset({Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED, Status.REJECTED})

ALLOWED: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.SENDING, Status.FAILED}),
    # SENDING -> SENDING is a re-claim after the holder died; -> QUEUED is a transient retry.
    Status.SENDING: frozenset({Status.SENDING, Status.QUEUED, Status.SUBMITTED, Status.FAILED,
                               Status.UNKNOWN} | RECEIPT_STATES),
    Status.SUBMITTED: RECEIPT_STATES | {Status.UNKNOWN},
    Status.UNKNOWN: RECEIPT_STATES,
    Status.DELIVERED: frozenset(),
    Status.UNDELIVERED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.FAILED: frozenset(),
}


def can_move(src: Status, dst: Status) -> bool:
    """Whether ``src -> dst`` is a legal transition."""
    return dst in ALLOWED[src]


# When parts disagree, the worst outcome names the message.
SEVERITY = (Status.REJECTED, Status.UNDELIVERED, Status.EXPIRED)  # worst first


def combine_parts(part_states: Iterable[Status | None]) -> Status | None:
    """One final state from the states of all parts, or None while any is pending.

    Delivered only when every part is delivered; a permanent failure of any part decides at once.
    """
    states = list(part_states)
    if Status.FAILED in states:
        return Status.FAILED
    if any(s not in RECEIPT_STATES for s in states):
        return None
    return next((bad for bad in SEVERITY if bad in states), Status.DELIVERED)
