"""Routing: which channel a message goes to, and where it goes when that channel fails.

Pure functions and frozen values, no I/O. Routes come from the config's ``[[routes]]`` tables,
in order: the first route whose every criterion matches a message routes it. A route names
channels with weights (one is picked by weight) and fallbacks; the picked channel, the route's
other channels and then its fallbacks make the message's *chain*, the order it fails over in,
each channel once (``passes`` walks the chain again). :class:`RouteTable` is compiled once, at
start, so that routing a message costs a few string comparisons (see README, Routing).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import phonenumbers

from worker.senders import Senders

NumberCheck = Literal["length", "libphonenumber"]
MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The Unix epoch (minute 0) was a Thursday: minutes since it, shifted so Monday 00:00 is 0.
_EPOCH_WEEKDAY = 3
_HOURS = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")


class RouteError(ValueError):
    """A route that cannot be used as configured (config names the file around it)."""


@dataclass(frozen=True, slots=True)
class Window:
    """When a route applies, in UTC: from ``start`` to ``end`` (minutes of the day; an end
    before the start runs past midnight) on ``days`` (0 is Monday; empty: every day)."""

    start: int
    end: int
    days: frozenset[int] = frozenset()

    def holds(self, minute_of_week: int) -> bool:
        day, minute = divmod(minute_of_week % MINUTES_PER_WEEK, MINUTES_PER_DAY)
        if self.start <= self.end:
            return (not self.days or day in self.days) and self.start <= minute < self.end
        if minute >= self.start:  # the evening part: it belongs to the day it starts on
            return not self.days or day in self.days
        return minute < self.end and (not self.days or (day - 1) % 7 in self.days)


def parse_window(hours: str, days: Sequence[str] = ()) -> Window:
    """A :class:`Window` from ``"HH:MM-HH:MM"`` and day names (``"mon"``...)."""
    m = _HOURS.fullmatch(hours)
    if m is None:
        raise RouteError(f"hours: must be \"HH:MM-HH:MM\" (UTC), got {hours!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
        raise RouteError(f"hours: not a time of day in {hours!r}")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise RouteError(f"hours: an empty window {hours!r}")
    bad = [d for d in days if d.lower() not in DAYS]
    if bad:
        raise RouteError(f"days: {bad[0]!r} is not one of {', '.join(DAYS)}")
    return Window(start, end, frozenset(DAYS.index(d.lower()) for d in days))


def minute_of_week(epoch_seconds: float) -> int:
    """Minutes since Monday 00:00 UTC."""
    return (int(epoch_seconds // 60) + _EPOCH_WEEKDAY * MINUTES_PER_DAY) % MINUTES_PER_WEEK


@dataclass(frozen=True, slots=True)
class Route:
    """One ``[[routes]]`` table. An empty criterion matches every message."""

    name: str
    channels: tuple[tuple[str, int], ...]  # (channel, weight): one is picked by weight
    fallbacks: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()  # destination prefixes, E.164 digits
    countries: frozenset[str] = frozenset()  # ISO 3166 alpha-2 codes of the destination
    accounts: frozenset[str] = frozenset()  # the message's account or its parent account
    # the message's sender (a message without one: no match)
    senders: Senders = field(default_factory=Senders)
    window: Window | None = None
    # SMSC answers to a submit that move the message to its next channel (none: only a
    # channel with no bind up for the grace period moves it)
    failover_statuses: frozenset[int] = frozenset()
    passes: int = 1  # how many times a message may walk its chain
    number_check: NumberCheck | None = None  # None: the gateway's number_check
    # Never chosen by :meth:`RouteTable.choose`: only for messages naming it ("route:NAME").
    by_name: bool = False

    def order(self) -> tuple[str, ...]:
        """The route's channels, then its fallbacks, each once."""
        return tuple(dict.fromkeys([c for c, _ in self.channels] + list(self.fallbacks)))


@dataclass(frozen=True, slots=True)
class Routed:
    """Where a message goes: its route, its channel, and the chain it fails over along."""

    route: str
    channel: str
    chain: tuple[str, ...]  # starts with ``channel``
    number_check: NumberCheck


@dataclass(frozen=True, slots=True)
class Unroutable:
    """Why no route can send a message (the text goes to the client)."""

    reason: str


@dataclass(frozen=True, slots=True)
class _Compiled:
    route: Route
    prefixes: tuple[str, ...]
    single_cc: tuple[str, ...]  # calling codes of its countries that no other region shares
    shared_cc: tuple[str, ...]  # calling codes it shares: the number is parsed to decide
    weights: tuple[int, ...]  # cumulative
    # by picked channel, for keys of any rights and each number check: made once, not per
    # message
    decided: Mapping[tuple[str, str], Routed]


@dataclass(frozen=True, slots=True)
class RouteTable:
    """The routes of a config, compiled once; :meth:`choose` routes a message."""

    routes: tuple[Route, ...] = ()
    number_check: NumberCheck = "length"
    _compiled: tuple[_Compiled, ...] = field(default=(), repr=False, compare=False)
    _automatic: tuple[_Compiled, ...] = field(default=(), repr=False, compare=False)  # not by_name

    @classmethod
    def build(cls, routes: Sequence[Route], number_check: NumberCheck = "length") -> RouteTable:
        compiled = tuple(_compile(r) for r in routes)
        return cls(tuple(routes), number_check, compiled,
                   tuple(c for c in compiled if not c.route.by_name))

    def __bool__(self) -> bool:
        return bool(self.routes)

    def route(self, name: str) -> Route | None:
        return next((r for r in self.routes if r.name == name), None)

    def choose(self, to: str, account: str, parent: str = "", *, minute: int = 0,
               rand: float = 0.0, allowed: Collection[str] | None = None,
               sender: str = "") -> Routed | Unroutable:
        """The first route (but those used only by name) matching the destination ``to``
        (E.164 digits), the account (or its ``parent``), the ``sender`` ('' none) and the
        ``minute`` of the week; its channel picked by weight with ``rand`` in [0, 1).
        ``allowed``: the channels the API key may use (None: all)."""
        region: list[str] = []  # parsed at most once, and only if a route needs it
        for c in self._automatic:
            if _matches(c, to, account, parent, minute, region, sender):
                return _pick(c, rand, allowed, c.route.number_check or self.number_check)
        return Unroutable(f"no route sends to +{to} for account {account!r}"
                          + (f" from sender '{sender}'" if sender else ""))

    def choose_named(self, name: str, to: str, account: str, parent: str = "", *,
                     minute: int = 0, rand: float = 0.0,
                     allowed: Collection[str] | None = None,
                     sender: str = "") -> Routed | Unroutable:
        """:meth:`choose` by the route called ``name`` alone (a message naming its route,
        which may be one used only by name): the routes before it are skipped, its own
        criteria still apply."""
        c = next((c for c in self._compiled if c.route.name == name), None)
        if c is None:
            return Unroutable(f"route {name!r} does not exist")
        if not _matches(c, to, account, parent, minute, [], sender):
            return Unroutable(f"route {name!r} does not send to +{to} for account {account!r}"
                              + (f" from sender '{sender}'" if sender else ""))
        return _pick(c, rand, allowed, c.route.number_check or self.number_check)


def _matches(c: _Compiled, to: str, account: str, parent: str, minute: int,
             region: list[str], sender: str) -> bool:
    """Whether every criterion of the route matches (``region``: the memo of ``to``'s)."""
    r = c.route
    if c.prefixes and not to.startswith(c.prefixes):
        return False
    if (r.countries and not to.startswith(c.single_cc)
            and not (to.startswith(c.shared_cc) and _region(to, region) in r.countries)):
        return False
    if r.accounts and account not in r.accounts and parent not in r.accounts:
        return False
    if r.senders and not (sender and r.senders.matches(sender)):
        return False
    return r.window is None or r.window.holds(minute)


def _compile(route: Route) -> _Compiled:
    single: list[str] = []
    shared: list[str] = []
    for country in sorted(route.countries):
        cc = phonenumbers.country_code_for_region(country)
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc, ())
        (single if len(regions) == 1 else shared).append(str(cc))
    weights = tuple(itertools.accumulate(w for _, w in route.channels))
    order = route.order()
    decided = {(ch, check): Routed(route.name, ch, _chain(ch, order, route.passes),
                                   route.number_check or check)
               for ch, _ in route.channels for check in ("length", "libphonenumber")}
    return _Compiled(route, route.prefixes, tuple(single), tuple(dict.fromkeys(shared)),
                     weights, decided)


def _chain(picked: str, order: Sequence[str], passes: int) -> tuple[str, ...]:
    """The picked channel, then the route's others in order, ``passes`` times over."""
    return (picked, *(c for c in order if c != picked)) * passes


def _pick(c: _Compiled, rand: float, allowed: Collection[str] | None,
          check: NumberCheck) -> Routed | Unroutable:
    r = c.route
    if allowed is None:
        i = bisect.bisect_right(c.weights, rand * c.weights[-1])
        return c.decided[r.channels[min(i, len(r.channels) - 1)][0], check]
    # A restricted key: the route's channels it may use, by their weights, then its fallbacks.
    mine = [(ch, w) for ch, w in r.channels if ch in allowed]
    order = [ch for ch in r.order() if ch in allowed]
    if not order:
        return Unroutable(f"route '{r.name}' sends only on channels this API key may not use")
    if mine:
        acc = list(itertools.accumulate(w for _, w in mine))
        ch = mine[min(bisect.bisect_right(acc, rand * acc[-1]), len(mine) - 1)][0]
    else:
        ch = order[0]
    return Routed(r.name, ch, _chain(ch, order, r.passes), check)


def _region(to: str, memo: list[str]) -> str:
    if not memo:
        memo.append(region_of(to))
    return memo[0]


@lru_cache(maxsize=4096)
def region_of(to: str) -> str:
    """The ISO 3166 code of the region of ``to`` (E.164 digits), '' if none."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse("+" + to)) or ""
    except phonenumbers.NumberParseException:
        return ""


_POSSIBLE = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "its country code is not one in use",
    phonenumbers.ValidationResult.TOO_SHORT: "it is too short",
    phonenumbers.ValidationResult.TOO_LONG: "it is too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "its length is not one in use",
}


def number_problem(to: str) -> str:
    """Why ``to`` (E.164 digits) is not a valid number by libphonenumber's metadata ('' if it
    is). About 20 µs: only routes (or gateways) that ask for it pay it."""
    try:
        num = phonenumbers.parse("+" + to)
    except phonenumbers.NumberParseException as exc:
        return f"'+{to}' is not a phone number ({exc})"
    why = _POSSIBLE.get(phonenumbers.is_possible_number_with_reason(num))
    region = phonenumbers.region_code_for_number(num) or ""
    where = f" for {region}" if region else ""
    if why:
        return f"'+{to}' is not a valid number{where}: {why}"
    if not phonenumbers.is_valid_number(num):
        return f"'+{to}' is not a valid number{where}: no numbers in use start this way"
    return ""


def outages(since: Mapping[str, float], watched: Collection[str], up: Collection[str],
            now: float) -> dict[str, float]:
    """Since when each of the ``watched`` channels has had no bind up on any worker: those
    not ``up`` now, since the time ``since`` has for them, else since ``now``."""
    return {ch: since.get(ch, now) for ch in watched if ch not in up}


# --- checks at start ---------------------------------------------------------------------------


def check_routes(routes: Sequence[Route], channels: Collection[str]) -> None:
    """Raise :class:`RouteError` naming the route (``routes[i] 'name'``) and the problem: a
    channel that does not exist, a weight that is not positive, a country that is not one, or
    a route no message can reach because an earlier one matches all it would. A route used
    only by name is reached by naming it, and is never chosen for a message that does not,
    so it neither is unreachable nor makes a later route so."""
    seen: dict[str, int] = {}
    for i, r in enumerate(routes):
        where = f"routes[{i}] '{r.name}'"
        if r.name in seen:
            raise RouteError(f"{where}: the name is already used by routes[{seen[r.name]}]")
        seen[r.name] = i
        _check_one(r, where, channels)
        for j, earlier in enumerate(routes[:i]):
            if not r.by_name and not earlier.by_name and _covers(earlier, r):
                raise RouteError(f"{where}: unreachable: routes[{j}] '{earlier.name}' before it "
                                 "matches every message it would (first match wins)")


def _check_one(r: Route, where: str, channels: Collection[str]) -> None:
    if not r.channels:
        raise RouteError(f"{where}.channels: must name at least one channel")
    for ch, weight in r.channels:
        if ch not in channels:
            raise RouteError(f"{where}.channels: no channel named {ch!r}")
        if weight <= 0:
            raise RouteError(f"{where}.channels: the weight of {ch!r} must be positive, "
                             f"got {weight}")
    for ch in r.fallbacks:
        if ch not in channels:
            raise RouteError(f"{where}.fallbacks: no channel named {ch!r}")
    names = [c for c, _ in r.channels] + list(r.fallbacks)
    twice = next((c for c in names if names.count(c) > 1), None)
    if twice:
        raise RouteError(f"{where}: channel {twice!r} is named twice (a chain visits each "
                         "channel once per pass)")
    for p in r.prefixes:
        if not p.isascii() or not p.isdigit():
            raise RouteError(f"{where}.prefixes: {p!r} is not E.164 digits (no '+')")
    for c in r.countries:
        if not phonenumbers.country_code_for_region(c):
            raise RouteError(f"{where}.countries: {c!r} is not an ISO 3166 code of a region "
                             "with phone numbers")
    if r.passes < 1:
        raise RouteError(f"{where}.passes: must be at least 1")


def _covers(a: Route, b: Route) -> bool:
    """Whether route ``a`` matches every message route ``b`` matches (conservative: True
    only when it is sure)."""
    if a.prefixes and not (b.prefixes and all(p.startswith(a.prefixes) for p in b.prefixes)):
        return False
    if a.countries and not (b.countries and b.countries <= a.countries):
        return False
    if a.accounts and not (b.accounts and b.accounts <= a.accounts):
        return False
    if a.senders and not (b.senders and a.senders.covers(b.senders)):
        return False
    return a.window is None or a.window == b.window
