"""A key made by a Partner never exceeds its creator: which field it exceeds, if any."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.grants import Grant, exceeded_field, inherit

DAY = 86_400_000
PARTNER = Grant(channels=frozenset({"sim"}), rate=5, burst=5, daily_quota=100,
                expires_at_ms=10 * DAY)
UNBOUND = Grant(channels=None, rate=0, burst=0, daily_quota=0, expires_at_ms=0)


def _key(**changes: object) -> Grant:
    base = {"channels": frozenset({"sim"}), "rate": 5, "burst": 5, "daily_quota": 100,
            "expires_at_ms": 10 * DAY}
    return Grant(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "field"), [
    (_key(), None),
    (_key(rate=1, burst=2, daily_quota=1, expires_at_ms=DAY), None),
    (_key(channels=None), "channels"),  # every channel, the creator has one
    (_key(channels=frozenset({"sim", "sim2"})), "channels"),
    (_key(channels=frozenset({"sim2"})), "channels"),
    (_key(rate=0), "rate"),  # 0 is unlimited
    (_key(rate=6), "rate"),
    (_key(burst=0), "burst"),
    (_key(burst=6), "burst"),
    (_key(daily_quota=0), "dailyQuota"),
    (_key(daily_quota=101), "dailyQuota"),
    (_key(expires_at_ms=0), "expiresAt"),  # never expires, the creator does
    (_key(expires_at_ms=10 * DAY + 1), "expiresAt"),
    (_key(channels=None, rate=0), "channels"),  # the first field it exceeds is named
])
def test_a_key_exceeds_a_limited_creator_on_the_first_field_it_goes_beyond(
    key: Grant, field: str | None
) -> None:
    assert exceeded_field(PARTNER, key) == field


@pytest.mark.parametrize("key", [UNBOUND, _key(), _key(channels=frozenset({"x", "y"}))])
def test_a_creator_without_limits_is_exceeded_by_no_key(key: Grant) -> None:
    assert exceeded_field(UNBOUND, key) is None


def test_unset_limits_of_a_new_key_are_the_creators() -> None:
    asked = Grant(channels=None, rate=0, burst=0, daily_quota=0, expires_at_ms=0)
    assert inherit(PARTNER, asked, channels_given=False) == PARTNER
    assert exceeded_field(PARTNER, inherit(PARTNER, asked, channels_given=True)) == "channels"
    lower = Grant(channels=frozenset({"sim"}), rate=2, burst=0, daily_quota=50,
                  expires_at_ms=DAY)
    assert inherit(PARTNER, lower, channels_given=True) == Grant(
        channels=frozenset({"sim"}), rate=2, burst=2, daily_quota=50, expires_at_ms=DAY)
    # an unset burst follows the key's own rate, as for any key, but never above the creator's
    fast = Grant(channels=None, rate=5, burst=0, daily_quota=0, expires_at_ms=0)
    assert inherit(replace(PARTNER, burst=3), fast, channels_given=False).burst == 3
