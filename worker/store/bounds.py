"""How much the store keeps, and for how long: caps, lifetimes and horizons."""

from __future__ import annotations

from worker.lifecycle import FINAL, Status

ACCEPT_GRACE_MS = 0  # due at once: the wake-up job, or any worker's reaper, claims it
HELD_QUEUE_MAX = 10_000  # receipts held in doubt per SMSC account (newest kept)
QUEUE_HORIZON_MS = 60_000  # pending entries due sooner wait for a worker; later: a receipt

# Status page: per-minute counters per channel and status (kept an hour), latest failures.
STATS_TTL_SECONDS = 3900
FAILURES_KEPT = 100

# Webhooks: the statuses an account's callback hears of, and the cap of its event stream (a
# backstop only: delivered and dead-lettered events are deleted from it at once).
WEBHOOK_STATES = FINAL | {Status.SUBMITTED, Status.UNKNOWN}
WEBHOOK_STREAM_MAXLEN = 1_000_000
DEAD_LETTER_MAXLEN = 100_000
SMPP_DEAD_LETTERS_KEPT = 10_000  # receipts for SMPP clients that aged out, kept per account
