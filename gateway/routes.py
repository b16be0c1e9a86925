"""The configured routes as the operator sees them: for ``GET /admin/routes`` and
``smsgw routes list|test`` (one description, so the API and the CLI cannot disagree)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.dto import RouteChannel, RouteInfo
from worker.routing import DAYS, Route, Routed, RouteTable, Unroutable, number_problem


def info(route: Route) -> RouteInfo:
    """A route as the admin API shows it."""
    w = route.window
    return RouteInfo(
        name=route.name, prefixes=list(route.prefixes), countries=sorted(route.countries),
        accounts=sorted(route.accounts), senders=list(route.senders.entries),
        hours=f"{w.start // 60:02d}:{w.start % 60:02d}-{w.end // 60:02d}:{w.end % 60:02d}"
        if w else None,
        days=[DAYS[d] for d in sorted(w.days)] if w else [],
        channels=[RouteChannel(channel=c, weight=n) for c, n in route.channels],
        fallbacks=list(route.fallbacks),
        failoverStatuses=[f"0x{s:08X}" for s in sorted(route.failover_statuses)],
        passes=route.passes, numberCheck=route.number_check, byName=route.by_name)


def line(route: Route) -> str:
    """A route on one line of ``smsgw routes list``."""
    i = info(route)
    match = [f"prefixes={','.join(i.prefixes or [])}" if i.prefixes else "",
             f"countries={','.join(i.countries or [])}" if i.countries else "",
             f"accounts={','.join(i.accounts or [])}" if i.accounts else "",
             f"senders={','.join(i.senders or [])}" if i.senders else "",
             f"hours={i.hours}" + (f" {','.join(i.days or [])}" if i.days else "")
             if i.hours else ""]
    total = sum(n for _, n in route.channels)
    sends = " ".join(f"{c}:{100 * n / total:g}%" for c, n in route.channels)
    tail = f" then {','.join(route.fallbacks)}" if route.fallbacks else ""
    moves = f" failover-on={','.join(i.failoverStatuses or [])}" if i.failoverStatuses else ""
    named = " (by name only)" if route.by_name else ""
    return (f"{route.name:16} {' '.join(m for m in match if m) or '(every message)':40} "
            f"-> {sends}{tail}{moves}{named}")


@dataclass(frozen=True, slots=True)
class Explanation:
    """Where a message to a number would go, and why (``smsgw routes test``)."""

    text: str
    routed: bool


def explain(table: RouteTable, to: str, account: str, parent: str, minute: int,
            sender: str = "", named: str = "") -> Explanation:
    """Route ``to`` (E.164 digits) for ``account`` from ``sender`` ('' none) as the gateway
    would, weights aside; by the route called ``named`` alone if given."""
    got = (table.choose_named(named, to, account, parent, minute=minute, sender=sender)
           if named else table.choose(to, account, parent, minute=minute, sender=sender))
    if isinstance(got, Unroutable):
        return Explanation(f"+{to}: not accepted: {got.reason}", False)
    route = table.route(got.route)
    assert isinstance(got, Routed) and route is not None
    problem = number_problem(to) if got.number_check == "libphonenumber" else ""
    if problem:
        return Explanation(f"+{to}: route '{route.name}': not accepted: {problem}", False)
    total = sum(n for _, n in route.channels)
    split = ", ".join(f"{c} {100 * n / total:g}%" for c, n in route.channels)
    chain = " -> ".join(route.order() * route.passes)
    return Explanation(f"+{to}: route '{route.name}': {split}; fails over along {chain}", True)
