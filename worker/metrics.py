"""Prometheus metrics of a worker, in a registry of its own (several workers may share a test
process).

Hot-path cost is a few additions to plain numbers per message (:class:`Tally`,
:class:`Buckets`, read by the registry when scraped): nothing here talks to Redis while messages
flow. Bind and window gauges are read from the pools when scraped, and queue
depths with one pipelined read per scrape (:meth:`WorkerMetrics.refresh`).

Labels are bounded: channel (from the configuration), bind index, an SMPP status code or one of
our few error codes, a receipt state. Never a message id or a phone number.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

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

    def pop(self, channel: str, candidates: Iterable[str]) -> float | None:
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


class Tally(Collector):
    """A labelled counter kept in plain numbers, read by the registry when scraped: the same
    series a prometheus_client Counter exports (``_total``, ``_created``), without its lock and
    child lookup on every increment (with :class:`Buckets`, a tenth of a worker's Python per
    message). Label sets are bounded."""

    def __init__(self, registry: CollectorRegistry, name: str, documentation: str,
                 labels: Sequence[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self.counts: dict[tuple[str, ...], float] = {}
        self._created: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def add(self, key: tuple[str, ...], amount: float = 1) -> None:
        """Count ``amount`` for the label values ``key``."""
        counts = self.counts
        if key in counts:
            counts[key] += amount
        else:
            counts[key] = amount
            self._created[key] = time.time()

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, count in list(self.counts.items()):
            family.add_metric(key, count, created=self._created[key])
        yield family


class Buckets(Collector):
    """A labelled histogram kept in plain numbers, read by the registry when scraped: the same
    series a prometheus_client Histogram exports, without its lock per bucket and sum."""

    def __init__(self, registry: CollectorRegistry, name: str, documentation: str,
                 labels: Sequence[str], bounds: Sequence[float]) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self._bounds = [*bounds, float("inf")]
        self._les = [floatToGoString(b) for b in self._bounds]  # type: ignore[no-untyped-call]
        # Per label set: the count of each bucket alone (not cumulated), then the sum.
        self.rows: dict[tuple[str, ...], list[float]] = {}
        self._created: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def observe(self, key: tuple[str, ...], value: float) -> None:
        """Count one observation of ``value`` for the label values ``key``."""
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0.0] * (len(self._bounds) + 1)
            self._created[key] = time.time()
        row[bisect.bisect_left(self._bounds, value)] += 1  # the first bound >= value
        row[-1] += value

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, row in list(self.rows.items()):
            cumulated, total = [], 0.0
            for le, count in zip(self._les, row, strict=False):
                total += count
                cumulated.append((le, total))
            family.add_metric(key, cumulated, row[-1])
            family.samples.append(Sample(f"{self.name}_created",
                                         dict(zip(self.labels, key, strict=True)),
                                         self._created[key]))
        yield family


class WorkerMetrics:
    """Everything a worker measures. Create one per worker; pass it to the Dispatcher."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.submitted = Tally(
            r, "smsgw_messages_submitted", "Messages whose every part the SMSC accepted",
            ["channel"])
        self.failures = Tally(
            r, "smsgw_submit_failures",
            "Send attempts that failed, by error code (SMPP status as 0x%08X, or BindDown, "
            "Expired, NoChannel) and what happens next (retry or failed)",
            ["channel", "code", "outcome"])
        self.failovers = Tally(
            r, "smsgw_failovers",
            "Messages moved to the next channel of their route, by the channel they left and "
            "why: status (an SMSC answer the route lists), no_bind (no bind up on any worker "
            "for the failover grace)", ["channel", "reason"])
        self.throttled = Tally(
            r, "smsgw_throttled_responses", "submit_sm answered ESME_RTHROTTLED", ["channel"])
        self.receipts = Tally(
            r, "smsgw_receipts", "Delivery receipts by state (intermediate: ENROUTE, ACCEPTD...)",
            ["channel", "state"])
        self.correlated = Tally(
            r, "smsgw_receipts_correlated",
            "Receipts by correlation result: matched a message, held (arrived before its "
            "submit_sm_resp was recorded, or unknown; kept an hour), unmatched (intermediate "
            "and unknown, dropped). Match rate = matched / all.",
            ["channel", "result"])
        self.submit_latency = Buckets(
            r, "smsgw_submit_response_seconds", "submit_sm to its response, window wait included",
            ["channel"], SUBMIT_BUCKETS)
        self.receipt_latency = Buckets(
            r, "smsgw_submit_to_receipt_seconds",
            "SMSC acceptance to final receipt (messages this worker submitted)", ["channel"],
            RECEIPT_BUCKETS)
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
        self.submit_latency.observe((channel,), seconds)
        if status == pdu.ESME_RTHROTTLED:
            self.throttled.add((channel,))

    def outcome(self, outcome: Outcome) -> None:
        """Count the result of one send attempt."""
        if outcome.error_code == "Deferred":
            return  # waited for a free concatenation reference: not an attempt
        if outcome.status == Status.SUBMITTED:
            self.submitted.add((outcome.channel,))
            self.submit_times.add(outcome.channel, outcome.smsc_ids, time.monotonic())
            return
        follow = "retry" if outcome.status == Status.QUEUED else "failed"
        self.failures.add((outcome.channel, outcome.error_code, follow))

    def receipt(self, event: ReceiptEvent, result: str) -> None:
        """Count one receipt and what the store did with it (a message id, held or ignored)."""
        self.receipts.add((event.channel, str(event.state or "intermediate")))
        kind = _CORRELATION.get(result, "matched")  # otherwise result is a message id
        self.correlated.add((event.channel, kind))
        if event.state is not None:
            at = self.submit_times.pop(event.channel, event.forms.values())
            if at is not None:
                self.receipt_latency.observe((event.channel,), time.monotonic() - at)

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
