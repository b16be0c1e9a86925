"""What a Partner may grant: a key it creates, rotates or enables never exceeds its own.

Pure functions over :class:`Grant`, the rights of a key on every axis a key limits. A number
of 0 is "no limit" (and an expiry of 0 "never"), so it exceeds any limit the creator has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from worker.senders import Senders


@dataclass(frozen=True, slots=True)
class Grant:
    """What a key may do: its channels (None: every channel), limits, expiry and senders."""

    channels: frozenset[str] | None
    rate: int  # messages per second; 0: unlimited
    burst: int  # messages at once; 0: unlimited
    daily_quota: int  # messages per UTC day; 0: unlimited
    expires_at_ms: int  # 0: never
    senders: Senders = field(default_factory=Senders)  # none: no sender may be chosen


def exceeded_field(creator: Grant, key: Grant) -> str | None:
    """The first field (as the API names it) on which ``key`` goes beyond ``creator``, or
    None if it stays within it on every axis."""
    if creator.channels is not None and (key.channels is None
                                         or not key.channels <= creator.channels):
        return "channels"
    if not creator.senders.covers(key.senders):
        return "senders"
    for name, limit, value in (("rate", creator.rate, key.rate),
                               ("burst", creator.burst, key.burst),
                               ("dailyQuota", creator.daily_quota, key.daily_quota),
                               ("expiresAt", creator.expires_at_ms, key.expires_at_ms)):
        if _beyond(limit, value):
            return name
    return None


def inherit(creator: Grant, asked: Grant, *, channels_given: bool,
            senders_given: bool = False) -> Grant:
    """A new key's grant with what was left unset taken from its creator: limits of 0, no
    expiry, the channels unless ``channels_given`` and the senders unless ``senders_given``.
    An unset burst follows the key's own rate, as for any key, but is never above the
    creator's burst."""
    rate = asked.rate or creator.rate
    return Grant(
        channels=asked.channels if channels_given else creator.channels,
        senders=asked.senders if senders_given else creator.senders,
        rate=rate,
        burst=asked.burst or _tighter(asked.rate, creator.burst),
        daily_quota=asked.daily_quota or creator.daily_quota,
        expires_at_ms=asked.expires_at_ms or creator.expires_at_ms,
    )


def _beyond(limit: int, value: int) -> bool:
    return limit > 0 and (value == 0 or value > limit)


def _tighter(a: int, b: int) -> int:
    """The smaller of two limits where 0 is none."""
    return min(a, b) if a and b else a or b
