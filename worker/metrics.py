"""Prometheus metrics of a worker, in a registry of its own (several workers may share a test
process).

Hot-path cost is a few in-process counter increments per message: nothing here talks to Redis
while messages flow. Bind and window gauges are read from the pools when scraped, and queue
depths with one pipelined read per scrape (:meth:`WorkerMetrics.refresh`).

Labels are bounded: channel (from the configuration), bind index, an SMPP status code or one of
our few error codes, a receipt state. Never a message id or a phone number.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from worker.lifecycle import Status
from worker.smpp import pdu
from worker.smpp.pool import ChannelPool
from worker.store import REDIS_ERRORS, Outcome, ReceiptEvent, Store

SUBMIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RECEIPT_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0,
                   24 * 3600.0, 72 * 3600.0)
SUBMIT_TIMES_KEPT = 50_000  # submit times remembered for submit→receipt latency (~5 MB)
REFRESH_TIMEOUT = 1.0

_CORRELATION = {"held": "held", "ignored": "unmatched"}  # the store's answers, as labels

Pools = Callable[[], Mapping[str, ChannelPool]]
M = TypeVar("M", Counter, Histogram)


class SubmitTimes:
    """When this worker had each SMSC message id answered, for submit→receipt latency.

    Bounded: the oldest entries go first. A receipt for a message submitted by another worker
    (or forgotten here) is simply not timed.
    """

    def __init__(self, size: int = SUBMIT_TIMES_KEPT) -> None:
        self._size = size
        self._at: OrderedDict[tuple[str, str], float] = OrderedDict()

    def add(self, channel: str, smsc_ids: Sequence[str], at: float) -> None:
        """Remember when ``smsc_ids`` of ``channel`` were accepted by the SMSC."""
        for smsc_id in smsc_ids:
            self._at[(channel, smsc_id)] = at
        while len(self._at) > self._size:
            self._at.popitem(last=False)

    def pop(self, channel: str, candidates: Sequence[str]) -> float | None:
        """When the first known candidate id was accepted (and forget it), or None."""
        for candidate in candidates:
            at = self._at.pop((channel, candidate), None)
            if at is not None:
                return at
        return None


class Children(Generic[M]):
    """A labelled metric's children by label values, cached: ``labels()`` validates and takes a
    lock on every call, which the per-message path need not pay. Label sets are bounded."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class WorkerMetrics:
    """Everything a worker measures. Create one per worker; pass it to the Dispatcher."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.submitted = Children(Counter(
            "smsgw_messages_submitted", "Messages whose every part the SMSC accepted",
            ["channel"], registry=r))
        self.failures = Children(Counter(
            "smsgw_submit_failures",
            "Send attempts that failed, by error code (SMPP status as 0x%08X, or BindDown, "
            "Expired, NoChannel) and what happens next (retry or failed)",
            ["channel", "code", "outcome"], registry=r))
        self.failovers = Children(Counter(
            "smsgw_failovers",
            "Messages moved to the next channel of their route, by the channel they left and "
            "why: status (an SMSC answer the route lists), no_bind (no bind up on any worker "
            "for the failover grace)", ["channel", "reason"], registry=r))
        self.throttled = Children(Counter(
            "smsgw_throttled_responses", "submit_sm answered ESME_RTHROTTLED", ["channel"],
            registry=r))
        self.receipts = Children(Counter(
            "smsgw_receipts", "Delivery receipts by state (intermediate: ENROUTE, ACCEPTD...)",
            ["channel", "state"], registry=r))
        self.correlated = Children(Counter(
            "smsgw_receipts_correlated",
            "Receipts by correlation result: matched a message, held (arrived before its "
            "submit_sm_resp was recorded, or unknown; kept an hour), unmatched (intermediate "
            "and unknown, dropped). Match rate = matched / all.",
            ["channel", "result"], registry=r))
        self.submit_latency = Children(Histogram(
            "smsgw_submit_response_seconds", "submit_sm to its response, window wait included",
            ["channel"], buckets=SUBMIT_BUCKETS, registry=r))
        self.receipt_latency = Children(Histogram(
            "smsgw_submit_to_receipt_seconds",
            "SMSC acceptance to final receipt (messages this worker submitted)", ["channel"],
            buckets=RECEIPT_BUCKETS, registry=r))
        self.queue_depth = Gauge("smsgw_queue_depth", "arq jobs waiting to be picked up",
                                 ["queue"], registry=r)
        self.pending = Gauge("smsgw_pending_messages",
                             "Unfinished messages not yet submitted (queued, retrying, sending)",
                             ["channel"], registry=r)
        self.redis_up = Gauge("smsgw_redis_up", "1 if Redis answered the last scrape",
                              registry=r)
        self.submit_times = SubmitTimes()

    # --- hot path: in-process only -----------------------------------------------------------

    def submit_answered(self, channel: str, status: int, seconds: float) -> None:
        """One submit_sm got its response, with ``status``, after ``seconds``."""
        self.submit_latency(channel).observe(seconds)
        if status == pdu.ESME_RTHROTTLED:
            self.throttled(channel).inc()

    def outcome(self, outcome: Outcome) -> None:
        """Count the result of one send attempt."""
        if outcome.error_code == "Deferred":
            return  # waited for a free concatenation reference: not an attempt
        if outcome.status == Status.SUBMITTED:
            self.submitted(outcome.channel).inc()
            self.submit_times.add(outcome.channel, outcome.smsc_ids, time.monotonic())
            return
        follow = "retry" if outcome.status == Status.QUEUED else "failed"
        self.failures(outcome.channel, outcome.error_code, follow).inc()

    def receipt(self, event: ReceiptEvent, result: str) -> None:
        """Count one receipt and what the store did with it (a message id, held or ignored)."""
        self.receipts(event.channel, str(event.state or "intermediate")).inc()
        kind = _CORRELATION.get(result, "matched")  # otherwise result is a message id
        self.correlated(event.channel, kind).inc()
        if event.state is not None:
            at = self.submit_times.pop(event.channel, event.candidates)
            if at is not None:
                self.receipt_latency(event.channel).observe(time.monotonic() - at)

    # --- scrape time -------------------------------------------------------------------------

    def watch(self, pools: Pools) -> None:
        """Report the binds of ``pools()`` (read at each scrape)."""
        self.registry.register(BindCollector(pools))

    async def refresh(self, store: Store, channels: Sequence[str]) -> None:
        """Read queue depths (one round trip, bounded in time); on failure drop them."""
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT):
                jobs, pending = await store.queue_depths(channels)
        except (*REDIS_ERRORS, TimeoutError):
            self.redis_up.set(0)
            self.queue_depth.clear()
            self.pending.clear()
            return
        self.redis_up.set(1)
        self.queue_depth.labels("arq").set(jobs)
        for channel, depth in pending.items():
            self.pending.labels(channel).set(depth)

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


class BindCollector(Collector):
    """Bind state, window use and reconnects, read from the pools when scraped."""

    def __init__(self, pools: Pools) -> None:
        self._pools = pools

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("smsgw_bind_up", "1 while the bind is bound",
                               labels=["channel", "bind", "kind"])
        window = GaugeMetricFamily("smsgw_bind_window_in_use",
                                   "Requests awaiting a response on the bind",
                                   labels=["channel", "bind"])
        size = GaugeMetricFamily("smsgw_bind_window_size", "Window configured per bind",
                                 labels=["channel"])
        reconnects = CounterMetricFamily("smsgw_bind_reconnects",
                                         "Binds lost and re-established", labels=["channel"])
        for name, pool in self._pools().items():
            size.add_metric([name], pool.channel.window)
            reconnects.add_metric([name], pool.reconnects)
            for bind in pool.binds():
                index = str(bind.index)
                session = bind.session
                up.add_metric([name, index, bind.kind],
                              1 if session is not None and session.bound else 0)
                window.add_metric([name, index], session.in_flight if session else 0)
        yield from (up, window, size, reconnects)
