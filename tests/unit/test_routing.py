"""Routing decisions, a pure function: prefixes, countries, accounts, senders, windows, weights
and routes used only by name."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from worker.routing import (
    Route,
    Routed,
    RouteError,
    RouteTable,
    Unroutable,
    check_routes,
    minute_of_week,
    number_problem,
    parse_window,
)
from worker.senders import Senders, check_entries

MON, TUE, SUN = 0, 1, 6


def at(day: int, hh: int, mm: int = 0) -> int:
    return day * 1440 + hh * 60 + mm


TABLE = RouteTable.build([
    Route("night-za", (("b", 1),), prefixes=("27",), window=parse_window("22:00-06:00")),
    Route("vip", (("b", 1),), accounts=frozenset({"vip"})),
    Route("za-mobile", (("a", 1),), prefixes=("2782", "2783"), fallbacks=("b",)),
    Route("france", (("c", 1),), countries=frozenset({"FR"})),
    Route("canada", (("c", 1),), countries=frozenset({"CA"})),
    Route("default", (("a", 1),)),
])


@pytest.mark.parametrize(("to", "account", "parent", "minute", "route", "channel"), [
    ("27821234567", "acme", "", at(MON, 12), "za-mobile", "a"),
    ("27831234567", "acme", "", at(MON, 12), "za-mobile", "a"),
    ("27721234567", "acme", "", at(MON, 12), "default", "a"),  # no prefix of za-mobile
    ("27821234567", "acme", "", at(MON, 23), "night-za", "b"),  # the window, before midnight
    ("27821234567", "acme", "", at(TUE, 5, 59), "night-za", "b"),  # ...and after it
    ("27821234567", "acme", "", at(TUE, 6), "za-mobile", "a"),  # the end is exclusive
    ("27821234567", "vip", "", at(MON, 12), "vip", "b"),
    ("27821234567", "vip-child", "vip", at(MON, 12), "vip", "b"),  # by its parent account
    ("33612345678", "acme", "", at(MON, 12), "france", "c"),  # a calling code of its own
    ("16135550123", "acme", "", at(MON, 12), "canada", "c"),  # Ottawa: +1 shared with the US
    ("12025550123", "acme", "", at(MON, 12), "default", "a"),  # Washington: +1, not Canada
])
def test_the_first_matching_route_routes_a_message(
    to: str, account: str, parent: str, minute: int, route: str, channel: str
) -> None:
    got = TABLE.choose(to, account, parent, minute=minute)
    assert isinstance(got, Routed)
    assert (got.route, got.channel) == (route, channel)


def test_no_matching_route_is_a_reason_not_a_channel() -> None:
    table = RouteTable.build([Route("za", (("a", 1),), prefixes=("27",))])
    got = table.choose("33612345678", "acme")
    assert isinstance(got, Unroutable)
    assert "no route sends to +33612345678" in got.reason


@pytest.mark.parametrize(("hours", "days", "minute", "holds"), [
    ("08:00-20:00", (), at(SUN, 8), True),
    ("08:00-20:00", (), at(SUN, 20), False),
    ("08:00-20:00", ("mon", "tue"), at(TUE, 19, 59), True),
    ("08:00-20:00", ("mon", "tue"), at(SUN, 12), False),
    ("22:00-06:00", ("sun",), at(SUN, 23), True),
    ("22:00-06:00", ("sun",), at(MON, 1), True),  # Sunday night runs into Monday
    ("22:00-06:00", ("sun",), at(SUN, 1), False),  # that is Saturday night's
])
def test_a_time_window_holds_on_its_days_in_utc(
    hours: str, days: tuple[str, ...], minute: int, holds: bool
) -> None:
    assert parse_window(hours, days).holds(minute) is holds


def test_minute_of_week_counts_from_monday_utc() -> None:
    assert minute_of_week(0) == at(3, 0)  # 1 January 1970 was a Thursday
    assert minute_of_week(1_700_000_000) == at(1, 22, 13)  # Tue 14 Nov 2023 22:13 UTC


def test_a_weighted_split_is_within_a_percent_of_its_weights_over_10000_messages() -> None:
    table = RouteTable.build([Route("split", (("a", 3), ("b", 1)))])
    rng = random.Random(15)
    counts = Counter(
        r.channel for r in (table.choose("27821234567", "x", rand=rng.random())
                            for _ in range(10_000)) if isinstance(r, Routed))
    assert abs(counts["a"] / 10_000 - 0.75) < 0.01
    assert abs(counts["b"] / 10_000 - 0.25) < 0.01


@pytest.mark.parametrize(("rand", "channel"), [(0.0, "a"), (0.749, "a"), (0.75, "b"),
                                                (0.999, "b")])
def test_rand_picks_a_channel_by_its_share_of_the_weights(rand: float, channel: str) -> None:
    table = RouteTable.build([Route("split", (("a", 3), ("b", 1)))])
    got = table.choose("27821234567", "x", rand=rand)
    assert isinstance(got, Routed) and got.channel == channel


def test_the_chain_is_the_picked_channel_then_the_others_then_the_fallbacks() -> None:
    table = RouteTable.build([Route("r", (("a", 1), ("b", 1)), fallbacks=("c",), passes=2)])
    got = table.choose("27821234567", "x", rand=0.9)
    assert isinstance(got, Routed)
    assert got.chain == ("b", "a", "c", "b", "a", "c")


@pytest.mark.parametrize(("allowed", "channel", "chain"), [
    ({"b"}, "b", ("b",)),  # the only weighted channel the key may use
    ({"c"}, "c", ("c",)),  # only a fallback: it is the channel
    ({"a", "c"}, "a", ("a", "c")),
])
def test_a_key_restricted_to_channels_is_routed_within_them(
    allowed: set[str], channel: str, chain: tuple[str, ...]
) -> None:
    table = RouteTable.build([Route("r", (("a", 1), ("b", 1)), fallbacks=("c",))])
    got = table.choose("27821234567", "x", rand=0.0, allowed=allowed)
    assert isinstance(got, Routed)
    assert (got.channel, got.chain) == (channel, chain)


def test_a_route_with_no_channel_the_key_may_use_is_unroutable() -> None:
    table = RouteTable.build([Route("r", (("a", 1),))])
    got = table.choose("27821234567", "x", allowed={"z"})
    assert isinstance(got, Unroutable) and "route 'r'" in got.reason


@pytest.mark.parametrize(("routes", "problem"), [
    ([Route("r", (("nope", 1),))], "routes[0] 'r'.channels: no channel named 'nope'"),
    ([Route("r", (("a", 0),))], "routes[0] 'r'.channels: the weight of 'a' must be positive"),
    ([Route("r", (("a", 1),), fallbacks=("x",))], "routes[0] 'r'.fallbacks: no channel"),
    ([Route("r", ())], "routes[0] 'r'.channels: must name at least one channel"),
    ([Route("r", (("a", 1),), fallbacks=("a",))], "channel 'a' is named twice"),
    ([Route("r", (("a", 1),), prefixes=("+27",))], "'+27' is not E.164 digits"),
    ([Route("r", (("a", 1),), countries=frozenset({"XX"}))], "'XX' is not an ISO 3166"),
    ([Route("all", (("a", 1),)), Route("za", (("b", 1),), prefixes=("27",))],
     "routes[1] 'za': unreachable: routes[0] 'all' before it"),
    ([Route("za", (("a", 1),), prefixes=("27",)), Route("za-m", (("b", 1),), prefixes=("2782",))],
     "routes[1] 'za-m': unreachable: routes[0] 'za'"),
    ([Route("x", (("a", 1),), accounts=frozenset({"a", "b"})),
      Route("y", (("b", 1),), accounts=frozenset({"a"}), prefixes=("27",))], "unreachable"),
    ([Route("r", (("a", 1),)), Route("r", (("b", 1),), prefixes=("1",))], "already used"),
])
def test_a_bad_route_is_named_with_its_problem(routes: list[Route], problem: str) -> None:
    with pytest.raises(RouteError, match=None) as exc:
        check_routes(routes, {"a", "b"})
    assert problem in str(exc.value)


@pytest.mark.parametrize("routes", [
    [Route("za-m", (("b", 1),), prefixes=("2782",)), Route("za", (("a", 1),), prefixes=("27",))],
    [Route("night", (("b", 1),), window=parse_window("22:00-06:00")), Route("all", (("a", 1),))],
    [Route("vip", (("b", 1),), accounts=frozenset({"vip"})), Route("all", (("a", 1),))],
    [Route("fr", (("b", 1),), countries=frozenset({"FR"})),
     Route("fr-prefix", (("a", 1),), prefixes=("33",))],
])
def test_narrower_routes_before_wider_ones_are_all_reachable(routes: list[Route]) -> None:
    check_routes(routes, {"a", "b"})


@pytest.mark.parametrize(("to", "problem"), [
    ("33612345678", ""),
    ("3361234", "is not a valid number for FR: it is too short"),
    ("27821234567", ""),
    ("27021234567", "is not a valid number for ZA: no numbers in use start this way"),
])
def test_libphonenumber_check_names_why_a_number_is_invalid(to: str, problem: str) -> None:
    got = number_problem(to)
    assert (problem in got) if problem else got == ""


def _senders(*entries: str) -> Senders:
    return Senders.of(check_entries(entries))


SENDER_TABLE = RouteTable.build([
    Route("acme-brand", (("b", 1),), senders=_senders("Acme")),
    Route("uk-longcodes", (("c", 1),), senders=_senders("4470*"), prefixes=("44",)),
    Route("premium", (("c", 1),), by_name=True),
    Route("default", (("a", 1),)),
])


@pytest.mark.parametrize(("to", "sender", "route"), [
    ("27821234567", "Acme", "acme-brand"),
    ("27821234567", "ACME", "default"),  # exact, case counts
    ("27821234567", "Acme2", "default"),
    ("447911123456", "+447012345678", "uk-longcodes"),  # a number matches with its '+'
    ("447911123456", "447012345678", "uk-longcodes"),  # ... and without
    ("447911123456", "447112345678", "default"),  # not the prefix
    ("27821234567", "447012345678", "default"),  # the sender matches, the destination not
    ("447911123456", "", "default"),  # no sender: only routes without senders match
    ("27821234567", "", "default"),  # and 'premium' (by name only) is never chosen
])
def test_routes_match_on_the_sender(to: str, sender: str, route: str) -> None:
    got = SENDER_TABLE.choose(to, "acme", sender=sender)
    assert isinstance(got, Routed) and got.route == route


def test_a_message_without_a_sender_is_unroutable_if_every_route_wants_one() -> None:
    table = RouteTable.build([Route("acme", (("a", 1),), senders=_senders("*"))])
    got = table.choose("27821234567", "acme")
    assert isinstance(got, Unroutable) and got.reason == \
        "no route sends to +27821234567 for account 'acme'"
    assert isinstance(table.choose("27821234567", "acme", sender="Any"), Routed)


def test_a_route_used_by_name_routes_only_messages_that_name_it() -> None:
    table = RouteTable.build([Route("premium", (("c", 1),), by_name=True)])
    assert isinstance(table.choose("27821234567", "acme"), Unroutable)
    got = table.choose_named("premium", "27821234567", "acme")
    assert isinstance(got, Routed) and (got.route, got.channel) == ("premium", "c")


def test_a_named_route_still_matches_on_the_sender() -> None:
    got = SENDER_TABLE.choose_named("acme-brand", "27821234567", "acme", sender="Other")
    assert isinstance(got, Unroutable)
    assert got.reason == ("route 'acme-brand' does not send to +27821234567 for account "
                          "'acme' from sender 'Other'")


@pytest.mark.parametrize(("routes", "problem"), [
    ([Route("any", (("a", 1),), senders=_senders("*")),
      Route("acme", (("b", 1),), senders=_senders("Acme"))],
     "routes[1] 'acme': unreachable: routes[0] 'any'"),
    ([Route("uk", (("a", 1),), senders=_senders("44*")),
      Route("uk70", (("b", 1),), senders=_senders("+4470*", "447712345678"))],
     "routes[1] 'uk70': unreachable: routes[0] 'uk'"),
    ([Route("all", (("a", 1),)), Route("acme", (("b", 1),), senders=_senders("Acme"))],
     "routes[1] 'acme': unreachable: routes[0] 'all'"),
    ([Route("named", (("a", 1),), by_name=True), Route("all", (("a", 1),)),
      Route("za", (("b", 1),), prefixes=("27",))],  # 'named' is no catch-all, 'all' is
     "routes[2] 'za': unreachable: routes[1] 'all'"),
])
def test_an_unreachable_route_is_found_with_senders_and_by_name(
    routes: list[Route], problem: str
) -> None:
    with pytest.raises(RouteError) as exc:
        check_routes(routes, {"a", "b"})
    assert problem in str(exc.value)


@pytest.mark.parametrize("routes", [
    # a route with senders matches fewer messages than one without: both reachable
    [Route("acme", (("b", 1),), senders=_senders("Acme")), Route("all", (("a", 1),))],
    [Route("acme", (("b", 1),), senders=_senders("Acme")),
     Route("other", (("a", 1),), senders=_senders("Other"))],
    [Route("uk70", (("b", 1),), senders=_senders("4470*")),
     Route("uk", (("a", 1),), senders=_senders("44*"))],
    # a route used by name is reached by naming it, and makes no later route unreachable
    [Route("all", (("a", 1),)), Route("premium", (("b", 1),), by_name=True)],
    [Route("named", (("a", 1),), by_name=True), Route("all", (("b", 1),))],
])
def test_routes_with_senders_or_by_name_are_reachable(routes: list[Route]) -> None:
    check_routes(routes, {"a", "b"})
