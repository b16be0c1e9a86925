"""Everything in Redis: message records, indexes, receipts map, keys, accounts, webhooks, leases.

A package whose layout is the data model, one module per concern::

    keys        the only place that spells Redis keys (the prefix, arq's names from arq)
    bounds      caps and lifetimes of what is kept
    records     the values crossing the store boundary (dataclasses)
    base        the connection, replica acks (WAIT) and durable writes every part shares
    messages    accept, claim, outcomes, receipts, expiry, lookups: a message's lifecycle
    channels    a channel's shared TPS token bucket and concatenation refs
    leases      bind slots and worker heartbeats
    mo          mobile-originated messages
    parts       parts of messages SMPP clients concatenated, held until the last arrives
    status      worker snapshots, counters and queue depths (status page, metrics)
    apikeys     API keys: records, authentication, rotation, limits
    accounts    accounts' ownership and number assignments
    webhooks    WebhookStore: targets, event streams, dead letters, delivery leases
    copies      the shards' copies of the configuration message scripts read (callbacks)
    events      the transitions channel, parsed
    facade      Store, composed of the parts above

Every write that must be all-or-nothing is one Lua script, so a request or a batch of outcomes
costs one round trip whatever its size, and a crash can never leave half a record.
"""

from __future__ import annotations

from worker.store.base import REDIS_ERRORS, NotReplicated, ReplicaAcks, now_ms
from worker.store.bounds import (
    ACCEPT_GRACE_MS,
    DEAD_LETTER_MAXLEN,
    FAILURES_KEPT,
    HELD_QUEUE_MAX,
    QUEUE_HORIZON_MS,
    STATS_TTL_SECONDS,
    WEBHOOK_STATES,
    WEBHOOK_STREAM_MAXLEN,
)
from worker.store.copies import CallbackSettings, Copies
from worker.store.events import parse_events, watch_transitions
from worker.store.facade import Store
from worker.store.keys import (
    ARQ_JOB_PREFIX,
    ARQ_QUEUE,
    CONFIG,
    EVENTS,
    FAILURES,
    MESSAGES,
    PARTS_DUE,
    PREFIX,
    ROUTE_STAT,
    SNAPSHOTS,
    WEBHOOK_CONSUMER,
    WEBHOOK_GROUP,
    WEBHOOK_NOTIFY,
    WEBHOOK_SHARDS,
    account_key,
    api_key_key,
    api_keys_index_key,
    bind_key,
    bucket_key,
    callback_copy_key,
    children_key,
    cmid_key,
    copy_of,
    copy_version_key,
    dead_letter_key,
    dlr_key,
    held_key,
    id_form_key,
    inbound_key,
    mo_account_key,
    mo_key,
    mo_list_key,
    msg_key,
    numbers_key,
    parts_key,
    pending_key,
    quota_key_prefix,
    ref_key,
    route_stat,
    snapshot_key,
    stats_key,
    tps_key,
    webhook_accounts_key,
    webhook_lease_key,
    webhook_processes_key,
    webhook_shard,
    webhook_stream_key,
    worker_key,
)
from worker.store.parts import Joined, NewPart, PartAnswer, Wake
from worker.store.records import (
    AcceptCall,
    AcceptResult,
    AccountRow,
    Claimed,
    DeadLetter,
    Expiry,
    FailedOver,
    KeyLimits,
    KeyOp,
    KeyRow,
    LimitExceeded,
    MoPart,
    NewMessage,
    Outcome,
    Overview,
    ReceiptEvent,
    Record,
    WebhookEvent,
    WebhookTargets,
)
from worker.store.webhooks import WebhookStore

__all__ = [
    "ACCEPT_GRACE_MS",
    "ARQ_JOB_PREFIX",
    "ARQ_QUEUE",
    "CONFIG",
    "DEAD_LETTER_MAXLEN",
    "EVENTS",
    "FAILURES",
    "FAILURES_KEPT",
    "HELD_QUEUE_MAX",
    "MESSAGES",
    "PARTS_DUE",
    "PREFIX",
    "QUEUE_HORIZON_MS",
    "REDIS_ERRORS",
    "ROUTE_STAT",
    "SNAPSHOTS",
    "STATS_TTL_SECONDS",
    "WEBHOOK_CONSUMER",
    "WEBHOOK_GROUP",
    "WEBHOOK_NOTIFY",
    "WEBHOOK_SHARDS",
    "WEBHOOK_STATES",
    "WEBHOOK_STREAM_MAXLEN",
    "AcceptCall",
    "AcceptResult",
    "AccountRow",
    "CallbackSettings",
    "Claimed",
    "Copies",
    "DeadLetter",
    "Expiry",
    "FailedOver",
    "Joined",
    "KeyLimits",
    "KeyOp",
    "KeyRow",
    "LimitExceeded",
    "MoPart",
    "NewMessage",
    "NewPart",
    "NotReplicated",
    "Outcome",
    "Overview",
    "PartAnswer",
    "ReceiptEvent",
    "Record",
    "ReplicaAcks",
    "Store",
    "Wake",
    "WebhookEvent",
    "WebhookStore",
    "WebhookTargets",
    "account_key",
    "api_key_key",
    "api_keys_index_key",
    "bind_key",
    "bucket_key",
    "callback_copy_key",
    "children_key",
    "cmid_key",
    "copy_of",
    "copy_version_key",
    "dead_letter_key",
    "dlr_key",
    "held_key",
    "id_form_key",
    "inbound_key",
    "mo_account_key",
    "mo_key",
    "mo_list_key",
    "msg_key",
    "now_ms",
    "numbers_key",
    "parse_events",
    "parts_key",
    "pending_key",
    "quota_key_prefix",
    "ref_key",
    "route_stat",
    "snapshot_key",
    "stats_key",
    "tps_key",
    "watch_transitions",
    "webhook_accounts_key",
    "webhook_lease_key",
    "webhook_processes_key",
    "webhook_shard",
    "webhook_stream_key",
    "worker_key",
]
