"""Values crossing the store boundary: what callers pass in and get back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from worker.lifecycle import Status
from worker.webhooks import CallbackOptions


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message for one recipient, ready to be stored."""

    api_id: str
    account: str
    channel: str
    to: str
    content: str
    encoding: str
    segments: int
    cmid: str = ""
    fingerprint: str = ""
    route: str = ""  # the route that chose ``channel`` ('' the message named it)
    chain: str = ""  # the channels it fails over along, comma separated, ``channel`` first
    # The door it came through: "" for HTTP, "smpp" for the SMPP server, whose client hears
    # of the states in ``notify`` ("f" final, "x" final failures only, "i" intermediate) on
    # its account's SMPP receipt stream; ``source`` is the client's source_addr.
    door: str = ""
    notify: str = ""
    source: str = ""
    sender: str = ""  # its source address ('' the channel's source_addr)
    # Epoch ms, 0 for none: not sent before ``scheduled_at``, and not submitted from
    # ``valid_until`` on (it fails as Expired; a submit carries it as its validity_period).
    scheduled_at: int = 0
    valid_until: int = 0


@dataclass(frozen=True, slots=True)
class AcceptCall:
    """One request's arguments to :meth:`Store.accept_within` (no limits: :meth:`accept`)."""

    limits: KeyLimits | None
    messages: Sequence[NewMessage]
    window_seconds: int
    job_id: str
    job_payload: bytes
    job_expiry_seconds: int


@dataclass(frozen=True, slots=True)
class AcceptResult:
    """Outcome of storing one NewMessage: its id (maybe an earlier one) or a conflict."""

    api_id: str
    duplicate: bool = False
    conflict: bool = False


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message a worker has claimed for sending."""

    api_id: str
    channel: str
    to: str
    content: str
    attempts: int  # spent before this claim (submits that reached the SMSC)
    accepted_at: int
    reclaimed: bool  # the previous holder died: its submit may have reached the SMSC
    route: str = ""  # the route that chose its channel ('' the message named it)
    sender: str = ""  # its source address ('' the channel's source_addr)
    scheduled_at: int = 0  # as NewMessage's: its max age counts from then
    valid_until: int = 0  # as NewMessage's


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of submitting every part of a message."""

    api_id: str
    channel: str
    smsc_ids: Sequence[str] = ()
    status: Status = Status.SUBMITTED  # SUBMITTED, QUEUED (retry) or FAILED
    error_code: str = ""
    error_text: str = ""
    retry_at: int = 0
    deferred: bool = False  # waited for a resource (a free ref, a throttled SMSC)
    attempted: bool = False  # a submit of it reached the SMSC: spends one of max_attempts
    receipt_wait_ms: int = 0  # submitted: becomes unknown if no receipt settles it by then
    # its route moves it on for this answer: to its next channel if it has one (see
    # Store.fail_over), else the outcome stands
    fail_over: bool = False


@dataclass(frozen=True, slots=True)
class Expiry:
    """What one pass of :meth:`Store.expire_queued` did."""

    failed: list[str]  # ids it moved to failed (Expired)
    next_start: int  # rank the channel's next pass starts from (0: from the lowest again)


@dataclass(frozen=True, slots=True)
class ReceiptEvent:
    """A delivery receipt to correlate by the forms of its id (see receipt_id_forms)."""

    channel: str
    forms: Mapping[str, str]  # id convention ("same", "hex_to_dec", "dec_to_hex") -> id form
    state: Status | None  # None: an intermediate receipt (ENROUTE, ACCEPTD)
    stat: str
    err: str
    at: int = 0
    smsc: str = ""  # the channel's SMSC account; "" for the channel's name
    spelled_twice: bool = False  # TLV and text ids in two bases: the "same" form is proven


@dataclass(frozen=True, slots=True)
class MoPart:
    """A mobile-originated deliver_sm, possibly one part of a concatenated message."""

    api_id: str  # the id the whole message gets if this part completes it
    channel: str
    source: str
    destination: str
    body: bytes  # the text's octets, undecoded: a character may straddle two parts
    data_coding: int = 0
    ref: str = ""  # "" for a single-part message; else "{bits}:{ref}"
    total: int = 1
    seq: int = 1
    default_account: str = ""  # owns it if no account owns its destination ('': Admins only)


@dataclass(frozen=True, slots=True)
class Overview:
    """The status page's data, as stored (see :meth:`Store.overview`)."""

    now_ms: int
    workers: list[dict[str, Any]]  # snapshots published by live workers
    minutes: list[tuple[int, dict[str, int]]]  # (minute, {"{channel}|{status}": n}), oldest first
    failures: list[list[Any]]  # [id, channel, status, detail, at_ms], newest first
    jobs: int  # arq jobs waiting
    queued: dict[str, int]  # per channel: waiting for a worker or in its hands
    awaiting_receipt: dict[str, int]  # per channel: submitted, receipt not yet in
    scheduled: dict[str, int] = field(default_factory=dict)  # per channel: due later than that


@dataclass(slots=True)
class Record:
    """A message record as stored, for status lookups."""

    api_id: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def account(self) -> str:
        return self.fields.get("account", "")

    @property
    def status(self) -> str:
        return self.fields.get("status", "")

    def transitions(self) -> list[tuple[str, int, str]]:
        """(status, at_ms, detail) for every transition, oldest first."""
        return [(str(s), int(at), str(d)) for s, at, d in json.loads(self.fields.get("tr", "[]"))]


KeyOp = Literal["enable", "disable", "delete", "rotate", "senders"]


@dataclass(frozen=True, slots=True, eq=False)
class KeyRow:
    """An API key record as found at authentication (hashed by identity: a cached row is the
    same object, so what is derived from it can be remembered with it)."""

    fields: dict[str, str]
    children: frozenset[str]  # accounts owned by the key's account (Partner keys only)
    now_ms: int  # Redis' clock, the one every gateway instance shares
    parent: str = ""  # the account owning the key's account ('' none): routes match on it


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account as stored: its parent ('' none) and who set it ('Admin', 'Partner', or ''
    for a record older than ownership)."""

    account: str
    parent: str
    ownership: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """A key's limits on messages (recipients); 0 means none."""

    key_id: str
    rate: int = 0  # messages per second
    burst: int = 0  # messages at once
    daily_quota: int = 0  # messages per UTC day


@dataclass(frozen=True, slots=True)
class LimitExceeded:
    """Why a request was refused by its key's limits, and when trying again can help."""

    reason: Literal["rate", "burst", "quota"]  # burst: more recipients than the bucket holds
    retry_after_ms: int


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event read from an account's stream of ``shard`` (None: its unsharded stream of
    before shards); ``fields`` is None if it was trimmed away."""

    account: str
    entry_id: str
    fields: dict[str, str] | None
    shard: int | None = None

    @property
    def ref(self) -> tuple[int | None, str]:
        """What tells the account's events apart: ids are unique only within a stream."""
        return self.shard, self.entry_id

    @property
    def queued_ms(self) -> int:
        """When the event was captured (or replayed): the stream id's time part."""
        return int(self.entry_id.partition("-")[0])


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event given up on: its fields plus reason, attempts, dead_at and queued_at."""

    dead_id: str
    account: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class WebhookTargets:
    """Where an account's events go, and the secret they are signed with."""

    account: str
    callback_url: str
    secret: str = field(repr=False)
    inbound: Mapping[str, str]  # channel -> URL
    # the callback's statuses and batches
    options: CallbackOptions = field(default_factory=CallbackOptions)


@dataclass(frozen=True, slots=True)
class FailedOver:
    """What :meth:`Store.fail_over` did."""

    moved: dict[str, str]  # id -> the channel it moved to
    last: list[str]  # ids whose chain has no channel left: they stay where they are
