"""Prometheus metrics of the gateway, in a registry of its own per application.

Labels are bounded: a route is its pattern (never the path with an id in it), unknown paths and
methods fold into ``unmatched`` and ``OTHER``, and a rejection reason is one of a fixed set.
Messages are counted where the store answers, so counting costs no extra Redis round trip.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from redis.asyncio import Redis

from gateway.context import GATEWAY
from gateway.errors import ErrorAnswer, Unauthorized
from worker.metrics import Buckets, Children, Tally
from worker.store import AcceptResult, LimitExceeded, NewMessage, Store

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
CLIENT_CLOSED = 499  # the client went away before the answer (nginx's convention)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GatewayMetrics:
    """Counters and histograms of one gateway application."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        # Once per request: plain numbers read when scraped, no lock or child lookup per call.
        self.requests = Tally(r, "smsgw_http_requests", "HTTP requests answered",
                              ["route", "method", "status"])
        self.latency = Buckets(r, "smsgw_http_request_duration_seconds",
                               "Time to answer an HTTP request", ["route", "method"],
                               LATENCY_BUCKETS)
        self.accepted = Children(Counter("smsgw_messages_accepted",
                                         "Messages (one per recipient) stored and queued; "
                                         "door: http (the send API) or smpp (smpp-server)",
                                         ["channel", "door"], registry=r))
        self.deduplicated = Children(Counter("smsgw_messages_deduplicated",
                                             "Messages answered with the id of an earlier "
                                             "identical request (same clientMessageId)",
                                             ["channel"], registry=r))
        # Both labels come from the config ([[routes]] and its channels): bounded.
        self.routed = Children(Counter("smsgw_messages_routed",
                                       "Messages (one per recipient) a route sent to a "
                                       "channel when they were accepted",
                                       ["route", "channel"], registry=r))
        self.rejected = Children(Counter("smsgw_messages_rejected",
                                         "Messages refused: invalid (validation), conflict "
                                         "(clientMessageId reused with other content), rate, "
                                         "burst or quota (the key's limits)",
                                         ["reason"], registry=r))

    def count_accept(
        self, messages: Sequence[NewMessage], result: Sequence[AcceptResult] | LimitExceeded
    ) -> None:
        """Count what the store did with ``messages``."""
        if isinstance(result, LimitExceeded):
            self.rejected(result.reason).inc(len(messages))
            return
        if len(result) == 1 and not (result[0].conflict or result[0].duplicate):
            message = messages[0]  # the usual request: one message, accepted
            self.accepted(message.channel, message.door or "http").inc()
            if message.route:
                self.routed(message.route, message.channel).inc()
            return
        # Tallied first: one increment per channel and kind, not one per message.
        conflicts = 0
        accepted: dict[tuple[str, str], int] = {}
        deduplicated: dict[str, int] = {}
        routed: dict[tuple[str, str], int] = {}
        for message, outcome in zip(messages, result, strict=True):
            if outcome.conflict:
                conflicts += 1
            elif outcome.duplicate:
                deduplicated[message.channel] = deduplicated.get(message.channel, 0) + 1
            else:
                labels = (message.channel, message.door or "http")
                accepted[labels] = accepted.get(labels, 0) + 1
                if message.route:
                    pair = (message.route, message.channel)
                    routed[pair] = routed.get(pair, 0) + 1
        if conflicts:
            self.rejected("conflict").inc(conflicts)
        for (channel, door), count in accepted.items():
            self.accepted(channel, door).inc(count)
        for channel, count in deduplicated.items():
            self.deduplicated(channel).inc(count)
        for (route, channel), count in routed.items():
            self.routed(route, channel).inc(count)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        method = method if method in METHODS else "OTHER"
        self.requests.add((route, method, str(status)))
        self.latency.observe((route, method), seconds)

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", GatewayMetrics)


class MeteredStore(Store):
    """The gateway's store with its metrics; ``GatewayStore`` counts what each accept did."""

    def __init__(self, metrics: GatewayMetrics, redis: Redis, *args: Any) -> None:
        super().__init__(redis, *args)
        self._metrics = metrics


def route_of(request: web.Request) -> str:
    """The route pattern that matched (bounded), or ``unmatched``."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def metrics_middleware(
    metrics: GatewayMetrics, answer_error: ErrorAnswer
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The gateway's one middleware: map errors with ``answer_error`` (errors.error_answer),
    then time and count every request with the status the client gets."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            try:
                response = await handler(request)
            except Exception as exc:  # answer_error is the error boundary
                response = answer_error(request, exc)
            status = response.status
            return response
        except web.HTTPException as exc:  # redirects and the like pass through untouched
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        finally:
            metrics.observe(route_of(request), request.method, status,
                            time.perf_counter() - started)

    return middleware


async def metrics_view(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format; with a metrics token set, for its bearer only."""
    return metrics_response(request, request.app[METRICS],
                            request.app[GATEWAY].settings.gateway.metrics_token)


def metrics_response(request: web.Request, metrics: GatewayMetrics, token: str) -> web.Response:
    """``metrics`` in Prometheus text format, or Unauthorized when ``token`` is set and the
    request does not bear it (the gateway's /metrics, and the smpp-server's)."""
    # Header bytes that are not UTF-8 arrive as surrogate escapes: compare the bytes sent.
    given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    if token and not hmac.compare_digest(given, f"Bearer {token}".encode()):
        raise Unauthorized("metrics need Authorization: Bearer <SMSGW_METRICS_TOKEN>",
                           challenge='Bearer realm="metrics"')
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
