"""The live status page: one read-only HTML page, and the JSON it polls (Admin keys only).

    GET /admin/status        the page: a shell with no data in it, so it needs no key
    GET /admin/status.json   channels, binds, queues, per-minute counts, latest failures

The page takes the key from its URL fragment (``/admin/status#key=...``: a fragment never
reaches a server, so no access log or proxy sees it), keeps it in the tab's sessionStorage and
removes it from the address bar; or asks for it in a form. ``curl -u KEY: .../status.json``
works too. Workers publish what the gateway cannot see (their binds) from their heartbeat.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

from gateway.auth import ADMIN_ROLES, authenticate
from gateway.context import GATEWAY
from gateway.status_html import CSP, PAGE
from worker.store import ROUTE_STAT, Overview, route_stat

MINUTES = 15  # the chart's span
FAILURES = 20
BAD_ENDINGS = ("failed", "undelivered", "expired", "rejected")
ENDINGS = ("delivered", *BAD_ENDINGS)
SERIES = ("accepted", "submitted", "delivered", "queued", *BAD_ENDINGS)  # queued: a retry


async def page(request: web.Request) -> web.Response:
    """The HTML page (static; its script fetches the data with the operator's key)."""
    return web.Response(text=PAGE, content_type="text/html", headers={
        "Content-Security-Policy": CSP,
        "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    })


async def data(request: web.Request) -> web.Response:
    """The page's data, for Admin keys."""
    gw = request.app[GATEWAY]
    principal = await authenticate(gw.store, request.headers)
    principal.require_any(ADMIN_ROLES)
    overview = await gw.store.overview(sorted(gw.settings.channels), MINUTES, FAILURES)
    return web.json_response(status_document(overview), headers={"Cache-Control": "no-store"})


def add_routes(router: web.UrlDispatcher) -> None:
    """The status page's routes."""
    router.add_get("/admin/status", page)
    router.add_get("/admin/status.json", data)


def status_document(ov: Overview) -> dict[str, Any]:
    """The JSON the page renders, from what the store holds."""
    subjects = {k.split("|", 1)[0] for _, row in ov.minutes for k in row}
    names = sorted(set(ov.queued) | {c for w in ov.workers for c in w.get("channels", {})}
                   | {s for s in subjects if not s.startswith(ROUTE_STAT)})
    routes = sorted(s[len(ROUTE_STAT):] for s in subjects if s.startswith(ROUTE_STAT))
    return {
        "now": ov.now_ms, "jobs": ov.jobs,
        "minutes": [minute * 60_000 for minute, _ in ov.minutes],
        "workers": [{"worker": w.get("worker"), "at": w.get("at")} for w in ov.workers],
        "channels": [_channel(name, ov) for name in names if name],
        "routes": [_route(name, ov) for name in routes],
        "failures": [{"apiMessageId": f[0], "channel": f[1], "status": f[2], "detail": f[3],
                      "at": f[4]} for f in ov.failures],
    }


def _channel(name: str, ov: Overview) -> dict[str, Any]:
    views = [(w.get("worker", ""), w["channels"][name]) for w in ov.workers
             if name in w.get("channels", {})]
    sessions = [{"worker": worker, **s} for worker, view in views for s in view["sessions"]]
    binds = max((v["binds"] for _, v in views), default=0)
    window = max((v["window"] for _, v in views), default=0)
    up = Counter(s["kind"] for s in sessions if s["state"] == "bound")
    for s in sessions:
        if s["state"] == "down" and up[s["kind"]] >= binds:
            s["state"] = "standby"  # every bind slot is held elsewhere: it takes over on a death
    bound = [s for s in sessions if s["state"] == "bound" and s["kind"] == "tx"]
    in_flight = sum(s["inFlight"] for s in bound)
    series = {what: [row.get(f"{name}|{what}", 0) for _, row in ov.minutes] for what in SERIES}
    totals = Counter({what: sum(counts) for what, counts in series.items()})
    ended = sum(totals[s] for s in ENDINGS)
    return {
        "name": name, "binds": binds, "window": window, "bound": len(bound),
        "sessions": sessions, "inFlight": in_flight,
        "windowUse": in_flight / (binds * window) if binds and window else 0.0,
        "reconnects": sum(v["reconnects"] for _, v in views),
        "queued": ov.queued.get(name, 0), "scheduled": ov.scheduled.get(name, 0),
        "awaitingReceipt": ov.awaiting_receipt.get(name, 0),
        "series": series, "totals": dict(totals),
        "errorRate": sum(totals[s] for s in BAD_ENDINGS) / ended if ended else None,
        "retryRate": totals["queued"] / totals["submitted"] if totals["submitted"] else None,
    }


def _route(name: str, ov: Overview) -> dict[str, Any]:
    """How a route's messages split over its channels at accept time, per minute and in all,
    and how many of them moved to another channel (failover)."""
    routed, failover = route_stat(name, "routed:"), route_stat(name, "failover")
    per_minute = [{k[len(routed):]: n for k, n in row.items() if k.startswith(routed)}
                  for _, row in ov.minutes]
    split: Counter[str] = Counter()
    for row in per_minute:
        split.update(row)
    return {
        "name": name, "routed": split.total(), "channels": dict(sorted(split.items())),
        "failovers": sum(row.get(failover, 0) for _, row in ov.minutes),
        "series": [sum(row.values()) for row in per_minute],
    }
