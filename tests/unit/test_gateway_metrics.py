"""Message counters: tallied per request, they read as counted one message at a time."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry

from gateway.metrics import GatewayMetrics
from worker.store import AcceptResult, LimitExceeded, NewMessage

CHANNELS = ("a", "b", "c")
SAMPLES = [("smsgw_messages_accepted_total", ch) for ch in CHANNELS] + [
    ("smsgw_messages_deduplicated_total", ch) for ch in CHANNELS]
REASONS = ("conflict", "rate", "burst", "quota")


def _message(channel: str) -> NewMessage:
    return NewMessage(api_id="x", account="acme", channel=channel, to="27820000001",
                      content="hi", encoding="gsm7", segments=1)


def _counts(metrics: GatewayMetrics) -> dict[tuple[str, str], float | None]:
    r = metrics.registry
    counts = {(name, ch): r.get_sample_value(name, {"channel": ch} | _door(name))
              for name, ch in SAMPLES}
    counts |= {("rejected", reason): r.get_sample_value("smsgw_messages_rejected_total",
                                                         {"reason": reason})
               for reason in REASONS}
    return counts


def _door(name: str) -> dict[str, str]:
    return {"door": "http"} if name == "smsgw_messages_accepted_total" else {}


def _one_at_a_time(metrics: GatewayMetrics, messages: list[NewMessage],
                   result: list[AcceptResult] | LimitExceeded) -> None:
    if isinstance(result, LimitExceeded):
        metrics.rejected.metric.labels(result.reason).inc(len(messages))
        return
    for message, outcome in zip(messages, result, strict=True):
        if outcome.conflict:
            metrics.rejected.metric.labels("conflict").inc()
        elif outcome.duplicate:
            metrics.deduplicated.metric.labels(message.channel).inc()
        else:
            metrics.accepted.metric.labels(message.channel, "http").inc()


def test_counts_of_generated_requests_equal_counts_made_one_message_at_a_time() -> None:
    rng = random.Random("metrics")
    tallied = GatewayMetrics(CollectorRegistry())
    reference = GatewayMetrics(CollectorRegistry())
    for _ in range(300):
        messages = [_message(rng.choice(CHANNELS)) for _ in range(rng.randint(0, 8))]
        result: list[AcceptResult] | LimitExceeded = [
            AcceptResult(api_id="x", duplicate=rng.random() < 0.3, conflict=rng.random() < 0.2)
            for _ in messages]
        if rng.random() < 0.1:
            result = LimitExceeded(reason=rng.choice(["rate", "burst", "quota"]),
                                   retry_after_ms=1)
        tallied.count_accept(messages, result)
        _one_at_a_time(reference, messages, result)
        assert _counts(tallied) == _counts(reference)
    assert all(v for v in _counts(tallied).values())  # every counter was reached
