"""SMPP 3.4 time formats (section 7.1.1), read into epoch ms and written for submit_sm. Pure.

Absolute ``YYMMDDhhmmsstnnp``: a local time, ``t`` tenths of a second, ``nn`` quarter hours
between it and UTC, ``p`` '+' (local is ahead of UTC) or '-'. Relative ``YYMMDDhhmmss000R``:
that long after now (the SMSC's now: here, when the PDU is read).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

_LENGTH = 16
_QUARTER_MS = 15 * 60 * 1000


class BadTime(ValueError):
    """A time field that is not one of SMPP's two formats."""


def parse_time(text: str, now_ms: int) -> int:
    """The epoch ms ``text`` names (a relative time counts from ``now_ms``); BadTime if it is
    malformed. An empty field means "not given": the caller checks that first."""
    if len(text) != _LENGTH:
        raise BadTime(f"{text!r} is not 16 characters (YYMMDDhhmmsstnnp)")
    digits, p = text[:15], text[15]
    if not digits.isascii() or not digits.isdigit():
        raise BadTime(f"{text!r} has a non-digit in its first 15 characters")
    yy, mo, dd, hh, mi, ss = (int(digits[i:i + 2]) for i in range(0, 12, 2))
    tenths, nn = int(digits[12]), int(digits[13:15])
    if p == "R":
        if tenths or nn:
            raise BadTime(f"{text!r}: a relative time ends in 000R")
        return _relative(now_ms, yy, mo, dd, hh, mi, ss)
    if p not in "+-":
        raise BadTime(f"{text!r} ends in neither '+', '-' nor 'R'")
    if nn > 48:
        raise BadTime(f"{text!r}: more than 48 quarter hours from UTC")
    try:
        local = datetime(2000 + yy, mo, dd, hh, mi, ss, tenths * 100_000, tzinfo=UTC)
    except ValueError as exc:
        raise BadTime(f"{text!r} is not a date and time: {exc}") from None
    ahead = nn * _QUARTER_MS if p == "+" else -nn * _QUARTER_MS
    return int(local.timestamp() * 1000) - ahead


def _relative(now_ms: int, yy: int, mo: int, dd: int, hh: int, mi: int, ss: int) -> int:
    """``now_ms`` plus years and months on the calendar (a day past a month's end is its
    last), then days and the rest as durations."""
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    months = now.month - 1 + mo + 12 * yy
    year, month = now.year + months // 12, months % 12 + 1
    day = min(now.day, calendar.monthrange(year, month)[1])
    later = now.replace(year=year, month=month, day=day) + timedelta(
        days=dd, hours=hh, minutes=mi, seconds=ss)
    return round(later.timestamp() * 1000)


def absolute(ms: int) -> str:
    """``ms`` as an absolute SMPP time in UTC (``YYMMDDhhmmsst00+``)."""
    at = datetime.fromtimestamp(ms / 1000, UTC)
    return at.strftime("%y%m%d%H%M%S") + f"{at.microsecond // 100_000}00+"


def relative(seconds: int) -> str:
    """A duration in seconds (under 100 days) as a relative SMPP time; "" for none."""
    if not seconds:
        return ""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"
