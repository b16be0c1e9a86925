"""Worker metrics kept in plain numbers export what prometheus_client's own metrics export."""

from __future__ import annotations

import random
import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from worker.metrics import SUBMIT_BUCKETS, Buckets, Tally

CREATED = re.compile(rb"^(\w+_created\{[^}]*\}) \S+$", re.MULTILINE)


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry's text, creation times left out (they differ by when each was made)."""
    return CREATED.sub(rb"\1 T", generate_latest(registry))


def test_a_tally_exports_what_a_counter_exports() -> None:
    rng = random.Random(13)
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    tally = Tally(ours, "smsgw_things", "Things counted", ["channel", "code"])
    counter = Counter("smsgw_things", "Things counted", ["channel", "code"], registry=theirs)
    for _ in range(1000):
        key = (rng.choice(["a", "b"]), rng.choice(["0x00000058", "BindDown", "Expired"]))
        amount = rng.randrange(1, 4)
        tally.add(key, amount)
        counter.labels(*key).inc(amount)
    assert exposition(ours) == exposition(theirs)
    assert b"smsgw_things_created" in exposition(ours)


def test_buckets_export_what_a_histogram_exports() -> None:
    rng = random.Random(13)
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    buckets = Buckets(ours, "smsgw_wait_seconds", "Waits", ["channel"], SUBMIT_BUCKETS)
    histogram = Histogram("smsgw_wait_seconds", "Waits", ["channel"], buckets=SUBMIT_BUCKETS,
                          registry=theirs)
    # values on the bounds too: a value equal to a bound is counted in that bound's bucket
    values = [*SUBMIT_BUCKETS, 0.0, 100.0, *(rng.expovariate(10) for _ in range(1000))]
    for value in values:
        channel = rng.choice(["a", "b"])
        buckets.observe((channel,), value)
        histogram.labels(channel).observe(value)
    assert exposition(ours) == exposition(theirs)


def test_nothing_counted_exports_no_series() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    Tally(ours, "smsgw_things", "Things counted", ["channel"])
    Buckets(ours, "smsgw_wait_seconds", "Waits", ["channel"], SUBMIT_BUCKETS)
    Counter("smsgw_things", "Things counted", ["channel"], registry=theirs)
    Histogram("smsgw_wait_seconds", "Waits", ["channel"], buckets=SUBMIT_BUCKETS,
              registry=theirs)
    assert exposition(ours) == exposition(theirs)
