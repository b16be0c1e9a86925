"""Webhook events as their receivers see them: payloads, signatures, retry delays. Pure.

Two kinds of event reach an account's URLs:

- ``message.status`` (the callback URL): a message of the account changed status
  (submitted, delivered, undelivered, expired, rejected, failed, unknown);
- ``message.inbound`` (the inbound URL of a channel): a mobile-originated message arrived.

Every POST carries ``X-Smsgw-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is
HMAC-SHA256 with the account's secret over ``"<t>." + body``: the timestamp is signed with the
body, so a receiver can refuse old replays. ``eventId`` is the same on every attempt and on a
replay, so receivers can drop duplicates (delivery is at-least-once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Mapping
from datetime import UTC, datetime

SIGNATURE_HEADER = "X-Smsgw-Signature"
EVENT_ID_HEADER = "X-Smsgw-Event-Id"
EVENT_TYPE_HEADER = "X-Smsgw-Event-Type"
STATUS_EVENT = "message.status"
INBOUND_EVENT = "message.inbound"


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
