"""Webhook events as their receivers see them: payloads, signatures, retry delays. Pure.

Two kinds of event reach an account's URLs:

- ``message.status`` (the callback URL): a message of the account changed status
  (submitted, delivered, undelivered, expired, rejected, failed, unknown);
- ``message.inbound`` (the inbound URL of a channel): a mobile-originated message arrived.

Every POST carries ``X-Smsgw-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is
HMAC-SHA256 with the account's secret over ``"<t>." + body``: the timestamp is signed with the
body, so a receiver can refuse old replays. ``eventId`` is the same on every attempt and on a
replay, so receivers can drop duplicates (delivery is at-least-once).

An account's callback may choose its statuses and batches (:class:`CallbackOptions`): with
``max_batch`` above 1 a POST carries ``{"events": [...]}``, each element exactly the body of a
single event (:func:`batch_body`), and ``X-Smsgw-Event-Count`` names how many.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from worker.lifecycle import FINAL, Status

SIGNATURE_HEADER = "X-Smsgw-Signature"
EVENT_ID_HEADER = "X-Smsgw-Event-Id"
EVENT_TYPE_HEADER = "X-Smsgw-Event-Type"
EVENT_COUNT_HEADER = "X-Smsgw-Event-Count"
STATUS_EVENT = "message.status"
INBOUND_EVENT = "message.inbound"


# The statuses a callback hears of, in lifecycle order; "final" names the final ones.
CALLBACK_STATUSES = (Status.SUBMITTED, Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED,
                     Status.REJECTED, Status.FAILED, Status.UNKNOWN)
FINAL_ALIAS = "final"
MAX_BATCH = 1000
MAX_BATCH_DELAY_MS = 60_000
DEFAULT_BATCH_DELAY_MS = 100


class InvalidOption(ValueError):
    """A callback option out of range; ``field`` names it as the API spells it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class CallbackOptions:
    """What an account's callback hears of and how: ``events`` (None: every status), and up to
    ``max_batch`` events per POST, sent once that many are ready or ``max_batch_delay_ms``
    after the first of them was read."""

    events: frozenset[str] | None = None
    max_batch: int = 1
    max_batch_delay_ms: int = DEFAULT_BATCH_DELAY_MS

    @property
    def batched(self) -> bool:
        """Whether POSTs carry ``{"events": [...]}`` (else one event, as its own body)."""
        return self.max_batch > 1

    def wants(self, status: str) -> bool:
        """Whether the callback hears of ``status``."""
        return self.events is None or status in self.events

    def listed(self) -> list[str]:
        """The chosen statuses, in lifecycle order."""
        return [str(s) for s in CALLBACK_STATUSES if self.wants(s)]


def chosen_events(names: Iterable[str]) -> frozenset[str] | None:
    """The statuses named (``final`` for every final one); None when that is all of them."""
    chosen: set[str] = set()
    for name in names:
        key = name.strip().lower()
        if key == FINAL_ALIAS:
            chosen |= {str(s) for s in FINAL}
        elif key in set(CALLBACK_STATUSES):
            chosen.add(key)
        else:
            allowed = ", ".join([*CALLBACK_STATUSES, FINAL_ALIAS])
            raise InvalidOption("events", f"'events' may name only {allowed}; not {name!r}")
    if not chosen:
        raise InvalidOption("events", "'events' must name at least one status")
    return None if chosen == set(CALLBACK_STATUSES) else frozenset(chosen)


def checked_batch(max_batch: int | None, delay_ms: int | None) -> None:
    """``maxBatch`` (1 to MAX_BATCH) and ``maxBatchDelayMs`` (0 to MAX_BATCH_DELAY_MS)."""
    if max_batch is not None and not 1 <= max_batch <= MAX_BATCH:
        raise InvalidOption("maxBatch", f"'maxBatch' must be between 1 and {MAX_BATCH}")
    if delay_ms is not None and not 0 <= delay_ms <= MAX_BATCH_DELAY_MS:
        raise InvalidOption("maxBatchDelayMs",
                            f"'maxBatchDelayMs' must be between 0 and {MAX_BATCH_DELAY_MS}")


def event_id(fields: Mapping[str, str]) -> str:
    """A stable id for dedupe: a message reaches each public status at most once, and an MO
    message reaches an account once."""
    return f"{fields.get('id', '')}.{fields.get('status') or fields.get('kind', '')}"


def payload(fields: Mapping[str, str]) -> dict[str, object]:
    """The JSON document POSTed for a captured event (stream fields, as the store wrote them)."""
    common: dict[str, object] = {"eventId": event_id(fields),
                                 "timestamp": _iso(fields.get("at", ""))}
    if fields.get("kind") == "mo":
        return {**common, "type": INBOUND_EVENT, "moMessageId": fields.get("id"),
                "channel": fields.get("channel"), "source": fields.get("from"),
                "destination": fields.get("to"), "text": fields.get("text", ""),
                "parts": int(fields.get("parts") or 1)}
    code, text = fields.get("code", ""), fields.get("text", "")
    stat, err = fields.get("stat", ""), fields.get("err", "")
    return {
        **common, "type": STATUS_EVENT, "apiMessageId": fields.get("id"),
        "clientMessageId": fields.get("cmid") or None, "channel": fields.get("channel"),
        "to": fields.get("to"), "status": fields.get("status"),
        "error": {"code": code, "text": text} if code or text else None,
        "receipt": {"stat": stat, "err": err} if stat or err else None,
        "door": fields.get("door") or "http",
    }


def body_of(fields: Mapping[str, str]) -> bytes:
    """The exact bytes POSTed (and signed) for an event."""
    return json.dumps(payload(fields), ensure_ascii=False, separators=(",", ":")).encode()


def batch_body(bodies: Sequence[bytes]) -> bytes:
    """The body of a batch: ``{"events": [...]}`` around the events' own bodies, as they are."""
    return b'{"events":[' + b",".join(bodies) + b"]}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Smsgw-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def retry_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Seconds before attempt ``attempt + 1``: exponential, with jitter so that the retries of
    many events (after a receiver's outage) do not arrive in step."""
    ceiling = min(high, low * 2 ** min(attempt - 1, 30))
    return rng.uniform(ceiling / 2, ceiling)


def _iso(ms: str) -> str | None:
    if not ms.isdigit():
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat(timespec="milliseconds")
